package oidcverify_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/cf-scoped-token/cf-scoped-token/internal/oidcissuer"
	"github.com/cf-scoped-token/cf-scoped-token/internal/oidcverify"
)

// randomKid signs a token with a key nobody publishes under a random kid: garbage that looks
// like a rotated key.
func randomKid(t *testing.T, e *env, i int) string {
	return e.sign(t, nil, oidcissuer.WithUnpublishedKey(), oidcissuer.WithAlg(oidcissuer.ES256),
		oidcissuer.WithKeyID(fmt.Sprintf("0b5c3e0e-0000-4000-8000-%012d", i)))
}

func TestUnknownKidRefetchIsRateLimited(t *testing.T) {
	t.Parallel()
	e := mustEnv(t)
	e.warm(t)
	before := e.counts()
	// 100 garbage tokens within a minute: at most one refetch.
	for i := range 100 {
		raw := randomKid(t, e, i)
		if _, err := e.v.Verify(t.Context(), raw); class(err) != "invalid" {
			t.Fatalf("token %d: %v, want invalid", i, err)
		}
		e.now.Advance(500 * time.Millisecond) // 50 s in all
	}
	e.assertRequests(t, "for 100 unknown kids in 50 s", counts{JWKS: 1}, before)
	// Good tokens were never held up.
	if _, err := e.v.Verify(t.Context(), e.sign(t, nil)); err != nil {
		t.Fatal(err)
	}
	// Once KeyRefresh has passed since the last refetch, one more.
	e.now.Advance(10 * time.Second)
	for i := range 10 {
		_, _ = e.v.Verify(t.Context(), randomKid(t, e, 1000+i))
	}
	e.assertRequests(t, "a minute later", counts{JWKS: 2}, before)
}

func TestUnknownKidsConcurrently(t *testing.T) {
	t.Parallel()
	e := mustEnv(t)
	e.warm(t)
	before := e.counts()
	tokens := make([]string, 100)
	for i := range tokens {
		tokens[i] = randomKid(t, e, i)
	}
	var wg sync.WaitGroup
	for _, raw := range tokens {
		wg.Go(func() {
			if _, err := e.v.Verify(context.Background(), raw); class(err) != "invalid" {
				t.Errorf("Verify: %v, want invalid", err)
			}
		})
	}
	wg.Wait()
	e.assertRequests(t, "for 100 concurrent unknown kids", counts{JWKS: 1}, before)
}

func TestKeyRefreshSetting(t *testing.T) {
	t.Parallel()
	e := mustEnv(t, func(c *oidcverify.Config) { c.KeyRefresh = 5 * time.Minute })
	e.warm(t)
	before := e.counts()
	for i := range 10 {
		_, _ = e.v.Verify(t.Context(), randomKid(t, e, i))
		e.now.Advance(time.Minute) // 10 min: refetches at 0 and 5 min
	}
	e.assertRequests(t, "over 10 min with KeyRefresh 5m", counts{JWKS: 2}, before)
}

func TestKeyRotation(t *testing.T) {
	t.Parallel()
	e := mustEnv(t)
	e.warm(t)
	old := e.sign(t, nil) // signed by the key about to be replaced
	if _, err := e.iss.Rotate(oidcissuer.RS256); err != nil {
		t.Fatal(err)
	}
	before := e.counts()
	if _, err := e.v.Verify(t.Context(), e.sign(t, nil)); err != nil {
		t.Fatalf("token of the new key: %v", err)
	}
	e.assertRequests(t, "for a rotated key", counts{JWKS: 1}, before)
	if _, err := e.v.Verify(t.Context(), old); err != nil {
		t.Errorf("token of the old, still published key: %v", err)
	}
	if _, err := e.v.Verify(t.Context(), e.sign(t, nil, oidcissuer.WithAlg(oidcissuer.ES256))); err != nil {
		t.Errorf("ES256 after RSA rotation: %v", err)
	}
	e.assertRequests(t, "after the refetch", counts{JWKS: 1}, before)
}

