package policy

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/cf-scoped-token/cf-scoped-token/internal/token"
)

// wantFault is a fault a bad file must give: its exact line and field, and
// a part of its message (what is wrong and what is accepted).
type wantFault struct {
	Line  int
	Field string
	Msg   string
}

func TestParseBaseFile(t *testing.T) {
	t.Parallel()
	got := mustParse(t, baseFile)
	gh := Issuer{Name: "github", URL: githubURL, Kind: GitHub}
	want := &Policy{
		Audience: "https://cf-broker.example.com",
		Issuers:  []Issuer{gh, {Name: "gitlab", URL: "https://gitlab.com", Kind: GitLab}},
		Rules: []Rule{{
			Name: "access-deploy", Line: 6, Issuer: gh,
			Claims: []ClaimMatch{
				{Claim: "repository_owner_id", Values: []string{"5234567"}, Pin: true},
				{Claim: "repository_id", Values: []string{"712345678"}, Pin: true},
				{Claim: "ref", Values: []string{"refs/heads/main"}},
				{Claim: "environment", Values: []string{"production", "staging"}},
				{Claim: "job_workflow_ref", Values: []string{"octo-org/infra/.github/workflows/access.yml@refs/heads/*"}},
			},
			Grant: Allowance{
				Owner:      token.OwnerAccount,
				AccountIDs: []string{acctA},
				Scopes: []token.Scope{
					{Name: "Access: Apps and Policies", Level: token.Write},
					{Name: "Access: Organizations, Identity Providers, and Groups", Level: token.Read},
				},
				MaxTTL: time.Hour,
				Caller: true,
			},
		}},
	}
	if diff := cmp.Diff(want, got, cmpopts.IgnoreUnexported(Allowance{})); diff != "" {
		t.Errorf("Parse (-want +got):\n%s", diff)
	}
	if is, ok := got.IssuerByURL(githubURL); !ok || is != gh {
		t.Errorf("IssuerByURL(%q) = %+v, %v; want %+v", githubURL, is, ok, gh)
	}
	if _, ok := got.IssuerByURL(githubURL + "/"); ok {
		t.Errorf("IssuerByURL matched an iss with a trailing slash; iss is compared exactly")
	}
}

