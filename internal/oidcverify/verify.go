// Package oidcverify answers the broker's question "who is this caller?": it verifies a CI
// job's OIDC token (a JWT) against a fixed set of trusted issuers and returns the token's
// identity and claims, or says why the token is refused.
//
// Discovery and the signature, iss and aud checks are go-oidc's (v3); the algorithm pin
// (RS256 and ES256 only), the time checks with a bounded leeway, the required jti and the
// replay cache are done here, as are the key fetches, which are cached and rate-limited
// (reference/oidc.md §3, §6). Checks run in an order that never sends a request for garbage:
// size, shape, algorithm and a trusted iss are established before any issuer is contacted.
package oidcverify

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// Defaults and bounds of Config.
const (
	// DefaultLeeway is the clock skew allowed on exp, nbf and iat; it is also the most allowed
	// (reference/oidc.md §3.8: 30-60 s).
	DefaultLeeway = 60 * time.Second
	// DefaultMaxTokenSize is the largest token accepted, in bytes; GitHub's are about 1.2 KiB.
	DefaultMaxTokenSize = 16 << 10
	// DefaultReplayCacheSize is how many (iss, jti) pairs are remembered at most.
	DefaultReplayCacheSize = 100_000
	// DefaultKeyRefresh is the least time between two JWKS refetches that unknown kids cause.
	DefaultKeyRefresh = time.Minute

	maxMaxTokenSize    = 64 << 10
	maxReplayCacheSize = 10_000_000
	minKeyRefresh      = time.Second
)

// acceptedAlgs are the only signature algorithms taken (reference/oidc.md §3.7: GitHub signs
// RS256; ES256 for issuers with EC keys). Never none, HS*, PS*.
var acceptedAlgs = []jose.SignatureAlgorithm{jose.RS256, jose.ES256}

// Config configures a Verifier.
type Config struct {
	// Issuers are the trusted issuer URLs, each exactly as its tokens' iss says it (GitHub's
	// is https://token.actions.githubusercontent.com, no trailing slash). https, or http to a
	// loopback host for a local issuer.
	Issuers []string
	// Audience is the aud a token must carry (as a string, or in an array): the broker's own
	// identifier.
	Audience string
	// HTTP is the client for discovery and JWKS requests; required. Its transport and timeout
	// are used; redirects are never followed and response bodies are capped at 1 MiB.
	HTTP *http.Client
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Leeway is the clock skew allowed on exp, nbf and iat: 0 means DefaultLeeway, which is
	// also the maximum.
	Leeway time.Duration
	// MaxTokenSize is the largest token accepted, in bytes: 0 means DefaultMaxTokenSize; at
	// most 64 KiB.
	MaxTokenSize int
	// ReplayCacheSize bounds the replay cache: 0 means DefaultReplayCacheSize; at most 10^7.
	ReplayCacheSize int
	// KeyRefresh is the least time between two JWKS refetches caused by tokens whose kid is
	// unknown, per issuer: 0 means DefaultKeyRefresh; at least 1 s.
	KeyRefresh time.Duration
}

// Verifier verifies OIDC tokens. It is safe for concurrent use; create one with New.
type Verifier struct {
	audience string
	now      func() time.Time
	leeway   time.Duration
	maxSize  int
	issuers  map[string]*issuer // by exact iss; immutable after New
	replay   *replayCache
}

// Identity is a verified token: who the caller is, and every claim the token carries.
type Identity struct {
	// Issuer, Subject and JTI are the token's iss, sub ("" if absent) and jti.
	Issuer, Subject, JTI string
	// IssuedAt, NotBefore (zero if absent) and Expiry are the token's iat, nbf and exp, UTC.
	IssuedAt, NotBefore, Expiry time.Time
	// Claims holds every claim, JSON numbers as json.Number.
	Claims map[string]any
}