// TestRotationRightAfterARefetch documents the cost of the rate limit: a key rotated in
// within KeyRefresh of an unknown-kid refetch is refused until the next one is allowed.
func TestRotationRightAfterARefetch(t *testing.T) {
	t.Parallel()
	e := mustEnv(t)
	e.warm(t)
	_, _ = e.v.Verify(t.Context(), randomKid(t, e, 0)) // uses this minute's refetch
	if _, err := e.iss.Rotate(oidcissuer.RS256); err != nil {
		t.Fatal(err)
	}
	e.now.Advance(30 * time.Second)
	if _, err := e.v.Verify(t.Context(), e.sign(t, nil)); class(err) != "invalid" || !strings.Contains(err.Error(), "is not among") {
		t.Fatalf("new key 30 s after a refetch: %v, want refused as unknown", err)
	}
	e.now.Advance(30 * time.Second)
	if _, err := e.v.Verify(t.Context(), e.sign(t, nil)); err != nil {
		t.Errorf("new key a minute after the refetch: %v", err)
	}
}

func TestJWKSDownWithKeysCached(t *testing.T) {
	t.Parallel()
	e := mustEnv(t)
	e.warm(t)
	e.iss.Fail(oidcissuer.RouteJWKS, http.StatusServiceUnavailable, 0)
	before := e.counts()
	if _, err := e.v.Verify(t.Context(), e.sign(t, nil)); err != nil {
		t.Fatalf("cached key with the JWKS down: %v", err)
	}
	e.assertRequests(t, "for a cached key with the JWKS down", counts{}, before)
	// An unknown kid cannot be judged: the refetch fails.
	if _, err := e.v.Verify(t.Context(), randomKid(t, e, 1)); class(err) != "unavailable" {
		t.Errorf("unknown kid with the JWKS down: %v, want unavailable", err)
	}
	// ... and the cached keys survive the failed fetch.
	if _, err := e.v.Verify(t.Context(), e.sign(t, nil, oidcissuer.WithAlg(oidcissuer.ES256))); err != nil {
		t.Errorf("cached key after a failed refetch: %v", err)
	}
	if _, err := e.v.Verify(t.Context(), randomKid(t, e, 2)); class(err) != "unavailable" {
		t.Errorf("another unknown kid right after: %v, want unavailable", err)
	}
	e.assertRequests(t, "for two unknown kids with the JWKS down", counts{JWKS: 1}, before)
}

func TestJWKSDownNoKeys(t *testing.T) {
	t.Parallel()
	e := mustEnv(t)
	e.iss.Fail(oidcissuer.RouteJWKS, http.StatusBadGateway, 0)
	_, err := e.v.Verify(t.Context(), e.sign(t, nil))
	if class(err) != "unavailable" || errors.Is(err, oidcverify.ErrInvalid) {
		t.Fatalf("no keys to be had: %v, want unavailable", err)
	}
	if !strings.Contains(err.Error(), "status 502") {
		t.Errorf("error %q does not say what failed", err)
	}
	// Within a few seconds no new request is sent.
	e.now.Advance(4 * time.Second)
	if _, err := e.v.Verify(t.Context(), e.sign(t, nil)); class(err) != "unavailable" {
		t.Errorf("again: %v, want unavailable", err)
	}
	e.assertRequests(t, "with no keys to be had", counts{Discovery: 1, JWKS: 1}, counts{})
	// Recovered, and the retry interval past.
	e.iss.ClearFaults()
	e.now.Advance(time.Second)
	if _, err := e.v.Verify(t.Context(), e.sign(t, nil)); err != nil {
		t.Errorf("after recovery: %v", err)
	}
	e.assertRequests(t, "after recovery", counts{Discovery: 1, JWKS: 2}, counts{})
}

