// Package cloudflare is the client for Cloudflare's API-token endpoints,
// user- and account-owned (reference/cloudflare-api.md). It drives the
// official SDK (cloudflare-go v6) with explicit options only — the SDK's
// NewClient would read CLOUDFLARE_* from the environment and add their
// credentials to every request — with the SDK's own retries off: every
// answer is classified here, and only calls that may be repeated are.
package cloudflare

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/cloudflare/cloudflare-go/v6/option"

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
	HTTP    *http.Client // its CheckRedirect is replaced: redirects are refused
	Token   token.Secret // the parent token
	Retry   Retry        // zero value: DefaultRetry
	// UserAgent, if set, names the tool in each request.
	UserAgent string
	// Debugf, if set, gets one line per attempt: method, path, status or
	// error, duration. Never headers or bodies.
	Debugf func(format string, args ...any)
}

// Retry is the one backoff policy for every call that may be repeated:
// capped exponential backoff with full jitter, honouring Retry-After, within
// the context's deadline.
type Retry struct {
	Attempts int           // attempts per call, the first included
	Base     time.Duration // first backoff
	Max      time.Duration // cap on one backoff, and on a Retry-After honoured
	// Sleep waits or returns ctx.Err(); tests inject one that does not wait.
	Sleep func(ctx context.Context, d time.Duration) error
	// Jitter returns a number in [0, 1).
	Jitter func() float64
}

// DefaultRetry rides out about a minute of trouble (backoffs of 0.5s,
// 1s, 2s … capped at 30s, jittered) or of rate limiting; the phase's
// deadline bounds it all. Ten attempts, not fewer: at a 20% fault rate
// six still failed a post step's delete about once in 10,000 jobs (the
// soak test in internal/mint).
func DefaultRetry() Retry {
	return Retry{Attempts: 10, Base: 500 * time.Millisecond, Max: 30 * time.Second}
}

func (c *Client) retry() Retry {
	r := c.Retry
	if r.Attempts == 0 {
		d := DefaultRetry()
		r.Attempts, r.Base, r.Max = d.Attempts, d.Base, d.Max
	}
	if r.Sleep == nil {
		r.Sleep = sleep
	}
	if r.Jitter == nil {
		r.Jitter = rand.Float64
	}
	return r
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// backoff is the wait before attempt n+1 (n counts from 1).
func (r Retry) backoff(n int, err error) time.Duration {
	var rl *RateLimitError
	if errors.As(err, &rl) && rl.RetryAfter > 0 {
		return min(rl.RetryAfter, r.Max)
	}
	ceiling := min(r.Max, r.Base<<min(n-1, 16))
	return time.Duration(r.Jitter() * float64(ceiling))
}

// checkBaseURL refuses a base URL that would send the token in clear text
// off this machine. Input validation refuses it first; this keeps the
// client safe whoever builds it.
func checkBaseURL(base string) error {
	u, err := url.Parse(base)
	if err != nil || u.Host == "" {
		return errors.New("cloudflare client: BaseURL is not an absolute URL")
	}
	switch {
	case u.Scheme == "https":
		return nil
	case u.Scheme == "http" && isLoopback(u.Hostname()):
		return nil
	}
	return fmt.Errorf("cloudflare client: refusing %s:// to %s: the token would cross the network in clear text", u.Scheme, u.Hostname())
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
}

// options are the only settings the SDK gets: no environment, no retries.
func (c *Client) options(secret token.Secret) ([]option.RequestOption, error) {
	if c.BaseURL == "" || c.HTTP == nil {
		return nil, errors.New("cloudflare client: BaseURL and HTTP must be set")
	}
	if secret.IsZero() {
		return nil, errors.New("cloudflare client: no API token")
	}
	if err := checkBaseURL(c.BaseURL); err != nil {
		return nil, err
	}
	hc := *c.HTTP
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	opts := []option.RequestOption{
		option.WithBaseURL(strings.TrimRight(c.BaseURL, "/") + "/"),
		option.WithHTTPClient(&hc),
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
	apiErr := APIError{Method: req.Method, Path: path, Status: res.StatusCode, Errors: env.Errors}
	if res.StatusCode == http.StatusTooManyRequests {
		return nil, &RateLimitError{APIError: apiErr, RetryAfter: retryAfter(res.Header.Get("Retry-After"))}
	}
	return nil, &apiErr
}

// retryAfter reads Retry-After in seconds or as an HTTP date.
func retryAfter(v string) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(0, time.Until(t))
	}
	return 0
}

func basePath(base string) string {
	i := strings.Index(base, "://")
	if i < 0 {
		return "/"
	}
	rest := base[i+3:]
	if j := strings.Index(rest, "/"); j >= 0 {
		return strings.TrimRight(rest[j:], "/") + "/"
	}
	return "/"
}

func (c *Client) debugf(format string, args ...any) {
	if c.Debugf != nil {
		c.Debugf(format, args...)
	}
}

// transportText describes a transport error without the URL's query (none
// carries a secret today; this keeps it so).
func transportText(err error) string {
	var ue interface{ Unwrap() error }
	if errors.As(err, &ue) {
		if inner := ue.Unwrap(); inner != nil {
			return inner.Error()
		}
	}
	return err.Error()
}

// retryable reports whether an idempotent call may be repeated after err.
func retryable(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	if errors.Is(err, errRedirect) {
		return false
	}
	var apiErr *APIError
	if errors.As(err, &apiErr) {
		return apiErr.Temporary()
	}
	var sdkErr interface{ DumpResponse(bool) []byte }
	if errors.As(err, &sdkErr) {
		return false // an SDK-classified answer; ours come first, so this is a decoding fault
	}
	return true // transport: reset, EOF, timeout of one attempt
}

// do runs call, repeating it per the retry policy while that is safe.
func (c *Client) do(ctx context.Context, idempotent bool, call func(ctx context.Context) error) error {
	r := c.retry()
	for n := 1; ; n++ {
		err := call(ctx)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return errors.Join(ctx.Err(), err)
		}
		var rl *RateLimitError
		again := idempotent && retryable(err) || errors.As(err, &rl) // a 429 means the call was refused, not done
		if !again || n >= r.Attempts {
			return err
		}
		if serr := r.Sleep(ctx, r.backoff(n, err)); serr != nil {
			return errors.Join(serr, err)
		}
	}
}

// unknownOutcome marks the error of a create whose answer never came or was
// a 5xx: the token may exist.
func unknownOutcome(err error) error {
	var apiErr *APIError
	if errors.As(err, &apiErr) && apiErr.Status < 500 {
		return err
	}
	if errors.Is(err, errRedirect) {
		return err
	}
	return fmt.Errorf("%w: %w", token.ErrOutcomeUnknown, err)
}
