package emulator_test

import (
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cf-scoped-token/cf-scoped-token/internal/emulator"
)

func TestDefaultLimits(t *testing.T) {
	t.Parallel()
	// reference/cloudflare-api.md, "Errors and limits".
	want := emulator.Limits{UserTokenQuota: 50, AccountTokenQuota: 500, RateLimit: 1200, RateWindow: 5 * time.Minute}
	if diff := cmp.Diff(want, emulator.DefaultLimits()); diff != "" {
		t.Errorf("DefaultLimits() (-want +got):\n%s", diff)
	}
}

func TestSeed(t *testing.T) {
	t.Parallel()
	te := mustServe(t)
	s := te.seed
	if len(s.AccountIDs) != 3 {
		t.Fatalf("AccountIDs = %v, want 3", s.AccountIDs)
	}
	hex32 := regexp.MustCompile(`^[0-9a-f]{32}$`)
	for _, id := range append(s.AccountIDs, s.UserID, s.UserTokenID, s.AccountTokenID) {
		if !hex32.MatchString(id) {
			t.Errorf("id %q is not 32 lowercase hex", id)
		}
	}
	if again := emulator.Seed(emulator.New()); again.UserToken == s.UserToken || !cmp.Equal(again.AccountIDs, s.AccountIDs) {
		t.Errorf("Seed: account ids must be fixed and token values random; got %v/%v", again.AccountIDs, s.AccountIDs)
	}
	toks := te.e.Tokens()
	if len(toks) != 2 || toks[0].Owner != "user" || toks[0].OwnerID != s.UserID ||
		toks[1].Owner != "account" || toks[1].OwnerID != s.AccountIDs[0] {
		t.Fatalf("Tokens() = %+v, want the user parent then the account parent", toks)
	}
	// Both parents can do their job: create a child on their own endpoint.
	wantOK(t, te.do(t, "POST", "/user/tokens", s.UserToken,
		createBody("c1", []string{gOrgsWrite}, map[string]string{acct(s.AccountIDs[2]): "*"})))
	wantOK(t, te.do(t, "POST", "/accounts/"+s.AccountIDs[0]+"/tokens", s.AccountToken,
		createBody("c2", []string{gAppsWrite}, map[string]string{acct(s.AccountIDs[0]): "*"})))
}

func TestEnvelope(t *testing.T) {
	t.Parallel()
	te := mustServe(t)
	env := wantOK(t, te.do(t, "GET", "/user/tokens", te.seed.UserToken, nil))
	for _, key := range []string{"success", "errors", "messages", "result", "result_info"} {
		if _, ok := env.Raw[key]; !ok {
			t.Errorf("list envelope lacks %q: %v", key, env.Raw)
		}
	}
	if errs, ok := env.Raw["errors"].([]any); !ok || len(errs) != 0 {
		t.Errorf("errors = %v, want []", env.Raw["errors"])
	}
	if got := env.Header.Get("Content-Type"); got != "application/json" {
		t.Errorf("Content-Type = %q", got)
	}
	// Ratelimit headers are always sent, also on failures (reference, "Errors and limits").
	for _, e := range []envelope{env, te.do(t, "GET", "/user/tokens", "nope", nil)} {
		if !strings.Contains(e.Header.Get("Ratelimit-Policy"), "q=1200;w=300") || e.Header.Get("Ratelimit") == "" {
			t.Errorf("Ratelimit headers = %q / %q", e.Header.Get("Ratelimit"), e.Header.Get("Ratelimit-Policy"))
		}
	}
	checkFail(t, te.do(t, "GET", "/user/tokens", "nope", nil), http.StatusForbidden, 9109)
}

