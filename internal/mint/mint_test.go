package mint_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cf-scoped-token/cf-scoped-token/internal/cloudflare"
	"github.com/cf-scoped-token/cf-scoped-token/internal/emulator"
	"github.com/cf-scoped-token/cf-scoped-token/internal/mint"
	"github.com/cf-scoped-token/cf-scoped-token/internal/token"
)

// SPEC "No orphans": a create whose answer is lost is never blindly
// retried; the token is found by its unique name and adopted.
func TestMint_LostCreateIsAdoptedNotRetried(t *testing.T) {
	t.Parallel()
	w := mustWorld(t)
	w.e.AddFault(emulator.Fault{Route: routeCreate, Kind: emulator.LostResponse, Times: 1})
	var k keep
	got, err := w.m.Mint(t.Context(), w.request(t), k.handover)
	if err != nil {
		t.Fatalf("Mint: %v", err)
	}
	if !got.Adopted {
		t.Error("Adopted = false, want true: the answer was lost")
	}
	if n := len(w.requests(routeCreate)); n != 1 {
		t.Errorf("%d creates, want 1: a lost create must not be repeated", n)
	}
	if n := w.answered(routeRoll, http.StatusOK); n != 1 {
		t.Errorf("%d rolls answered 200, want 1", n)
	}
	if handed := k.All(); len(handed) != 1 || handed[0].ID != got.ID {
		t.Fatalf("handed over %d tokens, want the one minted", len(handed))
	}
	// The handed value is the token's value in force, and it works.
	stored := w.children()
	if len(stored) != 1 || stored[0].ID != got.ID {
		t.Fatalf("stored children %q, want only %s", describe(stored), got.ID)
	}
	if stored[0].Value != got.Value.Reveal() {
		t.Error("the handed value is not the stored value: the roll's value was not the one handed over")
	}
	verified, err := w.client.VerifyToken(t.Context(), token.Endpoint{}, got.Value)
	status := verified.Status
	if err != nil || status != "active" {
		t.Errorf("verify with the handed value: %q, %v; want active", status, err)
	}
	if n := w.answered(routeVerify, http.StatusOK); n != 2 {
		t.Errorf("%d verifies answered 200, want 2 (Mint's and ours)", n)
	}
	w.mustNoOrphans(t, got.ID)
}

// SPEC "No orphans": a reset create is looked up by name; absent, it is
// created once more, and there is exactly one token.
func TestMint_ResetCreateIsCreatedOnceMore(t *testing.T) {
	t.Parallel()
	w := mustWorld(t)
	w.e.AddFault(emulator.Fault{Route: routeCreate, Kind: emulator.Reset, Times: 1})
	w.m.Sleep = w.waits.Sleep // the Minter's waits, recorded (a create is never retried by the client)
	got := w.mustMint(t, w.request(t))
	if got.Adopted {
		t.Error("Adopted = true, want false: the reset create made nothing")
	}
	if got, want := w.answered(routeCreate, 0), 1; got != want {
		t.Errorf("%d creates reset, want %d", got, want)
	}
	if got, want := w.answered(routeCreate, http.StatusOK), 1; got != want {
		t.Errorf("%d creates answered 200, want %d", got, want)
	}
	// Four look-ups by name over seven seconds before the second create (a
	// slow create may still commit), then one for a twin after it.
	if n := w.answered(routeList, http.StatusOK); n != 5 {
		t.Errorf("%d lists, want 5 (4 look-ups by name between the creates, 1 twin check after)", n)
	}
	if diff := cmp.Diff([]time.Duration{time.Second, 2 * time.Second, 4 * time.Second}, w.waits.All()); diff != "" {
		t.Errorf("waits between the look-ups (-want +got):\n%s", diff)
	}
	if n := len(w.requests(routeRoll)); n != 0 {
		t.Errorf("%d rolls, want 0", n)
	}
	w.mustNoOrphans(t, got.ID)
}

