package broker_test

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cf-scoped-token/cf-scoped-token/internal/broker"
	"github.com/cf-scoped-token/cf-scoped-token/internal/broker/brokertest"
	"github.com/cf-scoped-token/cf-scoped-token/internal/emulator"
	"github.com/cf-scoped-token/cf-scoped-token/internal/policy"
	"github.com/cf-scoped-token/cf-scoped-token/internal/token"
)

// Permission group ids of the catalogue (reference/cloudflare/access-permission-groups.json).
const (
	appsWrite = "1e13c5124ca64b72b1969a67e8829049"
	appsRead  = "7ea222f6d5064cfa89ea366d7c1fee89"
	orgsRead  = "26bc23f853634eb4bff59983b9064fde"
)

func TestExchangeWholeGrant(t *testing.T) {
	t.Parallel()
	w := mustWorld(t)
	before := time.Now()
	g := w.mustExchange(t, nil)
	if g.Rule != "access-deploy" || g.Owner != token.OwnerUser {
		t.Errorf("rule %q owner %q, want access-deploy, user", g.Rule, g.Owner)
	}
	if diff := cmp.Diff([]string{emulator.SeedAccount1, emulator.SeedAccount2}, g.AccountIDs); diff != "" {
		t.Errorf("accounts (-want +got):\n%s", diff)
	}
	var ids []string
	for _, pg := range g.PermissionGroups {
		ids = append(ids, pg.ID)
	}
	if diff := cmp.Diff([]string{appsWrite, orgsRead}, ids); diff != "" {
		t.Errorf("permission groups (-want +got):\n%s", diff)
	}
	// No ttl asked: min(1h, max-ttl 2h).
	if d := g.ExpiresAt.Sub(before); d < time.Hour-2*time.Second || d > time.Hour+2*time.Second {
		t.Errorf("expires %s after the request, want 1h", d)
	}
	if g.ExpiresIn < time.Hour-2*time.Second || g.ExpiresIn > time.Hour {
		t.Errorf("expires_in %s, want about 1h", g.ExpiresIn)
	}
	if len(g.AllowedIPs) != 0 {
		t.Errorf("allowed ips %v, want none", g.AllowedIPs)
	}
	if want := "Access:%20Apps%20and%20Policies:write"; !strings.HasPrefix(g.Scope, want+" ") {
		t.Errorf("scope %q, want it to start with %q", g.Scope, want)
	}
	// The name: prefix, repository, run id.attempt, and a suffix with this broker's MAC.
	if !strings.HasPrefix(g.Name, "cf-scoped-token acme/site-deploy 19677834613.1 ") || len(g.Name) > token.MaxNameLength {
		t.Errorf("name %q", g.Name)
	}
	if !broker.OwnsName(token.NewSecret(w.seeded.UserToken), g.Name) {
		t.Errorf("name %q does not carry the broker's MAC", g.Name)
	}
	if broker.OwnsName(token.NewSecret(w.seeded.AccountToken), g.Name) {
		t.Errorf("name %q carries a MAC under another parent's key", g.Name)
	}
	// The token is what the emulator holds, and it works on the Access API.
	kids := w.children()
	if len(kids) != 1 || kids[0].ID != g.TokenID || kids[0].Name != g.Name || !kids[0].ExpiresOn.Equal(g.ExpiresAt) {
		t.Fatalf("emulator holds %s, want the one token %s", shown(kids), g.TokenID)
	}
	assertAccess(t, w, g.Token, emulator.SeedAccount2, http.StatusOK)

	audit := w.audit.Entries(t)
	if len(audit) != 1 {
		t.Fatalf("audit log: %+v, want one entry", audit)
	}
	a := audit[0]
	want := broker.Entry{
		Event: broker.EventMint, Rule: "access-deploy", Issuer: w.iss.URL(), Subject: "repo:acme/site-deploy:environment:production",
		Repository: "acme/site-deploy", RepositoryID: repoID, RunID: "19677834613", Caller: "127.0.0.1",
		Scopes:   []string{"Access: Apps and Policies:write", `"Access: Organizations, Identity Providers, and Groups":read`},
		Accounts: []string{emulator.SeedAccount1, emulator.SeedAccount2}, Owner: "user", TokenID: g.TokenID, Name: g.Name,
		ExpiresAt: g.ExpiresAt.Format(time.RFC3339), Status: 200,
	}
	a.Time, a.JTI = time.Time{}, ""
	if diff := cmp.Diff(want, a); diff != "" {
		t.Errorf("audit entry (-want +got):\n%s", diff)
	}
}