func TestAuthErrors(t *testing.T) {
	t.Parallel()
	te := mustServe(t)
	a0, a1 := te.seed.AccountIDs[0], te.seed.AccountIDs[1]
	readOnly := te.issue([]string{gAPITokensRead}, map[string]string{"com.cloudflare.api.user." + te.seed.UserID: "*"})
	accessOnly := te.issue([]string{gOrgsRead}, map[string]string{acct(a0): "*"})
	_, acctRead := te.e.IssueAccountToken(a0, emulator.TokenSpec{Name: "r", Policies: []emulator.Policy{
		{Effect: "allow", PermissionGroups: []string{gAccountAPITokensRead}, Resources: map[string]string{acct(a0): "*"}}}})
	child := createBody("c", []string{gOrgsRead}, map[string]string{acct(a0): "*"})
	unknown := "cfut_" + strings.Repeat("a", 48)

	tests := []struct {
		name, method, path, auth string
		body                     any
		status, code             int
		message                  string
	}{
		{"no header", "GET", "/user/tokens", "", nil, 400, 6003, "Invalid request headers"},
		{"basic scheme", "GET", "/user/tokens", "Basic dXNlcjpwdw==", nil, 400, 6003, ""},
		{"empty bearer", "GET", "/user/tokens", "Bearer ", nil, 400, 6003, ""},
		{"bearer with junk", "GET", "/user/tokens", "Bearer a b", nil, 400, 6003, ""},
		{"no header on verify", "GET", "/user/tokens/verify", "", nil, 400, 6003, ""},
		{"no header on account", "GET", "/accounts/" + a0 + "/tokens", "", nil, 400, 6003, ""},
		{"unknown token, user endpoint", "GET", "/user/tokens", "Bearer " + unknown, nil, 403, 9109, "Invalid access token"},
		{"unknown token, account endpoint", "GET", "/accounts/" + a0 + "/tokens", "Bearer " + unknown, nil, 401, 10000, "Authentication error"},
		{"unknown token, access endpoint", "GET", "/accounts/" + a0 + "/access/groups", "Bearer " + unknown, nil, 401, 10000, "Authentication error"},
		{"unknown token, user verify", "GET", "/user/tokens/verify", "Bearer " + unknown, nil, 401, 1000, "Invalid API Token"},
		{"unknown token, account verify", "GET", "/accounts/" + a0 + "/tokens/verify", "Bearer " + unknown, nil, 401, 1000, ""},
		{"account token on user verify", "GET", "/user/tokens/verify", "Bearer " + te.seed.AccountToken, nil, 401, 1000, ""},
		{"user token on account verify", "GET", "/accounts/" + a0 + "/tokens/verify", "Bearer " + te.seed.UserToken, nil, 401, 1000, ""},
		{"account token on other account's verify", "GET", "/accounts/" + a1 + "/tokens/verify", "Bearer " + te.seed.AccountToken, nil, 401, 1000, ""},
		{"account token on user endpoint", "GET", "/user/tokens", "Bearer " + te.seed.AccountToken, nil, 403, 9109, "Unauthorized to access requested resource"},
		{"read-only creates", "POST", "/user/tokens", "Bearer " + readOnly, child, 403, 10000, "Authentication error"},
		{"read-only deletes", "DELETE", "/user/tokens/" + te.seed.UserTokenID, "Bearer " + readOnly, nil, 403, 10000, ""},
		{"read-only rolls", "PUT", "/user/tokens/" + te.seed.UserTokenID + "/value", "Bearer " + readOnly, "{}", 403, 10000, ""},
		{"no token permission lists", "GET", "/user/tokens", "Bearer " + accessOnly, nil, 403, 10000, ""},
		{"no token permission, groups", "GET", "/user/tokens/permission_groups", "Bearer " + accessOnly, nil, 403, 10000, ""},
		{"account token on other account", "GET", "/accounts/" + a1 + "/tokens", "Bearer " + te.seed.AccountToken, nil, 403, 10000, ""},
		{"account read token creates", "POST", "/accounts/" + a0 + "/tokens", "Bearer " + acctRead, child, 403, 10000, ""},
		{"malformed account id", "GET", "/accounts/XYZ/tokens", "Bearer " + te.seed.AccountToken, nil, 404, 7003, ""},
		{"unknown account", "GET", "/accounts/" + strings.Repeat("f", 32) + "/tokens", "Bearer " + te.seed.UserToken, nil, 403, 10000, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var env envelope
			if tc.body != nil {
				env = doWith(t, te.srv.Client(), tc.method, te.api+tc.path, tc.auth, tc.auth != "", tc.body)
			} else {
				env = te.doAuth(t, tc.method, tc.path, tc.auth)
			}
			checkFail(t, env, tc.status, tc.code)
			if tc.message != "" && len(env.Errors) > 0 && env.Errors[0].Message != tc.message {
				t.Errorf("message = %q, want %q", env.Errors[0].Message, tc.message)
			}
			if tc.code == 6003 {
				want := []apiError{{Code: 6111, Message: "Invalid format for Authorization header"}}
				if diff := cmp.Diff(want, env.Errors[0].ErrorChain); diff != "" {
					t.Errorf("error_chain (-want +got):\n%s", diff)
				}
			}
		})
	}

	// Read access suffices for the read endpoints.
	wantOK(t, te.doAuth(t, "GET", "/user/tokens", "Bearer "+readOnly))
	wantOK(t, te.doAuth(t, "GET", "/user/tokens/permission_groups", "Bearer "+readOnly))
	wantOK(t, te.doAuth(t, "GET", "/accounts/"+a0+"/tokens", "Bearer "+acctRead))
	// A user token with Account API Tokens Write on the account manages its account tokens.
	wantOK(t, te.do(t, "GET", "/accounts/"+a1+"/tokens", te.seed.UserToken, nil))
}

func TestVerify(t *testing.T) {
	t.Parallel()
	te := mustServe(t)
	a0 := te.seed.AccountIDs[0]
	for _, tc := range []struct{ path, tok, id string }{
		{"/user/tokens/verify", te.seed.UserToken, te.seed.UserTokenID},
		{"/accounts/" + a0 + "/tokens/verify", te.seed.AccountToken, te.seed.AccountTokenID},
	} {
		env := wantOK(t, te.do(t, "GET", tc.path, tc.tok, nil))
		want := []apiError{{Code: 10000, Message: "This API Token is valid and active"}}
		if diff := cmp.Diff(want, env.Messages); diff != "" {
			t.Errorf("%s messages (-want +got):\n%s", tc.path, diff)
		}
		var got map[string]any
		decode(t, env, &got)
		if diff := cmp.Diff(map[string]any{"id": tc.id, "status": "active"}, got); diff != "" {
			t.Errorf("%s result (-want +got):\n%s", tc.path, diff)
		}
	}
}

