package mint_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cf-scoped-token/cf-scoped-token/internal/clocktest"
	"github.com/cf-scoped-token/cf-scoped-token/internal/cloudflare"
	"github.com/cf-scoped-token/cf-scoped-token/internal/emulator"
	"github.com/cf-scoped-token/cf-scoped-token/internal/emulator/emulatortest"
	"github.com/cf-scoped-token/cf-scoped-token/internal/mint"
	"github.com/cf-scoped-token/cf-scoped-token/internal/retry"
	"github.com/cf-scoped-token/cf-scoped-token/internal/token"
)

// The real client is what the lifecycle runs on in production.
var _ mint.API = (*cloudflare.Client)(nil)

// Routes as the emulator reports them in Request.Route (emulator.go, routes).
const (
	routeGroups = "GET /user/tokens/permission_groups"
	routeCreate = "POST /user/tokens"
	routeVerify = "GET /user/tokens/verify"
	routeList   = "GET /user/tokens"
	routeGet    = "GET /user/tokens/{token_id}"
	routeDelete = "DELETE /user/tokens/{token_id}"
	routeRoll   = "PUT /user/tokens/{token_id}/value"
)

// t0 is the clock of the emulator and of the Minter in every test but the
// soak: expiry and "has it expired" are decided by it, never by the wall.
var t0 = time.Date(2026, 11, 27, 20, 0, 0, 0, time.UTC)

// record is a list that concurrent callers add to and a test reads once
// they are done: the backoffs, log lines, ledgers, handovers and delete
// contexts of a run.
type record[T any] struct {
	mu  sync.Mutex
	all []T
}

func (r *record[T]) add(v T) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.all = append(r.all, v)
}

// All returns a copy of what was added, in order.
func (r *record[T]) All() []T {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.all)
}

// waits stands in for Retry.Sleep: no test waits in real time.
type waits = clocktest.Sleeps

// testRetry: 4 attempts; backoffs without Retry-After are half their
// ceiling (50ms, 100ms, 200ms); a Retry-After up to 10s is honoured as is.
func testRetry(w *waits) retry.Policy {
	return retry.Policy{
		Attempts: 4, Base: 100 * time.Millisecond, Max: 10 * time.Second,
		Sleep: w.Sleep, Jitter: func() float64 { return 0.5 },
	}
}

// logBook collects every line the Minter and the client log.
type logBook struct{ record[string] }

func (l *logBook) printf(format string, args ...any) {
	l.add(fmt.Sprintf(format, args...))
}

// world is a seeded emulator on a real HTTP server, mounted under
// emulator.BasePath, with the real client and a Minter on top.
type world struct {
	e      *emulator.Emulator
	srv    *httptest.Server
	seed   emulator.Seeded
	api    string // srv.URL + emulator.BasePath
	waits  *waits
	logs   *logBook
	client *cloudflare.Client // acts with the user-owned parent token
	m      *mint.Minter
	hook   atomic.Pointer[func(http.ResponseWriter, *http.Request) bool]
	names  atomic.Int64
}

// mustWorld starts a seeded emulator with both clocks at t0. At cleanup it
// fails the test if any request matched no route.
func mustWorld(tb testing.TB) *world {
	tb.Helper()
	e := emulator.New()
	e.SetNow(func() time.Time { return t0 })
	w := &world{e: e, seed: emulator.Seed(e), waits: &waits{}, logs: &logBook{}}
	w.srv = emulatortest.Serve(tb, e, http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if h := w.hook.Load(); h != nil && (*h)(rw, r) {
			return
		}
		e.ServeHTTP(rw, r)
	}))
	w.api = w.srv.URL + emulator.BasePath
	w.client = w.newClient(w.seed.UserToken)
	w.m = &mint.Minter{API: w.client, Now: func() time.Time { return t0 }, Logf: w.logs.printf, Sleep: noSleep}
	tb.Cleanup(func() { w.mustNoSecretInLogs(tb) })
	return w
}

// newClient is a client of the world's API acting with the parent token.
func (w *world) newClient(parent string) *cloudflare.Client {
	return &cloudflare.Client{
		BaseURL: w.api, HTTP: w.srv.Client(), Token: token.NewSecret(parent),
		Retry: testRetry(w.waits), Debugf: w.logs.printf,
	}
}

// setHook puts h in front of the emulator: it sees every request first and
// answers it itself by returning true.
func (w *world) setHook(h func(http.ResponseWriter, *http.Request) bool) {
	w.hook.Store(&h)
}