// TestParseAccepts covers forms the loader accepts and what they mean.
func TestParseAccepts(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		src   string
		check func(t *testing.T, p *Policy)
	}{
		{
			name: "no audience: the broker's --audience supplies it",
			src:  edit(map[int]string{1: ""}),
			check: func(t *testing.T, p *Policy) {
				if p.Audience != "" {
					t.Errorf("Audience = %q, want empty", p.Audience)
				}
			},
		},
		{
			name: "owner defaults to user, no allowed-ips is no floor",
			src:  edit(map[int]string{15: "", 19: ""}),
			check: func(t *testing.T, p *Policy) {
				g := p.Rules[0].Grant
				if g.Owner != token.OwnerUser || g.Caller || len(g.AllowedIPs) != 0 {
					t.Errorf("grant %+v, want owner user and no allowed-ips", g)
				}
			},
		},
		{
			name: "one pin is enough",
			src:  edit(map[int]string{9: ""}),
			check: func(t *testing.T, p *Policy) {
				if c := p.Rules[0].Claims[0]; c.Claim != "repository_id" || !c.Pin {
					t.Errorf("first claim %+v, want the repository_id pin", c)
				}
			},
		},
		{
			name: "scope names with commas, quoted or not, levels, ids, duplicates collapse",
			src: edit(map[int]string{17: `      scopes:
        - "Access: Organizations, Identity Providers, and Groups:write"
        - '"Access: Organizations, Identity Providers, and Groups":read'
        - "Access: Apps and Policies"
        - DNS Write
        - 0123456789abcdef0123456789abcdef
        - apps-and-policies:read`}),
			check: func(t *testing.T, p *Policy) {
				want := []token.Scope{
					{Name: "Access: Organizations, Identity Providers, and Groups", Level: token.Write},
					{Name: "Access: Organizations, Identity Providers, and Groups", Level: token.Read},
					{Name: "Access: Apps and Policies", Level: token.Read},
					{Name: "DNS", Level: token.Write},
					{ID: acctA},
				}
				if diff := cmp.Diff(want, p.Rules[0].Grant.Scopes); diff != "" {
					t.Errorf("scopes (-want +got):\n%s", diff)
				}
				if diff := cmp.Diff([]int{18, 19, 20, 21, 22}, p.Rules[0].Grant.scopeLines); diff != "" {
					t.Errorf("scope lines (-want +got):\n%s", diff)
				}
			},
		},
		{
			name: "allowed-ips: CIDRs canonical, single addresses, caller in any case, duplicates collapse",
			src:  edit(map[int]string{19: `      allowed-ips: [203.0.113.7, "2001:DB8::/32", Caller, 203.0.113.7/32]`}),
			check: func(t *testing.T, p *Policy) {
				g := p.Rules[0].Grant
				if diff := cmp.Diff([]string{"203.0.113.7/32", "2001:db8::/32"}, g.AllowedIPs); diff != "" || !g.Caller {
					t.Errorf("allowed-ips (-want +got):\n%s caller %v", diff, g.Caller)
				}
			},
		},
		{
			name: "issuers: GHES, enterprise issuer, loopback http, CircleCI org, generic",
			src: `issuers:
  github-ghes: https://github.acme.example/_services/token
  github-acme: https://token.actions.githubusercontent.com/acme-corp
  gitlab-dev: http://127.0.0.1:8080
  circleci: https://oidc.circleci.com/org/7d2c93a1-5f0e-4b8a-9c3d-1e2f3a4b5c6d
  acme-idp: http://localhost:9000/oidc
rules:
  - name: circle
    issuer: circleci
    grant: {account-ids: [` + acctA + `], scopes: [organizations], max-ttl: 24h}
  - name: generic
    issuer: acme-idp
    claims: {sub: "system:serviceaccount:ci:deployer", team_id: "7"}
    grant: {account-ids: [` + acctA + `], scopes: [organizations], max-ttl: 1m}
`,
			check: func(t *testing.T, p *Policy) {
				want := []Issuer{
					{Name: "github-ghes", URL: "https://github.acme.example/_services/token", Kind: GitHub},
					{Name: "github-acme", URL: "https://token.actions.githubusercontent.com/acme-corp", Kind: GitHub},
					{Name: "gitlab-dev", URL: "http://127.0.0.1:8080", Kind: GitLab},
					{Name: "circleci", URL: "https://oidc.circleci.com/org/7d2c93a1-5f0e-4b8a-9c3d-1e2f3a4b5c6d", Kind: CircleCI},
					{Name: "acme-idp", URL: "http://localhost:9000/oidc", Kind: Generic},
				}
				if diff := cmp.Diff(want, p.Issuers); diff != "" {
					t.Errorf("issuers (-want +got):\n%s", diff)
				}
				if len(p.Rules[0].Claims) != 0 {
					t.Errorf("circleci rule claims %+v, want none", p.Rules[0].Claims)
				}
				if c := p.Rules[1].Claims[0]; !c.Pin || c.Claim != "sub" {
					t.Errorf("generic rule's first claim %+v, want the sub pin", c)
				}
				if p.Rules[0].Grant.MaxTTL != 24*time.Hour || p.Rules[1].Grant.MaxTTL != time.Minute {
					t.Errorf("max-ttl %v and %v, want the bounds 24h and 1m", p.Rules[0].Grant.MaxTTL, p.Rules[1].Grant.MaxTTL)
				}
			},
		},
		{
			name: "GitLab, Buildkite pins; explicit !!str tag",
			src: `issuers:
  gitlab: https://gitlab.com
  buildkite: https://agent.buildkite.com
rules:
  - name: gl
    issuer: gitlab
    claims: {namespace_id: !!str 0712, project_path: acme/site}
    grant: {account-ids: [` + acctA + `], scopes: [organizations], max-ttl: 1h}
  - name: bk
    issuer: buildkite
    claims: {organization_id: 0184990a-477b-4fa8-9968-496074483c77, build_number: "42"}
    grant: {account-ids: [` + acctA + `], scopes: [organizations], max-ttl: 1h}
`,
			check: func(t *testing.T, p *Policy) {
				if c := p.Rules[0].Claims[0]; !c.Pin || c.Values[0] != "0712" {
					t.Errorf("gitlab pin %+v, want namespace_id 0712 as written", c)
				}
				if c := p.Rules[1].Claims[0]; !c.Pin || c.Claim != "organization_id" {
					t.Errorf("buildkite pin %+v", c)
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.check(t, mustParse(t, tc.src))
		})
	}
}