// New checks cfg and returns a Verifier. It makes no request: each issuer is discovered on
// first use.
func New(cfg Config) (*Verifier, error) {
	if cfg.HTTP == nil {
		return nil, errors.New("oidc verifier: an HTTP client is required")
	}
	if cfg.Audience == "" || strings.ContainsFunc(cfg.Audience, func(r rune) bool { return r < 0x21 || r == 0x7f }) {
		return nil, fmt.Errorf("oidc verifier: audience %s must be non-empty, without spaces or control characters", quote(cfg.Audience))
	}
	if len(cfg.Issuers) == 0 {
		return nil, errors.New("oidc verifier: no trusted issuers")
	}
	v := &Verifier{
		audience: cfg.Audience,
		now:      cfg.Now,
		leeway:   cfg.Leeway,
		maxSize:  cfg.MaxTokenSize,
		issuers:  map[string]*issuer{},
	}
	if v.now == nil {
		v.now = time.Now
	}
	switch {
	case v.leeway == 0:
		v.leeway = DefaultLeeway
	case v.leeway < 0 || v.leeway > DefaultLeeway:
		return nil, fmt.Errorf("oidc verifier: leeway %v is not between 0 and %v", cfg.Leeway, DefaultLeeway)
	}
	switch {
	case v.maxSize == 0:
		v.maxSize = DefaultMaxTokenSize
	case v.maxSize < 0 || v.maxSize > maxMaxTokenSize:
		return nil, fmt.Errorf("oidc verifier: max token size %d is not between 1 and %d", cfg.MaxTokenSize, maxMaxTokenSize)
	}
	size := cfg.ReplayCacheSize
	switch {
	case size == 0:
		size = DefaultReplayCacheSize
	case size < 0 || size > maxReplayCacheSize:
		return nil, fmt.Errorf("oidc verifier: replay cache size %d is not between 1 and %d", size, maxReplayCacheSize)
	}
	refresh := cfg.KeyRefresh
	switch {
	case refresh == 0:
		refresh = DefaultKeyRefresh
	case refresh < minKeyRefresh:
		return nil, fmt.Errorf("oidc verifier: key refresh %v is less than %v", refresh, minKeyRefresh)
	}
	client := fetchClient(cfg.HTTP)
	for _, u := range cfg.Issuers {
		if err := checkIssuer(u); err != nil {
			return nil, fmt.Errorf("oidc verifier: issuer %w", err)
		}
		if v.issuers[u] != nil {
			return nil, fmt.Errorf("oidc verifier: issuer %s is listed twice", quote(u))
		}
		v.issuers[u] = &issuer{url: u, audience: cfg.Audience, client: client, now: v.now, keyRefresh: refresh}
	}
	v.replay = newReplayCache(size)
	return v, nil
}

// checkIssuer accepts an issuer identifier: a fetchable URL (checkFetchURL) with no query or
// fragment (OIDC Discovery §3: the issuer is https with no query or fragment).
func checkIssuer(s string) error {
	if err := checkFetchURL(s); err != nil {
		return err
	}
	u, _ := url.Parse(s)
	if u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
		return fmt.Errorf("%s must not have a query or fragment", quote(s))
	}
	return nil
}

