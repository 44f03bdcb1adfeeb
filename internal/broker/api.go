package broker

import (
	"context"
	"sync"
	"time"

	"github.com/cf-scoped-token/cf-scoped-token/internal/mint"
	"github.com/cf-scoped-token/cf-scoped-token/internal/token"
)

// API is what the broker needs of Cloudflare's token endpoints: what the
// lifecycle needs (mint.API), whose VerifyToken also gives revoke the id of
// a token a job presents. *cloudflare.Client implements it.
type API interface {
	mint.API
}

// catalogueTTL is how long a permission-group list is used before it is
// fetched again (SPEC: the catalogue is cached). A reload fetches it anew.
const catalogueTTL = time.Hour

// ownAPI is the broker's view of the API, given to the lifecycle: the
// token list shows only tokens whose name this broker's namer made, and
// the permission-group list is cached. The lifecycle lists tokens to find
// one whose create answer was lost (by its own unique name, which passes)
// and, at the token quota, to sweep expired tool tokens to make room: so
// that sweep, like the broker's own, never deletes a token this broker did
// not make — one the action made with the same parent, or another broker.
type ownAPI struct {
	API
	namer *namer
	now   func() time.Time

	mu     sync.Mutex
	groups map[token.Endpoint]catalogue
}

type catalogue struct {
	groups  []token.PermissionGroup
	fetched time.Time
}

// ListTokens lists the endpoint's tokens this broker made.
func (a *ownAPI) ListTokens(ctx context.Context, ep token.Endpoint) ([]token.Info, error) {
	all, err := a.API.ListTokens(ctx, ep)
	if err != nil {
		return nil, err
	}
	own := all[:0:0]
	for _, t := range all {
		if a.namer.owns(t.Name) {
			own = append(own, t)
		}
	}
	return own, nil
}

// PermissionGroups returns the endpoint's permission groups, from the cache
// while it is fresh. A failed fetch is not cached.
func (a *ownAPI) PermissionGroups(ctx context.Context, ep token.Endpoint) ([]token.PermissionGroup, error) {
	now := a.now()
	a.mu.Lock()
	c, ok := a.groups[ep]
	a.mu.Unlock()
	if ok && now.Sub(c.fetched) < catalogueTTL {
		return c.groups, nil
	}
	groups, err := a.API.PermissionGroups(ctx, ep)
	if err != nil {
		return nil, err
	}
	a.mu.Lock()
	if a.groups == nil {
		a.groups = map[token.Endpoint]catalogue{}
	}
	a.groups[ep] = catalogue{groups: groups, fetched: now}
	a.mu.Unlock()
	return groups, nil
}

// forget drops the cached permission-group lists.
func (a *ownAPI) forget() {
	a.mu.Lock()
	a.groups = nil
	a.mu.Unlock()
}
