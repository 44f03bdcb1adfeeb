package broker_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cf-scoped-token/cf-scoped-token/internal/broker"
	"github.com/cf-scoped-token/cf-scoped-token/internal/broker/brokertest"
	"github.com/cf-scoped-token/cf-scoped-token/internal/cloudflare"
	"github.com/cf-scoped-token/cf-scoped-token/internal/emulator"
	"github.com/cf-scoped-token/cf-scoped-token/internal/emulator/emulatortest"
	"github.com/cf-scoped-token/cf-scoped-token/internal/oidcissuer"
	"github.com/cf-scoped-token/cf-scoped-token/internal/oidcissuer/oidcissuertest"
	"github.com/cf-scoped-token/cf-scoped-token/internal/policy"
	"github.com/cf-scoped-token/cf-scoped-token/internal/retry"
	"github.com/cf-scoped-token/cf-scoped-token/internal/token"
)

var _ broker.API = (*cloudflare.Client)(nil)

// Claims of the default job (oidcissuer.DefaultClaims) that the test policy pins.
const (
	ownerID = "46576199"
	repoID  = "1104004353"
)

// testPolicy is the policy of most tests (a format for
// brokertest.FormatPolicy): brokertest.Policy's rule and one for an
// account-owned token, pinned to another repository.
const testPolicy = brokertest.Policy + `  - name: account-owned
    issuer: github
    claims:
      repository_owner_id: "46576199"
      repository_id: "777"
    grant:
      owner: account
      account-ids: [%[2]s]
      scopes: [apps-and-policies:read]
      max-ttl: 30m
      allowed-ips: [caller]
`

// world is a seeded emulator, a local OIDC issuer, and a started broker
// serving on a real loopback server, with a client for it.
type world struct {
	e      *emulator.Emulator
	seeded emulator.Seeded
	apiURL string
	cfHTTP *http.Client
	cf     *cloudflare.Client
	iss    *oidcissuer.Issuer
	issSrv *httptest.Server
	b      *broker.Server
	srv    *httptest.Server
	client *broker.Client
	audit  *brokertest.Buffer
	logs   *brokertest.Buffer
	// timedURL serves the broker with each request's Cloudflare-time
	// counter (spent, by the X-Bench-Counter header) in its context.
	timedURL string
	spent    sync.Map
}

// noWait stands in for every backoff: it returns at once.
func noWait(ctx context.Context, _ time.Duration) error { return ctx.Err() }

type worldOption func(*broker.Config, *worldSetup)

type worldSetup struct {
	policy     string // a format as testPolicy
	noStart    bool
	parent     func(emulator.Seeded) string
	clientEdit func(*cloudflare.Client)
	wrapAPI    func(broker.API) broker.API
	editServer func(*broker.Server) // before it starts and serves
}

func withPolicy(p string) worldOption {
	return func(_ *broker.Config, s *worldSetup) { s.policy = p }
}

func withConfig(edit func(*broker.Config)) worldOption {
	return func(c *broker.Config, _ *worldSetup) { edit(c) }
}

func withServer(edit func(*broker.Server)) worldOption {
	return func(_ *broker.Config, s *worldSetup) { s.editServer = edit }
}

func notStarted() worldOption { return func(_ *broker.Config, s *worldSetup) { s.noStart = true } }

// mustWorld builds and starts a world.
func mustWorld(tb testing.TB, opts ...worldOption) *world {
	tb.Helper()
	w := &world{e: emulator.New(), audit: &brokertest.Buffer{}, logs: &brokertest.Buffer{}}
	w.seeded = emulator.Seed(w.e)
	// The quota would stop the load test; Cloudflare's limits are tested in package emulator.
	w.e.SetLimits(emulator.Limits{UserTokenQuota: 0, AccountTokenQuota: 0})
	cfSrv := emulatortest.Serve(tb, w.e, nil)
	w.apiURL = cfSrv.URL + emulator.BasePath
	w.cfHTTP = cfSrv.Client()

	w.iss, w.issSrv = oidcissuertest.Serve(tb)
	w.startBroker(tb, opts...)
	return w
}

