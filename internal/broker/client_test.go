package broker_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cf-scoped-token/cf-scoped-token/internal/broker"
	"github.com/cf-scoped-token/cf-scoped-token/internal/emulator"
	"github.com/cf-scoped-token/cf-scoped-token/internal/retry"
	"github.com/cf-scoped-token/cf-scoped-token/internal/token"
)

// flaky answers the first len(answers) requests with them (status and
// Retry-After), then hands the rest to next.
func flaky(next http.Handler, answers ...[2]int) (http.Handler, *atomic.Int32) {
	var n atomic.Int32
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i := int(n.Add(1)) - 1
		if i < len(answers) {
			status := answers[i][0]
			if status == 0 { // a dropped connection
				hj, _ := w.(http.Hijacker)
				c, _, _ := hj.Hijack()
				c.Close()
				return
			}
			if answers[i][1] > 0 {
				w.Header().Set("Retry-After", fmt.Sprint(answers[i][1]))
			}
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			fmt.Fprintf(w, `{"error":"temporarily_unavailable","error_description":"try \u0007 later"}`)
			return
		}
		next.ServeHTTP(w, r)
	}), &n
}

func TestClientRetries(t *testing.T) {
	t.Parallel()
	w := mustWorld(t)
	h, n := flaky(w.b, [2]int{503, 0}, [2]int{0, 0}, [2]int{429, 3}, [2]int{502, 0})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	var waits []time.Duration
	var lines []string
	c := &broker.Client{BaseURL: srv.URL, HTTP: srv.Client(),
		Retry: retry.Policy{Attempts: 5, Base: time.Second, Max: 30 * time.Second, Jitter: func() float64 { return 0.5 },
			Sleep: func(_ context.Context, d time.Duration) error { waits = append(waits, d); return nil }},
		Progressf: func(format string, args ...any) { lines = append(lines, fmt.Sprintf(format, args...)) }}
	g, err := c.Exchange(t.Context(), token.NewSecret(w.jwt(t, nil)), broker.ExchangeRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if n.Load() != 5 || g.TokenID == "" {
		t.Errorf("%d requests, token %q; want 5 and a token", n.Load(), g.TokenID)
	}
	// Backoff 1s·2^(n-1), halved by the jitter; a Retry-After is honoured and
	// spread by a quarter of itself at this jitter, and uses up no attempt.
	if diff := cmp.Diff([]time.Duration{500 * time.Millisecond, time.Second, 3750 * time.Millisecond, 4 * time.Second}, waits); diff != "" {
		t.Errorf("waits (-want +got):\n%s", diff)
	}
	want := []string{
		"attempt 2 of 5 failed: POST " + srv.URL + "/v1/token: EOF; next in 1s",
		"attempt 3 of 5 failed: 429 temporarily_unavailable; next in 3.8s",
		"attempt 3 of 5 failed: 502 temporarily_unavailable; next in 4s",
	}
	if diff := cmp.Diff(want, lines); diff != "" {
		t.Errorf("progress lines (-want +got):\n%s", diff)
	}
}

func TestClientGivesUp(t *testing.T) {
	t.Parallel()
	w := mustWorld(t)
	// Never retried: any other 4xx.
	h, n := flaky(w.b, [2]int{400, 0}, [2]int{503, 0})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	c := &broker.Client{BaseURL: srv.URL, HTTP: srv.Client(), Retry: retry.Policy{Sleep: noWait}}
	_, err := c.Exchange(t.Context(), token.NewSecret(w.jwt(t, nil)), broker.ExchangeRequest{})
	var be *broker.Error
	if !errors.As(err, &be) || be.Status != 400 || n.Load() != 1 {
		t.Fatalf("after a 400: %v, %d requests; want the 400 after one request", err, n.Load())
	}
	// The description is the broker's text, escaped.
	if strings.ContainsRune(err.Error(), '\a') || !strings.Contains(err.Error(), `try \a later`) {
		t.Errorf("error text %q", err.Error())
	}
	// At most Attempts.
	h, n = flaky(w.b, [2]int{503, 0}, [2]int{503, 0}, [2]int{503, 0})
	srv2 := httptest.NewServer(h)
	t.Cleanup(srv2.Close)
	c = &broker.Client{BaseURL: srv2.URL, HTTP: srv2.Client(), Retry: retry.Policy{Attempts: 3, Sleep: noWait}}
	err = c.Revoke(t.Context(), token.NewSecret("cfut_child"))
	if !errors.As(err, &be) || be.Status != 503 || n.Load() != 3 {
		t.Errorf("503 thrice with 3 attempts: %v, %d requests", err, n.Load())
	}
	// A cancelled context stops at once.
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := w.client.Exchange(ctx, token.NewSecret("x.y.z"), broker.ExchangeRequest{}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
}

func TestClientRefuses(t *testing.T) {
	t.Parallel()
	redirect := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "https://elsewhere.example/v1/token", http.StatusTemporaryRedirect)
	}))
	t.Cleanup(redirect.Close)
	secret := token.NewSecret("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln")
	cases := []struct {
		name string
		c    *broker.Client
	}{
		{"http off loopback", &broker.Client{BaseURL: "http://broker.example.com", HTTP: http.DefaultClient}},
		{"not a URL", &broker.Client{BaseURL: "broker", HTTP: http.DefaultClient}},
		{"no HTTP client", &broker.Client{BaseURL: "https://broker.example.com"}},
		{"a redirect", &broker.Client{BaseURL: redirect.URL, HTTP: redirect.Client(), Retry: retry.Policy{Sleep: noWait}}},
	}
	for _, tc := range cases {
		_, err := tc.c.Exchange(t.Context(), secret, broker.ExchangeRequest{})
		if err == nil || strings.Contains(err.Error(), secret.Reveal()) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
	if _, err := (&broker.Client{}).Exchange(t.Context(), token.Secret{}, broker.ExchangeRequest{}); err == nil {
		t.Error("an exchange without a token")
	}
}