// assertAccess lists the account's Access apps with the child token.
func assertAccess(tb testing.TB, w *world, child token.Secret, account string, want int) {
	tb.Helper()
	req, err := http.NewRequestWithContext(tb.Context(), http.MethodGet, w.apiURL+"/accounts/"+account+"/access/apps", nil)
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+child.Reveal())
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != want {
		tb.Errorf("GET access/apps on %s with the child: %d, want %d", account, res.StatusCode, want)
	}
}

func TestExchangeNarrowed(t *testing.T) {
	t.Parallel()
	w := mustWorld(t)
	g, err := w.client.Exchange(t.Context(), token.NewSecret(w.jwt(t, nil)), broker.ExchangeRequest{
		Scopes:     []token.Scope{{Name: "Access: Apps and Policies", Level: token.Read}},
		AccountIDs: []string{emulator.SeedAccount2},
		TTL:        90 * time.Minute,
		AllowedIPs: []string{"caller", "203.0.113.0/24"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{emulator.SeedAccount2}, g.AccountIDs); diff != "" {
		t.Errorf("accounts (-want +got):\n%s", diff)
	}
	if len(g.PermissionGroups) != 1 || g.PermissionGroups[0].ID != appsRead {
		t.Errorf("groups %+v, want apps read only (write covers read)", g.PermissionGroups)
	}
	if diff := cmp.Diff([]string{"203.0.113.0/24", "127.0.0.1/32"}, g.AllowedIPs); diff != "" {
		t.Errorf("allowed ips (-want +got):\n%s", diff)
	}
	if d := time.Until(g.ExpiresAt); d < 89*time.Minute || d > 90*time.Minute {
		t.Errorf("expires in %s, want 90m", d)
	}
	assertAccess(t, w, g.Token, emulator.SeedAccount2, http.StatusOK)
	assertAccess(t, w, g.Token, emulator.SeedAccount1, http.StatusForbidden)
}

func TestExchangeAccountOwnedCaller(t *testing.T) {
	t.Parallel()
	w := mustWorld(t)
	g := w.mustExchange(t, map[string]any{"repository_id": "777"})
	if g.Rule != "account-owned" || g.Owner != token.OwnerAccount {
		t.Errorf("rule %q owner %q", g.Rule, g.Owner)
	}
	// The rule's allowed-ips: [caller] is the request's source address.
	if diff := cmp.Diff([]string{"127.0.0.1/32"}, g.AllowedIPs); diff != "" {
		t.Errorf("allowed ips (-want +got):\n%s", diff)
	}
	if d := time.Until(g.ExpiresAt); d > 30*time.Minute {
		t.Errorf("expires in %s, want the rule's max-ttl 30m", d)
	}
	kids := w.children()
	if len(kids) != 1 || kids[0].Owner != emulator.OwnerAccount || kids[0].OwnerID != emulator.SeedAccount1 {
		t.Errorf("emulator holds %s, want one token owned by account 1", shown(kids))
	}
	assertAccess(t, w, g.Token, emulator.SeedAccount1, http.StatusOK)
}

func TestExchangeNoStore(t *testing.T) {
	t.Parallel()
	w := mustWorld(t)
	a := w.postForm(t, broker.TokenPath, brokertest.Form(w.jwt(t, nil)))
	if a.status != http.StatusOK {
		t.Fatalf("status %d: %s", a.status, a.body)
	}
	if got := a.header.Get("Cache-Control"); got != "no-store" {
		t.Errorf("Cache-Control %q, want no-store", got)
	}
	if got := a.header.Get("Content-Type"); !strings.HasPrefix(got, "application/json") {
		t.Errorf("Content-Type %q", got)
	}
	for _, k := range []string{`"access_token"`, `"issued_token_type":"urn:ietf:params:oauth:token-type:access_token"`, `"token_type":"Bearer"`,
		`"expires_in"`, `"scope"`, `"token_id"`, `"expires_at"`, `"name"`, `"owner":"user"`, `"account_ids"`, `"permission_groups":[{"id"`, `"allowed_ips":[]`, `"rule":"access-deploy"`} {
		if !strings.Contains(string(a.body), k) {
			t.Errorf("answer lacks %s: %s", k, withoutToken(a.body))
		}
	}
	// An error answer is no-store too.
	a = w.postForm(t, broker.TokenPath, brokertest.Form(""))
	if got := a.header.Get("Cache-Control"); a.status != http.StatusBadRequest || got != "no-store" {
		t.Errorf("error answer: %d, Cache-Control %q", a.status, got)
	}
}

// TestExchangeRefusals: each malformed or refused request gets SPEC's
// status and code, and no request reaches Cloudflare.
func TestExchangeRefusals(t *testing.T) {
	t.Parallel()
	w := mustWorld(t)
	good := func() string { return w.jwt(t, nil) }
	cases := []struct {
		name   string
		form   func() url.Values
		status int
		code   broker.Code
		desc   string // a part of the description
	}{
		{"no grant_type", func() url.Values { return brokertest.Form(good(), "grant_type", "") }, 400, broker.InvalidRequest, "grant_type is missing"},
		{"wrong grant_type", func() url.Values { return brokertest.Form(good(), "grant_type", "client_credentials") }, 400, broker.UnsupportedGrantType, `"client_credentials" is not supported`},
		{"no subject_token", func() url.Values { return brokertest.Form("") }, 400, broker.InvalidRequest, "subject_token is missing"},
		{"no subject_token_type", func() url.Values { return brokertest.Form(good(), "subject_token_type", "") }, 400, broker.InvalidRequest, "subject_token_type is missing"},
		{"wrong subject_token_type", func() url.Values {
			return brokertest.Form(good(), "subject_token_type", "urn:ietf:params:oauth:token-type:saml2")
		}, 400, broker.InvalidRequest, "is not accepted"},
		{"jwt subject_token_type", func() url.Values { return brokertest.Form(good(), "subject_token_type", broker.TokenTypeJWT) }, 200, "", ""},
		{"requested_token_type", func() url.Values { return brokertest.Form(good(), "requested_token_type", broker.TokenTypeIDToken) }, 400, broker.InvalidRequest, "is not issued"},
		{"actor_token", func() url.Values { return brokertest.Form(good(), "actor_token", "x") }, 400, broker.InvalidRequest, "actor_token"},
		{"resource", func() url.Values { return brokertest.Form(good(), "resource", "https://api.cloudflare.com") }, 400, broker.InvalidTarget, "account_ids"},
		{"bad scope", func() url.Values { return brokertest.Form(good(), "scope", "organisations") }, 400, broker.InvalidRequest, "did you mean organizations?"},
		{"token-managing scope", func() url.Values { return brokertest.Form(good(), "scope", "API%20Tokens:write") }, 400, broker.InvalidScope, "make tokens of its own"},
		{"scope not granted", func() url.Values { return brokertest.Form(good(), "scope", "service-tokens:read") }, 400, broker.InvalidScope, `rule "access-deploy": the rule does not grant scope "Access: Service Tokens Read"`},
		{"bad account", func() url.Values { return brokertest.Form(good(), "account_ids", "ABC") }, 400, broker.InvalidRequest, "account_ids:"},
		{"account not granted", func() url.Values {
			return brokertest.Form(good(), "account_ids", emulator.SeedAccount3)
		}, 400, broker.InvalidTarget, "does not grant account"},
		{"bad ttl", func() url.Values { return brokertest.Form(good(), "ttl", "forever") }, 400, broker.InvalidRequest, "ttl:"},
		{"ttl over max-ttl", func() url.Values { return brokertest.Form(good(), "ttl", "3h") }, 400, broker.InvalidRequest, "above the rule's max-ttl 2h (refused, not shortened)"},
		{"bad cidr", func() url.Values { return brokertest.Form(good(), "allowed_ips", "10.0.0.1/8") }, 400, broker.InvalidRequest, "host bits"},
		{"runner keyword", func() url.Values { return brokertest.Form(good(), "allowed_ips", "runner") }, 400, broker.InvalidRequest, `"caller"`},
		{"claim mismatch", func() url.Values { return brokertest.Form(w.jwt(t, map[string]any{"ref": "refs/heads/feature"})) }, 403, broker.AccessDenied,
			`rule "access-deploy": claim ref is "refs/heads/feature", the rule wants "refs/heads/main"`},
		{"outside every tenant", func() url.Values { return brokertest.Form(w.jwt(t, map[string]any{"repository_owner_id": "1"})) }, 403, broker.AccessDenied, policy.OutsiderReason},
		{"wrong audience", func() url.Values { return brokertest.Form(w.jwt(t, map[string]any{"aud": "https://elsewhere"})) }, 400, broker.InvalidRequest, "audience"},
	}
	for _, tc := range cases {
		before := w.cfRequests()
		a := w.postForm(t, broker.TokenPath, tc.form())
		if a.status != tc.status || broker.Code(a.err.Error) != tc.code || !strings.Contains(a.err.Description, tc.desc) {
			t.Errorf("%s: %d %s %q, want %d %s containing %q", tc.name, a.status, a.err.Error, a.err.Description, tc.status, tc.code, tc.desc)
		}
		if got := w.cfRequests() - before; tc.status != 200 && got != 0 {
			t.Errorf("%s: %d requests reached Cloudflare, want none", tc.name, got)
		}
	}
	// Only the one exchange that succeeded made a token.
	if n := len(w.children()); n != 1 {
		t.Errorf("%d tokens made, want 1", n)
	}
	// Every refusal is in the audit log with its code.
	denies := 0
	for _, e := range w.audit.Entries(t) {
		if e.Event == broker.EventDeny {
			denies++
			if e.Code == "" || e.Status < 400 || e.Reason == "" {
				t.Errorf("deny entry without code, status or reason: %+v", e)
			}
		}
	}
	if denies != len(cases)-1 {
		t.Errorf("%d deny entries, want %d", denies, len(cases)-1)
	}
}

func TestExchangeRequestShape(t *testing.T) {
	t.Parallel()
	w := mustWorld(t)
	subject := w.jwt(t, nil)
	cases := []struct {
		name        string
		path, ctype string
		body        string
		status      int
		code        broker.Code
	}{
		{"json body", broker.TokenPath, "application/json", `{"grant_type":"x"}`, 400, broker.InvalidRequest},
		{"no content type", broker.TokenPath, "", brokertest.Form(subject).Encode(), 400, broker.InvalidRequest},
		{"parameters in the URL", broker.TokenPath + "?subject_token=" + subject, "application/x-www-form-urlencoded", brokertest.Form(subject).Encode(), 400, broker.InvalidRequest},
		{"repeated parameter", broker.TokenPath, "application/x-www-form-urlencoded", brokertest.Form(subject).Encode() + "&grant_type=x", 400, broker.InvalidRequest},
		{"not form-encoded", broker.TokenPath, "application/x-www-form-urlencoded", "grant_type=%zz", 400, broker.InvalidRequest},
		{"form over 32 KiB", broker.TokenPath, "application/x-www-form-urlencoded", brokertest.Form(subject, "pad", strings.Repeat("a", 33<<10)).Encode(), 400, broker.InvalidRequest},
		{"subject token over 16 KiB", broker.TokenPath, "application/x-www-form-urlencoded", brokertest.Form(strings.Repeat("a", 16<<10+1)).Encode(), 400, broker.InvalidRequest},
		{"revoke form over 32 KiB", broker.RevokePath, "application/x-www-form-urlencoded", "token=" + strings.Repeat("a", 33<<10), 400, broker.InvalidRequest},
		{"unknown path", "/v1/nothing", "application/x-www-form-urlencoded", "", 404, broker.InvalidRequest},
	}
	for _, tc := range cases {
		a := w.post(t, tc.path, tc.ctype, tc.body)
		if a.status != tc.status || broker.Code(a.err.Error) != tc.code {
			t.Errorf("%s: %d %s (%s), want %d %s", tc.name, a.status, a.err.Error, a.err.Description, tc.status, tc.code)
		}
		if strings.Contains(string(a.body), subject) {
			t.Errorf("%s: the answer echoes the subject token", tc.name)
		}
	}
	// GET on the token endpoint: 405 with Allow.
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, w.srv.URL+broker.TokenPath, nil)
	if a := w.do(t, req); a.status != http.StatusMethodNotAllowed || a.header.Get("Allow") != http.MethodPost {
		t.Errorf("GET %s: %d Allow %q", broker.TokenPath, a.status, a.header.Get("Allow"))
	}
	// The subject token was never verified, so it is not used up.
	if _, err := w.client.Exchange(t.Context(), token.NewSecret(subject), broker.ExchangeRequest{}); err != nil {
		t.Errorf("the token of the refused requests: %v", err)
	}
	if w.cfRequests() == 0 || slices.ContainsFunc(w.e.Requests()[:1], func(r emulator.Request) bool { return r.Route == "" }) {
		t.Error("the emulator saw no exchange")
	}
}

func TestReplayRefused(t *testing.T) {
	t.Parallel()
	w := mustWorld(t)
	subject := token.NewSecret(w.jwt(t, nil))
	if _, err := w.client.Exchange(t.Context(), subject, broker.ExchangeRequest{}); err != nil {
		t.Fatal(err)
	}
	before := w.cfRequests()
	_, err := w.client.Exchange(t.Context(), subject, broker.ExchangeRequest{})
	var be *broker.Error
	if !errors.As(err, &be) || be.Status != 400 || be.Code != broker.InvalidRequest || !strings.Contains(be.Description, "already exchanged") {
		t.Fatalf("second exchange: %v, want 400 invalid_request (replay)", err)
	}
	if w.cfRequests() != before {
		t.Error("a replay reached Cloudflare")
	}
}

func TestRateLimit(t *testing.T) {
	t.Parallel()
	// The broker's clock, which the rate limit reads; the tokens' times are
	// checked on the real one.
	now := time.Now()
	var clock atomic.Pointer[time.Time]
	clock.Store(&now)
	w := mustWorld(t, withConfig(func(c *broker.Config) {
		c.RateLimit, c.Burst = 1.0/60, 2
		c.Now, c.OIDC.Now = func() time.Time { return *clock.Load() }, time.Now
	}))
	w.client.Retry.Attempts = 1
	for i := range 2 {
		if _, err := w.client.Exchange(t.Context(), token.NewSecret(w.jwt(t, nil)), broker.ExchangeRequest{}); err != nil {
			t.Fatalf("exchange %d: %v", i+1, err)
		}
	}
	subject := w.jwt(t, nil)
	before := w.cfRequests()
	a := w.postForm(t, broker.TokenPath, brokertest.Form(subject))
	if a.status != http.StatusTooManyRequests || a.err.Error != string(broker.SlowDown) {
		t.Fatalf("third exchange: %d %s, want 429 slow_down", a.status, a.err.Error)
	}
	if ra := a.header.Get("Retry-After"); ra == "" || ra == "0" {
		t.Errorf("Retry-After %q", ra)
	}
	if w.cfRequests() != before {
		t.Error("a rate-limited exchange reached Cloudflare")
	}
	// Another identity (another repository of the same owner) has its own limit.
	other := w.jwt(t, map[string]any{"repository_id": "777"})
	if a := w.postForm(t, broker.TokenPath, brokertest.Form(other)); a.status != http.StatusOK {
		t.Errorf("another identity: %d %s", a.status, a.err.Description)
	}
	// The client sees a *broker.Error with RetryAfter, and does not retry past its attempts.
	_, err := w.client.Exchange(t.Context(), token.NewSecret(w.jwt(t, nil)), broker.ExchangeRequest{})
	var be *broker.Error
	if !errors.As(err, &be) || be.Code != broker.SlowDown || be.RetryAfter <= 0 {
		t.Errorf("client: %v, want slow_down with RetryAfter", err)
	}
	// The rate-limited token was given back: once the limit allows, it works.
	later := now.Add(61 * time.Second) // one exchange a minute
	clock.Store(&later)
	if a := w.postForm(t, broker.TokenPath, brokertest.Form(subject)); a.status != http.StatusOK {
		t.Errorf("the rate-limited token once the limit allows: %d %s %s, want 200", a.status, a.err.Error, a.err.Description)
	}
}

func TestMetadataAndHealth(t *testing.T) {
	t.Parallel()
	w := mustWorld(t, withConfig(func(c *broker.Config) { c.PublicURL = "https://cf-broker.example/tenant1/" }))
	get := func(path string) answer {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, w.srv.URL+path, nil)
		return w.do(t, req)
	}
	for _, path := range []string{broker.MetadataPath, broker.MetadataPath + "/tenant1"} {
		a := get(path)
		if a.status != 200 {
			t.Fatalf("%s: %d", path, a.status)
		}
		want := `{"issuer":"https://cf-broker.example/tenant1","token_endpoint":"https://cf-broker.example/tenant1/v1/token",` +
			`"revocation_endpoint":"https://cf-broker.example/tenant1/v1/revoke","grant_types_supported":["urn:ietf:params:oauth:grant-type:token-exchange"],` +
			`"response_types_supported":[],"token_endpoint_auth_methods_supported":["none"],"revocation_endpoint_auth_methods_supported":["none"]}` + "\n"
		if diff := cmp.Diff(want, string(a.body)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", path, diff)
		}
	}
	if a := get(broker.HealthPath); a.status != 200 {
		t.Errorf("healthz: %d", a.status)
	}
	if a := get(broker.ReadyPath); a.status != 200 {
		t.Errorf("readyz: %d %s", a.status, a.body)
	}
	// Without a public URL the issuer is the audience.
	w2 := mustWorld(t)
	if got := w2.b.PublicURL(); got != brokertest.Audience {
		t.Errorf("PublicURL() = %q, want the audience", got)
	}
}

