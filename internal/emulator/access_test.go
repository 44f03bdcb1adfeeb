package emulator_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/cf-scoped-token/cf-scoped-token/internal/emulator"
)

// accessEndpoint is one Access call with a valid body, and the area and level it needs.
type accessEndpoint struct {
	method, path string // path under /accounts/{id}/access/, "{app}" is replaced
	body         any
	area         string // "orgs", "apps", "st"
	write        bool
}

func accessEndpoints() []accessEndpoint {
	policy := map[string]any{"name": "p", "decision": "allow", "include": []any{map[string]any{"everyone": map[string]any{}}}}
	return []accessEndpoint{
		{"GET", "organizations", nil, "orgs", false},
		{"PUT", "organizations", map[string]any{"name": "Renamed"}, "orgs", true},
		{"GET", "identity_providers", nil, "orgs", false},
		{"POST", "identity_providers", map[string]any{"name": "GitHub", "type": "github", "config": map[string]any{}}, "orgs", true},
		{"GET", "groups", nil, "orgs", false},
		{"POST", "groups", map[string]any{"name": "ops", "include": []any{map[string]any{"email": map[string]any{"email": "a@example.com"}}}}, "orgs", true},
		{"GET", "apps", nil, "apps", false},
		{"POST", "apps", map[string]any{"name": "app", "domain": "app.example.com", "type": "self_hosted"}, "apps", true},
		{"GET", "apps/{app}", nil, "apps", false},
		{"GET", "apps/{app}/policies", nil, "apps", false},
		{"POST", "apps/{app}/policies", policy, "apps", true},
		{"GET", "policies", nil, "apps", false},
		{"POST", "policies", policy, "apps", true},
		{"GET", "service_tokens", nil, "st", false},
		{"POST", "service_tokens", map[string]any{"name": "ci"}, "st", true},
	}
}

