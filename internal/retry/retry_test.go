package retry

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cf-scoped-token/cf-scoped-token/internal/clocktest"
)

// TestBackoff: capped exponential backoff with full jitter; a server's wait
// honoured, spread by up to half of itself, and capped.
func TestBackoff(t *testing.T) {
	t.Parallel()
	p := Policy{Base: 100 * time.Millisecond, Max: 2 * time.Second, Jitter: func() float64 { return 0.999 }}
	var got []time.Duration
	for n := 1; n <= 8; n++ {
		got = append(got, p.Backoff(n, 0))
	}
	want := []time.Duration{99900 * time.Microsecond, 199800 * time.Microsecond, 399600 * time.Microsecond,
		799200 * time.Microsecond, 1598400 * time.Microsecond, 1998 * time.Millisecond, 1998 * time.Millisecond, 1998 * time.Millisecond}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("backoffs (-want +got):\n%s", diff)
	}
	// Far past the shift limit the ceiling stays Max, never overflows to 0.
	if d := p.Backoff(100, 0); d != 1998*time.Millisecond {
		t.Errorf("Backoff(100) = %s", d)
	}
	for _, tc := range []struct {
		jitter       float64
		after, max   time.Duration
		want         time.Duration
		whyInComment string
	}{
		{0, time.Second, 10 * time.Second, time.Second, "never less than asked"},
		{0.5, time.Second, 10 * time.Second, 1250 * time.Millisecond, "spread by jitter × half"},
		{0.999, 4 * time.Second, 10 * time.Second, 5998 * time.Millisecond, "at most half again"},
		{0.999, 8 * time.Second, 10 * time.Second, 11996 * time.Millisecond, "not cut by Max"},
	} {
		q := Policy{Max: tc.max, Jitter: func() float64 { return tc.jitter }}
		if got := q.Backoff(1, tc.after); got != tc.want {
			t.Errorf("Backoff with Retry-After %s, jitter %v = %s, want %s (%s)", tc.after, tc.jitter, got, tc.want, tc.whyInComment)
		}
	}
	if d := (Policy{Jitter: func() float64 { return 0 }}).Backoff(3, 0); d != 0 {
		t.Errorf("Backoff with jitter 0 = %s, want 0", d)
	}
}

// TestAfter: Retry-After as whole seconds or an HTTP date (any of the three
// forms RFC 9110 §5.6.7 allows), against the given clock; absent, malformed
// or past is no wait; a huge one is MaxAfter, never a duration that wraps
// around to a negative or a small wait.
func TestAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 27, 20, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		header string
		want   time.Duration
	}{
		{"", 0},
		{"7", 7 * time.Second},
		{" 7 ", 7 * time.Second},
		{"0", 0},
		{"-1", 0},
		{"1.5", 0},
		{"soon", 0},
		{"3600", time.Hour},
		{"3601", MaxAfter},
		{"9223372036", MaxAfter},              // × 1s is just below the int64 limit: Backoff's spread wrapped
		{"9223372036854775807", MaxAfter},     // × 1s wraps to -1s
		{"99999999999999999999999", MaxAfter}, // past uint64: still "a very long time"
		{"Fri, 27 Nov 2026 20:30:00 GMT", 30 * time.Minute},
		{"Friday, 27-Nov-26 20:30:00 GMT", 30 * time.Minute}, // RFC 850
		{"Fri Nov 27 20:30:00 2026", 30 * time.Minute},       // ANSI C asctime
		{"Fri, 27 Nov 2026 19:00:00 GMT", 0},                 // past
		{"Fri, 31 Dec 9999 23:59:59 GMT", MaxAfter},          // far future
	} {
		if got := After(tc.header, now); got != tc.want {
			t.Errorf("After(%q) = %s, want %s", tc.header, got, tc.want)
		}
	}
	// Whatever a caller hands Backoff, the wait is positive and bounded.
	p := Policy{Jitter: func() float64 { return 0.999 }}
	for _, after := range []time.Duration{MaxAfter, MaxAfter + 1, time.Duration(1<<63 - 1)} {
		if got := p.Backoff(1, after); got < MaxAfter || got > MaxAfter*3/2 {
			t.Errorf("Backoff(1, %d) = %s, want between %s and half again", after, got, MaxAfter)
		}
	}
}

