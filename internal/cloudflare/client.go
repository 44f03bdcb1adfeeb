// Package cloudflare is the client for Cloudflare's API-token endpoints,
// user- and account-owned (reference/cloudflare-api.md). It drives the
// official SDK (cloudflare-go v6) with explicit options only — the SDK's
// NewClient would read CLOUDFLARE_* from the environment and add their
// credentials to every request — with the SDK's own retries off: every
// answer is classified here, once, into the domain's errors (token.Err…),
// and only calls that may be repeated are.
package cloudflare

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/cloudflare/cloudflare-go/v6/option"

	"github.com/cf-scoped-token/cf-scoped-token/internal/retry"
	"github.com/cf-scoped-token/cf-scoped-token/internal/token"
)

// Body size limits: far above any real answer (the permission-group list
// is the largest, around 100 KiB), low enough that a broken or hostile
// server cannot exhaust memory.
const (
	maxBodySize      = 8 << 20
	maxErrorBodySize = 64 << 10
)

// Client calls the token API. BaseURL, HTTP and Token must be set; there is
// no default URL, so a forgotten setting fails instead of reaching
// production.
type Client struct {
	BaseURL string       // e.g. https://api.cloudflare.com/client/v4
	HTTP    *http.Client // NewHTTPClient's, or the caller's; its CheckRedirect is replaced: redirects are refused
	Token   token.Secret // the parent token
	Retry   retry.Policy // zero value: DefaultRetry
	// CreateTimeout bounds one create attempt; zero: DefaultCreateTimeout.
	CreateTimeout time.Duration
	// UserAgent, if set, names the tool in each request.
	UserAgent string
	// Debugf, if set, gets one line per attempt: method, path, status or
	// error, duration. Never headers or bodies.
	Debugf func(format string, args ...any)
	// Progressf, if set, gets one line for each failed attempt after the
	// first that will be tried again, so a long wait is never silent: "attempt
	// N of M failed: …; next in …", or for a 429, which uses up no attempt,
	// "rate limited (attempt N); next in …".
	Progressf func(format string, args ...any)
	// Now is the clock for Retry-After dates; nil: time.Now.
	Now func() time.Time
}

