package broker

import (
	"context"
	"time"

	"github.com/cf-scoped-token/cf-scoped-token/internal/mint"
	"github.com/cf-scoped-token/cf-scoped-token/internal/retry"
	"github.com/cf-scoped-token/cf-scoped-token/internal/token"
)

// Clean-up of a failed exchange whose token the lifecycle could not delete.
const (
	cleanupAttempts = 8
	cleanupFirst    = time.Second
	cleanupMax      = time.Minute
	cleanupDeadline = 10 * time.Minute
)

// cleanUpLater deletes, in the background, what a failed exchange may have
// left: the token l names, and, when a create answer was lost, any other
// token with l's unique name. It is the broker's counterpart of the
// action's post step; what it cannot delete, the sweep removes once
// expired.
func (s *Server) cleanUpLater(ctx context.Context, l mint.Ledger) {
	s.cleanups.Add(1)
	go func() {
		defer s.cleanups.Done()
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupDeadline)
		defer cancel()
		c := &leftover{Ledger: l, m: s.minter()}
		p := retry.Policy{Attempts: cleanupAttempts, Base: cleanupFirst, Max: cleanupMax, Sleep: s.mintSleep}
		err := p.Do(ctx, func(ctx context.Context) error { return s.cleanUp(ctx, c) },
			func(error) retry.Verdict { return retry.Verdict{Again: true} })
		if err != nil {
			s.logf("clean-up of a failed exchange: token %q may be left until it expires at %s (the sweep deletes it then): %v",
				l.Name, formatTime(l.ExpiresOn), err)
		}
	}()
}

// leftover is what a failed exchange left, as its clean-up goes.
type leftover struct {
	mint.Ledger
	m       *mint.Minter
	revoked bool // the token ID names is deleted (or was gone)
}

// cleanUp is one attempt: it deletes the token c names unless an earlier
// attempt did, then, only when a create answer was lost, looks for tokens
// of the same name (SPEC: twins are looked for only then).
func (s *Server) cleanUp(ctx context.Context, c *leftover) error {
	ctx, cancel := c.m.CleanupContext(ctx) // one grace for the delete and the look-up
	defer cancel()
	if c.ID != "" && !c.revoked {
		out, err := c.m.Revoke(ctx, c.Endpoint, token.Info{ID: c.ID, ExpiresOn: c.ExpiresOn})
		if err != nil {
			return err
		}
		c.revoked = true
		outcome := "deleted"
		if out == mint.NotFound {
			outcome = "not_found"
		}
		s.audit.write(Entry{Event: EventSweep, Outcome: outcome, TokenID: c.ID, Name: clean(c.Name), ExpiresAt: formatTime(c.ExpiresOn),
			Owner: ownerOf(c.Endpoint), Reason: "left by a failed exchange"})
	}
	if !c.Lost && !c.Pending {
		return nil
	}
	deleted, err := c.m.DeleteNamed(ctx, c.Endpoint, c.Name, c.ID, c.Pending)
	for _, t := range deleted {
		s.audit.write(Entry{Event: EventSweep, Outcome: "deleted", TokenID: t.ID, Name: clean(t.Name), ExpiresAt: formatTime(t.ExpiresOn),
			Owner: ownerOf(c.Endpoint), Reason: "left by a failed exchange"})
	}
	return err
}

// Wait blocks until the background clean-ups of failed exchanges are done
// or ctx ends.
func (s *Server) Wait(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		s.cleanups.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
