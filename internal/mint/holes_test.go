package mint_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cf-scoped-token/cf-scoped-token/internal/emulator"
	"github.com/cf-scoped-token/cf-scoped-token/internal/mint"
	"github.com/cf-scoped-token/cf-scoped-token/internal/token"
)

// ledgerLog records every Ledger the Minter hands to Record.
type ledgerLog struct{ record[mint.Ledger] }

func (r *ledgerLog) Record(l mint.Ledger) error {
	r.add(l)
	return nil
}

// mustLedgerWorld is a world whose Minter records every Ledger in the log
// it returns.
func mustLedgerWorld(tb testing.TB) (*world, *ledgerLog) {
	tb.Helper()
	w := mustWorld(tb)
	rec := &ledgerLog{}
	w.m.Record = rec.Record
	return w, rec
}

// heldCreate is a hook that takes the first create off the wire and resets
// the client's connection without an answer, keeping the request so the
// test can let it commit later — a slow create that commits after its
// caller stopped waiting.
type heldCreate struct {
	mu   sync.Mutex
	body []byte
	req  *http.Request
}

func (h *heldCreate) hook(rw http.ResponseWriter, r *http.Request) bool {
	if r.Method != http.MethodPost || h.taken() {
		return false
	}
	body, _ := io.ReadAll(r.Body)
	h.mu.Lock()
	h.body, h.req = body, r.Clone(context.Background())
	h.mu.Unlock()
	if conn, _, err := http.NewResponseController(rw).Hijack(); err == nil {
		_ = conn.Close()
	}
	return true
}

func (h *heldCreate) taken() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.req != nil
}

// commit lets the held create reach the emulator now.
func (h *heldCreate) commit(e *emulator.Emulator) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.req == nil {
		return
	}
	r := h.req
	r.Body = io.NopCloser(bytes.NewReader(h.body))
	e.ServeHTTP(httptest.NewRecorder(), r)
	h.req = nil
	h.body = []byte("committed")
}

// TestHole1_MaskBeforeUse: the value is handed to Mask the moment the API
// returns it — before verify sends it, before any log line — and so is a
// rolled value.
func TestHole1_MaskBeforeUse(t *testing.T) {
	t.Parallel()
	for _, lost := range []bool{false, true} {
		t.Run(map[bool]string{false: "created", true: "adopted"}[lost], func(t *testing.T) {
			t.Parallel()
			w := mustWorld(t)
			if lost {
				w.e.AddFault(emulator.Fault{Route: routeCreate, Kind: emulator.LostResponse, Times: 1})
			}
			var masked []string
			var logsAtMask, verifiesAtMask int
			w.m.Mask = func(s token.Secret) error {
				masked = append(masked, s.Reveal())
				logsAtMask, verifiesAtMask = len(w.logs.All()), len(w.requests(routeVerify))
				return nil
			}
			got := w.mustMint(t, w.request(t))
			if len(masked) != 1 || masked[0] != got.Value.Reveal() {
				t.Fatalf("masked %d values, want the one handed over", len(masked))
			}
			if verifiesAtMask != 0 {
				t.Errorf("verify had been sent %d times when the value was masked", verifiesAtMask)
			}
			// Only lines about requests sent before the value existed.
			for _, l := range w.logs.All()[:logsAtMask] {
				if strings.Contains(l, "created token") || strings.Contains(l, "verify") || strings.Contains(l, "adopted") {
					t.Errorf("logged before the mask: %q", l)
				}
			}
			w.mustNoOrphans(t, got.ID)
		})
	}
	// A mask that cannot be written: the token is deleted, nothing handed over.
	w := mustWorld(t)
	w.m.Mask = func(token.Secret) error { return errors.New("stdout closed") }
	_, err := w.m.Mint(t.Context(), w.request(t), func(mint.Minted) error { t.Error("handover ran"); return nil })
	if err == nil || !strings.Contains(err.Error(), "mask token") {
		t.Errorf("Mint = %v, want the mask failure", err)
	}
	if n := len(w.requests(routeVerify)); n != 0 {
		t.Errorf("%d verifies of an unmasked token", n)
	}
	w.mustNoOrphans(t)
}

