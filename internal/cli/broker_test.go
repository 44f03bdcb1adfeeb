package cli_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cf-scoped-token/cf-scoped-token/internal/broker"
	"github.com/cf-scoped-token/cf-scoped-token/internal/broker/brokertest"
	"github.com/cf-scoped-token/cf-scoped-token/internal/emulator"
	"github.com/cf-scoped-token/cf-scoped-token/internal/oidcissuer"
	"github.com/cf-scoped-token/cf-scoped-token/internal/policy"
	"github.com/cf-scoped-token/cf-scoped-token/internal/token"
)

// TestBrokerEndToEnd: the real binary serves an exchange whose token works
// on the emulator's Access API, answers no-store with every field, names
// the token with its MAC, and revokes it again.
func TestBrokerEndToEnd(t *testing.T) {
	t.Parallel()
	k := newKeyless(t)
	b := k.startBroker(t, k.writePolicy(t, "policy.yaml", e2ePolicy), k.seeded.UserToken)
	if s := b.get(t, broker.HealthPath); s != 200 {
		t.Errorf("healthz: %d", s)
	}
	if s := b.get(t, broker.ReadyPath); s != 200 {
		t.Errorf("readyz: %d", s)
	}
	if s := b.get(t, broker.MetadataPath); s != 200 {
		t.Errorf("metadata: %d", s)
	}

	a := b.exchangeForm(t, brokertest.Form(k.jwt(t, nil)))
	if a.status != 200 {
		t.Fatalf("exchange: %s", a)
	}
	if got := a.header.Get("Cache-Control"); got != "no-store" {
		t.Errorf("Cache-Control %q, want no-store", got)
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(a.body), &got); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"access_token", "issued_token_type", "token_type", "expires_in", "scope", "token_id", "expires_at",
		"name", "owner", "account_ids", "permission_groups", "allowed_ips", "rule"} {
		if _, ok := got[f]; !ok {
			t.Errorf("answer lacks %s: %s", f, a)
		}
	}
	child, _ := got["access_token"].(string)
	b.addSecret(child)
	if got["issued_token_type"] != broker.TokenTypeAccessToken || got["token_type"] != "Bearer" || got["rule"] != "access-deploy" {
		t.Errorf("answer %s", a)
	}
	name, _ := got["name"].(string)
	if !broker.OwnsName(token.NewSecret(k.seeded.UserToken), name) {
		t.Errorf("name %q carries no MAC of the broker's parent", name)
	}
	if s := k.childAccess(t, child, k.seeded.AccountIDs[1]); s != 200 {
		t.Errorf("the child on account 2's Access API: %d", s)
	}
	if s := k.childAccess(t, child, k.seeded.AccountIDs[2]); s != http.StatusForbidden {
		t.Errorf("the child on account 3, not granted: %d", s)
	}

	// The client, as the action will call it.
	g, err := b.client.Exchange(t.Context(), token.NewSecret(k.jwt(t, nil)), broker.ExchangeRequest{
		Scopes: []token.Scope{{Name: "Access: Apps and Policies", Level: token.Read}}, TTL: 10 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	b.addSecret(g.Token.Reveal())
	if len(g.PermissionGroups) != 1 || g.PermissionGroups[0].ID != appsRead || time.Until(g.ExpiresAt) > 10*time.Minute {
		t.Errorf("granted %+v", g)
	}
	for _, id := range []string{got["token_id"].(string), g.TokenID} {
		if !k.alive(id) {
			t.Errorf("token %s is not in the emulator", id)
		}
	}
	if err := b.client.Revoke(t.Context(), g.Token); err != nil {
		t.Fatal(err)
	}
	if k.alive(g.TokenID) {
		t.Error("the revoked token still exists")
	}
	if s := k.childAccess(t, g.Token.Reveal(), k.seeded.AccountIDs[0]); s != http.StatusUnauthorized {
		t.Errorf("the revoked token on the Access API: %d", s)
	}
	events := map[string]int{}
	for _, e := range b.stdout.Entries(t) {
		events[e.Event]++
	}
	if events[broker.EventMint] != 2 || events[broker.EventRevoke] != 1 {
		t.Errorf("audit events %v, want 2 mints and 1 revoke", events)
	}
}

// TestBrokerHostileTokens: every hostile OIDC token, and every malformed
// request, gets SPEC's status and code, and no request reaches Cloudflare.
func TestBrokerHostileTokens(t *testing.T) {
	t.Parallel()
	k := newKeyless(t)
	b := k.startBroker(t, k.writePolicy(t, "policy.yaml", e2ePolicy), k.seeded.UserToken)
	now := time.Now().Unix()
	replayed := k.jwt(t, nil)
	if a := b.exchangeForm(t, brokertest.Form(replayed)); a.status != 200 {
		t.Fatalf("first use of the replayed token: %s", a)
	}
	other, err := oidcissuer.New("http://127.0.0.1:1") // a key no broker trusts
	if err != nil {
		t.Fatal(err)
	}
	foreign, err := other.Sign(map[string]any{"aud": brokertest.Audience, "iss": k.iss.URL()})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		body   string
		status int
		code   broker.Code
	}{
		{"alg none", brokertest.Form(k.jwt(t, nil, oidcissuer.AlgNone())).Encode(), 400, broker.InvalidRequest},
		{"HS256 signed with the public key", brokertest.Form(k.jwt(t, nil, oidcissuer.HS256WithPublicKey())).Encode(), 400, broker.InvalidRequest},
		{"unknown kid", brokertest.Form(k.jwt(t, nil, oidcissuer.WithKeyID("no-such-kid"))).Encode(), 400, broker.InvalidRequest},
		{"a key not in the JWKS", brokertest.Form(k.jwt(t, nil, oidcissuer.WithUnpublishedKey())).Encode(), 400, broker.InvalidRequest},
		{"another issuer's key", brokertest.Form(foreign).Encode(), 400, broker.InvalidRequest},
		{"wrong iss", brokertest.Form(k.jwt(t, map[string]any{"iss": "https://token.actions.githubusercontent.com"})).Encode(), 400, broker.InvalidRequest},
		{"wrong aud", brokertest.Form(k.jwt(t, map[string]any{"aud": "https://github.com/acme"})).Encode(), 400, broker.InvalidRequest},
		{"expired", brokertest.Form(k.jwt(t, map[string]any{"iat": now - 3900, "nbf": now - 3900, "exp": now - 3600})).Encode(), 400, broker.InvalidRequest},
		{"nbf in the future", brokertest.Form(k.jwt(t, map[string]any{"nbf": now + 3600})).Encode(), 400, broker.InvalidRequest},
		{"oversize", brokertest.Form(k.jwt(t, map[string]any{"pad": strings.Repeat("x", 17<<10)})).Encode(), 400, broker.InvalidRequest},
		{"malformed", brokertest.Form("not.a.jwt").Encode(), 400, broker.InvalidRequest},
		{"not even three parts", brokertest.Form("garbage").Encode(), 400, broker.InvalidRequest},
		{"replayed jti", brokertest.Form(replayed).Encode(), 400, broker.InvalidRequest},
		{"no subject_token", brokertest.Form("").Encode(), 400, broker.InvalidRequest},
		{"no subject_token_type", brokertest.Form(k.jwt(t, nil), "subject_token_type", "").Encode(), 400, broker.InvalidRequest},
		{"wrong subject_token_type", brokertest.Form(k.jwt(t, nil), "subject_token_type", "urn:ietf:params:oauth:token-type:saml1").Encode(), 400, broker.InvalidRequest},
		{"no grant_type", brokertest.Form(k.jwt(t, nil), "grant_type", "").Encode(), 400, broker.InvalidRequest},
		{"wrong grant_type", brokertest.Form(k.jwt(t, nil), "grant_type", "client_credentials").Encode(), 400, broker.UnsupportedGrantType},
		{"repeated subject_token", brokertest.Form(k.jwt(t, nil)).Encode() + "&subject_token=x.y.z", 400, broker.InvalidRequest},
	}
	for _, tc := range cases {
		before := k.cfRequests()
		a := b.post(t, broker.TokenPath, "application/x-www-form-urlencoded", tc.body)
		if a.status != tc.status || broker.Code(a.code) != tc.code {
			t.Errorf("%s: %d %s (%s), want %d %s", tc.name, a.status, a.code, a.desc, tc.status, tc.code)
		}
		if n := k.cfRequests() - before; n != 0 {
			t.Errorf("%s: %d requests reached Cloudflare, want none", tc.name, n)
		}
		if strings.Contains(a.body, "eyJ") {
			t.Errorf("%s: the answer echoes a JWT: %s", tc.name, a)
		}
	}
	if n := len(k.children()); n != 1 {
		t.Errorf("%d tokens exist, want only the replayed token's first exchange", n)
	}
}