// SPEC "Transient faults are ridden out": 5xx, 429 (honouring
// Retry-After) and resets are retried, and the run ends with one token.
func TestMint_TransientFaultsAreRiddenOut(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		fault  emulator.Fault
		revoke bool            // the fault is on the post step's calls
		waits  []time.Duration // nil: not checked (a transport may absorb a reset)
		lost   int             // requests on the route that got no answer
	}{
		{name: "5xx on permission groups", fault: emulator.Fault{Route: routeGroups, Kind: emulator.Status, Status: 502, Times: 2},
			waits: []time.Duration{50 * time.Millisecond, 100 * time.Millisecond}},
		{name: "5xx on verify", fault: emulator.Fault{Route: routeVerify, Kind: emulator.Status, Status: 503, Times: 3},
			waits: []time.Duration{50 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond}},
		// Retry-After, and then up to half of it again (jitter 0.5 here: a quarter).
		{name: "429 on create waits Retry-After", fault: emulator.Fault{Route: routeCreate, Kind: emulator.RateLimit, RetryAfter: 7 * time.Second, Times: 1},
			waits: []time.Duration{8750 * time.Millisecond}},
		{name: "429 on permission groups waits Retry-After", fault: emulator.Fault{Route: routeGroups, Kind: emulator.RateLimit, RetryAfter: 3 * time.Second, Times: 2},
			waits: []time.Duration{3750 * time.Millisecond, 3750 * time.Millisecond}},
		{name: "resets on verify", fault: emulator.Fault{Route: routeVerify, Kind: emulator.Reset, Times: 2}, lost: 2},
		{name: "resets on delete", fault: emulator.Fault{Route: routeDelete, Kind: emulator.Reset, Times: 2}, revoke: true, lost: 2},
		{name: "5xx on delete", fault: emulator.Fault{Route: routeDelete, Kind: emulator.Status, Times: 2}, revoke: true,
			waits: []time.Duration{50 * time.Millisecond, 100 * time.Millisecond}},
		{name: "resets on the get that checks a failed delete", fault: emulator.Fault{Route: routeGet, Kind: emulator.Reset, Times: 2}, revoke: true, lost: 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := mustWorld(t)
			if !tc.revoke {
				w.e.AddFault(tc.fault)
			}
			got := w.mustMint(t, w.request(t))
			w.mustNoOrphans(t, got.ID) // exactly the one token, handed over
			if tc.revoke {
				if tc.fault.Route == routeGet {
					// The GET is sent only when the delete failed: make it fail
					// (done, but every answer lost).
					w.e.AddFault(emulator.Fault{Route: routeDelete, Kind: emulator.LostResponse, Times: 1})
					w.e.AddFault(emulator.Fault{Route: routeDelete, Kind: emulator.Status, Status: 503})
				}
				w.e.AddFault(tc.fault)
			}
			if _, err := w.m.Revoke(t.Context(), got.Endpoint, got.Info); err != nil {
				t.Fatalf("Revoke: %v", err)
			}
			if tc.waits != nil {
				if diff := cmp.Diff(tc.waits, w.waits.All()); diff != "" {
					t.Errorf("backoffs (-want +got):\n%s", diff)
				}
			}
			if tc.lost > 0 {
				if got := w.answered(tc.fault.Route, 0); got != tc.lost {
					t.Errorf("%d requests on %s got no answer, want %d", got, tc.fault.Route, tc.lost)
				}
			}
			if n := len(w.requests(routeCreate)); tc.fault.Kind != emulator.RateLimit && n != 1 {
				t.Errorf("%d creates, want 1", n)
			}
			w.mustNoOrphans(t)
		})
	}
}

// SPEC "Transient faults are ridden out": 4xx answers are not retried and
// are explained (the error is the API's, with its status).
func TestMint_ClientErrorsAreNotRetried(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		route  string
		status int
	}{
		{routeCreate, http.StatusForbidden},
		{routeCreate, http.StatusBadRequest},
		{routeGroups, http.StatusForbidden},
		{routeGroups, http.StatusBadRequest},
	} {
		t.Run(tc.route+" "+http.StatusText(tc.status), func(t *testing.T) {
			t.Parallel()
			w := mustWorld(t)
			w.e.AddFault(emulator.Fault{Route: tc.route, Kind: emulator.Status, Status: tc.status})
			handed := false
			_, err := w.m.Mint(t.Context(), w.request(t), func(mint.Minted) error { handed = true; return nil })
			var apiErr *cloudflare.APIError
			if !errors.As(err, &apiErr) || apiErr.Status != tc.status {
				t.Fatalf("Mint error = %v, want an *cloudflare.APIError with status %d", err, tc.status)
			}
			if errors.Is(err, token.ErrOutcomeUnknown) {
				t.Errorf("a %d is a refusal, not an unknown outcome: %v", tc.status, err)
			}
			if handed {
				t.Error("handover ran")
			}
			if n := len(w.requests(tc.route)); n != 1 {
				t.Errorf("%d requests on %s, want exactly 1", n, tc.route)
			}
			if n := len(w.waits.All()); n != 0 {
				t.Errorf("%d backoffs, want none", n)
			}
			if n := len(w.requests(routeList)); n != 0 {
				t.Errorf("%d look-ups by name, want none: nothing can exist", n)
			}
			if !strings.Contains(err.Error(), http.StatusText(tc.status)) {
				t.Errorf("error %q does not explain the status", err)
			}
			w.mustNoOrphans(t)
		})
	}
}

