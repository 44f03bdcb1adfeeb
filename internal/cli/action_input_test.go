package cli_test

import (
	"strings"
	"testing"
)

// TestAction_BadInputNeverReachesTheAPI: each bad input gives exactly one
// ::error:: that names the input, exit 1, and not one request — in main or
// in post.
func TestAction_BadInputNeverReachesTheAPI(t *testing.T) {
	t.Parallel()
	const acct = "0a1b2c3d4e5f60718293a4b5c6d7e8f9"
	cases := []struct {
		name  string
		with  map[string]string // merged over a valid step
		input string            // the input the error must name
	}{
		{"empty api-token", map[string]string{"api-token": ""}, "api-token"},
		{"api-token with a space inside", map[string]string{"api-token": "abc def"}, "api-token"},
		{"empty account-ids", map[string]string{"account-ids": ""}, "account-ids"},
		{"account id not hex", map[string]string{"account-ids": "production"}, "account-ids"},
		{"account id upper case", map[string]string{"account-ids": strings.ToUpper(acct)}, "account-ids"},
		{"account id too short", map[string]string{"account-ids": acct[:31]}, "account-ids"},
		{"scopes only separators", map[string]string{"scopes": " , \n ,"}, "scopes"},
		{"audit-logs has no write level", map[string]string{"scopes": "audit-logs:write"}, "scopes"},
		{"unknown level", map[string]string{"scopes": "organizations:admin"}, "scopes"},
		{"unclosed quote", map[string]string{"scopes": `"Access: Apps and Policies`}, "scopes"},
		{"group id with a level", map[string]string{"scopes": "1e13c5124ca64b72b1969a67e8829049:write"}, "scopes"},
		{"permission not a level", map[string]string{"permission": "admin"}, "permission"},
		{"ttl too short", map[string]string{"ttl": "5s"}, "ttl"},
		{"ttl too long", map[string]string{"ttl": "25h"}, "ttl"},
		{"ttl not a duration", map[string]string{"ttl": "forever"}, "ttl"},
		{"ttl not whole seconds", map[string]string{"ttl": "1m0.5s"}, "ttl"},
		{"owner unknown", map[string]string{"owner": "team"}, "owner"},
		{"owner account with two accounts", map[string]string{"owner": "account", "account-ids": acct + ",1b2c3d4e5f60718293a4b5c6d7e8f90a"}, "owner"},
		{"name with a control character", map[string]string{"name": "deploy\x07bell"}, "name"},
		{"name too long", map[string]string{"name": strings.Repeat("n", 200)}, "name"},
		{"allowed-ips host bits set", map[string]string{"allowed-ips": "10.0.0.1/8"}, "allowed-ips"},
		{"allowed-ips not an address", map[string]string{"allowed-ips": "office"}, "allowed-ips"},
		{"verify not a boolean", map[string]string{"verify": "yes"}, "verify"},
		{"revoke not a boolean", map[string]string{"revoke": "maybe"}, "revoke"},
		{"export-env not a boolean", map[string]string{"export-env": "1"}, "export-env"},
		{"mode unknown", map[string]string{"mode": "destroy"}, "mode"},
		{"revoke mode without token-id", map[string]string{"mode": "revoke"}, "token-id"},
		{"revoke mode with a bad token-id", map[string]string{"mode": "revoke", "token-id": "abc"}, "token-id"},
		{"token-id in create mode", map[string]string{"token-id": acct}, "token-id"},
		{"api-url plain http off loopback", map[string]string{"api-url": "http://api.example.com/client/v4"}, "api-url"},
		{"api-url not http", map[string]string{"api-url": "ftp://127.0.0.1/client/v4"}, "api-url"},
		{"api-url with credentials", map[string]string{"api-url": "https://user:pass@api.cloudflare.com/client/v4"}, "api-url"},
		// Issue 8, hole 7: what no request can carry fails at once, not after a minute of retries.
		{"api-url port out of range", map[string]string{"api-url": "http://127.0.0.1:99999/client/v4"}, "api-url"},
		{"api-token with a control character", map[string]string{"api-token": "cfut_abc\x01def"}, "api-token"},
		// Issue 8, hole 11, by name: refused before any request.
		{"a group that manages tokens", map[string]string{"scopes": "Account API Tokens:write"}, "scopes"},
		// Issue 8, also: a misspelt shorthand suggests the shorthand.
		{"misspelt shorthand", map[string]string{"scopes": "organisations"}, "scopes"},
		{"permission revoke", map[string]string{"permission": "revoke"}, "permission"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t)
			with := w.with("account-ids", acct)
			for k, v := range tc.with {
				with[k] = v
			}
			job := w.run(t, with)
			if job.Main.ExitCode != 1 {
				t.Errorf("main exit code %d, want 1\n%s", job.Main.ExitCode, job.Main.Log)
			}
			errs := job.Main.Annotations("error")
			if len(errs) != 1 {
				t.Fatalf("got %d ::error:: annotations, want 1\n%s", len(errs), job.Main.Log)
			}
			if msg := errs[0].Data; !strings.HasPrefix(msg, "Input "+tc.input+": ") || !strings.Contains(msg, "Accepted: ") {
				t.Errorf("the error does not name input %s and what is accepted: %q", tc.input, msg)
			}
			if n := len(w.e.Requests()); n != 0 {
				t.Errorf("bad input made %d requests, want 0", n)
			}
			if job.Post == nil || job.Post.Failed || len(job.Post.Annotations("notice")) != 1 {
				t.Errorf("post should only say there is nothing to revoke")
			}
		})
	}
}