// Verify verifies raw, an OIDC token, and returns its identity. Its checks run in this order,
// the first failure deciding the error: size; compact JWS form; header alg RS256 or ES256
// (keys are never taken from jwk, jku or x5u headers); iss one of the trusted issuers (only
// then is that issuer contacted); signature (go-oidc, against the issuer's keys); iss and aud
// (go-oidc); exp (required), nbf, iat (required), each with the leeway; jti (required); and
// last the replay check, which accepts each (iss, jti) once. A token fault matches ErrInvalid
// (a replay ErrReplay too), an issuer that cannot be reached ErrUnavailable.
func (v *Verifier) Verify(ctx context.Context, raw string) (*Identity, error) {
	if len(raw) > v.maxSize {
		return nil, invalidf("token is %d bytes, more than the %d accepted", len(raw), v.maxSize)
	}
	st, claims, err := parse(raw)
	if err != nil {
		return nil, err
	}
	iss, ok := claims["iss"].(string)
	if !ok {
		return nil, invalidf("token has no iss")
	}
	is := v.issuers[iss]
	if is == nil {
		return nil, invalidf("issuer %s is not trusted", quote(iss))
	}

	idv, err := is.ready(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := idv.Verify(context.WithValue(ctx, stateKey{}, st), raw); err != nil {
		if st.err != nil {
			return nil, st.err // the key set's verdict, already classified
		}
		if !st.verified {
			return nil, invalidf("token is malformed")
		}
		return nil, v.claimFault(claims)
	}
	return v.checkClaims(iss, claims)
}

// parse decodes a compact JWS without verifying it: the header's alg and kid, and the claims
// (numbers as json.Number). It refuses any algorithm but RS256 and ES256, and a crit header.
func parse(raw string) (*verifyState, map[string]any, error) {
	parts := strings.Split(raw, ".")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" {
		return nil, nil, invalidf("token is not a compact JWS (three parts separated by dots)")
	}
	// Only the base64url alphabet: Go's decoder would skip newlines, go-jose strips spaces.
	if strings.ContainsFunc(raw, func(r rune) bool {
		return !(r == '.' || r == '-' || r == '_' || 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9')
	}) {
		return nil, nil, invalidf("token holds characters outside base64url")
	}
	hb, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		return nil, nil, invalidf("token header is not base64url")
	}
	var header struct {
		Alg  *string         `json:"alg"`
		Kid  *string         `json:"kid"`
		Crit json.RawMessage `json:"crit"`
	}
	if err := json.Unmarshal(hb, &header); err != nil {
		return nil, nil, invalidf("token header is not a JSON object with string alg and kid")
	}
	if header.Alg == nil {
		return nil, nil, invalidf("token header has no alg")
	}
	if alg := *header.Alg; !slices.Contains(acceptedAlgs, jose.SignatureAlgorithm(alg)) {
		return nil, nil, invalidf("signature algorithm %s is not accepted (only RS256 and ES256 are)", quote(alg))
	}
	if header.Crit != nil {
		return nil, nil, invalidf("token header has crit, which is not accepted")
	}
	if parts[2] == "" {
		return nil, nil, invalidf("token is not signed")
	}
	pb, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil, nil, invalidf("token claims are not base64url")
	}
	claims, err := decodeClaims(pb)
	if err != nil {
		return nil, nil, invalidf("token claims are not a JSON object")
	}
	jws, err := jose.ParseSignedCompact(raw, acceptedAlgs)
	if err != nil || len(jws.Signatures) != 1 {
		return nil, nil, invalidf("token is malformed")
	}
	st := &verifyState{raw: raw, jws: jws, alg: *header.Alg}
	if header.Kid != nil {
		st.kid = *header.Kid
	}
	return st, claims, nil
}

// decodeClaims decodes one JSON object, numbers as json.Number, and nothing after it.
func decodeClaims(b []byte) (map[string]any, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		return nil, err
	}
	if m == nil {
		return nil, errors.New("null")
	}
	if _, err := d.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("data after the object")
	}
	return m, nil
}

// claimFault explains why go-oidc refused a token whose signature it had verified: its aud,
// or a claim of the wrong type (its iss cannot differ: Verify chose the issuer by it).
func (v *Verifier) claimFault(claims map[string]any) error {
	aud, ok := audience(claims["aud"])
	if !ok {
		return invalidf("claim aud is not a string or an array of strings")
	}
	if !slices.Contains(aud, v.audience) {
		shown := make([]string, 0, 3)
		for _, a := range aud[:min(len(aud), 3)] {
			shown = append(shown, quote(a))
		}
		if len(aud) > 3 {
			shown = append(shown, "...")
		}
		if len(aud) == 0 {
			return invalidf("token has no audience")
		}
		return invalidf("audience %s is not this broker's", strings.Join(shown, ", "))
	}
	for _, k := range []string{"exp", "iat", "nbf"} {
		if c, ok := claims[k]; ok {
			if _, isNum := c.(json.Number); !isNum {
				return invalidf("claim %s is not a number", k)
			}
		}
	}
	if c, ok := claims["sub"]; ok {
		if _, isStr := c.(string); !isStr {
			return invalidf("claim sub is not a string")
		}
	}
	return invalidf("token claims are malformed")
}

