package oidcverify

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// Timing of fetches that are not triggered by an unknown kid.
const (
	// retryAfterFailure is how long a failed discovery, or a failed JWKS fetch while no key is
	// cached, is remembered: requests in between fail at once (ErrUnavailable) instead of each
	// sending another request to an issuer that is down.
	retryAfterFailure = 5 * time.Second
	// keyMaxAge is how long fetched keys are used without a refetch. go-oidc refetches only on
	// an unknown kid, so a key the issuer retired (say, after a leak) would stay trusted until a
	// token with a new kid arrives; this bounds that to an hour. A failed refetch keeps the keys.
	keyMaxAge = time.Hour
	// fetchTimeout bounds one discovery or JWKS request, whatever the HTTP client's own timeout.
	fetchTimeout = 10 * time.Second
)

// publicKey is one usable key of an issuer's JWKS.
type publicKey struct {
	kid string
	alg string // RS256 or ES256: the only algorithm this key may verify
	pub crypto.PublicKey
}

// call is one fetch in flight; waiters read err once done is closed.
type call struct {
	done chan struct{}
	err  error
}

// startCall runs fetch on its own goroutine and returns the call to wait on. fetch gets a
// context that the caller's cancellation does not end, so that a caller who gives up does not
// waste the answer for everyone else; it records its result (under its owner's lock) before
// the call is done.
func startCall(ctx context.Context, fetch func(context.Context) error) *call {
	c := &call{done: make(chan struct{})}
	fctx := context.WithoutCancel(ctx)
	go func() {
		c.err = fetch(fctx)
		close(c.done)
	}()
	return c
}

