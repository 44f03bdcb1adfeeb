// Package emulator is an in-memory, faithful stand-in for the parts of the Cloudflare API
// that cf-scoped-token and its users touch, served as an http.Handler: the user and
// account API-token endpoints and a set of Access endpoints on which it enforces each
// token's permission groups, resources, expiry, IP condition and revocation. It can inject
// faults (latency, error statuses, 429, reset connections, responses lost after the change
// was committed) so that tests can prove how a client rides them out.
//
// The facts it follows are in reference/cloudflare-api.md. Its wire types are written here
// from that reference and share nothing with the project's client, so that a wrong JSON
// tag in one cannot agree with itself in the other.
//
// Mount it with httptest.NewServer(emulator.New()); the API base URL is then
// srv.URL + BasePath. GET /cdn-cgi/trace is served at the root, as on the real API host.
//
// Where the reference gives a status but no code, the emulator chooses (see envelope.go):
//   - unknown token or Access object id: 404, code 1003 "Not found"; an id that is not
//     well-formed: 404, code 7003 "Could not route to …";
//   - token quota reached: 400, code 1005, with the limit in the message;
//   - other body or query validation errors: 400, code 1001; a body that is not JSON: 400,
//     code 6007 "Malformed JSON in request body";
//   - invalid token on account endpoints (token and Access): 401, code 10000 (the reference
//     allows 401 or 403; 403 code 10000 is kept for a missing permission);
//   - an account-owned token on /user/tokens…: 403, code 9109 "Unauthorized to access
//     requested resource";
//   - an injected Status fault: its status, code 10001;
//   - token values: "cfut_"/"cfat_" + 40 alphanumerics + 8 hex characters of CRC-32 (see
//     ValidTokenValue).
package emulator

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// BasePath is the prefix under which the v4 API is served: the api-url of a client is the
// server's URL + BasePath.
const BasePath = "/client/v4"

// Limits are the quotas and rate limit the emulator enforces.
type Limits struct {
	// UserTokenQuota is how many tokens one user may own; ≤ 0 means no quota.
	UserTokenQuota int
	// AccountTokenQuota is how many tokens one account may own; ≤ 0 means no quota.
	AccountTokenQuota int
	// RateLimit is how many requests one calling token may make per RateWindow; 0 means no
	// rate limit (and no Ratelimit headers).
	RateLimit int
	// RateWindow is the rate-limit window; zero means 5 minutes.
	RateWindow time.Duration
}

// DefaultLimits returns Cloudflare's limits (reference/cloudflare-api.md, "Errors and
// limits"): 50 user tokens per user, 500 per account, 1200 requests per 5 minutes per token.
func DefaultLimits() Limits {
	return Limits{UserTokenQuota: 50, AccountTokenQuota: 500, RateLimit: 1200, RateWindow: 5 * time.Minute}
}

// Emulator is the in-memory Cloudflare API. All of its state sits behind one mutex, so it
// is safe for concurrent use; create one with New.
type Emulator struct {
	mux *http.ServeMux // immutable after New

	mu       sync.Mutex
	nowFn    func() time.Time
	limits   Limits
	groups   []permissionGroup
	groupIdx map[string]permissionGroup
	accounts map[string]*account
	users    map[string]*user
	tokens   map[string]*token // by id
	byValue  map[string]*token
	seq      int
	rate     map[string][]time.Time // token id → times of its requests in the current window
	requests []Request
	faults   []*fault
	chaos    *chaosState
}

// New returns an emulator with an empty store (no accounts, users or tokens), the full
// permission-group catalogue and Cloudflare's limits. Populate it with AddAccount, AddUser
// and Issue…Token, or with Seed.
func New() *Emulator {
	e := &Emulator{
		nowFn:    time.Now,
		limits:   DefaultLimits(),
		groups:   catalogue(),
		groupIdx: map[string]permissionGroup{},
		accounts: map[string]*account{},
		users:    map[string]*user{},
		tokens:   map[string]*token{},
		byValue:  map[string]*token{},
		rate:     map[string][]time.Time{},
	}
	for _, g := range e.groups {
		e.groupIdx[g.ID] = g
	}
	e.mux = http.NewServeMux()
	e.routes()
	return e
}

