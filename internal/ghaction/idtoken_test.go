package ghaction_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/cf-scoped-token/cf-scoped-token/internal/ghaction"
	"github.com/cf-scoped-token/cf-scoped-token/internal/oidcissuer"
	"github.com/cf-scoped-token/cf-scoped-token/internal/oidcissuer/oidcissuertest"
)

// issuer serves a local GitHub-shaped OIDC issuer with one job.
func issuer(t *testing.T) (*oidcissuer.Issuer, oidcissuer.Job) {
	t.Helper()
	iss, _ := oidcissuertest.Serve(t)
	return iss, iss.NewJob(map[string]any{"repository": "octo-org/octo-repo"})
}

// TestRequestIDToken: the token comes for the audience asked, added to the
// request URL's own query; refusals are typed, and only 502/503/504 may
// heal.
func TestRequestIDToken(t *testing.T) {
	t.Parallel()
	iss, job := issuer(t)
	const aud = "https://cf-broker.example.com"
	jwt, err := ghaction.RequestIDToken(t.Context(), http.DefaultClient, job.RequestURL, job.RequestToken, aud)
	if err != nil {
		t.Fatal(err)
	}
	claims := oidcissuertest.Claims(t, jwt)
	if claims["aud"] != aud || claims["repository"] != "octo-org/octo-repo" || claims["iss"] != iss.URL() {
		t.Errorf("claims %v", claims)
	}

	_, err = ghaction.RequestIDToken(t.Context(), http.DefaultClient, job.RequestURL, "not-the-bearer", aud)
	var ie *ghaction.IDTokenError
	if !errors.As(err, &ie) || ie.Status != http.StatusUnauthorized || ie.Temporary() {
		t.Errorf("wrong bearer: %v, want a 401 that does not heal", err)
	}
	if strings.Contains(err.Error(), job.RequestToken) || strings.Contains(err.Error(), "not-the-bearer") {
		t.Errorf("the error shows a bearer: %v", err)
	}
	for _, status := range []int{502, 503, 504} {
		iss.Fail(oidcissuer.RouteToken, status, 1)
		_, err := ghaction.RequestIDToken(t.Context(), http.DefaultClient, job.RequestURL, job.RequestToken, aud)
		if !errors.As(err, &ie) || ie.Status != status || !ie.Temporary() {
			t.Errorf("%d: %v, want one that may heal", status, err)
		}
	}

	redirect := httptest.NewServer(http.RedirectHandler(job.RequestURL, http.StatusFound))
	t.Cleanup(redirect.Close)
	if _, err := ghaction.RequestIDToken(t.Context(), http.DefaultClient, redirect.URL+"/idtoken?api-version=2.0", job.RequestToken, aud); !errors.As(err, &ie) || ie.Status != http.StatusFound {
		t.Errorf("a redirect was followed (the bearer would go along): %v", err)
	}
	noValue := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(`{"value":""}`)) }))
	t.Cleanup(noValue.Close)
	if _, err := ghaction.RequestIDToken(t.Context(), http.DefaultClient, noValue.URL+"/x?a=1", job.RequestToken, aud); !errors.As(err, &ie) || ie.Status != 0 {
		t.Errorf("an answer without a token: %v", err)
	}
}

// TestIDTokenTemporary: which of RequestIDToken's errors may heal when it
// is asked again. A request URL that is not an http(s) URL never does: it
// is refused before anything is sent, every time.
func TestIDTokenTemporary(t *testing.T) {
	t.Parallel()
	iss, job := issuer(t)
	const aud = "https://cf-broker.example.com"
	for _, u := range []string{"", "localhost:8080/idtoken", "ftp://example.com/idtoken", "https:///idtoken", "::", "file:///etc/passwd"} {
		_, err := ghaction.RequestIDToken(t.Context(), http.DefaultClient, u, job.RequestToken, aud)
		if !errors.Is(err, ghaction.ErrIDTokenURL) || ghaction.IDTokenTemporary(err) {
			t.Errorf("request URL %q: %v, want ErrIDTokenURL, which does not heal", u, err)
		}
	}
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	for _, tc := range []struct {
		name        string
		fail        int // the issuer's answer (0: none injected)
		url, bearer string
		temporary   bool
	}{
		{"401", 0, job.RequestURL, "not-the-bearer", false},
		{"503", http.StatusServiceUnavailable, job.RequestURL, job.RequestToken, true},
		{"no answer", 0, closed.URL + "/idtoken?api-version=2.0", job.RequestToken, true},
	} {
		if tc.fail != 0 {
			iss.Fail(oidcissuer.RouteToken, tc.fail, 1)
		}
		_, err := ghaction.RequestIDToken(t.Context(), http.DefaultClient, tc.url, tc.bearer, aud)
		if err == nil || ghaction.IDTokenTemporary(err) != tc.temporary {
			t.Errorf("%s: %v, want temporary=%v", tc.name, err, tc.temporary)
		}
	}
}

// TestIDTokenRequest: without both variables (no id-token: write, a fork's
// pull request) there is nothing to ask.
func TestIDTokenRequest(t *testing.T) {
	t.Parallel()
	for _, env := range []map[string]string{
		{},
		{ghaction.IDTokenURLVar: "https://example.com/idtoken?api-version=2.0"},
		{ghaction.IDTokenTokenVar: "bearer"},
	} {
		a := ghaction.New(func(k string) string { return env[k] }, &strings.Builder{})
		if _, _, err := a.IDTokenRequest(); !errors.Is(err, ghaction.ErrNoIDToken) {
			t.Errorf("env %v: %v, want ErrNoIDToken", env, err)
		}
	}
	env := map[string]string{ghaction.IDTokenURLVar: "u", ghaction.IDTokenTokenVar: "b"}
	a := ghaction.New(func(k string) string { return env[k] }, &strings.Builder{})
	if u, b, err := a.IDTokenRequest(); err != nil || u != "u" || b != "b" {
		t.Errorf("IDTokenRequest = %q, %q, %v", u, b, err)
	}
}

// TestRequestIDToken_HostileMessage: the endpoint's message is data: a
// line break that would start a workflow command, or any other control
// character, shows escaped in the error, and a long one is cut.
func TestRequestIDToken_HostileMessage(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, message, want string
	}{
		{"a workflow command", "denied\n::warning::pwned", `denied\n::warning::pwned`},
		{"a carriage return", "denied\r::error::x", `denied\r::error::x`},
		{"a terminal escape", "\x1b[31mred", `\x1b[31mred`},
		{"a line separator", "a\u2028::warning::b", `a\u2028::warning::b`},
		{"a long message", strings.Repeat("x", 300), strings.Repeat("x", 200)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusForbidden)
				_ = json.NewEncoder(w).Encode(map[string]string{"message": tc.message})
			}))
			t.Cleanup(srv.Close)
			_, err := ghaction.RequestIDToken(t.Context(), http.DefaultClient, srv.URL+"/idtoken?api-version=2.0", "bearer", "aud")
			var ie *ghaction.IDTokenError
			if !errors.As(err, &ie) || ie.Status != http.StatusForbidden {
				t.Fatalf("err = %v, want a 403 IDTokenError", err)
			}
			msg := err.Error()
			if !strings.Contains(msg, tc.want) || strings.ContainsFunc(msg, func(r rune) bool { return r < ' ' || r == 0x7f || r == '\u2028' }) {
				t.Errorf("err = %q, want it to hold %q and no control character", msg, tc.want)
			}
			if strings.Contains(msg, strings.Repeat("x", 201)) {
				t.Errorf("err = %q, want the message cut at 200 bytes", msg)
			}
		})
	}
}
