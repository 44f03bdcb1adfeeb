package cloudflare

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/cf-scoped-token/cf-scoped-token/internal/token"
)

// Message is one entry of an envelope's errors or messages.
type Message struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

// APIError is a non-2xx answer. Its text names the method, path, status and
// Cloudflare's codes and messages — never a header, a query or a body, so it
// cannot carry a token.
type APIError struct {
	Method string
	Path   string // path below the base URL, e.g. "user/tokens/{id}"
	Status int
	Errors []Message
}

func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s: %d %s", e.Method, e.Path, e.Status, http.StatusText(e.Status))
	for _, m := range e.Errors {
		fmt.Fprintf(&b, "; code %d: %s", m.Code, m.Message)
	}
	return b.String()
}

// Has reports whether Cloudflare's answer carries the error code.
func (e *APIError) Has(code int) bool {
	for _, m := range e.Errors {
		if m.Code == code {
			return true
		}
	}
	return false
}

// quotaCode is the code of the answer that the user or account holds as
// many tokens as it may (50 per user, 500 per account:
// reference/cloudflare-api.md, Errors and limits). The reference documents
// the limits but not the code; 1005 is what the emulator answers, and a
// different code from the real API only loses the automatic clean-up, not
// the error itself.
const quotaCode = 1005

// Is lets errors.Is match the domain's sentinels: a 404 is token.ErrNotFound,
// an answer about the token quota is token.ErrQuotaExceeded.
func (e *APIError) Is(target error) bool {
	switch target {
	case token.ErrNotFound:
		return e.Status == http.StatusNotFound
	case token.ErrQuotaExceeded:
		return e.Has(quotaCode)
	}
	return false
}

// Temporary reports whether the same request may succeed later: 408, 409
// (Cloudflare's own clients retry it), 429 and 5xx.
func (e *APIError) Temporary() bool {
	return e.Status == http.StatusRequestTimeout || e.Status == http.StatusConflict ||
		e.Status == http.StatusTooManyRequests || e.Status >= 500
}

// RateLimitError is a 429 answer; RetryAfter is the wait the API asked for
// (zero when it named none).
type RateLimitError struct {
	APIError
	RetryAfter time.Duration
}

func (e *RateLimitError) Error() string {
	if e.RetryAfter > 0 {
		return fmt.Sprintf("%s (retry after %s)", e.APIError.Error(), e.RetryAfter)
	}
	return e.APIError.Error()
}

// Unwrap exposes the APIError, so errors.As finds either type.
func (e *RateLimitError) Unwrap() error { return &e.APIError }

// errRedirect is returned for any 3xx answer: the client never follows one,
// since a redirect could carry the Authorization header to another host.
var errRedirect = errors.New("the API answered with a redirect, which is never followed")