func TestDiscoveryDown(t *testing.T) {
	t.Parallel()
	e := mustEnv(t)
	e.iss.Fail(oidcissuer.RouteDiscovery, http.StatusServiceUnavailable, 0)
	_, err := e.v.Verify(t.Context(), e.sign(t, nil))
	if class(err) != "unavailable" || !strings.Contains(err.Error(), "discovery of issuer") {
		t.Fatalf("discovery down: %v, want unavailable", err)
	}
	assertSafeMessage(t, err, "")
	e.now.Advance(4 * time.Second)
	if _, err := e.v.Verify(t.Context(), e.sign(t, nil)); class(err) != "unavailable" {
		t.Errorf("again: %v, want unavailable", err)
	}
	e.assertRequests(t, "with discovery down", counts{Discovery: 1}, counts{})
	e.iss.ClearFaults()
	e.now.Advance(time.Second)
	if _, err := e.v.Verify(t.Context(), e.sign(t, nil)); err != nil {
		t.Errorf("after recovery: %v", err)
	}
	e.assertRequests(t, "after recovery", counts{Discovery: 2, JWKS: 1}, counts{})
	// Discovery is cached from now on.
	if _, err := e.v.Verify(t.Context(), e.sign(t, nil)); err != nil {
		t.Fatal(err)
	}
	if got := e.counts().Discovery; got != 2 {
		t.Errorf("discovery requests %d, want 2", got)
	}
}

func TestStaleKeysAreRefetched(t *testing.T) {
	t.Parallel()
	for _, jwksDown := range []bool{false, true} {
		t.Run(fmt.Sprint("jwks down ", jwksDown), func(t *testing.T) {
			t.Parallel()
			e := mustEnv(t)
			e.warm(t)
			// A long-lived token of the key that is about to be retired.
			long := e.sign(t, map[string]any{"exp": t0.Add(3 * time.Hour).Unix()})
			old := e.iss.KeyID(oidcissuer.RS256)
			if _, err := e.iss.Rotate(oidcissuer.RS256); err != nil {
				t.Fatal(err)
			}
			if err := e.iss.Retire(old); err != nil {
				t.Fatal(err)
			}
			if jwksDown {
				e.iss.Fail(oidcissuer.RouteJWKS, http.StatusServiceUnavailable, 0)
			}
			e.now.Advance(61 * time.Minute)
			before := e.counts()
			_, err := e.v.Verify(t.Context(), long)
			e.assertRequests(t, "for keys an hour old", counts{JWKS: 1}, before)
			if jwksDown {
				if err != nil {
					t.Errorf("with the refetch failing the cached keys must serve: %v", err)
				}
				return
			}
			if class(err) != "invalid" {
				t.Errorf("token of a retired key after the hourly refetch: %v, want invalid", err)
			}
			if _, err := e.v.Verify(t.Context(), e.sign(t, nil)); err != nil {
				t.Errorf("token of the current key: %v", err)
			}
		})
	}
}

func TestColdStartConcurrently(t *testing.T) {
	t.Parallel()
	e := mustEnv(t)
	tokens := make([]string, 20)
	for i := range tokens {
		tokens[i] = e.sign(t, nil, oidcissuer.WithAlg(oidcissuer.ES256))
	}
	var wg sync.WaitGroup
	for _, raw := range tokens {
		wg.Go(func() {
			if _, err := e.v.Verify(context.Background(), raw); err != nil {
				t.Errorf("Verify: %v", err)
			}
		})
	}
	wg.Wait()
	e.assertRequests(t, "for 20 concurrent first tokens", counts{Discovery: 1, JWKS: 1}, counts{})
}