// SetNow replaces the clock (default time.Now). Token expiry, issued_on, modified_on and
// the rate-limit window all read it. A nil now restores time.Now.
func (e *Emulator) SetNow(now func() time.Time) {
	if now == nil {
		now = time.Now
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.nowFn = now
}

// SetLimits replaces the quotas and rate limit (see Limits for zero values).
func (e *Emulator) SetLimits(l Limits) {
	if l.RateWindow <= 0 {
		l.RateWindow = DefaultLimits().RateWindow
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.limits = l
}

// now reads the clock in whole seconds, UTC, the precision of every date the API returns.
// Callers hold e.mu.
func (e *Emulator) now() time.Time {
	return e.nowFn().UTC().Truncate(time.Second)
}

// Request is a record of one request the emulator received.
type Request struct {
	Method, Path, RawQuery string
	// Header is a clone of the request's headers (it includes Authorization).
	Header http.Header
	// Route is the matched pattern without BasePath, e.g. "POST /user/tokens"; "" if none.
	Route string
	// Status is the status answered; 0 when no answer was delivered (the connection was
	// reset, the response was lost, or the client went away during injected latency).
	Status int
	// Fault is the fault injected into this request, 0 if none.
	Fault FaultKind
	// Body is the request body, as much of it as a handler reads (1 MiB).
	Body []byte
	// Arrived is when the request was logged, before any fault or handler ran; Done is
	// when the emulator was finished with it (zero until then). Both are read from
	// time.Now, not from the clock SetNow sets: they measure how long a client's requests
	// take, which a test clock or whole seconds cannot, and Arrived grows in log order.
	Arrived, Done time.Time
}

// Requests returns every request received so far, in order of arrival.
func (e *Emulator) Requests() []Request {
	return e.requestsWhere(func(Request) bool { return true })
}

// RequestCount is how many requests have been received so far.
func (e *Emulator) RequestCount() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.requests)
}

// RequestsTo returns the requests received on one route (as in
// Request.Route, e.g. "POST /user/tokens"), in order of arrival.
func (e *Emulator) RequestsTo(route string) []Request {
	return e.requestsWhere(func(r Request) bool { return r.Route == route })
}

// Unhandled returns the requests that matched no route. They were answered with a
// Cloudflare-shaped 404, code 7000 "No route for that URI"; tests assert this is empty.
func (e *Emulator) Unhandled() []Request { return e.RequestsTo("") }

// requestsWhere returns copies of the logged requests that keep holds for, in order of
// arrival; only those are copied.
func (e *Emulator) requestsWhere(keep func(Request) bool) []Request {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []Request
	for _, r := range e.requests {
		if keep(r) {
			r.Header = r.Header.Clone()
			r.Body = bytes.Clone(r.Body)
			out = append(out, r)
		}
	}
	return out
}

// ServeHTTP records the request, applies any injected fault for its route, and otherwise
// answers it as Cloudflare would.
func (e *Emulator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Ask the mux which pattern will serve r before serving it: faults are keyed by route.
	_, pattern := e.mux.Handler(r)
	route := routeOf(pattern)
	// Buffer the body for the log, and because net/http notices a client that hangs up
	// (and cancels r.Context, which injected latency waits on) only once the body has
	// been read. A body that cannot be read is left to the handler to fail on.
	var body []byte
	if b, err := io.ReadAll(io.LimitReader(r.Body, maxBodySize)); err == nil {
		r.Body = io.NopCloser(bytes.NewReader(b))
		if len(b) > 0 {
			body = b
		}
	}
	idx := e.record(r, route, body)
	defer e.setDone(idx)
	sw := &statusWriter{ResponseWriter: w}
	if route != "" && e.injectFault(sw, r, route, idx) {
		return
	}
	e.mux.ServeHTTP(sw, r)
	e.setStatus(idx, sw.status)
}

// routeOf turns a mux pattern into a Route: the BasePath prefix removed, "" for the
// catch-all.
func routeOf(pattern string) string {
	method, path, ok := strings.Cut(pattern, " ")
	if !ok || path == "/" {
		return ""
	}
	return method + " " + strings.TrimPrefix(path, BasePath)
}

// record appends r to the request log and returns its index.
func (e *Emulator) record(r *http.Request, route string, body []byte) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.requests = append(e.requests, Request{
		Method: r.Method, Path: r.URL.Path, RawQuery: r.URL.RawQuery,
		Header: r.Header.Clone(), Route: route, Body: body,
		Arrived: time.Now(), // under the lock, so that stamps are in the order of the log
	})
	return len(e.requests) - 1
}

// setDone stamps the end of request idx.
func (e *Emulator) setDone(idx int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.requests[idx].Done = time.Now()
}

// setStatus records the answer to request idx.
func (e *Emulator) setStatus(idx, status int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.requests[idx].Status = status
}

