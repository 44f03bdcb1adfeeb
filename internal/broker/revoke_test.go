package broker_test

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cf-scoped-token/cf-scoped-token/internal/broker"
	"github.com/cf-scoped-token/cf-scoped-token/internal/broker/brokertest"
	"github.com/cf-scoped-token/cf-scoped-token/internal/emulator"
	"github.com/cf-scoped-token/cf-scoped-token/internal/mint"
	"github.com/cf-scoped-token/cf-scoped-token/internal/token"
)

func (w *world) alive(id string) bool {
	return slices.ContainsFunc(w.e.Tokens(), func(t emulator.Token) bool { return t.ID == id })
}

func TestRevokeOwnToken(t *testing.T) {
	t.Parallel()
	for _, repo := range []string{repoID, "777"} { // user-owned, account-owned
		w := mustWorld(t)
		g := w.mustExchange(t, map[string]any{"repository_id": repo})
		if err := w.client.Revoke(t.Context(), g.Token); err != nil {
			t.Fatalf("%s: revoke: %v", g.Owner, err)
		}
		if w.alive(g.TokenID) {
			t.Errorf("%s: token %s still exists after revoke", g.Owner, g.TokenID)
		}
		assertAccess(t, w, g.Token, emulator.SeedAccount1, http.StatusUnauthorized)
		e := w.audit.Entries(t)
		last := e[len(e)-1]
		if last.Event != broker.EventRevoke || last.Outcome != "deleted" || last.TokenID != g.TokenID || last.Owner != string(g.Owner) {
			t.Errorf("%s: audit %+v", g.Owner, last)
		}
		// Revoking it again: 200, nothing left to delete.
		if err := w.client.Revoke(t.Context(), g.Token); err != nil {
			t.Errorf("%s: second revoke: %v", g.Owner, err)
		}
	}
}

// TestRevokeOnlyOwnTokens: a token of the same parent made by the action
// or the CLI, and one made by another broker (another parent of the same
// user), answer 200 and stay.
func TestRevokeOnlyOwnTokens(t *testing.T) {
	t.Parallel()
	w := mustWorld(t)
	// The action's naming: the prefix and a plain random suffix.
	m := &mint.Minter{API: w.cf, Now: time.Now}
	actions, err := m.Mint(t.Context(), token.Request{
		Owner: token.OwnerUser, AccountIDs: []string{emulator.SeedAccount1}, TTL: time.Hour,
		Scopes: []token.Scope{{Name: "Access: Apps and Policies", Level: token.Read}},
		Name:   token.DefaultName(token.RunContext{Repository: "acme/site-deploy", RunID: "1", RunAttempt: "1", Suffix: "0123456789ab"}),
	}, func(mint.Minted) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	// Another broker: another parent token of the same user.
	other := mustWorldOn(t, w, brokertest.SecondParent(w.e, w.seeded))
	theirs, err := other.client.Exchange(t.Context(), token.NewSecret(w.jwt(t, nil)), broker.ExchangeRequest{})
	if err != nil {
		t.Fatalf("the other broker: %v", err)
	}
	for _, tc := range []struct {
		name   string
		secret token.Secret
		id     string
	}{{"the action's", actions.Value, actions.ID}, {"another broker's", theirs.Token, theirs.TokenID}} {
		if err := w.client.Revoke(t.Context(), tc.secret); err != nil {
			t.Errorf("%s: %v", tc.name, err)
		}
		if !w.alive(tc.id) {
			t.Errorf("%s token %s was deleted", tc.name, tc.id)
		}
	}
	foreign := 0
	for _, e := range w.audit.Entries(t) {
		if e.Event == broker.EventRevoke && e.Outcome == "foreign" {
			foreign++
		}
	}
	if foreign != 2 {
		t.Errorf("%d foreign revoke entries, want 2", foreign)
	}
	// An unknown value and a value no token has: 200, and nothing deleted.
	n := len(w.children())
	for _, v := range []string{"cfut_NotATokenAtAll000000000000000000000000000000000", "not a token at all"} {
		a := w.postForm(t, broker.RevokePath, url.Values{"token": {v}})
		if a.status != http.StatusOK {
			t.Errorf("revoke %q: %d %s", v, a.status, a.body)
		}
	}
	if len(w.children()) != n {
		t.Error("revoking unknown tokens deleted something")
	}
	// No token: 400.
	if a := w.postForm(t, broker.RevokePath, url.Values{}); a.status != 400 || a.err.Error != string(broker.InvalidRequest) {
		t.Errorf("revoke without token: %d %s", a.status, a.err.Error)
	}
}

func TestRevokeCloudflareFails(t *testing.T) {
	t.Parallel()
	w := mustWorld(t)
	g := w.mustExchange(t, nil)
	w.e.AddFault(emulator.Fault{Route: "DELETE /user/tokens/{token_id}", Kind: emulator.Status, Status: 500})
	w.e.AddFault(emulator.Fault{Route: "GET /user/tokens/{token_id}", Kind: emulator.Status, Status: 500, Times: 1})
	w.client.Retry.Attempts = 1
	err := w.client.Revoke(t.Context(), g.Token)
	var be *broker.Error
	if !errors.As(err, &be) || be.Status != 503 || be.Code != broker.TemporarilyUnavailable || be.RetryAfter <= 0 {
		t.Fatalf("revoke while Cloudflare fails: %v, want 503 with Retry-After", err)
	}
	w.e.ClearFaults()
	if err := w.client.Revoke(t.Context(), g.Token); err != nil {
		t.Fatal(err)
	}
	if w.alive(g.TokenID) {
		t.Error("token still alive")
	}
}

// TestRevokeAccountParent: a broker whose parent is account-owned deletes
// its own account-owned tokens, and answers 200 for a valid user-owned
// token, which it cannot read and did not make, leaving it alone.
func TestRevokeAccountParent(t *testing.T) {
	t.Parallel()
	users := mustWorld(t) // a broker with the user parent, to make a user-owned token
	userOwned := users.mustExchange(t, nil)
	accountOnly := testPolicy[:strings.Index(testPolicy, "  - name: access-deploy")] + testPolicy[strings.Index(testPolicy, "  - name: account-owned"):]
	w := mustWorldOn(t, users, users.seeded.AccountToken, withPolicy(accountOnly))
	w.client.Retry.Attempts = 1
	mine := w.mustExchange(t, map[string]any{"repository_id": "777"})
	if err := w.client.Revoke(t.Context(), userOwned.Token); err != nil {
		t.Errorf("revoke a user-owned token at the account parent's broker: %v, want 200", err)
	}
	if !users.alive(userOwned.TokenID) {
		t.Errorf("user-owned token %s was deleted", userOwned.TokenID)
	}
	if err := w.client.Revoke(t.Context(), mine.Token); err != nil {
		t.Errorf("revoke its own token: %v", err)
	}
	if w.alive(mine.TokenID) {
		t.Errorf("its own token %s is still alive", mine.TokenID)
	}
	var got []string
	for _, e := range w.audit.Entries(t) {
		if e.Event == broker.EventRevoke {
			got = append(got, fmt.Sprintf("%d %s %s", e.Status, e.Outcome, e.TokenID))
		}
	}
	want := []string{"200 unknown ", "200 deleted " + mine.TokenID}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("revoke entries (-want +got):\n%s", diff)
	}
}