// TestHole2_LedgerBeforeEachStep: what a clean-up needs is recorded before
// the step that could leave something behind: the name before the first
// create, the id the moment it exists, a lost answer when it is lost, and
// the id cleared only once the token is really deleted.
func TestHole2_LedgerBeforeEachStep(t *testing.T) {
	t.Parallel()
	t.Run("clean run", func(t *testing.T) {
		t.Parallel()
		w, rec := mustLedgerWorld(t)
		var createsAtFirstRecord = -1
		w.m.Record = func(l mint.Ledger) error {
			if createsAtFirstRecord < 0 {
				createsAtFirstRecord = len(w.requests(routeCreate))
			}
			return rec.Record(l)
		}
		got := w.mustMint(t, w.request(t))
		if createsAtFirstRecord != 0 {
			t.Errorf("the first record came after %d creates, want before any", createsAtFirstRecord)
		}
		want := []mint.Ledger{
			{Name: got.Name, ExpiresOn: got.ExpiresOn, Pending: true},
			{Name: got.Name, ExpiresOn: got.ExpiresOn, ID: got.ID},
		}
		if diff := cmp.Diff(want, rec.All()); diff != "" {
			t.Errorf("ledgers (-want +got):\n%s", diff)
		}
	})
	t.Run("failed verify, deleted", func(t *testing.T) {
		t.Parallel()
		w, rec := mustLedgerWorld(t)
		w.e.AddFault(emulator.Fault{Route: routeVerify, Kind: emulator.Status, Status: 401})
		if _, err := w.m.Mint(t.Context(), w.request(t), func(mint.Minted) error { return nil }); err == nil {
			t.Fatal("Mint succeeded")
		}
		all := rec.All()
		if last := all[len(all)-1]; last.ID != "" || last.Pending {
			t.Errorf("after the token was deleted the ledger says %+v, want no token", last)
		}
		w.mustNoOrphans(t)
	})
	t.Run("failed verify, rollback failed: the id stays for the clean-up step", func(t *testing.T) {
		t.Parallel()
		w, rec := mustLedgerWorld(t)
		w.e.AddFault(emulator.Fault{Route: routeVerify, Kind: emulator.Status, Status: 401})
		w.e.AddFault(emulator.Fault{Route: routeDelete, Kind: emulator.Status, Status: 500})
		_, err := w.m.Mint(t.Context(), w.request(t), func(mint.Minted) error { return nil })
		var rerr *mint.RevokeError
		var verr *mint.VerifyError
		if !errors.As(err, &rerr) || !errors.As(err, &verr) {
			t.Fatalf("Mint = %v, want the verify failure and the delete failure", err)
		}
		all := rec.All()
		if last := all[len(all)-1]; last.ID != rerr.ID {
			t.Errorf("the ledger lost the id of a token that could not be deleted: %+v", last)
		}
		w.mustNoOrphans(t, rerr.ID)
	})
	t.Run("lost answer", func(t *testing.T) {
		t.Parallel()
		w, rec := mustLedgerWorld(t)
		w.e.AddFault(emulator.Fault{Route: routeCreate, Kind: emulator.LostResponse, Times: 1})
		got := w.mustMint(t, w.request(t))
		all := rec.All()
		if !all[1].Lost || !all[1].Pending || all[1].ID != "" {
			t.Errorf("after the lost answer: %+v, want Lost and Pending, no id", all[1])
		}
		if last := all[len(all)-1]; last.ID != got.ID || !last.Lost || last.Pending {
			t.Errorf("after the adoption: %+v, want the id, still Lost (a twin may commit later)", last)
		}
	})
}

// TestHole2_CancelledDuringCreate: the run is cancelled while a create is
// on the wire and it commits; the look-up by name runs on what is left of
// the grace, finds it and deletes it.
func TestHole2_CancelledDuringCreate(t *testing.T) {
	t.Parallel()
	w := mustWorld(t)
	ctx, cancel := context.WithCancel(t.Context())
	w.setHook(func(rw http.ResponseWriter, r *http.Request) bool {
		if r.Method != http.MethodPost {
			return false
		}
		cancel()                                                             // the job is cancelled mid-create…
		w.e.ServeHTTP(httptest.NewRecorder(), r.Clone(context.Background())) // …which commits all the same
		return true
	})
	_, err := w.m.Mint(ctx, w.request(t), func(mint.Minted) error { t.Error("handover ran"); return nil })
	if err == nil {
		t.Fatal("Mint succeeded")
	}
	w.mustNoOrphans(t)
}