// SPEC "No orphans": every token the action creates is deleted before the
// step fails — after a failed verify, a failed handover or a cancellation,
// the last on a context that survived the cancel.
func TestMint_FailureAfterCreateDeletesToken(t *testing.T) {
	t.Parallel()
	errState := errors.New("write state: disk full")
	for _, tc := range []struct {
		name     string
		faults   []emulator.Fault
		handover func(mint.Minted) error
		cancel   bool // cancel the run once verify has arrived
		want     error
	}{
		{name: "verify refused", faults: []emulator.Fault{{Route: routeVerify, Kind: emulator.Status, Status: http.StatusUnauthorized}}},
		{name: "verify 5xx beyond retries", faults: []emulator.Fault{{Route: routeVerify, Kind: emulator.Status, Status: 503}}},
		{name: "handover fails", handover: func(mint.Minted) error { return errState }, want: errState},
		{name: "cancelled during verify", faults: []emulator.Fault{{Route: routeVerify, Kind: emulator.Latency, Delay: time.Minute}},
			cancel: true, want: context.Canceled},
		{name: "clean-up delete done but its answers lost", faults: []emulator.Fault{
			{Route: routeVerify, Kind: emulator.Status, Status: http.StatusUnauthorized},
			{Route: routeDelete, Kind: emulator.LostResponse, Times: 1},
			{Route: routeDelete, Kind: emulator.Status, Status: 502},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := mustWorld(t)
			api := &ctxAPI{Client: w.client}
			w.m.API = api
			for _, f := range tc.faults {
				w.e.AddFault(f)
			}
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			if tc.cancel {
				// Cancel the run once the verify request is at the server
				// (where the Latency fault holds it): no polling, no sleep.
				w.setHook(func(_ http.ResponseWriter, r *http.Request) bool {
					if r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/user/tokens/verify") {
						cancel()
					}
					return false
				})
			}
			handover := tc.handover
			if handover == nil {
				handover = func(mint.Minted) error { t.Error("handover ran"); return nil }
			}
			_, err := w.m.Mint(ctx, w.request(t), handover)
			if err == nil {
				t.Fatal("Mint succeeded, want an error")
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("Mint error = %v, want one matching %v", err, tc.want)
			}
			var rerr *mint.RevokeError
			if errors.As(err, &rerr) {
				t.Errorf("the clean-up failed: %v", err)
			}
			if n := w.answered(routeCreate, http.StatusOK); n != 1 {
				t.Fatalf("%d creates, want 1", n)
			}
			if n := w.answered(routeDelete, http.StatusOK) + w.answered(routeDelete, 0); n != 1 {
				t.Errorf("%d deletes done, want 1", n)
			}
			if tc.cancel {
				if ctx.Err() == nil {
					t.Fatal("the run was never cancelled")
				}
				if errs := api.DeleteCtxErrs(); len(errs) != 1 || errs[0] != nil {
					t.Errorf("delete contexts' errors = %v, want one live context", errs)
				}
			}
			w.mustNoOrphans(t)
		})
	}
}

