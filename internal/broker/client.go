package broker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/cf-scoped-token/cf-scoped-token/internal/retry"
	"github.com/cf-scoped-token/cf-scoped-token/internal/token"
)

// Client is a CI job's side of the broker: it exchanges the job's OIDC
// token for a child token and revokes the child when the job ends. BaseURL
// and HTTP must be set.
//
// Requests are retried with capped, jittered exponential backoff — only
// after a transport error (no answer), a 502, 503 or 504, or a 429, whose
// Retry-After is honoured — within the context's deadline; no other answer
// is retried. The broker gives a job's jti back when an exchange fails on
// its side, so a retry with the same OIDC token is accepted; after a
// transport error the first attempt may have been exchanged all the same,
// and the retry is then refused as a replay (invalid_request): ask the CI
// system for a new OIDC token and call Exchange again.
type Client struct {
	// BaseURL is the broker's URL (the broker-url input): https, or http to
	// a loopback host; it is checked with token.ParseBrokerURL on every call.
	BaseURL string
	// HTTP is the client requests go through; its redirects are refused
	// (a redirect would carry the OIDC token elsewhere).
	HTTP *http.Client
	// UserAgent, if set, names the tool in each request.
	UserAgent string
	// Retry is the backoff policy; each zero field is DefaultRetry's.
	Retry retry.Policy
	// Progressf, if set, gets one line for each failed attempt after the
	// first that is tried again: "attempt 3 of 5 failed: 503 …; next in 2s".
	Progressf func(format string, args ...any)
}

// DefaultRetry is five attempts, each bounded by attemptTimeout of the
// broker's exchange deadline (2m16.5s): an exchange mints a token against
// Cloudflare, which the broker itself retries for up to that deadline.
func DefaultRetry() retry.Policy {
	return retry.Policy{Attempts: 5, Base: time.Second, Max: retry.DefaultMax, Timeout: attemptTimeout(exchangeDeadline)}
}

// attemptTimeout bounds one request to a broker whose exchanges take at
// most deadline: the deadline, the grace of the clean-up that may follow
// it, and an eighth of the deadline for the network. An attempt must not
// give up on an exchange the broker is still working on: the retry would
// carry the same OIDC token, which the broker refuses as a replay (not
// retried), and the broker would delete the token it made once it found
// the caller gone.
func attemptTimeout(deadline time.Duration) time.Duration {
	return deadline + DefaultGrace + deadline/8
}

// ExchangeRequest is what a job asks for; each zero field leaves the choice
// to the rule that matches: its whole grant, min(1h, its max-ttl).
type ExchangeRequest struct {
	// Scopes are the scope items, as token.ParseScopes reads the scopes
	// input (with the permission input as the default level).
	Scopes []token.Scope
	// AccountIDs are the accounts, as token.ParseAccountIDs reads them.
	AccountIDs []string
	// TTL is the child's lifetime; 0: the rule's default.
	TTL time.Duration
	// AllowedIPs are CIDRs, or the word "caller" for the address the broker
	// sees the request come from.
	AllowedIPs []string
}

// Granted is a child token the broker handed out, with every field of the
// answer.
type Granted struct {
	// Token is the child's value.
	Token token.Secret
	// TokenID, Name and ExpiresAt are its id, name and expiry (whole
	// seconds, UTC).
	TokenID   string
	Name      string
	ExpiresAt time.Time
	// ExpiresIn is the lifetime left when the broker answered.
	ExpiresIn time.Duration
	// Owner says which endpoints hold it (user, or account with one
	// account).
	Owner token.Owner
	// AccountIDs are the accounts it may act on, PermissionGroups what it
	// may do there (id and name), AllowedIPs its IP condition (empty: none).
	AccountIDs       []string
	PermissionGroups []token.PermissionGroup
	AllowedIPs       []string
	// Rule is the policy rule that granted it.
	Rule string
	// Scopes are the granted scope items; Scope is the answer's scope field
	// as the broker wrote it.
	Scopes []token.Scope
	Scope  string
}

// maxAnswerSize bounds what is read of an answer.
const maxAnswerSize = 64 << 10

