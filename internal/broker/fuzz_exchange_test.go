package broker_test

import (
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode"

	"golang.org/x/time/rate"

	"github.com/cf-scoped-token/cf-scoped-token/internal/broker"
	"github.com/cf-scoped-token/cf-scoped-token/internal/broker/brokertest"
	"github.com/cf-scoped-token/cf-scoped-token/internal/emulator"
)

// FuzzExchangeForm sends the broker exchanges of a good OIDC token with
// any scope, account_ids, ttl and allowed_ips: every answer is JSON and
// no-store; a refusal names its fault in a description without a control
// character or the OIDC token; a grant never exceeds the policy's rule
// (its accounts, two hours) — whatever the job asks, it gets what the rule
// allows or nothing. A handler panic would show as a broken connection.
func FuzzExchangeForm(f *testing.F) {
	for _, s := range [][4]string{
		{"", "", "", ""},
		{"apps-and-policies:write", emulator.SeedAccount1, "15m", "caller"},
		{"organizations:read apps-and-policies", emulator.SeedAccount2 + "," + emulator.SeedAccount1, "2h", "203.0.113.0/24"},
		{"Account API Tokens:write", "", "", ""},
		{"apps-and-policies:write", "fedcba9876543210fedcba9876543210", "25h", "runner"},
		{"a\n::error::b", "x\r\ny", "1 hour", "0.0.0.0/0 ::/0"},
		{"\"Access: Apps and Policies\":read", emulator.SeedAccount1, "-1m", "caller,caller"},
	} {
		f.Add(s[0], s[1], s[2], s[3])
	}
	// No rate limit: every input should reach the checks, not a 429.
	w := mustWorld(f, withConfig(func(c *broker.Config) { c.RateLimit, c.Burst = rate.Inf, 1 }))
	allowed := []string{emulator.SeedAccount1, emulator.SeedAccount2}
	f.Fuzz(func(t *testing.T, scope, accounts, ttl, ips string) {
		jwt := w.jwt(t, nil)
		form := brokertest.Form(jwt, "scope", scope, "account_ids", accounts, "ttl", ttl, "allowed_ips", ips)
		res, err := w.srv.Client().PostForm(w.srv.URL+"/v1/token", form)
		if err != nil {
			t.Fatalf("no answer: %v", err)
		}
		defer res.Body.Close()
		body, err := io.ReadAll(res.Body)
		if err != nil {
			t.Fatal(err)
		}
		if res.Header.Get("Cache-Control") != "no-store" || !strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
			t.Fatalf("%d answer with Cache-Control %q, Content-Type %q", res.StatusCode, res.Header.Get("Cache-Control"), res.Header.Get("Content-Type"))
		}
		if strings.Contains(string(body), jwt) {
			t.Fatal("the answer holds the OIDC token")
		}
		if res.StatusCode != http.StatusOK {
			var e struct {
				Error       string `json:"error"`
				Description string `json:"error_description"`
			}
			if err := json.Unmarshal(body, &e); err != nil || e.Error == "" {
				t.Fatalf("%d answer is not an OAuth error: %q", res.StatusCode, body)
			}
			if strings.ContainsFunc(e.Error+e.Description, unicode.IsControl) {
				t.Fatalf("the error carries a control character: %q", body)
			}
			return
		}
		var g struct {
			AccountIDs []string `json:"account_ids"`
			ExpiresIn  int64    `json:"expires_in"`
			Rule       string   `json:"rule"`
		}
		if err := json.Unmarshal(body, &g); err != nil {
			t.Fatalf("200 answer is not JSON: %v", err)
		}
		if g.Rule != "access-deploy" || len(g.AccountIDs) == 0 || g.ExpiresIn <= 0 || time.Duration(g.ExpiresIn)*time.Second > 2*time.Hour {
			t.Fatalf("granted beyond the rule: %+v", g)
		}
		for _, a := range g.AccountIDs {
			if !slices.Contains(allowed, a) {
				t.Fatalf("granted account %s, which the rule does not name", a)
			}
		}
	})
}
