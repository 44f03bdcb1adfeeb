package oidcissuer_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/go-jose/go-jose/v4"
	"github.com/google/go-cmp/cmp"

	"github.com/cf-scoped-token/cf-scoped-token/internal/oidcissuer"
	"github.com/cf-scoped-token/cf-scoped-token/internal/oidcissuer/oidcissuertest"
)

func TestNewRejectsBadURLs(t *testing.T) {
	t.Parallel()
	for _, u := range []string{
		"", "127.0.0.1:8080", "ftp://127.0.0.1", "http://", "http://u:p@127.0.0.1",
		"http://127.0.0.1/?x=1", "http://127.0.0.1/#f", "http://127.0.0.1/", "http://127.0.0.1/org/",
		"http://127.0.0.1/a%20b", "http://127.0.0.1/{x}",
	} {
		if _, err := oidcissuer.New(u); err == nil {
			t.Errorf("New(%q) succeeded, want an error", u)
		}
	}
}

func TestDiscovery(t *testing.T) {
	t.Parallel()
	for _, path := range []string{"", "/org/5a7c2d1e-0b3f-4c6d-9e8f-1a2b3c4d5e6f"} {
		t.Run("path="+path, func(t *testing.T) {
			t.Parallel()
			ti := mustStart(t, path)
			status, ctype, body := ti.get(t, ti.iss.URL()+"/.well-known/openid-configuration", nil)
			if status != http.StatusOK || !strings.HasPrefix(ctype, "application/json") {
				t.Fatalf("discovery: %d %s", status, ctype)
			}
			var doc map[string]any
			if err := json.Unmarshal(body, &doc); err != nil {
				t.Fatal(err)
			}
			claims, _ := doc["claims_supported"].([]any)
			delete(doc, "claims_supported")
			want := map[string]any{
				"issuer":                                ti.iss.URL(),
				"jwks_uri":                              ti.iss.URL() + "/.well-known/jwks",
				"subject_types_supported":               []any{"public", "pairwise"},
				"response_types_supported":              []any{"id_token"},
				"id_token_signing_alg_values_supported": []any{"RS256", "ES256"},
				"scopes_supported":                      []any{"openid"},
			}
			if diff := cmp.Diff(want, doc); diff != "" {
				t.Errorf("discovery document (-want +got):\n%s", diff)
			}
			for _, c := range []string{"sub", "aud", "exp", "iat", "iss", "jti", "nbf", "repository_id", "repository_owner_id", "job_workflow_ref", "environment", "ref_protected"} {
				if !slices.Contains(claims, any(c)) {
					t.Errorf("claims_supported lacks %q", c)
				}
			}
			// The routes live only under the issuer's path.
			if path != "" {
				if status, _, _ := ti.get(t, ti.srv.URL+"/.well-known/openid-configuration", nil); status != http.StatusNotFound {
					t.Errorf("discovery at the host root: status %d, want 404", status)
				}
			}
		})
	}
}