// Exchange trades the job's OIDC token (subjectToken) for a child token.
// A refusal is a *Error whose Code says why (errors.As); a malformed
// success answer is an error too, and when it carried a token after all,
// the Granted returned with the error holds that token (and nothing else),
// so that the caller can revoke what the broker made.
func (c *Client) Exchange(ctx context.Context, subjectToken token.Secret, req ExchangeRequest) (Granted, error) {
	if subjectToken.IsZero() {
		return Granted{}, errors.New("broker exchange: no OIDC token")
	}
	form := url.Values{
		"grant_type":         {GrantTypeTokenExchange},
		"subject_token":      {subjectToken.Reveal()},
		"subject_token_type": {TokenTypeIDToken},
	}
	if len(req.Scopes) > 0 {
		form.Set("scope", formatScopeParam(req.Scopes))
	}
	if len(req.AccountIDs) > 0 {
		form.Set("account_ids", strings.Join(req.AccountIDs, ","))
	}
	if req.TTL > 0 {
		form.Set("ttl", req.TTL.String())
	}
	if len(req.AllowedIPs) > 0 {
		form.Set("allowed_ips", strings.Join(req.AllowedIPs, ","))
	}
	body, err := c.post(ctx, TokenPath, form)
	if err != nil {
		return Granted{}, fmt.Errorf("broker exchange: %w", err)
	}
	g, err := decodeGranted(body)
	if err != nil {
		return Granted{Token: g.Token}, fmt.Errorf("broker exchange: %w", err)
	}
	return g, nil
}

// Revoke asks the broker to delete a child token it made. The broker
// answers success also for a token it does not know or did not make (RFC
// 7009), so nil means only that the broker accepted the request.
func (c *Client) Revoke(ctx context.Context, child token.Secret) error {
	if child.IsZero() {
		return errors.New("broker revoke: no token")
	}
	form := url.Values{"token": {child.Reveal()}, "token_type_hint": {"access_token"}}
	if _, err := c.post(ctx, RevokePath, form); err != nil {
		return fmt.Errorf("broker revoke: %w", err)
	}
	return nil
}

// post sends a form to the broker, retrying what may heal, and returns the
// 200 answer's body.
func (c *Client) post(ctx context.Context, path string, form url.Values) ([]byte, error) {
	if c.HTTP == nil {
		return nil, errors.New("no HTTP client")
	}
	base, err := token.ParseBrokerURL(c.BaseURL)
	if err != nil {
		var ie *token.InputError
		if errors.As(err, &ie) {
			return nil, fmt.Errorf("refusing the broker URL: %s", ie.Problem)
		}
		return nil, err
	}
	hc := *c.HTTP
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	endpoint := base.String() + path
	p := c.retryPolicy()
	if c.Progressf != nil {
		p.Progress = func(n, attempts int, err error, wait time.Duration) {
			c.Progressf("attempt %d of %d failed: %s; next in %s", n, attempts, shortCause(err), wait.Round(100*time.Millisecond))
		}
	}
	encoded := form.Encode()
	var body []byte
	err = p.Do(ctx, func(ctx context.Context) error {
		body, err = c.once(ctx, &hc, endpoint, encoded)
		return err
	}, func(err error) retry.Verdict {
		var be *Error
		if errors.Is(err, errRedirect) || errors.Is(err, errBadAnswer) {
			return retry.Verdict{}
		}
		if !errors.As(err, &be) {
			return retry.Verdict{Again: true} // no answer: a transport error
		}
		return retry.Verdict{Again: be.Temporary(), After: be.RetryAfter, Throttled: be.Status == http.StatusTooManyRequests}
	})
	return body, err
}

// retryPolicy is c.Retry with each zero field DefaultRetry's: a policy
// that sets only Attempts still bounds each attempt by the exchange's
// attemptTimeout, which a zero Timeout (none) would not.
func (c *Client) retryPolicy() retry.Policy {
	p, d := c.Retry, DefaultRetry()
	if p.Attempts == 0 {
		p.Attempts = d.Attempts
	}
	if p.Base == 0 {
		p.Base = d.Base
	}
	if p.Max == 0 {
		p.Max = d.Max
	}
	if p.Timeout == 0 {
		p.Timeout = d.Timeout
	}
	return p
}

var (
	errRedirect  = errors.New("the broker answered with a redirect, which is never followed")
	errBadAnswer = errors.New("malformed answer")
)

