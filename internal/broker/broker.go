// Package broker is the keyless broker (SPEC, "Keyless"), both sides of the
// wire: the HTTP server that holds the parent Cloudflare token, verifies a
// CI job's OIDC token, matches it against the policy and mints the child
// token through the lifecycle (package mint); and the client a job uses to
// exchange its OIDC token for a child token and to revoke the child again.
//
// The server speaks RFC 8693 token exchange (POST /v1/token), RFC 7009
// revocation (POST /v1/revoke) and RFC 8414 metadata, and serves /healthz
// and /readyz. It is stateless apart from caches (OIDC keys, used jtis,
// rate limiters, the permission-group catalogue), so any number of
// replicas may run behind a load balancer: each tells the tokens it may
// delete by a MAC in their names, keyed from the parent token.
package broker

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/cf-scoped-token/cf-scoped-token/internal/mint"
	"github.com/cf-scoped-token/cf-scoped-token/internal/oidcverify"
	"github.com/cf-scoped-token/cf-scoped-token/internal/policy"
	"github.com/cf-scoped-token/cf-scoped-token/internal/token"
)

// Paths the server serves (SPEC, "The broker": endpoints).
const (
	TokenPath    = "/v1/token"
	RevokePath   = "/v1/revoke"
	MetadataPath = "/.well-known/oauth-authorization-server"
	HealthPath   = "/healthz"
	ReadyPath    = "/readyz"
)

// The URNs of RFC 8693 the exchange speaks (names of token types, not
// credentials).
const (
	GrantTypeTokenExchange = "urn:ietf:params:oauth:grant-type:token-exchange" //nolint:gosec // an RFC 8693 URN
	TokenTypeIDToken       = "urn:ietf:params:oauth:token-type:id_token"       //nolint:gosec // an RFC 8693 URN
	TokenTypeJWT           = "urn:ietf:params:oauth:token-type:jwt"            //nolint:gosec // an RFC 8693 URN
	TokenTypeAccessToken   = "urn:ietf:params:oauth:token-type:access_token"   //nolint:gosec // an RFC 8693 URN
)

// Limits on what a request may send.
const (
	MaxFormSize         = 32 << 10 // a whole form body
	MaxSubjectTokenSize = 16 << 10 // the OIDC token (GitHub's are about 1.2 KiB)
)

// Timing of the server's own work.
const (
	// DefaultSweepEvery is how often expired tokens of the broker's are swept.
	DefaultSweepEvery = time.Hour
	// ParentCheckEvery is how often the parent token is verified again in
	// the background.
	ParentCheckEvery = 5 * time.Minute
	// ParentFreshFor is how long a verification of the parent keeps the
	// broker ready when later checks cannot reach Cloudflare. A check that
	// Cloudflare answers with a refusal makes it unready at once.
	ParentFreshFor = 3 * ParentCheckEvery
	// exchangeDeadline bounds one exchange, every retry of the lifecycle
	// included; a clean-up after it runs within the mint's grace. The
	// client's attempts outlast it (attemptTimeout).
	exchangeDeadline = 2 * time.Minute
	// DefaultGrace is how long the clean-up of a token (a delete after a
	// failure) may go on once an exchange is cancelled: it fits, with the
	// drain, in the 10 s Cloud Run and the deploy manifests allow after
	// SIGTERM.
	DefaultGrace = 1500 * time.Millisecond
)