func TestJWKS(t *testing.T) {
	t.Parallel()
	ti := mustStart(t, "")
	status, ctype, body := ti.get(t, ti.iss.URL()+"/.well-known/jwks", nil)
	if status != http.StatusOK || !strings.HasPrefix(ctype, "application/json") {
		t.Fatalf("jwks: %d %s", status, ctype)
	}
	var raw struct {
		Keys []map[string]string `json:"keys"`
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		t.Fatal(err)
	}
	if len(raw.Keys) != 2 {
		t.Fatalf("jwks has %d keys, want 2", len(raw.Keys))
	}
	fields := func(m map[string]string) []string {
		var ks []string
		for k := range m {
			ks = append(ks, k)
		}
		slices.Sort(ks)
		return ks
	}
	if diff := cmp.Diff([]string{"alg", "e", "kid", "kty", "n", "use"}, fields(raw.Keys[0])); diff != "" {
		t.Errorf("RSA key fields (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"alg", "crv", "kid", "kty", "use", "x", "y"}, fields(raw.Keys[1])); diff != "" {
		t.Errorf("EC key fields (-want +got):\n%s", diff)
	}
	for i, want := range []map[string]string{
		{"kty": "RSA", "alg": "RS256", "use": "sig", "kid": ti.iss.KeyID(oidcissuer.RS256), "e": "AQAB"},
		{"kty": "EC", "alg": "ES256", "use": "sig", "kid": ti.iss.KeyID(oidcissuer.ES256), "crv": "P-256"},
	} {
		got := map[string]string{}
		for k := range want {
			got[k] = raw.Keys[i][k]
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("key %d (-want +got):\n%s", i, diff)
		}
		if !uuidRE.MatchString(raw.Keys[i]["kid"]) {
			t.Errorf("kid %q is not UUID-like", raw.Keys[i]["kid"])
		}
	}
	// go-jose, an independent decoder, must read both as valid public keys of the right size.
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(body, &set); err != nil {
		t.Fatal(err)
	}
	if k, ok := set.Keys[0].Key.(*rsa.PublicKey); !ok || k.N.BitLen() != 2048 || k.E != 65537 {
		t.Errorf("key 0 is %T, want a 2048-bit RSA key with e=65537", set.Keys[0].Key)
	}
	if k, ok := set.Keys[1].Key.(*ecdsa.PublicKey); !ok || k.Params().Name != "P-256" {
		t.Errorf("key 1 is %T, want a P-256 key", set.Keys[1].Key)
	}
	for _, k := range set.Keys {
		if !k.Valid() || !k.IsPublic() {
			t.Errorf("key %s is not a valid public key", k.KeyID)
		}
	}
}

// verifier is go-oidc, pointed at the issuer by discovery: the cross-check that matters.
func verifier(tb testing.TB, ti *testIssuer, audience string) *oidc.IDTokenVerifier {
	tb.Helper()
	ctx := oidc.ClientContext(context.Background(), ti.srv.Client())
	p, err := oidc.NewProvider(ctx, ti.iss.URL())
	if err != nil {
		tb.Fatalf("go-oidc discovery: %v", err)
	}
	return p.Verifier(&oidc.Config{ClientID: audience, Now: ti.now.Now})
}

func TestGoOIDCVerifiesIssuedTokens(t *testing.T) {
	t.Parallel()
	const aud = "https://broker.acme.example"
	fromEndpoint := func(t *testing.T, ti *testIssuer) string { return ti.requestToken(t, ti.iss.NewJob(nil), aud) }
	tests := []struct {
		name, path string
		token      func(t *testing.T, ti *testIssuer) string
		alg        oidcissuer.Alg // of the key that must have signed
	}{
		{name: "token endpoint", token: fromEndpoint, alg: oidcissuer.RS256},
		{name: "token endpoint, issuer with a path", path: "/org/5a7c2d1e-0b3f-4c6d-9e8f-1a2b3c4d5e6f", token: fromEndpoint, alg: oidcissuer.RS256},
		{
			name:  "Sign RS256",
			token: func(t *testing.T, ti *testIssuer) string { return oidcissuertest.Sign(t, ti.iss, aud, nil) },
			alg:   oidcissuer.RS256,
		},
		{
			name: "Sign ES256",
			token: func(t *testing.T, ti *testIssuer) string {
				return oidcissuertest.Sign(t, ti.iss, aud, nil, oidcissuer.WithAlg(oidcissuer.ES256))
			},
			alg: oidcissuer.ES256,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ti := mustStart(t, tc.path)
			raw := tc.token(t, ti)
			tok, err := verifier(t, ti, aud).Verify(t.Context(), raw)
			if err != nil {
				t.Fatalf("go-oidc refused the issuer's token: %v", err)
			}
			header, claims, _ := jwtParts(t, raw)
			if diff := cmp.Diff(map[string]any{"alg": string(tc.alg), "kid": ti.iss.KeyID(tc.alg), "typ": "JWT"}, header); diff != "" {
				t.Errorf("header (-want +got):\n%s", diff)
			}
			if tok.Issuer != ti.iss.URL() || tok.Subject != "repo:acme/site-deploy:environment:production" {
				t.Errorf("iss %q sub %q", tok.Issuer, tok.Subject)
			}
			if !tok.IssuedAt.Equal(t0) || !tok.Expiry.Equal(t0.Add(300*time.Second)) {
				t.Errorf("iat %v exp %v, want %v and 5 min later", tok.IssuedAt, tok.Expiry, t0)
			}
			if got, want := claims["nbf"], json.Number("1795809300"); got != want { // t0 - 300 s
				t.Errorf("nbf = %v, want %v", got, want)
			}
			if jti, _ := claims["jti"].(string); !uuidRE.MatchString(jti) {
				t.Errorf("jti %q is not a UUID", jti)
			}
			for k, want := range oidcissuer.DefaultClaims() {
				if claims[k] != want {
					t.Errorf("claim %s = %#v, want %#v", k, claims[k], want)
				}
			}
		})
	}
}