// wait blocks until c is done or ctx ends.
func (c *call) wait(ctx context.Context) error {
	select {
	case <-c.done:
		return c.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// keySet is an issuer's keys: an oidc.KeySet for go-oidc's IDTokenVerifier that, unlike
// go-oidc's RemoteKeySet (which refetches on every unknown kid), refetches the JWKS on an
// unknown kid at most once per refresh interval, so garbage tokens with random kids cannot make
// the broker hammer the issuer (reference/oidc.md §3.10). A failed fetch keeps the cached keys.
type keySet struct {
	issuer  string
	url     string
	client  *http.Client
	now     func() time.Time
	refresh time.Duration // minimum interval between unknown-kid refetches

	mu             sync.Mutex
	keys           []publicKey
	loaded         bool      // a fetch has succeeded: keys holds its result
	fetchedAt      time.Time // of the last successful fetch
	lastAttempt    time.Time // start of the last fetch, whatever caused it
	lastKidRefresh time.Time // start of the last fetch caused by an unknown kid
	lastErr        error     // of the last fetch; nil once one succeeds
	inflight       *call     // concurrent needs share one request
}

// stateKey is the context key under which Verify hands its parsed token to the key set
// through go-oidc, and the key set hands back its verdict.
type stateKey struct{}

// verifyState is one verification's token and the key set's verdict on it.
type verifyState struct {
	raw      string
	jws      *jose.JSONWebSignature
	alg, kid string
	verified bool  // the signature checked out
	err      error // the key set's classified error, when it refused
}

// VerifySignature implements oidc.KeySet. go-oidc calls it after checking the algorithm;
// it must be reached only through Verifier.Verify, which put the parsed token in ctx.
func (ks *keySet) VerifySignature(ctx context.Context, raw string) ([]byte, error) {
	st, ok := ctx.Value(stateKey{}).(*verifyState)
	if !ok || st.raw != raw {
		return nil, errors.New("key set used outside Verifier.Verify")
	}
	payload, err := ks.verify(ctx, st)
	st.verified, st.err = err == nil, err
	return payload, err
}

// verify checks the token's signature against the issuer's keys, fetching them when none are
// cached, when they are older than keyMaxAge, or (rate-limited) when the token's kid is not
// among them. One verification causes at most one fetch. A bad signature under a known kid
// causes none: that is a forgery, not a rotation (go-oidc would refetch).
func (ks *keySet) verify(ctx context.Context, st *verifyState) ([]byte, error) {
	now := ks.now()
	ks.mu.Lock()
	fetched := false
	switch {
	case !ks.loaded:
		if ks.inflight == nil && ks.lastErr != nil && now.Sub(ks.lastAttempt) < retryAfterFailure {
			err := ks.lastErr
			ks.mu.Unlock()
			return nil, ks.unavailable(err)
		}
		c := ks.startLocked(ctx, now)
		ks.mu.Unlock()
		if err := c.wait(ctx); err != nil {
			return nil, ks.unavailable(err)
		}
		ks.mu.Lock()
		fetched = true
	case now.Sub(ks.fetchedAt) >= keyMaxAge && (ks.inflight != nil || now.Sub(ks.lastAttempt) >= retryAfterFailure):
		c := ks.startLocked(ctx, now)
		ks.mu.Unlock()
		if err := c.wait(ctx); err != nil && ctx.Err() != nil {
			return nil, ks.unavailable(err)
		} // any other failure keeps the cached keys
		ks.mu.Lock()
		fetched = true
	}
	keys := matching(ks.keys, st.kid)
	if len(keys) == 0 && !fetched {
		switch {
		case ks.inflight != nil || now.Sub(ks.lastKidRefresh) >= ks.refresh:
			if ks.inflight == nil {
				ks.lastKidRefresh = now
			}
			c := ks.startLocked(ctx, now)
			ks.mu.Unlock()
			if err := c.wait(ctx); err != nil {
				return nil, ks.unavailable(err)
			}
			ks.mu.Lock()
			keys = matching(ks.keys, st.kid)
		case ks.lastErr != nil:
			// The last fetch failed: the key may well exist; nobody can tell now.
			err := ks.lastErr
			ks.mu.Unlock()
			return nil, ks.unavailable(err)
		}
	}
	ks.mu.Unlock()

	if len(keys) == 0 {
		return nil, invalidf("signing key %s is not among the keys of issuer %s", quote(st.kid), quote(ks.issuer))
	}
	wrongAlg := 0
	for _, k := range keys {
		if k.alg != st.alg {
			wrongAlg++
			continue
		}
		if payload, err := st.jws.Verify(k.pub); err == nil {
			return payload, nil
		}
	}
	if wrongAlg == len(keys) {
		return nil, invalidf("signing key %s is not an %s key", quote(st.kid), st.alg)
	}
	return nil, invalidf("signature does not verify with key %s of issuer %s", quote(st.kid), quote(ks.issuer))
}

// matching returns the keys with the token's kid; a token without kid may be verified by any.
func matching(keys []publicKey, kid string) []publicKey {
	if kid == "" {
		return keys
	}
	for i, k := range keys {
		if k.kid == kid {
			// kids are unique within a set in practice; keep every match all the same.
			out := []publicKey{k}
			for _, k2 := range keys[i+1:] {
				if k2.kid == kid {
					out = append(out, k2)
				}
			}
			return out
		}
	}
	return nil
}

func (ks *keySet) unavailable(err error) error {
	return &unavailableError{what: "fetching the keys of issuer " + quote(ks.issuer), cause: err}
}

// startLocked starts a fetch (see startCall), or joins the one in flight. Callers hold ks.mu.
func (ks *keySet) startLocked(ctx context.Context, now time.Time) *call {
	if ks.inflight != nil {
		return ks.inflight
	}
	ks.lastAttempt = now
	ks.inflight = startCall(ctx, func(fctx context.Context) error {
		keys, err := ks.fetch(fctx)
		ks.mu.Lock()
		defer ks.mu.Unlock()
		ks.inflight = nil
		if err == nil {
			ks.keys, ks.loaded, ks.fetchedAt, ks.lastErr = keys, true, now, nil
		} else {
			ks.lastErr = err
		}
		return err
	})
	return ks.inflight
}

// fetch GETs the JWKS and returns its usable keys.
func (ks *keySet) fetch(ctx context.Context) ([]publicKey, error) {
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, ks.url, nil)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", ks.url, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := ks.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", ks.url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("GET %s: read: %w", ks.url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: status %d", ks.url, resp.StatusCode)
	}
	keys, err := parseJWKS(body)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", ks.url, err)
	}
	return keys, nil
}

// parseJWKS reads a JWK Set (RFC 7517 §5) and keeps the keys that can verify RS256 (RSA, at
// least 2048 bits) or ES256 (P-256) signatures. Keys of other types, algorithms or uses are
// skipped, as RFC 7517 §5 says to ignore what is not understood; a set with no usable key is
// an error, so that the keys cached before it stay in use.
func parseJWKS(body []byte) ([]publicKey, error) {
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &set); err != nil {
		return nil, fmt.Errorf("JWKS is not a JSON key set: %w", err)
	}
	var out []publicKey
	for _, raw := range set.Keys {
		var meta struct {
			Alg string `json:"alg"`
			Use string `json:"use"`
		}
		if json.Unmarshal(raw, &meta) != nil || (meta.Use != "" && meta.Use != "sig") {
			continue
		}
		var k jose.JSONWebKey
		if k.UnmarshalJSON(raw) != nil || !k.Valid() || !k.IsPublic() {
			continue
		}
		var alg string
		switch pub := k.Key.(type) {
		case *rsa.PublicKey:
			if pub.N.BitLen() < 2048 {
				continue
			}
			alg = "RS256"
		case *ecdsa.PublicKey:
			if pub.Curve != elliptic.P256() {
				continue
			}
			alg = "ES256"
		default:
			continue
		}
		if meta.Alg != "" && meta.Alg != alg {
			continue
		}
		out = append(out, publicKey{kid: k.KeyID, alg: alg, pub: k.Key})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("JWKS holds no usable RS256 or ES256 key (of %d)", len(set.Keys))
	}
	return out, nil
}
