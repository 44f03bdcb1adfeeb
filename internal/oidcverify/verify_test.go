package oidcverify_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/google/go-cmp/cmp"

	"github.com/cf-scoped-token/cf-scoped-token/internal/oidcissuer"
	"github.com/cf-scoped-token/cf-scoped-token/internal/oidcverify"
)

var b64 = base64.RawURLEncoding.EncodeToString

// withPart replaces part i (0 header, 1 claims, 2 signature) of a compact token.
func withPart(raw string, i int, part string) string {
	p := strings.Split(raw, ".")
	p[i] = part
	return strings.Join(p, ".")
}

// TestRefusedBeforeAnyRequest: tokens refused on their face make the issuer see nothing, not
// even discovery, on a verifier that has never contacted it.
func TestRefusedBeforeAnyRequest(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		token func(t *testing.T, e *env) string
		want  string // a substring of the reason
	}{
		{"alg none", func(t *testing.T, e *env) string {
			return e.sign(t, nil, oidcissuer.AlgNone())
		}, `signature algorithm "none" is not accepted`},
		{"alg none, signature part kept", func(t *testing.T, e *env) string {
			return e.sign(t, nil, oidcissuer.AlgNone()) + "c2ln"
		}, `signature algorithm "none" is not accepted`},
		{"HS256 keyed with the public key", func(t *testing.T, e *env) string {
			return e.sign(t, nil, oidcissuer.HS256WithPublicKey())
		}, `signature algorithm "HS256" is not accepted`},
		{"PS256", func(t *testing.T, e *env) string {
			return withPart(e.sign(t, nil), 0, b64([]byte(`{"alg":"PS256","kid":"x","typ":"JWT"}`)))
		}, `"PS256" is not accepted`},
		{"RS512", func(t *testing.T, e *env) string {
			return withPart(e.sign(t, nil), 0, b64([]byte(`{"alg":"RS512"}`)))
		}, `"RS512" is not accepted`},
		{"alg case changed", func(t *testing.T, e *env) string {
			return withPart(e.sign(t, nil), 0, b64([]byte(`{"alg":"rs256"}`)))
		}, `"rs256" is not accepted`},
		{"no alg", func(t *testing.T, e *env) string {
			return withPart(e.sign(t, nil), 0, b64([]byte(`{"kid":"x"}`)))
		}, "no alg"},
		{"crit header", func(t *testing.T, e *env) string {
			return e.sign(t, nil, oidcissuer.WithHeader("crit", []string{"exp"}), oidcissuer.WithHeader("exp", 1))
		}, "crit"},
		{"untrusted issuer", func(t *testing.T, e *env) string {
			return e.sign(t, map[string]any{"iss": "https://token.actions.githubusercontent.com"})
		}, `issuer "https://token.actions.githubusercontent.com" is not trusted`},
		{"untrusted issuer with control characters, long", func(t *testing.T, e *env) string {
			return e.sign(t, map[string]any{"iss": "https://evil.example/\r\n::error::x\u001b[31m\u202e" + strings.Repeat("x", 500)})
		}, `issuer "https://evil.example/\r\n::error::x\x1b[31m\u202e`},
		{"alg with control characters", func(t *testing.T, e *env) string {
			return withPart(e.sign(t, nil), 0, b64([]byte(`{"alg":"\n::error::HS256"}`)))
		}, `signature algorithm "\n::error::HS256" is not accepted`},
		{"issuer with a trailing slash", func(t *testing.T, e *env) string {
			return e.sign(t, map[string]any{"iss": e.iss.URL() + "/"})
		}, "is not trusted"},
		{"issuer differing in case", func(t *testing.T, e *env) string {
			return e.sign(t, map[string]any{"iss": strings.ToUpper(e.iss.URL())})
		}, "is not trusted"},
		{"no iss", func(t *testing.T, e *env) string {
			return e.sign(t, map[string]any{"iss": nil})
		}, "no iss"},
		{"iss not a string", func(t *testing.T, e *env) string {
			return e.sign(t, map[string]any{"iss": 7})
		}, "no iss"},
		{"oversize", func(t *testing.T, e *env) string {
			return e.sign(t, map[string]any{"pad": strings.Repeat("x", 16<<10)})
		}, "more than the 16384 accepted"},
		{"two parts", func(t *testing.T, e *env) string {
			raw := e.sign(t, nil)
			return raw[:strings.LastIndex(raw, ".")]
		}, "not a compact JWS"},
		{"four parts", func(t *testing.T, e *env) string {
			return e.sign(t, nil) + ".x"
		}, "not a compact JWS"},
		{"empty", func(*testing.T, *env) string { return "" }, "not a compact JWS"},
		{"RS256 without a signature", func(t *testing.T, e *env) string {
			return withPart(e.sign(t, nil), 2, "")
		}, "not signed"},
		{"JSON serialization", func(t *testing.T, e *env) string {
			return `{"payload":"e30","protected":"eyJhbGciOiJSUzI1NiJ9","signature":"c2ln"}`
		}, "not a compact JWS"},
		{"padding", func(t *testing.T, e *env) string {
			raw := e.sign(t, nil)
			return withPart(raw, 0, strings.Split(raw, ".")[0]+"==")
		}, "outside base64url"},
		{"newline inside", func(t *testing.T, e *env) string {
			raw := e.sign(t, nil)
			return raw[:20] + "\n" + raw[20:]
		}, "outside base64url"},
		{"standard base64", func(t *testing.T, e *env) string {
			return withPart(e.sign(t, nil), 1, "ab+/")
		}, "outside base64url"},
		{"bad base64 header", func(t *testing.T, e *env) string {
			return withPart(e.sign(t, nil), 0, "a")
		}, "header is not base64url"},
		{"bad base64 claims", func(t *testing.T, e *env) string {
			return withPart(e.sign(t, nil), 1, "a")
		}, "claims are not base64url"},
		{"header JSON garbage", func(t *testing.T, e *env) string {
			return withPart(e.sign(t, nil), 0, b64([]byte(`{"alg":"RS256",`)))
		}, "header is not a JSON object"},
		{"header kid a number", func(t *testing.T, e *env) string {
			return withPart(e.sign(t, nil), 0, b64([]byte(`{"alg":"RS256","kid":5}`)))
		}, "header is not a JSON object"},
		{"claims JSON garbage", func(t *testing.T, e *env) string {
			return withPart(e.sign(t, nil), 1, b64([]byte(`{"iss":`)))
		}, "claims are not a JSON object"},
		{"claims an array", func(t *testing.T, e *env) string {
			return withPart(e.sign(t, nil), 1, b64([]byte(`["iss"]`)))
		}, "claims are not a JSON object"},
		{"claims null", func(t *testing.T, e *env) string {
			return withPart(e.sign(t, nil), 1, b64([]byte(`null`)))
		}, "claims are not a JSON object"},
		{"data after the claims", func(t *testing.T, e *env) string {
			return withPart(e.sign(t, nil), 1, b64([]byte(`{"iss":"x"} {}`)))
		}, "claims are not a JSON object"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := mustEnv(t)
			raw := tc.token(t, e)
			id, err := e.v.Verify(t.Context(), raw)
			if got := class(err); got != "invalid" {
				t.Fatalf("Verify: %s (%v), want invalid", got, err)
			}
			if id != nil {
				t.Errorf("Verify returned an identity with its error")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("reason %q does not say %q", err, tc.want)
			}
			assertSafeMessage(t, err, raw)
			e.assertRequests(t, "to the issuer", counts{}, counts{})
		})
	}
}