// TestMint_VerifyNotActiveDeletesToken: a verify that answers, but not
// "this token is active", hands out nothing: the token is deleted and the
// error says what the answer was — a status other than active, or an
// answer about another token.
func TestMint_VerifyNotActiveDeletesToken(t *testing.T) {
	t.Parallel()
	const otherID = "0123456789abcdef0123456789abcdef"
	for _, tc := range []struct {
		name   string
		edit   func(result map[string]any)
		status string // want VerifyError.Status
		other  string // want VerifyError.OtherID
		says   string
	}{
		{"disabled", func(r map[string]any) { r["status"] = "disabled" }, "disabled", "", `status is "disabled", not active`},
		{"another token", func(r map[string]any) { r["id"] = otherID }, "", otherID, "the API answered for another token, " + otherID},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := mustWorld(t)
			// The emulator's own answer, edited: verify's envelope as it is.
			w.setHook(func(rw http.ResponseWriter, r *http.Request) bool {
				if r.Method != http.MethodGet || !strings.HasSuffix(r.URL.Path, "/user/tokens/verify") {
					return false
				}
				rec := httptest.NewRecorder()
				w.e.ServeHTTP(rec, r)
				var env map[string]any
				if err := json.Unmarshal(rec.Body.Bytes(), &env); err != nil {
					t.Errorf("verify answer: %v", err)
					return false
				}
				tc.edit(env["result"].(map[string]any))
				rw.Header().Set("Content-Type", "application/json")
				_ = json.NewEncoder(rw).Encode(env)
				return true
			})
			_, err := w.m.Mint(t.Context(), w.request(t), func(mint.Minted) error { t.Error("handover ran"); return nil })
			var verr *mint.VerifyError
			if !errors.As(err, &verr) || verr.Status != tc.status || verr.OtherID != tc.other || verr.Err != nil {
				t.Fatalf("Mint = %v, want a *mint.VerifyError with status %q, other id %q", err, tc.status, tc.other)
			}
			if !strings.Contains(err.Error(), tc.says) {
				t.Errorf("Mint = %q, want it to say %q", err, tc.says)
			}
			if n := w.answered(routeDelete, http.StatusOK); n != 1 {
				t.Errorf("%d deletes, want 1", n)
			}
			w.mustNoOrphans(t)
		})
	}
}

// SPEC input "mode: sweep" and reference/cloudflare-api.md (expired tokens
// count until deleted): at the quota, this tool's own expired tokens are
// removed and the create is tried once more; nothing else is touched.
func TestMint_QuotaRemovesOwnExpiredTokensAndRetries(t *testing.T) {
	t.Parallel()
	expired := t0.Add(-time.Hour)
	t.Run("own expired tokens make room", func(t *testing.T) {
		t.Parallel()
		w := mustWorld(t)
		// Issued a day earlier, expired an hour ago: the parent and these
		// two fill a quota of 3.
		w.e.SetNow(func() time.Time { return t0.Add(-24 * time.Hour) })
		id1, _ := w.e.IssueUserToken(w.seed.UserID, emulator.TokenSpec{Name: token.NamePrefix + "octo/deploy 1.1 old 000000000001", ExpiresOn: expired})
		id2, _ := w.e.IssueUserToken(w.seed.UserID, emulator.TokenSpec{Name: token.NamePrefix + "octo/deploy 2.1 old 000000000002", ExpiresOn: expired})
		w.e.SetNow(func() time.Time { return t0 })
		w.e.SetLimits(emulator.Limits{UserTokenQuota: 3})

		got := w.mustMint(t, w.request(t))
		if n := w.answered(routeCreate, http.StatusBadRequest); n != 1 {
			t.Errorf("%d creates refused at the quota, want 1", n)
		}
		if n := w.answered(routeCreate, http.StatusOK); n != 1 {
			t.Errorf("%d creates succeeded, want 1", n)
		}
		var deleted []string
		for _, r := range w.requests(routeDelete) {
			deleted = append(deleted, r.Path[strings.LastIndex(r.Path, "/")+1:])
		}
		if diff := cmp.Diff([]string{id1, id2}, deleted); diff != "" {
			t.Errorf("deleted (-want +got):\n%s", diff)
		}
		w.mustNoOrphans(t, got.ID)
	})
	for _, tc := range []struct {
		name string
		spec emulator.TokenSpec
	}{
		{"foreign expired tokens stay", emulator.TokenSpec{Name: "deploy key (expired)", ExpiresOn: expired}},
		{"own unexpired tokens stay", emulator.TokenSpec{Name: token.NamePrefix + "octo/deploy 9.1 busy 000000000009", ExpiresOn: t0.Add(time.Hour)}},
		{"own tokens without expiry stay", emulator.TokenSpec{Name: token.NamePrefix + "forever"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := mustWorld(t)
			w.e.SetNow(func() time.Time { return t0.Add(-24 * time.Hour) })
			id1, _ := w.e.IssueUserToken(w.seed.UserID, tc.spec)
			id2, _ := w.e.IssueUserToken(w.seed.UserID, tc.spec)
			w.e.SetNow(func() time.Time { return t0 })
			w.e.SetLimits(emulator.Limits{UserTokenQuota: 3})

			_, err := w.m.Mint(t.Context(), w.request(t), func(mint.Minted) error { t.Error("handover ran"); return nil })
			if !errors.Is(err, token.ErrQuotaExceeded) {
				t.Fatalf("Mint error = %v, want one matching token.ErrQuotaExceeded", err)
			}
			if !strings.Contains(err.Error(), "make room") {
				t.Errorf("error %q does not say that no room could be made", err)
			}
			if n := len(w.requests(routeDelete)); n != 0 {
				t.Errorf("%d deletes, want none", n)
			}
			if n := len(w.requests(routeCreate)); n != 1 {
				t.Errorf("%d creates, want 1: nothing was removed, so no second try", n)
			}
			w.mustNoOrphans(t, id1, id2)
		})
	}
}