// Config configures a Server. Policy, API, Parent and OIDC.HTTP are
// required.
type Config struct {
	// Policy is the policy to serve; Reload replaces it.
	Policy *policy.Policy
	// Audience is the aud every OIDC token must carry (the --audience flag).
	// Empty: the policy's audience. Both set must agree.
	Audience string
	// PublicURL is the broker's own URL, the issuer of its RFC 8414
	// metadata and the base of the endpoints it advertises. Empty: the
	// audience, which the action requests as the broker's URL by default.
	PublicURL string
	// API is Cloudflare's token API, called with the parent token.
	API API
	// Parent is the parent token's value: the key of the name MAC derives
	// from it, and the parent is verified with it.
	Parent token.Secret
	// OIDC configures the verifier of the jobs' tokens; its HTTP client is
	// required, Issuers and Audience are filled from the policy, and Now
	// defaults to the server's clock.
	OIDC oidcverify.Config
	// RateLimit and Burst are the per-identity rate limit; zero: 30 a
	// minute, bursts of 10.
	RateLimit rate.Limit
	Burst     int
	// LimiterCacheSize bounds the identities the rate limit tracks; zero:
	// DefaultLimiterCacheSize.
	LimiterCacheSize int
	// TrustedProxies are the peers whose X-Forwarded-For is believed: the
	// caller's address (for allowed_ips=caller, a rule's caller, the audit
	// log and revoke's rate limit) is the first address from the right that
	// is not one of them. Empty: the direct peer, always.
	TrustedProxies []netip.Prefix
	// Audit gets the audit log, one JSON line per decision (stdout).
	Audit io.Writer
	// Logf gets operational lines (stderr): start, reloads, failures the
	// caller is not told in detail. Never a secret.
	Logf func(format string, args ...any)
	// Now is the clock; nil: time.Now.
	Now func() time.Time
	// Rand is the source of name nonces; nil: crypto/rand.
	Rand io.Reader
	// Grace bounds the clean-up of a cancelled exchange; zero: DefaultGrace.
	Grace time.Duration
	// MintSleep is every wait of the broker's own retries: the lifecycle's
	// between look-ups of a lost create, the clean-up's after a failed
	// exchange. Nil: a real wait. Tests inject one that does not wait.
	MintSleep func(ctx context.Context, d time.Duration) error
}

// Server is the broker. Create one with New, call Start before serving
// (it verifies the parent and checks the policy's scopes), then serve it as
// an http.Handler; Run does the background work.
type Server struct {
	api       *ownAPI
	namer     *namer
	parent    token.Secret
	audience  string // the --audience flag, "" if none
	publicURL string // Config.PublicURL, "" if none
	oidc      oidcverify.Config
	limits    *limiters
	proxies   []netip.Prefix
	audit     *auditLog
	logf      func(format string, args ...any)
	now       func() time.Time
	rand      io.Reader
	grace     time.Duration
	deadline  time.Duration // bound on one exchange: exchangeDeadline
	mintSleep func(ctx context.Context, d time.Duration) error
	mux       *http.ServeMux

	state atomic.Pointer[state]

	reloadMu sync.Mutex // one Start or Reload at a time

	cleanups sync.WaitGroup // clean-ups of failed exchanges under way

	readyMu     sync.Mutex
	parentEP    *token.Endpoint // where the parent verifies; nil until Start
	parentOK    bool
	parentAt    time.Time // last successful verification
	parentFault string    // why the parent is not ready, when it is not
}

// state is what a reload replaces, all at once.
type state struct {
	policy    *policy.Policy
	audience  string
	publicURL string // Config.PublicURL, else the audience: a reload may change it
	// metadataPath is the RFC 8414 path of the metadata of an issuer with a
	// path ("/tenant1"): MetadataPath followed by it; "" for none.
	metadataPath string
	verifier     *oidcverify.Verifier
	endpoints    []token.Endpoint // where the policy can grant tokens, in rule order
}