func TestTokenEndpointClaims(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		claims   map[string]any
		audience string
		want     map[string]any // claims that must have these values
		absent   []string       // claims that must be missing
	}{
		{
			name: "no audience: the owner URL",
			want: map[string]any{"aud": "https://github.com/acme"},
		},
		{
			name:   "no audience, other owner",
			claims: map[string]any{"repository_owner": "octo-org"},
			want:   map[string]any{"aud": "https://github.com/octo-org"},
		},
		{
			name:     "audience requested",
			audience: "https://broker.acme.example/x?y=1",
			want:     map[string]any{"aud": "https://broker.acme.example/x?y=1"},
		},
		{
			name:     "the job's aud wins over the request's",
			claims:   map[string]any{"aud": []any{"a", "b"}},
			audience: "c",
			want:     map[string]any{"aud": []any{"a", "b"}},
		},
		{
			name:   "no environment: sub from ref",
			claims: map[string]any{"environment": nil, "ref": "refs/tags/v1"},
			want:   map[string]any{"sub": "repo:acme/site-deploy:ref:refs/tags/v1"},
			absent: []string{"environment"},
		},
		{
			name:   "pull request: sub says so",
			claims: map[string]any{"environment": nil, "event_name": "pull_request", "ref": "refs/pull/7/merge"},
			want:   map[string]any{"sub": "repo:acme/site-deploy:pull_request"},
		},
		{
			name:   "a colon in a value is escaped",
			claims: map[string]any{"environment": "Production:V1"},
			want:   map[string]any{"sub": "repo:acme/site-deploy:environment:Production%3AV1"},
		},
		{
			name:   "explicit sub kept; claims removed and added",
			claims: map[string]any{"sub": "custom", "jti": nil, "exp": nil, "enterprise": "acme-corp"},
			want:   map[string]any{"sub": "custom", "enterprise": "acme-corp"},
			absent: []string{"jti", "exp"},
		},
		{
			name:   "time claims overridden",
			claims: map[string]any{"exp": 1, "iat": 2, "iss": "https://elsewhere.example"},
			want:   map[string]any{"exp": json.Number("1"), "iat": json.Number("2"), "iss": "https://elsewhere.example"},
		},
	}
	ti := mustStart(t, "")
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, claims, _ := jwtParts(t, ti.requestToken(t, ti.iss.NewJob(tc.claims), tc.audience))
			got := map[string]any{}
			for k := range tc.want {
				got[k] = claims[k]
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("claims (-want +got):\n%s", diff)
			}
			for _, k := range tc.absent {
				if v, ok := claims[k]; ok {
					t.Errorf("claim %s = %v, want it absent", k, v)
				}
			}
		})
	}
}

func TestTokenEndpointJTIsAreFresh(t *testing.T) {
	t.Parallel()
	ti := mustStart(t, "")
	j := ti.iss.NewJob(nil)
	seen := map[any]bool{}
	for range 5 {
		_, claims, _ := jwtParts(t, ti.requestToken(t, j, "x"))
		if seen[claims["jti"]] {
			t.Fatalf("jti %v issued twice", claims["jti"])
		}
		seen[claims["jti"]] = true
	}
}