// TestTokenChecks: tokens from the trusted issuer, on a verifier whose discovery and keys are
// cached. Each asserts the class and the requests the issuer saw after warm-up: none, unless
// the token's kid is unknown (one rate-limited refetch).
func TestTokenChecks(t *testing.T) {
	t.Parallel()
	sec := func(d time.Duration) int64 { return t0.Add(d).Unix() }
	tests := []struct {
		name      string
		token     func(t *testing.T, e *env) string
		want      string // class
		reason    string // a substring of the reason, for refusals
		wantFetch int    // JWKS requests after warm-up
	}{
		{name: "good RS256", want: "ok", token: func(t *testing.T, e *env) string {
			return e.sign(t, nil)
		}},
		{name: "good ES256", want: "ok", token: func(t *testing.T, e *env) string {
			return e.sign(t, nil, oidcissuer.WithAlg(oidcissuer.ES256))
		}},
		{name: "aud array holding ours", want: "ok", token: func(t *testing.T, e *env) string {
			return e.sign(t, map[string]any{"aud": []string{"https://other.example", aud}})
		}},
		{name: "wrong aud", want: "invalid", reason: `audience "https://github.com/acme" is not this broker's`, token: func(t *testing.T, e *env) string {
			raw, err := e.iss.Sign(nil) // the owner-URL default GitHub gives
			if err != nil {
				t.Fatal(err)
			}
			return raw
		}},
		{name: "no aud", want: "invalid", reason: "token has no audience", token: func(t *testing.T, e *env) string {
			return e.sign(t, map[string]any{"aud": nil})
		}},
		{name: "aud array without ours", want: "invalid", reason: `audience "a", "b", "c", ... is not this broker's`, token: func(t *testing.T, e *env) string {
			return e.sign(t, map[string]any{"aud": []string{"a", "b", "c", "d"}})
		}},
		{name: "aud our prefix", want: "invalid", reason: "is not this broker's", token: func(t *testing.T, e *env) string {
			return e.sign(t, map[string]any{"aud": aud + "/x"})
		}},
		{name: "aud a number", want: "invalid", reason: "aud is not a string", token: func(t *testing.T, e *env) string {
			return e.sign(t, map[string]any{"aud": 5})
		}},
		{name: "expired 61 s ago", want: "invalid", reason: "token expired at 2026-11-27T19:58:59Z", token: func(t *testing.T, e *env) string {
			return e.sign(t, map[string]any{"iat": sec(-10 * time.Minute), "nbf": sec(-10 * time.Minute), "exp": sec(-61 * time.Second)})
		}},
		{name: "expired 59 s ago", want: "ok", token: func(t *testing.T, e *env) string {
			return e.sign(t, map[string]any{"iat": sec(-10 * time.Minute), "nbf": sec(-10 * time.Minute), "exp": sec(-59 * time.Second)})
		}},
		{name: "expired 60 s ago", want: "ok", token: func(t *testing.T, e *env) string {
			return e.sign(t, map[string]any{"iat": sec(-10 * time.Minute), "exp": sec(-60 * time.Second)})
		}},
		{name: "fractional exp 60.5 s ago", want: "invalid", reason: "expired", token: func(t *testing.T, e *env) string {
			return e.sign(t, map[string]any{"exp": float64(sec(-61*time.Second)) + 0.5})
		}},
		{name: "nbf 61 s ahead", want: "invalid", reason: "not valid before 2026-11-27T20:01:01Z", token: func(t *testing.T, e *env) string {
			return e.sign(t, map[string]any{"nbf": sec(61 * time.Second)})
		}},
		{name: "nbf 59 s ahead", want: "ok", token: func(t *testing.T, e *env) string {
			return e.sign(t, map[string]any{"nbf": sec(59 * time.Second)})
		}},
		{name: "no nbf", want: "ok", token: func(t *testing.T, e *env) string {
			return e.sign(t, map[string]any{"nbf": nil})
		}},
		{name: "iat 61 s in the future", want: "invalid", reason: "issued in the future (iat 2026-11-27T20:01:01Z)", token: func(t *testing.T, e *env) string {
			return e.sign(t, map[string]any{"iat": sec(61 * time.Second)})
		}},
		{name: "iat 59 s in the future", want: "ok", token: func(t *testing.T, e *env) string {
			return e.sign(t, map[string]any{"iat": sec(59 * time.Second)})
		}},
		{name: "no exp", want: "invalid", reason: "token has no exp", token: func(t *testing.T, e *env) string {
			return e.sign(t, map[string]any{"exp": nil})
		}},
		{name: "exp a string", want: "invalid", reason: "exp is not a number", token: func(t *testing.T, e *env) string {
			return e.sign(t, map[string]any{"exp": fmt.Sprint(sec(time.Minute))})
		}},
		{name: "exp negative", want: "invalid", reason: "exp is out of range", token: func(t *testing.T, e *env) string {
			return e.sign(t, map[string]any{"exp": -1})
		}},
		{name: "exp past year 9999", want: "invalid", reason: "exp is out of range", token: func(t *testing.T, e *env) string {
			return e.sign(t, map[string]any{"exp": 1e15})
		}},
		{name: "no iat", want: "invalid", reason: "token has no iat", token: func(t *testing.T, e *env) string {
			return e.sign(t, map[string]any{"iat": nil})
		}},
		{name: "no jti", want: "invalid", reason: "token has no jti", token: func(t *testing.T, e *env) string {
			return e.sign(t, map[string]any{"jti": nil})
		}},
		{name: "empty jti", want: "invalid", reason: "token has no jti", token: func(t *testing.T, e *env) string {
			return e.sign(t, map[string]any{"jti": ""})
		}},
		{name: "jti a number", want: "invalid", reason: "token has no jti", token: func(t *testing.T, e *env) string {
			return e.sign(t, map[string]any{"jti": 12})
		}},
		{name: "sub a number", want: "invalid", reason: "sub is not a string", token: func(t *testing.T, e *env) string {
			return e.sign(t, map[string]any{"sub": 12})
		}},
		{name: "claims altered after signing", want: "invalid", reason: "signature does not verify", token: func(t *testing.T, e *env) string {
			forged, _ := json.Marshal(map[string]any{"iss": e.iss.URL(), "aud": aud, "repository_id": "1"})
			return withPart(e.sign(t, nil), 1, b64(forged))
		}},
		{name: "key not in the JWKS, published kid", want: "invalid", reason: "signature does not verify", token: func(t *testing.T, e *env) string {
			return e.sign(t, nil, oidcissuer.WithUnpublishedKey())
		}},
		{name: "ES256 key not in the JWKS", want: "invalid", reason: "signature does not verify", token: func(t *testing.T, e *env) string {
			return e.sign(t, nil, oidcissuer.WithAlg(oidcissuer.ES256), oidcissuer.WithUnpublishedKey())
		}},
		{name: "RSA kid on an ES256 token", want: "invalid", reason: "is not an ES256 key", token: func(t *testing.T, e *env) string {
			return e.sign(t, nil, oidcissuer.WithAlg(oidcissuer.ES256), oidcissuer.WithKeyID(e.iss.KeyID(oidcissuer.RS256)))
		}},
		{name: "no kid, good key", want: "ok", token: func(t *testing.T, e *env) string {
			return e.sign(t, nil, oidcissuer.WithKeyID(""))
		}},
		{name: "no kid, unpublished key", want: "invalid", reason: "signature does not verify", token: func(t *testing.T, e *env) string {
			return e.sign(t, nil, oidcissuer.WithKeyID(""), oidcissuer.WithUnpublishedKey())
		}},
		{name: "unknown kid", want: "invalid", reason: "is not among the keys of issuer", wantFetch: 1, token: func(t *testing.T, e *env) string {
			return e.sign(t, nil, oidcissuer.WithKeyID("0b5c3e0e-0000-4000-8000-000000000000"), oidcissuer.WithUnpublishedKey())
		}},
		{name: "attacker key embedded as jwk", want: "invalid", reason: "signature does not verify", token: func(t *testing.T, e *env) string {
			return craft(t, mustRSAKey(t), e.goodClaims(), &jose.SignerOptions{EmbedJWK: true})
		}},
		{name: "attacker key embedded as jwk with a published kid", want: "invalid", reason: "signature does not verify", token: func(t *testing.T, e *env) string {
			k := mustRSAKey(t)
			return craft(t, k, e.goodClaims(), (&jose.SignerOptions{}).
				WithHeader("kid", e.iss.KeyID(oidcissuer.RS256)).
				WithHeader("jwk", jose.JSONWebKey{Key: k.Public(), Algorithm: "RS256", Use: "sig"}))
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := mustEnv(t)
			e.warm(t)
			before := e.counts()
			raw := tc.token(t, e)
			id, err := e.v.Verify(t.Context(), raw)
			if got := class(err); got != tc.want {
				t.Fatalf("Verify: %s (%v), want %s", got, err, tc.want)
			}
			if err != nil {
				if id != nil {
					t.Error("Verify returned an identity with its error")
				}
				if !strings.Contains(err.Error(), tc.reason) {
					t.Errorf("reason %q does not say %q", err, tc.reason)
				}
			}
			assertSafeMessage(t, err, raw)
			e.assertRequests(t, "after warm-up", counts{JWKS: tc.wantFetch}, before)
		})
	}
}

