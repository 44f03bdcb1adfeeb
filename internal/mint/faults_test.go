package mint_test

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cf-scoped-token/cf-scoped-token/internal/cloudflare"
	"github.com/cf-scoped-token/cf-scoped-token/internal/emulator"
	"github.com/cf-scoped-token/cf-scoped-token/internal/mint"
	"github.com/cf-scoped-token/cf-scoped-token/internal/token"
)

// TestMint_FaultOnEachCall runs the whole job — Mint, then the post step's
// Revoke — with one kind of fault on one call, for every call the lifecycle
// makes and every kind of fault, and states the outcome of each: success,
// or an error that says what failed. Either way no token the run made is
// alive afterwards, except one that the error names (a post step that could
// not delete, a lost create that could not be looked up): SPEC's ::error::
// case, which the test then cleans up.
func TestMint_FaultOnEachCall(t *testing.T) {
	t.Parallel()
	calls := []struct {
		name, route string
		says        string // what a failure of this call says
	}{
		{"permission groups", routeGroups, "list permission groups"},
		{"create", routeCreate, "create token"},
		{"verify", routeVerify, "verify token"},
		{"delete", routeDelete, "delete token"}, // reached via Revoke
		{"list", routeList, "list tokens"},      // reached after a lost create
	}
	kinds := []struct {
		name  string
		fault emulator.Fault
	}{
		{"500x2", emulator.Fault{Kind: emulator.Status, Status: 500, Times: 2}},
		{"429x2", emulator.Fault{Kind: emulator.RateLimit, RetryAfter: 2 * time.Second, Times: 2}},
		{"resetx2", emulator.Fault{Kind: emulator.Reset, Times: 2}},
		{"lostx1", emulator.Fault{Kind: emulator.LostResponse, Times: 1}},
		{"403x1", emulator.Fault{Kind: emulator.Status, Status: 403, Times: 1}},
	}
	type outcome int
	const (
		ok         outcome = 0      // Mint and Revoke succeed
		mintFails  outcome = 1 << 0 // Mint fails and hands nothing over
		leftNamed  outcome = 1 << 1 // a token is left alive, and the error names it
		revokeSays outcome = 1 << 2 // the name is a *mint.RevokeError's ID
	)
	// want holds the cells that do not simply succeed.
	want := map[string]outcome{
		// A 403 is a refusal: explained, not retried.
		"permission groups/403x1": mintFails,
		"create/403x1":            mintFails,
		"verify/403x1":            mintFails, // the token is deleted first
		// Two creates in a row without an answer, and the token is not
		// there either time: each look-up makes the next create safe, and
		// the third succeeds (create/500x3 below: a third failure ends it).
		// The post step could not delete: the token lives until its expiry
		// and the RevokeError names it.
		"delete/403x1": leftNamed | revokeSays,
		// A lost create whose look-up by name is refused: the token cannot
		// be found, and the error names it by name and expiry.
		"list/403x1": mintFails | leftNamed,
	}
	for _, call := range calls {
		for _, kind := range kinds {
			cell := call.name + "/" + kind.name
			t.Run(cell, func(t *testing.T) {
				t.Parallel()
				w := mustWorld(t)
				f := kind.fault
				f.Route = call.route
				if call.route == routeList {
					w.e.AddFault(emulator.Fault{Route: routeCreate, Kind: emulator.LostResponse, Times: 1})
				}
				if call.route != routeDelete {
					w.e.AddFault(f)
				}
				req := w.request(t)
				var k keep
				got, mintErr := w.m.Mint(t.Context(), req, k.handover)
				var revokeErr error
				if mintErr == nil {
					if call.route == routeDelete {
						w.e.AddFault(f)
					}
					_, revokeErr = w.m.Revoke(t.Context(), got.Endpoint, got.Info)
				}
				w.e.ClearFaults()

				fired := 0
				for _, r := range w.requests(call.route) {
					if r.Fault == kind.fault.Kind {
						fired++
					}
				}
				if fired != kind.fault.Times {
					t.Errorf("the fault hit %d requests, want %d", fired, kind.fault.Times)
				}

				wantOutcome := want[cell]
				err := errors.Join(mintErr, revokeErr)
				switch {
				case wantOutcome == ok:
					if err != nil {
						t.Fatalf("want success, got %v", err)
					}
					if h := k.All(); len(h) != 1 || h[0].ID != got.ID {
						t.Errorf("handed over %d tokens, want 1", len(h))
					}
				case err == nil:
					t.Fatal("want an error, got success")
				case !strings.Contains(err.Error(), call.says):
					t.Errorf("error %q does not say %q", err, call.says)
				}
				if kind.fault.Status == http.StatusForbidden {
					var apiErr *cloudflare.APIError
					if !errors.As(err, &apiErr) || apiErr.Status != http.StatusForbidden {
						t.Errorf("error %v does not carry the API's 403", err)
					}
					if n := len(w.requests(call.route)); n != 1 {
						t.Errorf("%d requests on %s, want 1: a 4xx is not retried", n, call.route)
					}
				}
				if wantOutcome&mintFails != 0 {
					if mintErr == nil {
						t.Error("Mint succeeded, want it to fail")
					}
					if len(k.All()) != 0 {
						t.Error("a failed Mint handed a token over")
					}
				}
				if call.route == routeCreate && (kind.fault.Kind == emulator.Status && kind.fault.Status >= 500 || kind.fault.Kind == emulator.Reset) {
					if n := len(w.requests(routeCreate)); n != 3 {
						t.Errorf("%d creates, want 3: each after a look-up found nothing", n)
					}
				}

				if wantOutcome&leftNamed == 0 {
					w.mustNoOrphans(t)
					return
				}
				left := w.children()
				if len(left) != 1 {
					t.Fatalf("alive: %q; want exactly the token the error names", describe(left))
				}
				if !strings.Contains(err.Error(), left[0].Name) && !strings.Contains(err.Error(), left[0].ID) {
					t.Errorf("error %q names neither %s nor %q", err, left[0].ID, left[0].Name)
				}
				if exp := left[0].ExpiresOn.Format(time.RFC3339); !strings.Contains(err.Error(), exp) {
					t.Errorf("error %q does not say the token expires at %s", err, exp)
				}
				if wantOutcome&revokeSays != 0 {
					var rerr *mint.RevokeError
					if !errors.As(err, &rerr) || rerr.ID != left[0].ID {
						t.Errorf("error %v is not a *mint.RevokeError for %s", err, left[0].ID)
					}
				}
				// What the user (or sweep, after expiry) would do.
				if err := w.client.DeleteToken(t.Context(), token.Endpoint{}, left[0].ID); err != nil {
					t.Fatal(err)
				}
				w.mustNoOrphans(t)
			})
		}
	}
}

// TestMint_CreateGivesUpAfterMaxCreates: three creates in a row go
// unanswered and none made a token: Mint fails with the unknown outcome,
// sends no fourth create, and leaves nothing behind.
func TestMint_CreateGivesUpAfterMaxCreates(t *testing.T) {
	t.Parallel()
	w := mustWorld(t)
	w.e.AddFault(emulator.Fault{Route: routeCreate, Kind: emulator.Status, Status: 502, Times: 3})
	_, err := w.m.Mint(t.Context(), w.request(t), func(mint.Minted) error { return nil })
	if !errors.Is(err, token.ErrOutcomeUnknown) {
		t.Fatalf("error %v does not match token.ErrOutcomeUnknown", err)
	}
	if n := len(w.requests(routeCreate)); n != 3 {
		t.Errorf("%d creates, want 3", n)
	}
	w.e.ClearFaults()
	w.mustNoOrphans(t)
}
