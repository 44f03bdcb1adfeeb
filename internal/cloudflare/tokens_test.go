package cloudflare

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/cf-scoped-token/cf-scoped-token/internal/emulator"
	"github.com/cf-scoped-token/cf-scoped-token/internal/token"
)

// endpointCase is one family of token endpoints.
type endpointCase struct {
	name string
	ep   token.Endpoint
	base string // route prefix, as in emulator.Request.Route
}

// endpoints are the two families of token endpoints every test runs on.
var endpoints = []endpointCase{
	{"user", token.Endpoint{}, "/user/tokens"},
	{"account", token.Endpoint{AccountID: emulator.SeedAccount1}, "/accounts/{account_id}/tokens"},
}

// forEachEndpoint runs test in parallel on each family of endpoints, each
// in a world of its own, with a client acting as that endpoint's parent.
func forEachEndpoint(t *testing.T, test func(t *testing.T, w *world, c *Client, tc endpointCase)) {
	t.Helper()
	t.Parallel()
	for _, tc := range endpoints {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := mustWorld(t)
			test(t, w, w.client(w.parent(tc.ep)), tc)
		})
	}
}

// parent returns the seeded parent token that manages ep's tokens.
func (w *world) parent(ep token.Endpoint) string {
	if ep.IsAccount() {
		return w.seed.AccountToken
	}
	return w.seed.UserToken
}

// childSpec is the token most tests create: it may read Access apps on the
// seeded account, for an hour from t0.
func childSpec(name string) token.Spec {
	return token.Spec{
		Name:      token.NamePrefix + name,
		Policies:  []token.Policy{token.AllowPolicy([]string{emulator.SeedAccount1}, []string{gAppsRead})},
		ExpiresOn: t0.Add(time.Hour),
	}
}

// issue stores a token directly in the emulator on ep's owner.
func (w *world) issue(ep token.Endpoint, spec emulator.TokenSpec) (id, value string) {
	if len(spec.Policies) == 0 {
		spec.Policies = []emulator.Policy{{
			Effect: "allow", PermissionGroups: []string{gAppsRead},
			Resources: map[string]string{"com.cloudflare.api.account." + emulator.SeedAccount1: "*"},
		}}
	}
	if ep.IsAccount() {
		return w.e.IssueAccountToken(ep.AccountID, spec)
	}
	return w.e.IssueUserToken(w.seed.UserID, spec)
}

func TestClient_PermissionGroups(t *testing.T) {
	forEachEndpoint(t, func(t *testing.T, w *world, c *Client, tc endpointCase) {
		got, err := c.PermissionGroups(t.Context(), tc.ep)
		if err != nil {
			t.Fatal(err)
		}

		// The whole list as the API sent it, read here without the SDK.
		path := w.api + "/user/tokens/permission_groups"
		if tc.ep.IsAccount() {
			path = w.api + "/accounts/" + tc.ep.AccountID + "/tokens/permission_groups"
		}
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, path, nil)
		req.Header.Set("Authorization", "Bearer "+w.parent(tc.ep))
		res, err := w.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var env struct {
			Result []struct {
				ID     string   `json:"id"`
				Name   string   `json:"name"`
				Scopes []string `json:"scopes"`
			} `json:"result"`
		}
		if err := json.NewDecoder(res.Body).Decode(&env); err != nil {
			t.Fatal(err)
		}
		var want []token.PermissionGroup
		for _, g := range env.Result {
			want = append(want, token.PermissionGroup{ID: g.ID, Name: g.Name, Scopes: g.Scopes})
		}
		if len(want) < 10 {
			t.Fatalf("the emulator listed only %d groups", len(want))
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("PermissionGroups (-want +got):\n%s", diff)
		}

		// Both Access twins come through with their own scopes; the user
		// scope only on the user endpoint.
		byID := map[string]token.PermissionGroup{}
		for _, g := range got {
			byID[g.ID] = g
		}
		if g := byID[gAppsRead]; g.Name != "Access: Apps and Policies Read" || !cmp.Equal(g.Scopes, []string{token.AccountScope}) {
			t.Errorf("group %s = %+v, want account-scoped Access: Apps and Policies Read", gAppsRead, g)
		}
		if g := byID[gAppsReadZone]; g.Name != "Access: Apps and Policies Read" || !cmp.Equal(g.Scopes, []string{"com.cloudflare.api.account.zone"}) {
			t.Errorf("group %s = %+v, want zone-scoped Access: Apps and Policies Read", gAppsReadZone, g)
		}
		if _, ok := byID[gAPITokensWrite]; ok != !tc.ep.IsAccount() {
			t.Errorf("user-scoped API Tokens Write listed: %v, want %v", ok, !tc.ep.IsAccount())
		}
		if n := len(w.requests("GET " + tc.base + "/permission_groups")); n != 2 {
			t.Errorf("%d permission-group requests, want 2 (the client's and the test's)", n)
		}
	})
}