// TestHole2_CancelledDuringCreateAfterRateLimit: a first create is refused
// with a 429, the second is on the wire when the run is cancelled, and it
// commits: that 429 says nothing of the second attempt, so the create's
// outcome is unknown, the token is looked up by name and deleted.
func TestHole2_CancelledDuringCreateAfterRateLimit(t *testing.T) {
	t.Parallel()
	w, rec := mustLedgerWorld(t)
	w.e.AddFault(emulator.Fault{Route: routeCreate, Kind: emulator.RateLimit, Times: 1})
	ctx, cancel := context.WithCancel(t.Context())
	var posts atomic.Int32
	w.setHook(func(rw http.ResponseWriter, r *http.Request) bool {
		if r.Method != http.MethodPost || posts.Add(1) == 1 {
			return false // the first: the emulator's 429
		}
		cancel()                                                             // the job is cancelled mid-create…
		w.e.ServeHTTP(httptest.NewRecorder(), r.Clone(context.Background())) // …which commits all the same
		select {
		case <-r.Context().Done(): // no answer: the client has gone
		case <-time.After(10 * time.Second):
		}
		return true
	})
	_, err := w.m.Mint(ctx, w.request(t), func(mint.Minted) error { t.Error("handover ran"); return nil })
	if !errors.Is(err, token.ErrOutcomeUnknown) || !strings.Contains(err.Error(), "found by name and deleted") {
		t.Errorf("Mint = %v, want an unknown outcome whose token was found by name and deleted", err)
	}
	if n := w.answered(routeCreate, http.StatusTooManyRequests); n != 1 || posts.Load() != 2 {
		t.Errorf("%d creates answered 429 of %d, want 1 of 2", n, posts.Load())
	}
	all := rec.All()
	if !slices.ContainsFunc(all, func(l mint.Ledger) bool { return l.Lost }) {
		t.Errorf("ledgers %+v: the lost answer was never recorded", all)
	}
	if last := all[len(all)-1]; last.Pending || last.ID != "" {
		t.Errorf("the last ledger says %+v, want nothing left", last)
	}
	w.mustNoOrphans(t)
}

// TestHole5_MalformedCreateAnswer: an answer with an id that no real API
// gives (it would be a workflow command once printed) is not acted on: the
// token the create made is found by name and deleted.
func TestHole5_MalformedCreateAnswer(t *testing.T) {
	t.Parallel()
	w := mustWorld(t)
	w.setHook(func(rw http.ResponseWriter, r *http.Request) bool {
		if r.Method != http.MethodPost {
			return false
		}
		rec := httptest.NewRecorder()
		w.e.ServeHTTP(rec, r)
		body := rec.Body.String()
		i := strings.Index(body, `"id":"`) + len(`"id":"`)
		body = body[:i+32] + `\n::stop-commands::pwned` + body[i+32:]
		rw.Header().Set("Content-Type", "application/json")
		_, _ = rw.Write([]byte(body))
		return true
	})
	_, err := w.m.Mint(t.Context(), w.request(t), func(mint.Minted) error { t.Error("handover ran"); return nil })
	if !errors.Is(err, token.ErrBadAnswer) || !strings.Contains(err.Error(), "found by name and deleted") {
		t.Fatalf("Mint = %v, want a malformed answer whose token was found and deleted", err)
	}
	if strings.Contains(err.Error(), "::stop-commands::") {
		t.Errorf("the error quotes the answer: %v", err)
	}
	w.mustNoOrphans(t)
}

// TestHole8_RevokeFinishesUnderCancellation: a revoke on a cancelled
// context still deletes the token, within the grace; past the grace it
// gives up.
func TestHole8_RevokeFinishesUnderCancellation(t *testing.T) {
	t.Parallel()
	w := mustWorld(t)
	got := w.mustMint(t, w.request(t))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if out, err := w.m.Revoke(ctx, got.Endpoint, got.Info); err != nil || out != mint.Deleted {
		t.Fatalf("Revoke on a cancelled context = %v, %v, want Deleted", out, err)
	}
	w.mustNoOrphans(t)

	got = w.mustMint(t, w.request(t))
	w.m.Grace = 100 * time.Millisecond
	w.e.AddFault(emulator.Fault{Route: routeDelete, Kind: emulator.Latency, Delay: 5 * time.Second})
	start := time.Now()
	if _, err := w.m.Revoke(ctx, got.Endpoint, got.Info); err == nil {
		t.Error("a revoke past the grace succeeded")
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("the revoke took %s, far past a 100ms grace", d)
	}
}

// TestHole10_SlowCreateMakesNoTwin: a create that commits after its answer
// timed out is found by the repeated look-ups and adopted; one that commits
// later still, once a second create went out, is the twin main deletes.
func TestHole10_SlowCreateMakesNoTwin(t *testing.T) {
	t.Parallel()
	t.Run("found by a later look-up", func(t *testing.T) {
		t.Parallel()
		w := mustWorld(t)
		held := &heldCreate{}
		lists := 0
		w.setHook(func(rw http.ResponseWriter, r *http.Request) bool {
			if r.Method == http.MethodGet && r.URL.Path == emulator.BasePath+"/user/tokens" {
				if lists++; lists == 3 {
					held.commit(w.e) // it commits between the second and third look-up
				}
				return false
			}
			return held.hook(rw, r)
		})
		got := w.mustMint(t, w.request(t))
		if !got.Adopted {
			t.Error("the slow create was not adopted")
		}
		if n := len(w.requests(routeCreate)); n != 1 {
			t.Errorf("%d creates reached the API, want 1 (no second create while the first may commit)", n)
		}
		w.mustNoOrphans(t, got.ID)
	})
	t.Run("a twin after the second create is deleted", func(t *testing.T) {
		t.Parallel()
		w := mustWorld(t)
		held := &heldCreate{}
		w.setHook(func(rw http.ResponseWriter, r *http.Request) bool {
			if r.Method == http.MethodPost && held.taken() {
				held.commit(w.e) // the first create commits just as the second arrives
				return false
			}
			return held.hook(rw, r)
		})
		got := w.mustMint(t, w.request(t))
		if n := len(w.requests(routeCreate)); n != 2 {
			t.Fatalf("%d creates, want 2", n)
		}
		w.mustNoOrphans(t, got.ID)
	})
}

