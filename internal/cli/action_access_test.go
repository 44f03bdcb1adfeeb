package cli_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cf-scoped-token/cf-scoped-token/internal/ghaction/ghactiontest"
)

// access calls an Access endpoint of the emulator with a token and
// returns the status and the first Cloudflare error code.
func (w *world) access(t *testing.T, tok, method, path, body string) (int, int) {
	t.Helper()
	req, err := http.NewRequest(method, w.apiURL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var env struct {
		Errors []struct{ Code int } `json:"errors"`
	}
	_ = json.NewDecoder(res.Body).Decode(&env)
	code := 0
	if len(env.Errors) > 0 {
		code = env.Errors[0].Code
	}
	return res.StatusCode, code
}

// TestAction_ChildTokenDoesExactlyWhatWasAsked uses the action's token on
// the Access endpoints: allowed exactly where its scopes, level and
// accounts say, refused everywhere else, and refused once revoked.
func TestAction_ChildTokenDoesExactlyWhatWasAsked(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	a, b, c := w.seeded.AccountIDs[0], w.seeded.AccountIDs[1], w.seeded.AccountIDs[2]
	ctx := context.Background()
	step := ghactiontest.Step{With: w.with("account-ids", a+" "+b, "scopes", "apps-and-policies:write, organizations")}
	main := w.mustRunMain(t, step)
	child := main.Outputs["token"]
	const group = `{"name":"ops","include":[{"everyone":{}}]}`
	const app = `{"name":"wiki","domain":"wiki.example.com"}`
	cases := []struct {
		method, path, body string
		allowed            bool
	}{
		{"GET", "/accounts/" + a + "/access/groups", "", true},                     // organizations: read
		{"GET", "/accounts/" + a + "/access/identity_providers", "", true},         // same area
		{"GET", "/accounts/" + a + "/access/organizations", "", true},              // same area
		{"POST", "/accounts/" + a + "/access/groups", group, false},                // read only
		{"PUT", "/accounts/" + a + "/access/organizations", `{"name":"x"}`, false}, // read only
		{"GET", "/accounts/" + a + "/access/apps", "", true},                       // write implies read
		{"POST", "/accounts/" + a + "/access/apps", app, true},                     // apps and policies: write
		{"GET", "/accounts/" + a + "/access/policies", "", true},                   // same area
		{"POST", "/accounts/" + b + "/access/apps", app, true},                     // second account
		{"GET", "/accounts/" + a + "/access/service_tokens", "", false},            // never asked for
		{"POST", "/accounts/" + a + "/access/service_tokens", `{"name":"x"}`, false},
		{"GET", "/accounts/" + c + "/access/apps", "", false}, // not its account
		{"GET", "/accounts/" + c + "/access/groups", "", false},
	}
	for _, tc := range cases {
		status, code := w.access(t, child, tc.method, tc.path, tc.body)
		allowed := status >= 200 && status < 300
		if allowed != tc.allowed {
			t.Errorf("%s %s: status %d (code %d), want allowed=%v", tc.method, tc.path, status, code, tc.allowed)
		}
		if !allowed && !(status == http.StatusForbidden && code == 10000) {
			t.Errorf("%s %s: refused with %d code %d, want 403 code 10000 (lacking permission)", tc.method, tc.path, status, code)
		}
	}

	post := w.runner.RunPost(ctx, step, main.State)
	(&ghactiontest.Job{Main: main, Post: post}).AssertNoLeaks(t, w.seeded.UserToken, child)
	if post.Failed {
		t.Fatalf("post failed:\n%s", post.Log)
	}
	if status, _ := w.access(t, child, "GET", "/accounts/"+a+"/access/groups", ""); status != http.StatusUnauthorized && status != http.StatusForbidden {
		t.Errorf("after post the token still works: status %d", status)
	}
}

// TestAction_ChildTokenDiesAtItsExpiry: with revoke: false nothing
// deletes the token, and it is refused once its ttl has run out.
func TestAction_ChildTokenDiesAtItsExpiry(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	job := w.run(t, w.with("account-ids", w.seeded.AccountIDs[0], "ttl", "10m", "revoke", "false"))
	if job.Main.Failed {
		t.Fatalf("main failed:\n%s", job.Main.Log)
	}
	child, path := job.Main.Outputs["token"], "/accounts/"+w.seeded.AccountIDs[0]+"/access/groups"
	if status, _ := w.access(t, child, "GET", path, ""); status != http.StatusOK {
		t.Fatalf("fresh token refused: %d", status)
	}
	later := time.Now().Add(11 * time.Minute)
	w.e.SetNow(func() time.Time { return later })
	if status, _ := w.access(t, child, "GET", path, ""); status != http.StatusUnauthorized && status != http.StatusForbidden {
		t.Errorf("token past its ttl answered %d, want refused", status)
	}
}

// TestAction_AllowedIPs: the IP condition is sent and enforced; "runner"
// stands for the address /cdn-cgi/trace reports (loopback here).
func TestAction_AllowedIPs(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		allowed string
		want    []string
		works   bool
	}{
		{"runner", []string{"127.0.0.1/32"}, true},
		{"10.0.0.0/8, 192.0.2.7", []string{"10.0.0.0/8", "192.0.2.7/32"}, false},
	} {
		t.Run(tc.allowed, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t)
			ctx := context.Background()
			step := ghactiontest.Step{With: w.with("account-ids", w.seeded.AccountIDs[0], "allowed-ips", tc.allowed)}
			main := w.mustRunMain(t, step) // verify is exempt from IP filtering, so it passes either way
			live := w.children()
			if len(live) != 1 || strings.Join(live[0].AllowedIPs, ",") != strings.Join(tc.want, ",") {
				t.Fatalf("condition request_ip.in = %v, want %v", live, tc.want)
			}
			status, code := w.access(t, main.Outputs["token"], "GET", "/accounts/"+w.seeded.AccountIDs[0]+"/access/groups", "")
			if works := status == http.StatusOK; works != tc.works {
				t.Errorf("use from 127.0.0.1: status %d code %d, want works=%v", status, code, tc.works)
			}
			if !tc.works && code != 9109 {
				t.Errorf("refused with code %d, want 9109 (location)", code)
			}
			post := w.runner.RunPost(ctx, step, main.State)
			if post.Failed || len(w.children()) != 0 {
				t.Errorf("post failed or left the token:\n%s", post.Log)
			}
		})
	}
}
