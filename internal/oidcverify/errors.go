package oidcverify

import (
	"errors"
	"fmt"
	"strconv"
	"unicode/utf8"
)

// Error classes. Every error Verify returns matches exactly one of ErrInvalid (ErrReplay
// included) and ErrUnavailable under errors.Is.
var (
	// ErrInvalid is matched by every fault of the token itself: malformed, too big, a refused
	// algorithm, an untrusted issuer, a bad signature, the wrong audience, expired, not yet
	// valid, issued in the future, missing exp, iat or jti, or replayed. The error's text is a
	// short reason safe to show the caller (an RFC 6749 error_description): values from the
	// token are quoted, escaped and shortened, and the token itself never appears.
	ErrInvalid = errors.New("invalid token")
	// ErrReplay is matched (as well as ErrInvalid) when the token's (iss, jti) was accepted
	// before: the token is being exchanged a second time.
	ErrReplay = fmt.Errorf("replayed token: %w", ErrInvalid)
	// ErrUnavailable is matched when the token could not be judged because the issuer's
	// discovery document or keys could not be had: the caller may try again later.
	ErrUnavailable = errors.New("issuer keys unavailable")
)

// tokenError is a fault of the token: its text is the reason, its class ErrInvalid or
// ErrReplay.
type tokenError struct {
	class  error
	reason string
}

func (e *tokenError) Error() string { return e.reason }
func (e *tokenError) Unwrap() error { return e.class }

// invalidf returns an ErrInvalid with the reason; callers quote every value from the token.
func invalidf(format string, args ...any) error {
	return &tokenError{class: ErrInvalid, reason: fmt.Sprintf(format, args...)}
}

// unavailableError is an issuer that could not be reached or answered badly.
type unavailableError struct {
	what  string // e.g. `discovery of issuer "https://…"`
	cause error
}

func (e *unavailableError) Error() string {
	// The cause may carry text from the issuer's answer (go-oidc puts the response body of a
	// failed discovery in its error): escape and shorten it like any value from outside.
	return e.what + " failed: " + clean(e.cause.Error(), 200)
}

func (e *unavailableError) Unwrap() []error { return []error{ErrUnavailable, e.cause} }

// quote returns s as a double-quoted, ASCII-only Go string of at most about 64 characters, so
// that text from a token can neither flood a log nor inject control characters into it.
func quote(s string) string {
	const limit = 64
	if utf8.RuneCountInString(s) <= limit {
		return strconv.QuoteToASCII(s)
	}
	q := strconv.QuoteToASCII(string([]rune(s)[:limit]))
	return q[:len(q)-1] + `..."`
}

// clean escapes control and non-ASCII characters in s (as quote does, without the quotes) and
// cuts it to about limit bytes.
func clean(s string, limit int) string {
	if len(s) > limit {
		s = s[:limit] + "..."
	}
	q := strconv.QuoteToASCII(s)
	return q[1 : len(q)-1]
}