// request is a valid user-owned request for one Access scope on the first
// seeded account, with a name no other request of the world has.
func (w *world) request(tb testing.TB, edit ...func(*token.Inputs)) token.Request {
	tb.Helper()
	in := token.Inputs{
		APIToken: w.seed.UserToken, AccountIDs: emulator.SeedAccount1,
		Scopes: "organizations", Permission: "read", TTL: "1h", Owner: "user",
		Verify: "true", Revoke: "true", ExportEnv: "false", Mode: "create", APIURL: w.api,
	}
	for _, f := range edit {
		f(&in)
	}
	req, err := in.Parse(token.RunContext{
		Repository: "octo/deploy", RunID: "4242", RunAttempt: "1", Job: "access",
		Suffix: fmt.Sprintf("%012x", w.names.Add(1)),
	})
	if err != nil {
		tb.Fatalf("parse inputs: %v", err)
	}
	return req
}

// keep is a handover that records what it was given.
type keep struct{ record[mint.Minted] }

func (k *keep) handover(m mint.Minted) error {
	k.add(m)
	return nil
}

// mustMint mints and fails the test on error.
func (w *world) mustMint(tb testing.TB, req token.Request) mint.Minted {
	tb.Helper()
	got, err := w.m.Mint(tb.Context(), req, func(mint.Minted) error { return nil })
	if err != nil {
		tb.Fatalf("Mint: %v", err)
	}
	return got
}

// children are the stored tokens other than the two seeded parents.
func (w *world) children() []emulator.Token {
	return w.seed.Children(w.e)
}

// mustNoOrphans turns faults off and fails the test if any token but the
// parents (and the ids in keep) is alive: the end of every test.
func (w *world) mustNoOrphans(tb testing.TB, keep ...string) {
	tb.Helper()
	w.e.ClearFaults()
	var alive []string
	for _, t := range w.children() {
		alive = append(alive, t.ID)
	}
	slices.Sort(alive)
	want := slices.Clone(keep)
	slices.Sort(want)
	if !slices.Equal(alive, want) {
		tb.Errorf("tokens alive besides the parents: %q, want %q", describe(w.children()), want)
	}
}

func describe(ts []emulator.Token) []string {
	var out []string
	for _, t := range ts {
		out = append(out, t.ID+" "+t.Name+" ("+t.Status+")")
	}
	return out
}

// requests returns the recorded requests on one route.
func (w *world) requests(route string) []emulator.Request {
	return w.e.RequestsTo(route)
}

// answered counts the requests on route that got the status (0: none).
func (w *world) answered(route string, status int) int {
	n := 0
	for _, r := range w.requests(route) {
		if r.Status == status {
			n++
		}
	}
	return n
}

// secrets are every token value the emulator holds or has been sent as a
// bearer: parents, children, rolled values.
func (w *world) secrets() []string {
	seen := map[string]bool{w.seed.UserToken: true, w.seed.AccountToken: true}
	for _, t := range w.e.Tokens() {
		seen[t.Value] = true
	}
	for _, r := range w.e.Requests() {
		if v, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok && v != "" {
			seen[v] = true
		}
	}
	out := make([]string, 0, len(seen))
	for v := range seen {
		out = append(out, v)
	}
	return out
}

// mustNoSecretInLogs fails the test if a log line holds a token value or
// anything shaped like one.
func (w *world) mustNoSecretInLogs(tb testing.TB, extra ...string) {
	tb.Helper()
	if n := leaks(w.logs.All(), append(w.secrets(), extra...)); n > 0 {
		tb.Errorf("%d log lines hold a token value", n)
	}
}

// leaks counts the texts that hold one of the secrets or a token-shaped
// string (the emulator's values start with cfut_ or cfat_).
func leaks(texts, secrets []string) int {
	n := 0
	for _, s := range texts {
		if strings.Contains(s, "cfut_") || strings.Contains(s, "cfat_") ||
			slices.ContainsFunc(secrets, func(v string) bool { return v != "" && strings.Contains(s, v) }) {
			n++
		}
	}
	return n
}

// ctxAPI is the real client with a record of the context each delete ran
// on: how a test sees that a clean-up survived the run's cancellation.
type ctxAPI struct {
	*cloudflare.Client
	deleteErrs record[error] // ctx.Err() when each DeleteToken started
}

func (a *ctxAPI) DeleteToken(ctx context.Context, ep token.Endpoint, id string) error {
	a.deleteErrs.add(ctx.Err())
	return a.Client.DeleteToken(ctx, ep, id)
}

func (a *ctxAPI) DeleteCtxErrs() []error {
	return a.deleteErrs.All()
}

// noSleep stands in for Minter.Sleep (the wait between creates whose
// answers were lost): no test waits in real time, and the client's
// recorded backoffs stay the client's alone.
func noSleep(ctx context.Context, _ time.Duration) error { return ctx.Err() }
