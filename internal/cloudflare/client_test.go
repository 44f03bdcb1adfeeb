package cloudflare

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cf-scoped-token/cf-scoped-token/internal/retry"
	"github.com/cf-scoped-token/cf-scoped-token/internal/token"
)

// tokenID is the id every fake handler is asked about.
const tokenID = "ed17574386854bf78a67040be0a770b0"

// callCase is one of the client's methods, aimed at the fake's user endpoints.
type callCase struct {
	name, method, path string
	idempotent         bool
	call               func(ctx context.Context, c *Client) error
}

// calls are the client's methods, each aimed at the fake's user endpoints,
// so a property can be checked for every one of them.
var calls = []callCase{
	{"PermissionGroups", "GET", "/user/tokens/permission_groups", true, func(ctx context.Context, c *Client) error {
		_, err := c.PermissionGroups(ctx, token.Endpoint{})
		return err
	}},
	{"CreateToken", "POST", "/user/tokens", false, func(ctx context.Context, c *Client) error {
		_, err := c.CreateToken(ctx, token.Endpoint{}, token.Spec{
			Name:      token.NamePrefix + "fake",
			Policies:  []token.Policy{token.AllowPolicy([]string{"0a1b2c3d4e5f60718293a4b5c6d7e8f9"}, []string{gAppsRead})},
			ExpiresOn: t0.Add(time.Hour),
		})
		return err
	}},
	{"GetToken", "GET", "/user/tokens/" + tokenID, true, func(ctx context.Context, c *Client) error {
		_, err := c.GetToken(ctx, token.Endpoint{}, tokenID)
		return err
	}},
	{"ListTokens", "GET", "/user/tokens", true, func(ctx context.Context, c *Client) error {
		_, err := c.ListTokens(ctx, token.Endpoint{})
		return err
	}},
	{"DeleteToken", "DELETE", "/user/tokens/" + tokenID, true, func(ctx context.Context, c *Client) error {
		return c.DeleteToken(ctx, token.Endpoint{}, tokenID)
	}},
	{"VerifyToken", "GET", "/user/tokens/verify", true, func(ctx context.Context, c *Client) error {
		_, err := c.VerifyToken(ctx, token.Endpoint{}, c.Token)
		return err
	}},
	{"RollToken", "PUT", "/user/tokens/" + tokenID + "/value", true, func(ctx context.Context, c *Client) error {
		_, err := c.RollToken(ctx, token.Endpoint{}, tokenID)
		return err
	}},
}

// forEachCall runs test in parallel on each of the client's methods, each
// with a fake of its own.
func forEachCall(t *testing.T, test func(t *testing.T, f *fake, call callCase)) {
	t.Helper()
	t.Parallel()
	for _, call := range calls {
		t.Run(call.name, func(t *testing.T) {
			t.Parallel()
			test(t, mustFake(t), call)
		})
	}
}

// TestClient_Unconfigured: a client missing its base URL, its HTTP client or
// its token refuses before sending anything — the SDK would otherwise fall
// back to http.DefaultClient or its production URL.
func TestClient_Unconfigured(t *testing.T) {
	t.Parallel()
	srv := httptest404(t)
	for _, cfg := range []struct {
		name string
		c    Client
	}{
		{"no BaseURL", Client{HTTP: srv.Client(), Token: token.NewSecret(parentValue)}},
		{"no HTTP", Client{BaseURL: srv.URL + fakeBase, Token: token.NewSecret(parentValue)}},
		{"no Token", Client{BaseURL: srv.URL + fakeBase, HTTP: srv.Client()}},
	} {
		for _, call := range calls {
			t.Run(cfg.name+"/"+call.name, func(t *testing.T) {
				t.Parallel()
				c := cfg.c
				w := &waits{}
				c.Retry = testRetry(w)
				if err := call.call(t.Context(), &c); err == nil {
					t.Error("no error")
				}
				if len(w.All()) != 0 {
					t.Error("the call backed off")
				}
			})
		}
		if cfg.name != "no Token" {
			t.Run(cfg.name+"/RunnerIP", func(t *testing.T) {
				t.Parallel()
				c := cfg.c
				if _, err := c.RunnerIP(t.Context()); err == nil {
					t.Error("no error")
				}
			})
		}
	}
	t.Cleanup(func() {
		if n := srv.hits.Load(); n != 0 {
			t.Errorf("%d requests sent by unconfigured clients", n)
		}
	})
}

