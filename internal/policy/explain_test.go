package policy

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cf-scoped-token/cf-scoped-token/internal/token"
)

func TestExplain(t *testing.T) {
	t.Parallel()
	p := mustParse(t, matchFile)
	tests := []struct {
		name   string
		claims map[string]any
		req    Request
		want   string
	}{
		{
			name:   "granted by the second rule; the others say why not",
			claims: ghClaims(map[string]any{"ref": "refs/heads/dev", "ref_protected": "true"}),
			req:    Request{Issuer: githubURL, Scopes: []token.Scope{apRead}, TTL: 20 * time.Minute},
			want: `rule "access-deploy" (line 8): no (access_denied): claim ref is "refs/heads/dev", the rule wants "refs/heads/main"
rule "access-read" (line 22): matches
rule "circle-deploy" (line 32): no (access_denied): the rule's issuer is circleci ("` + circleURL + `"), the token's is "` + githubURL + `"
rule "buildkite-build" (line 41): no (access_denied): the rule's issuer is buildkite ("` + bkURL + `"), the token's is "` + githubURL + `"
rule "acme-sync" (line 50): no (access_denied): the rule's issuer is acme ("` + acmeURL + `"), the token's is "` + githubURL + `"
granted by rule "access-read": owner user; accounts ` + acctA + `, ` + acctB + `; scopes Access: Apps and Policies:read; ttl 20m; allowed-ips 198.51.100.0/24, 2001:db8::/32
`,
		},
		{
			name:   "two rules match: the first wins",
			claims: ghClaims(map[string]any{"ref_protected": "true"}),
			req:    Request{Issuer: githubURL, Scopes: []token.Scope{apRead}, Caller: caller4},
			want: `rule "access-deploy" (line 8): matches
rule "access-read" (line 22): matches too, but rule "access-deploy" comes first
rule "circle-deploy" (line 32): no (access_denied): the rule's issuer is circleci ("` + circleURL + `"), the token's is "` + githubURL + `"
rule "buildkite-build" (line 41): no (access_denied): the rule's issuer is buildkite ("` + bkURL + `"), the token's is "` + githubURL + `"
rule "acme-sync" (line 50): no (access_denied): the rule's issuer is acme ("` + acmeURL + `"), the token's is "` + githubURL + `"
granted by rule "access-deploy": owner account; accounts ` + acctA + `; scopes Access: Apps and Policies:read; ttl 1h; allowed-ips 203.0.113.7/32
`,
		},
		{
			name:   "an outsider: the operator sees the failing pin, the caller sees nothing",
			claims: map[string]any{"sub": "system:serviceaccount:ci:other", "team": "Platform"},
			req:    Request{Issuer: acmeURL},
			want: `rule "access-deploy" (line 8): no (access_denied): the rule's issuer is github ("` + githubURL + `"), the token's is "` + acmeURL + `"
rule "access-read" (line 22): no (access_denied): the rule's issuer is github ("` + githubURL + `"), the token's is "` + acmeURL + `"
rule "circle-deploy" (line 32): no (access_denied): the rule's issuer is circleci ("` + circleURL + `"), the token's is "` + acmeURL + `"
rule "buildkite-build" (line 41): no (access_denied): the rule's issuer is buildkite ("` + bkURL + `"), the token's is "` + acmeURL + `"
rule "acme-sync" (line 50): no (access_denied): tenant pin: claim sub is "system:serviceaccount:ci:other", the rule wants "system:serviceaccount:ci:deployer"
denied (access_denied); the caller is told: ` + OutsiderReason + `
`,
		},
		{
			name:   "a grant failure in the tenant",
			claims: map[string]any{"sub": "system:serviceaccount:ci:deployer", "team": "Platform"},
			req:    Request{Issuer: acmeURL, AccountIDs: []string{acctB}},
			want: `rule "access-deploy" (line 8): no (access_denied): the rule's issuer is github ("` + githubURL + `"), the token's is "` + acmeURL + `"
rule "access-read" (line 22): no (access_denied): the rule's issuer is github ("` + githubURL + `"), the token's is "` + acmeURL + `"
rule "circle-deploy" (line 32): no (access_denied): the rule's issuer is circleci ("` + circleURL + `"), the token's is "` + acmeURL + `"
rule "buildkite-build" (line 41): no (access_denied): the rule's issuer is buildkite ("` + bkURL + `"), the token's is "` + acmeURL + `"
rule "acme-sync" (line 50): no (invalid_target): the rule does not grant account "` + acctB + `"; it grants "` + acctA + `"
denied (invalid_target); the caller is told: rule "acme-sync": the rule does not grant account "` + acctB + `"; it grants "` + acctA + `"
`,
		},
		{
			name:   "a request refused before any rule",
			claims: ghClaims(nil),
			req:    Request{Issuer: githubURL, TTL: 48 * time.Hour},
			want:   "denied (invalid_request); the caller is told: ttl 48h is outside 1m to 24h\n",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := p.Explain(tc.claims, tc.req)
			if diff := cmp.Diff(tc.want, e.String()); diff != "" {
				t.Errorf("Explain (-want +got):\n%s", diff)
			}
			g, err := p.Match(tc.claims, tc.req)
			switch {
			case err == nil && (e.Grant == nil || e.Denial != nil):
				t.Errorf("Match grants, Explain says %+v", e)
			case err == nil:
				if diff := cmp.Diff(g, *e.Grant); diff != "" {
					t.Errorf("Explain's grant differs from Match's (-match +explain):\n%s", diff)
				}
			case e.Denial == nil || e.Denial.Error() != err.Error():
				t.Errorf("Match denies with %v, Explain says %+v", err, e.Denial)
			}
		})
	}
}
