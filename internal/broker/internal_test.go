package broker

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"golang.org/x/time/rate"

	"github.com/cf-scoped-token/cf-scoped-token/internal/token"
)

func TestNames(t *testing.T) {
	t.Parallel()
	n := newNamer(token.NewSecret("cfut_parent-one"))
	other := newNamer(token.NewSecret("cfut_parent-two"))
	cases := []token.RunContext{
		{Repository: "acme/site-deploy", RunID: "19677834613", RunAttempt: "1"},
		{Repository: strings.Repeat("r", 300), RunID: strings.Repeat("9", 80), RunAttempt: "2"},
		{Repository: "repo:acme/x:ref:refs/heads/main"},
		{Repository: "ünïcödé/repø", RunID: "1", RunAttempt: "1"},
	}
	seen := map[string]bool{}
	for _, rc := range cases {
		name, err := n.name(rc, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		if utf8.RuneCountInString(name) > token.MaxNameLength || !token.IsOwnName(name) {
			t.Errorf("name %q: %d characters, or not the tool's prefix", name, utf8.RuneCountInString(name))
		}
		if !n.owns(name) {
			t.Errorf("namer does not own its own name %q", name)
		}
		if other.owns(name) {
			t.Errorf("a namer of another parent owns %q", name)
		}
		if seen[name] {
			t.Errorf("name %q made twice", name)
		}
		seen[name] = true
		// Any change to the name or its suffix breaks the MAC.
		for _, forged := range []string{
			strings.Replace(name, "cf-scoped-token ", "cf-scoped-token x", 1),
			name[:len(name)-1] + string("0123456789abcdef"[(strings.IndexByte("0123456789abcdef", name[len(name)-1])+1)%16]),
			name[:len(name)-suffixHex] + strings.ToUpper(name[len(name)-suffixHex:]),
		} {
			if n.owns(forged) {
				t.Errorf("forged name %q is owned", forged)
			}
		}
	}
	for _, s := range []string{"", "cf-scoped-token ", "cf-scoped-token acme 1.1 0123456789ab", "other " + strings.Repeat("0", suffixHex)} {
		if n.owns(s) {
			t.Errorf("owns(%q)", s)
		}
	}
	// A name from a source that cannot give randomness: an error, no name.
	if _, err := n.name(cases[0], bytes.NewReader(nil)); err == nil {
		t.Error("a name without randomness")
	}
}

func TestLimiter(t *testing.T) {
	t.Parallel()
	l := newLimiters(rate.Limit(30.0/60), 10, 100)
	t0 := time.Date(2026, 11, 27, 20, 0, 0, 0, time.UTC)
	for i := range 10 {
		if ok, _ := l.allow("a", t0); !ok {
			t.Fatalf("exchange %d of the burst refused", i+1)
		}
	}
	ok, wait := l.allow("a", t0)
	if ok || wait <= 0 || wait > 2*time.Second {
		t.Errorf("11th: %v, wait %s; want refused, about 2s", ok, wait)
	}
	// A refusal does not count: 2 s later exactly one more is allowed.
	if ok, _ := l.allow("a", t0.Add(2*time.Second)); !ok {
		t.Error("after 2 s: refused")
	}
	if ok, _ := l.allow("a", t0.Add(2*time.Second)); ok {
		t.Error("after 2 s, second: allowed")
	}
	if ok, _ := l.allow("b", t0); !ok {
		t.Error("another identity shares the bucket")
	}
}

// TestLimiterBound floods the limiter with identities: it never tracks
// more than its bound, entries whose buckets are full again are dropped,
// and its memory stays flat. Not parallel: it reads the heap, which other
// tests would grow at the same time.
func TestLimiterBound(t *testing.T) {
	const bound = 1000
	l := newLimiters(DefaultRate, DefaultBurst, bound)
	t0 := time.Date(2026, 11, 27, 20, 0, 0, 0, time.UTC)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := range 100 * bound {
		key := fmt.Sprintf("https://token.actions.githubusercontent.com repository_id=%d%s", i, strings.Repeat("x", 200))
		l.allow(key, t0)
		if n := l.len(); n > bound {
			t.Fatalf("after %d identities the limiter tracks %d, more than its bound %d", i+1, n, bound)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	if n := l.len(); n != bound {
		t.Errorf("limiter tracks %d, want it full at %d", n, bound)
	}
	// About 600 bytes an identity (2 KiB under the race detector): the LRU's
	// list and maps and the bucket, after 100 times the bound went through
	// it; the flood left nothing behind.
	grew := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("heap grew by %d bytes for %d tracked identities (%d a piece)", grew, bound, grew/bound)
	if grew > 4<<20 {
		t.Errorf("heap grew by %d bytes for %d tracked identities, want under 4 MiB", grew, bound)
	}
	// Once the buckets are full again, the old entries go as new ones come.
	l.allow("late", t0.Add(l.full))
	if n := l.len(); n != 1 {
		t.Errorf("after every bucket refilled the limiter tracks %d, want 1", n)
	}
}

func TestClean(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"acme/site-deploy":                          "acme/site-deploy",
		"eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln": "[redacted]",
		"cfut_abc":               "[redacted]",
		"bad \xff byte":          "bad \ufffd byte",
		strings.Repeat("a", 300): strings.Repeat("a", maxLogged) + "…",
	} {
		if got := clean(in); got != want {
			t.Errorf("clean(%.20q) = %.30q, want %.30q", in, got, want)
		}
	}
}