func TestAPIError_SeveralErrors(t *testing.T) {
	t.Parallel()
	f := mustFake(t)
	f.handle("GET", "/user/tokens/"+tokenID, reply(t, http.StatusBadRequest, "errors_several.json"))
	_, err := f.client.GetToken(t.Context(), token.Endpoint{}, tokenID)
	var apiErr *APIError
	if !errors.As(err, &apiErr) {
		t.Fatalf("GetToken = %v, want *APIError", err)
	}
	want := &APIError{Method: "GET", Path: "user/tokens/" + tokenID, Status: 400, Errors: []Message{
		{Code: 1001, Message: `Failed common permission check against resources. (Permission group: "Access: Apps and Policies Write")`},
		{Code: 9109, Message: "Unauthorized to access requested resource"},
	}}
	if diff := cmp.Diff(want, apiErr); diff != "" {
		t.Errorf("APIError (-want +got):\n%s", diff)
	}
	if !apiErr.Has(1001) || !apiErr.Has(9109) || apiErr.Has(1000) {
		t.Errorf("Has: wrong for %v", apiErr.Errors)
	}
	for _, s := range []string{"code 1001", "code 9109", "Unauthorized to access requested resource"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q lacks %q", err, s)
		}
	}
	if n := f.hits.Load(); n != 1 {
		t.Errorf("%d requests, want 1", n)
	}
}

// TestAPIError_ResultNull: the failure envelope (success false, result null)
// on every method becomes an *APIError carrying Cloudflare's codes.
func TestAPIError_ResultNull(t *testing.T) {
	forEachCall(t, func(t *testing.T, f *fake, call callCase) {
		f.handle(call.method, call.path, reply(t, http.StatusForbidden, "result_null.json"))
		err := call.call(t.Context(), f.client)
		var apiErr *APIError
		if !errors.As(err, &apiErr) {
			t.Fatalf("error %v, want *APIError", err)
		}
		want := &APIError{Method: call.method, Path: strings.TrimPrefix(call.path, "/"), Status: 403,
			Errors: []Message{{Code: 10000, Message: "Authentication error"}}}
		if diff := cmp.Diff(want, apiErr); diff != "" {
			t.Errorf("APIError (-want +got):\n%s", diff)
		}
		if errors.Is(err, token.ErrOutcomeUnknown) || errors.Is(err, token.ErrNotFound) {
			t.Errorf("a 403 matches a sentinel: %v", err)
		}
		if n := f.hits.Load(); n != 1 {
			t.Errorf("%d requests, want 1 (a 403 is not retried)", n)
		}
	})
}

// TestClient_SuccessResultNull: a 2xx whose result is null has not told us
// what we asked; no method may turn it into an empty success.
func TestClient_SuccessResultNull(t *testing.T) {
	t.Parallel()
	for _, call := range calls {
		if call.name == "DeleteToken" || call.name == "ListTokens" {
			continue // their results carry nothing the caller needs beyond "done" / "none"
		}
		t.Run(call.name, func(t *testing.T) {
			t.Parallel()
			f := mustFake(t)
			f.handle(call.method, call.path, reply(t, http.StatusOK, "success_result_null.json"))
			err := call.call(t.Context(), f.client)
			if err == nil {
				t.Fatal("no error for a null result")
			}
			// The API said yes without the token: a malformed answer, which the
			// lifecycle follows up by looking the token up by its name.
			if !errors.Is(err, token.ErrBadAnswer) {
				t.Errorf("%s = %v, want token.ErrBadAnswer", call.name, err)
			}
		})
	}
}

// TestClient_NullBody: a 2xx whose body is the JSON null, not an envelope,
// gives the SDK's list calls no page and no error; no method may panic on
// it or take it for a success, but a delete answered 2xx is done.
func TestClient_NullBody(t *testing.T) {
	forEachCall(t, func(t *testing.T, f *fake, call callCase) {
		f.handle(call.method, call.path, func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, "null")
		})
		err := call.call(t.Context(), f.client)
		if call.name == "DeleteToken" {
			if err != nil {
				t.Errorf("DeleteToken = %v, want done", err)
			}
			return
		}
		if !errors.Is(err, token.ErrBadAnswer) {
			t.Errorf("%s = %v, want token.ErrBadAnswer", call.name, err)
		}
	})
}