func TestTokenEndpointErrors(t *testing.T) {
	t.Parallel()
	ti := mustStart(t, "")
	job := ti.iss.NewJob(nil)
	other := ti.iss.NewJob(nil)
	base, _, _ := strings.Cut(job.RequestURL, "?")
	otherBase, _, _ := strings.Cut(other.RequestURL, "?")
	// The plan of one job with the job id of another.
	mixed := otherBase[:strings.Index(otherBase, "/jobs/")] + base[strings.Index(base, "/jobs/"):] + "?api-version=2.0"
	tests := []struct {
		name, url, auth string
		want            int
	}{
		{"no Authorization", job.RequestURL, "", http.StatusUnauthorized},
		{"not a bearer", job.RequestURL, "Basic " + job.RequestToken, http.StatusUnauthorized},
		{"wrong bearer", job.RequestURL, "Bearer " + job.RequestToken + "x", http.StatusUnauthorized},
		{"another job's bearer", job.RequestURL, "Bearer " + other.RequestToken, http.StatusUnauthorized},
		{"unknown job", strings.Replace(job.RequestURL, "/jobs/", "/jobs/0", 1), "Bearer " + job.RequestToken, http.StatusNotFound},
		{"job under another plan", mixed, "Bearer " + job.RequestToken, http.StatusNotFound},
		{"query replaced, api-version lost", base + "?audience=x", "Bearer " + job.RequestToken, http.StatusBadRequest},
		{"not under the issuer", ti.srv.URL + "/nope", "", http.StatusNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := http.Header{}
			if tc.auth != "" {
				h.Set("Authorization", tc.auth)
			}
			status, ctype, body := ti.get(t, tc.url, h)
			if status != tc.want {
				t.Fatalf("status %d, want %d (%s)", status, tc.want, body)
			}
			var m struct {
				Message *string `json:"message"`
			}
			if err := json.Unmarshal(body, &m); err != nil || m.Message == nil || *m.Message == "" || !strings.HasPrefix(ctype, "application/json") {
				t.Errorf("error body %s (%s), want {\"message\": \"…\"}", body, ctype)
			}
		})
	}
}

func TestRotateAndRetire(t *testing.T) {
	t.Parallel()
	const aud = "x"
	ti := mustStart(t, "")
	sign := func(alg oidcissuer.Alg) string {
		t.Helper()
		return oidcissuertest.Sign(t, ti.iss, aud, nil, oidcissuer.WithAlg(alg))
	}
	kidOf := func(raw string) any {
		h, _, _ := jwtParts(t, raw)
		return h["kid"]
	}
	oldRSA, oldEC := ti.iss.KeyID(oidcissuer.RS256), ti.iss.KeyID(oidcissuer.ES256)
	before := sign(oidcissuer.RS256)
	v := verifier(t, ti, aud)
	if _, err := v.Verify(t.Context(), before); err != nil {
		t.Fatal(err)
	}

	newRSA, err := ti.iss.Rotate(oidcissuer.RS256)
	if err != nil {
		t.Fatal(err)
	}
	if newRSA == oldRSA || !uuidRE.MatchString(newRSA) || ti.iss.KeyID(oidcissuer.RS256) != newRSA {
		t.Fatalf("Rotate gave kid %q (old %q, current %q)", newRSA, oldRSA, ti.iss.KeyID(oidcissuer.RS256))
	}
	if diff := cmp.Diff([]string{oldRSA, oldEC, newRSA}, ti.iss.KeyIDs()); diff != "" {
		t.Errorf("published kids after Rotate (-want +got):\n%s", diff)
	}
	after := sign(oidcissuer.RS256)
	if kidOf(after) != newRSA {
		t.Errorf("after Rotate the token's kid is %v, want %s", kidOf(after), newRSA)
	}
	// The same go-oidc verifier learns the new key (one refetch) and still takes the old one.
	jwksBefore := ti.iss.Requests(oidcissuer.RouteJWKS)
	for _, raw := range []string{after, before} {
		if _, err := v.Verify(t.Context(), raw); err != nil {
			t.Errorf("after rotation: %v", err)
		}
	}
	if got := ti.iss.Requests(oidcissuer.RouteJWKS) - jwksBefore; got != 1 {
		t.Errorf("go-oidc fetched the JWKS %d times for the rotated key, want 1", got)
	}

	if err := ti.iss.Retire(oldRSA); err != nil {
		t.Fatal(err)
	}
	if err := ti.iss.Retire(oldRSA); err == nil {
		t.Error("retiring a retired key succeeded")
	}
	if diff := cmp.Diff([]string{oldEC, newRSA}, ti.iss.KeyIDs()); diff != "" {
		t.Errorf("published kids after Retire (-want +got):\n%s", diff)
	}
	// A fresh verifier (empty cache) no longer finds the retired key.
	if _, err := verifier(t, ti, aud).Verify(t.Context(), before); err == nil {
		t.Error("a token of a retired key still verifies with a fresh key set")
	}

	// Retiring the signing key hands signing to the newest remaining key of its algorithm;
	// with none left, signing fails.
	if err := ti.iss.Retire(newRSA); err != nil {
		t.Fatal(err)
	}
	if _, err := ti.iss.Sign(nil); err == nil || ti.iss.KeyID(oidcissuer.RS256) != "" {
		t.Errorf("Sign with every RSA key retired: err %v, current kid %q", err, ti.iss.KeyID(oidcissuer.RS256))
	}
	job := ti.iss.NewJob(nil)
	if status, _, _ := ti.get(t, job.RequestURL, http.Header{"Authorization": {"Bearer " + job.RequestToken}}); status != http.StatusInternalServerError {
		t.Errorf("token endpoint with no RSA key: status %d, want 500", status)
	}
	if kidOf(sign(oidcissuer.ES256)) != oldEC {
		t.Error("ES256 signing changed with RSA retirements")
	}
	if _, err := ti.iss.Rotate("HS256"); err == nil {
		t.Error("Rotate(HS256) succeeded")
	}
}