// SPEC "The post step" and "As few requests as the API allows": a revoke
// is one DELETE; a 404 is "not found", never "deleted"; only a DELETE that
// failed or went unanswered is checked with a GET.
func TestMint_RevokeSendsOneDeleteAndChecksOnlyAFailure(t *testing.T) {
	t.Parallel()
	revoke := func(t *testing.T, w *world, got mint.Minted) mint.Outcome {
		t.Helper()
		out, err := w.m.Revoke(t.Context(), got.Endpoint, got.Info)
		if err != nil {
			t.Fatalf("Revoke: %v", err)
		}
		return out
	}
	t.Run("one delete", func(t *testing.T) {
		t.Parallel()
		w := mustWorld(t)
		got := w.mustMint(t, w.request(t))
		before := len(w.e.Requests())
		if out := revoke(t, w, got); out != mint.Deleted {
			t.Errorf("outcome %v, want Deleted", out)
		}
		if n := len(w.e.Requests()) - before; n != 1 || w.answered(routeDelete, http.StatusOK) != 1 {
			t.Errorf("%d requests, want exactly one DELETE answered 200", n)
		}
		if _, err := w.client.VerifyToken(t.Context(), token.Endpoint{}, got.Value); err == nil {
			t.Error("the revoked value still verifies")
		}
		w.mustNoOrphans(t)
	})
	t.Run("already gone", func(t *testing.T) {
		t.Parallel()
		w := mustWorld(t)
		got := w.mustMint(t, w.request(t))
		if err := w.client.DeleteToken(t.Context(), token.Endpoint{}, got.ID); err != nil {
			t.Fatal(err)
		}
		if out := revoke(t, w, got); out != mint.NotFound {
			t.Errorf("outcome %v, want NotFound", out)
		}
		if n := w.answered(routeDelete, http.StatusNotFound); n != 1 || len(w.requests(routeGet)) != 0 {
			t.Errorf("%d deletes answered 404 and %d gets, want 1 and 0", n, len(w.requests(routeGet)))
		}
		w.mustNoOrphans(t)
	})
	t.Run("never existed", func(t *testing.T) {
		t.Parallel()
		w := mustWorld(t)
		out, err := w.m.Revoke(t.Context(), token.Endpoint{}, token.Info{ID: "0123456789abcdef0123456789abcdef"})
		if err != nil || out != mint.NotFound {
			t.Fatalf("Revoke = %v, %v, want NotFound, nil", out, err)
		}
		w.mustNoOrphans(t)
	})
	t.Run("delete answer lost", func(t *testing.T) {
		t.Parallel()
		w := mustWorld(t)
		got := w.mustMint(t, w.request(t))
		w.e.AddFault(emulator.Fault{Route: routeDelete, Kind: emulator.LostResponse, Times: 1})
		revoke(t, w, got)
		if w.answered(routeDelete, 0) != 1 || w.answered(routeDelete, http.StatusNotFound) != 1 {
			t.Errorf("want a lost delete then a 404; got %d requests", len(w.requests(routeDelete)))
		}
		w.mustNoOrphans(t)
	})
	t.Run("delete done but every answer lost", func(t *testing.T) {
		t.Parallel()
		w := mustWorld(t)
		got := w.mustMint(t, w.request(t))
		// The first delete is done and its answer lost; every later one
		// fails. The token is gone, and Revoke must not say it lives on.
		w.e.AddFault(emulator.Fault{Route: routeDelete, Kind: emulator.LostResponse, Times: 1})
		w.e.AddFault(emulator.Fault{Route: routeDelete, Kind: emulator.Status, Status: 503})
		if out := revoke(t, w, got); out != mint.Deleted {
			t.Errorf("outcome %v, want Deleted", out)
		}
		if n := w.answered(routeDelete, http.StatusServiceUnavailable); n != 3 {
			t.Errorf("%d deletes answered 503, want 3 (the retries after the lost one)", n)
		}
		if n := w.answered(routeGet, http.StatusNotFound); n != 1 {
			t.Errorf("%d checking gets answered 404, want 1", n)
		}
		w.mustNoOrphans(t)
	})
	t.Run("hole 9: an unanswered delete whose check is rate limited is unconfirmed", func(t *testing.T) {
		t.Parallel()
		w := mustWorld(t)
		got := w.mustMint(t, w.request(t))
		w.e.AddFault(emulator.Fault{Route: routeDelete, Kind: emulator.LostResponse, Times: 1})
		w.e.AddFault(emulator.Fault{Route: routeDelete, Kind: emulator.Status, Status: 503})
		w.e.AddFault(emulator.Fault{Route: routeGet, Kind: emulator.RateLimit, RetryAfter: time.Second})
		_, err := w.m.Revoke(t.Context(), got.Endpoint, got.Info)
		var rerr *mint.RevokeError
		if !errors.As(err, &rerr) || !rerr.Unconfirmed {
			t.Fatalf("Revoke = %v, want an unconfirmed *mint.RevokeError", err)
		}
		if strings.Contains(err.Error(), "could not be deleted") || !strings.Contains(err.Error(), "could not be checked") {
			t.Errorf("the message says more than is known: %q", err)
		}
		w.mustNoOrphans(t) // it was deleted after all
	})
}