// TestClient_NullBodyAccount: the same for the account endpoints' lists.
func TestClient_NullBodyAccount(t *testing.T) {
	t.Parallel()
	const acct = "0a1b2c3d4e5f60718293a4b5c6d7e8f9"
	ep := token.Endpoint{AccountID: acct}
	for _, call := range []struct {
		name, path string
		call       func(ctx context.Context, c *Client) error
	}{
		{"PermissionGroups", "/accounts/" + acct + "/tokens/permission_groups", func(ctx context.Context, c *Client) error {
			_, err := c.PermissionGroups(ctx, ep)
			return err
		}},
		{"ListTokens", "/accounts/" + acct + "/tokens", func(ctx context.Context, c *Client) error {
			_, err := c.ListTokens(ctx, ep)
			return err
		}},
	} {
		t.Run(call.name, func(t *testing.T) {
			t.Parallel()
			f := mustFake(t)
			f.handle("GET", call.path, func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				_, _ = io.WriteString(w, "null")
			})
			if err := call.call(t.Context(), f.client); !errors.Is(err, token.ErrBadAnswer) {
				t.Errorf("%s = %v, want token.ErrBadAnswer", call.name, err)
			}
		})
	}
}

// TestClient_BadGateway: a proxy's HTML 502 page is still an *APIError with
// its status, and the idempotent calls retry it up to Attempts.
func TestClient_BadGateway(t *testing.T) {
	forEachCall(t, func(t *testing.T, f *fake, call callCase) {
		f.handle(call.method, call.path, reply(t, http.StatusBadGateway, "bad_gateway.html"))
		err := call.call(t.Context(), f.client)
		var apiErr *APIError
		if !errors.As(err, &apiErr) || apiErr.Status != http.StatusBadGateway || len(apiErr.Errors) != 0 {
			t.Fatalf("error %v, want *APIError with status 502 and no codes", err)
		}
		wantHits, wantWaits := int64(4), backoffs4
		if !call.idempotent {
			wantHits, wantWaits = 1, nil
			if !errors.Is(err, token.ErrOutcomeUnknown) {
				t.Errorf("CreateToken after a 502 = %v, want token.ErrOutcomeUnknown", err)
			}
		}
		if n := f.hits.Load(); n != wantHits {
			t.Errorf("%d requests, want %d", n, wantHits)
		}
		if diff := cmp.Diff(wantWaits, f.waits.All()); diff != "" {
			t.Errorf("backoffs (-want +got):\n%s", diff)
		}
	})
}

// TestClient_RetryThenSucceed: one 502 page, then the answer.
func TestClient_RetryThenSucceed(t *testing.T) {
	t.Parallel()
	f := mustFake(t)
	f.handle("GET", "/user/tokens/"+tokenID, sequence(
		reply(t, http.StatusBadGateway, "bad_gateway.html"),
		reply(t, http.StatusOK, "token.json"),
	))
	got, err := f.client.GetToken(t.Context(), token.Endpoint{}, tokenID)
	if err != nil {
		t.Fatal(err)
	}
	want := token.Info{ID: tokenID, Name: "cf-scoped-token fixture", Status: "active", IssuedOn: t0, ExpiresOn: t0.Add(time.Hour)}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("GetToken (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(backoffs4[:1], f.waits.All()); diff != "" {
		t.Errorf("backoffs (-want +got):\n%s", diff)
	}
}

// TestClient_RetryAfter: a 429's Retry-After is honoured in full and spread
// by up to half of itself (here the jitter is 0.5: a quarter), never cut by
// Max, for idempotent calls and for create alike; only retry.MaxAfter bounds
// it.
func TestClient_RetryAfter(t *testing.T) {
	t.Parallel()
	// An HTTP date is read against the client's clock, not the machine's.
	future := t0.Add(30 * time.Minute).Format(http.TimeFormat)
	for _, tc := range []struct {
		name, retryAfter string
		max, want        time.Duration
	}{
		{"seconds", "7", 10 * time.Second, 8750 * time.Millisecond},
		{"seconds over Max", "7", 3 * time.Second, 8750 * time.Millisecond},
		{"HTTP date", future, 10 * time.Second, 37*time.Minute + 30*time.Second},
		{"absent", "", 10 * time.Second, 50 * time.Millisecond},
		// Huge waits are bounded, never wrapped around to a negative one
		// (which sent the next request at once).
		{"seconds past the bound", "9223372036", 10 * time.Second, retry.MaxAfter * 5 / 4},
		{"HTTP date past the bound", "Fri, 31 Dec 9999 23:59:59 GMT", 10 * time.Second, retry.MaxAfter * 5 / 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			forEachCall(t, func(t *testing.T, f *fake, call callCase) {
				f.client.Retry.Max = tc.max
				f.client.Now = func() time.Time { return t0 }
				f.handle(call.method, call.path, sequence(
					reply(t, http.StatusTooManyRequests, "rate_limited.json", "Retry-After", tc.retryAfter),
					okReply(t, call.name),
				))
				if err := call.call(t.Context(), f.client); err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff([]time.Duration{tc.want}, f.waits.All()); diff != "" {
					t.Errorf("backoffs (-want +got):\n%s", diff)
				}
				if n := f.hits.Load(); n != 2 {
					t.Errorf("%d requests, want 2", n)
				}
			})
		})
	}
}