func TestCreateValidation(t *testing.T) {
	t.Parallel()
	te := mustServe(t)
	a0 := te.seed.AccountIDs[0]
	res := map[string]any{acct(a0): "*"}
	pol := func(extra map[string]any) map[string]any {
		p := map[string]any{"effect": "allow", "permission_groups": []any{map[string]any{"id": gOrgsRead}}, "resources": res}
		for k, v := range extra {
			p[k] = v
		}
		return p
	}
	body := func(extra map[string]any) map[string]any {
		b := map[string]any{"name": "ok", "policies": []any{pol(nil)}}
		for k, v := range extra {
			if v == nil {
				delete(b, k)
			} else {
				b[k] = v
			}
		}
		return b
	}
	tests := []struct {
		name    string
		body    any
		code    int
		message string // substring
	}{
		{"not JSON", "{", 6007, "Malformed JSON"},
		{"name missing", body(map[string]any{"name": nil}), 1001, "name"},
		{"name empty", body(map[string]any{"name": ""}), 1001, "name"},
		{"name 121 characters", body(map[string]any{"name": strings.Repeat("é", 121)}), 1001, "120"},
		{"policies missing", body(map[string]any{"policies": nil}), 1001, "policies"},
		{"policies empty", body(map[string]any{"policies": []any{}}), 1001, "policies"},
		{"policy id on create", body(map[string]any{"policies": []any{pol(map[string]any{"id": "f267e341f3dd4697bd3b9f71dd96247f"})}}),
			1001, "Reusing existing policies is not supported by token creation"},
		{"bad effect", body(map[string]any{"policies": []any{pol(map[string]any{"effect": "permit"})}}), 1001, "effect"},
		{"no groups", body(map[string]any{"policies": []any{pol(map[string]any{"permission_groups": []any{}})}}), 1001, "permission_groups"},
		{"unknown group", body(map[string]any{"policies": []any{pol(map[string]any{"permission_groups": []any{map[string]any{"id": strings.Repeat("0", 32)}}})}}), 1001, "unknown permission group"},
		{"no resources", body(map[string]any{"policies": []any{pol(map[string]any{"resources": map[string]any{}})}}), 1001, "resources"},
		{"resource value not *", body(map[string]any{"policies": []any{pol(map[string]any{"resources": map[string]any{acct(a0): "read"}})}}), 1001, "resources"},
		{"expires_on not RFC 3339", body(map[string]any{"expires_on": "2026-11-27 20:00:00"}), 1001, "expires_on"},
		{"not_before not RFC 3339", body(map[string]any{"not_before": "tomorrow"}), 1001, "not_before"},
		{"condition unknown key", body(map[string]any{"condition": map[string]any{"request_IP": map[string]any{"in": []string{"10.0.0.0/8"}}}}), 1001, "request_IP"},
		{"condition unknown inner key", body(map[string]any{"condition": map[string]any{"request_ip": map[string]any{"allow": []string{"10.0.0.0/8"}}}}), 1001, "allow"},
		{"condition bad CIDR", body(map[string]any{"condition": map[string]any{"request_ip": map[string]any{"in": []string{"10.0.0.0/33"}}}}), 1001, "CIDR"},
		{"wrong type", body(map[string]any{"name": 7}), 1001, "name"},
	}
	// The exact 120-character limit is accepted.
	wantOK(t, te.do(t, "POST", "/user/tokens", te.seed.UserToken, body(map[string]any{"name": strings.Repeat("é", 120)})))
	// Cleanups run after the parallel subtests, when every refusal has been answered.
	t.Cleanup(func() {
		if n := len(te.e.Tokens()); n != 3 {
			t.Errorf("%d tokens, want the 2 parents and 1 child: a refused create was stored", n)
		}
	})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env := te.do(t, "POST", "/user/tokens", te.seed.UserToken, tc.body)
			checkFail(t, env, http.StatusBadRequest, tc.code)
			if len(env.Errors) > 0 && !strings.Contains(env.Errors[0].Message, tc.message) {
				t.Errorf("message %q does not mention %q", env.Errors[0].Message, tc.message)
			}
		})
	}
}

func TestCommonPermissionCheck(t *testing.T) {
	t.Parallel()
	te := mustServe(t)
	te.e.AddAccount(strings.Repeat("e", 32), "not a member")
	a0, a1 := te.seed.AccountIDs[0], te.seed.AccountIDs[1]
	foreign := strings.Repeat("e", 32)
	user := "com.cloudflare.api.user." + te.seed.UserID
	otherUser := "com.cloudflare.api.user." + strings.Repeat("1", 32)
	const failed = "Failed common permission check against resources. (Permission group: %q)"

	tests := []struct {
		name      string
		path, tok string
		groups    []string
		resources map[string]string
		wantGroup string // "" = allowed
	}{
		{"user: member account", "/user/tokens", te.seed.UserToken, []string{gOrgsWrite}, map[string]string{acct(a1): "*"}, ""},
		{"user: all member accounts", "/user/tokens", te.seed.UserToken, []string{gOrgsWrite}, map[string]string{acct(a0): "*", acct(a1): "*"}, ""},
		{"user: account wildcard", "/user/tokens", te.seed.UserToken, []string{gOrgsRead}, map[string]string{"com.cloudflare.api.account.*": "*"}, ""},
		{"user: foreign account", "/user/tokens", te.seed.UserToken, []string{gOrgsWrite}, map[string]string{acct(foreign): "*"},
			"Access: Organizations, Identity Providers, and Groups Write"},
		{"user: one foreign among members", "/user/tokens", te.seed.UserToken, []string{gAppsRead}, map[string]string{acct(a0): "*", acct(foreign): "*"},
			"Access: Apps and Policies Read"},
		{"user: user group on own user", "/user/tokens", te.seed.UserToken, []string{gAPITokensRead}, map[string]string{user: "*"}, ""},
		{"user: user group on other user", "/user/tokens", te.seed.UserToken, []string{gAPITokensRead}, map[string]string{otherUser: "*"}, "API Tokens Read"},
		{"user: user group on account", "/user/tokens", te.seed.UserToken, []string{gAPITokensWrite}, map[string]string{acct(a0): "*"}, "API Tokens Write"},
		{"user: account group on user", "/user/tokens", te.seed.UserToken, []string{gOrgsRead}, map[string]string{user: "*"},
			"Access: Organizations, Identity Providers, and Groups Read"},
		{"user: unknown zone", "/user/tokens", te.seed.UserToken, []string{gAppsReadZone}, map[string]string{"com.cloudflare.api.account.zone." + strings.Repeat("2", 32): "*"},
			"Access: Apps and Policies Read"},
		{"account: own account", "/accounts/" + a0 + "/tokens", te.seed.AccountToken, []string{gAppsWrite, gServiceTokensRead}, map[string]string{acct(a0): "*"}, ""},
		{"account: other account", "/accounts/" + a0 + "/tokens", te.seed.AccountToken, []string{gAppsWrite}, map[string]string{acct(a1): "*"},
			"Access: Apps and Policies Write"},
		{"account: user group", "/accounts/" + a0 + "/tokens", te.seed.AccountToken, []string{gAPITokensWrite}, map[string]string{user: "*"}, "API Tokens Write"},
		{"account via user parent: other account", "/accounts/" + a1 + "/tokens", te.seed.UserToken, []string{gOrgsRead}, map[string]string{acct(a0): "*"},
			"Access: Organizations, Identity Providers, and Groups Read"},
		{"account via user parent: that account", "/accounts/" + a1 + "/tokens", te.seed.UserToken, []string{gOrgsRead}, map[string]string{acct(a1): "*"}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env := te.do(t, "POST", tc.path, tc.tok, createBody(tc.name, tc.groups, tc.resources))
			if tc.wantGroup == "" {
				wantOK(t, env)
				return
			}
			checkFail(t, env, http.StatusBadRequest, 1001)
			if want := fmt.Sprintf(failed, tc.wantGroup); len(env.Errors) > 0 && env.Errors[0].Message != want {
				t.Errorf("message = %q, want %q", env.Errors[0].Message, want)
			}
		})
	}
}