// TestDo: attempts, verdicts, the wait a server asks for, progress from the
// second failure on, each attempt's timeout, and cancellation.
func TestDo(t *testing.T) {
	t.Parallel()
	errFlaky := errors.New("flaky")
	errFinal := errors.New("final")
	errThrottled := errors.New("throttled")
	t.Run("until it succeeds", func(t *testing.T) {
		t.Parallel()
		var w clocktest.Sleeps
		var progress []string
		p := Policy{Attempts: 5, Base: 100 * time.Millisecond, Max: time.Second, Sleep: w.Sleep,
			Jitter: func() float64 { return 0.5 },
			Progress: func(n, of int, err error, d time.Duration) {
				progress = append(progress, fmt.Sprintf("%d/%d %v %s", n, of, err, d))
			}}
		calls := 0
		err := p.Do(t.Context(), func(context.Context) error {
			if calls++; calls < 4 {
				return errFlaky
			}
			return nil
		}, func(error) Verdict { return Verdict{Again: true} })
		if err != nil || calls != 4 {
			t.Fatalf("Do = %v after %d calls, want nil after 4", err, calls)
		}
		if diff := cmp.Diff([]time.Duration{50 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond}, w.All()); diff != "" {
			t.Errorf("waits (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]string{"2/5 flaky 100ms", "3/5 flaky 200ms"}, progress); diff != "" {
			t.Errorf("progress (-want +got):\n%s", diff)
		}
	})
	t.Run("not again", func(t *testing.T) {
		t.Parallel()
		var w clocktest.Sleeps
		calls := 0
		err := Policy{Attempts: 5, Sleep: w.Sleep}.Do(t.Context(), func(context.Context) error { calls++; return errFinal },
			func(error) Verdict { return Verdict{} })
		if !errors.Is(err, errFinal) || calls != 1 || len(w.All()) != 0 {
			t.Errorf("Do = %v after %d calls and %d waits, want errFinal after 1 and none", err, calls, len(w.All()))
		}
	})
	t.Run("out of attempts, a server's wait honoured", func(t *testing.T) {
		t.Parallel()
		var w clocktest.Sleeps
		calls := 0
		err := Policy{Attempts: 3, Sleep: w.Sleep, Jitter: func() float64 { return 0 }}.Do(t.Context(), func(context.Context) error { calls++; return errFlaky },
			func(error) Verdict { return Verdict{Again: true, After: 2 * time.Second} })
		if !errors.Is(err, errFlaky) || calls != 3 {
			t.Errorf("Do = %v after %d calls, want errFlaky after 3", err, calls)
		}
		if diff := cmp.Diff([]time.Duration{2 * time.Second, 2 * time.Second}, w.All()); diff != "" {
			t.Errorf("waits (-want +got):\n%s", diff)
		}
	})
	t.Run("a throttled attempt uses up none, until the deadline", func(t *testing.T) {
		t.Parallel()
		var w clocktest.Sleeps
		calls := 0
		ctx, cancel := context.WithCancel(t.Context())
		err := Policy{Attempts: 3, Max: time.Minute, Sleep: w.Sleep, Jitter: func() float64 { return 0 }}.Do(ctx,
			func(ctx context.Context) error {
				if calls++; calls == 7 {
					cancel() // the deadline, with the seventh attempt in flight
					return fmt.Errorf("post: %w", ctx.Err())
				}
				return errFlaky
			},
			func(error) Verdict { return Verdict{Again: true, After: 7 * time.Second, Throttled: true} })
		if calls != 7 || !errors.Is(err, context.Canceled) || !errors.Is(err, errFlaky) {
			t.Errorf("Do = %v after %d calls, want the deadline and the last answer after 7", err, calls)
		}
		// One line: it becomes one ::error::, whose text a runner shows as it
		// is. Seven attempts were sent; the seventh was cut.
		if want := "post: context canceled after 7 attempts; the answer before it: flaky"; err == nil || err.Error() != want {
			t.Errorf("Do = %q, want %q", err, want)
		}
		if got := w.All(); len(got) != 6 || got[0] != 7*time.Second {
			t.Errorf("waits %v, want six of the 7s the server asked for", got)
		}
		// Without a deadline a bound still holds.
		calls = 0
		_ = Policy{Attempts: 3, Sleep: w.Sleep}.Do(t.Context(), func(context.Context) error { calls++; return errFlaky },
			func(error) Verdict { return Verdict{Again: true, After: time.Second, Throttled: true} })
		if calls != 30 {
			t.Errorf("%d calls without a deadline, want the bound of 10 × 3", calls)
		}
	})
	t.Run("progress counts the attempts that count", func(t *testing.T) {
		t.Parallel()
		var progress []string
		p := Policy{Attempts: 3, Sleep: noWait, Jitter: func() float64 { return 0 },
			Progress: func(n, of int, err error, _ time.Duration) {
				progress = append(progress, fmt.Sprintf("%d/%d %v", n, of, err))
			}}
		calls := 0
		err := p.Do(t.Context(), func(context.Context) error {
			if calls++; calls <= 3 {
				return errThrottled
			}
			return errFlaky
		}, func(err error) Verdict {
			return Verdict{Again: true, After: time.Second, Throttled: errors.Is(err, errThrottled)}
		})
		if !errors.Is(err, errFlaky) || calls != 6 {
			t.Errorf("Do = %v after %d calls, want errFlaky after 6 (3 throttled, 3 counted)", err, calls)
		}
		// A throttled attempt is sent again under its number; none is past 3.
		want := []string{"1/3 throttled", "1/3 throttled", "1/3 flaky", "2/3 flaky"}
		if diff := cmp.Diff(want, progress); diff != "" {
			t.Errorf("progress (-want +got):\n%s", diff)
		}
	})
	t.Run("each attempt under its timeout", func(t *testing.T) {
		t.Parallel()
		var w clocktest.Sleeps
		calls := 0
		err := Policy{Attempts: 2, Timeout: 20 * time.Millisecond, Sleep: w.Sleep}.Do(t.Context(), func(ctx context.Context) error {
			calls++
			<-ctx.Done()
			return ctx.Err()
		}, func(error) Verdict { return Verdict{Again: true} })
		if !errors.Is(err, context.DeadlineExceeded) || calls != 2 {
			t.Errorf("Do = %v after %d calls, want each attempt timed out, and tried again", err, calls)
		}
	})
	t.Run("cancelled in flight, after an answer", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(t.Context())
		calls := 0
		err := Policy{Attempts: 5, Sleep: noWait}.Do(ctx, func(context.Context) error {
			if calls++; calls == 1 {
				return errFlaky
			}
			cancel()
			return errFinal // what the cut attempt got: it is kept, not only the answer before
		}, func(error) Verdict { return Verdict{Again: true} })
		if !errors.Is(err, context.Canceled) || !errors.Is(err, errFinal) || !errors.Is(err, errFlaky) || calls != 2 {
			t.Errorf("Do = %v after %d calls, want the cancellation, the cut attempt and the answer before after 2", err, calls)
		}
		if want := "context canceled: final after 2 attempts; the answer before it: flaky"; err == nil || err.Error() != want {
			t.Errorf("Do = %q, want %q", err, want)
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(t.Context())
		calls := 0
		err := Policy{Attempts: 5}.Do(ctx, func(context.Context) error { calls++; cancel(); return errFlaky },
			func(error) Verdict { return Verdict{Again: true} })
		if !errors.Is(err, context.Canceled) || !errors.Is(err, errFlaky) || calls != 1 {
			t.Errorf("Do = %v after %d calls, want the cancellation and the cause after 1", err, calls)
		}
	})
}

// noWait stands in for Sleep where the waits do not matter.
func noWait(ctx context.Context, _ time.Duration) error { return ctx.Err() }

// TestSleep: it waits, and ends early when its context does.
func TestSleep(t *testing.T) {
	t.Parallel()
	start := time.Now()
	if err := Sleep(t.Context(), 20*time.Millisecond); err != nil || time.Since(start) < 20*time.Millisecond {
		t.Errorf("Sleep returned %v after %s", err, time.Since(start))
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	start = time.Now()
	if err := Sleep(ctx, time.Hour); !errors.Is(err, context.Canceled) || time.Since(start) > time.Second {
		t.Errorf("Sleep on a cancelled context = %v after %s", err, time.Since(start))
	}
}
