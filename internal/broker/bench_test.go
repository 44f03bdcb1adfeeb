package broker_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/cf-scoped-token/cf-scoped-token/internal/broker"
	"github.com/cf-scoped-token/cf-scoped-token/internal/broker/brokertest"
	"github.com/cf-scoped-token/cf-scoped-token/internal/token"
)

// cfTimeKey carries, in a request's context, the time its Cloudflare calls
// took, so that a benchmark can tell the broker's own overhead.
type cfTimeKey struct{}

// timedAPI adds the duration of every Cloudflare call to the request's
// counter (contexts derived from the request keep the value).
type timedAPI struct{ broker.API }

// benchCounter is one request's time in Cloudflare calls, and the time
// the server's handler took in all.
type benchCounter struct{ cf, handler atomic.Int64 }

func track(ctx context.Context) func() {
	c, _ := ctx.Value(cfTimeKey{}).(*benchCounter)
	start := time.Now()
	return func() {
		if c != nil {
			c.cf.Add(int64(time.Since(start)))
		}
	}
}

func (a timedAPI) PermissionGroups(ctx context.Context, ep token.Endpoint) ([]token.PermissionGroup, error) {
	defer track(ctx)()
	return a.API.PermissionGroups(ctx, ep)
}

func (a timedAPI) CreateToken(ctx context.Context, ep token.Endpoint, s token.Spec) (token.Created, error) {
	defer track(ctx)()
	return a.API.CreateToken(ctx, ep, s)
}

func (a timedAPI) RollToken(ctx context.Context, ep token.Endpoint, id string) (token.Secret, error) {
	defer track(ctx)()
	return a.API.RollToken(ctx, ep, id)
}

func (a timedAPI) GetToken(ctx context.Context, ep token.Endpoint, id string) (token.Info, error) {
	defer track(ctx)()
	return a.API.GetToken(ctx, ep, id)
}

func (a timedAPI) ListTokens(ctx context.Context, ep token.Endpoint) ([]token.Info, error) {
	defer track(ctx)()
	return a.API.ListTokens(ctx, ep)
}

func (a timedAPI) DeleteToken(ctx context.Context, ep token.Endpoint, id string) error {
	defer track(ctx)()
	return a.API.DeleteToken(ctx, ep, id)
}

func (a timedAPI) VerifyToken(ctx context.Context, ep token.Endpoint, s token.Secret) (token.Info, error) {
	defer track(ctx)()
	return a.API.VerifyToken(ctx, ep, s)
}

// loadPolicy pins the owner only, so that the 50 repositories of the load
// test are 50 identities of one rule.
const loadPolicy = `audience: https://broker.test
issuers:
  github: %[1]s
rules:
  - name: org-wide
    issuer: github
    claims:
      repository_owner_id: "46576199"
    grant:
      account-ids: [%[2]s]
      scopes: [apps-and-policies:write]
      max-ttl: 1h
`

// benchWorld is a world whose broker times its Cloudflare calls and whose
// rate limit does not get in the way.
func benchWorld(b *testing.B, burst int) *world {
	b.Helper()
	w := mustWorld(b, withPolicy(loadPolicy), withConfig(func(c *broker.Config) {
		c.RateLimit, c.Burst = rate.Limit(1e6), burst
	}), func(_ *broker.Config, s *worldSetup) {
		s.wrapAPI = func(a broker.API) broker.API { return timedAPI{a} }
	})
	timed := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		c, ok := w.spent.Load(r.Header.Get("X-Bench-Counter"))
		if !ok {
			w.b.ServeHTTP(rw, r)
			return
		}
		start := time.Now()
		w.b.ServeHTTP(rw, r.WithContext(context.WithValue(r.Context(), cfTimeKey{}, c)))
		c.(*benchCounter).handler.Store(int64(time.Since(start)))
	}))
	b.Cleanup(timed.Close)
	w.timedURL = timed.URL
	// Warm the keys and the catalogue.
	w.mustExchange(b, nil)
	return w
}