// TestBrokerRefusesBadPolicy: policy check exits 1 naming the line, and the
// broker exits 1 before it listens.
func TestBrokerRefusesBadPolicy(t *testing.T) {
	t.Parallel()
	k := newKeyless(t)
	// Each replaces the good claims block or grant of e2ePolicy; line is the fault's.
	pinnedByName := strings.Replace(e2ePolicy, `      repository_owner_id: "46576199"
      repository_id: "1104004353"
`, `      repository: acme/site-deploy
`, 1)
	cases := []struct {
		name, policy string
		line         int
	}{
		{"tenant pinned only by name", pinnedByName, 9},
		{"glob on an id claim", strings.Replace(e2ePolicy, `repository_id: "1104004353"`, `repository_id: "1104*"`, 1), 10},
		{"token-managing group", strings.Replace(e2ePolicy, "organizations:read]", `"API Tokens:write"]`, 1), 14},
		{"max-ttl over 24h", strings.Replace(e2ePolicy, "max-ttl: 2h", "max-ttl: 25h", 1), 15},
		{"unknown key", strings.Replace(e2ePolicy, "    grant:\n", "    grants: {}\n    grant:\n", 1), 12},
		{"unknown issuer", strings.Replace(e2ePolicy, "    issuer: github\n", "    issuer: gitlab\n", 1), 7},
	}
	for _, tc := range cases {
		path := k.writePolicy(t, strings.ReplaceAll(tc.name, " ", "-")+".yaml", tc.policy)
		cmd := exec.Command(mustBinary(t), "policy", "check", path)
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 1 {
			t.Errorf("%s: policy check: %v, want exit 1\n%s", tc.name, err, out)
		}
		if want := fmt.Sprintf("%s: line %d: ", path, tc.line); !strings.Contains(string(out), want) {
			t.Errorf("%s: policy check does not name line %d:\n%s", tc.name, tc.line, out)
		}

		before := k.cfRequests()
		b := k.runBroker(t, path, k.seeded.UserToken)
		if code := b.wait(t, 20*time.Second); code != 1 {
			t.Errorf("%s: broker exit %d, want 1", tc.name, code)
		}
		if strings.Contains(b.stderr.String(), "listening") || !strings.Contains(b.stderr.String(), fmt.Sprintf("line %d: ", tc.line)) {
			t.Errorf("%s: broker stderr:\n%s", tc.name, b.stderr)
		}
		if n := k.cfRequests() - before; n != 0 {
			t.Errorf("%s: the refused policy cost %d Cloudflare requests", tc.name, n)
		}
	}
	// A good policy checks out.
	out, err := exec.Command(mustBinary(t), "policy", "check", k.writePolicy(t, "good.yaml", e2ePolicy)).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "ok: 1 issuer(s), 1 rule(s)") {
		t.Errorf("good policy: %v\n%s", err, out)
	}
	// A scope the live catalogue lacks passes policy check (it has no
	// catalogue) but stops the broker at start.
	unknown := k.writePolicy(t, "unknown-scope.yaml", strings.Replace(e2ePolicy, "organizations:read]", `"Access: No Such Group:read"]`, 1))
	b := k.runBroker(t, unknown, k.seeded.UserToken)
	if code := b.wait(t, 20*time.Second); code != 1 || !strings.Contains(b.stderr.String(), "line 14: ") {
		t.Errorf("unknown scope: exit %d\n%s", code, b.stderr)
	}
	// A parent Cloudflare refuses.
	b = k.runBroker(t, k.writePolicy(t, "good2.yaml", e2ePolicy), "cfut_NotATokenAtAll000000000000000000000000000000000")
	if code := b.wait(t, 20*time.Second); code != 1 || !strings.Contains(b.stderr.String(), "error: parent token: Cloudflare refused it") {
		t.Errorf("refused parent: exit %d\n%s", code, b.stderr)
	}
}

