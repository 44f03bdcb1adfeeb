// Package mint is the token lifecycle: resolve the scopes, create the
// token, verify it, hand it over — and delete it again on any failure after
// it exists, so that a run ends with either one live token (handed to the
// user) or none. It also revokes a token when the job ends and sweeps this
// tool's expired tokens. It knows the API only through the API interface.
package mint

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/cf-scoped-token/cf-scoped-token/internal/token"
)

// API is what the lifecycle needs of Cloudflare's token endpoints.
// Errors match token.ErrNotFound for a 404, token.ErrOutcomeUnknown for a
// create whose answer never came, token.ErrQuotaExceeded at the token quota.
type API interface {
	PermissionGroups(ctx context.Context, ep token.Endpoint) ([]token.PermissionGroup, error)
	CreateToken(ctx context.Context, ep token.Endpoint, spec token.Spec) (token.Created, error)
	RollToken(ctx context.Context, ep token.Endpoint, id string) (token.Secret, error)
	GetToken(ctx context.Context, ep token.Endpoint, id string) (token.Info, error)
	ListTokens(ctx context.Context, ep token.Endpoint) ([]token.Info, error)
	DeleteToken(ctx context.Context, ep token.Endpoint, id string) error
	VerifyToken(ctx context.Context, ep token.Endpoint, secret token.Secret) (string, error)
	RunnerIP(ctx context.Context) (string, error)
}

// Minter runs the lifecycle.
type Minter struct {
	API API
	// Now is the clock for the expiry and for deciding a token has expired.
	Now func() time.Time
	// CleanupTimeout bounds a clean-up (delete after a failure) that runs
	// after the run's own context is cancelled. Zero: 30s.
	CleanupTimeout time.Duration
	// Logf, if set, gets progress lines. They never hold a secret.
	Logf func(format string, args ...any)
	// Sleep waits between creates whose answers were lost, or returns
	// ctx.Err(). Nil: a real wait. Tests inject one that does not wait.
	Sleep func(ctx context.Context, d time.Duration) error
}

// maxCreates bounds the creates of one token. A create is sent again only
// after a lookup by the token's unique name showed the last one made
// nothing, so each is safe; the bound keeps a failing API from being
// asked for ever.
const maxCreates = 3

// createBackoff is the wait before create n+1: an API that lost two
// answers in a row may need a moment.
func createBackoff(n int) time.Duration { return time.Duration(n) * time.Second }