// audience reads aud, a string or an array of strings (RFC 7519 §4.1.3).
func audience(c any) ([]string, bool) {
	switch a := c.(type) {
	case nil:
		return nil, true
	case string:
		return []string{a}, true
	case []any:
		out := make([]string, 0, len(a))
		for _, e := range a {
			s, ok := e.(string)
			if !ok {
				return nil, false
			}
			out = append(out, s)
		}
		return out, true
	}
	return nil, false
}

// checkClaims runs the checks after go-oidc's: the times with the leeway, jti, and replay.
func (v *Verifier) checkClaims(iss string, claims map[string]any) (*Identity, error) {
	now := v.now()
	exp, err := requiredDate(claims, "exp")
	if err != nil {
		return nil, err
	}
	if now.After(exp.Add(v.leeway)) {
		return nil, invalidf("token expired at %s", exp.Format(time.RFC3339))
	}
	nbf, err := numericDate(claims, "nbf")
	if err != nil {
		return nil, err
	}
	if !nbf.IsZero() && now.Before(nbf.Add(-v.leeway)) {
		return nil, invalidf("token is not valid before %s", nbf.Format(time.RFC3339))
	}
	iat, err := requiredDate(claims, "iat")
	if err != nil {
		return nil, err
	}
	if iat.After(now.Add(v.leeway)) {
		return nil, invalidf("token was issued in the future (iat %s)", iat.Format(time.RFC3339))
	}
	jti, _ := claims["jti"].(string)
	if jti == "" {
		return nil, invalidf("token has no jti")
	}
	if !v.replay.claim(iss, jti, exp.Add(v.leeway), now) {
		return nil, &tokenError{class: ErrReplay, reason: "token was already exchanged (replayed jti)"}
	}
	sub, _ := claims["sub"].(string)
	return &Identity{
		Issuer: iss, Subject: sub, JTI: jti,
		IssuedAt: iat, NotBefore: nbf, Expiry: exp,
		Claims: claims,
	}, nil
}

// Release forgets that the token of id was accepted, so that the same token may be verified
// (and exchanged) once more. The broker calls it when an exchange fails on its side before
// anything was handed out — Cloudflare answered 5xx, the mint failed — so that the job can
// retry with the OIDC token it has (a GitLab or CircleCI job gets one per job, not one per
// request). A refusal of the caller's request must not call it: the token stays used up.
func (v *Verifier) Release(id *Identity) {
	if id == nil || id.JTI == "" {
		return
	}
	v.replay.release(id.Issuer, id.JTI)
}

// requiredDate is numericDate for a claim the token must carry.
func requiredDate(claims map[string]any, k string) (time.Time, error) {
	t, err := numericDate(claims, k)
	if err == nil && t.IsZero() {
		return t, invalidf("token has no %s", k)
	}
	return t, err
}

// numericDate reads claim k, a NumericDate (RFC 7519 §2: seconds since the epoch, possibly
// with a fraction), as UTC; the zero time when absent.
func numericDate(claims map[string]any, k string) (time.Time, error) {
	c, ok := claims[k]
	if !ok {
		return time.Time{}, nil
	}
	n, ok := c.(json.Number)
	if !ok {
		return time.Time{}, invalidf("claim %s is not a number", k)
	}
	// Up to the year 9999; beyond, or negative, is no date a CI system sets.
	const maxSeconds = 253402300799
	if i, err := n.Int64(); err == nil {
		if i < 0 || i > maxSeconds {
			return time.Time{}, invalidf("claim %s is out of range", k)
		}
		return time.Unix(i, 0).UTC(), nil
	}
	f, err := n.Float64()
	if err != nil || f < 0 || f > maxSeconds || math.IsNaN(f) {
		return time.Time{}, invalidf("claim %s is out of range", k)
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)).UTC(), nil
}