// TestAction_UnknownScopeNamesTheClosestGroups: a name that matches no
// group is an input error found with the live list — after that one
// call, nothing else is called.
func TestAction_UnknownScopeNamesTheClosestGroups(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	job := w.run(t, w.with("account-ids", w.seeded.AccountIDs[0], "scopes", "Access: Apps and Policy:write"))
	errs := job.Main.Annotations("error")
	if job.Main.ExitCode != 1 || len(errs) != 1 {
		t.Fatalf("exit %d with %d errors, want 1 and 1\n%s", job.Main.ExitCode, len(errs), job.Main.Log)
	}
	if msg := errs[0].Data; !strings.HasPrefix(msg, "Input scopes: ") || !strings.Contains(msg, `"Access: Apps and Policies Write"`) {
		t.Errorf("error does not suggest the closest group: %q", msg)
	}
	for _, r := range w.e.Requests() {
		if r.Route != "GET /user/tokens/permission_groups" {
			t.Errorf("unexpected request %s %s", r.Method, r.Path)
		}
	}
	if n := len(w.children()); n != 0 {
		t.Errorf("%d tokens created", n)
	}
}

// TestAction_MessagesSpeakOfInputs: the same messages the CLI says with
// flags and variables, the action says with its inputs.
func TestAction_MessagesSpeakOfInputs(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	job := w.run(t, w.with("owner", "account", "account-ids", w.seeded.AccountIDs[0]+","+w.seeded.AccountIDs[1]))
	errs := job.Main.Annotations("error")
	const want = "Input owner: account with 2 account ids: an account-owned token belongs to exactly one account. Accepted: one account id with owner: account."
	if len(errs) != 1 || errs[0].Data != want {
		t.Fatalf("errors %v, want %q", errs, want)
	}
	job = w.run(t, w.with("account-ids", w.seeded.AccountIDs[0], "broker-url", "https://cf-broker.example.com"))
	errs = job.Main.Annotations("error")
	if len(errs) != 1 || !strings.Contains(errs[0].Data, "is given together with api-token") || strings.Contains(errs[0].Data, "--") ||
		strings.Contains(errs[0].Data, "CF_SCOPED_TOKEN") {
		t.Fatalf("errors %v", errs)
	}
}