// TestKeysFromHeadersNeverFetched: a jku or x5u header pointing at an attacker's server is
// never followed.
func TestKeysFromHeadersNeverFetched(t *testing.T) {
	t.Parallel()
	var hits atomic.Int32
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		hits.Add(1)
		http.Error(w, "{}", http.StatusOK)
	}))
	defer evil.Close()
	e := mustEnv(t)
	k := mustRSAKey(t)
	raw := craft(t, k, e.goodClaims(), (&jose.SignerOptions{}).
		WithHeader("kid", "evil").WithHeader("jku", evil.URL+"/jwks").WithHeader("x5u", evil.URL+"/cert"))
	if _, err := e.v.Verify(t.Context(), raw); class(err) != "invalid" {
		t.Fatalf("Verify: %v, want invalid", err)
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("the jku/x5u server got %d requests", n)
	}
}

func TestIdentity(t *testing.T) {
	t.Parallel()
	e := mustEnv(t)
	raw := e.sign(t, map[string]any{"jti": "0b5c3e0e-7d0a-4c7e-9f57-2a1f5d3c9e11", "run_number": "42", "runner_id": 7})
	id, err := e.v.Verify(t.Context(), raw)
	if err != nil {
		t.Fatal(err)
	}
	claims := oidcissuer.DefaultClaims()
	for k, v := range map[string]any{
		"iss": e.iss.URL(), "aud": aud, "jti": "0b5c3e0e-7d0a-4c7e-9f57-2a1f5d3c9e11",
		"iat": json.Number("1795809600"), "nbf": json.Number("1795809300"), "exp": json.Number("1795809900"),
		"runner_id": json.Number("7"),
	} {
		claims[k] = v
	}
	want := &oidcverify.Identity{
		Issuer: e.iss.URL(), Subject: "repo:acme/site-deploy:environment:production",
		JTI:      "0b5c3e0e-7d0a-4c7e-9f57-2a1f5d3c9e11",
		IssuedAt: t0, NotBefore: t0.Add(-300 * time.Second), Expiry: t0.Add(300 * time.Second),
		Claims: claims,
	}
	if diff := cmp.Diff(want, id); diff != "" {
		t.Errorf("identity (-want +got):\n%s", diff)
	}
	if id.Expiry.Location() != time.UTC {
		t.Errorf("Expiry in %v, want UTC", id.Expiry.Location())
	}
}

