package emulator_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cf-scoped-token/cf-scoped-token/internal/emulator"
)

// post sends a create with the seeded user parent through client and returns the raw
// response or the transport error.
func (te *testEnv) post(ctx context.Context, client *http.Client, name string) (*http.Response, error) {
	body := fmt.Sprintf(`{"name":%q,"policies":[{"effect":"allow","permission_groups":[{"id":%q}],"resources":{%q:"*"}}]}`,
		name, gOrgsRead, acct(te.seed.AccountIDs[0]))
	req, err := http.NewRequestWithContext(ctx, "POST", te.api+"/user/tokens", strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+te.seed.UserToken)
	req.Header.Set("Content-Type", "application/json")
	return client.Do(req)
}

// named returns the stored tokens with the given name.
func named(e *emulator.Emulator, name string) []emulator.Token {
	var out []emulator.Token
	for _, tk := range e.Tokens() {
		if tk.Name == name {
			out = append(out, tk)
		}
	}
	return out
}

// lastRequest returns the most recent request on route.
func lastRequest(tb testing.TB, e *emulator.Emulator, route string) emulator.Request {
	tb.Helper()
	reqs := e.RequestsTo(route)
	if len(reqs) == 0 {
		tb.Fatalf("no request on %s", route)
	}
	return reqs[len(reqs)-1]
}

func TestFaultReset(t *testing.T) {
	t.Parallel()
	te := mustServe(t)
	te.e.AddFault(emulator.Fault{Route: "POST /user/tokens", Kind: emulator.Reset, Times: 1})
	res, err := te.post(context.Background(), te.srv.Client(), "reset")
	if err == nil {
		res.Body.Close()
		t.Fatalf("got %d, want a transport error", res.StatusCode)
	}
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("error = %v, want connection reset", err)
	}
	if got := named(te.e, "reset"); len(got) != 0 {
		t.Errorf("a reset request was handled: %+v", got)
	}
	if r := lastRequest(t, te.e, "POST /user/tokens"); r.Status != 0 || r.Fault != emulator.Reset {
		t.Errorf("recorded %+v, want Status 0 and Fault Reset", r)
	}
	// Times 1: the next create goes through.
	res, err = te.post(context.Background(), te.srv.Client(), "reset")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 || len(named(te.e, "reset")) != 1 {
		t.Errorf("second create: %d, %d tokens", res.StatusCode, len(named(te.e, "reset")))
	}
}

func TestFaultResetGET(t *testing.T) {
	t.Parallel()
	te := mustServe(t)
	// Times 0 hits every request, so net/http's one silent retry of an idempotent
	// request on a reused connection cannot hide it.
	te.e.AddFault(emulator.Fault{Route: "GET /user/tokens/verify", Kind: emulator.Reset})
	req, _ := http.NewRequest("GET", te.api+"/user/tokens/verify", nil)
	req.Header.Set("Authorization", "Bearer "+te.seed.UserToken)
	if res, err := te.srv.Client().Do(req); err == nil {
		res.Body.Close()
		t.Fatalf("got %d, want a transport error", res.StatusCode)
	}
	// Other routes are unaffected.
	wantOK(t, te.do(t, "GET", "/user/tokens", te.seed.UserToken, nil))
}

func TestFaultLostResponse(t *testing.T) {
	t.Parallel()
	te := mustServe(t)
	te.e.AddFault(emulator.Fault{Route: "POST /user/tokens", Kind: emulator.LostResponse, Times: 1})
	res, err := te.post(context.Background(), te.srv.Client(), "lost")
	if err == nil {
		res.Body.Close()
		t.Fatalf("got %d, want a transport error", res.StatusCode)
	}
	// The create was committed although the client never saw it.
	got := named(te.e, "lost")
	if len(got) != 1 || got[0].Status != "active" {
		t.Fatalf("tokens named lost = %+v, want one committed token", got)
	}
	if r := lastRequest(t, te.e, "POST /user/tokens"); r.Status != 0 || r.Fault != emulator.LostResponse {
		t.Errorf("recorded %+v, want Status 0 and Fault LostResponse", r)
	}
	// A client can find it by name and delete it.
	var list []tokenOut
	decode(t, wantOK(t, te.do(t, "GET", "/user/tokens?per_page=50", te.seed.UserToken, nil)), &list)
	found := false
	for _, tk := range list {
		if tk.Name == "lost" {
			found = true
			wantOK(t, te.do(t, "DELETE", "/user/tokens/"+tk.ID, te.seed.UserToken, nil))
		}
	}
	if !found || len(named(te.e, "lost")) != 0 {
		t.Errorf("lost token not found by name or not deleted")
	}
}