// TestMint_DeleteNamed: the twins of a lost create are exactly the tokens
// of that name; the one to keep and any other name are left alone.
func TestMint_DeleteNamed(t *testing.T) {
	t.Parallel()
	w := mustWorld(t)
	got := w.mustMint(t, w.request(t))
	twin, _ := w.e.IssueUserToken(w.seed.UserID, emulator.TokenSpec{Name: got.Name, ExpiresOn: got.ExpiresOn})
	other, _ := w.e.IssueUserToken(w.seed.UserID, emulator.TokenSpec{Name: got.Name + "x", ExpiresOn: got.ExpiresOn})
	deleted, err := w.m.DeleteNamed(t.Context(), got.Endpoint, got.Name, got.ID, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(deleted) != 1 || deleted[0].ID != twin {
		t.Errorf("deleted %v, want the twin %s", deleted, twin)
	}
	w.mustNoOrphans(t, got.ID, other)
}

// SPEC "The post step": a failure to revoke names the token id and its
// expiry.
func TestMint_RevokeFailureNamesTokenAndExpiry(t *testing.T) {
	t.Parallel()
	w := mustWorld(t)
	got := w.mustMint(t, w.request(t))
	w.e.AddFault(emulator.Fault{Route: routeDelete, Kind: emulator.Status, Status: 500})
	_, err := w.m.Revoke(t.Context(), got.Endpoint, got.Info)
	var rerr *mint.RevokeError
	if !errors.As(err, &rerr) {
		t.Fatalf("Revoke error = %v, want a *mint.RevokeError", err)
	}
	if rerr.ID != got.ID || !rerr.ExpiresOn.Equal(got.ExpiresOn) || !got.ExpiresOn.Equal(t0.Add(time.Hour)) {
		t.Errorf("RevokeError{ID: %s, ExpiresOn: %s}, want {%s, %s}", rerr.ID, rerr.ExpiresOn, got.ID, t0.Add(time.Hour))
	}
	for _, want := range []string{got.ID, "2026-11-27T21:00:00Z"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
	var apiErr *cloudflare.APIError
	if !errors.As(err, &apiErr) || apiErr.Status != 500 {
		t.Errorf("error %v does not carry the API's 500", err)
	}
	if n := len(w.requests(routeDelete)); n != 4 {
		t.Errorf("%d deletes, want 4 (testRetry's attempts)", n)
	}
	// The token lives on, named by the error; nothing else does.
	w.mustNoOrphans(t, got.ID)
	if _, err := w.m.Revoke(t.Context(), got.Endpoint, got.Info); err != nil {
		t.Fatalf("Revoke once the API is back: %v", err)
	}
	w.mustNoOrphans(t)
}

// SPEC input "mode: sweep": only this tool's tokens (by name prefix) that
// have expired are deleted; dry run deletes nothing.
func TestMint_SweepTouchesOnlyOwnExpired(t *testing.T) {
	t.Parallel()
	w := mustWorld(t)
	w.e.SetNow(func() time.Time { return t0.Add(-24 * time.Hour) })
	issue := func(name string, exp time.Time) string {
		id, _ := w.e.IssueUserToken(w.seed.UserID, emulator.TokenSpec{Name: name, ExpiresOn: exp})
		return id
	}
	past, future := t0.Add(-time.Hour), t0.Add(time.Hour)
	own1 := issue(token.NamePrefix+"octo/deploy 1.1 a 000000000001", past)
	own2 := issue(token.NamePrefix+"octo/deploy 2.1 b 000000000002", past.Add(-time.Hour))
	keep := []string{
		issue(token.NamePrefix+"octo/deploy 3.1 c 000000000003", future), // own, not expired
		issue(token.NamePrefix+"no expiry", time.Time{}),                 // own, never expires
		issue("deploy key", past),                                        // foreign, expired
		issue("cf-scoped-tokenish", past),                                // prefix without its space
		issue("CF-SCOPED-TOKEN upper", past),                             // not our prefix
		issue(" "+token.NamePrefix+"leading space", past),                // not our prefix
	}
	acctOwn, _ := w.e.IssueAccountToken(emulator.SeedAccount1, emulator.TokenSpec{Name: token.NamePrefix + "account 000000000004", ExpiresOn: past})
	keep = append(keep, acctOwn) // another endpoint
	w.e.SetNow(func() time.Time { return t0 })

	dry, err := w.m.Sweep(t.Context(), token.Endpoint{}, true)
	if err != nil {
		t.Fatalf("Sweep dry run: %v", err)
	}
	if diff := cmp.Diff([]string{own1, own2}, ids(dry)); diff != "" {
		t.Errorf("dry run found (-want +got):\n%s", diff)
	}
	if n := len(w.requests(routeDelete)); n != 0 {
		t.Fatalf("dry run sent %d deletes", n)
	}
	w.mustNoOrphans(t, append([]string{own1, own2}, keep...)...)

	// A Minter whose clock is behind the API's sees nothing expired yet.
	behind := &mint.Minter{API: w.client, Now: func() time.Time { return past.Add(-2 * time.Hour) }}
	if got, err := behind.Sweep(t.Context(), token.Endpoint{}, false); err != nil || len(got) != 0 {
		t.Errorf("Sweep with a clock behind the expiry: %v, %v; want nothing", ids(got), err)
	}

	swept, err := w.m.Sweep(t.Context(), token.Endpoint{}, false)
	if err != nil {
		t.Fatalf("Sweep: %v", err)
	}
	if diff := cmp.Diff([]string{own1, own2}, ids(swept)); diff != "" {
		t.Errorf("swept (-want +got):\n%s", diff)
	}
	if n := w.answered(routeDelete, http.StatusOK); n != 2 {
		t.Errorf("%d deletes, want 2", n)
	}
	w.mustNoOrphans(t, keep...)
}

// deletedFirst has another caller's DELETE of token id reach the emulator
// just before each of the world's, which is then answered 404.
func (w *world) deletedFirst(id string) {
	w.setHook(func(_ http.ResponseWriter, r *http.Request) bool {
		if r.Method == http.MethodDelete && strings.HasSuffix(r.URL.Path, "/"+id) {
			w.e.ServeHTTP(httptest.NewRecorder(), r.Clone(context.Background())) // the other delete
		}
		return false
	})
}

// TestMint_SweepAlreadyGone: an expired token that is gone by the time its
// delete arrives (another sweep got there first: 404) is not reported
// deleted, neither in the log nor in what Sweep returns — its callers print
// and audit that as "deleted".
func TestMint_SweepAlreadyGone(t *testing.T) {
	t.Parallel()
	w := mustWorld(t)
	past := t0.Add(-time.Hour)
	w.e.SetNow(func() time.Time { return past.Add(-time.Hour) })
	gone, _ := w.e.IssueUserToken(w.seed.UserID, emulator.TokenSpec{Name: token.NamePrefix + "gone 000000000001", ExpiresOn: past})
	own, _ := w.e.IssueUserToken(w.seed.UserID, emulator.TokenSpec{Name: token.NamePrefix + "own 000000000002", ExpiresOn: past})
	w.e.SetNow(func() time.Time { return t0 })
	w.deletedFirst(gone) // by the other sweep
	swept, err := w.m.Sweep(t.Context(), token.Endpoint{}, false)
	if err != nil {
		t.Fatalf("Sweep: %v", err)
	}
	if diff := cmp.Diff([]string{own}, ids(swept)); diff != "" {
		t.Errorf("swept (-want +got):\n%s", diff)
	}
	if n := w.answered(routeDelete, http.StatusNotFound); n != 1 {
		t.Errorf("%d deletes answered 404, want 1", n)
	}
	var saidGone bool
	for _, l := range w.logs.All() {
		if strings.Contains(l, "deleted") && strings.Contains(l, gone) {
			t.Errorf("logged %q for a token that was already gone", l)
		}
		saidGone = saidGone || strings.Contains(l, gone) && strings.Contains(l, "already gone")
	}
	if !saidGone {
		t.Errorf("no log line says token %s was already gone: %q", gone, w.logs.All())
	}
	w.mustNoOrphans(t)
}

func ids(ts []token.Info) []string {
	var out []string
	for _, t := range ts {
		out = append(out, t.ID)
	}
	return out
}

// TestMint_LostCreateRollRefused: a lost create is found by name, but the
// roll that would adopt it is refused (a 4xx, not retried): nothing is
// handed over, the token is deleted — no orphan — the error says the
// adoption failed and why, and the ledger is left with nothing for the
// clean-up step to do.
func TestMint_LostCreateRollRefused(t *testing.T) {
	t.Parallel()
	w, rec := mustLedgerWorld(t)
	w.e.AddFault(emulator.Fault{Route: routeCreate, Kind: emulator.LostResponse, Times: 1})
	w.e.AddFault(emulator.Fault{Route: routeRoll, Kind: emulator.Status, Status: http.StatusForbidden, Times: 1})
	_, err := w.m.Mint(t.Context(), w.request(t), func(mint.Minted) error { t.Error("handover ran"); return nil })
	var serr *mint.StepError
	if !errors.As(err, &serr) || serr.Step != mint.StepRoll || !errors.Is(err, token.ErrForbidden) || !errors.Is(err, token.ErrOutcomeUnknown) {
		t.Fatalf("Mint = %v, want the lost create and the refused roll", err)
	}
	if !strings.Contains(err.Error(), "roll token") || !strings.Contains(err.Error(), "403") {
		t.Errorf("Mint = %q, want it to name the roll and its 403", err)
	}
	var rerr *mint.RevokeError
	if errors.As(err, &rerr) {
		t.Errorf("the token could not be deleted: %v", err)
	}
	if n := len(w.requests(routeRoll)); n != 1 {
		t.Errorf("%d rolls, want 1: a 403 is not retried", n)
	}
	if n := w.answered(routeDelete, http.StatusOK); n != 1 {
		t.Errorf("%d deletes, want 1", n)
	}
	all := rec.All()
	if !slices.ContainsFunc(all, func(l mint.Ledger) bool { return l.ID != "" && !l.Pending }) {
		t.Errorf("ledgers %+v: the found token's id was never recorded before its delete", all)
	}
	if last := all[len(all)-1]; last.ID != "" || last.Pending {
		t.Errorf("the last ledger says %+v, want no token and no create pending (it was found, and deleted)", last)
	}
	w.mustNoOrphans(t)
}

// TestMint_DeleteNamedAlreadyGone: a same-named token that another delete
// removed between the look-up and this one's DELETE (a 404) is not
// returned as deleted here: the post step and the broker's audit report
// what DeleteNamed returns.
func TestMint_DeleteNamedAlreadyGone(t *testing.T) {
	t.Parallel()
	w := mustWorld(t)
	name := token.NamePrefix + "twin 000000000003"
	gone, _ := w.e.IssueUserToken(w.seed.UserID, emulator.TokenSpec{Name: name, ExpiresOn: t0.Add(time.Hour)})
	twin, _ := w.e.IssueUserToken(w.seed.UserID, emulator.TokenSpec{Name: name, ExpiresOn: t0.Add(time.Hour)})
	w.deletedFirst(gone)
	deleted, err := w.m.DeleteNamed(t.Context(), token.Endpoint{}, name, "", false)
	if err != nil {
		t.Fatalf("DeleteNamed: %v", err)
	}
	if diff := cmp.Diff([]string{twin}, ids(deleted)); diff != "" {
		t.Errorf("deleted (-want +got):\n%s", diff)
	}
	w.mustNoOrphans(t)
}