func TestBrokerTenantSecrecy(t *testing.T) {
	t.Parallel()
	k := newKeyless(t)
	b := k.startBroker(t, k.writePolicy(t, "policy.yaml", e2ePolicy), k.seeded.UserToken)
	// Outside every rule's tenant: nothing about the policy.
	a := b.exchangeForm(t, brokertest.Form(k.jwt(t, map[string]any{"repository_owner_id": "99", "repository_id": "98"})))
	if a.status != 403 || a.code != string(broker.AccessDenied) || a.desc != policy.OutsiderReason {
		t.Errorf("outsider: %d %s %q", a.status, a.code, a.desc)
	}
	// Same owner, another repository: still outside (every pin must match).
	a = b.exchangeForm(t, brokertest.Form(k.jwt(t, map[string]any{"repository_id": "98"})))
	if a.status != 403 || a.desc != policy.OutsiderReason {
		t.Errorf("same owner, other repository: %d %q", a.status, a.desc)
	}
	// Inside the tenant: the rule and the first claim that failed.
	a = b.exchangeForm(t, brokertest.Form(k.jwt(t, map[string]any{"ref": "refs/heads/feature"})))
	if want := `rule "access-deploy": claim ref is "refs/heads/feature", the rule wants "refs/heads/main"`; a.status != 403 || a.desc != want {
		t.Errorf("insider: %d %q, want %q", a.status, a.desc, want)
	}
	a = b.exchangeForm(t, brokertest.Form(k.jwt(t, nil), "scope", "service-tokens:read"))
	if a.status != 400 || a.code != string(broker.InvalidScope) || !strings.Contains(a.desc, `rule "access-deploy"`) {
		t.Errorf("insider, scope: %d %s %q", a.status, a.code, a.desc)
	}
	a = b.exchangeForm(t, brokertest.Form(k.jwt(t, nil), "account_ids", k.seeded.AccountIDs[2]))
	if a.status != 400 || a.code != string(broker.InvalidTarget) {
		t.Errorf("insider, account: %d %s %q", a.status, a.code, a.desc)
	}
}