func TestClientBadAnswers(t *testing.T) {
	t.Parallel()
	for name, body := range map[string]string{
		"not JSON":     `<html>`,
		"no token":     `{"token_id":"0123456789abcdef0123456789abcdef","expires_at":"2026-11-27T20:00:00Z"}`,
		"bad id":       `{"access_token":"cfut_x","token_id":"../x","expires_at":"2026-11-27T20:00:00Z"}`,
		"short id":     `{"access_token":"cfut_x","token_id":"0123456789abcdef0123456789abcde","expires_at":"2026-11-27T20:00:00Z"}`,
		"long id":      `{"access_token":"cfut_x","token_id":"0123456789abcdef0123456789abcdef0","expires_at":"2026-11-27T20:00:00Z"}`,
		"upper id":     `{"access_token":"cfut_x","token_id":"0123456789ABCDEF0123456789abcdef","expires_at":"2026-11-27T20:00:00Z"}`,
		"bad expiry":   `{"access_token":"cfut_x","token_id":"0123456789abcdef0123456789abcdef","expires_at":"soon"}`,
		"not a bearer": `{"access_token":"cfut_x","token_type":"N_A","token_id":"0123456789abcdef0123456789abcdef","expires_at":"2026-11-27T20:00:00Z"}`,
		"bad owner":    `{"access_token":"cfut_x","token_id":"0123456789abcdef0123456789abcdef","expires_at":"2026-11-27T20:00:00Z","owner":"org"}`,
		"bad account":  `{"access_token":"cfut_x","token_id":"0123456789abcdef0123456789abcdef","expires_at":"2026-11-27T20:00:00Z","account_ids":["x\n::error::y"]}`,
		"bad group":    `{"access_token":"cfut_x","token_id":"0123456789abcdef0123456789abcdef","expires_at":"2026-11-27T20:00:00Z","permission_groups":[{"id":"../x","name":"n"}]}`,
		"bad ip":       `{"access_token":"cfut_x","token_id":"0123456789abcdef0123456789abcdef","expires_at":"2026-11-27T20:00:00Z","allowed_ips":["caller"]}`,
	} {
		var n atomic.Int32
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			n.Add(1)
			_, _ = w.Write([]byte(body))
		}))
		c := &broker.Client{BaseURL: srv.URL, HTTP: srv.Client(), Retry: retry.Policy{Sleep: noWait}}
		_, err := c.Exchange(t.Context(), token.NewSecret("a.b.c"), broker.ExchangeRequest{})
		if err == nil || n.Load() != 1 {
			t.Errorf("%s: %v after %d requests, want an error after one", name, err, n.Load())
		}
		srv.Close()
	}
}