func TestReplay(t *testing.T) {
	t.Parallel()
	e := mustEnv(t)
	raw := e.sign(t, map[string]any{"jti": "j1"})
	if _, err := e.v.Verify(t.Context(), raw); err != nil {
		t.Fatal(err)
	}
	_, err := e.v.Verify(t.Context(), raw)
	if !errors.Is(err, oidcverify.ErrReplay) || !errors.Is(err, oidcverify.ErrInvalid) || errors.Is(err, oidcverify.ErrUnavailable) {
		t.Fatalf("second use: %v, want ErrReplay (and ErrInvalid)", err)
	}
	if got, want := err.Error(), "token was already exchanged (replayed jti)"; got != want {
		t.Errorf("reason %q, want %q", got, want)
	}
	// The same jti from another token of the same issuer is a replay too; a new jti is not.
	if _, err := e.v.Verify(t.Context(), e.sign(t, map[string]any{"jti": "j1", "run_id": "2"})); !errors.Is(err, oidcverify.ErrReplay) {
		t.Errorf("same jti, other token: %v, want ErrReplay", err)
	}
	if _, err := e.v.Verify(t.Context(), e.sign(t, nil)); err != nil {
		t.Errorf("fresh jti: %v", err)
	}
	// A refused token does not use up its jti.
	bad := e.sign(t, map[string]any{"jti": "later", "aud": "elsewhere"})
	if _, err := e.v.Verify(t.Context(), bad); class(err) != "invalid" {
		t.Fatal(err)
	}
	if _, err := e.v.Verify(t.Context(), e.sign(t, map[string]any{"jti": "later"})); err != nil {
		t.Errorf("jti of a refused token: %v", err)
	}
}