func TestConditionSpellingsAndIPFilter(t *testing.T) {
	t.Parallel()
	te := mustServe(t)
	a0 := te.seed.AccountIDs[0]
	for _, key := range []string{"request_ip", "request.ip"} {
		t.Run(key, func(t *testing.T) {
			t.Parallel()
			b := createBody("ip "+key, []string{gOrgsRead}, map[string]string{acct(a0): "*"})
			b["condition"] = map[string]any{key: map[string]any{"in": []string{"192.0.2.0/24"}, "not_in": []string{"192.0.2.7/32"}}}
			tok := te.createUserToken(t, b)
			// Responses carry the current spelling.
			want := map[string]map[string][]string{"request_ip": {"in": {"192.0.2.0/24"}, "not_in": {"192.0.2.7/32"}}}
			if diff := cmp.Diff(want, tok.Condition); diff != "" {
				t.Errorf("condition (-want +got):\n%s", diff)
			}
			// The test client connects from 127.0.0.1, outside the condition.
			env := te.do(t, "GET", "/accounts/"+a0+"/access/organizations", tok.Value, nil)
			checkFail(t, env, http.StatusForbidden, 9109)
			if got := env.Errors[0].Message; got != "Cannot use the access token from location: 127.0.0.1" {
				t.Errorf("message = %q", got)
			}
			// Verify is exempt from IP filtering.
			wantOK(t, te.do(t, "GET", "/user/tokens/verify", tok.Value, nil))
		})
	}
	// An address inside the condition passes; one in not_in does not.
	for _, tc := range []struct {
		in, notIn []string
		allowed   bool
	}{
		{[]string{"127.0.0.0/8"}, nil, true},
		{[]string{"127.0.0.1"}, nil, true},
		{nil, []string{"127.0.0.1/32"}, false},
		{[]string{"127.0.0.0/8"}, []string{"127.0.0.1/32"}, false},
		{[]string{"::1/128"}, nil, false},
	} {
		b := createBody("ip", []string{gOrgsRead}, map[string]string{acct(a0): "*"})
		b["condition"] = map[string]any{"request_ip": map[string]any{"in": tc.in, "not_in": tc.notIn}}
		tok := te.createUserToken(t, b)
		env := te.do(t, "GET", "/accounts/"+a0+"/access/organizations", tok.Value, nil)
		if got := env.Status == http.StatusOK; got != tc.allowed {
			t.Errorf("in %v not_in %v: status %d, want allowed=%v", tc.in, tc.notIn, env.Status, tc.allowed)
		}
	}
	// Seeded AllowedIPs are enforced the same way.
	_, v := te.e.IssueUserToken(te.seed.UserID, emulator.TokenSpec{Name: "x", AllowedIPs: []string{"198.51.100.0/24"},
		Policies: []emulator.Policy{{Effect: "allow", PermissionGroups: []string{gAPITokensRead}, Resources: map[string]string{"com.cloudflare.api.user." + te.seed.UserID: "*"}}}})
	checkFail(t, te.do(t, "GET", "/user/tokens", v, nil), http.StatusForbidden, 9109)
}

func TestListPagination(t *testing.T) {
	t.Parallel()
	te := mustServe(t)
	a0 := te.seed.AccountIDs[0]
	var names []string
	names = append(names, "parent: Create Additional Tokens")
	for i := range 11 {
		n := fmt.Sprintf("t%02d", i)
		te.createUserToken(t, createBody(n, []string{gOrgsRead}, map[string]string{acct(a0): "*"}))
		names = append(names, n)
	}
	list := func(query string) ([]string, resultInfo) {
		t.Helper()
		env := wantOK(t, te.do(t, "GET", "/user/tokens"+query, te.seed.UserToken, nil))
		var toks []tokenOut
		decode(t, env, &toks)
		got := []string{}
		for _, tk := range toks {
			got = append(got, tk.Name)
		}
		if env.ResultInfo == nil {
			t.Fatalf("%s: no result_info", query)
		}
		return got, *env.ResultInfo
	}
	tests := []struct {
		query string
		want  []string
		info  resultInfo
	}{
		{"", names, resultInfo{Page: 1, PerPage: 20, Count: 12, TotalCount: 12}},
		{"?per_page=5", names[:5], resultInfo{1, 5, 5, 12}},
		{"?per_page=5&page=3", names[10:], resultInfo{3, 5, 2, 12}},
		{"?per_page=5&page=4", []string{}, resultInfo{4, 5, 0, 12}},
		{"?per_page=50&page=99", []string{}, resultInfo{99, 50, 0, 12}},
		{"?per_page=5&direction=desc", []string{names[11], names[10], names[9], names[8], names[7]}, resultInfo{1, 5, 5, 12}},
		{"?direction=asc&per_page=5&page=2", names[5:10], resultInfo{2, 5, 5, 12}},
	}
	for _, tc := range tests {
		got, info := list(tc.query)
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("%s names (-want +got):\n%s", tc.query, diff)
		}
		if diff := cmp.Diff(tc.info, info); diff != "" {
			t.Errorf("%s result_info (-want +got):\n%s", tc.query, diff)
		}
	}
	for _, q := range []string{"?per_page=4", "?per_page=51", "?per_page=x", "?page=0", "?page=-1", "?direction=up", "?include_expired=maybe"} {
		checkFail(t, te.do(t, "GET", "/user/tokens"+q, te.seed.UserToken, nil), http.StatusBadRequest, 1001)
	}
}

