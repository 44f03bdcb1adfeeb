package ghaction

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// The variables the runner sets for a step whose job has "permissions:
// id-token: write" (reference/oidc.md §1): absent, not empty, without it.
const (
	IDTokenURLVar   = "ACTIONS_ID_TOKEN_REQUEST_URL"
	IDTokenTokenVar = "ACTIONS_ID_TOKEN_REQUEST_TOKEN"
)

// ErrNoIDToken means the step cannot ask for the job's OIDC token: the
// runner sets the request variables only when the job has "permissions:
// id-token: write", and never for a pull request from a fork (or one
// Dependabot started).
var ErrNoIDToken = errors.New(IDTokenURLVar + " and " + IDTokenTokenVar + " are not set")

// ErrIDTokenURL means the request URL the runner set is not an http(s)
// URL: no request can be made, and asking again cannot change that.
var ErrIDTokenURL = errors.New(IDTokenURLVar + " is not an http(s) URL")

// IDTokenRequest returns where and with what bearer the step asks for its
// job's OIDC token, or ErrNoIDToken. The bearer is the job's access token:
// mask it before anything could print it.
func (a *Action) IDTokenRequest() (requestURL, bearer string, err error) {
	requestURL, bearer = a.getenv(IDTokenURLVar), a.getenv(IDTokenTokenVar)
	if requestURL == "" || bearer == "" {
		return "", "", ErrNoIDToken
	}
	return requestURL, bearer, nil
}

// IDTokenError is an answer of the OIDC token endpoint other than a token.
// Its message is the endpoint's, escaped; it never holds the bearer.
type IDTokenError struct {
	Status  int // 0: the answer was a 200 without a token
	Message string
}

func (e *IDTokenError) Error() string {
	if e.Status == 0 {
		return "the OIDC token endpoint answered without a token"
	}
	msg := fmt.Sprintf("the OIDC token endpoint answered %d %s", e.Status, http.StatusText(e.Status))
	if e.Message != "" {
		msg += ": " + e.Message
	}
	return msg
}

// Temporary reports whether the request may succeed when sent again: the
// Actions toolkit retries 502, 503 and 504 (reference/oidc.md §1), and a
// token asked for right as the job starts can be refused for a moment.
func (e *IDTokenError) Temporary() bool {
	return e.Status == http.StatusBadGateway || e.Status == http.StatusServiceUnavailable || e.Status == http.StatusGatewayTimeout
}

// IDTokenTemporary reports whether RequestIDToken's error may heal when the
// request is sent again: a 502, 503 or 504 (IDTokenError.Temporary), or no
// answer at all (a dropped connection, a timeout). A malformed request URL
// (ErrIDTokenURL), any other answer, or one without a token fails the same
// way every time.
func IDTokenTemporary(err error) bool {
	var ie *IDTokenError
	switch {
	case errors.Is(err, ErrIDTokenURL):
		return false
	case errors.As(err, &ie):
		return ie.Temporary()
	}
	return true
}

// maxIDTokenAnswer bounds what is read of the endpoint's answer: a JWT of
// GitHub's is about 1 KiB.
const maxIDTokenAnswer = 64 << 10

// RequestIDToken asks once for the job's OIDC token with the audience, as
// the Actions toolkit's getIDToken does (reference/oidc.md §1): a GET on
// the request URL — which already has a query; audience is added to it, not
// appended as text — with the bearer, reading the answer's "value". It
// follows no redirect (the bearer would go along). hc's transport and
// timeouts apply; the caller retries what IDTokenTemporary allows.
func RequestIDToken(ctx context.Context, hc *http.Client, requestURL, bearer, audience string) (string, error) {
	u, err := url.Parse(requestURL)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return "", ErrIDTokenURL
	}
	q := u.Query()
	q.Set("audience", audience)
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return "", fmt.Errorf("request the OIDC token: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+bearer)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "actions/oidc-client")
	c := *hc
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	res, err := c.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL names the job; the error is about the connection
		}
		return "", fmt.Errorf("request the OIDC token from %s: %w", u.Host, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, maxIDTokenAnswer))
	if err != nil {
		return "", fmt.Errorf("read the OIDC token answer: %w", err)
	}
	var answer struct {
		Value   string `json:"value"`
		Message string `json:"message"`
	}
	_ = json.Unmarshal(body, &answer)
	if res.StatusCode != http.StatusOK {
		return "", &IDTokenError{Status: res.StatusCode, Message: quoted(answer.Message)}
	}
	if answer.Value == "" || strings.ContainsFunc(answer.Value, func(r rune) bool { return r <= ' ' || r > '~' }) {
		return "", &IDTokenError{}
	}
	return answer.Value, nil
}

// quoted shows text from an answer as data: control characters escaped,
// at most 200 bytes.
func quoted(s string) string {
	if len(s) > 200 {
		s = s[:200]
	}
	q := strconv.Quote(s)
	return q[1 : len(q)-1]
}