func TestClient_CreateToken(t *testing.T) {
	t.Parallel()
	// Not UTC and not whole seconds: the client must send 20:59:59Z, not 21:59:59.9+01:00.
	expires := time.Date(2026, 11, 27, 21, 59, 59, 987654321, time.FixedZone("CET", 3600))
	const wantExpires = "2026-11-27T20:59:59Z"
	for _, tc := range endpoints {
		for _, ips := range [][]string{nil, {"127.0.0.1/32", "::1/128"}} {
			name := tc.name + "/no-condition"
			if ips != nil {
				name = tc.name + "/request_ip"
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				w := mustWorld(t)
				accounts := []string{emulator.SeedAccount1, emulator.SeedAccount2}
				if tc.ep.IsAccount() {
					accounts = accounts[:1]
				}
				spec := token.Spec{
					Name:       token.NamePrefix + "test " + name,
					Policies:   []token.Policy{token.AllowPolicy(accounts, []string{gAppsRead, gServiceRead})},
					ExpiresOn:  expires,
					AllowedIPs: ips,
				}
				got, err := w.client(w.parent(tc.ep)).CreateToken(t.Context(), tc.ep, spec)
				if err != nil {
					t.Fatal(err)
				}

				// The answer.
				wantPrefix := "cfut_"
				if tc.ep.IsAccount() {
					wantPrefix = "cfat_"
				}
				if !strings.HasPrefix(got.Value.Reveal(), wantPrefix) {
					t.Errorf("value does not start with %s", wantPrefix)
				}
				wantInfo := token.Info{ID: got.ID, Name: spec.Name, Status: "active", IssuedOn: t0,
					ExpiresOn: time.Date(2026, 11, 27, 20, 59, 59, 0, time.UTC), AccountIDs: accounts,
					Groups: []token.PermissionGroup{{ID: gAppsRead, Name: "Access: Apps and Policies Read"}, {ID: gServiceRead, Name: "Access: Service Tokens Read"}}}
				if diff := cmp.Diff(wantInfo, got.Info); diff != "" || got.ID == "" {
					t.Errorf("Created.Info (-want +got):\n%s", diff)
				}

				// The wire body, decoded.
				posts := w.requests("POST " + tc.base)
				if len(posts) != 1 {
					t.Fatalf("%d POSTs, want 1", len(posts))
				}
				bodies := w.bodies.get("POST " + posts[0].Path)
				if len(bodies) != 1 {
					t.Fatalf("%d bodies captured, want 1", len(bodies))
				}
				var body map[string]any
				if err := json.Unmarshal(bodies[0], &body); err != nil {
					t.Fatalf("body is not JSON: %v", err)
				}
				resources := map[string]any{}
				for _, a := range accounts {
					resources["com.cloudflare.api.account."+a] = "*"
				}
				wantBody := map[string]any{
					"name": spec.Name,
					"policies": []any{map[string]any{
						"effect":            "allow",
						"permission_groups": []any{map[string]any{"id": gAppsRead}, map[string]any{"id": gServiceRead}},
						"resources":         resources,
					}},
					"expires_on": wantExpires,
				}
				if ips != nil {
					// The current spelling, request_ip (reference/cloudflare-api.md, Create body).
					wantBody["condition"] = map[string]any{"request_ip": map[string]any{"in": []any{ips[0], ips[1]}}}
				}
				if diff := cmp.Diff(wantBody, body); diff != "" {
					t.Errorf("request body (-want +got):\n%s", diff)
				}

				// What the emulator stored.
				st, ok := w.stored(t, got.ID)
				if !ok {
					t.Fatalf("token %s not stored", got.ID)
				}
				wantOwner, wantOwnerID := emulator.OwnerUser, w.seed.UserID
				if tc.ep.IsAccount() {
					wantOwner, wantOwnerID = emulator.OwnerAccount, tc.ep.AccountID
				}
				stringRes := map[string]string{}
				for _, a := range accounts {
					stringRes["com.cloudflare.api.account."+a] = "*"
				}
				want := emulator.Token{
					ID: got.ID, Name: spec.Name, Value: got.Value.Reveal(),
					Owner: wantOwner, OwnerID: wantOwnerID, Status: "active",
					IssuedOn: t0, ModifiedOn: t0, ExpiresOn: time.Date(2026, 11, 27, 20, 59, 59, 0, time.UTC),
					Policies: []emulator.Policy{{
						Effect: "allow", PermissionGroups: []string{gAppsRead, gServiceRead}, Resources: stringRes,
					}},
					AllowedIPs: ips,
				}
				if diff := cmp.Diff(want, st, cmpopts.EquateEmpty()); diff != "" {
					t.Errorf("stored token (-want +got):\n%s", diff)
				}
				if !st.NotBefore.IsZero() {
					t.Errorf("not_before = %v, want unset", st.NotBefore)
				}
				if a := posts[0].Header.Get("Authorization"); a != "Bearer "+w.parent(tc.ep) {
					t.Errorf("Authorization = %q, want the parent's Bearer", a)
				}
			})
		}
	}
}

