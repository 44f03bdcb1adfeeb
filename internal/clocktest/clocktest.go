// Package clocktest is a settable clock for tests: the emulator's, the
// local OIDC issuer's and the verifier's tests move time forward with it
// (token expiry, key refreshes, replay windows) without waiting. It is
// imported by _test.go files only.
package clocktest

import "time"

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