// TestParseFaults is the table of load-time rules: each bad file gives
// exactly the listed faults, at their exact lines.
func TestParseFaults(t *testing.T) {
	t.Parallel()
	rule2 := `  - name: access-deploy
    issuer: github
    claims: {repository_id: "1"}
    grant: {account-ids: [` + acctA + `], scopes: [organizations], max-ttl: 1h}`
	tests := []struct {
		name string
		src  string
		want []wantFault
	}{
		// Decoding.
		{"empty file", "", []wantFault{{0, "", "the file is empty"}}},
		{"only comments", "# nothing\n", []wantFault{{0, "", "the file is empty"}}},
		{"a list, not a mapping", "- a\n", []wantFault{{1, "", "the file is a list"}}},
		{"YAML syntax error", edit(map[int]string{11: "      ref: [refs/heads/main"}), []wantFault{{11, "", "YAML syntax: did not find expected ',' or ']'"}}},
		{"YAML syntax error on the first line", "issuers: [x\n", []wantFault{{1, "", "YAML syntax"}}},
		{"YAML scanner error", edit(map[int]string{11: "      ref: a: b"}), []wantFault{{11, "", "YAML syntax: mapping values are not allowed"}}},
		{"tab indentation", "issuers:\n\tgithub: x\n", []wantFault{{2, "", "YAML syntax"}}},
		{"second document", edit(map[int]string{20: "---\naudience: other"}), []wantFault{{20, "", "second YAML document"}}},
		{"unknown top-level key", edit(map[int]string{20: "extra: 1"}), []wantFault{{20, "", `unknown key "extra"; accepted: audience, issuers, rules`}}},
		{"unknown rule key", edit(map[int]string{7: "    issuer: github\n    description: deploys"}), []wantFault{{8, "rules[0]", `unknown key "description"`}}},
		{"mistyped grant key is named and its value still checked", edit(map[int]string{18: "      max_ttl: 48h"}), []wantFault{
			{18, "rules[0].grant", `unknown key "max_ttl" (did you mean max-ttl?)`},
			{18, "rules[0].grant.max-ttl", "longer than 24h"},
		}},
		{"duplicate claim key", edit(map[int]string{11: "      ref: refs/heads/main\n      ref: refs/heads/dev"}), []wantFault{{12, "rules[0].claims.ref", "is given twice (first at line 11)"}}},
		{"duplicate top-level key", edit(map[int]string{20: "audience: other"}), []wantFault{{20, "audience", "is given twice (first at line 1)"}}},
		{"duplicate issuer", edit(map[int]string{4: "  github: https://token.actions.githubusercontent.com"}), []wantFault{{4, "issuers.github", "is given twice (first at line 3)"}}},
		{"alias", edit(map[int]string{16: "      account-ids: &accts [" + acctA + "]", 20: rule2 + "\n    # reuses\n  - name: second\n    issuer: github\n    claims: {repository_id: \"2\"}\n    grant: {account-ids: *accts, scopes: [organizations], max-ttl: 1h}"}), []wantFault{
			{20, "rules[1].name", `"access-deploy" is also the name of the rule at line 6`},
			{28, "rules[2].grant.account-ids", "is an alias (*accts)"},
		}},
		{"merge key", edit(map[int]string{14: "    grant:\n      <<: {owner: user}"}), []wantFault{{15, "rules[0].grant", "merge keys (<<) are not accepted"}}},
		{"non-string key", edit(map[int]string{11: "      7: refs/heads/main"}), []wantFault{{11, "rules[0].claims", "has a key that is a YAML integer"}}},
		{"too large", strings.Repeat("#", MaxFileSize+1), []wantFault{{0, "", "more than 1048576"}}},

		// Top level.
		{"missing issuers", "rules: []\n", []wantFault{{1, "issuers", "is missing"}, {1, "rules", "is an empty list"}}},
		{"missing rules", "issuers: {github: " + githubURL + "}\n", []wantFault{{1, "rules", "is missing"}}},
		{"empty rules", "issuers: {github: " + githubURL + "}\nrules: []\n", []wantFault{{2, "rules", "is an empty list"}}},
		{"null rules", "issuers: {github: " + githubURL + "}\nrules:\n", []wantFault{{2, "rules", "is empty"}}},
		{"empty issuers", strings.Replace(edit(map[int]string{3: "", 4: ""}), "issuers:", "issuers: {}", 1), []wantFault{{2, "issuers", "is empty"}, {5, "rules[0].issuer", `"github" names no issuer`}}},
		{"audience with a space", edit(map[int]string{1: `audience: "https://cf-broker.example.com "`}), []wantFault{{1, "audience", "holds whitespace"}}},
		{"audience empty", edit(map[int]string{1: `audience: ""`}), []wantFault{{1, "audience", "is empty"}}},
		{"audience a list", edit(map[int]string{1: `audience: [a, b]`}), []wantFault{{1, "audience", "is a list"}}},

		// Issuers.
		{"issuer URL with trailing slash", edit(map[int]string{3: "  github: https://token.actions.githubusercontent.com/"}), []wantFault{{3, "issuers.github", "ends with /"}}},
		{"issuer URL http off loopback", edit(map[int]string{4: "  gitlab: http://gitlab.com"}), []wantFault{{4, "issuers.gitlab", "is http:// to a host that is not loopback"}}},
		{"issuer URL with query", edit(map[int]string{4: "  gitlab: https://gitlab.com?x=1"}), []wantFault{{4, "issuers.gitlab", "has a query or fragment"}}},
		{"issuer URL with fragment", edit(map[int]string{4: "  gitlab: https://gitlab.com#x"}), []wantFault{{4, "issuers.gitlab", "has a query or fragment"}}},
		{"issuer URL upper-case host", edit(map[int]string{4: "  gitlab: https://GitLab.com"}), []wantFault{{4, "issuers.gitlab", "upper-case"}}},
		{"issuer URL not a URL", edit(map[int]string{4: "  gitlab: gitlab.com"}), []wantFault{{4, "issuers.gitlab", "is not an absolute URL"}}},
		{"issuer URL with user", edit(map[int]string{4: "  gitlab: https://me:pw@gitlab.com"}), []wantFault{{4, "issuers.gitlab", "holds a user or password"}}},
		{"issuer URL ftp", edit(map[int]string{4: "  gitlab-x: ftp://gitlab.acme.example"}), []wantFault{{4, "issuers.gitlab-x", `scheme "ftp"`}}},
		{"issuer URL unquoted number", edit(map[int]string{4: "  gitlab: 12"}), []wantFault{{4, "issuers.gitlab", "YAML integer written without quotes"}}},
		{"two names for one URL", edit(map[int]string{4: "  github-2: https://token.actions.githubusercontent.com"}), []wantFault{{4, "issuers.github-2", "same URL as issuers.github"}}},
		{"issuer name not lower case", edit(map[int]string{4: "  GitLab: https://gitlab.acme.example"}), []wantFault{{4, "issuers.GitLab", "is not an issuer name"}}},
		{"issuer name with a newline, and a rule naming it", edit(map[int]string{4: `  "git\nlab": https://gitlab.acme.example`, 7: `    issuer: "git\nlab"`}), []wantFault{
			{4, `issuers["git\nlab"]`, `"git\nlab" is not an issuer name`},
		}},
		{"a rule naming no issuer lists only the valid names", edit(map[int]string{4: `  "git\nlab": https://gitlab.acme.example`, 7: `    issuer: gitlab`}), []wantFault{
			{4, `issuers["git\nlab"]`, `"git\nlab" is not an issuer name`},
			{7, "rules[0].issuer", `"gitlab" names no issuer; accepted: a key of issuers (github)`},
		}},
		{"a rule naming an issuer with a bad URL is still checked for its pin", edit(map[int]string{3: "  github: https://token.actions.githubusercontent.com/", 9: "", 10: "", 13: ""}), []wantFault{
			{3, "issuers.github", "ends with /"},
			{9, "rules[0].claims", "pins no tenant"},
		}},
		{"GitHub's URL under a generic name", edit(map[int]string{4: "  actions: https://token.actions.githubusercontent.com/acme-corp"}), []wantFault{{4, "issuers.actions", "is GitHub's issuer, but the name declares a generic issuer; name it github or github-<suffix>"}}},
		{"gitlab.com under a github name", edit(map[int]string{4: "  github-lab: https://gitlab.com"}), []wantFault{{4, "issuers.github-lab", "is GitLab's issuer"}}},
		{"CircleCI URL without the org", edit(map[int]string{4: "  circleci: https://oidc.circleci.com"}), []wantFault{{4, "issuers.circleci", "is not a CircleCI issuer"}}},
		{"CircleCI URL with a slug", edit(map[int]string{4: "  circleci: https://oidc.circleci.com/org/acme"}), []wantFault{{4, "issuers.circleci", "https://oidc.circleci.com/org/<organization id>"}}},

		// Rules.
		{"rule names no issuer", edit(map[int]string{7: "    issuer: gh"}), []wantFault{{7, "rules[0].issuer", `"gh" names no issuer; accepted: a key of issuers (github, gitlab)`}}},
		{"rule without issuer", edit(map[int]string{7: ""}), []wantFault{{6, "rules[0].issuer", "is missing"}}},
		{"rule without name", edit(map[int]string{6: "  - issuer: github", 7: ""}), []wantFault{{6, "rules[0].name", "is missing"}}},
		{"rule name with a space", edit(map[int]string{6: `  - name: "access deploy"`}), []wantFault{{6, "rules[0].name", "is not a rule name"}}},
		{"duplicate rule names", edit(map[int]string{20: rule2}), []wantFault{{20, "rules[1].name", `"access-deploy" is also the name of the rule at line 6`}}},
		{"rule is a string", edit(map[int]string{20: "  - access-read"}), []wantFault{{20, "rules[1]", "is a string"}}},

		// Tenant pin.
		{"no pin", edit(map[int]string{9: "", 10: "", 13: ""}), []wantFault{{9, "rules[0].claims", "pins no tenant: add an exact repository_id or repository_owner_id"}}},
		{"pinned only by job_workflow_ref", edit(map[int]string{9: "", 10: ""}), []wantFault{{9, "rules[0].claims", "pins its tenant only by name (job_workflow_ref), which is refused: add an exact repository_id or repository_owner_id (numeric strings, shown in the token and by GET /repos/{owner}/{repo}); GitHub's issuer is shared by every repository on it, and a name such as repository can be deleted and re-registered by someone else"}}},
		{"no claims at all", edit(map[int]string{8: "", 9: "", 10: "", 11: "", 12: "", 13: ""}), []wantFault{{6, "rules[0].claims", "pins no tenant"}}},
		{"pinned only by name", edit(map[int]string{9: "      repository: octo-org/infra", 10: "      repository_owner: octo-org"}), []wantFault{{9, "rules[0].claims", "pins its tenant only by name (repository, repository_owner, job_workflow_ref), which is refused"}}},
		{"pin as a list", edit(map[int]string{9: "", 10: `      repository_id: ["712345678"]`}), []wantFault{{9, "rules[0].claims.repository_id", "is a list; an id claim matches one exact value"}}},
		{"pin as a glob", edit(map[int]string{9: "", 10: `      repository_id: "7123*"`}), []wantFault{{9, "rules[0].claims.repository_id", "holds *; an id claim matches exactly"}}},
		{"pin not digits", edit(map[int]string{9: "", 10: `      repository_id: octo-org/infra`}), []wantFault{{9, "rules[0].claims.repository_id", `"octo-org/infra" is not a valid repository_id; accepted: a numeric string`}}},
		{"pin empty", edit(map[int]string{9: "", 10: `      repository_id: ""`}), []wantFault{{9, "rules[0].claims.repository_id", "is not a valid repository_id"}}},
		{"list on another id claim, the rule still pinned", edit(map[int]string{11: `      actor_id: ["1", "2"]`}), []wantFault{{11, "rules[0].claims.actor_id", "is a list"}}},
		{"glob on another id claim", edit(map[int]string{11: `      enterprise_id: "1*"`}), []wantFault{{11, "rules[0].claims.enterprise_id", "holds *"}}},
		{"GitLab pinned by path", edit(map[int]string{7: "    issuer: gitlab", 9: "      project_path: octo-org/infra", 10: ""}), []wantFault{{9, "rules[0].claims", "pins its tenant only by name (project_path)"}}},
		{"GitLab pinned by GitHub's claim", edit(map[int]string{7: "    issuer: gitlab", 9: ""}), []wantFault{{9, "rules[0].claims", "pins no tenant: add an exact project_id or namespace_id"}}},
		{"Buildkite pin not a UUID", "issuers: {buildkite: https://agent.buildkite.com}\nrules:\n  - name: bk\n    issuer: buildkite\n    claims:\n      organization_id: \"123\"\n    grant: {account-ids: [" + acctA + "], scopes: [organizations], max-ttl: 1h}\n",
			[]wantFault{{6, "rules[0].claims.organization_id", "the organization's UUID in lower case"}}},
		{"Buildkite pinned by slug", "issuers: {buildkite: https://agent.buildkite.com}\nrules:\n  - name: bk\n    issuer: buildkite\n    claims:\n      organization_slug: acme\n    grant: {account-ids: [" + acctA + "], scopes: [organizations], max-ttl: 1h}\n",
			[]wantFault{{6, "rules[0].claims", "only by name (organization_slug)"}}},
		{"generic issuer without sub", "issuers: {acme: https://idp.acme.example}\nrules:\n  - name: g\n    issuer: acme\n    claims:\n      team: platform\n    grant: {account-ids: [" + acctA + "], scopes: [organizations], max-ttl: 1h}\n",
			[]wantFault{{6, "rules[0].claims", "pins no tenant: add an exact sub"}}},
		{"generic sub glob", "issuers: {acme: https://idp.acme.example}\nrules:\n  - name: g\n    issuer: acme\n    claims:\n      sub: \"repo:acme/*\"\n    grant: {account-ids: [" + acctA + "], scopes: [organizations], max-ttl: 1h}\n",
			[]wantFault{{6, "rules[0].claims.sub", "holds *"}}},

		// Claim values.
		{"unquoted integer", edit(map[int]string{10: "      repository_id: 712345678"}), []wantFault{{10, "rules[0].claims.repository_id", `"712345678" is a YAML integer written without quotes; this field is a string`}}},
		{"unquoted leading zero", edit(map[int]string{10: "      repository_id: 0712"}), []wantFault{{10, "rules[0].claims.repository_id", `quote it ("0712")`}}},
		{"unquoted boolean", edit(map[int]string{11: "      ref_protected: true"}), []wantFault{{11, "rules[0].claims.ref_protected", "is a YAML boolean written without quotes"}}},
		{"unquoted float in a list", edit(map[int]string{12: "      run_attempt: [1, 2.0]"}), []wantFault{{12, "rules[0].claims.run_attempt[0]", "YAML integer"}, {12, "rules[0].claims.run_attempt[1]", "YAML number"}}},
		{"null claim", edit(map[int]string{11: "      ref:"}), []wantFault{{11, "rules[0].claims.ref", "is empty"}}},
		{"empty list claim", edit(map[int]string{12: "      environment: []"}), []wantFault{{12, "rules[0].claims.environment", "is an empty list"}}},
		{"mapping claim", edit(map[int]string{11: "      ref: {a: b}"}), []wantFault{{11, "rules[0].claims.ref", "is a mapping"}}},
		{"reserved claim", edit(map[int]string{11: "      aud: https://cf-broker.example.com"}), []wantFault{{11, "rules[0].claims.aud", "cannot be matched in a rule: the broker checks it"}}},
		{"double star", edit(map[int]string{13: "      job_workflow_ref: octo-org/**"}), []wantFault{{13, "rules[0].claims.job_workflow_ref", "holds **"}}},
		{"claim name with a dot is quoted in the field", edit(map[int]string{11: "      oidc.example/x: [\"1\", 2]"}), []wantFault{{11, `rules[0].claims["oidc.example/x"][1]`, "YAML integer"}}},

		// Grant.
		{"missing grant", edit(map[int]string{14: "", 15: "", 16: "", 17: "", 18: "", 19: ""}), []wantFault{{6, "rules[0].grant", "is missing"}}},
		{"null grant", edit(map[int]string{15: "", 16: "", 17: "", 18: "", 19: ""}), []wantFault{{14, "rules[0].grant", "is empty"}}},
		{"empty grant", edit(map[int]string{14: "    grant: {}", 15: "", 16: "", 17: "", 18: "", 19: ""}), []wantFault{
			{14, "rules[0].grant.account-ids", "is missing"}, {14, "rules[0].grant.scopes", "is missing"}, {14, "rules[0].grant.max-ttl", "is missing"},
		}},
		{"bad owner", edit(map[int]string{15: "      owner: org"}), []wantFault{{15, "rules[0].grant.owner", `"org" is not an owner; accepted: user`}}},
		{"account owner with two accounts", edit(map[int]string{16: "      account-ids: [" + acctA + ", " + acctB + "]"}), []wantFault{{15, "rules[0].grant.owner", "account-ids lists 2 accounts"}}},
		{"account id upper case", edit(map[int]string{16: "      account-ids: [0123456789ABCDEF0123456789ABCDEF]"}), []wantFault{{16, "rules[0].grant.account-ids[0]", "has upper-case letters"}}},
		{"account id short", edit(map[int]string{16: "      account-ids: [\"0123\"]"}), []wantFault{{16, "rules[0].grant.account-ids[0]", `"0123" is not an account id`}}},
		{"account ids in one item", edit(map[int]string{16: "      account-ids: [\"" + acctA + " " + acctB + "\"]"}), []wantFault{{16, "rules[0].grant.account-ids[0]", "holds 2 account ids"}}},
		{"allowed ips in one item", edit(map[int]string{19: "      allowed-ips: [\"198.51.100.0/24, 203.0.113.0/24\"]"}), []wantFault{{19, "rules[0].grant.allowed-ips[0]", "holds 2 entries; write one per list item"}}},
		{"account ids empty", edit(map[int]string{16: "      account-ids: []"}), []wantFault{{16, "rules[0].grant.account-ids", "is an empty list"}}},
		{"account ids a string", edit(map[int]string{16: "      account-ids: " + acctA}), []wantFault{{16, "rules[0].grant.account-ids", "is a string; accepted: a list"}}},
		{"scope name unquoted in block style", edit(map[int]string{17: "      scopes:\n        - Access: Apps and Policies"}), []wantFault{{18, "rules[0].grant.scopes[0]", `is a mapping: a scope name that holds ": " must be quoted`}}},
		{"rule name shaped like a token", edit(map[int]string{6: "  - name: cfut_Ab3dEf6hIj9kLmNoPqRsTuVwXyZ0123456789abcd"}), []wantFault{{6, "rules[0].name", "looks like a token"}}},
		{"scopes empty", edit(map[int]string{17: "      scopes: []"}), []wantFault{{17, "rules[0].grant.scopes", "is an empty list"}}},
		{"API tokens group", edit(map[int]string{17: "      scopes: [organizations, \"Account API Tokens:read\"]"}), []wantFault{{17, "rules[0].grant.scopes[1]", `"Account API Tokens:read" would let the child make tokens of its own that outlive the job; no group that reads or manages API tokens is granted`}}},
		{"API tokens group, any case, full name", edit(map[int]string{17: "      scopes:\n        - api tokens write"}), []wantFault{{18, "rules[0].grant.scopes[0]", "no group that reads or manages API tokens is granted"}}},
		{"scope level unknown", edit(map[int]string{17: "      scopes: [apps-and-policies:admin]"}), []wantFault{{17, "rules[0].grant.scopes[0]", `has the level "admin"`}}},
		{"scope read-only at write", edit(map[int]string{17: "      scopes: [audit-logs:write]"}), []wantFault{{17, "rules[0].grant.scopes[0]", "read-only"}}},
		{"several scopes in one item", edit(map[int]string{17: "      scopes: [\"organizations, service-tokens:write\"]"}), []wantFault{{17, "rules[0].grant.scopes[0]", "holds several scope items; write one per list item"}}},
		{"scope id with a level", edit(map[int]string{17: "      scopes: [\"" + acctA + ":write\"]"}), []wantFault{{17, "rules[0].grant.scopes[0]", "takes no level"}}},
		{"max-ttl above 24h", edit(map[int]string{18: "      max-ttl: 48h"}), []wantFault{{18, "rules[0].grant.max-ttl", "48h0m0s is longer than 24h0m0s; accepted: a Go duration from 1m to 24h"}}},
		{"max-ttl below 1m", edit(map[int]string{18: "      max-ttl: 30s"}), []wantFault{{18, "rules[0].grant.max-ttl", "shorter than 1m0s"}}},
		{"max-ttl not a duration", edit(map[int]string{18: "      max-ttl: 1 hour"}), []wantFault{{18, "rules[0].grant.max-ttl", `"1 hour" is not a duration`}}},
		{"max-ttl unquoted number", edit(map[int]string{18: "      max-ttl: 3600"}), []wantFault{{18, "rules[0].grant.max-ttl", "YAML integer written without quotes"}}},
		{"allowed-ips runner", edit(map[int]string{19: "      allowed-ips: [runner]"}), []wantFault{{19, "rules[0].grant.allowed-ips[0]", "write caller"}}},
		{"allowed-ips host bits", edit(map[int]string{19: "      allowed-ips: [caller, 10.0.0.1/8]"}), []wantFault{{19, "rules[0].grant.allowed-ips[1]", "has host bits set (did you mean 10.0.0.0/8?)"}}},
		{"allowed-ips not a CIDR", edit(map[int]string{19: "      allowed-ips: [office]"}), []wantFault{{19, "rules[0].grant.allowed-ips[0]", `"office" is not a CIDR; accepted: a list of IPv4 or IPv6 CIDRs`}}},
		{"allowed-ips a string", edit(map[int]string{19: "      allowed-ips: caller"}), []wantFault{{19, "rules[0].grant.allowed-ips", "is a string"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			faults := faultsOf(t, tc.src)
			assertFaults(t, tc.want, faults)
		})
	}
}

func assertFaults(t *testing.T, want []wantFault, faults []Fault) {
	t.Helper()
	got := make([]wantFault, len(faults))
	for i, f := range faults {
		if strings.ContainsAny(f.String(), "\n\r\x1b") {
			t.Errorf("fault %q is not a single clean line", f.String())
		}
		got[i] = wantFault(f)
		if i < len(want) && strings.Contains(f.Msg, want[i].Msg) {
			got[i].Msg = want[i].Msg // compare the part the table names
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("faults (-want +got):\n%s", diff)
	}
}

// TestParseCollectsAllFaults: one file, many faults, all reported in line
// order, and Error lists them one per line as policy check prints them.
func TestParseCollectsAllFaults(t *testing.T) {
	t.Parallel()
	src := edit(map[int]string{
		3:  "  github: https://token.actions.githubusercontent.com/",
		10: "      repository_id: 712345678",
		16: "      account-ids: [nope]",
		18: "      max-ttl: 25h",
	})
	p, err := Parse([]byte(src))
	if p != nil || err == nil {
		t.Fatalf("Parse = %v, %v; want an error", p, err)
	}
	lines := strings.Split(err.Error(), "\n")
	var prefixes []string
	for _, l := range lines {
		prefix, _, _ := strings.Cut(l, ": ")
		field, _, _ := strings.Cut(strings.TrimPrefix(l, prefix+": "), ": ")
		prefixes = append(prefixes, prefix+": "+field)
	}
	want := []string{
		"line 3: issuers.github",
		"line 10: rules[0].claims.repository_id",
		"line 16: rules[0].grant.account-ids[0]",
		"line 18: rules[0].grant.max-ttl",
	}
	if diff := cmp.Diff(want, prefixes); diff != "" {
		t.Errorf("Error() lines (-want +got):\n%s\nfull:\n%s", diff, err)
	}
}

// TestParseNeverEchoesASecret: a token pasted into any value is not
// printed back in the fault.
func TestParseNeverEchoesASecret(t *testing.T) {
	t.Parallel()
	const cfToken = "cfut_Ab3dEf6hIj9kLmNoPqRsTuVwXyZ0123456789abcd"
	const oldToken = "Ab3dEf6hIj9kLmNoPqRsTuVwXyZ0123456789abcdEFG"
	const jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"
	for _, secret := range []string{cfToken, oldToken, jwt} {
		for _, src := range []string{
			edit(map[int]string{1: "audience: \"" + secret + " \""}),
			edit(map[int]string{4: "  gitlab: https://" + secret + "/"}),
			edit(map[int]string{6: "  - name: " + secret}),
			edit(map[int]string{7: "    issuer: " + secret}),
			edit(map[int]string{10: "      repository_id: " + secret}),
			edit(map[int]string{16: "      account-ids: [" + secret + "]"}),
			edit(map[int]string{17: "      scopes: [\"organizations:" + secret + "\"]"}),
			edit(map[int]string{18: "      max-ttl: " + secret}),
			edit(map[int]string{19: "      allowed-ips: [" + secret + "]"}),
			edit(map[int]string{20: secret + ": x"}),
		} {
			_, err := Parse([]byte(src))
			if err == nil {
				t.Fatalf("Parse accepted a token in:\n%s", src)
			}
			if strings.Contains(err.Error(), secret[:20]) || strings.Contains(err.Error(), secret[len(secret)-20:]) {
				t.Errorf("fault echoes the secret:\n%v", err)
			}
		}
	}
}

// TestParseExamples parses every example policy in docs/policy.
func TestParseExamples(t *testing.T) {
	t.Parallel()
	files := examples(t)
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			t.Parallel()
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(string(b), "# yaml-language-server: $schema=policy.schema.json\n") {
				t.Errorf("%s does not start with the yaml-language-server schema line", f)
			}
			p := mustParse(t, string(b))
			for _, r := range p.Rules {
				pinned := r.Issuer.Kind == CircleCI
				for _, c := range r.Claims {
					pinned = pinned || c.Pin
				}
				if !pinned {
					t.Errorf("rule %s is not pinned", r.Name)
				}
			}
		})
	}
}

func examples(tb testing.TB) []string {
	tb.Helper()
	files, err := filepath.Glob(filepath.Join("..", "..", "docs", "policy", "*.yaml"))
	if err != nil {
		tb.Fatal(err)
	}
	want := []string{"buildkite.yaml", "circleci.yaml", "github.yaml", "gitlab.yaml", "multi-issuer.yaml"}
	var got []string
	for _, f := range files {
		got = append(got, filepath.Base(f))
	}
	if diff := cmp.Diff(want, got); diff != "" {
		tb.Fatalf("docs/policy examples (-want +got):\n%s", diff)
	}
	return files
}

func TestKindOf(t *testing.T) {
	t.Parallel()
	tests := map[string]Kind{
		"github": GitHub, "github-acme": GitHub, "github-": GitHub, "githubber": Generic,
		"gitlab": GitLab, "gitlab-self": GitLab, "buildkite": Buildkite, "buildkite-x": Buildkite,
		"circleci": CircleCI, "circleci-2": CircleCI, "acme": Generic, "my-github": Generic,
	}
	for name, want := range tests {
		if got := KindOf(name); got != want {
			t.Errorf("KindOf(%q) = %q, want %q", name, got, want)
		}
	}
}