func TestReplayConcurrent(t *testing.T) {
	t.Parallel()
	e := mustEnv(t)
	raw := e.sign(t, nil)
	var ok, replayed atomic.Int32
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			_, err := e.v.Verify(context.Background(), raw)
			switch class(err) {
			case "ok":
				ok.Add(1)
			case "replay":
				replayed.Add(1)
			default:
				t.Errorf("Verify: %v", err)
			}
		})
	}
	wg.Wait()
	if ok.Load() != 1 || replayed.Load() != 19 {
		t.Errorf("%d accepted, %d replays; want 1 and 19", ok.Load(), replayed.Load())
	}
	if c := e.counts(); c.Discovery != 1 || c.JWKS != 1 {
		t.Errorf("concurrent cold start sent %+v, want one discovery and one JWKS request", c)
	}
}

func TestReplayCacheBound(t *testing.T) {
	t.Parallel()
	const size = 50
	e := mustEnv(t, func(c *oidcverify.Config) { c.ReplayCacheSize = size })
	for i := range 3 * size {
		// ES256 signs fast; the bound is what matters.
		raw := e.sign(t, map[string]any{"jti": fmt.Sprint("jti-", i)}, oidcissuer.WithAlg(oidcissuer.ES256))
		if _, err := e.v.Verify(t.Context(), raw); err != nil {
			t.Fatalf("token %d: %v", i, err)
		}
		if n := e.v.ReplayLen(); n > size {
			t.Fatalf("after %d tokens the replay cache holds %d, more than its bound %d", i+1, n, size)
		}
	}
	if n := e.v.ReplayLen(); n != size {
		t.Errorf("replay cache holds %d, want it full at %d", n, size)
	}
	// The most recent jtis are still refused.
	if _, err := e.v.Verify(t.Context(), e.sign(t, map[string]any{"jti": fmt.Sprint("jti-", 3*size-1)})); !errors.Is(err, oidcverify.ErrReplay) {
		t.Errorf("recent jti: %v, want ErrReplay", err)
	}
	// Entries past exp + leeway are dropped as new ones come in.
	e.now.Advance(300*time.Second + oidcverify.DefaultLeeway + time.Second)
	if _, err := e.v.Verify(t.Context(), e.sign(t, nil)); err != nil {
		t.Fatal(err)
	}
	if n := e.v.ReplayLen(); n != 1 {
		t.Errorf("after every entry expired the cache holds %d, want 1", n)
	}
}