// TestCallerGivingUpSpoilsNothing: a caller whose context ends during a slow discovery or
// key fetch gets ErrUnavailable (matching its context's error), and the request it started
// still serves the next caller.
func TestCallerGivingUpSpoilsNothing(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		route oidcissuer.Route
		setup func(t *testing.T, e *env) // before the slow request
		token func(t *testing.T, e *env) string
		want  counts
	}{
		{
			name:  "discovery",
			route: oidcissuer.RouteDiscovery,
			setup: func(*testing.T, *env) {},
			token: func(t *testing.T, e *env) string { return e.sign(t, nil) },
			want:  counts{Discovery: 1, JWKS: 1},
		},
		{
			name:  "refetch for a rotated key",
			route: oidcissuer.RouteJWKS,
			setup: func(t *testing.T, e *env) {
				e.warm(t)
				if _, err := e.iss.Rotate(oidcissuer.RS256); err != nil {
					t.Fatal(err)
				}
			},
			token: func(t *testing.T, e *env) string { return e.sign(t, nil) },
			want:  counts{Discovery: 1, JWKS: 2},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := mustEnv(t)
			tc.setup(t, e)
			e.iss.AddFault(oidcissuer.Fault{Route: tc.route, Delay: time.Second, Times: 1})
			ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
			defer cancel()
			_, err := e.v.Verify(ctx, tc.token(t, e))
			if class(err) != "unavailable" || !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("caller timed out: %v, want unavailable and DeadlineExceeded", err)
			}
			if _, err := e.v.Verify(t.Context(), tc.token(t, e)); err != nil {
				t.Fatalf("next caller: %v", err)
			}
			e.assertRequests(t, "of both callers", tc.want, counts{})
		})
	}
}

// fakeIssuer serves a hand-written discovery document and JWKS, for answers the local issuer
// never gives.
type fakeIssuer struct {
	srv       *httptest.Server
	discovery func(w http.ResponseWriter, r *http.Request, self string)
	jwks      func(w http.ResponseWriter, r *http.Request)
}

func startFake(t *testing.T, f *fakeIssuer) string {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		f.discovery(w, r, f.srv.URL)
	})
	mux.HandleFunc("GET /.well-known/jwks", func(w http.ResponseWriter, r *http.Request) { f.jwks(w, r) })
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("fake issuer: unexpected %s %s", r.Method, r.URL)
		http.NotFound(w, r)
	})
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f.srv.URL
}

func goodDiscovery(w http.ResponseWriter, _ *http.Request, self string) {
	_ = json.NewEncoder(w).Encode(map[string]any{"issuer": self, "jwks_uri": self + "/.well-known/jwks"})
}