// setFault records the fault injected into request idx.
func (e *Emulator) setFault(idx int, k FaultKind) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.requests[idx].Fault = k
}

// statusWriter remembers the status written through it.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer (to hijack it).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// handler is an API handler: it runs with e.mu held and returns the reply to send.
type handler func(c *call) reply

// call is the per-request context of an API handler.
type call struct {
	r       *http.Request
	now     time.Time
	tok     *token // the authenticated caller, once known
	limited bool   // the caller counted against the rate limit
}

// api adapts an API handler to the mux: it takes the lock, runs h, adds the rate-limit
// headers for the caller, releases the lock and only then writes the answer.
func (e *Emulator) api(h handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		e.mu.Lock()
		c := &call{r: r, now: e.now()}
		rp := h(c)
		if rp.header == nil {
			rp.header = http.Header{}
		}
		e.rateHeadersLocked(c, rp.header)
		e.mu.Unlock()
		rp.header.Set("Cf-Ray", newHexID()[:16]+"-EMU")
		rp.write(w)
	}
}

// routes registers every endpoint. Patterns carry BasePath; Request.Route strips it.
func (e *Emulator) routes() {
	handle := func(method, path string, h handler) {
		e.mux.Handle(method+" "+BasePath+path, e.api(h))
	}

	// Token endpoints, user- and account-owned (reference/cloudflare-api.md, "Endpoints").
	for _, s := range []surface{surfaceUser, surfaceAccount} {
		base := "/user/tokens"
		if s == surfaceAccount {
			base = "/accounts/{account_id}/tokens"
		}
		handle("GET", base, e.withSurface(s, e.listTokens))
		handle("POST", base, e.withSurface(s, e.createToken))
		handle("GET", base+"/verify", e.withSurface(s, e.verifyToken))
		handle("GET", base+"/permission_groups", e.withSurface(s, e.listPermissionGroups))
		handle("GET", base+"/{token_id}", e.withSurface(s, e.getToken))
		handle("PUT", base+"/{token_id}", e.withSurface(s, e.updateToken))
		handle("DELETE", base+"/{token_id}", e.withSurface(s, e.deleteToken))
		handle("PUT", base+"/{token_id}/value", e.withSurface(s, e.rollToken))
	}

	// Access endpoints.
	handle("GET", "/accounts/{account_id}/access/organizations", e.getOrganization)
	handle("PUT", "/accounts/{account_id}/access/organizations", e.updateOrganization)
	for _, k := range accessKinds() {
		base := "/accounts/{account_id}/access/" + k.path
		item := base + "/{" + k.idParam + "}"
		handle("GET", base, e.accessList(k))
		handle("POST", base, e.accessCreate(k))
		handle("GET", item, e.accessGet(k))
		handle("PUT", item, e.accessUpdate(k))
		handle("DELETE", item, e.accessDelete(k))
	}

	// The trace endpoint lives at the host root, not under BasePath.
	e.mux.HandleFunc("GET /cdn-cgi/trace", e.trace)

	// Everything else: a Cloudflare-shaped 404, recorded as unhandled (Route "").
	e.mux.Handle("/", e.api(func(*call) reply {
		return fail(http.StatusNotFound, codeNoRoute, messageNoRoute)
	}))
}

// trace answers GET /cdn-cgi/trace like Cloudflare's edge: plain text key=value lines, ip
// being the client's address as seen by the server (r.RemoteAddr).
func (e *Emulator) trace(w http.ResponseWriter, r *http.Request) {
	e.mu.Lock()
	now := e.nowFn()
	e.mu.Unlock()
	scheme, tlsOn := "http", "off"
	if r.TLS != nil {
		scheme, tlsOn = "https", "TLSv1.3"
	}
	w.Header().Set("Content-Type", "text/plain")
	fmt.Fprintf(w, "fl=%df%d\nh=%s\nip=%s\nts=%d.%03d\nvisit_scheme=%s\nuag=%s\ncolo=EMU\nsliver=none\nhttp=%s\nloc=XX\ntls=%s\nsni=off\nwarp=off\ngateway=off\nrbi=off\nkex=none\n",
		rand.IntN(1000), rand.IntN(1000), r.Host, clientIP(r), now.Unix(), now.Nanosecond()/1e6,
		scheme, r.UserAgent(), strings.ToLower(r.Proto), tlsOn)
}

// clientIP is the host part of r.RemoteAddr: the address a token's IP condition is
// checked against and the one /cdn-cgi/trace reports.
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