func TestReadyOnlyOnceParentVerified(t *testing.T) {
	t.Parallel()
	w := mustWorld(t, notStarted())
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, w.srv.URL+broker.ReadyPath, nil)
	if a := w.do(t, req); a.status != http.StatusServiceUnavailable || !strings.Contains(string(a.body), "not been verified") {
		t.Errorf("readyz before Start: %d %s, want 503", a.status, a.body)
	}
	if err := w.b.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	if a := w.do(t, req.Clone(t.Context())); a.status != http.StatusOK {
		t.Errorf("readyz after Start: %d %s", a.status, a.body)
	}
	// The parent is deleted: the next check makes the broker unready at once.
	if err := w.cf.DeleteToken(t.Context(), token.Endpoint{}, w.seeded.UserTokenID); err != nil {
		t.Fatal(err)
	}
	var pe *broker.ParentError
	if err := w.b.CheckParent(t.Context()); !errors.As(err, &pe) {
		t.Errorf("CheckParent after the parent was deleted: %v, want a ParentError", err)
	}
	if a := w.do(t, req.Clone(t.Context())); a.status != http.StatusServiceUnavailable {
		t.Errorf("readyz after the parent was refused: %d %s", a.status, a.body)
	}
}

// TestCatalogueCached: the permission-group catalogue Start fetched serves
// the exchanges after it; an endpoint Start did not need is fetched once.
func TestCatalogueCached(t *testing.T) {
	t.Parallel()
	w := mustWorld(t)
	const userRoute, accountRoute = "GET /user/tokens/permission_groups", "GET /accounts/{account_id}/tokens/permission_groups"
	if n := len(w.e.RequestsTo(userRoute)); n != 1 {
		t.Fatalf("Start fetched the user endpoint's catalogue %d times, want once", n)
	}
	for _, repo := range []string{repoID, repoID, "777", "777"} { // user-owned twice, account-owned twice
		w.mustExchange(t, map[string]any{"repository_id": repo})
	}
	if n := len(w.e.RequestsTo(userRoute)); n != 1 {
		t.Errorf("the user endpoint's catalogue fetched %d times in all, want only Start's", n)
	}
	if n := len(w.e.RequestsTo(accountRoute)); n != 1 {
		t.Errorf("the account endpoint's catalogue fetched %d times, want once", n)
	}
}

