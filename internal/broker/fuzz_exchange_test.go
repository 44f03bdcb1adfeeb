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
	"github.com/cf-scoped-token/cf-scoped-token/internal/token"
)

// FuzzExchangeForm sends the broker exchanges of a good OIDC token with
// any scope, account_ids, ttl and allowed_ips: every answer is JSON and
// no-store; a refusal names its fault in a description without a control
// character or the OIDC token; a grant never exceeds the policy's rule
// (its accounts, two hours, and permission groups the rule's scopes
// allow: Apps and Policies Write or Read, Organizations Read) — whatever
// the job asks, it gets what the rule allows or nothing. A handler panic would show as a broken connection.
func FuzzExchangeForm(f *testing.F) {
	for _, s := range [][4]string{
		{"", "", "", ""},
		{"apps-and-policies:write", emulator.SeedAccount1, "15m", "caller"},
		{"organizations:read apps-and-policies", emulator.SeedAccount2 + "," + emulator.SeedAccount1, "2h", "203.0.113.0/24"},
		{"Account API Tokens:write", "", "", ""},
		{"apps-and-policies:write", "fedcba9876543210fedcba9876543210", "25h", "runner"},
		{"a\n::error::b", "x\r\ny", "1 hour", "0.0.0.0/0 ::/0"},
		{"\"Access: Apps and Policies\":read", emulator.SeedAccount1, "-1m", "caller,caller"},
		{"organizations:write", "", "", ""},
	} {
		f.Add(s[0], s[1], s[2], s[3])
	}
	// No rate limit: every input should reach the checks, not a 429.
	w := mustWorld(f, withConfig(func(c *broker.Config) { c.RateLimit, c.Burst = rate.Inf, 1 }))
	allowed := []string{emulator.SeedAccount1, emulator.SeedAccount2}
	groups := ruleGroups(f, w, "Access: Apps and Policies Write", "Access: Apps and Policies Read",
		"Access: Organizations, Identity Providers, and Groups Read")
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
			AccountIDs       []string `json:"account_ids"`
			ExpiresIn        int64    `json:"expires_in"`
			Rule             string   `json:"rule"`
			PermissionGroups []struct {
				ID   string `json:"id"`
				Name string `json:"name"`
			} `json:"permission_groups"`
		}
		if err := json.Unmarshal(body, &g); err != nil {
			t.Fatalf("200 answer is not JSON: %v", err)
		}
		if g.Rule != "access-deploy" || len(g.AccountIDs) == 0 || len(g.PermissionGroups) == 0 || g.ExpiresIn <= 0 || time.Duration(g.ExpiresIn)*time.Second > 2*time.Hour {
			t.Fatalf("granted beyond the rule: %+v", g)
		}
		for _, a := range g.AccountIDs {
			if !slices.Contains(allowed, a) {
				t.Fatalf("granted account %s, which the rule does not name", a)
			}
		}
		for _, pg := range g.PermissionGroups {
			if !slices.Contains(groups, pg.ID) {
				t.Fatalf("granted permission group %s (%q), which the rule's scopes do not allow", pg.ID, pg.Name)
			}
		}
	})
}

// ruleGroups looks up the ids of the account-scoped permission groups of
// the given names in the catalogue the emulator serves (a zone-scoped twin
// of a name has another id, which no grant of the rule holds).
func ruleGroups(tb testing.TB, w *world, names ...string) []string {
	tb.Helper()
	all, err := w.cf.PermissionGroups(tb.Context(), token.Endpoint{})
	if err != nil {
		tb.Fatal(err)
	}
	var ids []string
	for _, name := range names {
		i := slices.IndexFunc(all, func(g token.PermissionGroup) bool {
			return g.Name == name && slices.Contains(g.Scopes, token.AccountScope)
		})
		if i < 0 {
			tb.Fatalf("the catalogue has no account-scoped group %q", name)
		}
		ids = append(ids, all[i].ID)
	}
	return ids
}