// mustWorldOn is another broker on w's emulator and issuer, with the
// given parent token.
func mustWorldOn(tb testing.TB, w *world, parent string, opts ...worldOption) *world {
	tb.Helper()
	w2 := &world{e: w.e, seeded: w.seeded, apiURL: w.apiURL, cfHTTP: w.cfHTTP, iss: w.iss, issSrv: w.issSrv,
		audit: &brokertest.Buffer{}, logs: &brokertest.Buffer{}}
	w2.startBroker(tb, append([]worldOption{func(_ *broker.Config, s *worldSetup) {
		s.parent = func(emulator.Seeded) string { return parent }
	}}, opts...)...)
	return w2
}

// startBroker makes and (unless notStarted) starts the world's broker.
func (w *world) startBroker(tb testing.TB, opts ...worldOption) {
	tb.Helper()
	setup := worldSetup{policy: testPolicy, parent: func(s emulator.Seeded) string { return s.UserToken }}
	cfg := broker.Config{}
	for _, o := range opts {
		o(&cfg, &setup)
	}
	p := mustPolicy(tb, w, setup.policy)
	parent := token.NewSecret(setup.parent(w.seeded))
	w.cf = &cloudflare.Client{BaseURL: w.apiURL, HTTP: w.cfHTTP, Token: parent,
		Retry: retry.Policy{Attempts: 3, Base: time.Millisecond, Max: time.Millisecond, Sleep: noWait}}
	if setup.clientEdit != nil {
		setup.clientEdit(w.cf)
	}
	cfg.Policy, cfg.API, cfg.Parent = p, w.cf, parent
	if setup.wrapAPI != nil {
		cfg.API = setup.wrapAPI(w.cf)
	}
	cfg.OIDC.HTTP = w.issSrv.Client()
	cfg.Audit = w.audit
	cfg.Logf = func(format string, args ...any) { fmt.Fprintf(w.logs, format+"\n", args...) }
	cfg.MintSleep = noWait
	var err error
	w.b, err = broker.New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	if setup.editServer != nil {
		setup.editServer(w.b)
	}
	if !setup.noStart {
		if err := w.b.Start(tb.Context()); err != nil {
			tb.Fatalf("Start: %v", err)
		}
	}
	w.srv = httptest.NewServer(w.b)
	tb.Cleanup(w.srv.Close)
	w.client = &broker.Client{BaseURL: w.srv.URL, HTTP: w.srv.Client(), Retry: retry.Policy{Sleep: noWait}}
}

// mustPolicy parses a test policy (a format for brokertest.FormatPolicy)
// for w's issuer.
func mustPolicy(tb testing.TB, w *world, format string) *policy.Policy {
	tb.Helper()
	p, err := policy.Parse([]byte(brokertest.FormatPolicy(format, w.iss.URL())))
	if err != nil {
		tb.Fatalf("test policy: %v", err)
	}
	return p
}

// jwt signs a token of the default job for the broker's audience, with overrides.
func (w *world) jwt(tb testing.TB, claims map[string]any, opts ...oidcissuer.SignOption) string {
	tb.Helper()
	return oidcissuertest.Sign(tb, w.iss, brokertest.Audience, claims, opts...)
}

// mustExchange trades a token of the default job, with claims overridden,
// for a grant with what the rule allows, and fails the test if it cannot.
func (w *world) mustExchange(tb testing.TB, claims map[string]any) broker.Granted {
	tb.Helper()
	g, err := w.client.Exchange(tb.Context(), token.NewSecret(w.jwt(tb, claims)), broker.ExchangeRequest{})
	if err != nil {
		tb.Fatal(err)
	}
	return g
}

// answer is a raw HTTP answer.
type answer struct {
	status int
	header http.Header
	body   []byte
	err    struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
}