// TestClient_Progress: a line for each failed attempt after the first that
// is tried again, which stays true under a rate limit: a throttled attempt
// uses up none of the attempts, so it is sent again under its number and
// said to be rate limited, and a later failure is numbered among the
// attempts that count ("attempt 4 of 4 failed; next in …" would promise a
// fifth).
func TestClient_Progress(t *testing.T) {
	t.Parallel()
	f := mustFake(t)
	var lines []string
	f.client.Progressf = func(format string, args ...any) { lines = append(lines, fmt.Sprintf(format, args...)) }
	f.handle("GET", "/user/tokens/"+tokenID, sequence(
		reply(t, http.StatusServiceUnavailable, "internal_error.json"),
		reply(t, http.StatusTooManyRequests, "rate_limited.json", "Retry-After", "7"),
		reply(t, http.StatusTooManyRequests, "rate_limited.json", "Retry-After", "7"),
		reply(t, http.StatusServiceUnavailable, "internal_error.json"),
		reply(t, http.StatusOK, "token.json"),
	))
	if _, err := f.client.GetToken(t.Context(), token.Endpoint{}, tokenID); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"rate limited (attempt 2); next in 8.8s",
		"rate limited (attempt 2); next in 8.8s",
		"attempt 2 of 4 failed: 503 Service Unavailable; next in 400ms",
	}
	if diff := cmp.Diff(want, lines); diff != "" {
		t.Errorf("progress lines (-want +got):\n%s", diff)
	}
}

// TestRateLimitError: when the 429s outlast the phase, the error is a
// *RateLimitError with the wait the API asked for, found by errors.As as
// either type — and a wait the API asked for uses up no attempt: a rate
// limit is waited out until the deadline.
func TestRateLimitError(t *testing.T) {
	t.Parallel()
	f := mustFake(t)
	f.client.Retry.Attempts = 2
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	f.client.Retry.Sleep = func(ctx context.Context, d time.Duration) error {
		if len(f.waits.All()) == 4 {
			cancel() // the phase's deadline, five answers in
		}
		return f.waits.Sleep(ctx, d)
	}
	f.handle("GET", "/user/tokens/"+tokenID, reply(t, http.StatusTooManyRequests, "rate_limited.json", "Retry-After", "7"))
	_, err := f.client.GetToken(ctx, token.Endpoint{}, tokenID)
	var rl *RateLimitError
	if !errors.As(err, &rl) {
		t.Fatalf("GetToken = %v, want *RateLimitError", err)
	}
	want := &RateLimitError{
		APIError: APIError{Method: "GET", Path: "user/tokens/" + tokenID, Status: 429,
			Errors: []Message{{Code: 971, Message: "Please wait and consider throttling your request speed"}}},
		RetryAfter: 7 * time.Second,
	}
	if diff := cmp.Diff(want, rl); diff != "" {
		t.Errorf("RateLimitError (-want +got):\n%s", diff)
	}
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.Status != 429 || !errors.Is(err, token.ErrRateLimited) {
		t.Errorf("errors.As(*APIError) = %v", apiErr)
	}
	if !strings.Contains(err.Error(), "retry after 7s") || !errors.Is(err, context.Canceled) {
		t.Errorf("error %q does not name the wait and the deadline", err)
	}
	if n := f.hits.Load(); n != 5 {
		t.Errorf("%d requests, want 5 (Attempts is 2, but a 429's wait uses up none)", n)
	}
}