func TestBrokerIssuerKeysDown(t *testing.T) {
	t.Parallel()
	k := newKeyless(t)
	b := k.startBroker(t, k.writePolicy(t, "policy.yaml", e2ePolicy), k.seeded.UserToken)
	k.iss.Fail(oidcissuer.RouteJWKS, http.StatusServiceUnavailable, 0)
	before := k.cfRequests()
	a := b.exchangeForm(t, brokertest.Form(k.jwt(t, nil)))
	if a.status != 503 || a.code != string(broker.TemporarilyUnavailable) || a.header.Get("Retry-After") == "" {
		t.Errorf("keys down: %d %s, want 503 temporarily_unavailable with Retry-After", a.status, a.code)
	}
	if k.cfRequests() != before {
		t.Error("an unverifiable exchange reached Cloudflare")
	}
	// The keys come back, are cached, and go away again: the cache serves.
	k.iss.ClearFaults()
	time.Sleep(5100 * time.Millisecond) // the verifier waits 5 s after a failed fetch before it asks again
	if a := b.exchangeForm(t, brokertest.Form(k.jwt(t, nil))); a.status != 200 {
		t.Fatalf("keys back: %s", a)
	}
	k.iss.Fail(oidcissuer.RouteJWKS, http.StatusServiceUnavailable, 0)
	k.iss.Fail(oidcissuer.RouteDiscovery, http.StatusServiceUnavailable, 0)
	if a := b.exchangeForm(t, brokertest.Form(k.jwt(t, nil))); a.status != 200 {
		t.Errorf("keys cached, issuer down: %s", a)
	}
}

