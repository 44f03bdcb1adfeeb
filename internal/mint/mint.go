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

	"github.com/cf-scoped-token/cf-scoped-token/internal/retry"
	"github.com/cf-scoped-token/cf-scoped-token/internal/token"
)

// API is what the lifecycle needs of Cloudflare's token endpoints.
// Errors match token.ErrNotFound for a 404, token.ErrOutcomeUnknown for a
// create whose answer never came, token.ErrBadAnswer for an answer no real
// API gives, token.ErrQuotaExceeded at the token quota.
type API interface {
	PermissionGroups(ctx context.Context, ep token.Endpoint) ([]token.PermissionGroup, error)
	CreateToken(ctx context.Context, ep token.Endpoint, spec token.Spec) (token.Created, error)
	RollToken(ctx context.Context, ep token.Endpoint, id string) (token.Secret, error)
	GetToken(ctx context.Context, ep token.Endpoint, id string) (token.Info, error)
	ListTokens(ctx context.Context, ep token.Endpoint) ([]token.Info, error)
	DeleteToken(ctx context.Context, ep token.Endpoint, id string) error
	VerifyToken(ctx context.Context, ep token.Endpoint, secret token.Secret) (token.Info, error)
	RunnerIP(ctx context.Context) (string, error)
}

// Minter runs the lifecycle.
type Minter struct {
	API API
	// Now is the clock for the expiry and for deciding a token has expired.
	Now func() time.Time
	// Grace is how long the clean-up of one call (Mint, Revoke,
	// DeleteNamed) — deletes after a failure, the look-ups of a token whose
	// create answer was lost — may go on once the call's context is
	// cancelled — a cancelled job must still delete its token — or past its
	// deadline: one grace for all of it. Zero: DefaultGrace.
	Grace time.Duration
	// Logf, if set, gets progress lines. They never hold a secret; names
	// from the API are quoted.
	Logf func(format string, args ...any)
	// Sleep waits between look-ups and creates after a lost answer, or
	// returns ctx.Err(). Nil: a real wait. Tests inject one that does not
	// wait.
	Sleep func(ctx context.Context, d time.Duration) error
	// Mask, if set, is called with every token value the moment the API
	// returns it (a create or a roll), before it is used or anything else
	// is written: the action registers it with the runner's masker there.
	// An error makes the lifecycle delete the token.
	Mask func(token.Secret) error
	// Record, if set, is told what a later process would need to delete
	// what this run made, before each step that could leave something
	// behind: before the first create, when a token exists, when an answer
	// was lost, when the token is deleted again. The action saves it as the
	// post step's state.
	Record func(Ledger) error
}

// DefaultGrace fits inside the runner's cancellation: it sends SIGINT,
// then SIGTERM 7.5 s later, then kills the process 2.5 s after that.
const DefaultGrace = 8 * time.Second

// Ledger is what a later process needs to find and delete what a mint may
// have made. It holds no secret.
type Ledger struct {
	Name      string // the token's unique name
	Endpoint  token.Endpoint
	ExpiresOn time.Time
	// ID is the token that exists and was not deleted; "" if none.
	ID string
	// Pending: a create was sent whose outcome is not known yet.
	Pending bool
	// Lost: a create answer was lost (or malformed), so a token with Name
	// may exist that ID does not name — now or once a slow create commits.
	Lost bool
}

// maxCreates bounds the creates of one token. A create is sent again only
// after look-ups by the token's unique name showed the last one made
// nothing, so each is safe; the bound keeps a failing API from being
// asked for ever.
const maxCreates = 3

// lookups is how many times a token whose create answer was lost is looked
// up by name, 1 s, 2 s and 4 s apart, before a create is sent again: a slow
// create may still commit after its answer timed out, and creating again
// before it shows would make a twin.
const lookups = 4

// lookupWait is the wait before look-up i (from 1; the first is at once).
func lookupWait(i int) time.Duration { return time.Second << (i - 1) }

