package cloudflare

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cf-scoped-token/cf-scoped-token/internal/clocktest"
	"github.com/cf-scoped-token/cf-scoped-token/internal/emulator"
	"github.com/cf-scoped-token/cf-scoped-token/internal/emulator/emulatortest"
	"github.com/cf-scoped-token/cf-scoped-token/internal/retry"
	"github.com/cf-scoped-token/cf-scoped-token/internal/token"
)

// Permission-group ids, written here from reference/cloudflare/access-permission-groups.json
// rather than read from the emulator, so that neither side can agree with its own mistake.
const (
	gAPITokensWrite = "686d18d5ac6c441c867cbf6771e58a0a" // user scope
	gAppsRead       = "7ea222f6d5064cfa89ea366d7c1fee89" // account scope
	gAppsReadZone   = "eb258a38ea634c86a0c89da6b27cb6b6" // zone-scoped twin, same name
	gServiceRead    = "91f7ce32fa614d73b7e1fc8f0e78582b" // account scope
)

// t0 is the emulator's fixed clock in every test.
var t0 = time.Date(2026, 11, 27, 20, 0, 0, 0, time.UTC)

// waits stands in for Retry.Sleep: no test waits in real time.
type waits = clocktest.Sleeps

// testJitter is the fixed jitter: each backoff is half its ceiling.
const testJitter = 0.5

// testRetry is the policy of every test: 4 attempts, backoffs 50ms, 100ms,
// 200ms (Base 100ms × 2^(n-1) × jitter), a cap of 10s, no real sleeping.
func testRetry(w *waits) retry.Policy {
	return retry.Policy{
		Attempts: 4, Base: 100 * time.Millisecond, Max: 10 * time.Second,
		Sleep: w.Sleep, Jitter: func() float64 { return testJitter },
	}
}

// backoffs4 are the waits testRetry asks for when every attempt fails with
// an error that names no Retry-After.
var backoffs4 = []time.Duration{50 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond}

// world is a seeded emulator on a real HTTP server, mounted under
// emulator.BasePath so that a client dropping the base path hits its 404
// catch-all and fails the test.
type world struct {
	e      *emulator.Emulator
	srv    *httptest.Server
	seed   emulator.Seeded
	api    string // srv.URL + BasePath
	waits  *waits
	bodies *bodyLog
}

// bodyLog keeps the body of each POST and PUT the server received, so tests
// can decode exactly what went over the wire.
type bodyLog struct {
	mu sync.Mutex
	m  map[string][][]byte // "METHOD path" → bodies in order
}

func (b *bodyLog) add(key string, body []byte) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.m[key] = append(b.m[key], body)
}

func (b *bodyLog) get(key string) [][]byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.m[key])
}

// mustWorld starts a seeded emulator with the clock at t0. At cleanup it
// fails the test if any request matched no route.
func mustWorld(tb testing.TB) *world {
	tb.Helper()
	e := emulator.New()
	e.SetNow(func() time.Time { return t0 })
	w := &world{e: e, seed: emulator.Seed(e), waits: &waits{}, bodies: &bodyLog{m: map[string][][]byte{}}}
	w.srv = emulatortest.Serve(tb, e, http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost || r.Method == http.MethodPut {
			body, _ := io.ReadAll(r.Body)
			w.bodies.add(r.Method+" "+r.URL.Path, body)
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		e.ServeHTTP(rw, r)
	}))
	w.api = w.srv.URL + emulator.BasePath
	return w
}

// client is a client of the world's API acting with the given parent token.
func (w *world) client(parent string) *Client {
	return &Client{BaseURL: w.api, HTTP: w.srv.Client(), Token: token.NewSecret(parent), Retry: testRetry(w.waits)}
}

// requests returns the recorded requests on one route (as in Request.Route).
func (w *world) requests(route string) []emulator.Request {
	return w.e.RequestsTo(route)
}

// stored returns the emulator's snapshot of token id.
func (w *world) stored(tb testing.TB, id string) (emulator.Token, bool) {
	tb.Helper()
	for _, t := range w.e.Tokens() {
		if t.ID == id {
			return t, true
		}
	}
	return emulator.Token{}, false
}

// fake is a small ServeMux server for envelope edge cases, with go-github's
// loud catch-all: a request outside the handlers registered (for instance one
// that lost the base path) fails the test.
type fake struct {
	mux    *http.ServeMux
	srv    *httptest.Server
	waits  *waits
	client *Client
	hits   atomic.Int64 // requests served by the handlers, catch-all excluded
}

const fakeBase = "/client/v4"

func mustFake(tb testing.TB) *fake {
	tb.Helper()
	f := &fake{mux: http.NewServeMux(), waits: &waits{}}
	f.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		tb.Errorf("unexpected request: %s %s", r.Method, r.URL.Path)
		http.Error(w, "not implemented", http.StatusNotImplemented)
	})
	f.srv = httptest.NewServer(f.mux)
	tb.Cleanup(f.srv.Close)
	f.client = &Client{
		BaseURL: f.srv.URL + fakeBase, HTTP: f.srv.Client(),
		Token: token.NewSecret(parentValue), Retry: testRetry(f.waits),
	}
	return f
}

// handle registers h for method and path under the base path and counts
// what it serves.
func (f *fake) handle(method, path string, h http.HandlerFunc) {
	f.mux.HandleFunc(method+" "+fakeBase+path, func(w http.ResponseWriter, r *http.Request) {
		f.hits.Add(1)
		h(w, r)
	})
}

// parentValue is the parent token of the fake's client: shaped like a real
// one so that a leak of it is easy to search for.
const parentValue = "cfut_ParentSecretValue0123456789abcdefghijklmn0badc0de"

// fixture reads testdata/name.
func fixture(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// reply answers status with the fixture as body (JSON unless it is .html)
// and the given header pairs.
func reply(tb testing.TB, status int, name string, header ...string) http.HandlerFunc {
	body := fixture(tb, name)
	return func(w http.ResponseWriter, _ *http.Request) {
		ct := "application/json"
		if filepath.Ext(name) == ".html" {
			ct = "text/html; charset=utf-8"
		}
		w.Header().Set("Content-Type", ct)
		for i := 0; i+1 < len(header); i += 2 {
			w.Header().Set(header[i], header[i+1])
		}
		w.WriteHeader(status)
		_, _ = w.Write(body)
	}
}

// sequence answers the i-th request with hs[i], and the last handler ever after.
func sequence(hs ...http.HandlerFunc) http.HandlerFunc {
	var n atomic.Int64
	return func(w http.ResponseWriter, r *http.Request) {
		i := int(n.Add(1)) - 1
		hs[min(i, len(hs)-1)](w, r)
	}
}

// decoy is a server that must never be reached; it counts what reaches it.
type decoy struct {
	*httptest.Server
	hits atomic.Int64
}

func httptest404(tb testing.TB) *decoy {
	tb.Helper()
	d := &decoy{}
	d.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d.hits.Add(1)
		http.NotFound(w, r)
	}))
	tb.Cleanup(d.Close)
	return d
}