func TestFaultStatus(t *testing.T) {
	t.Parallel()
	te := mustServe(t)
	te.e.AddFault(emulator.Fault{Route: "POST /user/tokens", Kind: emulator.Status, Status: 503, Times: 1})
	te.e.AddFault(emulator.Fault{Route: "GET /user/tokens", Kind: emulator.Status, Times: 1}) // default 500
	b := createBody("s", []string{gOrgsRead}, map[string]string{acct(te.seed.AccountIDs[0]): "*"})

	env := te.do(t, "POST", "/user/tokens", te.seed.UserToken, b)
	checkFail(t, env, http.StatusServiceUnavailable, 10001)
	if len(named(te.e, "s")) != 0 {
		t.Errorf("a Status fault ran the handler")
	}
	checkFail(t, te.do(t, "GET", "/user/tokens", te.seed.UserToken, nil), http.StatusInternalServerError, 10001)
	if r := lastRequest(t, te.e, "POST /user/tokens"); r.Status != 503 || r.Fault != emulator.Status {
		t.Errorf("recorded %+v", r)
	}
	wantOK(t, te.do(t, "POST", "/user/tokens", te.seed.UserToken, b))
	wantOK(t, te.do(t, "GET", "/user/tokens", te.seed.UserToken, nil))
}

func TestFaultRateLimit(t *testing.T) {
	t.Parallel()
	te := mustServe(t)
	te.e.AddFault(emulator.Fault{Route: "DELETE /user/tokens/{token_id}", Kind: emulator.RateLimit, RetryAfter: 2500 * time.Millisecond, Times: 2})
	path := "/user/tokens/" + te.seed.UserTokenID
	for range 2 {
		env := te.do(t, "DELETE", path, te.seed.UserToken, nil)
		checkFail(t, env, http.StatusTooManyRequests, 971)
		if got := env.Header.Get("Retry-After"); got != "3" {
			t.Errorf("Retry-After = %q, want 3 (2.5s rounded up)", got)
		}
	}
	wantOK(t, te.do(t, "DELETE", path, te.seed.UserToken, nil))
}