func (m *Minter) sleep(ctx context.Context, d time.Duration) error {
	if m.Sleep != nil {
		return m.Sleep(ctx, d)
	}
	return retry.Sleep(ctx, d)
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

func (m *Minter) record(l Ledger) error {
	if m.Record == nil {
		return nil
	}
	if err := m.Record(l); err != nil {
		return fmt.Errorf("record the token for the clean-up: %w", err)
	}
	return nil
}

// Step names a step of the lifecycle.
type Step string

// The steps an error can come from (VerifyError is verify's).
const (
	StepResolve Step = "resolve scopes"
	StepCreate  Step = "create"
	StepLookUp  Step = "look up by name"
	StepRoll    Step = "adopt by roll"
)

// StepError says which step of the lifecycle failed, so that a caller can
// tell with errors.As, without reading the message.
type StepError struct {
	Step Step
	Err  error
}

func (e *StepError) Error() string {
	if e.Step == StepResolve {
		return fmt.Sprintf("%s: %v", e.Step, e.Err)
	}
	return e.Err.Error() // the client's own text names the call
}

func (e *StepError) Unwrap() error { return e.Err }

// VerifyError is a new token the API did not accept when it was checked.
type VerifyError struct {
	ID     string
	Status string // the status the API reported, when it answered about ID
	// OtherID is the token the API answered about when it was not ID: the
	// answer says nothing of this one.
	OtherID string
	Err     error // the API's refusal, when it refused
}

func (e *VerifyError) Error() string {
	switch {
	case e.Err != nil:
		return fmt.Sprintf("verify token %s: %v", e.ID, e.Err)
	case e.OtherID != "":
		return fmt.Sprintf("verify token %s: the API answered for another token, %s", e.ID, e.OtherID)
	}
	return fmt.Sprintf("verify token %s: status is %q, not active", e.ID, e.Status)
}

func (e *VerifyError) Unwrap() error { return e.Err }

// Mint makes the token the request asks for and passes it to handover,
// which records it (outputs, env, summary). The value is masked (Mask)
// before anything else happens to it. If anything fails once the token
// exists — verification, handover, cancellation — the token is deleted
// before Mint returns the error.
func (m *Minter) Mint(ctx context.Context, req token.Request, handover func(Minted) error) (Minted, error) {
	// One clean-up context for the whole run: every look-up and delete
	// below gets what is left of one grace once ctx ends, never a grace of
	// its own — those would add up past the runner's kill.
	cctx, cancel := m.cleanupContext(ctx)
	defer cancel()
	ep := req.Endpoint()
	// One look-up even when every scope is an id: only the list names an
	// id's group, and a group that manages tokens must be refused before
	// any token exists (token.Resolve).
	all, err := m.API.PermissionGroups(ctx, ep)
	if err != nil {
		return Minted{}, &StepError{Step: StepResolve, Err: err}
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
	l := Ledger{Name: spec.Name, Endpoint: ep, ExpiresOn: spec.ExpiresOn}
	created, adopted, err := m.create(ctx, cctx, &l, spec)
	if err != nil {
		return Minted{}, err
	}
	minted := Minted{Created: created, Endpoint: ep, Groups: groups, AccountIDs: req.AccountIDs, AllowedIPs: allowed, Adopted: adopted}
	if created.ExpiresOn.IsZero() {
		minted.ExpiresOn = spec.ExpiresOn
	}
	m.logf("created token %s (%q), expires %s", created.ID, created.Name, minted.ExpiresOn.UTC().Format(time.RFC3339))

	if err := m.finish(ctx, req, minted, handover); err != nil {
		return Minted{}, errors.Join(err, m.rollback(cctx, &l, minted.Info))
	}
	return minted, nil
}

// finish verifies and hands over a token that exists.
func (m *Minter) finish(ctx context.Context, req token.Request, minted Minted, handover func(Minted) error) error {
	if req.Verify {
		got, err := m.API.VerifyToken(ctx, minted.Endpoint, minted.Value)
		if err != nil {
			return &VerifyError{ID: minted.ID, Err: err}
		}
		switch {
		case got.ID != minted.ID:
			return &VerifyError{ID: minted.ID, OtherID: got.ID}
		case got.Status != "active":
			return &VerifyError{ID: minted.ID, Status: got.Status}
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

// create makes the token, recording each step in l. When the answer is
// lost it looks the token up by its unique name, a few times over a few
// seconds, and adopts it (a new value by roll); when it never shows, it
// creates it once more (at most maxCreates in all). A create is never
// repeated blindly. When an answer is malformed, whatever the create made
// is found by name and deleted. At the quota it removes this tool's own
// expired tokens and tries once more. Look-ups and deletes run on cctx, the
// run's clean-up context.
func (m *Minter) create(ctx, cctx context.Context, l *Ledger, spec token.Spec) (token.Created, bool, error) {
	l.Pending = true
	if err := m.record(*l); err != nil {
		return token.Created{}, false, err // nothing was sent
	}
	created, err := m.API.CreateToken(ctx, l.Endpoint, spec)
	if errors.Is(err, token.ErrQuotaExceeded) {
		removed, serr := m.Sweep(ctx, l.Endpoint, false)
		if serr != nil || len(removed) == 0 {
			return token.Created{}, false, m.settle(l, errors.Join(fmt.Errorf("at the token quota, and no expired %q token of this tool's could be removed to make room: %w", strings.TrimSpace(token.NamePrefix), err), serr))
		}
		m.logf("at the token quota: removed %d expired %stoken(s), trying once more", len(removed), token.NamePrefix)
		created, err = m.API.CreateToken(ctx, l.Endpoint, spec)
	}
	for creates := 1; err != nil; creates++ {
		malformed := errors.Is(err, token.ErrBadAnswer)
		if !malformed && !errors.Is(err, token.ErrOutcomeUnknown) {
			return token.Created{}, false, m.settle(l, &StepError{Step: StepCreate, Err: err}) // a definite no: nothing was made
		}
		l.Lost = true
		if rerr := m.record(*l); rerr != nil {
			err = errors.Join(err, rerr)
		}
		if malformed {
			// The API answered, so whatever it made exists now: one look-up.
			found, lerr := m.named(cctx, l.Endpoint, spec.Name)
			if lerr != nil {
				return token.Created{}, false, errors.Join(err, lerr)
			}
			return token.Created{}, false, m.remove(cctx, l, found, err,
				"the API answered the create with something no real answer holds, so nothing it said was used")
		}
		m.logf("the answer to create token %q was lost: looking it up by name", spec.Name)
		found, lerr := m.lookUp(cctx, l.Endpoint, spec.Name)
		if lerr != nil {
			return token.Created{}, false, fmt.Errorf("%w; looking the token up by its name failed too: %w (the clean-up step looks again; it expires at %s by itself)",
				err, &StepError{Step: StepLookUp, Err: lerr}, spec.ExpiresOn.UTC().Format(time.RFC3339))
		}
		switch {
		case ctx.Err() != nil || len(found) > 1:
			// Cancelled, or more than one: hand out nothing, never guess which
			// to keep; delete what the lost creates made.
			return token.Created{}, false, m.remove(cctx, l, found, err, "")
		case len(found) == 1:
			value, rerr := m.API.RollToken(ctx, l.Endpoint, found[0].ID)
			if rerr != nil {
				// It was found, so the create's outcome is known: what is
				// left is to delete it, by id if not now then in the clean-up
				// step — not to look for it again, patiently.
				l.ID, l.Pending = found[0].ID, false
				rerr = errors.Join(&StepError{Step: StepRoll, Err: rerr}, m.record(*l))
			} else {
				rerr = m.exists(l, token.Created{Info: found[0], Value: value})
			}
			if rerr != nil {
				return token.Created{}, false, errors.Join(err, rerr, m.rollback(cctx, l, found[0]))
			}
			m.logf("found token %s by name; adopted it with a new value", found[0].ID)
			return token.Created{Info: found[0], Value: value}, true, nil
		case creates >= maxCreates:
			return token.Created{}, false, fmt.Errorf("%d creates went unanswered, and none made a token: %w", creates, err)
		}
		m.logf("token %q does not exist: creating it once more", spec.Name)
		created, err = m.API.CreateToken(ctx, l.Endpoint, spec)
	}
	if err := m.exists(l, created); err != nil {
		return token.Created{}, false, errors.Join(err, m.rollback(cctx, l, created.Info))
	}
	if l.Lost {
		// An earlier create went unanswered and was not seen in the look-ups:
		// should it have committed after all, it is a twin of this one.
		if _, err := m.deleteNamed(cctx, l.Endpoint, spec.Name, created.ID, false); err != nil {
			return token.Created{}, false, errors.Join(err, m.rollback(cctx, l, created.Info))
		}
	}
	return created, false, nil
}

// exists masks a token value the moment it arrives, then records the token.
func (m *Minter) exists(l *Ledger, t token.Created) error {
	if m.Mask != nil {
		if err := m.Mask(t.Value); err != nil {
			return fmt.Errorf("mask token %s: %w", t.ID, err)
		}
	}
	l.ID, l.Pending = t.ID, false
	return m.record(*l)
}

// settle records that the create made nothing, and returns err.
func (m *Minter) settle(l *Ledger, err error) error {
	l.Pending = false
	return errors.Join(err, m.record(*l))
}

// remove deletes the tokens a create whose outcome cannot be acted on
// made, and returns cause with what became of them. Once one was found the
// create's outcome is known; until then it stays pending, and the clean-up
// step looks again. ctx is a clean-up context.
func (m *Minter) remove(ctx context.Context, l *Ledger, found []token.Info, cause error, why string) error {
	for _, t := range found {
		if _, err := m.revoke(ctx, l.Endpoint, t); err != nil {
			return errors.Join(cause, err)
		}
	}
	if len(found) > 0 {
		l.Pending = false
		if err := m.record(*l); err != nil {
			return errors.Join(cause, err)
		}
	}
	if why != "" {
		cause = fmt.Errorf("%w (%s)", cause, why)
	}
	if len(found) > 0 {
		return fmt.Errorf("%w; the %d token(s) named %q it made were found by name and deleted", cause, len(found), l.Name)
	}
	return cause
}

// lookUp looks the endpoint's tokens up by name after a create whose
// answer was lost, again after each wait (lookupWait) while none shows: a
// slow create can commit after the client stopped waiting. ctx is a
// clean-up context — this is how a lost token is found, also when the run
// is being cancelled, within the grace. When ctx ends before the last
// look-up, that is an error: a token may still show, so "none" would be a
// guess.
func (m *Minter) lookUp(ctx context.Context, ep token.Endpoint, name string) ([]token.Info, error) {
	for i := range lookups {
		if i > 0 {
			if err := m.sleep(ctx, lookupWait(i)); err != nil {
				return nil, fmt.Errorf("none found in %d of %d look-ups, and no time for the rest: %w", i, lookups, err)
			}
		}
		found, err := m.named(ctx, ep, name)
		if err != nil || len(found) > 0 {
			return found, err
		}
	}
	return nil, nil
}

// named lists the endpoint's tokens and returns those with the name.
func (m *Minter) named(ctx context.Context, ep token.Endpoint, name string) ([]token.Info, error) {
	all, err := m.API.ListTokens(ctx, ep)
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

// DeleteNamed deletes every token of the endpoint whose name is exactly
// name, except the one with id except: what a create whose answer was lost
// may have made. With patient, it looks again over a few seconds while none
// shows (a create whose outcome nobody learned may still commit). It
// returns the tokens it deleted.
func (m *Minter) DeleteNamed(ctx context.Context, ep token.Endpoint, name, except string, patient bool) ([]token.Info, error) {
	cctx, cancel := m.cleanupContext(ctx)
	defer cancel()
	return m.deleteNamed(cctx, ep, name, except, patient)
}

// deleteNamed is DeleteNamed on a clean-up context.
func (m *Minter) deleteNamed(ctx context.Context, ep token.Endpoint, name, except string, patient bool) ([]token.Info, error) {
	var found []token.Info
	var err error
	if patient {
		found, err = m.lookUp(ctx, ep, name)
	} else {
		found, err = m.named(ctx, ep, name)
	}
	if err != nil {
		return nil, fmt.Errorf("look for tokens named %q: %w", name, err)
	}
	var deleted []token.Info
	for _, t := range found {
		if t.ID == except {
			continue
		}
		out, err := m.revoke(ctx, ep, t)
		if err != nil {
			return deleted, err
		}
		if out == Deleted { // one gone meanwhile was not deleted here
			deleted = append(deleted, t)
		}
	}
	return deleted, nil
}

// graceKey marks a clean-up context: one made within it adds no grace.
type graceKey struct{}

// CleanupContext is the context for a run's clean-up calls (Revoke, then
// DeleteNamed, as the post step makes them): it survives the cancellation
// of ctx and its deadline by one grace, shared by every call made on it, so
// that two calls after a cancellation take one grace, not two.
func (m *Minter) CleanupContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return m.cleanupContext(ctx)
}

// cleanupContext survives the cancellation of ctx (a cancelled job must
// still delete its token) and its deadline, but by no more than the grace.
// Each exported call makes one and hands it down: helpers run on the
// context they are given, so that graces never nest or add up; on a
// context that is already a clean-up context it adds none.
func (m *Minter) cleanupContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if ctx.Value(graceKey{}) != nil {
		return context.WithCancel(ctx)
	}
	grace := m.Grace
	if grace == 0 {
		grace = DefaultGrace
	}
	cctx, cancel := context.WithCancel(context.WithValue(context.WithoutCancel(ctx), graceKey{}, true))
	go func() {
		select {
		case <-ctx.Done():
			t := time.NewTimer(grace)
			defer t.Stop()
			select {
			case <-t.C:
				cancel()
			case <-cctx.Done():
			}
		case <-cctx.Done():
		}
	}()
	return cctx, cancel
}

// rollback deletes a token that must not outlive a failed run. When it is
// deleted the record says so; when it is not, the record keeps its id, so
// the clean-up step tries again. ctx is a clean-up context.
func (m *Minter) rollback(ctx context.Context, l *Ledger, t token.Info) error {
	if _, err := m.revoke(ctx, l.Endpoint, t); err != nil {
		return err
	}
	if l.ID == t.ID {
		l.ID = ""
		return m.record(*l)
	}
	return nil
}

// Outcome is what a revoke found.
type Outcome int

const (
	// Deleted: the token existed and is deleted.
	Deleted Outcome = iota + 1
	// NotFound: no token has that id on the endpoint: already gone, or one
	// of another owner (a user's token asked for on an account's endpoint,
	// or the other way round).
	NotFound
)

// RevokeError is a token that may not have been deleted: it lives until it
// expires.
type RevokeError struct {
	ID        string
	ExpiresOn time.Time
	// Unconfirmed: the delete went unanswered and a check could not tell
	// whether the token is gone.
	Unconfirmed bool
	Err         error
}

func (e *RevokeError) Error() string {
	when := "its expiry"
	if !e.ExpiresOn.IsZero() {
		when = e.ExpiresOn.UTC().Format(time.RFC3339)
	}
	if e.Unconfirmed {
		return fmt.Sprintf("the delete of token %s went unanswered and whether it is gone could not be checked; if it is not, it stays valid until %s: %v", e.ID, when, e.Err)
	}
	return fmt.Sprintf("token %s could not be deleted and stays valid until %s: %v", e.ID, when, e.Err)
}

func (e *RevokeError) Unwrap() error { return e.Err }

// Revoke deletes a token: one DELETE when all goes well. A token that is
// not there (404) is NotFound, never reported deleted. A DELETE that fails
// or goes unanswered is checked with one GET before it is reported: it may
// have been done. It runs on a clean-up context: a cancelled job still
// deletes its token, within the grace.
func (m *Minter) Revoke(ctx context.Context, ep token.Endpoint, t token.Info) (Outcome, error) {
	cctx, cancel := m.cleanupContext(ctx)
	defer cancel()
	return m.revoke(cctx, ep, t)
}

func (m *Minter) revoke(ctx context.Context, ep token.Endpoint, t token.Info) (Outcome, error) {
	err := m.API.DeleteToken(ctx, ep, t.ID)
	switch {
	case err == nil:
		m.logf("deleted token %s", t.ID)
		return Deleted, nil
	case errors.Is(err, token.ErrNotFound):
		return NotFound, nil
	}
	// A failed delete may still have been done: when an attempt's answer is
	// lost (a reset after the change committed) the retries get 5xx, 429 or
	// resets, never the 404 that would say so.
	_, gerr := m.API.GetToken(ctx, ep, t.ID)
	switch {
	case errors.Is(gerr, token.ErrNotFound):
		m.logf("deleted token %s (the delete went unanswered; a check shows it gone)", t.ID)
		return Deleted, nil
	case gerr != nil:
		return 0, &RevokeError{ID: t.ID, ExpiresOn: t.ExpiresOn, Unconfirmed: true, Err: errors.Join(err, gerr)}
	}
	return 0, &RevokeError{ID: t.ID, ExpiresOn: t.ExpiresOn, Err: err}
}

// Sweep deletes (or, with dryRun, only lists) this tool's tokens that have
// expired: their name starts with token.NamePrefix, the API reports them
// expired and their expiry has passed by this clock too. Expired tokens
// still count against the quota. Any other token is never touched. It
// returns the tokens it deleted (would delete): one already gone when its
// delete came (404: another sweep's) is NotFound, not among them.
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
			out, err := m.sweepOne(ctx, ep, t)
			if err != nil {
				return swept, fmt.Errorf("sweep: %w", err)
			}
			if out == NotFound {
				m.logf("expired token %s (%q) was already gone", t.ID, t.Name)
				continue
			}
			m.logf("deleted expired token %s (%q)", t.ID, t.Name)
		}
		swept = append(swept, t)
	}
	return swept, nil
}

// sweepOne deletes an expired token with one DELETE. Unlike revoke it does
// not check a failed delete with a GET: an expired token grants nothing,
// and the next sweep tries again.
func (m *Minter) sweepOne(ctx context.Context, ep token.Endpoint, t token.Info) (Outcome, error) {
	switch err := m.API.DeleteToken(ctx, ep, t.ID); {
	case errors.Is(err, token.ErrNotFound):
		return NotFound, nil
	case err != nil:
		return 0, err
	}
	return Deleted, nil
}
