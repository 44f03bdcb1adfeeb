package cloudflare

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/cf-scoped-token/cf-scoped-token/internal/token"
)

// Cloudflare's error codes that the tool reacts to (reference/cloudflare-api.md,
// Errors and limits). Every other code is shown, never acted on.
const (
	// CodePermissionCeiling: the child would hold more than the parent
	// ("Failed common permission check against resources", 400).
	CodePermissionCeiling = 1001
	// CodeQuota: the user or account holds as many tokens as it may (50 per
	// user, 500 per account). The reference documents the limits but not
	// the code; 1005 is what the emulator answers, and a different code
	// from the real API only loses the automatic clean-up, not the error.
	CodeQuota = 1005
	// CodeBadRoute: "Could not route to …, perhaps your object identifier
	// is invalid?" — a 404 about a malformed id, not a missing token.
	CodeBadRoute = 7003
	// CodeInvalidAccessToken: the calling token is invalid (403), or, seen
	// too, may not touch the resource.
	CodeInvalidAccessToken = 9109
)

// Message is one entry of an envelope's errors or messages.
type Message struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

// APIError is a non-2xx answer. Its text names the method, path, status and
// Cloudflare's codes and messages — never a header, a query or a body, so it
// cannot carry a token; the messages are the API's words, shown quoted
// (escaped) because they are data, and the bearer token the request carried
// is cut out of them before they are kept.
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
		fmt.Fprintf(&b, "; code %d: %q", m.Code, m.Message)
	}
	return b.String()
}

// Has reports whether Cloudflare's answer carries the error code.
func (e *APIError) Has(code int) bool {
	return slices.ContainsFunc(e.Errors, func(m Message) bool { return m.Code == code })
}

// Is lets errors.Is match the domain's sentinels, so the lifecycle and the
// messages never look at statuses, codes or paths themselves.
func (e *APIError) Is(target error) bool {
	switch target {
	case token.ErrNotFound:
		// 7003 is a 404 about the request, not the token: "already gone"
		// would be a lie.
		return e.Status == http.StatusNotFound && !e.Has(CodeBadRoute)
	case token.ErrQuotaExceeded:
		return e.Has(CodeQuota)
	case token.ErrUnauthorized:
		return e.Status == http.StatusUnauthorized ||
			e.Status == http.StatusForbidden && e.Has(CodeInvalidAccessToken)
	case token.ErrForbidden:
		return e.Status == http.StatusForbidden && !e.Has(CodeInvalidAccessToken)
	case token.ErrPermissionCeiling:
		return e.Status == http.StatusBadRequest && e.Has(CodePermissionCeiling)
	case token.ErrRateLimited:
		return e.Status == http.StatusTooManyRequests
	case token.ErrUnavailable:
		return e.Status >= 500
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
// (zero when it named none), at most retry.MaxAfter.
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

// badAnswer is a 2xx answer that lacks what it must hold or holds what no
// real answer does (an id that is not 32 lowercase hex, a value that is not
// a token). Its text never quotes the answer.
func badAnswer(what string) error { return fmt.Errorf("%w: %s", token.ErrBadAnswer, what) }