func TestClient_GetToken(t *testing.T) {
	forEachEndpoint(t, func(t *testing.T, w *world, c *Client, tc endpointCase) {
		exp := t0.Add(2 * time.Hour)
		id, _ := w.issue(tc.ep, emulator.TokenSpec{Name: "live", ExpiresOn: exp})
		oldID, _ := w.issue(tc.ep, emulator.TokenSpec{Name: "old", ExpiresOn: t0.Add(-time.Minute)})
		foreverID, _ := w.issue(tc.ep, emulator.TokenSpec{Name: "forever"})

		accounts := []string{emulator.SeedAccount1}
		groups := []token.PermissionGroup{{ID: gAppsRead, Name: "Access: Apps and Policies Read"}}
		for _, want := range []token.Info{
			{ID: id, Name: "live", Status: "active", IssuedOn: t0, ExpiresOn: exp, AccountIDs: accounts, Groups: groups},
			{ID: oldID, Name: "old", Status: "expired", IssuedOn: t0, ExpiresOn: t0.Add(-time.Minute), AccountIDs: accounts, Groups: groups},
			{ID: foreverID, Name: "forever", Status: "active", IssuedOn: t0, AccountIDs: accounts, Groups: groups},
		} {
			got, err := c.GetToken(t.Context(), tc.ep, want.ID)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("GetToken(%s) (-want +got):\n%s", want.Name, diff)
			}
		}

		const missing = "00000000000000000000000000000000"
		_, err := c.GetToken(t.Context(), tc.ep, missing)
		if !errors.Is(err, token.ErrNotFound) {
			t.Errorf("GetToken(missing) = %v, want token.ErrNotFound", err)
		}
		if got := len(w.requests("GET " + tc.base + "/{token_id}")); got != 4 {
			t.Errorf("%d GETs, want 4 (a 404 is not retried)", got)
		}
	})
}