// TestClient_RetryByStatus: which statuses are repeated, and how often.
func TestClient_RetryByStatus(t *testing.T) {
	t.Parallel()
	for _, status := range []int{400, 401, 403, 404, 405, 410, 412, 422, 408, 409, 500, 501, 502, 503, 504, 520, 522} {
		t.Run(strconv.Itoa(status), func(t *testing.T) {
			forEachCall(t, func(t *testing.T, f *fake, call callCase) {
				f.handle(call.method, call.path, reply(t, status, "internal_error.json"))
				err := call.call(t.Context(), f.client)
				var apiErr *APIError
				if !errors.As(err, &apiErr) || apiErr.Status != status {
					t.Fatalf("error %v, want *APIError with status %d", err, status)
				}
				temporary := status == 408 || status == 409 || status >= 500
				wantHits, wantWaits := int64(1), []time.Duration(nil)
				if temporary && call.idempotent {
					wantHits, wantWaits = 4, backoffs4
				}
				if n := f.hits.Load(); n != wantHits {
					t.Errorf("%d requests, want %d", n, wantHits)
				}
				if diff := cmp.Diff(wantWaits, f.waits.All()); diff != "" {
					t.Errorf("backoffs (-want +got):\n%s", diff)
				}
				if !call.idempotent && errors.Is(err, token.ErrOutcomeUnknown) != (status >= 500) {
					t.Errorf("CreateToken after %d: ErrOutcomeUnknown = %v, want %v", status, !(status >= 500), status >= 500)
				}
			})
		})
	}
}

// TestClient_DefaultRetry: a zero Retry means DefaultRetry's attempts.
func TestClient_DefaultRetry(t *testing.T) {
	t.Parallel()
	f := mustFake(t)
	w := &waits{}
	f.client.Retry = retry.Policy{Sleep: w.Sleep, Jitter: func() float64 { return 0 }}
	f.handle("GET", "/user/tokens/"+tokenID, reply(t, http.StatusServiceUnavailable, "internal_error.json"))
	if _, err := f.client.GetToken(t.Context(), token.Endpoint{}, tokenID); err == nil {
		t.Fatal("no error")
	}
	if n := f.hits.Load(); n != int64(DefaultRetry().Attempts) {
		t.Errorf("%d requests, want DefaultRetry().Attempts = %d", n, DefaultRetry().Attempts)
	}
}

// TestClient_TransportErrorsRetried: a connection closed without an answer
// is repeated for idempotent calls.
func TestClient_TransportErrorsRetried(t *testing.T) {
	t.Parallel()
	f := mustFake(t)
	hangUp := func(w http.ResponseWriter, _ *http.Request) {
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			_ = conn.Close()
		}
	}
	f.handle("GET", "/user/tokens/"+tokenID, sequence(hangUp, hangUp, hangUp, reply(t, http.StatusOK, "token.json")))
	if _, err := f.client.GetToken(t.Context(), token.Endpoint{}, tokenID); err != nil {
		t.Fatal(err)
	}
	// net/http itself may replay a GET once on a reused connection, so the
	// client's own retries number at least one.
	if got := f.waits.All(); len(got) == 0 || len(got) > 3 {
		t.Errorf("backoffs %v, want 1 to 3", got)
	}
}

// TestClient_Redirect: a 3xx is refused, its Location never requested,
// whether it points at this host or another, and it is not retried.
func TestClient_Redirect(t *testing.T) {
	t.Parallel()
	for _, status := range []int{301, 302, 303, 307, 308} {
		t.Run(strconv.Itoa(status), func(t *testing.T) {
			forEachCall(t, func(t *testing.T, f *fake, call callCase) {
				other := httptest404(t)
				var local atomic.Int64
				f.mux.HandleFunc("/elsewhere/", func(w http.ResponseWriter, _ *http.Request) { local.Add(1) })
				f.handle(call.method, call.path, sequence(
					redirect(status, other.URL+"/client/v4/stolen"),
					redirect(status, f.srv.URL+"/elsewhere/"),
				))
				for range 2 {
					err := call.call(t.Context(), f.client)
					if !errors.Is(err, errRedirect) {
						t.Errorf("error %v, want errRedirect", err)
					}
					if errors.Is(err, token.ErrOutcomeUnknown) {
						t.Errorf("a redirect is an answer, not an unknown outcome: %v", err)
					}
				}
				if n := other.hits.Load() + local.Load(); n != 0 {
					t.Errorf("the redirect target was requested %d times", n)
				}
				if n := f.hits.Load(); n != 2 {
					t.Errorf("%d requests, want 2 (one per call)", n)
				}
			})
		})
	}
	t.Run("RunnerIP", func(t *testing.T) {
		t.Parallel()
		f := mustFake(t)
		other := httptest404(t)
		f.mux.HandleFunc("GET /cdn-cgi/trace", redirect(http.StatusFound, other.URL+"/cdn-cgi/trace"))
		if _, err := f.client.RunnerIP(t.Context()); !errors.Is(err, errRedirect) {
			t.Errorf("RunnerIP = %v, want errRedirect", err)
		}
		if n := other.hits.Load(); n != 0 {
			t.Errorf("the redirect target was requested %d times", n)
		}
		if n := len(f.waits.All()); n != 0 {
			t.Errorf("%d backoffs, want none", n)
		}
	})
}

