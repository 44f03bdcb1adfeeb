// Package oidcissuer is a CI system's OIDC issuer, shaped like GitHub Actions', served as an
// http.Handler for tests, demos and the emulator: the discovery document, the JWKS (with key
// rotation), and a GitHub-shaped ID-token endpoint behind ACTIONS_ID_TOKEN_REQUEST_URL and
// ACTIONS_ID_TOKEN_REQUEST_TOKEN. It also signs tokens directly, including deliberately hostile
// ones (alg none, HS256 keyed with the public key, a key it does not publish), and can inject
// faults and count requests per route, so that a verifier's and a broker's tests can prove what
// they fetch and when.
//
// The facts it follows are in reference/oidc.md §1 (the token request), §2 (the discovery
// document, the JWKS, the header and the claims). It is written from that reference on its own
// and shares nothing with the project's verifier, so that a mistake in one cannot agree with
// itself in the other; its JWS encoding uses only the standard library.
//
// Wiring, with the issuer URL known only once the listener is:
//
//	srv := httptest.NewUnstartedServer(nil)
//	iss, err := oidcissuer.New("http://" + srv.Listener.Addr().String())
//	// handle err
//	srv.Config.Handler = iss
//	srv.Start()
package oidcissuer

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Route names one endpoint of the issuer, for faults and request counts.
type Route string

// The issuer's routes.
const (
	// RouteDiscovery is GET <issuer>/.well-known/openid-configuration.
	RouteDiscovery Route = "discovery"
	// RouteJWKS is GET <issuer>/.well-known/jwks.
	RouteJWKS Route = "jwks"
	// RouteToken is the ID-token endpoint, GET <issuer>/_apis/distributedtask/hubs/Actions/
	// plans/{plan}/jobs/{job}/idtoken.
	RouteToken Route = "token"
	// RouteUnknown counts requests that matched no route; they are answered 404.
	RouteUnknown Route = ""
)

// Paths under the issuer URL (reference/oidc.md §1, §2).
const (
	discoveryPath = "/.well-known/openid-configuration"
	jwksPath      = "/.well-known/jwks"
	idRequestPath = "/_apis/distributedtask/hubs/Actions/plans/{plan}/jobs/{job}/idtoken"
)

// Option configures an Issuer in New.
type Option func(*Issuer)

// WithNow sets the clock that dates issued tokens (default time.Now). Tests that advance time
// pass a function that reads their own fake clock.
func WithNow(now func() time.Time) Option {
	return func(iss *Issuer) {
		if now != nil {
			iss.now = now
		}
	}
}

// Issuer is the OIDC issuer. All of its state sits behind one mutex, so it is safe for
// concurrent use; create one with New.
type Issuer struct {
	url    string           // the issuer identifier, the iss of every token
	mux    *http.ServeMux   // immutable after New
	routes map[string]Route // mux pattern → route; immutable after New
	now    func() time.Time // immutable after New

	mu       sync.Mutex
	keys     []*signingKey       // published, in the order added
	current  map[Alg]*signingKey // the key that signs, per algorithm
	foreign  map[Alg]*signingKey // never published: WithUnpublishedKey
	jobs     map[string]*job     // by job id
	faults   []*fault
	requests map[Route]int
}

// New returns an issuer whose identifier is issuerURL: an http or https URL, optionally with a
// path (CircleCI-style http://127.0.0.1:8080/org/<uuid>), under which every route is served. It
// starts with one RS256 (2048-bit) and one ES256 (P-256) key.
func New(issuerURL string, opts ...Option) (*Issuer, error) {
	base, err := checkIssuerURL(issuerURL)
	if err != nil {
		return nil, err
	}
	iss := &Issuer{
		url:      issuerURL,
		mux:      http.NewServeMux(),
		routes:   map[string]Route{},
		now:      time.Now,
		current:  map[Alg]*signingKey{},
		foreign:  map[Alg]*signingKey{},
		jobs:     map[string]*job{},
		requests: map[Route]int{},
	}
	for _, o := range opts {
		o(iss)
	}
	for _, alg := range []Alg{RS256, ES256} {
		if _, err := iss.Rotate(alg); err != nil {
			return nil, err
		}
	}
	handle := func(route Route, path string, h http.HandlerFunc) {
		pattern := "GET " + base + path
		iss.mux.HandleFunc(pattern, h)
		iss.routes[pattern] = route
	}
	handle(RouteDiscovery, discoveryPath, iss.serveDiscovery)
	handle(RouteJWKS, jwksPath, iss.serveJWKS)
	handle(RouteToken, idRequestPath, iss.serveToken)
	iss.mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		writeMessage(w, http.StatusNotFound, "Not Found")
	})
	return iss, nil
}

// checkIssuerURL accepts an absolute http(s) URL without query, fragment, credentials or
// trailing slash (the iss of GitHub's tokens has none, and it must match exactly), and
// returns its path, the prefix of every route.
func checkIssuerURL(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return "", fmt.Errorf("oidc issuer: %q is not an absolute http or https URL", s)
	}
	if u.User != nil || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
		return "", fmt.Errorf("oidc issuer: URL %q must not have credentials, a query or a fragment", s)
	}
	if strings.HasSuffix(u.Path, "/") {
		return "", fmt.Errorf("oidc issuer: URL %q must not end in a slash", s)
	}
	// The path becomes part of ServeMux patterns, where braces and spaces mean something.
	for _, c := range u.Path {
		if !(c == '/' || c == '-' || c == '.' || c == '_' || c == '~' ||
			'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return "", fmt.Errorf("oidc issuer: URL path %q may hold only letters, digits and -._~/", u.Path)
		}
	}
	return u.EscapedPath(), nil
}

