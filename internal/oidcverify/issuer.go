package oidcverify

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
)

// issuer is one trusted issuer: its discovery, done lazily on first use and then cached, and
// the go-oidc verifier over its key set.
type issuer struct {
	url        string
	audience   string
	client     *http.Client
	now        func() time.Time
	keyRefresh time.Duration

	mu          sync.Mutex
	verifier    *oidc.IDTokenVerifier // nil until discovery succeeds
	inflight    *call
	lastAttempt time.Time
	lastErr     error
}

// ready returns the issuer's verifier, discovering it first if need be. A failed discovery is
// retried on a later call, but not within retryAfterFailure of the last attempt.
func (is *issuer) ready(ctx context.Context) (*oidc.IDTokenVerifier, error) {
	now := is.now()
	is.mu.Lock()
	if v := is.verifier; v != nil {
		is.mu.Unlock()
		return v, nil
	}
	if is.inflight == nil && is.lastErr != nil && now.Sub(is.lastAttempt) < retryAfterFailure {
		err := is.lastErr
		is.mu.Unlock()
		return nil, is.unavailable(err)
	}
	c := is.inflight
	if c == nil {
		is.lastAttempt = now
		// The caller holds is.mu until is.inflight is set: the discovery cannot clear it first.
		c = startCall(ctx, func(fctx context.Context) error {
			v, err := is.discover(fctx)
			is.mu.Lock()
			defer is.mu.Unlock()
			is.inflight = nil
			is.verifier, is.lastErr = v, err
			return err
		})
		is.inflight = c
	}
	is.mu.Unlock()
	if err := c.wait(ctx); err != nil {
		return nil, is.unavailable(err)
	}
	is.mu.Lock()
	defer is.mu.Unlock()
	return is.verifier, nil
}

func (is *issuer) unavailable(err error) error {
	return &unavailableError{what: "discovery of issuer " + quote(is.url), cause: err}
}

// discover fetches the issuer's discovery document with go-oidc (which requires its issuer to
// equal the configured URL exactly, reference/oidc.md §6) and builds a verifier that takes the
// keys from the document's jwks_uri through a rate-limited keySet.
func (is *issuer) discover(ctx context.Context) (*oidc.IDTokenVerifier, error) {
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	p, err := oidc.NewProvider(oidc.ClientContext(ctx, is.client), is.url)
	if err != nil {
		return nil, err
	}
	var meta struct {
		JWKSURI string `json:"jwks_uri"`
	}
	if err := p.Claims(&meta); err != nil {
		return nil, fmt.Errorf("read discovery document: %w", err)
	}
	if meta.JWKSURI == "" {
		return nil, fmt.Errorf("discovery document has no jwks_uri")
	}
	if err := checkFetchURL(meta.JWKSURI); err != nil {
		return nil, fmt.Errorf("jwks_uri: %w", err)
	}
	ks := &keySet{issuer: is.url, url: meta.JWKSURI, client: is.client, now: is.now, refresh: is.keyRefresh}
	return oidc.NewVerifier(is.url, ks, &oidc.Config{
		ClientID:             is.audience,
		SupportedSigningAlgs: []string{oidc.RS256, oidc.ES256},
		// go-oidc's exp check has no leeway and its nbf check a fixed 5 minutes; Verify checks
		// exp, nbf and iat itself, with the configured leeway (reference/oidc.md §3.8, §6).
		SkipExpiryCheck: true,
	}), nil
}
