package oidcissuer

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"maps"
	"strings"
	"time"
)

// Token timing, as GitHub's tokens show it (reference/oidc.md §2, "Timing"): valid for 5
// minutes, not-before back-dated by 5 minutes.
const (
	lifetime = 300 * time.Second
	backdate = 300 * time.Second
)

// DefaultClaims returns the claims of a token for a push to main of acme/site-deploy, deploying
// to its production environment: the realistic payload of reference/oidc.md §2 without the
// claims each token sets for itself (iss, aud, jti, iat, nbf, exp). Every custom claim is a
// JSON string, as GitHub's are. The map is fresh: callers may change it.
func DefaultClaims() map[string]any {
	return map[string]any{
		"sub":                   "repo:acme/site-deploy:environment:production",
		"actor":                 "alice",
		"actor_id":              "583231",
		"base_ref":              "",
		"head_ref":              "",
		"check_run_id":          "56363837828",
		"environment":           "production",
		"event_name":            "push",
		"job_workflow_ref":      "acme/site-deploy/.github/workflows/deploy.yml@refs/heads/main",
		"job_workflow_sha":      "15a5ebfa3fb5ddf10c4b4250e14496bec7f03a56",
		"ref":                   "refs/heads/main",
		"ref_protected":         "true",
		"ref_type":              "branch",
		"repository":            "acme/site-deploy",
		"repository_id":         "1104004353",
		"repository_owner":      "acme",
		"repository_owner_id":   "46576199",
		"repository_visibility": "private",
		"run_attempt":           "1",
		"run_id":                "19677834613",
		"run_number":            "42",
		"runner_environment":    "github-hosted",
		"sha":                   "15a5ebfa3fb5ddf10c4b4250e14496bec7f03a56",
		"workflow":              "Deploy site",
		"workflow_ref":          "acme/site-deploy/.github/workflows/deploy.yml@refs/heads/main",
		"workflow_sha":          "15a5ebfa3fb5ddf10c4b4250e14496bec7f03a56",
	}
}