func TestHostileIssuerAnswers(t *testing.T) {
	t.Parallel()
	weak, err := rsa.GenerateKey(rand.Reader, 1024) // weak on purpose: it must be refused
	if err != nil {
		t.Fatal(err)
	}
	jwksOf := func(keys ...jose.JSONWebKey) func(http.ResponseWriter, *http.Request) {
		return func(w http.ResponseWriter, _ *http.Request) {
			_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: keys})
		}
	}
	tests := []struct {
		name      string
		discovery func(w http.ResponseWriter, r *http.Request, self string)
		jwks      func(w http.ResponseWriter, r *http.Request)
		reason    string
	}{
		{
			name: "discovery names another issuer",
			discovery: func(w http.ResponseWriter, _ *http.Request, self string) {
				_ = json.NewEncoder(w).Encode(map[string]any{"issuer": self + "/", "jwks_uri": self + "/.well-known/jwks"})
			},
			reason: "did not match",
		},
		{
			name: "discovery redirects",
			discovery: func(w http.ResponseWriter, r *http.Request, _ string) {
				http.Redirect(w, r, "https://evil.example/.well-known/openid-configuration", http.StatusFound)
			},
			reason: "302",
		},
		{
			name: "discovery too large",
			discovery: func(w http.ResponseWriter, _ *http.Request, self string) {
				fmt.Fprintf(w, `{"issuer":%q,"jwks_uri":%q,"pad":"%s"}`, self, self+"/.well-known/jwks", strings.Repeat("x", 2<<20))
			},
			reason: "larger than",
		},
		{
			name: "discovery error body with control characters",
			discovery: func(w http.ResponseWriter, _ *http.Request, _ string) {
				http.Error(w, "down\r\n::error::injected\x1b[31m", http.StatusInternalServerError)
			},
			reason: "500",
		},
		{
			name: "jwks_uri in clear text off loopback",
			discovery: func(w http.ResponseWriter, _ *http.Request, self string) {
				_ = json.NewEncoder(w).Encode(map[string]any{"issuer": self, "jwks_uri": "http://keys.example/jwks"})
			},
			reason: "loopback",
		},
		{
			name: "no jwks_uri",
			discovery: func(w http.ResponseWriter, _ *http.Request, self string) {
				_ = json.NewEncoder(w).Encode(map[string]any{"issuer": self})
			},
			reason: "no jwks_uri",
		},
		{
			name:      "JWKS with only a 1024-bit key",
			discovery: goodDiscovery,
			jwks:      jwksOf(jose.JSONWebKey{Key: weak.Public(), KeyID: "k", Algorithm: "RS256", Use: "sig"}),
			reason:    "no usable",
		},
		{
			name:      "JWKS with only a symmetric key",
			discovery: goodDiscovery,
			jwks:      jwksOf(jose.JSONWebKey{Key: []byte("secret"), KeyID: "k", Algorithm: "HS256", Use: "sig"}),
			reason:    "no usable",
		},
		{
			name:      "JWKS with only an encryption key",
			discovery: goodDiscovery,
			jwks:      jwksOf(jose.JSONWebKey{Key: mustRSAKey(t).Public(), KeyID: "k", Algorithm: "RS256", Use: "enc"}),
			reason:    "no usable",
		},
		{
			name:      "JWKS not JSON",
			discovery: goodDiscovery,
			jwks:      func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "<html>") },
			reason:    "not a JSON key set",
		},
		{
			name:      "JWKS redirects",
			discovery: goodDiscovery,
			jwks: func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, "/elsewhere", http.StatusFound)
			},
			reason: "status 302",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := &fakeIssuer{discovery: tc.discovery, jwks: tc.jwks}
			if f.jwks == nil {
				f.jwks = func(w http.ResponseWriter, r *http.Request) {
					t.Errorf("JWKS fetched after a bad discovery")
					http.NotFound(w, r)
				}
			}
			url := startFake(t, f)
			v, err := oidcverify.New(oidcverify.Config{Issuers: []string{url}, Audience: aud, HTTP: f.srv.Client(), Now: func() time.Time { return t0 }})
			if err != nil {
				t.Fatal(err)
			}
			claims := oidcissuer.DefaultClaims()
			claims["iss"], claims["aud"], claims["jti"] = url, aud, "j"
			claims["iat"], claims["exp"] = t0.Unix(), t0.Add(time.Minute).Unix()
			raw := craft(t, weak, claims, (&jose.SignerOptions{}).WithHeader("kid", "k"))
			_, err = v.Verify(t.Context(), raw)
			if class(err) != "unavailable" {
				t.Fatalf("Verify: %v, want unavailable", err)
			}
			if !strings.Contains(err.Error(), tc.reason) {
				t.Errorf("error %q does not say %q", err, tc.reason)
			}
			assertSafeMessage(t, err, raw)
		})
	}
}