// New checks cfg and returns a Server. It makes no request.
func New(cfg Config) (*Server, error) {
	switch {
	case cfg.Policy == nil:
		return nil, errors.New("broker: no policy")
	case cfg.API == nil:
		return nil, errors.New("broker: no Cloudflare API")
	case cfg.Parent.IsZero():
		return nil, errors.New("broker: no parent token")
	case cfg.OIDC.HTTP == nil:
		return nil, errors.New("broker: no HTTP client for the OIDC issuers")
	case cfg.RateLimit < 0 || cfg.Burst < 0 || cfg.LimiterCacheSize < 0:
		return nil, errors.New("broker: rate limit, burst and limiter cache size must not be negative")
	}
	s := &Server{
		namer:     newNamer(cfg.Parent),
		parent:    cfg.Parent,
		audience:  cfg.Audience,
		publicURL: strings.TrimRight(cfg.PublicURL, "/"),
		proxies:   slices.Clone(cfg.TrustedProxies),
		logf:      cfg.Logf,
		now:       cfg.Now,
		rand:      cfg.Rand,
		grace:     cfg.Grace,
		deadline:  exchangeDeadline,
		mintSleep: cfg.MintSleep,
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.rand == nil {
		s.rand = rand.Reader
	}
	if s.logf == nil {
		s.logf = func(string, ...any) {}
	}
	if s.grace == 0 {
		s.grace = DefaultGrace
	}
	audit := cfg.Audit
	if audit == nil {
		audit = io.Discard
	}
	s.audit = &auditLog{w: audit, now: s.now}
	s.api = &ownAPI{API: cfg.API, namer: s.namer, now: s.now}
	s.oidc = cfg.OIDC
	if s.oidc.Now == nil {
		s.oidc.Now = s.now
	}
	r, burst, size := cfg.RateLimit, cfg.Burst, cfg.LimiterCacheSize
	if r == 0 {
		r = DefaultRate
	}
	if burst == 0 {
		burst = DefaultBurst
	}
	if size == 0 {
		size = DefaultLimiterCacheSize
	}
	s.limits = newLimiters(r, burst, size)
	st, err := s.newState(cfg.Policy, nil)
	if err != nil {
		return nil, err
	}
	s.state.Store(st)
	s.routes()
	return s, nil
}

// newState makes the state for a policy: its audience, public URL,
// endpoints and a verifier — old's, when the issuers and the audience are
// the same, so that a reload keeps the replay cache and the keys.
func (s *Server) newState(p *policy.Policy, old *state) (*state, error) {
	aud := s.audience
	switch {
	case aud == "" && p.Audience == "":
		return nil, errors.New("broker: no audience: set audience in the policy file or give --audience")
	case aud == "":
		aud = p.Audience
	case p.Audience != "" && p.Audience != aud:
		return nil, fmt.Errorf("broker: --audience %q and the policy's audience %q differ; set one of them", aud, p.Audience)
	}
	issuers := issuerURLs(p)
	st := &state{policy: p, audience: aud, publicURL: s.publicURL, endpoints: policyEndpoints(p)}
	if st.publicURL == "" {
		st.publicURL = strings.TrimRight(aud, "/")
	}
	if u, err := url.Parse(st.publicURL); err == nil && strings.Trim(u.EscapedPath(), "/") != "" {
		st.metadataPath = "/" + strings.Trim(u.EscapedPath(), "/")
	}
	if old != nil && old.audience == aud && slices.Equal(issuerURLs(old.policy), issuers) {
		st.verifier = old.verifier
		return st, nil
	}
	cfg := s.oidc
	cfg.Issuers, cfg.Audience = issuers, aud
	v, err := oidcverify.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("broker: %w", err)
	}
	st.verifier = v
	return st, nil
}

func issuerURLs(p *policy.Policy) []string {
	out := make([]string, 0, len(p.Issuers))
	for _, is := range p.Issuers {
		out = append(out, is.URL)
	}
	return out
}

// policyEndpoints are the endpoints a policy's grants mint on: the user's
// for owner user, the account's for owner account.
func policyEndpoints(p *policy.Policy) []token.Endpoint {
	var out []token.Endpoint
	for _, r := range p.Rules {
		ep := token.Endpoint{}
		if r.Grant.Owner == token.OwnerAccount && len(r.Grant.AccountIDs) > 0 {
			ep = token.Endpoint{AccountID: r.Grant.AccountIDs[0]}
		}
		if !slices.Contains(out, ep) {
			out = append(out, ep)
		}
	}
	return out
}

// ParentError is a parent token the broker cannot work with: refused by
// Cloudflare, not active, or owned where the policy cannot use it.
type ParentError struct{ Problem string }

func (e *ParentError) Error() string { return "parent token: " + e.Problem }

// Start verifies the parent token, fetches the permission-group catalogue
// and checks every scope of the policy against it (policy.CheckScopes): a
// fault is returned (a *ParentError, a *policy.LoadError, or Cloudflare's
// error) and the server stays unready. Call it before serving.
func (s *Server) Start(ctx context.Context) error {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	st := s.state.Load()
	ep, err := s.findParent(ctx, st.endpoints)
	if err != nil {
		s.setParent(nil, false, err.Error())
		return err
	}
	if err := s.checkGrants(ctx, st.policy, ep); err != nil {
		s.setParent(nil, false, "the policy's scopes could not be checked")
		return err
	}
	s.setParent(&ep, true, "")
	return nil
}

