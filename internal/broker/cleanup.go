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
// left: the token l names, and any token with l's unique name (a create
// whose answer was lost). It is the broker's counterpart of the action's
// post step; what it cannot delete, the sweep removes once expired.
func (s *Server) cleanUpLater(ctx context.Context, l mint.Ledger) {
	s.cleanups.Add(1)
	go func() {
		defer s.cleanups.Done()
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupDeadline)
		defer cancel()
		m := s.minter()
		wait := cleanupFirst
		for attempt := 1; ; attempt++ {
			err := s.cleanUp(ctx, m, l)
			if err == nil {
				return
			}
			if attempt == cleanupAttempts || ctx.Err() != nil {
				s.logf("clean-up of a failed exchange: token %q may be left until it expires at %s (the sweep deletes it then): %v",
					l.Name, formatTime(l.ExpiresOn), err)
				return
			}
			if err := s.sleep(ctx, wait); err != nil {
				return
			}
			wait = min(2*wait, cleanupMax)
		}
	}()
}

func (s *Server) cleanUp(ctx context.Context, m *mint.Minter, l mint.Ledger) error {
	if l.ID != "" {
		if _, err := m.Revoke(ctx, l.Endpoint, token.Info{ID: l.ID, ExpiresOn: l.ExpiresOn}); err != nil {
			return err
		}
		s.audit.write(Entry{Event: EventSweep, Outcome: "deleted", TokenID: l.ID, Name: clean(l.Name), ExpiresAt: formatTime(l.ExpiresOn),
			Owner: ownerOf(l.Endpoint), Reason: "left by a failed exchange"})
	}
	deleted, err := m.DeleteNamed(ctx, l.Endpoint, l.Name, l.ID, l.Pending)
	for _, t := range deleted {
		s.audit.write(Entry{Event: EventSweep, Outcome: "deleted", TokenID: t.ID, Name: clean(t.Name), ExpiresAt: formatTime(t.ExpiresOn),
			Owner: ownerOf(l.Endpoint), Reason: "left by a failed exchange"})
	}
	return err
}

func (s *Server) sleep(ctx context.Context, d time.Duration) error {
	if s.mintSleep != nil {
		return s.mintSleep(ctx, d)
	}
	return retry.Sleep(ctx, d)
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