func TestNewValidatesConfig(t *testing.T) {
	t.Parallel()
	good := func() oidcverify.Config {
		return oidcverify.Config{Issuers: []string{"https://token.actions.githubusercontent.com"}, Audience: aud, HTTP: http.DefaultClient}
	}
	tests := []struct {
		name string
		edit func(*oidcverify.Config)
		ok   bool
	}{
		{"good", func(*oidcverify.Config) {}, true},
		{"loopback http issuers", func(c *oidcverify.Config) {
			c.Issuers = []string{"http://127.0.0.1:8080", "http://[::1]:1/org/x", "http://localhost/_services/token"}
		}, true},
		{"several issuers", func(c *oidcverify.Config) {
			c.Issuers = append(c.Issuers, "https://gitlab.com", "https://oidc.circleci.com/org/5a7c2d1e")
		}, true},
		{"bounds", func(c *oidcverify.Config) {
			c.Leeway, c.MaxTokenSize, c.ReplayCacheSize, c.KeyRefresh = time.Second, 64<<10, 10_000_000, time.Second
		}, true},
		{"no HTTP client", func(c *oidcverify.Config) { c.HTTP = nil }, false},
		{"no audience", func(c *oidcverify.Config) { c.Audience = "" }, false},
		{"audience with a space", func(c *oidcverify.Config) { c.Audience = "a b" }, false},
		{"no issuers", func(c *oidcverify.Config) { c.Issuers = nil }, false},
		{"http off loopback", func(c *oidcverify.Config) { c.Issuers = []string{"http://token.actions.githubusercontent.com"} }, false},
		{"not a URL", func(c *oidcverify.Config) { c.Issuers = []string{"token.actions.githubusercontent.com"} }, false},
		{"other scheme", func(c *oidcverify.Config) { c.Issuers = []string{"ftp://x.example"} }, false},
		{"query", func(c *oidcverify.Config) { c.Issuers = []string{"https://x.example?a=1"} }, false},
		{"fragment", func(c *oidcverify.Config) { c.Issuers = []string{"https://x.example#a"} }, false},
		{"credentials", func(c *oidcverify.Config) { c.Issuers = []string{"https://u:p@x.example"} }, false},
		{"duplicate", func(c *oidcverify.Config) { c.Issuers = append(c.Issuers, c.Issuers[0]) }, false},
		{"leeway above 60 s", func(c *oidcverify.Config) { c.Leeway = 61 * time.Second }, false},
		{"negative leeway", func(c *oidcverify.Config) { c.Leeway = -time.Second }, false},
		{"max token size above 64 KiB", func(c *oidcverify.Config) { c.MaxTokenSize = 64<<10 + 1 }, false},
		{"negative max token size", func(c *oidcverify.Config) { c.MaxTokenSize = -1 }, false},
		{"negative replay cache", func(c *oidcverify.Config) { c.ReplayCacheSize = -1 }, false},
		{"replay cache above bound", func(c *oidcverify.Config) { c.ReplayCacheSize = 10_000_001 }, false},
		{"key refresh below 1 s", func(c *oidcverify.Config) { c.KeyRefresh = 500 * time.Millisecond }, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := good()
			tc.edit(&cfg)
			v, err := oidcverify.New(cfg)
			if (err == nil) != tc.ok || (v != nil) != tc.ok {
				t.Errorf("New: %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

func TestMaxTokenSizeSetting(t *testing.T) {
	t.Parallel()
	e := mustEnv(t, func(c *oidcverify.Config) { c.MaxTokenSize = 32 << 10 })
	raw := e.sign(t, map[string]any{"pad": strings.Repeat("x", 20<<10)})
	if _, err := e.v.Verify(t.Context(), raw); err != nil {
		t.Errorf("20 KiB token under a 32 KiB limit: %v", err)
	}
}

func TestLeewaySetting(t *testing.T) {
	t.Parallel()
	e := mustEnv(t, func(c *oidcverify.Config) { c.Leeway = 10 * time.Second })
	raw := e.sign(t, map[string]any{"iat": t0.Add(-time.Hour).Unix(), "exp": t0.Add(-11 * time.Second).Unix()})
	if _, err := e.v.Verify(t.Context(), raw); class(err) != "invalid" {
		t.Errorf("11 s past exp with a 10 s leeway: %v, want invalid", err)
	}
	raw = e.sign(t, map[string]any{"iat": t0.Add(-time.Hour).Unix(), "exp": t0.Add(-9 * time.Second).Unix()})
	if _, err := e.v.Verify(t.Context(), raw); err != nil {
		t.Errorf("9 s past exp with a 10 s leeway: %v", err)
	}
}