// TestClientRetryDefaults: each field Client.Retry leaves zero is
// DefaultRetry's, on its own: a policy that sets only Attempts still bounds
// each attempt by the exchange's attempt timeout, instead of none.
func TestClientRetryDefaults(t *testing.T) {
	t.Parallel()
	type fields struct {
		Attempts           int
		Base, Max, Timeout time.Duration
		KeepsSleep         bool
	}
	d := broker.DefaultRetry()
	for _, tc := range []struct {
		name string
		in   retry.Policy
		want fields
	}{
		{"zero", retry.Policy{}, fields{d.Attempts, d.Base, d.Max, d.Timeout, false}},
		{"attempts only", retry.Policy{Attempts: 3}, fields{3, d.Base, d.Max, d.Timeout, false}},
		{"timeout only", retry.Policy{Timeout: 5 * time.Second}, fields{d.Attempts, d.Base, d.Max, 5 * time.Second, false}},
		{"waits and sleep", retry.Policy{Base: time.Millisecond, Max: 2 * time.Millisecond, Sleep: noWait},
			fields{d.Attempts, time.Millisecond, 2 * time.Millisecond, d.Timeout, true}},
		{"all set", retry.Policy{Attempts: 1, Base: time.Millisecond, Max: time.Millisecond, Timeout: time.Second},
			fields{1, time.Millisecond, time.Millisecond, time.Second, false}},
	} {
		p := broker.RetryPolicy(&broker.Client{Retry: tc.in})
		got := fields{p.Attempts, p.Base, p.Max, p.Timeout, p.Sleep != nil}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("%s: effective policy (-want +got):\n%s", tc.name, diff)
		}
	}
}

// TestClientOutlastsSlowExchange: an attempt of the client outlasts the
// longest exchange the broker makes (its deadline, then the clean-up's
// grace), so that a slow Cloudflare create is waited for, not dropped and
// retried with the same OIDC token, which the broker refuses as a replay.
// At small scale: a broker whose exchanges may take 2 s, a create that
// takes 1 s.
func TestClientOutlastsSlowExchange(t *testing.T) {
	t.Parallel()
	if got, least := broker.DefaultRetry().Timeout, broker.ExchangeDeadline+broker.DefaultGrace; got <= least {
		t.Errorf("DefaultRetry's attempt timeout %s, want more than the broker's exchange deadline and grace, %s", got, least)
	}
	const deadline, createTakes = 2 * time.Second, time.Second
	for _, tc := range []struct {
		name    string
		timeout time.Duration
		dropped bool
	}{
		{"an attempt timeout from the deadline", broker.AttemptTimeout(deadline), false},
		// The ratio of the old default: 30 s attempts, 2 min exchanges.
		{"attempts shorter than the exchange", deadline / 4, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := mustWorld(t, withServer(func(s *broker.Server) { broker.SetExchangeDeadline(s, deadline) }))
			w.e.AddFault(emulator.Fault{Route: "POST /user/tokens", Kind: emulator.Latency, Delay: createTakes})
			h, n := flaky(w.b)
			srv := httptest.NewServer(h)
			t.Cleanup(srv.Close)
			c := &broker.Client{BaseURL: srv.URL, HTTP: srv.Client(), Retry: retry.Policy{Attempts: 3, Timeout: tc.timeout, Sleep: noWait}}
			g, err := c.Exchange(t.Context(), token.NewSecret(w.jwt(t, nil)), broker.ExchangeRequest{})
			if err := w.b.Wait(t.Context()); err != nil {
				t.Fatal(err)
			}
			if tc.dropped {
				// The slow exchange was given up on and sent again; whether
				// the retry met the used jti depends on how soon the broker
				// gave it back.
				if err == nil || n.Load() < 2 {
					t.Errorf("exchange: %v after %d requests, want a failure after a retry", err, n.Load())
				}
				return
			}
			if err != nil || n.Load() != 1 {
				t.Fatalf("exchange: %v after %d requests, want a token after one", err, n.Load())
			}
			if kids := w.children(); len(kids) != 1 || kids[0].ID != g.TokenID {
				t.Errorf("emulator holds %s, want the token %s alone", shown(kids), g.TokenID)
			}
			if creates := len(w.e.RequestsTo("POST /user/tokens")); creates != 1 {
				t.Errorf("%d creates, want 1", creates)
			}
		})
	}
}