func TestIncludeExpired(t *testing.T) {
	t.Parallel()
	te := mustServe(t)
	a0 := te.seed.AccountIDs[0]
	b := createBody("short", []string{gOrgsRead}, map[string]string{acct(a0): "*"})
	b["expires_on"] = t0.Add(time.Hour).Format(time.RFC3339)
	short := te.createUserToken(t, b)
	count := func(q string) int {
		var toks []tokenOut
		decode(t, wantOK(t, te.do(t, "GET", "/user/tokens"+q, te.seed.UserToken, nil)), &toks)
		return len(toks)
	}
	if n := count(""); n != 2 {
		t.Fatalf("before expiry: %d tokens, want 2", n)
	}
	te.now.Advance(time.Hour) // expires_on is the first instant the token is no longer accepted
	if n := count(""); n != 1 {
		t.Errorf("after expiry, default: %d tokens, want 1 (expired left out)", n)
	}
	if n := count("?include_expired=false"); n != 1 {
		t.Errorf("include_expired=false: %d tokens, want 1", n)
	}
	if n := count("?include_expired=true"); n != 2 {
		t.Errorf("include_expired=true: %d tokens, want 2", n)
	}
	var got tokenOut
	decode(t, wantOK(t, te.do(t, "GET", "/user/tokens/"+short.ID, te.seed.UserToken, nil)), &got)
	if got.Status != "expired" {
		t.Errorf("status = %q, want expired", got.Status)
	}
}

func TestExpiryAndRevocation(t *testing.T) {
	t.Parallel()
	te := mustServe(t)
	a0 := te.seed.AccountIDs[0]
	b := createBody("child", []string{gOrgsRead}, map[string]string{acct(a0): "*"})
	b["expires_on"] = t0.Add(30 * time.Minute).Format(time.RFC3339)
	child := te.createUserToken(t, b)
	org := "/accounts/" + a0 + "/access/organizations"

	wantOK(t, te.do(t, "GET", org, child.Value, nil))
	wantOK(t, te.do(t, "GET", "/user/tokens/verify", child.Value, nil))

	te.now.Advance(30*time.Minute - time.Second)
	wantOK(t, te.do(t, "GET", org, child.Value, nil))

	te.now.Advance(time.Second)
	checkFail(t, te.do(t, "GET", org, child.Value, nil), http.StatusUnauthorized, 10000)
	checkFail(t, te.do(t, "GET", "/user/tokens/verify", child.Value, nil), http.StatusUnauthorized, 1000)
	if st := findToken(t, te.e, child.ID).Status; st != "expired" {
		t.Errorf("Tokens() status = %q, want expired", st)
	}

	// Revocation: a deleted parent stops working at once.
	wantOK(t, te.do(t, "DELETE", "/user/tokens/"+te.seed.UserTokenID, te.seed.UserToken, nil))
	checkFail(t, te.do(t, "GET", "/user/tokens", te.seed.UserToken, nil), http.StatusForbidden, 9109)
	checkFail(t, te.do(t, "GET", org, te.seed.UserToken, nil), http.StatusUnauthorized, 10000)
	checkFail(t, te.do(t, "GET", "/user/tokens/verify", te.seed.UserToken, nil), http.StatusUnauthorized, 1000)
	for _, tk := range te.e.Tokens() {
		if tk.ID == te.seed.UserTokenID {
			t.Errorf("deleted token still listed by Tokens()")
		}
	}
}

func TestNotBefore(t *testing.T) {
	t.Parallel()
	te := mustServe(t)
	a0 := te.seed.AccountIDs[0]
	b := createBody("later", []string{gOrgsRead}, map[string]string{acct(a0): "*"})
	b["not_before"] = t0.Add(time.Minute).Format(time.RFC3339)
	tok := te.createUserToken(t, b)
	org := "/accounts/" + a0 + "/access/organizations"
	checkFail(t, te.do(t, "GET", org, tok.Value, nil), http.StatusUnauthorized, 10000)
	te.now.Advance(time.Minute)
	wantOK(t, te.do(t, "GET", org, tok.Value, nil))
}

func findToken(tb testing.TB, e *emulator.Emulator, id string) emulator.Token {
	tb.Helper()
	for _, tk := range e.Tokens() {
		if tk.ID == id {
			return tk
		}
	}
	tb.Fatalf("token %s not found", id)
	return emulator.Token{}
}

