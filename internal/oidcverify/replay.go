package oidcverify

import (
	"crypto/sha256"
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/expirable"
)

// replayCache remembers each accepted (iss, jti) until its token's exp + leeway, in a bounded
// LRU (reference/oidc.md §3.9).
//
// The LRU is golang-lru's expirable one with its own TTL off (0): that TTL is one value for
// the whole cache, runs on the wall clock in a goroutine that v2.0.7 never stops, while each
// entry here has its own deadline on the injected clock. So every entry carries its deadline,
// an entry past it counts as absent, and expired entries are dropped from the old end as new
// ones come in. When distinct live jtis outnumber the bound, the least recent is forgotten
// early: the bound caps memory, and the broker's rate limit keeps that from being reached.
type replayCache struct {
	mu  sync.Mutex // makes check-then-add one step
	lru *expirable.LRU[[sha256.Size]byte, time.Time]
}

func newReplayCache(size int) *replayCache {
	return &replayCache{lru: expirable.NewLRU[[sha256.Size]byte, time.Time](size, nil, 0)}
}

// claim records (iss, jti) as used until deadline and reports true, or reports false if it is
// already recorded with a deadline not yet past. Keys are hashed: a jti may be as long as the
// token allows, and the cache must cost a fixed size per entry.
func (c *replayCache) claim(iss, jti string, deadline, now time.Time) bool {
	key := sha256.Sum256([]byte(iss + "\x00" + jti)) // a configured iss never holds NUL
	c.mu.Lock()
	defer c.mu.Unlock()
	if d, ok := c.lru.Peek(key); ok && !now.After(d) {
		return false
	}
	c.lru.Add(key, deadline)
	for {
		_, d, ok := c.lru.GetOldest()
		if !ok || !now.After(d) {
			break
		}
		c.lru.RemoveOldest()
	}
	return true
}

// release forgets (iss, jti), so that the token may be accepted again.
func (c *replayCache) release(iss, jti string) {
	key := sha256.Sum256([]byte(iss + "\x00" + jti))
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lru.Remove(key)
}

// len is how many entries the cache holds.
func (c *replayCache) len() int {
	return c.lru.Len()
}