// NewHTTPClient returns the HTTP client the tool's calls go through. It
// speaks HTTP/1.1 only: a token call is a few sequential requests on one
// kept-alive connection, and the HTTP/2 code prints every header, the
// Authorization header included, when GODEBUG=http2debug is set — which
// any earlier step of a job can do through GITHUB_ENV. An http:// URL (only
// ever a loopback one: the client refuses others) never goes through a
// proxy, which would see the token in clear text.
func NewHTTPClient() *http.Client {
	var http1 http.Protocols
	http1.SetHTTP1(true)
	return &http.Client{Transport: &http.Transport{
		Proxy: func(r *http.Request) (*url.URL, error) {
			if r.URL.Scheme == "http" {
				return nil, nil
			}
			return http.ProxyFromEnvironment(r)
		},
		DialContext:           (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		Protocols:             &http1,
		MaxIdleConns:          4,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
	}}
}

// DefaultRetry rides out about a minute of trouble (backoffs of 0.5s, 1s,
// 2s … capped at 30s, jittered) or of rate limiting, each attempt bounded
// by 20s; the phase's deadline bounds it all. Ten attempts, not fewer: at a
// 20% fault rate six still failed a post step's delete about once in
// 10,000 jobs (the soak test in internal/mint).
func DefaultRetry() retry.Policy {
	return retry.Policy{Attempts: 10, Base: retry.DefaultBase, Max: retry.DefaultMax, Timeout: 20 * time.Second}
}

// DefaultCreateTimeout bounds one create attempt: more than a minute, the
// longest a slow API was seen to take, and well inside main's deadline.
// Giving up on a create early is what makes a twin: it commits after the
// client stopped waiting.
const DefaultCreateTimeout = 75 * time.Second

func (c *Client) retry(kind callKind) retry.Policy {
	p := c.Retry
	d := DefaultRetry()
	if p.Attempts == 0 {
		p.Attempts, p.Base, p.Max = d.Attempts, d.Base, d.Max
	}
	if p.Timeout == 0 {
		p.Timeout = d.Timeout
	}
	if kind == create {
		p.Timeout = c.CreateTimeout
		if p.Timeout == 0 {
			p.Timeout = DefaultCreateTimeout
		}
	}
	if c.Progressf != nil {
		p.Progress = func(n, attempts int, err error, wait time.Duration) {
			wait = wait.Round(100 * time.Millisecond)
			var rl *RateLimitError
			if errors.As(err, &rl) {
				// A 429 uses up no attempt: the same one goes again.
				c.Progressf("rate limited (attempt %d); next in %s", n, wait)
				return
			}
			c.Progressf("attempt %d of %d failed: %s; next in %s", n, attempts, shortCause(err), wait)
		}
	}
	return p
}

// checkBaseURL refuses a base URL that would send the token in clear text
// off this machine or that no request can be made to. Input validation
// (token.ParseAPIURL, the same rules) refuses it first; this keeps the
// client safe whoever builds it.
func checkBaseURL(base string) (*url.URL, error) {
	u, err := token.ParseAPIURL(base)
	if err != nil {
		var ie *token.InputError
		if errors.As(err, &ie) {
			return nil, fmt.Errorf("cloudflare client: refusing BaseURL: %s", ie.Problem)
		}
		return nil, fmt.Errorf("cloudflare client: refusing BaseURL: %w", err)
	}
	return u, nil
}

// options are the only settings the SDK gets: no environment, no retries.
func (c *Client) options(secret token.Secret) ([]option.RequestOption, error) {
	hc, base, err := c.httpClient()
	if err != nil {
		return nil, err
	}
	if err := checkSecret(secret); err != nil {
		return nil, err
	}
	opts := []option.RequestOption{
		option.WithBaseURL(base.String() + "/"),
		option.WithHTTPClient(hc),
		option.WithMaxRetries(0),
		option.WithAPIToken(secret.Reveal()),
		option.WithHeaderDel("X-Stainless-Retry-Count"),
		option.WithMiddleware(c.classify),
	}
	if c.UserAgent != "" {
		opts = append(opts, option.WithHeader("User-Agent", c.UserAgent))
	}
	return opts, nil
}

// httpClient is c.HTTP with redirects refused, and the checked base URL.
func (c *Client) httpClient() (*http.Client, *url.URL, error) {
	if c.BaseURL == "" || c.HTTP == nil {
		return nil, nil, errors.New("cloudflare client: BaseURL and HTTP must be set")
	}
	base, err := checkBaseURL(c.BaseURL)
	if err != nil {
		return nil, nil, err
	}
	hc := *c.HTTP // a copy shares the transport, and with it kept-alive connections
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &hc, base, nil
}

// checkSecret refuses a token no Authorization header can carry: sending
// it would fail the same way every time (token.ParseAPIToken refuses it at
// input already).
func checkSecret(secret token.Secret) error {
	v := secret.Reveal()
	if v == "" {
		return errors.New("cloudflare client: no API token")
	}
	for i := 0; i < len(v); i++ {
		if v[i] < 0x21 || v[i] > 0x7e {
			return errors.New("cloudflare client: the API token holds a character no HTTP header can carry")
		}
	}
	return nil
}

// classify turns every answer that is not a 2xx into *APIError or
// *RateLimitError before the SDK sees it (the SDK would lose the status of
// a non-JSON 5xx page), and bounds what the SDK may read.
func (c *Client) classify(req *http.Request, next option.MiddlewareNext) (*http.Response, error) {
	start := time.Now()
	path := strings.TrimPrefix(req.URL.Path, basePath(c.BaseURL))
	res, err := next(req)
	if err != nil {
		c.debugf("%s %s: %v (%s)", req.Method, path, transportText(err), time.Since(start).Round(time.Millisecond))
		return nil, err
	}
	c.debugf("%s %s: %d (%s)", req.Method, path, res.StatusCode, time.Since(start).Round(time.Millisecond))
	if res.StatusCode >= 300 && res.StatusCode < 400 {
		res.Body.Close()
		return nil, fmt.Errorf("%s %s: %d: %w", req.Method, path, res.StatusCode, errRedirect)
	}
	if res.StatusCode < 300 {
		res.Body = struct {
			io.Reader
			io.Closer
		}{io.LimitReader(res.Body, maxBodySize), res.Body}
		return res, nil
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(res.Body, maxErrorBodySize))
	var env struct {
		Errors []Message `json:"errors"`
	}
	_ = json.Unmarshal(body, &env) // a non-JSON page (a proxy's 502) leaves Errors empty
	// An answer that echoes the request's token must not carry it on into an
	// error message, a log line or an annotation.
	if bearer, ok := strings.CutPrefix(req.Header.Get("Authorization"), "Bearer "); ok && bearer != "" {
		for i := range env.Errors {
			env.Errors[i].Message = strings.ReplaceAll(env.Errors[i].Message, bearer, "[redacted]")
		}
	}
	apiErr := APIError{Method: req.Method, Path: path, Status: res.StatusCode, Errors: env.Errors}
	if res.StatusCode == http.StatusTooManyRequests {
		return nil, &RateLimitError{APIError: apiErr, RetryAfter: c.retryAfter(res.Header.Get("Retry-After"))}
	}
	return nil, &apiErr
}

// retryAfter reads Retry-After (retry.After) against the client's clock.
func (c *Client) retryAfter(v string) time.Duration {
	now := time.Now
	if c.Now != nil {
		now = c.Now
	}
	return retry.After(v, now())
}

// basePath is the path of the base URL with a trailing slash, which the
// debug lines and error paths leave out.
func basePath(base string) string {
	u, err := url.Parse(base)
	if err != nil {
		return "/"
	}
	return strings.TrimRight(u.Path, "/") + "/"
}

func (c *Client) debugf(format string, args ...any) {
	if c.Debugf != nil {
		c.Debugf(format, args...)
	}
}

// transportText describes a transport error without the URL (none carries
// a secret today; this keeps it so).
func transportText(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err.Error()
	}
	return err.Error()
}