// okFiles are the success answers of each method, in testdata.
var okFiles = map[string]string{
	"PermissionGroups": "permission_groups.json",
	"CreateToken":      "created.json",
	"GetToken":         "token.json",
	"ListTokens":       "list.json",
	"DeleteToken":      "deleted.json",
	"VerifyToken":      "verified.json",
	"RollToken":        "rolled.json",
}

func okReply(tb testing.TB, call string) http.HandlerFunc {
	return reply(tb, http.StatusOK, okFiles[call])
}

func redirect(status int, location string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Location", location)
		w.WriteHeader(status)
	}
}

// TestClient_LargeErrorBody: an error body is read no further than 64 KiB.
// The body is valid JSON only as a whole, so codes found would prove a
// read past the limit; the server also counts what it could write.
func TestClient_LargeErrorBody(t *testing.T) {
	t.Parallel()
	f := mustFake(t)
	const total = 64 << 20
	written := make(chan int64, 1)
	f.handle("GET", "/user/tokens/"+tokenID, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusForbidden)
		head := `{"success":false,"errors":[{"code":1234,"message":"past the limit"}],"result":null,"pad":"`
		n, _ := io.WriteString(w, head)
		sum := int64(n)
		chunk := strings.Repeat("A", 32<<10)
		for sum < total {
			n, err := io.WriteString(w, chunk)
			sum += int64(n)
			if err != nil {
				break
			}
		}
		n, _ = io.WriteString(w, `"}`)
		written <- sum + int64(n)
	})
	_, err := f.client.GetToken(t.Context(), token.Endpoint{}, tokenID)
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.Status != http.StatusForbidden {
		t.Fatalf("GetToken = %v, want a 403 *APIError", err)
	}
	if len(apiErr.Errors) != 0 {
		t.Errorf("codes %v decoded from past the 64 KiB limit", apiErr.Errors)
	}
	if n := <-written; n >= total/2 {
		t.Errorf("the server could write %d bytes: the client read the body unbounded", n)
	}
}

