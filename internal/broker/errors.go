package broker

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Code is an OAuth error code as the broker answers it (SPEC, the broker's
// error table; RFC 6749 §5.2, RFC 8693 §2.2.2, RFC 7009 §2.2.1).
type Code string

// The codes the broker answers. A denial by the policy carries the
// policy's own code (policy.Code), which is one of these.
const (
	InvalidRequest         Code = "invalid_request"         // 400: malformed request, or a subject token refused
	UnsupportedGrantType   Code = "unsupported_grant_type"  // 400: a grant_type other than token exchange
	InvalidScope           Code = "invalid_scope"           // 400: a scope no matching rule grants, or a token-managing group
	InvalidTarget          Code = "invalid_target"          // 400: an account no matching rule grants
	AccessDenied           Code = "access_denied"           // 403: no rule matches the token's claims
	SlowDown               Code = "slow_down"               // 429: the identity's rate limit; Retry-After set
	TemporarilyUnavailable Code = "temporarily_unavailable" // 502/503: Cloudflare failed, or the issuer's keys could not be fetched
	ServerError            Code = "server_error"            // 500: a fault of the broker itself
)

// Error is an error answer of the broker, as the client reads it: the HTTP
// status, the OAuth error code and description, and the wait the broker
// asked for (Retry-After) on 429 and 503. Match codes with errors.As:
//
//	var be *broker.Error
//	if errors.As(err, &be) && be.Code == broker.AccessDenied { … }
type Error struct {
	Status      int
	Code        Code
	Description string
	RetryAfter  time.Duration
}

// Error writes the answer as "broker answered 403 access_denied: …". The
// description is the broker's text, shown with control and non-ASCII
// characters escaped: it is data from across the wire.
func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "broker answered %d", e.Status)
	if e.Code != "" {
		b.WriteString(" " + escape(string(e.Code), 64))
	} else {
		b.WriteString(" " + http.StatusText(e.Status))
	}
	if e.Description != "" {
		b.WriteString(": " + escape(e.Description, 500))
	}
	if e.RetryAfter > 0 {
		fmt.Fprintf(&b, " (retry after %s)", e.RetryAfter)
	}
	return b.String()
}

// Temporary reports whether the same request may succeed later: 429, 502,
// 503 and 504 — what the client retries.
func (e *Error) Temporary() bool {
	switch e.Status {
	case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// escape writes s with control, non-printable and non-ASCII characters
// escaped as Go does (\n, \u2028…), cut to about limit characters.
func escape(s string, limit int) string {
	if !utf8.ValidString(s) {
		s = string([]rune(s))
	}
	var b strings.Builder
	n := 0
	for _, r := range s {
		if n >= limit {
			b.WriteString("…")
			break
		}
		n++
		if r < 0x80 && unicode.IsPrint(r) {
			b.WriteRune(r)
			continue
		}
		q := strconv.QuoteRuneToASCII(r)
		b.WriteString(q[1 : len(q)-1])
	}
	return b.String()
}

// errorBody is the JSON of an error answer (RFC 6749 §5.2).
type errorBody struct {
	Error       Code   `json:"error"`
	Description string `json:"error_description,omitempty"`
}

// apiError is an answer the server is about to give: its status, code,
// description (which never holds a token) and Retry-After.
type apiError struct {
	status     int
	code       Code
	desc       string
	retryAfter time.Duration
}

func (e *apiError) Error() string { return fmt.Sprintf("%d %s: %s", e.status, e.code, e.desc) }

func badRequest(code Code, format string, args ...any) *apiError {
	return &apiError{status: http.StatusBadRequest, code: code, desc: fmt.Sprintf(format, args...)}
}

// writeError answers e as JSON, no-store (an error answer of the token
// endpoint is an answer about tokens too).
func writeError(w http.ResponseWriter, e *apiError) {
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	if e.retryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(int(math.Ceil(e.retryAfter.Seconds()))))
	}
	w.WriteHeader(e.status)
	b, _ := json.Marshal(errorBody{Error: e.code, Description: e.desc})
	_, _ = w.Write(append(b, '\n'))
}

// retryAfterSeconds is a wait as Retry-After says it: whole seconds, at
// least one.
func retryAfterSeconds(d time.Duration) time.Duration {
	return time.Duration(max(1, math.Ceil(d.Seconds()))) * time.Second
}