func TestDates(t *testing.T) {
	t.Parallel()
	te := mustServe(t)
	// A clock with nanoseconds in another zone still yields whole-second UTC dates.
	te.e.SetNow(func() time.Time { return time.Date(2026, 11, 27, 21, 0, 0, 999_999_999, time.FixedZone("CET", 3600)) })
	b := createBody("dates", []string{gOrgsRead}, map[string]string{acct(te.seed.AccountIDs[0]): "*"})
	b["expires_on"] = "2026-11-28T02:00:00.75+01:00"
	tok := te.createUserToken(t, b)
	if tok.IssuedOn != "2026-11-27T20:00:00Z" || tok.ModifiedOn != tok.IssuedOn {
		t.Errorf("issued_on, modified_on = %q, %q, want 2026-11-27T20:00:00Z", tok.IssuedOn, tok.ModifiedOn)
	}
	if tok.ExpiresOn != "2026-11-28T01:00:00Z" {
		t.Errorf("expires_on = %q, want 2026-11-28T01:00:00Z", tok.ExpiresOn)
	}
	if got := findToken(t, te.e, tok.ID).ExpiresOn; !got.Equal(time.Date(2026, 11, 28, 1, 0, 0, 0, time.UTC)) {
		t.Errorf("Tokens() ExpiresOn = %v", got)
	}
}

func TestTokenValues(t *testing.T) {
	t.Parallel()
	te := mustServe(t)
	a0 := te.seed.AccountIDs[0]
	user := te.createUserToken(t, createBody("u", []string{gOrgsRead}, map[string]string{acct(a0): "*"}))
	var account tokenOut
	decode(t, wantOK(t, te.do(t, "POST", "/accounts/"+a0+"/tokens", te.seed.AccountToken,
		createBody("a", []string{gOrgsRead}, map[string]string{acct(a0): "*"}))), &account)
	format := regexp.MustCompile(`^cf(u|a)t_[A-Za-z0-9]{40}[0-9a-f]{8}$`)
	for _, tc := range []struct{ value, prefix string }{
		{user.Value, "cfut_"}, {account.Value, "cfat_"}, {te.seed.UserToken, "cfut_"}, {te.seed.AccountToken, "cfat_"},
	} {
		if !strings.HasPrefix(tc.value, tc.prefix) || !format.MatchString(tc.value) || !emulator.ValidTokenValue(tc.value) {
			t.Errorf("value %q: want %s + 40 alphanumerics + 8 hex checksum", tc.value, tc.prefix)
		}
	}
	// A flipped character breaks the checksum.
	bad := []byte(user.Value)
	bad[10] ^= 1
	if emulator.ValidTokenValue(string(bad)) {
		t.Errorf("ValidTokenValue accepts a corrupted value")
	}
	// The value is shown only by create.
	env := wantOK(t, te.do(t, "GET", "/user/tokens/"+user.ID, te.seed.UserToken, nil))
	var raw map[string]any
	decode(t, env, &raw)
	if _, ok := raw["value"]; ok {
		t.Errorf("GET returns the token value")
	}
}

func TestGetUpdateDeleteRoll(t *testing.T) {
	t.Parallel()
	te := mustServe(t)
	a0, a1 := te.seed.AccountIDs[0], te.seed.AccountIDs[1]
	tok := te.createUserToken(t, createBody("child", []string{gOrgsRead}, map[string]string{acct(a0): "*"}))

	// Unknown ids: 404 with code 1003; malformed ids: 404 with code 7003. Another owner's
	// token looks unknown.
	checkFail(t, te.do(t, "GET", "/user/tokens/"+strings.Repeat("0", 32), te.seed.UserToken, nil), http.StatusNotFound, 1003)
	checkFail(t, te.do(t, "DELETE", "/user/tokens/"+strings.Repeat("0", 32), te.seed.UserToken, nil), http.StatusNotFound, 1003)
	checkFail(t, te.do(t, "GET", "/user/tokens/not-an-id", te.seed.UserToken, nil), http.StatusNotFound, 7003)
	checkFail(t, te.do(t, "GET", "/accounts/"+a0+"/tokens/"+tok.ID, te.seed.AccountToken, nil), http.StatusNotFound, 1003)

	// Update: policies may carry their ids; status disabled makes the token unusable.
	upd := map[string]any{
		"name":   "renamed",
		"status": "disabled",
		"policies": []any{map[string]any{"id": tok.Policies[0].ID, "effect": "allow",
			"permission_groups": []any{map[string]any{"id": gOrgsWrite}}, "resources": map[string]any{acct(a1): "*"}}},
	}
	var got tokenOut
	decode(t, wantOK(t, te.do(t, "PUT", "/user/tokens/"+tok.ID, te.seed.UserToken, upd)), &got)
	if got.Name != "renamed" || got.Status != "disabled" || got.Policies[0].ID != tok.Policies[0].ID ||
		got.Policies[0].PermissionGroups[0].ID != gOrgsWrite {
		t.Errorf("updated token = %+v", got)
	}
	checkFail(t, te.do(t, "GET", "/user/tokens/verify", tok.Value, nil), http.StatusUnauthorized, 1000)
	upd["status"] = "active"
	wantOK(t, te.do(t, "PUT", "/user/tokens/"+tok.ID, te.seed.UserToken, upd))
	wantOK(t, te.do(t, "GET", "/user/tokens/verify", tok.Value, nil))
	// Update runs the same permission check.
	upd["policies"].([]any)[0].(map[string]any)["resources"] = map[string]any{acct(strings.Repeat("9", 32)): "*"}
	checkFail(t, te.do(t, "PUT", "/user/tokens/"+tok.ID, te.seed.UserToken, upd), http.StatusBadRequest, 1001)

	// Roll: the result is the bare new value; the old one stops working.
	env := wantOK(t, te.do(t, "PUT", "/user/tokens/"+tok.ID+"/value", te.seed.UserToken, "{}"))
	var newValue string
	decode(t, env, &newValue)
	if !emulator.ValidTokenValue(newValue) || newValue == tok.Value {
		t.Fatalf("rolled value = %q", newValue)
	}
	checkFail(t, te.do(t, "GET", "/user/tokens/verify", tok.Value, nil), http.StatusUnauthorized, 1000)
	wantOK(t, te.do(t, "GET", "/user/tokens/verify", newValue, nil))

	// Delete answers {id}; the value dies; a second delete is 404.
	env = wantOK(t, te.do(t, "DELETE", "/user/tokens/"+tok.ID, te.seed.UserToken, nil))
	var del map[string]any
	decode(t, env, &del)
	if diff := cmp.Diff(map[string]any{"id": tok.ID}, del); diff != "" {
		t.Errorf("delete result (-want +got):\n%s", diff)
	}
	checkFail(t, te.do(t, "GET", "/user/tokens/verify", newValue, nil), http.StatusUnauthorized, 1000)
	checkFail(t, te.do(t, "DELETE", "/user/tokens/"+tok.ID, te.seed.UserToken, "{}"), http.StatusNotFound, 1003)
}

