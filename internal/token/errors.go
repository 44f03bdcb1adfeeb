package token

import (
	"errors"
	"fmt"
)

// InputError is a fault in what the user asked for: which input, what was
// wrong and what is accepted. Only validation makes one; it is shown as a
// single annotation (action) or an error plus a hint (CLI), and the run makes
// no API call after it.
type InputError struct {
	Input    string // the input's name as action.yml spells it, e.g. "account-ids"
	Problem  string // what is wrong, without the secret value of any input
	Accepted string // what is accepted instead
}

func (e *InputError) Error() string {
	if e.Accepted == "" {
		return fmt.Sprintf("input %s: %s", e.Input, e.Problem)
	}
	return fmt.Sprintf("input %s: %s (accepted: %s)", e.Input, e.Problem, e.Accepted)
}

func inputErrorf(input, accepted, format string, args ...any) *InputError {
	return &InputError{Input: input, Problem: fmt.Sprintf(format, args...), Accepted: accepted}
}

// Ref names an input, or an input set to a value, inside a message:
// Ref("owner", "account"). The action shows it as "owner: account", the
// CLI as "--owner account" (cli's vocabularies): one message, said in the
// words of whoever reads it. Refs are written ‹name› and ‹name=value›;
// user text in a message never holds those marks (clip removes them).
func Ref(name string, value ...string) string {
	if len(value) == 0 {
		return "‹" + name + "›"
	}
	return "‹" + name + "=" + value[0] + "›"
}

// Errors the Cloudflare client's answers match (with errors.Is), so that
// the lifecycle and the messages react to what happened without knowing the
// API's statuses and codes: the client classifies each answer once.
var (
	// ErrNotFound: the token (or other object) does not exist; for a delete
	// it means the token is already gone.
	ErrNotFound = errors.New("not found")
	// ErrOutcomeUnknown: a request that changes state was sent but no answer
	// arrived (timeout, reset, lost response, 5xx): it may or may not have
	// taken effect.
	ErrOutcomeUnknown = errors.New("outcome unknown")
	// ErrQuotaExceeded: the user or account holds as many tokens as Cloudflare
	// allows (50 per user, 500 per account; expired ones count until deleted).
	ErrQuotaExceeded = errors.New("token quota exceeded")
	// ErrUnauthorized: the API refused the calling token itself (mistyped,
	// expired, deleted, IP-restricted, or an account-owned token on a user
	// endpoint).
	ErrUnauthorized = errors.New("token refused")
	// ErrForbidden: the calling token is valid but lacks a permission the call
	// needs.
	ErrForbidden = errors.New("permission missing")
	// ErrPermissionCeiling: Cloudflare's "common permission check" refused a
	// group of the child: the parent (or its owner) does not hold it on those
	// resources.
	ErrPermissionCeiling = errors.New("beyond the parent's permissions")
	// ErrRateLimited: the API's rate limit held for longer than the call waits.
	ErrRateLimited = errors.New("rate limited")
	// ErrUnavailable: the API kept failing (5xx).
	ErrUnavailable = errors.New("API unavailable")
	// ErrBadAnswer: a 2xx answer that no real API gives: a missing result,
	// an id that is not 32 lowercase hex, a value that is not a token. What
	// it says is not acted on; a create answered so is found by name.
	ErrBadAnswer = errors.New("malformed answer")
)
