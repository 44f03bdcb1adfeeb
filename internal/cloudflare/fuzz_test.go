package cloudflare

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/cf-scoped-token/cf-scoped-token/internal/retry"
	"github.com/cf-scoped-token/cf-scoped-token/internal/token"
)

// FuzzAnswers feeds any body, under any status, to the client's decoding of
// a create, a get, a list and a permission-group answer: it must never
// panic, anything it returns as a success must be shaped as a real answer
// (token, account and group ids of 32 lowercase hex — an account may be
// "*" —, token-shaped values), and no error it returns may carry a control
// character — its text reaches logs and annotations, where a newline starts
// a workflow command.
func FuzzAnswers(f *testing.F) {
	for _, name := range []string{"created.json", "token.json", "list.json", "errors_several.json", "rate_limited.json",
		"success_result_null.json", "result_null.json", "bad_gateway.html", "permission_groups.json"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(200, b)
		f.Add(400, b)
	}
	f.Add(200, []byte(`{"success":true,"result":{"id":"ed17574386854bf78a67040be0a770b0\n::stop-commands::x","value":"v"}}`))
	f.Add(500, []byte(`{"success":false,"errors":[{"code":1,"message":"a\r\n::error::b"}]}`))
	f.Add(200, []byte("{\"result\":[{\"id\":\"\x00\"}]}"))
	f.Add(200, []byte("null")) // the SDK's list calls give no page and no error
	f.Add(200, []byte(`{"success":true,"result":{"id":"ed17574386854bf78a67040be0a770b0","policies":[{"effect":"allow",`+
		`"resources":{"com.cloudflare.api.account.x\n::error::y":"*"},"permission_groups":[{"id":"../x"}]}]}}`))

	var body []byte
	var status int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write(body)
	}))
	defer srv.Close()
	c := &Client{BaseURL: srv.URL + "/client/v4", HTTP: srv.Client(), Token: token.NewSecret(parentValue),
		Retry: retry.Policy{Attempts: 1, Sleep: func(context.Context, time.Duration) error { return nil }}}

	f.Fuzz(func(t *testing.T, st int, b []byte) {
		if st < 200 || st > 599 || len(b) > 1<<20 {
			t.Skip()
		}
		status, body = st, b
		ctx := t.Context()
		check := func(what string, err error) {
			t.Helper()
			if err != nil && strings.ContainsFunc(err.Error(), unicode.IsControl) {
				t.Fatalf("%s: the error carries a control character: %q", what, err)
			}
		}
		// hexID fails the test on an id no real answer holds.
		hexID := func(what, kind, id string) {
			t.Helper()
			if !token.IsHexID(id) {
				t.Fatalf("%s returned the %s id %q", what, kind, id)
			}
		}
		// shaped fails the test on an account or group id no real answer holds.
		shaped := func(what string, i token.Info) {
			t.Helper()
			for _, a := range i.AccountIDs {
				if a != "*" {
					hexID(what, "account", a)
				}
			}
			for _, g := range i.Groups {
				hexID(what, "permission group", g.ID)
			}
		}
		created, err := c.CreateToken(ctx, token.Endpoint{}, token.Spec{Name: "cf-scoped-token fuzz",
			Policies: []token.Policy{token.AllowPolicy([]string{"0a1b2c3d4e5f60718293a4b5c6d7e8f9"}, []string{gAppsRead})}})
		check("create", err)
		if err == nil && (!token.IsHexID(created.ID) || !validValue(created.Value.Reveal())) {
			t.Fatalf("create returned an answer no real API gives: id %q", created.ID)
		}
		shaped("create", created.Info)
		if err != nil && st < 300 && !errors.Is(err, token.ErrBadAnswer) && !errors.Is(err, token.ErrOutcomeUnknown) {
			t.Fatalf("create answered %d that could not be used is %v, want ErrBadAnswer (the token may exist)", st, err)
		}
		got, err := c.GetToken(ctx, token.Endpoint{}, tokenID)
		check("get", err)
		if err == nil && got.ID != tokenID {
			t.Fatalf("get returned another token: %q", got.ID)
		}
		shaped("get", got)
		list, err := c.ListTokens(ctx, token.Endpoint{})
		check("list", err)
		for _, i := range list {
			hexID("list", "token", i.ID)
			shaped("list", i)
		}
		groups, err := c.PermissionGroups(ctx, token.Endpoint{})
		check("permission groups", err)
		for _, g := range groups {
			hexID("permission groups", "permission group", g.ID)
		}
	})
}