// TestAccessEnforcement is the table over (token's groups × account × endpoint × method):
// allowed, or 403 code 10000 "Authentication error".
func TestAccessEnforcement(t *testing.T) {
	t.Parallel()
	te := mustServe(t)
	a0, a1 := te.seed.AccountIDs[0], te.seed.AccountIDs[1]
	foreign := strings.Repeat("e", 32)
	te.e.AddAccount(foreign, "not a member")
	// An app on each account for the app-policy endpoints.
	apps := map[string]string{}
	for _, a := range []string{a0, a1, foreign} {
		tok := te.seed.UserToken
		if a == foreign {
			_, tok = te.e.IssueAccountToken(foreign, emulator.TokenSpec{Name: "owner", Policies: []emulator.Policy{
				{Effect: "allow", PermissionGroups: []string{gAppsWrite}, Resources: map[string]string{acct(foreign): "*"}}}})
		}
		var app struct{ ID string }
		decode(t, wantOK(t, te.do(t, "POST", "/accounts/"+a+"/access/apps", tok,
			map[string]any{"name": "base", "domain": "base.example.com"})), &app)
		apps[a] = app.ID
	}

	allow := func(groups []string, res ...string) emulator.Policy {
		m := map[string]string{}
		for _, r := range res {
			m[r] = "*"
		}
		return emulator.Policy{Effect: "allow", PermissionGroups: groups, Resources: m}
	}
	deny := func(groups []string, res ...string) emulator.Policy {
		p := allow(groups, res...)
		p.Effect = "deny"
		return p
	}
	tests := []struct {
		name     string
		owner    string // "user" (the seeded user) or an account id
		policies []emulator.Policy
		account  string
		grants   []string // "orgs:r", "apps:w", …; everything else must be refused
	}{
		{"no Access group", "user", []emulator.Policy{allow([]string{gAuditLogsRead, gAPITokensWrite}, acct(a0))}, a0, nil},
		{"orgs read", "user", []emulator.Policy{allow([]string{gOrgsRead}, acct(a0))}, a0, []string{"orgs:r"}},
		{"orgs write", "user", []emulator.Policy{allow([]string{gOrgsWrite}, acct(a0))}, a0, []string{"orgs:r", "orgs:w"}},
		{"apps read", "user", []emulator.Policy{allow([]string{gAppsRead}, acct(a0))}, a0, []string{"apps:r"}},
		{"apps write", "user", []emulator.Policy{allow([]string{gAppsWrite}, acct(a0))}, a0, []string{"apps:r", "apps:w"}},
		{"service tokens read", "user", []emulator.Policy{allow([]string{gServiceTokensRead}, acct(a0))}, a0, []string{"st:r"}},
		{"service tokens write", "user", []emulator.Policy{allow([]string{gServiceTokensWrite}, acct(a0))}, a0, []string{"st:r", "st:w"}},
		{"zone-scoped twins grant nothing", "user", []emulator.Policy{allow([]string{gAppsReadZone, gAppsWriteZone}, acct(a0))}, a0, nil},
		{"other account in resources", "user", []emulator.Policy{allow([]string{gOrgsWrite, gAppsWrite, gServiceTokensWrite}, acct(a1))}, a0, nil},
		{"account wildcard", "user", []emulator.Policy{allow([]string{gOrgsWrite}, "com.cloudflare.api.account.*")}, a1, []string{"orgs:r", "orgs:w"}},
		{"user resource is not an account", "user", []emulator.Policy{allow([]string{gOrgsWrite}, "com.cloudflare.api.user."+te.seed.UserID)}, a0, nil},
		{"not a member of the account", "user", []emulator.Policy{allow([]string{gOrgsWrite}, acct(foreign))}, foreign, nil},
		{"deny beats allow", "user", []emulator.Policy{allow([]string{gOrgsWrite}, acct(a0)), deny([]string{gOrgsWrite}, acct(a0))}, a0, nil},
		{"deny write leaves read", "user", []emulator.Policy{allow([]string{gOrgsRead, gOrgsWrite}, acct(a0)), deny([]string{gOrgsWrite}, acct(a0))}, a0, []string{"orgs:r"}},
		{"deny on another account", "user", []emulator.Policy{allow([]string{gAppsWrite}, acct(a0)), deny([]string{gAppsWrite}, acct(a1))}, a0, []string{"apps:r", "apps:w"}},
		{"deny by wildcard", "user", []emulator.Policy{allow([]string{gAppsWrite}, acct(a0)), deny([]string{gAppsWrite}, "com.cloudflare.api.account.*")}, a0, nil},
		{"several areas", "user", []emulator.Policy{allow([]string{gOrgsRead, gServiceTokensWrite}, acct(a0), acct(a1))}, a1, []string{"orgs:r", "st:r", "st:w"}},
		{"account token, own account", a0, []emulator.Policy{allow([]string{gAppsWrite, gOrgsRead}, acct(a0))}, a0, []string{"apps:r", "apps:w", "orgs:r"}},
		{"account token, other account", a0, []emulator.Policy{allow([]string{gAppsWrite, gOrgsRead}, acct(a1))}, a1, nil},
		{"account token, wildcard is its own account", a0, []emulator.Policy{allow([]string{gOrgsWrite}, "com.cloudflare.api.account.*")}, a1, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			spec := emulator.TokenSpec{Name: tc.name, Policies: tc.policies}
			var tok string
			if tc.owner == "user" {
				_, tok = te.e.IssueUserToken(te.seed.UserID, spec)
			} else {
				_, tok = te.e.IssueAccountToken(tc.owner, spec)
			}
			for _, ep := range accessEndpoints() {
				level := "r"
				if ep.write {
					level = "w"
				}
				allowed := false
				for _, g := range tc.grants {
					allowed = allowed || g == ep.area+":"+level
				}
				path := "/accounts/" + tc.account + "/access/" + strings.ReplaceAll(ep.path, "{app}", apps[tc.account])
				env := te.do(t, ep.method, path, tok, ep.body)
				if allowed {
					if env.Status != http.StatusOK || !*env.Success {
						t.Errorf("%s %s: %d %+v, want allowed", ep.method, ep.path, env.Status, env.Errors)
					}
					continue
				}
				if env.Status != http.StatusForbidden || len(env.Errors) == 0 || env.Errors[0].Code != 10000 ||
					env.Errors[0].Message != "Authentication error" || string(env.Result) != "null" {
					t.Errorf("%s %s: %d %+v, want 403 code 10000 Authentication error", ep.method, ep.path, env.Status, env.Errors)
				}
			}
		})
	}
}

