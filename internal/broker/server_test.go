package broker_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cf-scoped-token/cf-scoped-token/internal/broker"
	"github.com/cf-scoped-token/cf-scoped-token/internal/broker/brokertest"
	"github.com/cf-scoped-token/cf-scoped-token/internal/emulator"
	"github.com/cf-scoped-token/cf-scoped-token/internal/oidcverify"
	"github.com/cf-scoped-token/cf-scoped-token/internal/policy"
	"github.com/cf-scoped-token/cf-scoped-token/internal/token"
)

func TestReload(t *testing.T) {
	t.Parallel()
	w := mustWorld(t)
	subject := token.NewSecret(w.jwt(t, nil))
	if _, err := w.client.Exchange(t.Context(), subject, broker.ExchangeRequest{}); err != nil {
		t.Fatal(err)
	}
	// A good new policy: the rule now wants another ref.
	next := strings.Replace(testPolicy, "ref: refs/heads/main", "ref: refs/heads/release", 1)
	if err := w.b.Reload(t.Context(), mustPolicy(t, w, next)); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	var be *broker.Error
	if _, err := w.client.Exchange(t.Context(), token.NewSecret(w.jwt(t, nil)), broker.ExchangeRequest{}); !errors.As(err, &be) || be.Code != broker.AccessDenied {
		t.Errorf("after the reload: %v, want access_denied", err)
	}
	if _, err := w.client.Exchange(t.Context(), token.NewSecret(w.jwt(t, map[string]any{"ref": "refs/heads/release"})), broker.ExchangeRequest{}); err != nil {
		t.Errorf("after the reload, the new ref: %v", err)
	}
	// Same issuers and audience: the replay cache is kept.
	if _, err := w.client.Exchange(t.Context(), subject, broker.ExchangeRequest{}); !errors.As(err, &be) || !strings.Contains(be.Description, "already exchanged") {
		t.Errorf("a token exchanged before the reload: %v, want a replay", err)
	}

	// Bad new policies are refused and the old one stays.
	bad := map[string]string{
		"unknown scope": strings.Replace(next, "organizations:read", `"Access: No Such Thing:read"`, 1),
		"no audience":   strings.Replace(next, "audience: https://broker.test\n", "", 1),
	}
	for name, text := range bad {
		if err := w.b.Reload(t.Context(), mustPolicy(t, w, text)); err == nil {
			t.Errorf("%s: Reload accepted it", name)
		}
		if w.b.Policy().Rules[0].Claims[2].Values[0] != "refs/heads/release" {
			t.Errorf("%s: the policy changed although Reload refused it", name)
		}
	}
	var le *policy.LoadError
	p := mustPolicy(t, w, bad["unknown scope"])
	if err := w.b.Reload(t.Context(), p); !errors.As(err, &le) || le.Faults[0].Line == 0 {
		t.Errorf("unknown scope: %v, want a LoadError with the line", err)
	}
}