func TestRetireHandsSigningToTheNewestRemainingKey(t *testing.T) {
	t.Parallel()
	ti := mustStart(t, "")
	first := ti.iss.KeyID(oidcissuer.ES256)
	second, err := ti.iss.Rotate(oidcissuer.ES256)
	if err != nil {
		t.Fatal(err)
	}
	third, err := ti.iss.Rotate(oidcissuer.ES256)
	if err != nil {
		t.Fatal(err)
	}
	if err := ti.iss.Retire(third); err != nil {
		t.Fatal(err)
	}
	if got := ti.iss.KeyID(oidcissuer.ES256); got != second {
		t.Errorf("after retiring the newest key, %q signs, want %q (not the first, %q)", got, second, first)
	}
}

// publishedKey reads the issuer's JWKS and returns the public key with kid.
func publishedKey(tb testing.TB, ti *testIssuer, kid string) any {
	tb.Helper()
	_, _, body := ti.get(tb, ti.iss.URL()+"/.well-known/jwks", nil)
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(body, &set); err != nil {
		tb.Fatal(err)
	}
	keys := set.Key(kid)
	if len(keys) != 1 {
		tb.Fatalf("JWKS has %d keys with kid %q", len(keys), kid)
	}
	return keys[0].Key
}

func TestHostileTokens(t *testing.T) {
	t.Parallel()
	ti := mustStart(t, "")
	rsaKid := ti.iss.KeyID(oidcissuer.RS256)
	v := verifier(t, ti, "x")

	t.Run("alg none", func(t *testing.T) {
		t.Parallel()
		raw := oidcissuertest.Sign(t, ti.iss, "x", nil, oidcissuer.AlgNone())
		header, claims, sig := jwtParts(t, raw)
		if header["alg"] != "none" || header["kid"] != rsaKid || len(sig) != 0 || !strings.HasSuffix(raw, ".") {
			t.Errorf("header %v, %d signature bytes, want alg none and an empty signature", header, len(sig))
		}
		if claims["iss"] != ti.iss.URL() {
			t.Errorf("claims %v", claims)
		}
		if _, err := v.Verify(t.Context(), raw); err == nil {
			t.Error("go-oidc accepted alg none")
		}
	})

	t.Run("HS256 keyed with the public key", func(t *testing.T) {
		t.Parallel()
		raw := oidcissuertest.Sign(t, ti.iss, "x", nil, oidcissuer.HS256WithPublicKey())
		header, _, sig := jwtParts(t, raw)
		if header["alg"] != "HS256" || header["kid"] != rsaKid {
			t.Errorf("header %v", header)
		}
		// Recompute the MAC from the published key: the attack a naive verifier falls for.
		der, err := x509.MarshalPKIXPublicKey(publishedKey(t, ti, rsaKid))
		if err != nil {
			t.Fatal(err)
		}
		mac := hmac.New(sha256.New, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
		mac.Write([]byte(raw[:strings.LastIndex(raw, ".")]))
		if !hmac.Equal(sig, mac.Sum(nil)) {
			t.Error("the HS256 MAC is not keyed with the published key's PEM")
		}
		if _, err := v.Verify(t.Context(), raw); err == nil {
			t.Error("go-oidc accepted HS256")
		}
	})

	t.Run("unpublished key", func(t *testing.T) {
		t.Parallel()
		for _, alg := range []oidcissuer.Alg{oidcissuer.RS256, oidcissuer.ES256} {
			raw := oidcissuertest.Sign(t, ti.iss, "x", nil, oidcissuer.WithAlg(alg), oidcissuer.WithUnpublishedKey())
			header, _, _ := jwtParts(t, raw)
			if header["alg"] != string(alg) || header["kid"] != ti.iss.KeyID(alg) {
				t.Errorf("%s: header %v, want the published kid", alg, header)
			}
			jws, err := jose.ParseSignedCompact(raw, []jose.SignatureAlgorithm{jose.RS256, jose.ES256})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := jws.Verify(publishedKey(t, ti, ti.iss.KeyID(alg))); err == nil {
				t.Errorf("%s: the published key verifies a token of the unpublished one", alg)
			}
			if _, err := v.Verify(t.Context(), raw); err == nil {
				t.Errorf("%s: go-oidc accepted a token of an unpublished key", alg)
			}
			if slices.Contains(ti.iss.KeyIDs(), "") || len(ti.iss.KeyIDs()) != 2 {
				t.Errorf("the unpublished key was published: %v", ti.iss.KeyIDs())
			}
		}
	})

	t.Run("header options", func(t *testing.T) {
		t.Parallel()
		raw, err := ti.iss.Sign(nil,
			oidcissuer.WithKeyID("kid-x"), oidcissuer.WithHeader("jku", "https://evil.example/jwks"),
			oidcissuer.WithHeader("typ", nil))
		if err != nil {
			t.Fatal(err)
		}
		header, _, _ := jwtParts(t, raw)
		if diff := cmp.Diff(map[string]any{"alg": "RS256", "kid": "kid-x", "jku": "https://evil.example/jwks"}, header); diff != "" {
			t.Errorf("header (-want +got):\n%s", diff)
		}
		raw, err = ti.iss.Sign(nil, oidcissuer.WithKeyID(""))
		if err != nil {
			t.Fatal(err)
		}
		if header, _, _ := jwtParts(t, raw); header["kid"] != nil {
			t.Errorf("WithKeyID(\"\") left kid %v", header["kid"])
		}
	})
}

func TestFaults(t *testing.T) {
	t.Parallel()
	ti := mustStart(t, "")
	jwks := ti.iss.URL() + "/.well-known/jwks"
	disc := ti.iss.URL() + "/.well-known/openid-configuration"
	ti.iss.Fail(oidcissuer.RouteJWKS, http.StatusServiceUnavailable, 2)
	var got []int
	for range 3 {
		status, _, body := ti.get(t, jwks, nil)
		got = append(got, status)
		if status != http.StatusOK && !strings.Contains(string(body), `"message"`) {
			t.Errorf("fault body %s, want {\"message\": …}", body)
		}
	}
	if diff := cmp.Diff([]int{503, 503, 200}, got); diff != "" {
		t.Errorf("JWKS statuses (-want +got):\n%s", diff)
	}
	if status, _, _ := ti.get(t, disc, nil); status != http.StatusOK {
		t.Errorf("discovery hit by a JWKS fault: %d", status)
	}
	if got, want := ti.iss.Requests(oidcissuer.RouteJWKS), 3; got != want {
		t.Errorf("Requests(jwks) = %d, want %d (faulted ones count)", got, want)
	}
	if got, want := ti.iss.Requests(oidcissuer.RouteDiscovery), 1; got != want {
		t.Errorf("Requests(discovery) = %d, want %d", got, want)
	}

	// Every route, until cleared.
	ti.iss.Fail(oidcissuer.RouteUnknown, http.StatusBadGateway, 0)
	for _, u := range []string{jwks, disc, jwks} {
		if status, _, _ := ti.get(t, u, nil); status != http.StatusBadGateway {
			t.Errorf("GET %s under an every-route fault: %d", u, status)
		}
	}
	ti.iss.ClearFaults()
	if status, _, _ := ti.get(t, jwks, nil); status != http.StatusOK {
		t.Errorf("after ClearFaults: %d", status)
	}

	// Latency, then the answer.
	ti.iss.AddFault(oidcissuer.Fault{Route: oidcissuer.RouteDiscovery, Delay: 50 * time.Millisecond, Times: 1})
	start := time.Now()
	if status, _, _ := ti.get(t, disc, nil); status != http.StatusOK {
		t.Errorf("after latency: %d", status)
	}
	if d := time.Since(start); d < 50*time.Millisecond {
		t.Errorf("latency fault took %v, want ≥ 50ms", d)
	}

	// A client that gives up during latency is let go.
	ti.iss.AddFault(oidcissuer.Fault{Route: oidcissuer.RouteJWKS, Delay: time.Minute, Times: 1})
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, jwks, nil)
	start = time.Now()
	resp, err := ti.srv.Client().Do(req)
	if err == nil {
		resp.Body.Close()
	}
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 10*time.Second {
		t.Errorf("client timeout during latency: %v after %v", err, time.Since(start))
	}

	if status, _, _ := ti.get(t, ti.srv.URL+"/unknown", nil); status != http.StatusNotFound {
		t.Errorf("unknown route: %d", status)
	}
	if got := ti.iss.Requests(oidcissuer.RouteUnknown); got != 1 {
		t.Errorf("Requests(unknown) = %d, want 1", got)
	}
}