func TestAccessCRUD(t *testing.T) {
	t.Parallel()
	te := mustServe(t)
	base := "/accounts/" + te.seed.AccountIDs[0] + "/access/"
	tok := te.seed.AccountToken
	var app struct{ ID string }
	decode(t, wantOK(t, te.do(t, "POST", base+"apps", tok, map[string]any{"name": "a", "domain": "a.example.com"})), &app)

	policy := func(name string) map[string]any {
		return map[string]any{"name": name, "decision": "allow", "include": []any{map[string]any{"everyone": map[string]any{}}}}
	}
	tests := []struct {
		kind           string
		create, update map[string]any
		invalid        map[string]any
	}{
		{"identity_providers", map[string]any{"name": "GitHub", "type": "github", "config": map[string]any{"client_id": "x"}},
			map[string]any{"name": "GitHub 2", "type": "github", "config": map[string]any{}}, map[string]any{"name": "no type"}},
		{"groups", map[string]any{"name": "g", "include": []any{map[string]any{"email_domain": map[string]any{"domain": "example.com"}}}},
			map[string]any{"name": "g2", "include": []any{map[string]any{"everyone": map[string]any{}}}}, map[string]any{"name": "no include"}},
		{"apps", map[string]any{"name": "x", "domain": "x.example.com", "type": "self_hosted"},
			map[string]any{"name": "x2", "domain": "x2.example.com"}, map[string]any{"name": "no domain", "type": "self_hosted"}},
		{"apps/" + app.ID + "/policies", policy("p"), policy("p2"), map[string]any{"name": "p", "decision": "maybe", "include": []any{1}}},
		{"policies", policy("r"), policy("r2"), map[string]any{"decision": "allow", "include": []any{1}}},
		{"service_tokens", map[string]any{"name": "ci", "duration": "24h"}, map[string]any{"name": "ci2"}, map[string]any{}},
	}
	for _, tc := range tests {
		t.Run(tc.kind, func(t *testing.T) {
			t.Parallel()
			var created map[string]any
			decode(t, wantOK(t, te.do(t, "POST", base+tc.kind, tok, tc.create)), &created)
			id, _ := created["id"].(string)
			if len(id) != 36 || created["created_at"] != "2026-11-27T20:00:00Z" || created["updated_at"] != created["created_at"] {
				t.Errorf("created = %v, want a uuid id and RFC 3339 timestamps", created)
			}
			if created["name"] != tc.create["name"] {
				t.Errorf("created name = %v", created["name"])
			}
			var got map[string]any
			decode(t, wantOK(t, te.do(t, "GET", base+tc.kind+"/"+id, tok, nil)), &got)
			if tc.kind == "service_tokens" {
				if s, _ := created["client_secret"].(string); len(s) != 64 {
					t.Errorf("create answer client_secret = %v", created["client_secret"])
				}
				if c, _ := created["client_id"].(string); !strings.HasSuffix(c, ".access") {
					t.Errorf("client_id = %v", created["client_id"])
				}
				if _, ok := got["client_secret"]; ok {
					t.Errorf("GET returns client_secret")
				}
				delete(created, "client_secret")
			}
			if diff := cmp.Diff(created, got); diff != "" {
				t.Errorf("GET differs from create (-create +get):\n%s", diff)
			}
			env := wantOK(t, te.do(t, "GET", base+tc.kind, tok, nil))
			var list []map[string]any
			decode(t, env, &list)
			if len(list) == 0 || list[len(list)-1]["id"] != id || env.ResultInfo == nil || env.ResultInfo.TotalCount != len(list) {
				t.Errorf("list = %v (%+v), want it to end with %s", list, env.ResultInfo, id)
			}

			decode(t, wantOK(t, te.do(t, "PUT", base+tc.kind+"/"+id, tok, tc.update)), &got)
			if got["name"] != tc.update["name"] || got["id"] != id || got["created_at"] != created["created_at"] {
				t.Errorf("updated = %v", got)
			}
			checkFail(t, te.do(t, "POST", base+tc.kind, tok, tc.invalid), http.StatusBadRequest, 1001)
			checkFail(t, te.do(t, "POST", base+tc.kind, tok, "{nope"), http.StatusBadRequest, 6007)

			env = wantOK(t, te.do(t, "DELETE", base+tc.kind+"/"+id, tok, nil))
			var del map[string]any
			decode(t, env, &del)
			if diff := cmp.Diff(map[string]any{"id": id}, del); diff != "" {
				t.Errorf("delete result (-want +got):\n%s", diff)
			}
			for _, m := range []string{"GET", "DELETE"} {
				checkFail(t, te.do(t, m, base+tc.kind+"/"+id, tok, nil), http.StatusNotFound, 1003)
			}
			checkFail(t, te.do(t, "PUT", base+tc.kind+"/"+id, tok, tc.update), http.StatusNotFound, 1003)
		})
	}
}