// TestRevokeParentRefused: once the parent token is deleted, Cloudflare
// refuses it reading the child (401/9109, the caller refused, not a missing
// permission); the broker cannot tell the child is its own, so the answer
// is 503 with Retry-After, never the 200 that would tell the job its token
// is gone; the child stays, and the broker stays ready (CheckParent decides).
func TestRevokeParentRefused(t *testing.T) {
	t.Parallel()
	w := mustWorld(t)
	w.client.Retry.Attempts = 1
	g := w.mustExchange(t, nil)
	if err := w.cf.DeleteToken(t.Context(), token.Endpoint{}, w.seeded.UserTokenID); err != nil {
		t.Fatalf("delete the parent: %v", err)
	}
	err := w.client.Revoke(t.Context(), g.Token)
	var be *broker.Error
	if !errors.As(err, &be) || be.Status != 503 || be.Code != broker.TemporarilyUnavailable || be.RetryAfter <= 0 {
		t.Fatalf("revoke after the parent was deleted: %v, want 503 with Retry-After", err)
	}
	if !w.alive(g.TokenID) {
		t.Errorf("token %s is gone", g.TokenID)
	}
	e := w.audit.Entries(t)
	if last := e[len(e)-1]; last.Event != broker.EventRevoke || last.Status != 503 || last.Outcome != "failed" || last.TokenID != g.TokenID {
		t.Errorf("audit %+v, want a failed revoke of %s", last, g.TokenID)
	}
	if !strings.Contains(w.logs.String(), "refused the parent token reading token "+g.TokenID) {
		t.Errorf("log %q does not say the parent was refused", w.logs.String())
	}
	// Readiness is CheckParent's to change: a revoke anyone may send must
	// not take the broker out of service.
	if ok, why := w.b.Ready(); !ok {
		t.Errorf("Ready() = false (%q) after a refused revoke", why)
	}
}

// TestRevokeUnreadable: a token the parent may not read (it lost a
// permission) is answered 200 and left alone, with an honest audit line
// and a log line for the operator.
func TestRevokeUnreadable(t *testing.T) {
	t.Parallel()
	refused := fmt.Errorf("GET token: %w", token.ErrForbidden)
	w := mustWorld(t, withFaults(map[string][]apiFault{"GetToken": {{call: 1, err: refused}}}))
	g := w.mustExchange(t, nil)
	if err := w.client.Revoke(t.Context(), g.Token); err != nil {
		t.Errorf("revoke a token the parent may not read: %v, want 200", err)
	}
	if !w.alive(g.TokenID) {
		t.Errorf("token %s was deleted although the parent could not read its name", g.TokenID)
	}
	e := w.audit.Entries(t)
	if last := e[len(e)-1]; last.Event != broker.EventRevoke || last.Status != 200 || last.Outcome != "foreign" || last.TokenID != g.TokenID || !strings.Contains(last.Reason, "may not read") {
		t.Errorf("audit %+v", last)
	}
	if !strings.Contains(w.logs.String(), "may not read token "+g.TokenID) {
		t.Errorf("log %q names no unreadable token", w.logs.String())
	}
}
