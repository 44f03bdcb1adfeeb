package broker

import (
	"crypto/sha256"
	"math"
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/expirable"
	"golang.org/x/time/rate"
)

// Defaults of the per-identity rate limit (SPEC: 30 exchanges a minute,
// bursts of 10) and of the number of identities it tracks.
const (
	DefaultRate             = rate.Limit(30.0 / 60)
	DefaultBurst            = 10
	DefaultLimiterCacheSize = 10_000
)

// limiters is the per-identity rate limit: a token bucket per key, in a
// bounded LRU, so that any number of identities costs a bounded amount of
// memory (about 600 bytes each).
//
// The LRU is golang-lru's expirable one with its own TTL off: that TTL runs
// on the wall clock in a goroutine v2.0.7 never stops, while the buckets
// run on the injected clock. Each entry carries the time it was last used,
// and an entry idle long enough for its bucket to have filled up again is
// dropped from the old end as new ones come in: forgetting it changes
// nothing. When more identities are active than the bound, the least
// recently used is forgotten early and starts again with a full bucket;
// the bound is far above the number of repositories a broker serves.
type limiters struct {
	rate  rate.Limit
	burst int
	full  time.Duration // how long an empty bucket takes to fill up

	mu  sync.Mutex
	lru *expirable.LRU[[sha256.Size]byte, *bucket]
}

type bucket struct {
	lim  *rate.Limiter
	last time.Time
}

func newLimiters(r rate.Limit, burst, size int) *limiters {
	full := time.Duration(math.Ceil(float64(burst)/float64(r)*float64(time.Second))) + time.Second
	return &limiters{rate: r, burst: burst, full: full, lru: expirable.NewLRU[[sha256.Size]byte, *bucket](size, nil, 0)}
}

// allow takes one exchange from key's bucket at now, or reports how long to
// wait until one is there. Keys are hashed: an identity key holds claim
// values of any length, and each entry must cost a fixed size.
func (l *limiters) allow(key string, now time.Time) (bool, time.Duration) {
	k := sha256.Sum256([]byte(key))
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.lru.Get(k)
	if !ok {
		b = &bucket{lim: rate.NewLimiter(l.rate, l.burst)}
	}
	b.last = now
	l.lru.Add(k, b) // now the most recent
	for {
		_, old, ok := l.lru.GetOldest()
		if !ok || now.Sub(old.last) < l.full {
			break
		}
		l.lru.RemoveOldest()
	}
	r := b.lim.ReserveN(now, 1)
	if !r.OK() {
		return false, l.full
	}
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now) // a refused exchange does not count against the bucket
		return false, d
	}
	return true, 0
}

// len is how many identities are tracked.
func (l *limiters) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lru.Len()
}