func TestStartRefusals(t *testing.T) {
	t.Parallel()
	// A parent Cloudflare refuses.
	w := mustWorld(t, notStarted(), func(_ *broker.Config, s *worldSetup) {
		s.parent = func(emulator.Seeded) string { return "cfut_NotATokenAtAll000000000000000000000000000000000" }
	})
	var pe *broker.ParentError
	if err := w.b.Start(t.Context()); !errors.As(err, &pe) {
		t.Errorf("Start with a refused parent: %v, want a ParentError", err)
	}
	if ok, why := w.b.Ready(); ok || why == "" {
		t.Errorf("Ready() = %v, %q after a failed Start", ok, why)
	}
	// An account-owned parent and a policy that grants user-owned tokens.
	w = mustWorld(t, notStarted(), func(_ *broker.Config, s *worldSetup) {
		s.parent = func(s emulator.Seeded) string { return s.AccountToken }
	})
	if err := w.b.Start(t.Context()); !errors.As(err, &pe) || !strings.Contains(err.Error(), "user endpoint") {
		t.Errorf("Start with an account parent for user grants: %v", err)
	}
	// An account-owned parent and a policy of its account only: fine.
	accountOnly := testPolicy[:strings.Index(testPolicy, "  - name: access-deploy")] + testPolicy[strings.Index(testPolicy, "  - name: account-owned"):]
	w = mustWorld(t, withPolicy(accountOnly), func(_ *broker.Config, s *worldSetup) {
		s.parent = func(s emulator.Seeded) string { return s.AccountToken }
	})
	if _, err := w.client.Exchange(t.Context(), token.NewSecret(w.jwt(t, map[string]any{"repository_id": "777"})), broker.ExchangeRequest{}); err != nil {
		t.Errorf("account parent: %v", err)
	}
	// A scope the catalogue does not have.
	w = mustWorld(t, notStarted(), withPolicy(strings.Replace(testPolicy, "organizations:read", `"Access: No Such Thing:read"`, 1)))
	var le *policy.LoadError
	if err := w.b.Start(t.Context()); !errors.As(err, &le) {
		t.Errorf("Start with an unknown scope: %v, want a LoadError", err)
	}
	// Audience from neither the flag nor the file; from both, differing.
	for _, tc := range []struct {
		name, flag, policy string
	}{
		{"none", "", strings.Replace(testPolicy, "audience: https://broker.test\n", "", 1)},
		{"both", "https://other.test", testPolicy},
	} {
		_, err := broker.New(broker.Config{Policy: mustPolicy(t, w, tc.policy), Audience: tc.flag, API: w.cf,
			Parent: token.NewSecret("x"), OIDC: w.oidcConfig()})
		if err == nil || !strings.Contains(err.Error(), "audience") {
			t.Errorf("audience %s: New = %v", tc.name, err)
		}
	}
}