func TestReplayRememberedUntilExpiry(t *testing.T) {
	t.Parallel()
	e := mustEnv(t)
	// A long-lived token (CircleCI's live an hour): its jti must be remembered for the hour.
	raw := e.sign(t, map[string]any{"exp": t0.Add(time.Hour).Unix()})
	if _, err := e.v.Verify(t.Context(), raw); err != nil {
		t.Fatal(err)
	}
	e.now.Advance(59 * time.Minute)
	if _, err := e.v.Verify(t.Context(), raw); !errors.Is(err, oidcverify.ErrReplay) {
		t.Errorf("59 min later: %v, want ErrReplay", err)
	}
	e.now.Advance(2*time.Minute + time.Second)
	if _, err := e.v.Verify(t.Context(), raw); class(err) != "invalid" || errors.Is(err, oidcverify.ErrReplay) {
		t.Errorf("after exp + leeway: %v, want expired", err)
	}
}

func TestRelease(t *testing.T) {
	t.Parallel()
	e := mustEnv(t)
	raw := e.sign(t, map[string]any{"jti": "released"})
	other := e.sign(t, map[string]any{"jti": "kept"})
	id, err := e.v.Verify(t.Context(), raw)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.v.Verify(t.Context(), other); err != nil {
		t.Fatal(err)
	}
	e.v.Release(id)
	if n := e.v.ReplayLen(); n != 1 {
		t.Errorf("after Release the replay cache holds %d entries, want 1", n)
	}
	// The released token is accepted once more, and then used up again.
	if _, err := e.v.Verify(t.Context(), raw); err != nil {
		t.Fatalf("released token: %v, want it accepted again", err)
	}
	if _, err := e.v.Verify(t.Context(), raw); !errors.Is(err, oidcverify.ErrReplay) {
		t.Errorf("released token, third use: %v, want ErrReplay", err)
	}
	// Release touches only its own jti.
	if _, err := e.v.Verify(t.Context(), other); !errors.Is(err, oidcverify.ErrReplay) {
		t.Errorf("token not released: %v, want ErrReplay", err)
	}
	// Nothing to release is no fault.
	e.v.Release(nil)
	e.v.Release(&oidcverify.Identity{Issuer: e.iss.URL()})
}