// BenchmarkExchange is one exchange in-process: the form, JWT verification
// with cached keys, the policy match, the name, and a create and a verify
// against the in-process emulator. overhead-µs is the time outside the
// Cloudflare calls.
func BenchmarkExchange(b *testing.B) {
	w := benchWorld(b, 1<<20)
	tokens := make([]string, b.N)
	for i := range tokens {
		tokens[i] = w.jwt(b, nil)
	}
	var cf time.Duration
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		spent := &benchCounter{}
		req := httptest.NewRequestWithContext(context.WithValue(context.Background(), cfTimeKey{}, spent), http.MethodPost,
			broker.TokenPath, strings.NewReader(brokertest.Form(tokens[i]).Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		rec := httptest.NewRecorder()
		w.b.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("exchange %d: %d %s", i, rec.Code, rec.Body)
		}
		cf += time.Duration(spent.cf.Load())
	}
	b.StopTimer()
	perOp := b.Elapsed() / time.Duration(b.N)
	b.ReportMetric(float64(perOp-cf/time.Duration(b.N))/float64(time.Microsecond), "overhead-µs/op")
}

// BenchmarkLoad is the load test: 1,000 exchanges from 50 identities, 100
// at a time (and, for comparison, one at a time), over HTTP. It reports
// throughput, the p50 and p99 of the broker's own overhead — each request's
// time minus its Cloudflare calls, seen by the client (client-…) and inside
// the server's handler (server-…) — errors and orphans; it asserts nothing
// about speed. On a 2-core machine the emulator, the client and the broker
// share the CPU, so at 100 at a time the overhead is mostly waiting for it.
func BenchmarkLoad(b *testing.B) {
	for _, concurrency := range []int{100, 1} {
		b.Run(fmt.Sprintf("at-a-time=%d", concurrency), func(b *testing.B) { benchLoad(b, concurrency) })
	}
}

func benchLoad(b *testing.B, concurrency int) {
	const (
		total      = 1000
		identities = 50
	)
	for range b.N {
		b.StopTimer()
		w := benchWorld(b, total)
		tokens := make([]string, total)
		for i := range tokens {
			tokens[i] = w.jwt(b, map[string]any{"repository_id": fmt.Sprint(1000 + i%identities)})
		}
		hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: concurrency}}
		jobs := make(chan int)
		var (
			mu             sync.Mutex
			client, server []time.Duration
			ids            []string
			errs           atomic.Int32
			wg             sync.WaitGroup
		)
		b.StartTimer()
		start := time.Now()
		for range concurrency {
			wg.Go(func() {
				for i := range jobs {
					c := &benchCounter{}
					t0 := time.Now()
					id, err := loadExchange(w, hc, tokens[i], c)
					d := time.Since(t0)
					if err != nil {
						errs.Add(1)
						continue
					}
					cf := time.Duration(c.cf.Load())
					mu.Lock()
					client = append(client, d-cf)
					server = append(server, time.Duration(c.handler.Load())-cf)
					ids = append(ids, id)
					mu.Unlock()
				}
			})
		}
		for i := range total {
			jobs <- i
		}
		close(jobs)
		wg.Wait()
		elapsed := time.Since(start)
		b.StopTimer()
		alive := map[string]bool{}
		for _, t := range w.children() {
			alive[t.ID] = true
		}
		for _, id := range ids {
			delete(alive, id)
		}
		b.ReportMetric(float64(total)/elapsed.Seconds(), "exchanges/s")
		b.ReportMetric(percentile(client, 0.50), "client-p50-ms")
		b.ReportMetric(percentile(client, 0.99), "client-p99-ms")
		b.ReportMetric(percentile(server, 0.50), "server-p50-ms")
		b.ReportMetric(percentile(server, 0.99), "server-p99-ms")
		b.ReportMetric(float64(errs.Load()), "errors")
		b.ReportMetric(float64(len(alive)-1), "orphans") // less the warm-up's token
	}
}

// percentile is the p-th percentile of ds, in milliseconds.
func percentile(ds []time.Duration, p float64) float64 {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return float64(s[int(p*float64(len(s)-1))]) / float64(time.Millisecond)
}

// loadExchange posts one exchange to the world's server with the counter
// of its Cloudflare time.
func loadExchange(w *world, hc *http.Client, subject string, spent *benchCounter) (string, error) {
	req, err := http.NewRequest(http.MethodPost, w.timedURL+broker.TokenPath, strings.NewReader(brokertest.Form(subject).Encode()))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	id := fmt.Sprintf("%p", spent)
	w.spent.Store(id, spent)
	defer w.spent.Delete(id)
	req.Header.Set("X-Bench-Counter", id)
	res, err := hc.Do(req)
	if err != nil {
		return "", err
	}
	defer res.Body.Close()
	var body struct {
		ID string `json:"token_id"`
	}
	if res.StatusCode != http.StatusOK {
		return "", fmt.Errorf("status %d", res.StatusCode)
	}
	if err := json.NewDecoder(res.Body).Decode(&body); err != nil {
		return "", err
	}
	return body.ID, nil
}