func TestClient_ListTokens(t *testing.T) {
	t.Parallel()
	for _, tc := range endpoints {
		for _, n := range []struct {
			issued, pages int
		}{
			{0, 1},  // the parent alone (the account parent lives on the account)
			{49, 2}, // 50 with the parent: a full page, then an empty one
			{64, 2}, // 65: 50 + 15, of which some expired
			{99, 3}, // 100: two full pages and an empty one
		} {
			t.Run(tc.name+"/"+strconv.Itoa(n.issued), func(t *testing.T) {
				t.Parallel()
				w := mustWorld(t)
				w.e.SetLimits(emulator.Limits{UserTokenQuota: 1000, AccountTokenQuota: 1000, RateLimit: 1200})
				for i := range n.issued {
					spec := emulator.TokenSpec{Name: "t" + strconv.Itoa(i), ExpiresOn: t0.Add(time.Hour)}
					if i%7 == 3 {
						spec.ExpiresOn = t0.Add(-time.Hour) // expired, still counts against the quota
					}
					w.issue(tc.ep, spec)
				}
				got, err := w.client(w.parent(tc.ep)).ListTokens(t.Context(), tc.ep)
				if err != nil {
					t.Fatal(err)
				}

				var want []token.Info
				wantOwner := emulator.OwnerUser
				if tc.ep.IsAccount() {
					wantOwner = emulator.OwnerAccount
				}
				expired := 0
				for _, st := range w.e.Tokens() {
					if st.Owner != wantOwner {
						continue
					}
					if st.Status == "expired" {
						expired++
					}
					want = append(want, token.Info{ID: st.ID, Name: st.Name, Status: st.Status, IssuedOn: st.IssuedOn, ExpiresOn: st.ExpiresOn})
				}
				if len(want) != n.issued+1 || (n.issued > 7 && expired == 0) {
					t.Fatalf("setup: %d tokens, %d expired", len(want), expired)
				}
				// What the policies grant is checked by GetToken's test; here the list.
				if diff := cmp.Diff(want, got, cmpopts.IgnoreFields(token.Info{}, "AccountIDs", "Groups")); diff != "" {
					t.Errorf("ListTokens (-want +got):\n%s", diff)
				}

				reqs := w.requests("GET " + tc.base)
				if len(reqs) != n.pages {
					t.Fatalf("%d list requests, want %d", len(reqs), n.pages)
				}
				for i, r := range reqs {
					q, _ := url.ParseQuery(r.RawQuery)
					want := url.Values{"page": {strconv.Itoa(i + 1)}, "per_page": {"50"}, "include_expired": {"true"}}
					if diff := cmp.Diff(want, q); diff != "" {
						t.Errorf("request %d query (-want +got):\n%s", i+1, diff)
					}
				}
			})
		}
	}
}

func TestClient_DeleteToken(t *testing.T) {
	forEachEndpoint(t, func(t *testing.T, w *world, c *Client, tc endpointCase) {
		id, value := w.issue(tc.ep, emulator.TokenSpec{Name: "doomed"})
		keepID, _ := w.issue(tc.ep, emulator.TokenSpec{Name: "kept"})

		if err := c.DeleteToken(t.Context(), tc.ep, id); err != nil {
			t.Fatal(err)
		}
		if _, ok := w.stored(t, id); ok {
			t.Error("the token is still stored after DeleteToken")
		}
		if _, ok := w.stored(t, keepID); !ok {
			t.Error("DeleteToken deleted another token")
		}
		if _, err := c.VerifyToken(t.Context(), tc.ep, token.NewSecret(value)); err == nil {
			t.Error("the deleted token still verifies")
		}

		err := c.DeleteToken(t.Context(), tc.ep, id)
		if !errors.Is(err, token.ErrNotFound) {
			t.Fatalf("second DeleteToken = %v, want token.ErrNotFound", err)
		}
		var apiErr *APIError
		if !errors.As(err, &apiErr) || apiErr.Status != http.StatusNotFound || apiErr.Method != http.MethodDelete {
			t.Errorf("second DeleteToken = %#v, want a DELETE *APIError with status 404", err)
		}
		if errors.Is(err, token.ErrQuotaExceeded) || errors.Is(err, token.ErrOutcomeUnknown) {
			t.Errorf("a 404 matches another sentinel: %v", err)
		}
		if got := len(w.requests("DELETE " + tc.base + "/{token_id}")); got != 2 {
			t.Errorf("%d DELETEs, want 2 (a 404 is not retried)", got)
		}
		if got := w.waits.All(); len(got) != 0 {
			t.Errorf("backoffs %v, want none", got)
		}
	})
}