// callKind says what may be repeated.
type callKind int

const (
	// idempotent calls (GET, DELETE, roll) are repeated after any fault that
	// can heal.
	idempotent callKind = iota
	// create is repeated only after a 429, which the API answers before
	// doing anything; any other fault leaves its outcome unknown.
	create
)

// do runs call, repeating it per the retry policy while that is safe.
func (c *Client) do(ctx context.Context, kind callKind, call func(ctx context.Context) error) error {
	return c.retry(kind).Do(ctx, call, func(err error) retry.Verdict {
		var rl *RateLimitError
		if errors.As(err, &rl) {
			return retry.Verdict{Again: true, After: rl.RetryAfter, Throttled: true} // a 429 means the call was refused, not done
		}
		return retry.Verdict{Again: kind == idempotent && canHeal(err)}
	})
}

// canHeal reports whether the same request may succeed when sent again: a
// 408, 409, 429 or 5xx answer, a reset or refused connection, a timeout. A
// redirect, any other 4xx, a malformed answer, or a request that could not
// be sent at all (see neverSent) fails the same way every time, so it fails
// at once.
func canHeal(err error) bool {
	var apiErr *APIError
	if errors.As(err, &apiErr) {
		return apiErr.Temporary()
	}
	var sdkErr interface{ DumpResponse(bool) []byte }
	switch {
	case errors.Is(err, errRedirect), errors.Is(err, token.ErrBadAnswer), neverSent(err):
		return false
	case errors.As(err, &sdkErr):
		return false // an SDK-classified answer; ours come first, so this is a decoding fault
	}
	return true // transport: reset, refused, EOF, timeout of one attempt
}

// neverSent reports whether a transport error means the request never
// reached the API, for a reason that will not go away: a certificate the
// client does not trust, a TLS handshake with something that does not speak
// TLS, a host name that does not exist.
func neverSent(err error) bool {
	var (
		unknownAuthority x509.UnknownAuthorityError
		hostname         x509.HostnameError
		invalidCert      x509.CertificateInvalidError
		verifyErr        *tls.CertificateVerificationError
		recordHeader     tls.RecordHeaderError
		dnsErr           *net.DNSError
	)
	switch {
	case errors.As(err, &unknownAuthority), errors.As(err, &hostname), errors.As(err, &invalidCert),
		errors.As(err, &verifyErr), errors.As(err, &recordHeader), errors.Is(err, http.ErrSchemeMismatch):
		return true
	case errors.As(err, &dnsErr):
		return !dnsErr.IsTimeout && !dnsErr.IsTemporary
	}
	return false
}

// shortCause is the part of err a progress line shows: the status, or the
// transport error without the URL.
func shortCause(err error) string {
	var apiErr *APIError
	if errors.As(err, &apiErr) {
		return fmt.Sprintf("%d %s", apiErr.Status, http.StatusText(apiErr.Status))
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		var sys interface{ Unwrap() error }
		if errors.As(op.Err, &sys) {
			return sys.Unwrap().Error()
		}
		return op.Err.Error()
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "no answer in time"
	}
	return transportText(err)
}

// unknownOutcome marks err, the error of a create, when it may have made a
// token. That is decided by last, how the last attempt sent ended — not by
// err, which also holds the answers before it: an attempt cut by the
// context after a 429 may have committed all the same. No answer, a 5xx,
// or a 2xx that could not be read may have made one; a 4xx, a redirect, or
// a request that was never sent made nothing.
func unknownOutcome(last, err error) error {
	var apiErr *APIError
	if errors.As(last, &apiErr) && apiErr.Status < 500 || errors.Is(last, errRedirect) || neverSent(last) {
		return err
	}
	return fmt.Errorf("%w: %w", token.ErrOutcomeUnknown, err)
}