// post sends a raw form body to path.
func (w *world) post(tb testing.TB, path, contentType, body string) answer {
	tb.Helper()
	req, err := http.NewRequestWithContext(tb.Context(), http.MethodPost, w.srv.URL+path, strings.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	return w.do(tb, req)
}

func (w *world) postForm(tb testing.TB, path string, form url.Values) answer {
	tb.Helper()
	return w.post(tb, path, "application/x-www-form-urlencoded", form.Encode())
}

func (w *world) do(tb testing.TB, req *http.Request) answer {
	tb.Helper()
	res, err := w.srv.Client().Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		tb.Fatal(err)
	}
	a := answer{status: res.StatusCode, header: res.Header, body: body}
	if res.StatusCode != http.StatusOK {
		if err := json.Unmarshal(body, &a.err); err != nil {
			tb.Fatalf("%d answer is not an error body: %q", res.StatusCode, body)
		}
	}
	return a
}

// children are the tokens alive in the emulator besides the seeded parents.
func (w *world) children() []emulator.Token {
	return w.seeded.Children(w.e)
}

// cfRequests is how many requests the emulator has received.
func (w *world) cfRequests() int { return len(w.e.Requests()) }

// apiFault is one failure of a faultyAPI: the call of its method it hits
// (counted from 1) gets err; with made, the call reaches Cloudflare first
// (its answer is lost).
type apiFault struct {
	call int
	err  error
	made bool
}

// faultyAPI is the broker's API with chosen calls failing, by method name,
// where the emulator's faults cannot single one call out.
type faultyAPI struct {
	broker.API
	faults map[string][]apiFault

	mu    sync.Mutex
	calls map[string]int
}

func withFaults(faults map[string][]apiFault) worldOption {
	return func(_ *broker.Config, s *worldSetup) {
		s.wrapAPI = func(api broker.API) broker.API { return &faultyAPI{API: api, faults: faults} }
	}
}

// hit counts a call of method and returns its fault, if it has one.
func (f *faultyAPI) hit(method string) (apiFault, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.calls == nil {
		f.calls = map[string]int{}
	}
	f.calls[method]++
	for _, af := range f.faults[method] {
		if af.call == f.calls[method] {
			return af, true
		}
	}
	return apiFault{}, false
}

// faulted is a call of method through f: without a fault it is the real
// call; a fault's error stands in for its answer, after the real call when
// the fault's call was made.
func faulted[T any](f *faultyAPI, method string, call func() (T, error)) (T, error) {
	af, ok := f.hit(method)
	if !ok || af.made {
		got, err := call()
		if !ok {
			return got, err
		}
	}
	var zero T
	return zero, af.err
}

func (f *faultyAPI) GetToken(ctx context.Context, ep token.Endpoint, id string) (token.Info, error) {
	return faulted(f, "GetToken", func() (token.Info, error) { return f.API.GetToken(ctx, ep, id) })
}

func (f *faultyAPI) ListTokens(ctx context.Context, ep token.Endpoint) ([]token.Info, error) {
	return faulted(f, "ListTokens", func() ([]token.Info, error) { return f.API.ListTokens(ctx, ep) })
}

func (f *faultyAPI) DeleteToken(ctx context.Context, ep token.Endpoint, id string) error {
	_, err := faulted(f, "DeleteToken", func() (struct{}, error) { return struct{}{}, f.API.DeleteToken(ctx, ep, id) })
	return err
}

func (f *faultyAPI) VerifyToken(ctx context.Context, ep token.Endpoint, secret token.Secret) (token.Info, error) {
	return faulted(f, "VerifyToken", func() (token.Info, error) { return f.API.VerifyToken(ctx, ep, secret) })
}

// withoutToken is an answer's body for a failure message: a success
// answer's access_token is withheld.
func withoutToken(body []byte) string {
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		return fmt.Sprintf("%q", body) // not a success answer: it holds no token
	}
	if _, ok := m["access_token"]; ok {
		m["access_token"] = "[withheld]"
	}
	b, err := json.Marshal(m)
	if err != nil {
		return "(an answer that does not encode again)"
	}
	return string(b)
}

// shown lists emulator tokens for a failure message: id, name, owner and
// expiry, never the value.
func shown(ts []emulator.Token) string {
	parts := make([]string, len(ts))
	for i, t := range ts {
		parts[i] = fmt.Sprintf("{%s %q %s %s expires %s}", t.ID, t.Name, t.Owner, t.OwnerID, t.ExpiresOn.Format(time.RFC3339))
	}
	return "[" + strings.Join(parts, " ") + "]"
}