// TestBrokerCloudflareFaults: a lost create answer is adopted; a failure
// after the token exists is 502 with the token deleted, and the jti is
// given back so that the same OIDC token succeeds on retry.
func TestBrokerCloudflareFaults(t *testing.T) {
	t.Parallel()
	k := newKeyless(t)
	b := k.startBroker(t, k.writePolicy(t, "policy.yaml", e2ePolicy), k.seeded.UserToken)

	k.e.AddFault(emulator.Fault{Route: "POST /user/tokens", Kind: emulator.LostResponse, Times: 1})
	g, err := b.client.Exchange(t.Context(), token.NewSecret(k.jwt(t, nil)), broker.ExchangeRequest{})
	if err != nil {
		t.Fatalf("lost create: %v", err)
	}
	b.addSecret(g.Token.Reveal())
	if kids := k.children(); len(kids) != 1 || kids[0].ID != g.TokenID {
		t.Fatalf("after a lost create the emulator holds %d tokens (%v), want the adopted %s alone", len(kids), tokenIDs(kids), g.TokenID)
	}
	if s := k.childAccess(t, g.Token.Reveal(), k.seeded.AccountIDs[0]); s != 200 {
		t.Errorf("the adopted token: %d", s)
	}

	for _, tc := range []struct {
		name   string
		fault  emulator.Fault
		status int
	}{
		{"the new token refused at verify", emulator.Fault{Route: "GET /user/tokens/verify", Kind: emulator.Status, Status: 401, Times: 1}, 502},
		{"create refused", emulator.Fault{Route: "POST /user/tokens", Kind: emulator.Status, Status: 403, Times: 1}, 502},
	} {
		k.e.AddFault(tc.fault)
		n := len(k.children())
		subject := token.NewSecret(k.jwt(t, nil))
		_, err := b.client.Exchange(t.Context(), subject, broker.ExchangeRequest{})
		var be *broker.Error
		if !errors.As(err, &be) || be.Status != tc.status || be.Code != broker.TemporarilyUnavailable {
			t.Errorf("%s: %v, want %d temporarily_unavailable", tc.name, err, tc.status)
		}
		if got := len(k.children()); got != n {
			t.Errorf("%s: %d tokens, want %d: an orphan", tc.name, got, n)
		}
		g, err := b.client.Exchange(t.Context(), subject, broker.ExchangeRequest{})
		if err != nil {
			t.Errorf("%s: the same OIDC token on retry: %v", tc.name, err)
			continue
		}
		b.addSecret(g.Token.Reveal())
	}
}

// TestBrokerRevokeOnlyOwn: a token the CLI made with the same parent, and
// one another broker made with another parent, answer 200 and stay.
func TestBrokerRevokeOnlyOwn(t *testing.T) {
	t.Parallel()
	k := newKeyless(t)
	path := k.writePolicy(t, "policy.yaml", e2ePolicy)
	b := k.startBroker(t, path, k.seeded.UserToken)
	otherParent := brokertest.SecondParent(k.e, k.seeded)
	b.addSecret(otherParent)
	other := k.startBroker(t, path, otherParent)

	cmd := exec.Command(mustBinary(t), "create", "--account-ids", k.seeded.AccountIDs[0], "--scopes", "apps-and-policies", "--format", "json")
	cmd.Env = []string{"CF_SCOPED_TOKEN_API_TOKEN=" + k.seeded.UserToken, "CF_SCOPED_TOKEN_API_URL=" + k.apiURL}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	var cli struct {
		Token string `json:"token"`
		ID    string `json:"token-id"`
	}
	if err := json.Unmarshal(out, &cli); err != nil {
		t.Fatal(err)
	}
	b.addSecret(cli.Token)
	theirs, err := other.client.Exchange(t.Context(), token.NewSecret(k.jwt(t, nil)), broker.ExchangeRequest{})
	if err != nil {
		t.Fatal(err)
	}
	b.addSecret(theirs.Token.Reveal())
	other.addSecret(theirs.Token.Reveal())
	for _, tc := range []struct{ name, secret, id string }{{"the CLI's", cli.Token, cli.ID}, {"another broker's", theirs.Token.Reveal(), theirs.TokenID}} {
		a := b.post(t, broker.RevokePath, "application/x-www-form-urlencoded", "token="+tc.secret)
		if a.status != 200 {
			t.Errorf("%s: %s", tc.name, a)
		}
		if !k.alive(tc.id) {
			t.Errorf("%s token was deleted by a broker that did not make it", tc.name)
		}
	}
	// Its own broker deletes it.
	if err := other.client.Revoke(t.Context(), theirs.Token); err != nil || k.alive(theirs.TokenID) {
		t.Errorf("the other broker's own revoke: %v, alive %v", err, k.alive(theirs.TokenID))
	}
}