func TestClient_RollToken(t *testing.T) {
	forEachEndpoint(t, func(t *testing.T, w *world, c *Client, tc endpointCase) {
		id, old := w.issue(tc.ep, emulator.TokenSpec{Name: "rolled", ExpiresOn: t0.Add(time.Hour)})
		got, err := c.RollToken(t.Context(), tc.ep, id)
		if err != nil {
			t.Fatal(err)
		}
		st, _ := w.stored(t, id)
		if got.Reveal() != st.Value || got.Reveal() == old || got.IsZero() {
			t.Errorf("RollToken returned a value that is not the stored new one")
		}
		puts := w.requests("PUT " + tc.base + "/{token_id}/value")
		if len(puts) != 1 {
			t.Fatalf("%d PUTs, want 1", len(puts))
		}
		bodies := w.bodies.get("PUT " + puts[0].Path)
		var body map[string]any
		if len(bodies) != 1 || json.Unmarshal(bodies[0], &body) != nil {
			t.Fatalf("PUT body %q, want one JSON object", bodies)
		}
		if diff := cmp.Diff(map[string]any{}, body); diff != "" {
			t.Errorf("PUT body (-want +got):\n%s", diff)
		}
		if v, err := c.VerifyToken(t.Context(), tc.ep, got); err != nil || v.Status != "active" {
			t.Errorf("the new value does not verify: %q, %v", v.Status, err)
		}
		if _, err := c.VerifyToken(t.Context(), tc.ep, token.NewSecret(old)); err == nil {
			t.Error("the old value still verifies")
		}
	})
}

