package broker_test

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/cf-scoped-token/cf-scoped-token/internal/broker"
	"github.com/cf-scoped-token/cf-scoped-token/internal/broker/brokertest"
	"github.com/cf-scoped-token/cf-scoped-token/internal/emulator"
	"github.com/cf-scoped-token/cf-scoped-token/internal/oidcissuer"
	"github.com/cf-scoped-token/cf-scoped-token/internal/token"
)

// TestCloudflareFaults: the lifecycle's promises hold through the broker —
// no orphans, a failure is 502/503 with the token deleted — and the jti of
// a failed exchange is given back, so the same OIDC token succeeds once
// Cloudflare is well again.
func TestCloudflareFaults(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		faults []emulator.Fault
		status int
	}{
		{"create keeps failing", []emulator.Fault{{Route: "POST /user/tokens", Kind: emulator.Status, Status: 500}}, 503},
		{"create reset", []emulator.Fault{{Route: "POST /user/tokens", Kind: emulator.Reset}}, 503},
		{"create refused", []emulator.Fault{{Route: "POST /user/tokens", Kind: emulator.Status, Status: 403}}, 502},
		{"child refused at verify", []emulator.Fault{{Route: "GET /user/tokens/verify", Kind: emulator.Status, Status: 401, Times: 1}}, 502},
		{"verify keeps failing", []emulator.Fault{{Route: "GET /user/tokens/verify", Kind: emulator.Status, Status: 503}}, 503},
		// The create answer is lost and the look-up by name fails too: the broker
		// deletes the token in the background, as the action's post step would.
		{"lost create, look-up fails", []emulator.Fault{{Route: "POST /user/tokens", Kind: emulator.LostResponse, Times: 1},
			{Route: "GET /user/tokens", Kind: emulator.Status, Status: 500, Times: 3}}, 503},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := mustWorld(t)
			w.client.Retry.Attempts = 1
			for _, f := range tc.faults {
				w.e.AddFault(f)
			}
			subject := token.NewSecret(w.jwt(t, nil))
			_, err := w.client.Exchange(t.Context(), subject, broker.ExchangeRequest{})
			var be *broker.Error
			if !errors.As(err, &be) || be.Status != tc.status || be.Code != broker.TemporarilyUnavailable || be.RetryAfter <= 0 {
				t.Fatalf("exchange: %v, want %d temporarily_unavailable with Retry-After", err, tc.status)
			}
			if strings.Contains(be.Description, "cfut_") || strings.Contains(be.Description, "cfat_") {
				t.Errorf("description shows a token: %q", be.Description)
			}
			if err := w.b.Wait(t.Context()); err != nil {
				t.Fatal(err)
			}
			w.e.ClearFaults()
			if kids := w.children(); len(kids) != 0 {
				t.Fatalf("after the failed exchange the emulator holds %s: an orphan", shown(kids))
			}
			g, err := w.client.Exchange(t.Context(), subject, broker.ExchangeRequest{})
			if err != nil {
				t.Fatalf("the same OIDC token once Cloudflare is well: %v, want it accepted (jti given back)", err)
			}
			if kids := w.children(); len(kids) != 1 || kids[0].ID != g.TokenID {
				t.Errorf("emulator holds %s, want only %s", shown(kids), g.TokenID)
			}
			// Once exchanged, it is used up.
			if _, err := w.client.Exchange(t.Context(), subject, broker.ExchangeRequest{}); !errors.As(err, &be) || be.Status != 400 {
				t.Errorf("third use: %v, want 400 (replay)", err)
			}
		})
	}
}

func TestLostCreateAdopted(t *testing.T) {
	t.Parallel()
	w := mustWorld(t)
	w.e.AddFault(emulator.Fault{Route: "POST /user/tokens", Kind: emulator.LostResponse, Times: 1})
	g := w.mustExchange(t, nil)
	kids := w.children()
	if len(kids) != 1 || kids[0].ID != g.TokenID {
		t.Fatalf("emulator holds %s, want the adopted token %s alone", shown(kids), g.TokenID)
	}
	assertAccess(t, w, g.Token, emulator.SeedAccount1, http.StatusOK)
}