// Reload replaces the policy with p after the checks Start makes of a
// policy: its audience, where it grants tokens against where the parent
// works, and its scopes against a fresh catalogue. On any fault the old
// policy stays and the error says why. A reload that changes the issuers or
// the audience starts a new verifier, whose replay cache is empty (as
// after a restart); one that changes the audience moves the public URL
// too, unless Config.PublicURL set it.
func (s *Server) Reload(ctx context.Context, p *policy.Policy) error {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	old := s.state.Load()
	st, err := s.newState(p, old)
	if err != nil {
		return err
	}
	s.readyMu.Lock()
	pep := s.parentEP
	s.readyMu.Unlock()
	if pep == nil {
		return errors.New("broker: Start has not verified the parent token yet")
	}
	if err := checkParentReach(*pep, st.endpoints); err != nil {
		return err
	}
	s.api.forget()
	if err := s.checkGrants(ctx, p, *pep); err != nil {
		return err
	}
	s.state.Store(st)
	return nil
}

// findParent verifies the parent token: on the user endpoint, else on each
// account endpoint the policy grants on (an account-owned parent can use no
// other). It returns the endpoint where it is active.
func (s *Server) findParent(ctx context.Context, eps []token.Endpoint) (token.Endpoint, error) {
	candidates := []token.Endpoint{{}}
	for _, ep := range eps {
		if ep.IsAccount() {
			candidates = append(candidates, ep)
		}
	}
	var refused []string
	for _, ep := range candidates {
		got, err := s.api.VerifyToken(ctx, ep, s.parent)
		status := got.Status
		switch {
		case errors.Is(err, token.ErrUnauthorized):
			refused = append(refused, endpointName(ep))
			continue
		case err != nil:
			return token.Endpoint{}, fmt.Errorf("verify the parent token: %w", err)
		case status != "active":
			return token.Endpoint{}, &ParentError{Problem: fmt.Sprintf("Cloudflare reports it %s on %s", clean(status), endpointName(ep))}
		}
		return ep, checkParentReach(ep, eps)
	}
	return token.Endpoint{}, &ParentError{Problem: "Cloudflare refused it on " + strings.Join(refused, " and ") +
		": it is mistyped, expired or deleted, or an account-owned token of an account no rule grants account-owned tokens on"}
}

// checkParentReach refuses a policy that grants tokens where the parent
// cannot make them: an account-owned parent makes tokens on its own
// account only.
func checkParentReach(parent token.Endpoint, eps []token.Endpoint) error {
	if !parent.IsAccount() {
		return nil
	}
	for _, ep := range eps {
		if ep != parent {
			return &ParentError{Problem: fmt.Sprintf("it is account %s's token, which can make tokens there only, but the policy grants tokens on %s", parent.AccountID, endpointName(ep))}
		}
	}
	return nil
}

// checkGrants resolves the policy's scopes against the permission groups
// the parent sees where it works.
func (s *Server) checkGrants(ctx context.Context, p *policy.Policy, parent token.Endpoint) error {
	groups, err := s.api.PermissionGroups(ctx, parent)
	if err != nil {
		return fmt.Errorf("load the permission-group catalogue: %w", err)
	}
	return p.CheckScopes(groups)
}

func endpointName(ep token.Endpoint) string {
	if ep.IsAccount() {
		return "account " + ep.AccountID + "'s endpoint"
	}
	return "the user endpoint"
}

func (s *Server) setParent(ep *token.Endpoint, ok bool, fault string) {
	s.readyMu.Lock()
	defer s.readyMu.Unlock()
	if ep != nil {
		s.parentEP = ep
	}
	s.parentOK, s.parentFault = ok, fault
	if ok {
		s.parentAt = s.now()
	}
}