func TestPermissionGroups(t *testing.T) {
	t.Parallel()
	te := mustServe(t)
	a0 := te.seed.AccountIDs[0]
	type group struct {
		ID       string   `json:"id"`
		Name     string   `json:"name"`
		Scopes   []string `json:"scopes"`
		Category string   `json:"category"`
	}
	list := func(path, tok string) []group {
		t.Helper()
		var gs []group
		decode(t, wantOK(t, te.do(t, "GET", path, tok, nil)), &gs)
		return gs
	}
	all := list("/user/tokens/permission_groups", te.seed.UserToken)
	byID := map[string]group{}
	for _, g := range all {
		byID[g.ID] = g
	}
	// Facts from reference/cloudflare/access-permission-groups.json.
	for id, want := range map[string]struct{ name, scope string }{
		gAPITokensRead:         {"API Tokens Read", "com.cloudflare.api.user"},
		gAPITokensWrite:        {"API Tokens Write", "com.cloudflare.api.user"},
		gAccountAPITokensRead:  {"Account API Tokens Read", "com.cloudflare.api.account"},
		gAccountAPITokensWrite: {"Account API Tokens Write", "com.cloudflare.api.account"},
		gOrgsRead:              {"Access: Organizations, Identity Providers, and Groups Read", "com.cloudflare.api.account"},
		gOrgsWrite:             {"Access: Organizations, Identity Providers, and Groups Write", "com.cloudflare.api.account"},
		gAppsRead:              {"Access: Apps and Policies Read", "com.cloudflare.api.account"},
		gAppsWrite:             {"Access: Apps and Policies Write", "com.cloudflare.api.account"},
		gAppsReadZone:          {"Access: Apps and Policies Read", "com.cloudflare.api.account.zone"},
		gAppsWriteZone:         {"Access: Apps and Policies Write", "com.cloudflare.api.account.zone"},
		gServiceTokensRead:     {"Access: Service Tokens Read", "com.cloudflare.api.account"},
		gServiceTokensWrite:    {"Access: Service Tokens Write", "com.cloudflare.api.account"},
		gAuditLogsRead:         {"Access: Audit Logs Read", "com.cloudflare.api.account"},
	} {
		g, ok := byID[id]
		if !ok || g.Name != want.name || !cmp.Equal(g.Scopes, []string{want.scope}) {
			t.Errorf("group %s = %+v, want %q %q", id, g, want.name, want.scope)
		}
	}
	for _, name := range []string{"DNS Read", "DNS Write", "Workers Scripts Read", "Workers Scripts Write", "Account Settings Read"} {
		found := false
		for _, g := range all {
			found = found || g.Name == name
		}
		if !found {
			t.Errorf("catalogue lacks filler group %q", name)
		}
	}

	// Filters: name (URL-encoded) and scope.
	twins := list("/user/tokens/permission_groups?name=Access%3A+Apps+and+Policies+Write", te.seed.UserToken)
	if len(twins) != 2 {
		t.Errorf("name filter: %d groups, want the account and zone twins", len(twins))
	}
	acctOnly := list("/user/tokens/permission_groups?name=Access%3A%20Apps%20and%20Policies%20Write&scope=com.cloudflare.api.account", te.seed.UserToken)
	if len(acctOnly) != 1 || acctOnly[0].ID != gAppsWrite {
		t.Errorf("name+scope filter = %+v, want only %s", acctOnly, gAppsWrite)
	}
	for _, g := range list("/user/tokens/permission_groups?scope=com.cloudflare.api.user", te.seed.UserToken) {
		if !cmp.Equal(g.Scopes, []string{"com.cloudflare.api.user"}) {
			t.Errorf("scope filter returned %+v", g)
		}
	}
	// The account endpoint serves the account's token groups, without user-scoped ones.
	for _, g := range list("/accounts/"+a0+"/tokens/permission_groups", te.seed.AccountToken) {
		if cmp.Equal(g.Scopes, []string{"com.cloudflare.api.user"}) {
			t.Errorf("account permission groups include user group %q", g.Name)
		}
	}
}

func TestQuota(t *testing.T) {
	t.Parallel()
	te := mustServe(t) // the real limits: 50 user tokens per user
	a0 := te.seed.AccountIDs[0]
	b := createBody("q", []string{gOrgsRead}, map[string]string{acct(a0): "*"})
	b["expires_on"] = t0.Add(time.Minute).Format(time.RFC3339)
	var last tokenOut
	for range 49 { // the parent is the 50th
		last = te.createUserToken(t, b)
	}
	env := te.do(t, "POST", "/user/tokens", te.seed.UserToken, b)
	checkFail(t, env, http.StatusBadRequest, 1005)
	if !strings.Contains(env.Errors[0].Message, "50") {
		t.Errorf("quota message %q does not say the limit", env.Errors[0].Message)
	}
	// Expired tokens still count until deleted.
	te.now.Advance(time.Hour)
	checkFail(t, te.do(t, "POST", "/user/tokens", te.seed.UserToken, b), http.StatusBadRequest, 1005)
	wantOK(t, te.do(t, "DELETE", "/user/tokens/"+last.ID, te.seed.UserToken, nil))
	delete(b, "expires_on")
	wantOK(t, te.do(t, "POST", "/user/tokens", te.seed.UserToken, b))

	// Accounts have their own quota (500 by default; lowered here to keep the test short).
	te.e.SetLimits(emulator.Limits{UserTokenQuota: 50, AccountTokenQuota: 3, RateLimit: 1200, RateWindow: 5 * time.Minute})
	for range 2 { // the account parent is the first
		wantOK(t, te.do(t, "POST", "/accounts/"+a0+"/tokens", te.seed.AccountToken, b))
	}
	env = te.do(t, "POST", "/accounts/"+a0+"/tokens", te.seed.AccountToken, b)
	checkFail(t, env, http.StatusBadRequest, 1005)
	if !strings.Contains(env.Errors[0].Message, "3") {
		t.Errorf("quota message %q does not say the limit", env.Errors[0].Message)
	}
}