func TestClient_RunnerIP(t *testing.T) {
	t.Parallel()
	w := mustWorld(t)
	got, err := w.client(w.seed.UserToken).RunnerIP(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if got != "127.0.0.1" {
		t.Errorf("RunnerIP = %q, want 127.0.0.1", got)
	}
	reqs := w.requests("GET /cdn-cgi/trace")
	if len(reqs) != 1 {
		t.Fatalf("%d trace requests, want 1", len(reqs))
	}
	if reqs[0].Path != "/cdn-cgi/trace" {
		t.Errorf("trace path = %s, want /cdn-cgi/trace on the host root", reqs[0].Path)
	}
	// The trace needs no credential, so it gets none.
	if a := reqs[0].Header.Get("Authorization"); a != "" {
		t.Errorf("the trace request carries Authorization")
	}
}

// TestClient_SendsOnlyTheParentBearer runs every method with the SDK's
// environment variables set. It cannot be parallel: t.Setenv changes the
// process environment, which every other test would see.
func TestClient_SendsOnlyTheParentBearer(t *testing.T) {
	decoy := httptest404(t)
	const envToken = "cfut_FromTheEnvironment000000000000000000000000000000"
	t.Setenv("CLOUDFLARE_API_TOKEN", envToken)
	t.Setenv("CLOUDFLARE_API_KEY", "0123456789abcdef0123456789abcdef01234")
	t.Setenv("CLOUDFLARE_EMAIL", "env@example.com")
	t.Setenv("CLOUDFLARE_API_USER_SERVICE_KEY", "v1.0-env-service-key")
	t.Setenv("CLOUDFLARE_BASE_URL", decoy.URL+"/client/v4")

	w := mustWorld(t)
	ctx := t.Context()
	for _, tc := range endpoints {
		c := w.client(w.parent(tc.ep))
		if _, err := c.PermissionGroups(ctx, tc.ep); err != nil {
			t.Fatal(err)
		}
		child, err := c.CreateToken(ctx, tc.ep, childSpec("env "+tc.name))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.GetToken(ctx, tc.ep, child.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := c.ListTokens(ctx, tc.ep); err != nil {
			t.Fatal(err)
		}
		if _, err := c.VerifyToken(ctx, tc.ep, child.Value); err != nil {
			t.Fatal(err)
		}
		rolled, err := c.RollToken(ctx, tc.ep, child.ID)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.DeleteToken(ctx, tc.ep, child.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := c.RunnerIP(ctx); err != nil {
			t.Fatal(err)
		}

		// Every request of this round: the verify carries the child's
		// original value, everything else the parent's, nothing else.
		for _, r := range w.e.Requests() {
			if !strings.Contains(r.Route, tc.base) {
				continue
			}
			want := "Bearer " + w.parent(tc.ep)
			if strings.HasSuffix(r.Route, "/verify") {
				want = "Bearer " + child.Value.Reveal()
			}
			if got := r.Header.Values("Authorization"); len(got) != 1 || got[0] != want {
				t.Errorf("%s %s: Authorization is not exactly %s", r.Method, r.Path, redact(want))
			}
			for _, h := range []string{"X-Auth-Key", "X-Auth-Email", "X-Auth-User-Service-Key"} {
				if v := r.Header.Values(h); len(v) != 0 {
					t.Errorf("%s %s: %s sent", r.Method, r.Path, h)
				}
			}
			for k, vs := range r.Header {
				for _, v := range vs {
					if strings.Contains(v, envToken) || strings.Contains(v, rolled.Reveal()) {
						t.Errorf("%s %s: header %s carries a token that is not the caller's", r.Method, r.Path, k)
					}
				}
			}
		}
	}
	if n := decoy.hits.Load(); n != 0 {
		t.Errorf("%d requests went to CLOUDFLARE_BASE_URL", n)
	}
	if len(w.e.Requests()) < 16 {
		t.Errorf("only %d requests reached the configured server", len(w.e.Requests()))
	}
}

// redact names a Bearer credential without printing it.
func redact(bearer string) string {
	if len(bearer) < 14 {
		return "Bearer …"
	}
	return bearer[:12] + "…"
}

// TestClient_CreateTokenOutcomeUnknown: after a reset, a lost answer or a
// 5xx, CreateToken gives up with token.ErrOutcomeUnknown having sent one POST.
func TestClient_CreateTokenOutcomeUnknown(t *testing.T) {
	t.Parallel()
	for _, f := range []struct {
		name    string
		fault   emulator.Fault
		created bool // whether the token exists afterwards
	}{
		{"Reset", emulator.Fault{Kind: emulator.Reset, Times: 1}, false},
		{"LostResponse", emulator.Fault{Kind: emulator.LostResponse, Times: 1}, true},
		{"500", emulator.Fault{Kind: emulator.Status, Status: 500, Times: 1}, false},
		{"502", emulator.Fault{Kind: emulator.Status, Status: 502, Times: 1}, false},
		{"503", emulator.Fault{Kind: emulator.Status, Status: 503, Times: 1}, false},
	} {
		t.Run(f.name, func(t *testing.T) {
			forEachEndpoint(t, func(t *testing.T, w *world, c *Client, tc endpointCase) {
				fault := f.fault
				fault.Route = "POST " + tc.base
				w.e.AddFault(fault)
				before := len(w.e.Tokens())
				spec := childSpec("lost " + f.name)
				got, err := c.CreateToken(t.Context(), tc.ep, spec)
				if !errors.Is(err, token.ErrOutcomeUnknown) {
					t.Fatalf("CreateToken = %v, want token.ErrOutcomeUnknown", err)
				}
				if got.ID != "" || !got.Value.IsZero() {
					t.Errorf("CreateToken returned a token with its error")
				}
				if n := len(w.requests("POST " + tc.base)); n != 1 {
					t.Errorf("%d POSTs, want exactly 1", n)
				}
				if got := w.waits.All(); len(got) != 0 {
					t.Errorf("backoffs %v, want none", got)
				}
				if n := len(w.e.Tokens()) - before; (n == 1) != f.created {
					t.Errorf("%d tokens created, want created=%v", n, f.created)
				}
			})
		})
	}
}

// TestClient_CreateTokenRetriesRateLimit: a 429 is answered before anything
// is done, so it is the one answer after which create is repeated.
func TestClient_CreateTokenRetriesRateLimit(t *testing.T) {
	forEachEndpoint(t, func(t *testing.T, w *world, c *Client, tc endpointCase) {
		w.e.AddFault(emulator.Fault{Route: "POST " + tc.base, Kind: emulator.RateLimit, Times: 2, RetryAfter: 3 * time.Second})
		got, err := c.CreateToken(t.Context(), tc.ep, childSpec("after 429"))
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := w.stored(t, got.ID); !ok {
			t.Error("the created token is not stored")
		}
		if n := len(w.requests("POST " + tc.base)); n != 3 {
			t.Errorf("%d POSTs, want 3 (two 429s, then the create)", n)
		}
		// Retry-After 3s, spread by half of itself times the jitter (0.5).
		if diff := cmp.Diff([]time.Duration{3750 * time.Millisecond, 3750 * time.Millisecond}, w.waits.All()); diff != "" {
			t.Errorf("backoffs (-want +got):\n%s", diff)
		}
		if n := len(w.e.Tokens()); n != 3 {
			t.Errorf("%d tokens stored, want the two parents and one child", n)
		}
	})
}

// TestClient_CreateTokenRefused: a 4xx is a definite no — neither retried
// nor "outcome unknown" — and the quota answer matches its sentinel.
func TestClient_CreateTokenRefused(t *testing.T) {
	t.Parallel()
	w := mustWorld(t)
	w.e.SetLimits(emulator.Limits{UserTokenQuota: 1, RateLimit: 1200})
	c := w.client(w.seed.UserToken)
	_, err := c.CreateToken(t.Context(), token.Endpoint{}, childSpec("over quota"))
	if !errors.Is(err, token.ErrQuotaExceeded) || errors.Is(err, token.ErrOutcomeUnknown) {
		t.Errorf("CreateToken over quota = %v, want token.ErrQuotaExceeded only", err)
	}
	_, err = c.CreateToken(t.Context(), token.Endpoint{}, token.Spec{
		Name:      token.NamePrefix + "not a member",
		Policies:  []token.Policy{token.AllowPolicy([]string{"ffffffffffffffffffffffffffffffff"}, []string{gAppsRead})},
		ExpiresOn: t0.Add(time.Hour),
	})
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.Status != http.StatusBadRequest || errors.Is(err, token.ErrOutcomeUnknown) {
		t.Errorf("CreateToken on a foreign account = %v, want a 400 *APIError", err)
	}
	if n := len(w.requests("POST /user/tokens")); n != 2 {
		t.Errorf("%d POSTs, want 2 (one per call)", n)
	}
}

// cancelAt is a context of t's that ends once route has received n
// requests: the moment the n-th is on the wire.
func (w *world) cancelAt(t *testing.T, route string, n int) context.Context {
	ctx, cancel := context.WithCancel(t.Context())
	go func() {
		for len(w.requests(route)) < n {
			time.Sleep(time.Millisecond)
		}
		cancel()
	}()
	return ctx
}

// TestClient_CreateTokenCancelled: a create whose context ends while the
// server holds the request has an unknown outcome.
func TestClient_CreateTokenCancelled(t *testing.T) {
	t.Parallel()
	w := mustWorld(t)
	w.e.AddFault(emulator.Fault{Route: "POST /user/tokens", Kind: emulator.Latency, Delay: time.Hour})
	ctx := w.cancelAt(t, "POST /user/tokens", 1)
	start := time.Now()
	_, err := w.client(w.seed.UserToken).CreateToken(ctx, token.Endpoint{}, childSpec("cancelled"))
	if !errors.Is(err, token.ErrOutcomeUnknown) || !errors.Is(err, context.Canceled) {
		t.Errorf("CreateToken = %v, want token.ErrOutcomeUnknown and context.Canceled", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("CreateToken took %s after cancellation", d)
	}
	if n := len(w.requests("POST /user/tokens")); n != 1 {
		t.Errorf("%d POSTs, want 1", n)
	}
}

// TestClient_CreateTokenCancelledAfterRateLimit: a create refused with a
// 429 and sent again, whose context ends while the second attempt is on the
// wire, has an unknown outcome: the second attempt may commit, whatever the
// first answer said.
func TestClient_CreateTokenCancelledAfterRateLimit(t *testing.T) {
	t.Parallel()
	w := mustWorld(t)
	const route = "POST /user/tokens"
	w.e.AddFault(emulator.Fault{Route: route, Kind: emulator.RateLimit, Times: 1})
	c := w.client(w.seed.UserToken)
	c.Retry.Sleep = func(ctx context.Context, d time.Duration) error {
		// Between the 429 and the second attempt: that one is held.
		w.e.AddFault(emulator.Fault{Route: route, Kind: emulator.Latency, Delay: time.Hour})
		return w.waits.Sleep(ctx, d)
	}
	ctx := w.cancelAt(t, route, 2)
	_, err := c.CreateToken(ctx, token.Endpoint{}, childSpec("cancelled after 429"))
	if !errors.Is(err, token.ErrOutcomeUnknown) || !errors.Is(err, context.Canceled) {
		t.Errorf("CreateToken = %v, want token.ErrOutcomeUnknown and context.Canceled", err)
	}
	if n := len(w.requests(route)); n != 2 {
		t.Errorf("%d POSTs, want 2", n)
	}
	// The text counts both attempts sent and keeps the earlier answer.
	if err == nil || !strings.Contains(err.Error(), "after 2 attempts") || !strings.Contains(err.Error(), "429") {
		t.Errorf("CreateToken = %q, want it to count 2 attempts and name the 429 before the cut one", err)
	}
}