// TestIssuerKeysUnavailable: 503 temporarily_unavailable when the keys
// cannot be fetched, no Cloudflare request; keys once cached stay in use.
func TestIssuerKeysUnavailable(t *testing.T) {
	t.Parallel()
	w := mustWorld(t)
	w.iss.Fail(oidcissuer.RouteJWKS, http.StatusServiceUnavailable, 0)
	before := w.cfRequests()
	subject := w.jwt(t, nil)
	a := w.postForm(t, broker.TokenPath, brokertest.Form(subject))
	if a.status != http.StatusServiceUnavailable || a.err.Error != string(broker.TemporarilyUnavailable) || a.header.Get("Retry-After") == "" {
		t.Fatalf("keys down: %d %s, want 503 temporarily_unavailable with Retry-After", a.status, a.err.Error)
	}
	if w.cfRequests() != before {
		t.Error("an exchange whose token could not be checked reached Cloudflare")
	}

	w2 := mustWorld(t)
	w2.mustExchange(t, nil)
	w2.iss.Fail(oidcissuer.RouteJWKS, http.StatusServiceUnavailable, 0)
	w2.iss.Fail(oidcissuer.RouteDiscovery, http.StatusServiceUnavailable, 0)
	if _, err := w2.client.Exchange(t.Context(), token.NewSecret(w2.jwt(t, nil)), broker.ExchangeRequest{}); err != nil {
		t.Errorf("keys cached, issuer down: %v, want the cached keys used", err)
	}
}

// TestCleanUpAfterFailedExchange: what a failed exchange leaves (the
// lifecycle's own delete failed) is deleted in the background with as few
// requests as the fault calls for — same-named twins are looked for only
// after a lost create answer, and a token once deleted is not deleted again
// when a later step fails — and each token gets one honest token.sweep line.
func TestCleanUpAfterFailedExchange(t *testing.T) {
	t.Parallel()
	unavailable := fmt.Errorf("Cloudflare: %w", token.ErrUnavailable)
	refused := fmt.Errorf("verify: %w", token.ErrUnauthorized)
	lost := fmt.Errorf("DELETE: %w", token.ErrOutcomeUnknown)
	// VerifyToken's first call is Start's, of the parent; its second the
	// child's, refused: the lifecycle deletes the child, and that fails.
	cases := []struct {
		name    string
		faults  map[string][]apiFault
		cf      []emulator.Fault
		deletes int // DELETE requests that reached Cloudflare
		lists   int // token lists
		outcome string
	}{
		{"no lost create", map[string][]apiFault{
			"VerifyToken": {{call: 2, err: refused}},
			"DeleteToken": {{call: 1, err: unavailable}},
			"GetToken":    {{call: 1, err: unavailable}},
		}, nil, 1, 0, "deleted"},
		{"lost create, the first look-up for twins fails", map[string][]apiFault{
			"VerifyToken": {{call: 2, err: refused}},
			"DeleteToken": {{call: 1, err: unavailable}},
			"GetToken":    {{call: 1, err: unavailable}},
			"ListTokens":  {{call: 2, err: unavailable}}, // the first finds the token whose create answer was lost
		}, []emulator.Fault{{Route: "POST /user/tokens", Kind: emulator.LostResponse, Times: 1}}, 1, 2, "deleted"},
		{"the lifecycle's delete was done, its answer lost", map[string][]apiFault{
			"VerifyToken": {{call: 2, err: refused}},
			"DeleteToken": {{call: 1, err: lost, made: true}},
			"GetToken":    {{call: 1, err: unavailable}},
		}, nil, 2, 0, "not_found"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := mustWorld(t, withFaults(tc.faults))
			w.client.Retry.Attempts = 1
			for _, f := range tc.cf {
				w.e.AddFault(f)
			}
			if _, err := w.client.Exchange(t.Context(), token.NewSecret(w.jwt(t, nil)), broker.ExchangeRequest{}); err == nil {
				t.Fatal("the exchange succeeded")
			}
			if err := w.b.Wait(t.Context()); err != nil {
				t.Fatal(err)
			}
			if kids := w.children(); len(kids) != 0 {
				t.Fatalf("after the clean-up the emulator holds %s", shown(kids))
			}
			if n := len(w.e.RequestsTo("DELETE /user/tokens/{token_id}")); n != tc.deletes {
				t.Errorf("%d DELETE requests, want %d", n, tc.deletes)
			}
			if n := len(w.e.RequestsTo("GET /user/tokens")); n != tc.lists {
				t.Errorf("%d token lists, want %d", n, tc.lists)
			}
			var sweeps []string
			for _, e := range w.audit.Entries(t) {
				if e.Event == broker.EventSweep {
					sweeps = append(sweeps, e.Outcome+" "+e.Reason)
					if e.TokenID == "" || e.Name == "" {
						t.Errorf("sweep entry without token id or name: %+v", e)
					}
				}
			}
			if diff := cmp.Diff([]string{tc.outcome + " left by a failed exchange"}, sweeps); diff != "" {
				t.Errorf("token.sweep entries (-want +got):\n%s", diff)
			}
		})
	}
}