func TestConcurrentUse(t *testing.T) {
	t.Parallel()
	ti := mustStart(t, "")
	v := verifier(t, ti, "x")
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 16 {
		wg.Go(func() {
			raw, err := fetchToken(t.Context(), ti.srv.Client(), ti.iss.NewJob(map[string]any{"run_id": "1"}), "x")
			if err != nil {
				errs <- err
				return
			}
			if _, err := v.Verify(t.Context(), raw); err != nil {
				errs <- err
			}
			if i%4 == 0 {
				if _, err := ti.iss.Rotate(oidcissuer.ES256); err != nil {
					errs <- err
				}
			}
			if _, err := ti.iss.Sign(nil, oidcissuer.WithAlg(oidcissuer.ES256)); err != nil {
				errs <- err
			}
			_ = ti.iss.Requests(oidcissuer.RouteToken)
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := ti.iss.Requests(oidcissuer.RouteToken); got != 16 {
		t.Errorf("Requests(token) = %d, want 16", got)
	}
	if got := len(ti.iss.KeyIDs()); got != 6 {
		t.Errorf("%d keys published, want 6", got)
	}
}

func TestEnviron(t *testing.T) {
	t.Parallel()
	j := oidcissuer.Job{RequestURL: "http://127.0.0.1:1/x?api-version=2.0", RequestToken: "tok"}
	want := []string{"ACTIONS_ID_TOKEN_REQUEST_URL=http://127.0.0.1:1/x?api-version=2.0", "ACTIONS_ID_TOKEN_REQUEST_TOKEN=tok"}
	if diff := cmp.Diff(want, j.Environ()); diff != "" {
		t.Errorf("Environ (-want +got):\n%s", diff)
	}
}