func TestBrokerRateLimitAndBodyLimits(t *testing.T) {
	t.Parallel()
	k := newKeyless(t)
	b := k.startBroker(t, k.writePolicy(t, "policy.yaml", e2ePolicy), k.seeded.UserToken, "--rate-limit", "2/m", "--burst", "2")
	for i := range 2 {
		if a := b.exchangeForm(t, brokertest.Form(k.jwt(t, nil))); a.status != 200 {
			t.Fatalf("exchange %d: %s", i+1, a)
		}
	}
	before := k.cfRequests()
	a := b.exchangeForm(t, brokertest.Form(k.jwt(t, nil)))
	if a.status != 429 || a.code != string(broker.SlowDown) {
		t.Errorf("third exchange: %d %s, want 429 slow_down", a.status, a.code)
	}
	if ra := a.header.Get("Retry-After"); ra == "" || ra == "0" {
		t.Errorf("Retry-After %q", ra)
	}
	if k.cfRequests() != before {
		t.Error("a rate-limited exchange reached Cloudflare")
	}
	// Body limits: a form over 32 KiB, a subject token over 16 KiB.
	for name, body := range map[string]string{
		"form over 32 KiB":          brokertest.Form(k.jwt(t, nil), "pad", strings.Repeat("a", 33<<10)).Encode(),
		"subject token over 16 KiB": brokertest.Form(strings.Repeat("a", 16<<10+1)).Encode(),
	} {
		a := b.post(t, broker.TokenPath, "application/x-www-form-urlencoded", body)
		if a.status != 400 || a.code != string(broker.InvalidRequest) {
			t.Errorf("%s: %d %s", name, a.status, a.code)
		}
	}
}

