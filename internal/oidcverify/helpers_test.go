package oidcverify_test

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/google/go-cmp/cmp"

	"github.com/cf-scoped-token/cf-scoped-token/internal/clocktest"
	"github.com/cf-scoped-token/cf-scoped-token/internal/oidcissuer"
	"github.com/cf-scoped-token/cf-scoped-token/internal/oidcissuer/oidcissuertest"
	"github.com/cf-scoped-token/cf-scoped-token/internal/oidcverify"
)

// aud is the broker's audience in every test.
const aud = "https://broker.acme.example"

// t0 is the fixed start of every test clock.
var t0 = time.Date(2026, 11, 27, 20, 0, 0, 0, time.UTC)

// env is a local issuer on a real server and a verifier that trusts it, on one fake clock.
type env struct {
	iss *oidcissuer.Issuer
	srv *httptest.Server
	now *clocktest.Clock
	v   *oidcverify.Verifier
}

// mustEnv starts an issuer and a verifier trusting it; edit changes the verifier's Config.
func mustEnv(tb testing.TB, edit ...func(*oidcverify.Config)) *env {
	tb.Helper()
	c := clocktest.New(t0)
	iss, srv := oidcissuertest.Serve(tb, oidcissuer.WithNow(c.Now))
	cfg := oidcverify.Config{Issuers: []string{iss.URL()}, Audience: aud, HTTP: srv.Client(), Now: c.Now}
	for _, e := range edit {
		e(&cfg)
	}
	v, err := oidcverify.New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return &env{iss: iss, srv: srv, now: c, v: v}
}

// sign signs a token for the broker's audience (claims may override it).
func (e *env) sign(tb testing.TB, claims map[string]any, opts ...oidcissuer.SignOption) string {
	tb.Helper()
	return oidcissuertest.Sign(tb, e.iss, aud, claims, opts...)
}

// warm verifies one good token, so that discovery and the keys are cached.
func (e *env) warm(tb testing.TB) {
	tb.Helper()
	if _, err := e.v.Verify(tb.Context(), e.sign(tb, nil)); err != nil {
		tb.Fatalf("warm-up token refused: %v", err)
	}
}

// counts is how many requests the issuer saw, per route.
type counts struct{ Discovery, JWKS, Other int }

func (e *env) counts() counts {
	return counts{
		Discovery: e.iss.Requests(oidcissuer.RouteDiscovery),
		JWKS:      e.iss.Requests(oidcissuer.RouteJWKS),
		Other:     e.iss.Requests(oidcissuer.RouteToken) + e.iss.Requests(oidcissuer.RouteUnknown),
	}
}

func (c counts) minus(d counts) counts {
	return counts{c.Discovery - d.Discovery, c.JWKS - d.JWKS, c.Other - d.Other}
}

// assertRequests fails tb unless the issuer has seen want requests since it saw since
// (counts{}: since it started); when says at which step, for the message.
func (e *env) assertRequests(tb testing.TB, when string, want, since counts) {
	tb.Helper()
	if diff := cmp.Diff(want, e.counts().minus(since)); diff != "" {
		tb.Errorf("requests %s (-want +got):\n%s", when, diff)
	}
}

// class names the error class of err, for comparisons.
func class(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, oidcverify.ErrReplay):
		return "replay"
	case errors.Is(err, oidcverify.ErrInvalid):
		return "invalid"
	case errors.Is(err, oidcverify.ErrUnavailable):
		return "unavailable"
	}
	return "unclassified: " + err.Error()
}

// assertSafeMessage fails if err's text holds the token or any of its parts, or a control
// character.
func assertSafeMessage(tb testing.TB, err error, raw string) {
	tb.Helper()
	if err == nil {
		return
	}
	msg := err.Error()
	for _, part := range append(strings.Split(raw, "."), raw) {
		if len(part) >= 16 && strings.Contains(msg, part) {
			tb.Errorf("error %q shows part of the token", msg)
		}
	}
	if strings.ContainsFunc(msg, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		tb.Errorf("error %q holds a control character", msg)
	}
	if len(msg) > 300 {
		tb.Errorf("error is %d bytes long: %q", len(msg), msg)
	}
}

// craft signs claims with go-jose and a key of the test's own, with extra header fields:
// tokens the local issuer has no option for (an embedded jwk, a jku pointing elsewhere).
func craft(tb testing.TB, key *rsa.PrivateKey, claims map[string]any, opts *jose.SignerOptions) string {
	tb.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key}, opts.WithType("JWT"))
	if err != nil {
		tb.Fatal(err)
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		tb.Fatal(err)
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		tb.Fatal(err)
	}
	raw, err := jws.CompactSerialize()
	if err != nil {
		tb.Fatal(err)
	}
	return raw
}

// mustRSAKey generates a 2048-bit key.
func mustRSAKey(tb testing.TB) *rsa.PrivateKey {
	tb.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

// goodClaims are claims a trusting verifier accepts, for crafted tokens.
func (e *env) goodClaims() map[string]any {
	now := e.now.Now().Unix()
	c := oidcissuer.DefaultClaims()
	c["iss"], c["aud"], c["jti"] = e.iss.URL(), aud, "crafted-"+time.Now().String()
	c["iat"], c["nbf"], c["exp"] = now, now-300, now+300
	return c
}
