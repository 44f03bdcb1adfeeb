package token

import (
	"fmt"
	"net/url"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Record is what a main phase leaves for its post phase, one field per
// state value, as saved. Main writes every field at its very start (empty)
// and again at each step of the lifecycle, so the post phase sees only
// what this run's main saved: a STATE_* variable planted in the job's
// environment is overwritten by main's own (reference/github-runner.md §1,
// precedence; §2, state).
type Record struct {
	TokenID   string // the token that exists and was not deleted; "" if none
	Name      string // its unique name, saved before the first create was sent
	ExpiresAt string // RFC 3339
	AccountID string // the account of an account-owned token; "" for user-owned
	// Pending is "true" while a create was sent whose outcome main did not
	// learn (it was stopped mid-create); Lost is "true" once main saw a
	// create answer lost. Either way a token with Name may exist that
	// TokenID does not name.
	Pending, Lost string
	// Secret is the child itself, in keyless mode only: the broker deletes
	// a token when it is presented with it.
	Secret string
}

// Cleanup is a validated post phase: what to delete, with which parent
// token, where. Like Request for main, a Cleanup that comes back is safe
// to act on exactly as it is: the id sent is the id checked.
type Cleanup struct {
	Mode     Mode
	APIToken Secret
	APIURL   *url.URL
	Endpoint Endpoint
	Token    Info // ID "" when only the name is known
	// FindByName: look the endpoint's tokens up by Token.Name and delete
	// those with exactly that name, because a create answer was lost or
	// main was stopped before it learned the outcome (Pending: the create
	// may still be committing).
	FindByName, Pending bool
	// Keep: the user asked for Token.ID to outlive the job (revoke: false)
	// and main handed it over. Same-named twins are deleted all the same.
	Keep bool
	// BrokerURL is set in keyless mode: the child (Child) is deleted through
	// the broker that made it; there is no parent token.
	BrokerURL *url.URL
	Child     Secret
}

// Nothing reports whether the post phase has nothing to delete.
func (c Cleanup) Nothing() bool { return c.Mode == ModeCreate && c.Token.ID == "" && !c.FindByName }

// StateError is a state value that main could not have written. Nothing is
// deleted on a guess.
type StateError struct {
	Key     string // the state key, e.g. "token-id"
	Problem string
}

func (e *StateError) Error() string { return fmt.Sprintf("state %s %s", e.Key, e.Problem) }

// ParseCleanup validates what the post phase needs: the mode, revoke,
// api-token and api-url inputs, and main's record. Only mode create
// cleans up: in modes revoke and sweep main made nothing, so post deletes
// nothing whatever the state says.
func (in Inputs) ParseCleanup(rec Record) (Cleanup, error) {
	c := Cleanup{Mode: ModeCreate, Pending: rec.Pending == "true", FindByName: rec.Pending == "true" || rec.Lost == "true"}
	if rec.TokenID == "" && !c.FindByName {
		return c, nil // main made nothing: whatever the inputs say, there is nothing to do
	}
	var err error
	if c.Mode, err = parseMode(in.Mode); err != nil {
		return Cleanup{}, err
	}
	if c.Mode != ModeCreate {
		return Cleanup{Mode: c.Mode}, nil
	}
	revoke, err := ParseBool("revoke", in.Revoke)
	if err != nil {
		return Cleanup{}, err
	}
	if strings.TrimSpace(in.BrokerURL) != "" {
		return c.keyless(in, rec, revoke)
	}
	if c.APIToken, err = ParseAPIToken(in.APIToken); err != nil {
		return Cleanup{}, err
	}
	if c.APIURL, err = ParseAPIURL(in.APIURL); err != nil {
		return Cleanup{}, err
	}
	// The state is checked as it is, not trimmed: what is sent must be what
	// was checked (an id with a trailing space once passed as valid and was
	// sent with the space).
	if rec.TokenID != "" && !IsHexID(rec.TokenID) {
		return Cleanup{}, &StateError{Key: "token-id", Problem: "is not a token id (32 lowercase hex characters)"}
	}
	if rec.AccountID != "" && !IsHexID(rec.AccountID) {
		return Cleanup{}, &StateError{Key: "token-account", Problem: "is not exactly one account id (32 lowercase hex characters)"}
	}
	if c.Token.ExpiresOn, err = rec.expiresOn(); err != nil {
		return Cleanup{}, err
	}
	if !validName(rec.Name) || c.FindByName && rec.Name == "" {
		return Cleanup{}, &StateError{Key: "token-name", Problem: "is not a token name this tool makes"}
	}
	c.Endpoint = Endpoint{AccountID: rec.AccountID}
	c.Token.ID, c.Token.Name = rec.TokenID, rec.Name
	// revoke: false keeps only a token main handed over; one whose create
	// main never saw answered reached no step of the job, and would only
	// outlive it unused.
	c.Keep = !revoke && rec.TokenID != "" && rec.Pending != "true"
	return c, nil
}

// keyless is ParseCleanup's keyless half: main handed over a child the
// broker made, whose value, id and expiry are in the record.
func (c Cleanup) keyless(in Inputs, rec Record, revoke bool) (Cleanup, error) {
	var err error
	if c.BrokerURL, err = ParseBrokerURL(in.BrokerURL); err != nil {
		return Cleanup{}, err
	}
	switch {
	case !IsHexID(rec.TokenID):
		return Cleanup{}, &StateError{Key: "token-id", Problem: "is not a token id (32 lowercase hex characters)"}
	case rec.Secret == "" || strings.ContainsFunc(rec.Secret, func(r rune) bool { return r <= ' ' || r > '~' }):
		return Cleanup{}, &StateError{Key: "token-secret", Problem: "is not a token"}
	case rec.Pending == "true" || rec.Lost == "true":
		return Cleanup{}, &StateError{Key: "token-pending", Problem: "is set, which keyless mode never does"}
	}
	c.FindByName, c.Pending = false, false
	if c.Token.ExpiresOn, err = rec.expiresOn(); err != nil {
		return Cleanup{}, err
	}
	c.Token.ID, c.Token.Name, c.Child, c.Keep = rec.TokenID, rec.Name, NewSecret(rec.Secret), !revoke
	return c, nil
}

// expiresOn is the recorded expiry; zero when none was recorded.
func (rec Record) expiresOn() (time.Time, error) {
	if rec.ExpiresAt == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339, rec.ExpiresAt)
	if err != nil {
		return time.Time{}, &StateError{Key: "token-expires-at", Problem: "is not an RFC 3339 time"}
	}
	return t, nil
}

// validName reports whether s could be a name ParseName made: printable,
// at most MaxNameLength characters.
func validName(s string) bool {
	if !utf8.ValidString(s) || utf8.RuneCountInString(s) > MaxNameLength {
		return false
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}