// claims builds a token's claims: the defaults, iss, a fresh jti, iat = now, nbf = now - 5 min,
// exp = now + 5 min, then overrides (a nil value removes the claim). aud is overrides' aud if
// it has one, else audience, else GitHub's default https://github.com/<owner>. sub, unless
// overrides set it, follows GitHub's default template from the merged claims, so that
// removing environment or changing ref changes it as GitHub's would.
func (iss *Issuer) claims(overrides map[string]any, audience string) map[string]any {
	now := iss.now().Unix()
	c := DefaultClaims()
	c["iss"] = iss.url
	c["jti"] = newUUID()
	c["iat"] = now
	c["nbf"] = now - int64(backdate/time.Second)
	c["exp"] = now + int64(lifetime/time.Second)
	for k, v := range overrides {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	if _, ok := overrides["sub"]; !ok {
		c["sub"] = defaultSubject(c)
	}
	if _, ok := overrides["aud"]; !ok {
		if audience == "" {
			owner, _ := c["repository_owner"].(string)
			audience = "https://github.com/" + owner
		}
		c["aud"] = audience
	}
	return c
}

// defaultSubject is GitHub's default sub template (reference/oidc.md §2, "sub formats"): the
// first of environment, pull_request event, ref; a ':' inside a value is written %3A.
func defaultSubject(c map[string]any) string {
	str := func(k string) string {
		s, _ := c[k].(string)
		return strings.ReplaceAll(s, ":", "%3A")
	}
	repo := "repo:" + str("repository")
	switch {
	case str("environment") != "":
		return repo + ":environment:" + str("environment")
	case str("event_name") == "pull_request":
		return repo + ":pull_request"
	default:
		return repo + ":ref:" + str("ref")
	}
}

// SignOption changes how Sign signs.
type SignOption func(*signConfig)

type signMode int

const (
	signNormal      signMode = iota
	signNone                 // alg none, empty signature
	signHS256PEM             // HS256 keyed with the public key's PEM
	signUnpublished          // a key that is not in the JWKS
)

type signConfig struct {
	alg    Alg
	kid    *string        // nil: the signing key's kid; "": no kid header
	header map[string]any // extra header fields; a nil value removes a field
	mode   signMode
}

// WithAlg picks the algorithm (default RS256, as GitHub signs): the current key of alg signs.
func WithAlg(alg Alg) SignOption { return func(c *signConfig) { c.alg = alg } }

// WithKeyID sets the kid header to kid instead of the signing key's; "" leaves kid out.
func WithKeyID(kid string) SignOption { return func(c *signConfig) { c.kid = &kid } }

// WithHeader sets one more header field (jku, x5u, jwk, crit, typ, …), or removes one (typ,
// kid) when value is nil.
func WithHeader(name string, value any) SignOption {
	return func(c *signConfig) {
		if c.header == nil {
			c.header = map[string]any{}
		}
		c.header[name] = value
	}
}

// AlgNone makes an unsecured token: header alg "none" and an empty signature (RFC 7519 §6).
// The kid is the current key's, as an attacker would copy it.
func AlgNone() SignOption { return func(c *signConfig) { c.mode = signNone } }

// HS256WithPublicKey makes the classic algorithm-confusion token: alg HS256, the HMAC keyed with
// the PEM ("PUBLIC KEY" block) of the current key of the chosen algorithm, the bytes a verifier
// that lets the token pick the algorithm would use as the secret.
func HS256WithPublicKey() SignOption { return func(c *signConfig) { c.mode = signHS256PEM } }

// WithUnpublishedKey signs with a key of the chosen algorithm that is not in the JWKS. The kid
// header is still the current published key's (change it with WithKeyID), so a verifier finds
// a key by kid and must refuse the signature.
func WithUnpublishedKey() SignOption { return func(c *signConfig) { c.mode = signUnpublished } }

// Sign signs a token made of the default claims and claims (as for the ID-token endpoint: a nil
// value removes a claim, aud defaults to https://github.com/<owner>), with a header shaped like
// GitHub's: {"alg", "kid", "typ":"JWT"}. Options pick the algorithm and make hostile forms.
func (iss *Issuer) Sign(claims map[string]any, opts ...SignOption) (string, error) {
	cfg := signConfig{alg: RS256}
	for _, o := range opts {
		o(&cfg)
	}
	return iss.sign(iss.claims(claims, ""), cfg)
}

// sign encodes and signs a token with the given, complete, claims.
func (iss *Issuer) sign(claims map[string]any, cfg signConfig) (string, error) {
	key, err := iss.currentKey(cfg.alg)
	if err != nil {
		return "", err
	}
	kid := key.kid
	if cfg.mode == signUnpublished {
		if key, err = iss.foreignKey(cfg.alg); err != nil {
			return "", err
		}
	}
	if cfg.kid != nil {
		kid = *cfg.kid
	}
	header := map[string]any{"alg": string(cfg.alg), "typ": "JWT"}
	switch cfg.mode {
	case signNone:
		header["alg"] = "none"
	case signHS256PEM:
		header["alg"] = "HS256"
	}
	if kid != "" {
		header["kid"] = kid
	}
	maps.Copy(header, cfg.header)
	maps.DeleteFunc(header, func(_ string, v any) bool { return v == nil })

	h, err := json.Marshal(header)
	if err != nil {
		return "", fmt.Errorf("oidc issuer: encode header: %w", err)
	}
	p, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("oidc issuer: encode claims: %w", err)
	}
	b64 := base64.RawURLEncoding.EncodeToString
	input := b64(h) + "." + b64(p)
	sig, err := signature(input, key, cfg.mode)
	if err != nil {
		return "", err
	}
	return input + "." + b64(sig), nil
}

// signature signs the JWS signing input (RFC 7515 §5.1) as mode and the key's algorithm say.
func signature(input string, key *signingKey, mode signMode) ([]byte, error) {
	digest := sha256.Sum256([]byte(input))
	switch mode {
	case signNone:
		return nil, nil
	case signHS256PEM:
		der, err := x509.MarshalPKIXPublicKey(key.priv.Public())
		if err != nil {
			return nil, fmt.Errorf("oidc issuer: encode public key: %w", err)
		}
		mac := hmac.New(sha256.New, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
		mac.Write([]byte(input))
		return mac.Sum(nil), nil
	}
	switch priv := key.priv.(type) {
	case *rsa.PrivateKey:
		sig, err := rsa.SignPKCS1v15(rand.Reader, priv, crypto.SHA256, digest[:])
		if err != nil {
			return nil, fmt.Errorf("oidc issuer: sign RS256: %w", err)
		}
		return sig, nil
	case *ecdsa.PrivateKey:
		// JWS wants R || S, each 32 bytes (RFC 7518 §3.4), not the ASN.1 form.
		r, s, err := ecdsa.Sign(rand.Reader, priv, digest[:])
		if err != nil {
			return nil, fmt.Errorf("oidc issuer: sign ES256: %w", err)
		}
		sig := make([]byte, 64)
		r.FillBytes(sig[:32])
		s.FillBytes(sig[32:])
		return sig, nil
	default:
		return nil, fmt.Errorf("oidc issuer: unexpected key type %T", key.priv)
	}
}
