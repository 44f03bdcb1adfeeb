// Package clocktest is test time: a settable clock, with which the
// emulator's, the local OIDC issuer's and the verifier's tests move time
// forward (token expiry, key refreshes, replay windows), and a recording
// Sleep, with which the client's and the minter's tests see their backoffs;
// neither waits. It is imported by _test.go files only.
package clocktest

import (
	"context"
	"slices"
	"sync"
	"time"
)

// Clock is a settable time source, safe for concurrent use.
type Clock struct {
	ch chan time.Time // holds the current time; a 1-slot channel is a race-free box
}

// New returns a Clock at t.
func New(t time.Time) *Clock {
	c := &Clock{ch: make(chan time.Time, 1)}
	c.ch <- t
	return c
}

// Now returns the clock's time; its method value is a Now func for the
// code under test.
func (c *Clock) Now() time.Time {
	t := <-c.ch
	c.ch <- t
	return t
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	t := <-c.ch
	c.ch <- t.Add(d)
}

// Sleeps stands in for a retry policy's Sleep: it records each wait asked
// for and returns at once (with ctx's error when ctx has ended), so that a
// test sees the backoffs without waiting them out. Safe for concurrent use.
type Sleeps struct {
	mu sync.Mutex
	d  []time.Duration
}

// Sleep records d.
func (s *Sleeps) Sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	s.d = append(s.d, d)
	s.mu.Unlock()
	return ctx.Err()
}

// All returns the waits recorded so far, in order.
func (s *Sleeps) All() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.d)
}