// TestExchangeOtherIssuers: a GitLab job and a generic issuer's workload
// get tokens named after their project and pipeline, or their subject, and
// the audit log names the project, its id and the run by the claims of
// their kind of issuer.
func TestExchangeOtherIssuers(t *testing.T) {
	t.Parallel()
	// oneRule is a policy whose one rule admits issuer's workloads by one
	// claim and grants them Access read on the first account.
	oneRule := func(issuer, rule, claim string) string {
		return `audience: ` + brokertest.Audience + `
issuers:
  ` + issuer + `: %[1]s
rules:
  - name: ` + rule + `
    issuer: ` + issuer + `
    claims:
      ` + claim + `
    grant:
      account-ids: [%[2]s]
      scopes: [apps-and-policies:read]
      max-ttl: 1h
`
	}
	cases := []struct {
		name   string
		policy string
		claims map[string]any
		prefix string       // of the token's name
		want   broker.Entry // its issuer-specific fields
	}{
		{
			name:   "gitlab",
			policy: oneRule("gitlab-self", "gitlab-deploy", `project_id: "42"`),
			// GitHub's claims are gone: only GitLab's name the run.
			claims: map[string]any{"repository": nil, "repository_id": nil, "run_id": nil, "run_attempt": nil,
				"sub": "project_path:acme/infra:ref_type:branch:ref:main", "project_path": "acme/infra", "project_id": "42",
				"namespace_id": "7", "pipeline_id": "1234", "job_id": "5678"},
			prefix: "cf-scoped-token acme/infra 1234.5678 ",
			want: broker.Entry{Rule: "gitlab-deploy", Subject: "project_path:acme/infra:ref_type:branch:ref:main",
				Repository: "acme/infra", RepositoryID: "42", RunID: "1234"},
		},
		{
			name:   "generic",
			policy: oneRule("acme-idp", "idp-deploy", "sub: system:serviceaccount:ci:deployer"),
			// GitHub's claims are there, and mean nothing from this issuer.
			claims: map[string]any{"sub": "system:serviceaccount:ci:deployer"},
			prefix: "cf-scoped-token system:serviceaccount:ci:deployer ",
			want:   broker.Entry{Rule: "idp-deploy", Subject: "system:serviceaccount:ci:deployer"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := mustWorld(t, withPolicy(tc.policy))
			g := w.mustExchange(t, tc.claims)
			if !strings.HasPrefix(g.Name, tc.prefix) || len(g.Name) != len(tc.prefix)+28 {
				t.Errorf("name %q, want %q and a 28-digit suffix", g.Name, tc.prefix)
			}
			if !broker.OwnsName(token.NewSecret(w.seeded.UserToken), g.Name) {
				t.Errorf("name %q does not carry the broker's MAC", g.Name)
			}
			audit := w.audit.Entries(t)
			if len(audit) != 1 {
				t.Fatalf("audit log: %+v, want one entry", audit)
			}
			a := audit[0]
			got := broker.Entry{Rule: a.Rule, Subject: a.Subject, Repository: a.Repository, RepositoryID: a.RepositoryID, RunID: a.RunID}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("audit entry (-want +got):\n%s", diff)
			}
			if a.Event != broker.EventMint || a.Issuer != w.iss.URL() || a.Name != g.Name || a.TokenID != g.TokenID {
				t.Errorf("audit entry %+v", a)
			}
		})
	}
}