func TestFaultLatency(t *testing.T) {
	t.Parallel()
	te := mustServe(t)
	te.e.AddFault(emulator.Fault{Route: "GET /user/tokens/verify", Kind: emulator.Latency, Delay: 150 * time.Millisecond, Times: 1})
	start := time.Now()
	wantOK(t, te.do(t, "GET", "/user/tokens/verify", te.seed.UserToken, nil))
	if d := time.Since(start); d < 150*time.Millisecond {
		t.Errorf("answered after %v, want ≥ 150ms", d)
	}
	if r := lastRequest(t, te.e, "GET /user/tokens/verify"); r.Status != 200 || r.Fault != emulator.Latency {
		t.Errorf("recorded %+v", r)
	}

	// A client that gives up during the delay: the handler never runs.
	te.e.AddFault(emulator.Fault{Route: "POST /user/tokens", Kind: emulator.Latency, Delay: 300 * time.Millisecond, Times: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	res, err := te.post(ctx, te.srv.Client(), "slow")
	if err == nil {
		res.Body.Close()
		t.Fatalf("got %d, want a deadline error", res.StatusCode)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error = %v", err)
	}
	time.Sleep(400 * time.Millisecond)
	if got := named(te.e, "slow"); len(got) != 0 {
		t.Errorf("handler ran after the client left: %+v", got)
	}
}

// TestRequestLog checks what the log keeps beside route and status: the body as the handler
// read it, and arrival and end on the real clock (the test clock stands at t0), so that a
// request's time includes its injected latency and the stamps follow the log's order.
func TestRequestLog(t *testing.T) {
	t.Parallel()
	te := mustServe(t)
	const delay = 50 * time.Millisecond
	te.e.AddFault(emulator.Fault{Route: "POST /user/tokens", Kind: emulator.Latency, Delay: delay, Times: 1})
	before := time.Now()
	res, err := te.post(context.Background(), te.srv.Client(), "logged")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	wantOK(t, te.do(t, "GET", "/user/tokens/verify", te.seed.UserToken, nil))
	after := time.Now()

	reqs := te.e.Requests()
	if len(reqs) != 2 {
		t.Fatalf("%d requests logged, want 2", len(reqs))
	}
	create, verify := reqs[0], reqs[1]
	var body struct {
		Name string `json:"name"`
	}
	if err := json.Unmarshal(create.Body, &body); err != nil || body.Name != "logged" {
		t.Errorf("create body %q: name %q, %v; want the body sent", create.Body, body.Name, err)
	}
	if verify.Body != nil {
		t.Errorf("verify body = %q, want none", verify.Body)
	}
	if create.Arrived.Before(before) || verify.Done.After(after) {
		t.Errorf("stamps %v…%v outside the client's calls %v…%v", create.Arrived, verify.Done, before, after)
	}
	if d := create.Done.Sub(create.Arrived); d < delay {
		t.Errorf("create took %v from arrival to end, want ≥ the injected %v", d, delay)
	}
	if !verify.Arrived.After(create.Done) || verify.Done.Before(verify.Arrived) {
		t.Errorf("verify %v…%v, create ended %v: stamps out of order", verify.Arrived, verify.Done, create.Done)
	}

	// Requests returns copies: changing one leaves the log as it was.
	create.Body[0] = 'X'
	if got := te.e.Requests()[0].Body; got[0] == 'X' {
		t.Errorf("changing a returned body changed the log: %q", got)
	}
}

func TestFaultRoutesTimesAndClear(t *testing.T) {
	t.Parallel()
	te := mustServe(t)
	// Route "" hits every route; Times counts across routes.
	te.e.AddFault(emulator.Fault{Kind: emulator.Status, Status: 502, Times: 2})
	checkFail(t, te.do(t, "GET", "/user/tokens", te.seed.UserToken, nil), http.StatusBadGateway, 10001)
	checkFail(t, te.do(t, "GET", "/user/tokens/verify", te.seed.UserToken, nil), http.StatusBadGateway, 10001)
	wantOK(t, te.do(t, "GET", "/user/tokens", te.seed.UserToken, nil))

	// Times 0 hits every request until ClearFaults.
	te.e.AddFault(emulator.Fault{Route: "GET /user/tokens", Kind: emulator.Status, Status: 500})
	for range 3 {
		checkFail(t, te.do(t, "GET", "/user/tokens", te.seed.UserToken, nil), 500, 10001)
	}
	wantOK(t, te.do(t, "GET", "/user/tokens/verify", te.seed.UserToken, nil))
	te.e.ClearFaults()
	wantOK(t, te.do(t, "GET", "/user/tokens", te.seed.UserToken, nil))

	// Latency and a decisive fault combine; faults apply in the order added.
	te.e.AddFault(emulator.Fault{Route: "GET /user/tokens", Kind: emulator.Latency, Delay: 50 * time.Millisecond, Times: 1})
	te.e.AddFault(emulator.Fault{Route: "GET /user/tokens", Kind: emulator.RateLimit, Times: 1})
	te.e.AddFault(emulator.Fault{Route: "GET /user/tokens", Kind: emulator.Status, Times: 1})
	start := time.Now()
	env := te.do(t, "GET", "/user/tokens", te.seed.UserToken, nil)
	checkFail(t, env, http.StatusTooManyRequests, 971)
	if env.Header.Get("Retry-After") != "1" || time.Since(start) < 50*time.Millisecond {
		t.Errorf("Retry-After %q after %v", env.Header.Get("Retry-After"), time.Since(start))
	}
	checkFail(t, te.do(t, "GET", "/user/tokens", te.seed.UserToken, nil), 500, 10001)
	wantOK(t, te.do(t, "GET", "/user/tokens", te.seed.UserToken, nil))

	// Faults never touch unknown routes; the trace endpoint is a route like any other.
	te.e.AddFault(emulator.Fault{Route: "GET /cdn-cgi/trace", Kind: emulator.Status, Status: 503, Times: 1})
	res, err := te.srv.Client().Get(te.srv.URL + "/cdn-cgi/trace")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 503 {
		t.Errorf("trace status %d, want 503", res.StatusCode)
	}
}

func TestChaos(t *testing.T) {
	t.Parallel()
	run := func(c emulator.Chaos) []int {
		te := mustServe(t)
		te.e.SetChaos(c)
		var got []int
		for range 40 {
			got = append(got, te.do(t, "GET", "/user/tokens", te.seed.UserToken, nil).Status)
		}
		return got
	}
	c := emulator.Chaos{Rate: 0.5, Seed: 7, Kinds: []emulator.FaultKind{emulator.Status, emulator.RateLimit}}
	a, b := run(c), run(c)
	if diff := cmp.Diff(a, b); diff != "" {
		t.Errorf("same seed, different faults (-a +b):\n%s", diff)
	}
	counts := map[int]int{}
	for _, s := range a {
		counts[s]++
	}
	if counts[200] == 0 || counts[200] == 40 || counts[200]+counts[429]+counts[500]+counts[502]+counts[503] != 40 {
		t.Errorf("status counts %v: want a mix of 200 and 429/500/502/503", counts)
	}

	// Rate 1 with Status faults only: every request fails with a 5xx.
	for _, s := range run(emulator.Chaos{Rate: 1, Seed: 1, Kinds: []emulator.FaultKind{emulator.Status}}) {
		if s != 500 && s != 502 && s != 503 {
			t.Errorf("status %d under full chaos", s)
		}
	}
	// Routes limit chaos.
	for _, s := range run(emulator.Chaos{Rate: 1, Seed: 1, Routes: []string{"POST /user/tokens"}}) {
		if s != 200 {
			t.Errorf("status %d on a route outside the chaos list", s)
		}
	}
}

// TestConcurrentSoak hammers the emulator from many goroutines under chaos (run it with
// -race) and then checks the store against the request log: every create whose handler
// ran (answered 200, or lost after commit) left exactly one token, and no other did.
func TestConcurrentSoak(t *testing.T) {
	t.Parallel()
	te := mustServe(t)
	te.e.SetLimits(emulator.Limits{RateLimit: 1200}) // no quotas: every handled create commits
	te.e.SetChaos(emulator.Chaos{Rate: 0.3, Seed: 42, Routes: []string{"POST /user/tokens", "GET /user/tokens", "DELETE /user/tokens/{token_id}"}})
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	t.Cleanup(client.CloseIdleConnections)
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 15 {
				res, err := te.post(context.Background(), client, fmt.Sprintf("soak-%d-%d", w, i))
				if err == nil {
					res.Body.Close()
				}
				req, _ := http.NewRequest("GET", te.api+"/user/tokens?per_page=50", nil)
				req.Header.Set("Authorization", "Bearer "+te.seed.UserToken)
				if res, err := client.Do(req); err == nil {
					res.Body.Close()
				}
			}
		})
	}
	wg.Wait()
	committed := 0
	for _, r := range te.e.Requests() {
		if r.Route == "POST /user/tokens" && (r.Status == 200 || r.Fault == emulator.LostResponse) {
			committed++
		}
	}
	if got := len(te.e.Tokens()) - 2; got != committed {
		t.Errorf("%d child tokens stored, %d creates committed", got, committed)
	}
	if committed == 0 || committed == 120 {
		t.Errorf("committed %d of 120 creates; chaos did not mix outcomes", committed)
	}
}
