// Package oidcissuertest serves the local OIDC issuer to tests, on a loopback httptest server
// whose address is the issuer's URL and which closes when the test ends; it signs the tokens a
// test's verifier or broker is meant to accept, and decodes a token's claims for a test to
// look at. Only _test.go files import it.
package oidcissuertest

import (
	"encoding/base64"
	"encoding/json"
	"maps"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/cf-scoped-token/cf-scoped-token/internal/oidcissuer"
)

// Serve starts a new issuer at the root of a new loopback server; see ServeAt.
func Serve(tb testing.TB, opts ...oidcissuer.Option) (*oidcissuer.Issuer, *httptest.Server) {
	tb.Helper()
	return ServeAt(tb, "", opts...)
}

// ServeAt starts a new issuer whose URL is a new loopback server's plus path ("" or e.g.
// "/org/<uuid>"): the issuer must know its URL before it serves, and the server's address is
// known only once its listener is, hence the unstarted server. The server closes when tb
// ends; its Client is the one to fetch the issuer's documents with.
func ServeAt(tb testing.TB, path string, opts ...oidcissuer.Option) (*oidcissuer.Issuer, *httptest.Server) {
	tb.Helper()
	srv := httptest.NewUnstartedServer(nil)
	tb.Cleanup(srv.Close)
	iss, err := oidcissuer.New("http://"+srv.Listener.Addr().String()+path, opts...)
	if err != nil {
		tb.Fatal(err)
	}
	srv.Config.Handler = iss
	srv.Start()
	return iss, srv
}

// Sign signs a token of the default job (oidcissuer.DefaultClaims) for audience; claims
// override the defaults, aud included, and a nil value removes a claim (as in Issuer.Sign).
// It fails tb if iss cannot sign.
func Sign(tb testing.TB, iss *oidcissuer.Issuer, audience string, claims map[string]any, opts ...oidcissuer.SignOption) string {
	tb.Helper()
	c := map[string]any{"aud": audience}
	maps.Copy(c, claims)
	raw, err := iss.Sign(c, opts...)
	if err != nil {
		tb.Fatal(err)
	}
	return raw
}

// Claims decodes the claims of a compact JWS without verifying it, for a test to look at what
// was signed; it fails tb if raw is not three parts with a JSON object in the middle.
func Claims(tb testing.TB, raw string) map[string]any {
	tb.Helper()
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		tb.Fatalf("not a JWT: %d parts", len(parts))
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		tb.Fatal(err)
	}
	var claims map[string]any
	if err := json.Unmarshal(b, &claims); err != nil {
		tb.Fatal(err)
	}
	return claims
}