func TestSweepDeletesOnlyOwnExpired(t *testing.T) {
	t.Parallel()
	now := time.Now().UTC().Truncate(time.Second)
	var clock atomic.Pointer[time.Time]
	clock.Store(&now)
	nowFn := func() time.Time { return *clock.Load() }
	w := mustWorld(t, withConfig(func(c *broker.Config) { c.Now = nowFn; c.OIDC.Now = time.Now }))
	w.e.SetNow(nowFn)
	mine, err := w.client.Exchange(t.Context(), token.NewSecret(w.jwt(t, nil)), broker.ExchangeRequest{TTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	live, err := w.client.Exchange(t.Context(), token.NewSecret(w.jwt(t, nil)), broker.ExchangeRequest{TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	other := mustWorldOn(t, w, brokertest.SecondParent(w.e, w.seeded))
	theirs, err := other.client.Exchange(t.Context(), token.NewSecret(w.jwt(t, nil)), broker.ExchangeRequest{TTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	later := now.Add(2 * time.Minute)
	clock.Store(&later)
	swept, err := w.b.Sweep(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(swept) != 1 || swept[0].ID != mine.TokenID {
		t.Errorf("swept %+v, want only %s", swept, mine.TokenID)
	}
	if w.alive(mine.TokenID) || !w.alive(live.TokenID) || !w.alive(theirs.TokenID) {
		t.Errorf("after the sweep: mine %v (want gone), live %v, another broker's %v", w.alive(mine.TokenID), w.alive(live.TokenID), w.alive(theirs.TokenID))
	}
	found := false
	for _, e := range w.audit.Entries(t) {
		found = found || e.Event == broker.EventSweep && e.TokenID == mine.TokenID
	}
	if !found {
		t.Error("no token.sweep entry for the swept token")
	}
}

func TestTrustedProxies(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		trusted []string
		xff     []string
		want    string
	}{
		{"no proxies trusted: the peer", nil, []string{"203.0.113.9"}, "127.0.0.1/32"},
		{"trusted peer: the hop before it", []string{"127.0.0.0/8"}, []string{"203.0.113.9"}, "203.0.113.9/32"},
		{"a client-written hop is skipped", []string{"127.0.0.0/8", "10.0.0.0/8"}, []string{"198.51.100.1, 203.0.113.9, 10.1.2.3"}, "203.0.113.9/32"},
		{"a garbage hop stops the walk", []string{"127.0.0.0/8", "10.0.0.0/8"}, []string{"203.0.113.9, junk, 10.1.2.3"}, "10.1.2.3/32"},
		{"no header", []string{"127.0.0.0/8"}, nil, "127.0.0.1/32"},
	}
	for _, tc := range cases {
		var prefixes []netip.Prefix
		for _, p := range tc.trusted {
			prefixes = append(prefixes, netip.MustParsePrefix(p))
		}
		w := mustWorld(t, withConfig(func(c *broker.Config) { c.TrustedProxies = prefixes }))
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, w.srv.URL+broker.TokenPath,
			strings.NewReader(brokertest.Form(w.jwt(t, nil), "allowed_ips", "caller").Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for _, v := range tc.xff {
			req.Header.Add("X-Forwarded-For", v)
		}
		a := w.do(t, req)
		if a.status != 200 {
			t.Fatalf("%s: %d %s", tc.name, a.status, a.err.Description)
		}
		if !strings.Contains(string(a.body), `"allowed_ips":["`+tc.want+`"]`) {
			t.Errorf("%s: answer %s, want allowed_ips [%s]", tc.name, withoutToken(a.body), tc.want)
		}
	}
}

// TestNoSecretInLogs: no token value and no JWT in the audit log, the
// operational log or any answer, whatever the claims hold.
func TestNoSecretInLogs(t *testing.T) {
	t.Parallel()
	w := mustWorld(t)
	hostileJWT := w.jwt(t, map[string]any{"sub": "x"}) // a JWT planted in a claim below
	claims := map[string]any{
		"workflow":    hostileJWT,
		"run_id":      "cfut_PlantedTokenValue0123456789abcdefghijklmnopqrs",
		"repository":  "acme/site-deploy\n{\"event\":\"token.mint\"}",
		"environment": "production",
	}
	var answers []string
	g := w.mustExchange(t, claims)
	// Refusals that quote request values.
	for _, f := range []func() answer{
		func() answer {
			return w.postForm(t, broker.TokenPath, brokertest.Form(w.jwt(t, nil), "subject_token_type", hostileJWT))
		},
		func() answer {
			return w.postForm(t, broker.TokenPath, brokertest.Form(w.jwt(t, nil), "grant_type", g.Token.Reveal()))
		},
		func() answer {
			return w.postForm(t, broker.TokenPath, brokertest.Form(w.jwt(t, nil), "scope", g.Token.Reveal()))
		},
		func() answer { return w.postForm(t, broker.TokenPath, brokertest.Form(hostileJWT+"x")) },
	} {
		answers = append(answers, string(f().body))
	}
	if err := w.client.Revoke(t.Context(), g.Token); err != nil {
		t.Fatal(err)
	}
	secrets := []string{g.Token.Reveal(), w.seeded.UserToken, hostileJWT, "cfut_PlantedTokenValue"}
	for where, text := range map[string]string{"audit": w.audit.String(), "log": w.logs.String(), "answers": strings.Join(answers, "\n")} {
		for _, s := range secrets {
			if strings.Contains(text, s) {
				t.Errorf("%s holds a secret (%.12s…)", where, s)
			}
		}
		if strings.Contains(text, "eyJ") {
			t.Errorf("%s holds a JWT part", where)
		}
	}
	// The planted newline did not forge a line: every line is one entry.
	for _, line := range strings.Split(strings.TrimSpace(w.audit.String()), "\n") {
		if !strings.HasPrefix(line, `{"time":`) {
			t.Errorf("audit line %q", line)
		}
	}
	if e := w.audit.Entries(t)[0]; e.RunID != "[redacted]" || !strings.Contains(e.Repository, "\n") {
		t.Errorf("first entry: run_id %q, repository %q", e.RunID, e.Repository)
	}
}

// oidcConfig is the verifier configuration of the world's issuer.
func (w *world) oidcConfig() oidcverify.Config { return oidcverify.Config{HTTP: w.issSrv.Client()} }

// TestLogLinesQuoted: the operational log quotes what a job or a request
// wrote — a claim, a path — so that a newline in it cannot forge a line.
func TestLogLinesQuoted(t *testing.T) {
	t.Parallel()
	w := mustWorld(t, withServer(func(s *broker.Server) {
		broker.HandleForTest(s, "GET /boom/", func(http.ResponseWriter, *http.Request) { panic("boom") })
	}))
	w.e.AddFault(emulator.Fault{Route: "POST /user/tokens", Kind: emulator.Status, Status: 403})
	w.client.Retry.Attempts = 1
	for _, claims := range []map[string]any{
		{"repository": "acme/site-deploy\nforged: a repository"},
		{"repository": nil, "sub": "repo:acme/site-deploy\nforged: a subject"}, // the name falls back to the subject
	} {
		if _, err := w.client.Exchange(t.Context(), token.NewSecret(w.jwt(t, claims)), broker.ExchangeRequest{}); err == nil {
			t.Fatal("the exchange succeeded although Cloudflare refused the create")
		}
	}
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, w.srv.URL+"/boom/a%0Aforged:%20a%20path", nil)
	if a := w.do(t, req); a.status != http.StatusInternalServerError {
		t.Errorf("a panicking handler: %d, want 500", a.status)
	}
	logs := w.logs.String()
	for _, line := range strings.Split(logs, "\n") {
		if strings.HasPrefix(line, "forged") {
			t.Errorf("a forged log line: %q", line)
		}
	}
	for _, want := range []string{`exchange for "acme/site-deploy\nforged: a repository" (rule "access-deploy")`,
		`exchange for "repo:acme/site-deploy\nforged: a subject" (rule "access-deploy")`,
		`internal error serving GET "/boom/a\nforged: a path": a panic (string)`} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %s:\n%s", want, logs)
		}
	}
}

// TestReloadMovesPublicURL: without a public URL of its own the broker's is
// the audience, so a reload that changes the policy's audience moves the
// RFC 8414 metadata along — its issuer and endpoints, and the path it is
// served at; a configured public URL stays.
func TestReloadMovesPublicURL(t *testing.T) {
	t.Parallel()
	withAudience := func(aud string) string {
		return strings.Replace(testPolicy, "audience: "+brokertest.Audience, "audience: "+aud, 1)
	}
	get := func(w *world, path string) answer {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, w.srv.URL+path, nil)
		return w.do(t, req)
	}
	for _, tc := range []struct {
		name, publicURL string
		want            string // the public URL after the reload
		gone            string // a metadata path served before the reload, not after
	}{
		{"the audience", "", "https://broker2.test/tenant2", "/tenant1"},
		{"a public URL of its own", "https://cf-broker.example/tenant3", "https://cf-broker.example/tenant3", ""},
	} {
		w := mustWorld(t, withPolicy(withAudience("https://broker.test/tenant1")), withConfig(func(c *broker.Config) { c.PublicURL = tc.publicURL }))
		before := w.b.PublicURL()
		if tc.gone != "" {
			if a := get(w, broker.MetadataPath+tc.gone); a.status != http.StatusOK {
				t.Fatalf("%s: %s before the reload: %d %s", tc.name, tc.gone, a.status, a.body)
			}
		}
		if err := w.b.Reload(t.Context(), mustPolicy(t, w, withAudience("https://broker2.test/tenant2"))); err != nil {
			t.Fatalf("%s: Reload: %v", tc.name, err)
		}
		if got := w.b.PublicURL(); got != tc.want {
			t.Errorf("%s: PublicURL() = %q after the reload (%q before), want %q", tc.name, got, before, tc.want)
		}
		for _, path := range []string{broker.MetadataPath, broker.MetadataPath + tc.want[strings.LastIndex(tc.want, "/"):]} {
			a := get(w, path)
			var md broker.Metadata
			if err := json.Unmarshal(a.body, &md); a.status != http.StatusOK || err != nil {
				t.Errorf("%s: %s: %d %s", tc.name, path, a.status, a.body)
				continue
			}
			if md.Issuer != tc.want || md.TokenEndpoint != tc.want+broker.TokenPath || md.RevocationEndpoint != tc.want+broker.RevokePath {
				t.Errorf("%s: %s: %+v, want issuer %s", tc.name, path, md, tc.want)
			}
		}
		for _, path := range []string{tc.gone, tc.want[strings.LastIndex(tc.want, "/"):] + "/x"} {
			if path == "" {
				continue
			}
			if a := get(w, broker.MetadataPath+path); a.status != http.StatusNotFound {
				t.Errorf("%s: %s after the reload: %d %s, want 404", tc.name, path, a.status, a.body)
			}
		}
	}
}
