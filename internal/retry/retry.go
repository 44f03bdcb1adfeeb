// Package retry is the one way the tool waits and tries again: capped
// exponential backoff with full jitter, honouring the wait a server asks
// for (Retry-After) and spreading it, each attempt under its own timeout,
// all under the caller's context. The Cloudflare client, the broker's
// client, the runner's OIDC token request and the lifecycle's look-ups use
// it, so that every long wait behaves, and reports itself, the same way.
package retry

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Policy says how often and how long to wait.
type Policy struct {
	Attempts int           // attempts per call, the first included; 0: 1
	Base     time.Duration // first backoff; 0: DefaultBase
	Max      time.Duration // cap on one computed backoff; 0: DefaultMax
	Timeout  time.Duration // bound on one attempt; 0: none
	// Sleep waits or returns ctx.Err(); nil: Sleep. Tests inject one that
	// does not wait.
	Sleep func(ctx context.Context, d time.Duration) error
	// Jitter returns a number in [0, 1); nil: math/rand/v2.
	Jitter func() float64
	// Progress, if set, hears of each failed attempt after the first that
	// will be tried again, with the wait before the next: a long wait is
	// never silent. attempt counts only the attempts that use one up (at
	// most attempts): one the server throttled (Verdict.Throttled) is sent
	// again under its number, and err says why.
	Progress func(attempt, attempts int, err error, wait time.Duration)
}

// The waits of a policy that names none: they ride out about a minute of
// trouble over ten attempts (0.5s, 1s, 2s … capped at 30s, jittered).
const (
	DefaultBase = 500 * time.Millisecond
	DefaultMax  = 30 * time.Second
)

// MaxAfter bounds a wait a server asks for (After, Backoff). Cloudflare's
// rate limit counts over 5 minutes and the broker's over at most an hour,
// and every phase of the tool has a deadline of minutes that ends a longer
// wait anyway; so an hour cuts no honest Retry-After, while a huge one — a
// number of seconds that overflows a time.Duration, a date in the year
// 9999 — can no longer wrap around to a negative wait, which would send
// requests back to back.
const MaxAfter = time.Hour

// After reads a Retry-After header (RFC 9110 §10.2.3): whole seconds, or an
// HTTP date read against now. Absent, malformed or past: 0. At most
// MaxAfter.
func After(header string, now time.Time) time.Duration {
	v := strings.TrimSpace(header)
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseUint(v, 10, 64); err == nil || errors.Is(err, strconv.ErrRange) {
		// Digits only; too many for a uint64 is a very long wait too.
		if err != nil || s > uint64(MaxAfter/time.Second) {
			return MaxAfter
		}
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return min(max(0, t.Sub(now)), MaxAfter)
	}
	return 0
}

// uncountedFactor bounds the attempts that waits the server asked for do not
// count, as a multiple of Attempts.
const uncountedFactor = 10

// Verdict is what a failed attempt allows: whether to try again, the wait
// the server asked for (zero: none), and whether the server refused only
// for its rate limit (Throttled). A throttled attempt uses up no attempt —
// when to come back is the server's to say — so a rate limit is waited out
// until the context's deadline, not given up on after a count;
// uncountedFactor times Attempts bounds even that, for a caller without a
// deadline.
type Verdict struct {
	Again     bool
	After     time.Duration
	Throttled bool
}

// Do runs call until it succeeds, judge says its error is not to be tried
// again, the attempts run out, or ctx ends; it returns the last error. When
// ctx ended, the error holds ctx's, the error of the attempt it cut (if it
// cut one) and the answer before, so that a deadline that cut a wait for a
// rate limit still says it was one. Each attempt runs under the policy's
// Timeout.
func (p Policy) Do(ctx context.Context, call func(ctx context.Context) error, judge func(error) Verdict) error {
	attempts := max(p.Attempts, 1)
	var last error // the last attempt's error from before ctx ended
	for n, counted := 1, 1; ; n++ {
		actx, cancel := ctx, context.CancelFunc(func() {})
		if p.Timeout > 0 {
			actx, cancel = context.WithTimeout(ctx, p.Timeout)
		}
		err := call(actx)
		cancel()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			// ctx ended with attempt n in flight: how that attempt ended comes
			// first — it alone says what became of the call — then the
			// answer before it, which may say why the call took so long.
			if !errors.Is(err, ctx.Err()) {
				err = fmt.Errorf("%w: %w", ctx.Err(), err)
			}
			if last != nil {
				return fmt.Errorf("%w after %d attempts; the answer before it: %w", err, n, last)
			}
			return err
		}
		last = err
		v := judge(err)
		attempt := counted // this one's number; a throttled one is sent again under it
		if !v.Throttled {
			counted++
		}
		if !v.Again || counted > attempts || n >= uncountedFactor*attempts {
			return err
		}
		wait := p.Backoff(n, v.After)
		if n >= 2 && p.Progress != nil {
			p.Progress(attempt, attempts, err, wait)
		}
		if serr := p.Wait(ctx, wait); serr != nil {
			return fmt.Errorf("%w after %d attempts; the last answer: %w", serr, n, err)
		}
	}
}

// Backoff is the wait before attempt n+1 (n counts from 1): capped
// exponential backoff with full jitter. A wait the server asked for is
// honoured in full — coming back sooner only meets the limit again — and
// then spread by up to half of itself: every client that shares a limit
// hears the same Retry-After, and all coming back at once would meet it
// too. Max does not cut it (a cap there brought 300 jobs back in the same
// second); the context's deadline bounds it, and MaxAfter keeps the sum
// from overflowing.
func (p Policy) Backoff(n int, after time.Duration) time.Duration {
	base, ceil := p.Base, p.Max
	if base == 0 {
		base = DefaultBase
	}
	if ceil == 0 {
		ceil = DefaultMax
	}
	jitter := rand.Float64
	if p.Jitter != nil {
		jitter = p.Jitter
	}
	if after > 0 {
		after = min(after, MaxAfter)
		return after + time.Duration(jitter()*float64(after)/2)
	}
	return time.Duration(jitter() * float64(min(ceil, base<<min(n-1, 16))))
}

// Wait waits d with the policy's Sleep.
func (p Policy) Wait(ctx context.Context, d time.Duration) error {
	if p.Sleep != nil {
		return p.Sleep(ctx, d)
	}
	return Sleep(ctx, d)
}

// Sleep waits d, or returns ctx.Err() as soon as ctx ends.
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