// URL returns the issuer identifier: the iss of its tokens and the base of its routes.
func (iss *Issuer) URL() string { return iss.url }

// ServeHTTP counts the request for its route, applies any injected fault, and otherwise
// answers it.
func (iss *Issuer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, pattern := iss.mux.Handler(r)
	route := iss.routes[pattern] // RouteUnknown for the catch-all and for 405s
	iss.mu.Lock()
	iss.requests[route]++
	f := iss.pickFault(route)
	iss.mu.Unlock()
	if f != nil {
		if f.Delay > 0 {
			t := time.NewTimer(f.Delay)
			select {
			case <-t.C:
			case <-r.Context().Done():
				t.Stop()
				return
			}
		}
		if f.Status != 0 {
			writeMessage(w, f.Status, http.StatusText(f.Status))
			return
		}
	}
	iss.mux.ServeHTTP(w, r)
}

// Requests returns how many requests have arrived on route so far, faulted ones included.
func (iss *Issuer) Requests(route Route) int {
	iss.mu.Lock()
	defer iss.mu.Unlock()
	return iss.requests[route]
}

// discoveryDocument is the shape of GitHub's openid-configuration (reference/oidc.md §2), with
// ES256 added to the algorithms because this issuer also signs with a P-256 key.
type discoveryDocument struct {
	Issuer                           string   `json:"issuer"`
	JWKSURI                          string   `json:"jwks_uri"`
	SubjectTypesSupported            []string `json:"subject_types_supported"`
	ResponseTypesSupported           []string `json:"response_types_supported"`
	ClaimsSupported                  []string `json:"claims_supported"`
	IDTokenSigningAlgValuesSupported []string `json:"id_token_signing_alg_values_supported"`
	ScopesSupported                  []string `json:"scopes_supported"`
}

// claimsSupported is GitHub's list (reference/oidc.md §2), with the claims its tokens carry
// that the published list leaves out.
func claimsSupported() []string {
	return []string{
		"sub", "aud", "exp", "iat", "iss", "jti", "nbf", "ref", "sha", "repository", "repository_id",
		"repository_owner", "repository_owner_id", "enterprise", "enterprise_id", "run_id",
		"run_number", "run_attempt", "runner_environment", "actor", "actor_id", "workflow",
		"workflow_ref", "workflow_sha", "head_ref", "base_ref", "event_name", "ref_type",
		"ref_protected", "environment", "environment_node_id", "job_workflow_ref",
		"job_workflow_sha", "repository_visibility", "check_run_id",
	}
}

func (iss *Issuer) serveDiscovery(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, discoveryDocument{
		Issuer:                           iss.url,
		JWKSURI:                          iss.url + jwksPath,
		SubjectTypesSupported:            []string{"public", "pairwise"},
		ResponseTypesSupported:           []string{"id_token"},
		ClaimsSupported:                  claimsSupported(),
		IDTokenSigningAlgValuesSupported: []string{string(RS256), string(ES256)},
		ScopesSupported:                  []string{"openid"},
	})
}

func (iss *Issuer) serveJWKS(w http.ResponseWriter, _ *http.Request) {
	iss.mu.Lock()
	set := jwkSet{Keys: make([]jwk, 0, len(iss.keys))}
	for _, k := range iss.keys {
		set.Keys = append(set.Keys, k.jwk)
	}
	iss.mu.Unlock()
	writeJSON(w, http.StatusOK, set)
}

// writeJSON answers status with v as JSON.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		writeMessage(w, http.StatusInternalServerError, "encode answer: "+err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// writeMessage answers an error as {"message": "…"}, the shape the Actions toolkit reads
// (reference/oidc.md §1, "Error behaviour").
func writeMessage(w http.ResponseWriter, status int, msg string) {
	b, _ := json.Marshal(struct {
		Message string `json:"message"`
	}{msg})
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// Fault is one injected fault. A request gets at most one: the first added fault that matches
// its route and has hits left.
type Fault struct {
	// Route is the route it hits; RouteUnknown ("") means every route.
	Route Route
	// Status, when not 0, is answered (with {"message": "<status text>"}) instead of the
	// route's answer.
	Status int
	// Delay is slept before the request is answered (or failed with Status), giving up when
	// the client goes away.
	Delay time.Duration
	// Times is how many requests the fault hits; 0 means every one.
	Times int
}

// fault is an added Fault and how many hits it has left.
type fault struct {
	Fault
	left int // < 0: unlimited
}

// AddFault adds a fault; faults are tried in the order added.
func (iss *Issuer) AddFault(f Fault) {
	left := f.Times
	if left <= 0 {
		left = -1
	}
	iss.mu.Lock()
	defer iss.mu.Unlock()
	iss.faults = append(iss.faults, &fault{Fault: f, left: left})
}

// Fail makes the next times requests on route (every one if times is 0) answer status.
func (iss *Issuer) Fail(route Route, status, times int) {
	iss.AddFault(Fault{Route: route, Status: status, Times: times})
}

// ClearFaults removes every fault.
func (iss *Issuer) ClearFaults() {
	iss.mu.Lock()
	defer iss.mu.Unlock()
	iss.faults = nil
}

// pickFault returns the fault for a request on route and counts the hit; callers hold iss.mu.
func (iss *Issuer) pickFault(route Route) *Fault {
	for _, f := range iss.faults {
		if f.left == 0 || (f.Route != RouteUnknown && f.Route != route) {
			continue
		}
		if f.left > 0 {
			f.left--
		}
		picked := f.Fault
		return &picked
	}
	return nil
}

// errNoKey is returned when no key of an algorithm is left to sign with (all retired).
var errNoKey = errors.New("no current key for that algorithm")
