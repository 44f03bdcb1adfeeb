package oidcverify_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/cf-scoped-token/cf-scoped-token/internal/oidcissuer"
	"github.com/cf-scoped-token/cf-scoped-token/internal/oidcverify"
)

// FuzzVerify: anyone on the internet can send the broker a token. Whatever it holds — any
// header, any claims of any type, signed by the trusted issuer's key or not — Verify must
// not panic, must refuse it as a token fault (ErrInvalid; the issuer is up, so never
// ErrUnavailable) unless it is a good token, and no error may show the token or a part of
// it, or a control character: the message reaches the audit log and the caller. A token it
// accepts is one the broker may act on: from the trusted issuer, for the broker's audience,
// with a jti, and within its time window (exp not past, nbf and iat not ahead, each by the
// leeway at most) on the verifier's clock.
//
// signed: header and claims are JSON objects that the local issuer merges into its
// GitHub-shaped header and default claims and signs with its published key, which reaches
// the claim checks behind the signature; otherwise they are the token's first two parts as
// they are, with a signature no key made.
func FuzzVerify(f *testing.F) {
	for _, seed := range []struct {
		header, claims string
		signed         bool
	}{
		{`{}`, `{}`, true},
		{`{"alg":"RS256","kid":"k1","typ":"JWT"}`, `{"iss":"x","aud":"y"}`, false},
		{`{"crit":["exp"]}`, `{}`, true},
		{`{"jku":"http://127.0.0.1:1/jwks","jwk":{"kty":"RSA"}}`, `{}`, true},
		{`{"alg":"none"}`, `{}`, true},
		{`{}`, `{"exp":"tomorrow","iat":null}`, true},
		{`{}`, `{"aud":[["` + aud + `"]],"jti":7}`, true},
		{`{}`, `{"nbf":1e400,"exp":-1}`, true},
		{`{}`, `{"sub":"repo:a/b\n::error::x","jti":"\u0000"}`, true},
		{`{}`, `{"iss":"https://evil.example\r\n"}`, true},
		{`{"kid":"\u2028"}`, `[]`, false},
		{`null`, `null`, false},
		// Expired an hour ago, and within the leeway: refused, and taken.
		{`{}`, fmt.Sprintf(`{"exp":%d}`, t0.Add(-time.Hour).Unix()), true},
		{`{}`, fmt.Sprintf(`{"exp":%d,"nbf":%d,"iat":%d}`, t0.Add(-oidcverify.DefaultLeeway/2).Unix(),
			t0.Add(oidcverify.DefaultLeeway/2).Unix(), t0.Add(oidcverify.DefaultLeeway/2).Unix()), true},
		{`{}`, fmt.Sprintf(`{"aud":["https://other.example",%q]}`, aud), true},
	} {
		f.Add([]byte(seed.header), []byte(seed.claims), seed.signed)
	}
	e := mustEnv(f)
	f.Fuzz(func(t *testing.T, header, claims []byte, signed bool) {
		raw := b64(header) + "." + b64(claims) + "." + b64([]byte("not a signature"))
		if signed {
			var ok bool
			if raw, ok = signFuzzed(e.iss, header, claims); !ok {
				return
			}
		}
		id, err := e.v.Verify(t.Context(), raw)
		assertSafeMessage(t, err, raw)
		if err != nil {
			if !errors.Is(err, oidcverify.ErrInvalid) {
				t.Fatalf("Verify = %v (%s), want a token fault", err, class(err))
			}
			return
		}
		if !signed {
			t.Fatal("Verify accepted a token that no key signed")
		}
		if id.Issuer != e.iss.URL() || id.JTI == "" || id.Expiry.IsZero() || id.IssuedAt.IsZero() {
			t.Fatalf("Verify accepted a token with iss %q, jti %q, exp %v, iat %v", id.Issuer, id.JTI, id.Expiry, id.IssuedAt)
		}
		// mustEnv leaves Config.Leeway zero: DefaultLeeway.
		now, leeway := e.now.Now(), oidcverify.DefaultLeeway
		if id.Expiry.Add(leeway).Before(now) {
			t.Fatalf("Verify accepted a token that expired at %v, at %v", id.Expiry, now)
		}
		if id.NotBefore.After(now.Add(leeway)) || id.IssuedAt.After(now.Add(leeway)) {
			t.Fatalf("Verify accepted, at %v, a token with nbf %v and iat %v", now, id.NotBefore, id.IssuedAt)
		}
		if !holdsAudience(id.Claims["aud"], aud) {
			t.Fatalf("Verify accepted a token with aud %#v, not for %s", id.Claims["aud"], aud)
		}
	})
}

// signFuzzed signs claims (a JSON object, numbers kept as they are written, over the
// broker's audience and the issuer's defaults) with header's fields added; false when
// either is not a JSON object the issuer can encode.
func signFuzzed(iss *oidcissuer.Issuer, header, claims []byte) (string, bool) {
	var h, c map[string]any
	if decodeNumbers(header, &h) != nil || decodeNumbers(claims, &c) != nil || h == nil || c == nil {
		return "", false
	}
	opts := make([]oidcissuer.SignOption, 0, len(h))
	for k, v := range h {
		if v != nil { // nil would remove the field, which the issuer's own options test
			opts = append(opts, oidcissuer.WithHeader(k, v))
		}
	}
	all := map[string]any{"aud": aud}
	for k, v := range c {
		all[k] = v
	}
	raw, err := iss.Sign(all, opts...)
	return raw, err == nil
}

// holdsAudience reports whether an aud claim, a string or an array of them, names want.
func holdsAudience(claim any, want string) bool {
	switch a := claim.(type) {
	case string:
		return a == want
	case []any:
		return slices.Contains(a, any(want))
	}
	return false
}

func decodeNumbers(b []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	return d.Decode(v)
}
