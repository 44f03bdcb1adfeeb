package broker_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"unicode"

	"github.com/cf-scoped-token/cf-scoped-token/internal/broker"
	"github.com/cf-scoped-token/cf-scoped-token/internal/retry"
	"github.com/cf-scoped-token/cf-scoped-token/internal/token"
)

// FuzzExchangeAnswer feeds any body, under any status, to the client's
// reading of an exchange answer: the job believes what it is told only if
// it is shaped as the broker answers (a token, a 32-hex id, an RFC 3339
// expiry, 32-hex account and group ids, an owner, one CIDR an allowed IP),
// it never panics, and no error it returns carries a control character or
// the token it was given — the text reaches the job's log and annotations.
func FuzzExchangeAnswer(f *testing.F) {
	const good = `{"access_token":"cfut_Ab3dEf6hIj9kLmNoPqRsTuVwXyZ0123456789abcd","issued_token_type":"urn:ietf:params:oauth:token-type:access_token",` +
		`"token_type":"Bearer","expires_in":900,"scope":"apps-and-policies:write","token_id":"0123456789abcdef0123456789abcdef",` +
		`"expires_at":"2026-11-27T20:15:00Z","name":"cf-scoped-token-x","owner":"account","account_ids":["fedcba9876543210fedcba9876543210"],` +
		`"permission_groups":[{"id":"1e13c5124ca64b72b1969a67e8829049","name":"Access: Apps and Policies Write"}],"allowed_ips":["203.0.113.7/32"],"rule":"access-deploy"}`
	f.Add(200, []byte(good))
	f.Add(200, []byte(strings.Replace(good, `"rule":"access-deploy"`, `"rule":"a\n::stop-commands::x"`, 1)))
	f.Add(200, []byte(strings.Replace(good, `fedcba9876543210fedcba9876543210`, `x\r\n::error::y`, 1)))
	f.Add(200, []byte(`null`))
	f.Add(200, []byte(`{"access_token":"cfut_x\n::add-mask::"}`))
	f.Add(400, []byte(`{"error":"invalid_grant","error_description":"a\r\n::error::b"}`))
	f.Add(429, []byte(`{"error":"slow_down\u0000"}`))
	f.Add(503, []byte(`<html>`))

	var status int
	var body []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write(body)
	}))
	defer srv.Close()
	c := &broker.Client{BaseURL: srv.URL, HTTP: srv.Client(), Retry: retry.Policy{Attempts: 1, Sleep: noWait}}

	f.Fuzz(func(t *testing.T, st int, b []byte) {
		if st < 200 || st > 599 || st >= 300 && st < 400 || len(b) > 1<<20 {
			t.Skip() // a redirect is refused before its body is read
		}
		status, body = st, b
		var sent struct {
			AccessToken string `json:"access_token"`
		}
		_ = json.Unmarshal(b, &sent)
		g, err := c.Exchange(t.Context(), token.NewSecret("a.b.c"), broker.ExchangeRequest{})
		if err != nil {
			msg := err.Error()
			if strings.ContainsFunc(msg, unicode.IsControl) {
				t.Fatalf("the error carries a control character: %q", msg)
			}
			// Only a value shaped like a token: a short or plain one ("answered")
			// may stand in the message's own words.
			if token.LooksLikeSecret(sent.AccessToken) && strings.Contains(msg, sent.AccessToken) {
				t.Fatal("the error shows the access_token of the answer")
			}
			return
		}
		if st != http.StatusOK || g.Token.IsZero() || !token.IsHexID(g.TokenID) || g.ExpiresAt.IsZero() {
			t.Fatalf("a %d answer taken for a token: id %q, expires %v", st, g.TokenID, g.ExpiresAt)
		}
		if g.Owner != "" && g.Owner != token.OwnerUser && g.Owner != token.OwnerAccount {
			t.Fatalf("owner %q", g.Owner)
		}
		for _, a := range g.AccountIDs {
			if !token.IsHexID(a) {
				t.Fatalf("account id %q", a)
			}
		}
		for _, pg := range g.PermissionGroups {
			if !token.IsHexID(pg.ID) {
				t.Fatalf("permission group id %q", pg.ID)
			}
		}
		for _, ip := range g.AllowedIPs {
			if got, _, err := token.ParseAllowedIPs(ip); err != nil || len(got) != 1 {
				t.Fatalf("allowed ip %q", ip)
			}
		}
	})
}