// TestAPIError_NoSecrets: an error names method, path, status and codes and
// nothing that came in a header, in either direction.
func TestAPIError_NoSecrets(t *testing.T) {
	forEachCall(t, func(t *testing.T, f *fake, call callCase) {
		var debug []string
		var mu sync.Mutex
		f.client.UserAgent = "cf-scoped-token/test-agent"
		f.client.Debugf = func(format string, args ...any) {
			mu.Lock()
			defer mu.Unlock()
			debug = append(debug, fmt.Sprintf(format, args...))
		}
		f.handle(call.method, call.path, reply(t, http.StatusForbidden, "errors_several.json",
			"Cf-Ray", "8badf00d-RAYSECRET", "Set-Cookie", "__cf_bm=COOKIESECRET", "Www-Authenticate", "Bearer realm=REALMSECRET"))
		err := call.call(t.Context(), f.client)
		if err == nil {
			t.Fatal("no error")
		}
		msg := err.Error()
		for _, s := range []string{call.method, strings.TrimPrefix(call.path, "/"), "403", "code 1001", "code 9109"} {
			if !strings.Contains(msg, s) {
				t.Errorf("error %q lacks %q", msg, s)
			}
		}
		mu.Lock()
		defer mu.Unlock()
		for _, text := range append([]string{msg, fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", err)}, debug...) {
			for _, leak := range []string{parentValue, "Bearer", "Authorization", "test-agent", "RAYSECRET", "COOKIESECRET", "REALMSECRET", "include_expired"} {
				if strings.Contains(text, leak) {
					t.Errorf("%q appears in %q", leak, text)
				}
			}
		}
		if len(debug) == 0 {
			t.Error("Debugf was never called")
		}
	})
}

// TestClient_CancelStopsBackoff: a cancelled context ends the real backoff
// sleep at once, with no further request.
func TestClient_CancelStopsBackoff(t *testing.T) {
	forEachCall(t, func(t *testing.T, f *fake, call callCase) {
		// The package's real sleep, with a backoff no test could sit
		// out; the test cancels once the client is waiting in it.
		entered := make(chan time.Duration, 1)
		f.client.Retry = retry.Policy{Attempts: 5, Base: time.Hour, Max: time.Hour, Jitter: func() float64 { return 1 },
			Sleep: func(ctx context.Context, d time.Duration) error {
				entered <- d
				return retry.Sleep(ctx, d)
			}}
		ctx, cancel := context.WithCancel(t.Context())
		go func() {
			if d := <-entered; d != 45*time.Minute {
				t.Errorf("backoff %s, want the Retry-After of 30m spread by half of itself", d)
			}
			cancel()
		}()
		f.handle(call.method, call.path, reply(t, http.StatusTooManyRequests, "rate_limited.json", "Retry-After", "1800"))
		start := time.Now()
		err := call.call(ctx, f.client)
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("the call returned %s after cancellation", d)
		}
		if !errors.Is(err, context.Canceled) {
			t.Errorf("error %v, want context.Canceled", err)
		}
		var rl *RateLimitError
		if !errors.As(err, &rl) {
			t.Errorf("error %v does not keep the 429 that caused the wait", err)
		}
		if errors.Is(err, token.ErrOutcomeUnknown) {
			t.Errorf("a create refused with 429 has a known outcome: %v", err)
		}
		if n := f.hits.Load(); n != 1 {
			t.Errorf("%d requests, want 1", n)
		}
	})
}

// TestClient_BasePath: requests go below the base path, with or without a
// trailing slash on it; the fake's catch-all fails a request that loses it.
func TestClient_BasePath(t *testing.T) {
	t.Parallel()
	for _, suffix := range []string{"", "/"} {
		t.Run("slash="+strconv.FormatBool(suffix != ""), func(t *testing.T) {
			t.Parallel()
			f := mustFake(t)
			f.client.BaseURL += suffix
			f.handle("GET", "/user/tokens/"+tokenID, reply(t, http.StatusOK, "token.json"))
			if _, err := f.client.GetToken(t.Context(), token.Endpoint{}, tokenID); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestClient_ListTokensEndless: a server that answers every page with a
// full page (one that ignores "page") must not keep the client listing
// until its deadline.
func TestClient_ListTokensEndless(t *testing.T) {
	t.Parallel()
	f := mustFake(t)
	var items []string
	for i := range listPageSize {
		items = append(items, fmt.Sprintf(`{"id":"%032x","name":"t%d","status":"active","policies":[]}`, i, i))
	}
	page := []byte(`{"success":true,"errors":[],"messages":[],"result":[` + strings.Join(items, ",") + `]}`)
	f.handle("GET", "/user/tokens", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(page)
	})
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	_, err := f.client.ListTokens(ctx, token.Endpoint{})
	if err == nil || ctx.Err() != nil {
		t.Fatalf("ListTokens = %v (context: %v), want an error before the deadline", err, ctx.Err())
	}
	if n := f.hits.Load(); n > maxListPages {
		t.Errorf("%d pages requested, want at most %d", n, maxListPages)
	}
}

// TestClient_CreateTokenTruncatedAnswer: a 200 cut off mid-body may have
// created the token, so its outcome is unknown, and it is not repeated.
func TestClient_CreateTokenTruncatedAnswer(t *testing.T) {
	t.Parallel()
	f := mustFake(t)
	body := fixture(t, "created.json")
	f.handle("POST", "/user/tokens", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		_, _ = w.Write(body[:len(body)/2])
		if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
			_ = conn.Close()
		}
	})
	err := calls[1].call(t.Context(), f.client)
	if !errors.Is(err, token.ErrOutcomeUnknown) {
		t.Errorf("CreateToken = %v, want token.ErrOutcomeUnknown", err)
	}
	if n := f.hits.Load(); n != 1 {
		t.Errorf("%d POSTs, want 1", n)
	}
}