func TestAccessAppDeleteRemovesPolicies(t *testing.T) {
	t.Parallel()
	te := mustServe(t)
	base := "/accounts/" + te.seed.AccountIDs[0] + "/access/apps"
	tok := te.seed.AccountToken
	var app struct{ ID string }
	decode(t, wantOK(t, te.do(t, "POST", base, tok, map[string]any{"name": "a", "domain": "a.example.com"})), &app)
	wantOK(t, te.do(t, "POST", base+"/"+app.ID+"/policies", tok,
		map[string]any{"name": "p", "decision": "allow", "include": []any{map[string]any{"everyone": map[string]any{}}}}))
	wantOK(t, te.do(t, "DELETE", base+"/"+app.ID, tok, nil))
	checkFail(t, te.do(t, "GET", base+"/"+app.ID+"/policies", tok, nil), http.StatusNotFound, 1003)
}

func TestAccessOrganization(t *testing.T) {
	t.Parallel()
	te := mustServe(t)
	path := "/accounts/" + te.seed.AccountIDs[1] + "/access/organizations"
	var org map[string]any
	decode(t, wantOK(t, te.do(t, "GET", path, te.seed.UserToken, nil)), &org)
	if org["name"] != "Example Staging" || org["auth_domain"] == "" {
		t.Errorf("organization = %v", org)
	}
	te.now.Advance(90 * 1e9)
	var upd map[string]any
	decode(t, wantOK(t, te.do(t, "PUT", path, te.seed.UserToken, map[string]any{"name": "New", "session_duration": "12h"})), &upd)
	if upd["name"] != "New" || upd["session_duration"] != "12h" || upd["auth_domain"] != org["auth_domain"] ||
		upd["created_at"] != org["created_at"] || upd["updated_at"] != "2026-11-27T20:01:30Z" {
		t.Errorf("updated organization = %v", upd)
	}
	checkFail(t, te.do(t, "PUT", path, te.seed.UserToken, map[string]any{"name": ""}), http.StatusBadRequest, 1001)
}

func TestAccessPagination(t *testing.T) {
	t.Parallel()
	te := mustServe(t)
	base := "/accounts/" + te.seed.AccountIDs[0] + "/access/service_tokens"
	for range 3 {
		wantOK(t, te.do(t, "POST", base, te.seed.AccountToken, map[string]any{"name": "st"}))
	}
	for _, tc := range []struct {
		query string
		info  resultInfo
	}{
		{"", resultInfo{1, 25, 3, 3}},
		{"?per_page=2", resultInfo{1, 2, 2, 3}},
		{"?per_page=2&page=2", resultInfo{2, 2, 1, 3}},
		{"?per_page=2&page=3", resultInfo{3, 2, 0, 3}},
	} {
		env := wantOK(t, te.do(t, "GET", base+tc.query, te.seed.AccountToken, nil))
		if diff := cmp.Diff(&tc.info, env.ResultInfo); diff != "" {
			t.Errorf("%s result_info (-want +got):\n%s", tc.query, diff)
		}
	}
	checkFail(t, te.do(t, "GET", "/accounts/nope/access/service_tokens", te.seed.AccountToken, nil), http.StatusNotFound, 7003)
}