// once sends one request. Any answer but 200 becomes an *Error.
func (c *Client) once(ctx context.Context, hc *http.Client, endpoint, form string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if c.UserAgent != "" {
		req.Header.Set("User-Agent", c.UserAgent)
	}
	res, err := hc.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			return nil, fmt.Errorf("POST %s: %w", endpoint, ue.Err) // the URL holds no secret; the error text may be long
		}
		return nil, err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, maxAnswerSize))
	if err != nil {
		return nil, fmt.Errorf("POST %s: read the answer: %w", endpoint, err)
	}
	switch {
	case res.StatusCode == http.StatusOK:
		return body, nil
	case res.StatusCode >= 300 && res.StatusCode < 400:
		return nil, fmt.Errorf("POST %s: %d: %w", endpoint, res.StatusCode, errRedirect)
	}
	be := &Error{Status: res.StatusCode, RetryAfter: retry.After(res.Header.Get("Retry-After"), time.Now())}
	var eb errorBody
	if json.Unmarshal(body, &eb) == nil {
		be.Code, be.Description = eb.Error, eb.Description
	}
	return nil, be
}

// shortCause is what a progress line says of a failed attempt.
func shortCause(err error) string {
	var be *Error
	if errors.As(err, &be) {
		if be.Code != "" {
			return fmt.Sprintf("%d %s", be.Status, escape(string(be.Code), 40))
		}
		return fmt.Sprintf("%d %s", be.Status, http.StatusText(be.Status))
	}
	return escape(err.Error(), 120)
}

// decodeGranted reads a success answer, checking every field before it is
// used: the token's value is one run of token characters, the id 32 hex,
// the expiry RFC 3339.
func decodeGranted(body []byte) (Granted, error) {
	var tr tokenResponse
	if err := json.Unmarshal(body, &tr); err != nil {
		return Granted{}, fmt.Errorf("%w: the answer is not the JSON of a token", errBadAnswer)
	}
	value, err := token.ParseAPIToken(tr.AccessToken)
	if err != nil || len(tr.AccessToken) > maxChildSize {
		return Granted{}, fmt.Errorf("%w: access_token is missing or not a token", errBadAnswer)
	}
	// From here on a fault still returns the token: the broker made it.
	bad := Granted{Token: value}
	if !token.IsHexID(tr.TokenID) {
		return bad, fmt.Errorf("%w: token_id is not 32 lowercase hex", errBadAnswer)
	}
	exp, err := time.Parse(time.RFC3339, tr.ExpiresAt)
	if err != nil {
		return bad, fmt.Errorf("%w: expires_at is not an RFC 3339 time", errBadAnswer)
	}
	if tr.TokenType != "" && !strings.EqualFold(tr.TokenType, "Bearer") {
		return bad, fmt.Errorf("%w: token_type is not Bearer", errBadAnswer)
	}
	scopes, aerr := parseScopeParam(tr.Scope)
	if aerr != nil {
		return bad, fmt.Errorf("%w: scope: %s", errBadAnswer, aerr.desc)
	}
	// What the job is told it got, and where its post step deletes: the
	// shapes a Cloudflare answer has, checked as the client checks Cloudflare's.
	if tr.Owner != "" && tr.Owner != string(token.OwnerUser) && tr.Owner != string(token.OwnerAccount) {
		return bad, fmt.Errorf("%w: owner is neither user nor account", errBadAnswer)
	}
	notHexID := func(s string) bool { return !token.IsHexID(s) }
	if slices.ContainsFunc(tr.AccountIDs, notHexID) {
		return bad, fmt.Errorf("%w: an account id is not 32 lowercase hex", errBadAnswer)
	}
	if slices.ContainsFunc(tr.PermissionGroups, func(pg permissionGroup) bool { return notHexID(pg.ID) }) {
		return bad, fmt.Errorf("%w: a permission group id is not 32 lowercase hex", errBadAnswer)
	}
	for _, ip := range tr.AllowedIPs {
		if got, _, err := token.ParseAllowedIPs(ip); err != nil || len(got) != 1 {
			return bad, fmt.Errorf("%w: an allowed ip is not one CIDR", errBadAnswer)
		}
	}
	g := Granted{
		Token: value, TokenID: tr.TokenID, Name: tr.Name, ExpiresAt: exp.UTC(),
		ExpiresIn: time.Duration(tr.ExpiresIn) * time.Second, Owner: token.Owner(tr.Owner),
		AccountIDs: tr.AccountIDs, AllowedIPs: tr.AllowedIPs, Rule: tr.Rule, Scopes: scopes, Scope: tr.Scope,
	}
	for _, pg := range tr.PermissionGroups {
		g.PermissionGroups = append(g.PermissionGroups, token.PermissionGroup{ID: pg.ID, Name: pg.Name})
	}
	return g, nil
}