func TestRateLimit(t *testing.T) {
	t.Parallel()
	te := mustServe(t) // the real limit: 1200 requests per 5 minutes per token
	for i := range 1200 {
		env := te.do(t, "GET", "/user/tokens/verify", te.seed.UserToken, nil)
		if env.Status != http.StatusOK {
			t.Fatalf("request %d: status %d", i+1, env.Status)
		}
	}
	te.now.Advance(2 * time.Minute)
	env := te.do(t, "GET", "/user/tokens", te.seed.UserToken, nil)
	checkFail(t, env, http.StatusTooManyRequests, 971)
	if got := env.Errors[0].Message; got != "Please wait and consider throttling your request speed" {
		t.Errorf("message = %q", got)
	}
	// The first request leaves the window 5 minutes after it was made: 3 minutes from now.
	if got := env.Header.Get("Retry-After"); got != "180" {
		t.Errorf("Retry-After = %q, want 180", got)
	}
	if got := env.Header.Get("Ratelimit"); got != `"default";r=0;t=180` {
		t.Errorf("Ratelimit = %q", got)
	}
	// The limit is per token: the account parent is unaffected.
	wantOK(t, te.do(t, "GET", "/accounts/"+te.seed.AccountIDs[0]+"/tokens", te.seed.AccountToken, nil))
	te.now.Advance(3 * time.Minute)
	env = wantOK(t, te.do(t, "GET", "/user/tokens", te.seed.UserToken, nil))
	if got := env.Header.Get("Retry-After"); got != "" {
		t.Errorf("Retry-After on a 200: %q", got)
	}
	if got := env.Header.Get("Ratelimit"); got != `"default";r=1199;t=300` {
		t.Errorf("Ratelimit = %q", got)
	}

	// RateLimit 0 turns the limiter off.
	te.e.SetLimits(emulator.Limits{UserTokenQuota: 50, AccountTokenQuota: 500})
	for range 3 {
		wantOK(t, te.do(t, "GET", "/user/tokens/verify", te.seed.UserToken, nil))
	}
}

func TestRateLimitSmallWindow(t *testing.T) {
	t.Parallel()
	te := mustServe(t)
	te.e.SetLimits(emulator.Limits{UserTokenQuota: 50, AccountTokenQuota: 500, RateLimit: 2, RateWindow: 10 * time.Second})
	wantOK(t, te.do(t, "GET", "/user/tokens", te.seed.UserToken, nil))
	te.now.Advance(1500 * time.Millisecond)
	wantOK(t, te.do(t, "GET", "/user/tokens", te.seed.UserToken, nil))
	env := te.do(t, "GET", "/user/tokens", te.seed.UserToken, nil)
	checkFail(t, env, http.StatusTooManyRequests, 971)
	if got, _ := strconv.Atoi(env.Header.Get("Retry-After")); got != 9 {
		t.Errorf("Retry-After = %q, want 9", env.Header.Get("Retry-After"))
	}
	if got := env.Header.Get("Ratelimit-Policy"); got != `"default";q=2;w=10` {
		t.Errorf("Ratelimit-Policy = %q", got)
	}
}

func TestTraceAndUnknownRoute(t *testing.T) {
	t.Parallel()
	e := emulator.New()
	srv := newServer(t, e)
	res, err := srv.Client().Get(srv.URL + "/cdn-cgi/trace")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body := readAll(t, res)
	for _, line := range []string{"ip=127.0.0.1\n", "h=" + strings.TrimPrefix(srv.URL, "http://") + "\n", "visit_scheme=http\n"} {
		if !strings.Contains(body, line) {
			t.Errorf("trace lacks %q:\n%s", line, body)
		}
	}
	for _, key := range []string{"fl=", "ts=", "colo=", "http=", "loc=", "tls="} {
		if !regexp.MustCompile(`(?m)^` + key + `\S+$`).MatchString(body) {
			t.Errorf("trace lacks %s…:\n%s", key, body)
		}
	}
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("Content-Type = %q", ct)
	}

	// An unknown route answers a Cloudflare-shaped 404 and is recorded.
	env := doWith(t, srv.Client(), "GET", srv.URL+emulator.BasePath+"/zones", "", false, nil)
	checkFail(t, env, http.StatusNotFound, 7000)
	env = doWith(t, srv.Client(), "PATCH", srv.URL+emulator.BasePath+"/user/tokens", "", false, nil)
	checkFail(t, env, http.StatusNotFound, 7000)
	un := e.Unhandled()
	if len(un) != 2 || un[0].Path != "/client/v4/zones" || un[1].Method != "PATCH" || un[0].Status != 404 {
		t.Errorf("Unhandled() = %+v", un)
	}
	reqs := e.Requests()
	if len(reqs) != 3 || reqs[0].Route != "GET /cdn-cgi/trace" || reqs[0].Status != 200 {
		t.Errorf("Requests() = %+v", reqs)
	}
}