func (m *Minter) sleep(ctx context.Context, d time.Duration) error {
	if m.Sleep != nil {
		return m.Sleep(ctx, d)
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

// Minted is a token handed to the user, with what the summary shows.
type Minted struct {
	token.Created
	Endpoint   token.Endpoint
	Groups     []token.PermissionGroup
	AccountIDs []string
	AllowedIPs []string
	Adopted    bool // the create answer was lost; the token was found by name and its value rolled
}

func (m *Minter) logf(format string, args ...any) {
	if m.Logf != nil {
		m.Logf(format, args...)
	}
}

// Mint makes the token the request asks for and passes it to handover,
// which must mask it before anything else and record it (state, outputs).
// If anything fails once the token exists — verification, handover,
// cancellation — the token is deleted before Mint returns the error.
func (m *Minter) Mint(ctx context.Context, req token.Request, handover func(Minted) error) (Minted, error) {
	ep := req.Endpoint()
	all, err := m.API.PermissionGroups(ctx, ep)
	if err != nil {
		return Minted{}, fmt.Errorf("resolve scopes: %w", err)
	}
	groups, err := token.Resolve(req.Scopes, all)
	if err != nil {
		return Minted{}, err
	}
	ids := make([]string, len(groups))
	for i, g := range groups {
		ids[i] = g.ID
	}
	allowed := req.AllowedIPs
	if req.RunnerIP {
		ip, err := m.API.RunnerIP(ctx)
		if err != nil {
			return Minted{}, err
		}
		cidr, err := token.HostPrefix(ip)
		if err != nil {
			return Minted{}, fmt.Errorf("look up the runner's address: %w", err)
		}
		allowed = append(append([]string(nil), allowed...), cidr)
	}
	spec := token.Spec{
		Name:       req.Name,
		Policies:   []token.Policy{token.AllowPolicy(req.AccountIDs, ids)},
		ExpiresOn:  token.ExpiresOn(m.Now(), req.TTL),
		AllowedIPs: allowed,
	}
	created, adopted, err := m.create(ctx, ep, spec)
	if err != nil {
		return Minted{}, err
	}
	minted := Minted{Created: created, Endpoint: ep, Groups: groups, AccountIDs: req.AccountIDs, AllowedIPs: allowed, Adopted: adopted}
	if created.ExpiresOn.IsZero() {
		minted.ExpiresOn = spec.ExpiresOn
	}
	m.logf("created token %s (%q), expires %s", created.ID, created.Name, minted.ExpiresOn.UTC().Format(time.RFC3339))

	if err := m.finish(ctx, req, minted, handover); err != nil {
		if rerr := m.rollback(ctx, ep, minted.Info); rerr != nil {
			return Minted{}, errors.Join(err, rerr)
		}
		return Minted{}, err
	}
	return minted, nil
}

// finish verifies and hands over a token that exists.
func (m *Minter) finish(ctx context.Context, req token.Request, minted Minted, handover func(Minted) error) error {
	if req.Verify {
		status, err := m.API.VerifyToken(ctx, minted.Endpoint, minted.Value)
		if err != nil {
			return err
		}
		if status != "active" {
			return fmt.Errorf("verify token %s: status is %q, not active", minted.ID, status)
		}
		m.logf("verified token %s: active", minted.ID)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("before handing over token %s: %w", minted.ID, err)
	}
	if err := handover(minted); err != nil {
		return fmt.Errorf("hand over token %s: %w", minted.ID, err)
	}
	return nil
}

// create makes the token. When the answer is lost it finds the token by
// its unique name and adopts it (a new value by roll), or, when the token
// is not there, creates it again (at most maxCreates in all); a create is
// never repeated blindly. At the quota it removes this tool's own expired tokens and
// tries once more.
func (m *Minter) create(ctx context.Context, ep token.Endpoint, spec token.Spec) (token.Created, bool, error) {
	created, err := m.API.CreateToken(ctx, ep, spec)
	if errors.Is(err, token.ErrQuotaExceeded) {
		removed, serr := m.Sweep(ctx, ep, false)
		if serr != nil || len(removed) == 0 {
			return token.Created{}, false, errors.Join(fmt.Errorf("at the token quota, and no expired %q token of this tool's could be removed to make room: %w", strings.TrimSpace(token.NamePrefix), err), serr)
		}
		m.logf("at the token quota: removed %d expired %stoken(s), trying once more", len(removed), token.NamePrefix)
		created, err = m.API.CreateToken(ctx, ep, spec)
	}
	for attempt := 1; errors.Is(err, token.ErrOutcomeUnknown); attempt++ {
		m.logf("the answer to create token %q was lost: looking it up by name", spec.Name)
		found, lerr := m.findByName(ctx, ep, spec.Name)
		if lerr != nil {
			return token.Created{}, false, fmt.Errorf("%w; looking the token up by its name failed too: %w (it expires at %s by itself)",
				err, lerr, spec.ExpiresOn.UTC().Format(time.RFC3339))
		}
		if ctx.Err() != nil {
			// Cancelled: remove whatever the lost create made, hand out nothing.
			for _, t := range found {
				err = errors.Join(err, m.rollback(ctx, ep, t))
			}
			return token.Created{}, false, err
		}
		switch {
		case len(found) == 1:
			value, rerr := m.API.RollToken(ctx, ep, found[0].ID)
			if rerr != nil {
				return token.Created{}, false, errors.Join(err, rerr, m.rollback(ctx, ep, found[0]))
			}
			m.logf("found token %s by name; adopted it with a new value", found[0].ID)
			return token.Created{Info: found[0], Value: value}, true, nil
		case len(found) > 1: // cannot happen with unique names; never guess which to keep
			for _, t := range found {
				err = errors.Join(err, m.rollback(ctx, ep, t))
			}
			return token.Created{}, false, err
		case attempt >= maxCreates:
			return token.Created{}, false, fmt.Errorf("%d creates went unanswered, and none made a token: %w", attempt, err)
		}
		if serr := m.sleep(ctx, createBackoff(attempt)); serr != nil {
			return token.Created{}, false, errors.Join(err, serr)
		}
		m.logf("token %q does not exist: creating it once more", spec.Name)
		created, err = m.API.CreateToken(ctx, ep, spec)
	}
	if err != nil {
		return token.Created{}, false, err
	}
	return created, false, nil
}

// findByName lists the endpoint's tokens and returns those with the name.
// It runs even when ctx is cancelled: it is how a lost token is found.
func (m *Minter) findByName(ctx context.Context, ep token.Endpoint, name string) ([]token.Info, error) {
	cctx, cancel := m.cleanupContext(ctx)
	defer cancel()
	all, err := m.API.ListTokens(cctx, ep)
	if err != nil {
		return nil, err
	}
	var found []token.Info
	for _, t := range all {
		if t.Name == name {
			found = append(found, t)
		}
	}
	return found, nil
}

// cleanupContext survives the cancellation of ctx (a cancelled job must
// still delete its token) but not forever.
func (m *Minter) cleanupContext(ctx context.Context) (context.Context, context.CancelFunc) {
	timeout := m.CleanupTimeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	return context.WithTimeout(context.WithoutCancel(ctx), timeout)
}

// rollback deletes a token that must not outlive a failed run.
func (m *Minter) rollback(ctx context.Context, ep token.Endpoint, t token.Info) error {
	cctx, cancel := m.cleanupContext(ctx)
	defer cancel()
	if err := m.API.DeleteToken(cctx, ep, t.ID); !m.gone(cctx, ep, t.ID, err) {
		return &RevokeError{ID: t.ID, ExpiresOn: t.ExpiresOn, Err: err}
	}
	m.logf("deleted token %s", t.ID)
	return nil
}

// gone reports whether a token is gone after a delete that answered err.
// A failed delete may still have been done: when an attempt's answer is
// lost (a reset after the change committed) the retries get 5xx, 429 or
// resets, never the 404 that would say so. So a failure is checked with a
// GET before it is reported as a token that "stays valid".
func (m *Minter) gone(ctx context.Context, ep token.Endpoint, id string, err error) bool {
	if err == nil || errors.Is(err, token.ErrNotFound) {
		return true
	}
	_, gerr := m.API.GetToken(ctx, ep, id)
	return errors.Is(gerr, token.ErrNotFound)
}

// RevokeError is a token that could not be deleted: it lives until it
// expires.
type RevokeError struct {
	ID        string
	ExpiresOn time.Time
	Err       error
}

func (e *RevokeError) Error() string {
	when := "its expiry"
	if !e.ExpiresOn.IsZero() {
		when = e.ExpiresOn.UTC().Format(time.RFC3339)
	}
	return fmt.Sprintf("token %s could not be deleted and stays valid until %s: %v", e.ID, when, e.Err)
}

func (e *RevokeError) Unwrap() error { return e.Err }

// Revoke deletes a token and confirms it is gone; a token that is already
// gone (404) is fine. A token created under the same unique name by a
// create whose answer was lost is deleted too.
func (m *Minter) Revoke(ctx context.Context, ep token.Endpoint, t token.Info) error {
	for attempt := 1; ; attempt++ {
		err := m.API.DeleteToken(ctx, ep, t.ID)
		if !m.gone(ctx, ep, t.ID, err) {
			return &RevokeError{ID: t.ID, ExpiresOn: t.ExpiresOn, Err: err}
		}
		_, err = m.API.GetToken(ctx, ep, t.ID)
		if errors.Is(err, token.ErrNotFound) {
			break
		}
		if err != nil {
			return &RevokeError{ID: t.ID, ExpiresOn: t.ExpiresOn, Err: fmt.Errorf("confirm it is gone: %w", err)}
		}
		if attempt >= 3 {
			return &RevokeError{ID: t.ID, ExpiresOn: t.ExpiresOn, Err: errors.New("it is still listed after 3 deletes")}
		}
	}
	m.logf("deleted token %s", t.ID)
	if t.Name == "" {
		return nil
	}
	twins, err := m.findByName(ctx, ep, t.Name)
	if err != nil {
		return fmt.Errorf("look for other tokens named %q: %w", t.Name, err)
	}
	for _, twin := range twins {
		if err := m.rollback(ctx, ep, twin); err != nil {
			return err
		}
	}
	return nil
}

// Sweep deletes (or, with dryRun, only lists) this tool's tokens that have
// expired: their name starts with token.NamePrefix, the API reports them
// expired and their expiry has passed by this clock too. Expired tokens
// still count against the quota. Any other token is never touched.
func (m *Minter) Sweep(ctx context.Context, ep token.Endpoint, dryRun bool) ([]token.Info, error) {
	all, err := m.API.ListTokens(ctx, ep)
	if err != nil {
		return nil, fmt.Errorf("sweep: %w", err)
	}
	now := m.Now()
	var swept []token.Info
	for _, t := range all {
		if !token.IsOwnName(t.Name) || t.Status != "expired" || t.ExpiresOn.IsZero() || !t.ExpiresOn.Before(now) {
			continue
		}
		if !dryRun {
			if err := m.API.DeleteToken(ctx, ep, t.ID); err != nil && !errors.Is(err, token.ErrNotFound) {
				return swept, fmt.Errorf("sweep: %w", err)
			}
			m.logf("deleted expired token %s (%q)", t.ID, t.Name)
		}
		swept = append(swept, t)
	}
	return swept, nil
}