// TestBrokerReload: SIGHUP with a good file swaps the policy; with a bad
// one it reports every fault and keeps the old policy.
func TestBrokerReload(t *testing.T) {
	t.Parallel()
	k := newKeyless(t)
	path := k.writePolicy(t, "policy.yaml", e2ePolicy)
	b := k.startBroker(t, path, k.seeded.UserToken)
	hup := func(want string) {
		t.Helper()
		if err := b.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(10 * time.Second)
		for !strings.Contains(b.stderr.String(), want) {
			if time.Now().After(deadline) {
				t.Fatalf("no %q after SIGHUP:\n%s", want, b.stderr)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	// Bad: a glob on an id claim. Reported with its line; the old policy serves.
	k.writePolicy(t, "policy.yaml", strings.Replace(e2ePolicy, `"1104004353"`, `"1104*"`, 1))
	hup("the old policy stays")
	if !regexp.MustCompile(`reload: .*policy.yaml: line 10: `).MatchString(b.stderr.String()) {
		t.Errorf("reload fault without its line:\n%s", b.stderr)
	}
	if a := b.exchangeForm(t, brokertest.Form(k.jwt(t, nil))); a.status != 200 {
		t.Errorf("after a bad reload: %s, want the old policy", a)
	}
	// Good: the rule now wants another ref.
	k.writePolicy(t, "policy.yaml", strings.Replace(e2ePolicy, "refs/heads/main", "refs/heads/release", 1))
	hup("in use")
	if a := b.exchangeForm(t, brokertest.Form(k.jwt(t, nil))); a.status != 403 {
		t.Errorf("after a good reload, main: %d, want 403", a.status)
	}
	if a := b.exchangeForm(t, brokertest.Form(k.jwt(t, map[string]any{"ref": "refs/heads/release"}))); a.status != 200 {
		t.Errorf("after a good reload, release: %s", a)
	}
}

// TestBrokerDrain: on SIGTERM an in-flight exchange completes, new
// connections are refused, and the process exits 0 within the drain bound.
func TestBrokerDrain(t *testing.T) {
	t.Parallel()
	k := newKeyless(t)
	b := k.startBroker(t, k.writePolicy(t, "policy.yaml", e2ePolicy), k.seeded.UserToken)
	k.e.AddFault(emulator.Fault{Route: "POST /user/tokens", Kind: emulator.Latency, Delay: 2 * time.Second, Times: 1})
	var wg sync.WaitGroup
	var a rawAnswer
	var aerr error
	form := brokertest.Form(k.jwt(t, nil)).Encode()
	wg.Go(func() { a, aerr = b.tryPost(broker.TokenPath, "application/x-www-form-urlencoded", form) })
	// Wait until the create is in flight, then stop the broker.
	deadline := time.Now().Add(10 * time.Second)
	for len(k.e.RequestsTo("POST /user/tokens")) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the create never arrived")
		}
		time.Sleep(5 * time.Millisecond)
	}
	start := time.Now()
	if err := b.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, b.url+broker.HealthPath, nil)
	if res, err := http.DefaultClient.Do(req); err == nil {
		res.Body.Close()
		t.Errorf("a new connection during the drain was served: %d", res.StatusCode)
	}
	wg.Wait()
	if aerr != nil || a.status != 200 {
		t.Errorf("the in-flight exchange: %v %d %s %s, want it completed", aerr, a.status, a.code, a.desc)
	}
	var got struct {
		Token string `json:"access_token"`
		ID    string `json:"token_id"`
	}
	_ = json.Unmarshal([]byte(a.body), &got)
	b.addSecret(got.Token)
	if code := b.wait(t, 10*time.Second); code != 0 {
		t.Errorf("exit %d after SIGTERM, want 0:\n%s", code, b.stderr)
	}
	if d := time.Since(start); d > 8*time.Second {
		t.Errorf("the drain took %s, more than the 8 s bound", d)
	}
	if !k.alive(got.ID) {
		t.Error("the token handed out during the drain does not exist")
	}
}

// TestPolicyFlags: policy check and explain read their flags around the
// one FILE, from the environment as every command does, and show their
// help.
func TestPolicyFlags(t *testing.T) {
	t.Parallel()
	missing := filepath.Join(t.TempDir(), "nope.yaml")
	for _, tc := range []struct {
		name     string
		env      []string
		args     []string
		wantCode int
		want     string
	}{
		{"claims after FILE", nil, []string{"policy", "explain", missing, "--claims", "c.json"}, 1, "nope.yaml"},
		{"claims before FILE", nil, []string{"policy", "explain", "--claims", "c.json", missing}, 1, "nope.yaml"},
		{"claims from the environment", []string{"CF_SCOPED_TOKEN_CLAIMS=c.json"}, []string{"policy", "explain", missing}, 1, "nope.yaml"},
		{"no claims", nil, []string{"policy", "explain", missing}, 1, "--claims is required"},
		{"help", nil, []string{"policy", "check", "--help"}, 0, "cf-scoped-token policy check"},
		{"an unknown flag", nil, []string{"policy", "check", missing, "--nope"}, 1, `run "cf-scoped-token policy check --help"`},
		{"two files", nil, []string{"policy", "check", missing, "other.yaml"}, 1, "unexpected argument"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cmd := exec.Command(mustBinary(t), tc.args...)
			cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, tc.env...)
			out, _ := cmd.CombinedOutput()
			if code := cmd.ProcessState.ExitCode(); code != tc.wantCode || !strings.Contains(string(out), tc.want) {
				t.Errorf("%v: exit %d, want %d saying %q:\n%s", tc.args, code, tc.wantCode, tc.want, out)
			}
		})
	}
}