// TestMint_OneGracePerCall: once the run's context has ended, a call's
// whole clean-up — the look-ups, the waits between them, the deletes — gets
// one grace, not one per step: graces that add up would run past the
// runner's kill. Each case would take two graces if they did; the bound
// allows half a grace of slack for a slow machine. A look-up cut short by
// the grace is an error, never "none found".
func TestMint_OneGracePerCall(t *testing.T) {
	t.Parallel()
	const grace = time.Second
	const bound = grace + grace/2
	// waitOut is a Minter.Sleep that waits until its context ends, as a
	// look-up's wait does when the grace is shorter.
	waitOut := func(ctx context.Context, _ time.Duration) error { <-ctx.Done(); return ctx.Err() }
	t.Run("patient DeleteNamed", func(t *testing.T) {
		t.Parallel()
		w := mustWorld(t)
		w.m.Grace, w.m.Sleep = grace, waitOut
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		start := time.Now()
		deleted, err := w.m.DeleteNamed(ctx, token.Endpoint{}, token.NamePrefix+"never made", "", true)
		if d := time.Since(start); d > bound {
			t.Errorf("DeleteNamed took %s, want about one grace (%s)", d, grace)
		}
		// The create may still commit: "deleted 0" would say it was ruled out.
		if err == nil || !errors.Is(err, context.Canceled) || len(deleted) != 0 {
			t.Errorf("DeleteNamed with its look-ups cut = %v, %v; want an error", deleted, err)
		}
		if n := len(w.requests(routeList)); n != 1 {
			t.Errorf("%d look-ups, want 1 before the wait the grace cut", n)
		}
	})
	t.Run("Revoke then DeleteNamed on one CleanupContext", func(t *testing.T) {
		t.Parallel()
		w := mustWorld(t)
		w.m.Grace, w.m.Sleep = grace, waitOut
		minted := w.mustMint(t, w.request(t))
		// The delete takes most of the grace; the look-up after it gets only
		// the rest, as the post step makes them after a cancellation.
		w.e.AddFault(emulator.Fault{Route: routeDelete, Kind: emulator.Latency, Delay: grace * 8 / 10})
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		start := time.Now()
		cctx, cancelClean := w.m.CleanupContext(ctx)
		defer cancelClean()
		if _, err := w.m.Revoke(cctx, token.Endpoint{}, minted.Info); err != nil {
			t.Fatalf("Revoke: %v", err)
		}
		_, _ = w.m.DeleteNamed(cctx, token.Endpoint{}, minted.Name, minted.ID, true)
		if d := time.Since(start); d > bound {
			t.Errorf("Revoke and DeleteNamed took %s, want one grace (%s) for both", d, grace)
		}
	})
	t.Run("lost create under cancellation", func(t *testing.T) {
		t.Parallel()
		w := mustWorld(t)
		w.m.Grace = grace
		// The look-up takes most of the grace; the delete of what it found
		// gets only the rest.
		w.e.AddFault(emulator.Fault{Route: routeList, Kind: emulator.Latency, Delay: grace * 8 / 10})
		w.e.AddFault(emulator.Fault{Route: routeDelete, Kind: emulator.Latency, Delay: time.Hour})
		ctx, cancel := context.WithCancel(t.Context())
		var start time.Time
		w.setHook(func(rw http.ResponseWriter, r *http.Request) bool {
			if r.Method != http.MethodPost {
				return false
			}
			start = time.Now()
			cancel()                                                             // the job is cancelled mid-create…
			w.e.ServeHTTP(httptest.NewRecorder(), r.Clone(context.Background())) // …which commits all the same
			<-r.Context().Done()
			return true
		})
		_, err := w.m.Mint(ctx, w.request(t), func(mint.Minted) error { t.Error("handover ran"); return nil })
		if d := time.Since(start); d > bound {
			t.Errorf("Mint took %s after the cancellation, want about one grace (%s)", d, grace)
		}
		var rerr *mint.RevokeError
		if !errors.As(err, &rerr) {
			t.Fatalf("Mint = %v, want the delete the grace cut to name its token", err)
		}
		w.mustNoOrphans(t, rerr.ID)
	})
}