// Ready reports whether the broker should get exchanges: a policy is
// loaded, and the parent token was verified within ParentFreshFor and not
// refused since. When it is not, the reason says why.
func (s *Server) Ready() (bool, string) {
	s.readyMu.Lock()
	defer s.readyMu.Unlock()
	switch {
	case s.parentEP == nil && s.parentFault == "":
		return false, "the parent token has not been verified yet"
	case !s.parentOK:
		return false, s.parentFault
	case s.now().Sub(s.parentAt) > ParentFreshFor:
		return false, fmt.Sprintf("the parent token was last verified %s ago", s.now().Sub(s.parentAt).Round(time.Second))
	}
	return true, ""
}

// CheckParent verifies the parent token again where it works (Run calls it
// every ParentCheckEvery). A refusal makes the broker unready at once; a
// failure to reach Cloudflare leaves it ready until ParentFreshFor has
// passed since the last success.
func (s *Server) CheckParent(ctx context.Context) error {
	s.readyMu.Lock()
	pep := s.parentEP
	s.readyMu.Unlock()
	if pep == nil {
		return errors.New("broker: Start has not verified the parent token yet")
	}
	got, err := s.api.VerifyToken(ctx, *pep, s.parent)
	status := got.Status
	switch {
	case errors.Is(err, token.ErrUnauthorized):
		s.setParent(nil, false, "Cloudflare refused the parent token")
		return &ParentError{Problem: "Cloudflare refused it on " + endpointName(*pep)}
	case err != nil:
		return fmt.Errorf("verify the parent token: %w", err)
	case status != "active":
		s.setParent(nil, false, "Cloudflare reports the parent token "+clean(status))
		return &ParentError{Problem: "Cloudflare reports it " + clean(status)}
	}
	s.setParent(nil, true, "")
	return nil
}

// Run does the background work until ctx ends: it verifies the parent
// every ParentCheckEvery and sweeps every sweepEvery (0: never). Each
// failure is logged; none stops it.
func (s *Server) Run(ctx context.Context, sweepEvery time.Duration) {
	check := time.NewTicker(ParentCheckEvery)
	defer check.Stop()
	var sweep <-chan time.Time
	if sweepEvery > 0 {
		t := time.NewTicker(sweepEvery)
		defer t.Stop()
		sweep = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-check.C:
			if err := s.CheckParent(ctx); err != nil {
				s.logf("parent token check: %v", err)
			}
		case <-sweep:
			if _, err := s.Sweep(ctx); err != nil {
				s.logf("sweep: %v", err)
			}
		}
	}
}

// Sweep deletes the broker's own tokens that have expired, on every
// endpoint its policy grants on, and returns them. A token without this
// broker's name MAC is never touched (ownAPI lists only the broker's).
func (s *Server) Sweep(ctx context.Context) ([]token.Info, error) {
	st := s.state.Load()
	m := s.minter()
	var all []token.Info
	var errs []error
	for _, ep := range st.endpoints {
		swept, err := m.Sweep(ctx, ep, false)
		for _, t := range swept {
			s.audit.write(Entry{Event: EventSweep, Outcome: "deleted", TokenID: t.ID, Name: clean(t.Name),
				ExpiresAt: formatTime(t.ExpiresOn), Accounts: t.AccountIDs, Owner: ownerOf(ep)})
		}
		all = append(all, swept...)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", endpointName(ep), err))
		}
	}
	return all, errors.Join(errs...)
}

// minter is the lifecycle over the broker's view of the API.
func (s *Server) minter() *mint.Minter {
	return &mint.Minter{API: s.api, Now: s.now, Grace: s.grace, Sleep: s.mintSleep,
		Logf: func(format string, args ...any) { s.logf("mint: "+format, args...) }}
}

// Policy returns the policy being served.
func (s *Server) Policy() *policy.Policy { return s.state.Load().policy }

// Audience returns the audience being accepted.
func (s *Server) Audience() string { return s.state.Load().audience }

// PublicURL returns the broker's public URL, the issuer of its metadata:
// Config.PublicURL, else the audience being accepted.
func (s *Server) PublicURL() string { return s.state.Load().publicURL }

func ownerOf(ep token.Endpoint) string {
	if ep.IsAccount() {
		return string(token.OwnerAccount)
	}
	return string(token.OwnerUser)
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}
