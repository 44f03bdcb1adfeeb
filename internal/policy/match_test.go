package policy

import (
	"encoding/json"
	"errors"
	"maps"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cf-scoped-token/cf-scoped-token/internal/token"
)

const (
	circleURL = "https://oidc.circleci.com/org/7d2c93a1-5f0e-4b8a-9c3d-1e2f3a4b5c6d"
	bkURL     = "https://agent.buildkite.com"
	acmeURL   = "https://idp.acme.example"
	groupID   = "6c9d1cfcfc6840a987d1b5bfb880a841"
	ctxID     = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"
	bkOrg     = "0184990a-477b-4fa8-9968-496074483c77"
)

// matchFile is the policy the Match tables run against.
const matchFile = `audience: https://cf-broker.example.com
issuers:
  github: https://token.actions.githubusercontent.com
  circleci: ` + circleURL + `
  buildkite: ` + bkURL + `
  acme: ` + acmeURL + `
rules:
  - name: access-deploy
    issuer: github
    claims:
      repository_owner_id: "5234567"
      repository_id: "712345678"
      ref: refs/heads/main
      environment: [production, staging]
      job_workflow_ref: octo-org/infra/.github/workflows/*.yml@refs/heads/main
    grant:
      owner: account
      account-ids: [` + acctA + `]
      scopes: [apps-and-policies:write, organizations:read]
      max-ttl: 2h
      allowed-ips: [caller]
  - name: access-read
    issuer: github
    claims:
      repository_owner_id: "5234567"
      ref_protected: "true"
    grant:
      account-ids: [` + acctA + `, ` + acctB + `]
      scopes: [apps-and-policies:read, "` + groupID + `"]
      max-ttl: 30m
      allowed-ips: [198.51.100.0/24, "2001:db8::/32"]
  - name: circle-deploy
    issuer: circleci
    claims:
      oidc.circleci.com/context-ids: ` + ctxID + `
      oidc.circleci.com/ssh-rerun: "false"
    grant:
      account-ids: [` + acctB + `]
      scopes: [service-tokens:write]
      max-ttl: 1h
  - name: buildkite-build
    issuer: buildkite
    claims:
      organization_id: ` + bkOrg + `
      build_number: "42"
    grant:
      account-ids: [` + acctB + `]
      scopes: [device-posture]
      max-ttl: 15m
  - name: acme-sync
    issuer: acme
    claims:
      sub: system:serviceaccount:ci:deployer
      team: Platform
    grant:
      account-ids: [` + acctA + `]
      scopes: [organizations:write]
      max-ttl: 24h
`

// ghClaims are the claims of a GitHub token that matches access-deploy,
// with changes: a nil value deletes the claim.
func ghClaims(changes map[string]any) map[string]any {
	c := map[string]any{
		"iss":                 githubURL,
		"aud":                 "https://cf-broker.example.com",
		"sub":                 "repo:octo-org/infra:environment:production",
		"jti":                 "0b5c3e0e-7d0a-4c7e-9f57-2a1f5d3c9e11",
		"iat":                 json.Number("1764600000"),
		"exp":                 json.Number("1764600300"),
		"repository":          "octo-org/infra",
		"repository_id":       "712345678",
		"repository_owner":    "octo-org",
		"repository_owner_id": "5234567",
		"ref":                 "refs/heads/main",
		"ref_protected":       "false",
		"environment":         "production",
		"event_name":          "push",
		"job_workflow_ref":    "octo-org/infra/.github/workflows/access.yml@refs/heads/main",
		"run_id":              "19677834613",
	}
	for k, v := range changes {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return c
}

var (
	apWrite  = token.Scope{Name: "Access: Apps and Policies", Level: token.Write}
	apRead   = token.Scope{Name: "Access: Apps and Policies", Level: token.Read}
	orgRead  = token.Scope{Name: "Access: Organizations, Identity Providers, and Groups", Level: token.Read}
	orgWrite = token.Scope{Name: "Access: Organizations, Identity Providers, and Groups", Level: token.Write}
	caller4  = netip.MustParseAddr("203.0.113.7")
)

func TestMatch(t *testing.T) {
	t.Parallel()
	p := mustParse(t, matchFile)
	gh := func(r Request) Request { r.Issuer = githubURL; return r }
	tests := []struct {
		name   string
		claims map[string]any
		req    Request
		want   Grant
		denial *Denial
	}{
		{
			name:   "the whole grant when the request names nothing; ttl min(1h, max-ttl); caller as /32",
			claims: ghClaims(nil),
			req:    gh(Request{Caller: caller4}),
			want: Grant{Rule: "access-deploy", Owner: token.OwnerAccount, AccountIDs: []string{acctA},
				Scopes: []token.Scope{apWrite, orgRead}, TTL: time.Hour, AllowedIPs: []string{"203.0.113.7/32"}},
		},
		{
			name:   "write covers read; the grant carries what was asked",
			claims: ghClaims(nil),
			req:    gh(Request{Scopes: []token.Scope{apRead, orgRead}, AccountIDs: []string{acctA}, TTL: 2 * time.Hour, Caller: caller4}),
			want: Grant{Rule: "access-deploy", Owner: token.OwnerAccount, AccountIDs: []string{acctA},
				Scopes: []token.Scope{apRead, orgRead}, TTL: 2 * time.Hour, AllowedIPs: []string{"203.0.113.7/32"}},
		},
		{
			name:   "base names compare case-insensitively, as they resolve",
			claims: ghClaims(nil),
			req:    gh(Request{Scopes: []token.Scope{{Name: "access: apps AND policies", Level: token.Read}}, Caller: caller4}),
			want: Grant{Rule: "access-deploy", Owner: token.OwnerAccount, AccountIDs: []string{acctA},
				Scopes: []token.Scope{{Name: "access: apps AND policies", Level: token.Read}}, TTL: time.Hour, AllowedIPs: []string{"203.0.113.7/32"}},
		},
		{
			name:   "read does not cover write",
			claims: ghClaims(nil),
			req:    gh(Request{Scopes: []token.Scope{orgWrite}, Caller: caller4}),
			denial: &Denial{Code: InvalidScope, Rule: "access-deploy", Reason: `the rule does not grant scope "Access: Organizations, Identity Providers, and Groups Write"; it grants "Access: Apps and Policies Write", "Access: Organizations, Identity Providers, and Groups Read"`},
		},
		{
			name:   "an IPv6 caller as /128, an IPv4-mapped one as /32",
			claims: ghClaims(nil),
			req:    gh(Request{Caller: netip.MustParseAddr("::ffff:203.0.113.9")}),
			want: Grant{Rule: "access-deploy", Owner: token.OwnerAccount, AccountIDs: []string{acctA},
				Scopes: []token.Scope{apWrite, orgRead}, TTL: time.Hour, AllowedIPs: []string{"203.0.113.9/32"}},
		},
		{
			name:   "a rule that allows the caller needs the caller's address",
			claims: ghClaims(nil),
			req:    gh(Request{}),
			denial: &Denial{Code: InvalidRequest, Rule: "access-deploy", Reason: "the rule allows the caller's address, and the request's source address is unknown"},
		},
		{
			name:   "ttl above max-ttl is refused, never clamped",
			claims: ghClaims(nil),
			req:    gh(Request{TTL: 2*time.Hour + time.Second, Caller: caller4}),
			denial: &Denial{Code: InvalidRequest, Rule: "access-deploy", Reason: "ttl 2h0m1s is above the rule's max-ttl 2h (refused, not shortened)"},
		},
		{
			name:   "an account the rule does not grant",
			claims: ghClaims(nil),
			req:    gh(Request{AccountIDs: []string{acctB}, Caller: caller4}),
			denial: &Denial{Code: InvalidTarget, Rule: "access-deploy", Reason: `the rule does not grant account "` + acctB + `"; it grants "` + acctA + `"`},
		},
		{
			name:   "a later rule grants what the first does not (first full match wins, not first claims match)",
			claims: ghClaims(map[string]any{"ref_protected": "true"}),
			req:    gh(Request{AccountIDs: []string{acctB}, Scopes: []token.Scope{apRead}, AllowedIPs: []string{"198.51.100.0/28"}}),
			want: Grant{Rule: "access-read", Owner: token.OwnerUser, AccountIDs: []string{acctB},
				Scopes: []token.Scope{apRead}, TTL: 30 * time.Minute, AllowedIPs: []string{"198.51.100.0/28"}},
		},
		{
			name:   "ttl default is max-ttl when that is under an hour; the rule's CIDRs are the floor",
			claims: ghClaims(map[string]any{"ref": "refs/heads/dev", "ref_protected": "true"}),
			req:    gh(Request{}),
			want: Grant{Rule: "access-read", Owner: token.OwnerUser, AccountIDs: []string{acctA, acctB},
				Scopes: []token.Scope{apRead, {ID: groupID}}, TTL: 30 * time.Minute, AllowedIPs: []string{"198.51.100.0/24", "2001:db8::/32"}},
		},
		{
			name:   "a group id matches the same id",
			claims: ghClaims(map[string]any{"ref": "refs/heads/dev", "ref_protected": "true"}),
			req:    gh(Request{Scopes: []token.Scope{{ID: groupID}}}),
			want: Grant{Rule: "access-read", Owner: token.OwnerUser, AccountIDs: []string{acctA, acctB},
				Scopes: []token.Scope{{ID: groupID}}, TTL: 30 * time.Minute, AllowedIPs: []string{"198.51.100.0/24", "2001:db8::/32"}},
		},
		{
			name:   "a name does not match a group id, even the group's own name",
			claims: ghClaims(map[string]any{"ref": "refs/heads/dev", "ref_protected": "true"}),
			req:    gh(Request{Scopes: []token.Scope{{Name: "Access: Apps and Policies Revoke", Level: token.Read}}}),
			denial: &Denial{Code: InvalidScope, Rule: "access-read", Reason: `the rule does not grant scope "Access: Apps and Policies Revoke Read"; it grants "Access: Apps and Policies Read", "` + groupID + `"`},
		},
		{
			name:   "an id does not match a name",
			claims: ghClaims(map[string]any{"ref": "refs/heads/dev", "ref_protected": "true"}),
			req:    gh(Request{Scopes: []token.Scope{{ID: acctA}}}),
			denial: &Denial{Code: InvalidScope, Rule: "access-read", Reason: `the rule does not grant scope "` + acctA + `"; it grants "Access: Apps and Policies Read", "` + groupID + `"`},
		},
		{
			name:   "request CIDRs and caller within the rule's",
			claims: ghClaims(map[string]any{"ref": "refs/heads/dev", "ref_protected": "true"}),
			req:    gh(Request{AllowedIPs: []string{"2001:db8:1::/48"}, CallerIP: true, Caller: netip.MustParseAddr("198.51.100.9")}),
			want: Grant{Rule: "access-read", Owner: token.OwnerUser, AccountIDs: []string{acctA, acctB},
				Scopes: []token.Scope{apRead, {ID: groupID}}, TTL: 30 * time.Minute, AllowedIPs: []string{"2001:db8:1::/48", "198.51.100.9/32"}},
		},
		{
			name:   "a request CIDR wider than the rule's",
			claims: ghClaims(map[string]any{"ref": "refs/heads/dev", "ref_protected": "true"}),
			req:    gh(Request{AllowedIPs: []string{"198.51.0.0/16"}}),
			denial: &Denial{Code: InvalidRequest, Rule: "access-read", Reason: `allowed_ips "198.51.0.0/16" lies outside the rule's allowed-ips ("198.51.100.0/24", "2001:db8::/32")`},
		},
		{
			name:   "a caller outside the rule's CIDRs",
			claims: ghClaims(map[string]any{"ref": "refs/heads/dev", "ref_protected": "true"}),
			req:    gh(Request{CallerIP: true, Caller: caller4}),
			denial: &Denial{Code: InvalidRequest, Rule: "access-read", Reason: `allowed_ips "203.0.113.7/32" lies outside the rule's allowed-ips ("198.51.100.0/24", "2001:db8::/32")`},
		},
		{
			name:   "the rule's caller floor holds a request's caller",
			claims: ghClaims(nil),
			req:    gh(Request{CallerIP: true, Caller: caller4}),
			want: Grant{Rule: "access-deploy", Owner: token.OwnerAccount, AccountIDs: []string{acctA},
				Scopes: []token.Scope{apWrite, orgRead}, TTL: time.Hour, AllowedIPs: []string{"203.0.113.7/32"}},
		},
		{
			name:   "the rule's caller floor refuses other CIDRs",
			claims: ghClaims(nil),
			req:    gh(Request{AllowedIPs: []string{"203.0.113.0/24"}, Caller: caller4}),
			denial: &Denial{Code: InvalidRequest, Rule: "access-deploy", Reason: `allowed_ips "203.0.113.0/24" lies outside the rule's allowed-ips ("caller")`},
		},
		{
			name:   "claim value differs",
			claims: ghClaims(map[string]any{"ref": "refs/heads/feature"}),
			req:    gh(Request{Caller: caller4}),
			denial: &Denial{Code: AccessDenied, Rule: "access-deploy", Reason: `claim ref is "refs/heads/feature", the rule wants "refs/heads/main"`},
		},
		{
			name:   "claims compare case-sensitively (ids pin; names compare exactly)",
			claims: ghClaims(map[string]any{"environment": "Production"}),
			req:    gh(Request{Caller: caller4}),
			denial: &Denial{Code: AccessDenied, Rule: "access-deploy", Reason: `claim environment is "Production", the rule wants one of "production", "staging"`},
		},
		{
			name:   "a list matches any of its items",
			claims: ghClaims(map[string]any{"environment": "staging"}),
			req:    gh(Request{Caller: caller4}),
			want: Grant{Rule: "access-deploy", Owner: token.OwnerAccount, AccountIDs: []string{acctA},
				Scopes: []token.Scope{apWrite, orgRead}, TTL: time.Hour, AllowedIPs: []string{"203.0.113.7/32"}},
		},
		{
			name:   "a claim the token lacks",
			claims: ghClaims(map[string]any{"environment": nil}),
			req:    gh(Request{Caller: caller4}),
			denial: &Denial{Code: AccessDenied, Rule: "access-deploy", Reason: `the token has no claim environment, the rule wants one of "production", "staging"`},
		},
		{
			name:   "a glob's * does not cross /",
			claims: ghClaims(map[string]any{"job_workflow_ref": "octo-org/infra/.github/workflows/x/access.yml@refs/heads/main"}),
			req:    gh(Request{Caller: caller4}),
			denial: &Denial{Code: AccessDenied, Rule: "access-deploy", Reason: `claim job_workflow_ref is "octo-org/infra/.github/workflows/x/access.yml@refs/heads/main", the rule wants "octo-org/infra/.github/workflows/*.yml@refs/heads/main"`},
		},
		{
			name:   "a claim that is not a string does not match its text's look-alike",
			claims: ghClaims(map[string]any{"ref": map[string]any{"refs/heads/main": true}}),
			req:    gh(Request{Caller: caller4}),
			denial: &Denial{Code: AccessDenied, Rule: "access-deploy", Reason: `claim ref is an object, the rule wants "refs/heads/main"`},
		},
		{
			name:   "a partial tenant: the owner id pins access-read, the repository id fails access-deploy's pin",
			claims: ghClaims(map[string]any{"repository_id": "999"}),
			req:    gh(Request{Caller: caller4}),
			denial: &Denial{Code: AccessDenied, Rule: "access-read", Reason: `claim ref_protected is "false", the rule wants "true"`},
		},
		{
			name:   "CircleCI: an array claim matches when an element does; a boolean compares as its text",
			claims: map[string]any{"sub": "org/x/project/y/user/z", "oidc.circleci.com/context-ids": []any{"0e0e0e0e-0000-4000-8000-000000000000", ctxID}, "oidc.circleci.com/ssh-rerun": false},
			req:    Request{Issuer: circleURL},
			want:   Grant{Rule: "circle-deploy", Owner: token.OwnerUser, AccountIDs: []string{acctB}, Scopes: []token.Scope{{Name: "Access: Service Tokens", Level: token.Write}}, TTL: time.Hour},
		},
		{
			name:   "CircleCI: the issuer is the tenant, so its rules' claims are explained",
			claims: map[string]any{"oidc.circleci.com/context-ids": []any{ctxID}, "oidc.circleci.com/ssh-rerun": true},
			req:    Request{Issuer: circleURL},
			denial: &Denial{Code: AccessDenied, Rule: "circle-deploy", Reason: `claim oidc.circleci.com/ssh-rerun is "true", the rule wants "false"`},
		},
		{
			name:   "CircleCI: no element of the array matches",
			claims: map[string]any{"oidc.circleci.com/context-ids": []any{"x", json.Number("7")}, "oidc.circleci.com/ssh-rerun": false},
			req:    Request{Issuer: circleURL},
			denial: &Denial{Code: AccessDenied, Rule: "circle-deploy", Reason: `claim oidc.circleci.com/context-ids is ["x", "7"], the rule wants "` + ctxID + `"`},
		},
		{
			name:   "Buildkite: a JSON number compares as its text",
			claims: map[string]any{"organization_id": bkOrg, "build_number": json.Number("42")},
			req:    Request{Issuer: bkURL, TTL: 15 * time.Minute},
			want:   Grant{Rule: "buildkite-build", Owner: token.OwnerUser, AccountIDs: []string{acctB}, Scopes: []token.Scope{{Name: "Access: Device Posture", Level: token.Read}}, TTL: 15 * time.Minute},
		},
		{
			name:   "Buildkite: another build number",
			claims: map[string]any{"organization_id": bkOrg, "build_number": json.Number("420")},
			req:    Request{Issuer: bkURL},
			denial: &Denial{Code: AccessDenied, Rule: "buildkite-build", Reason: `claim build_number is "420", the rule wants "42"`},
		},
		{
			name:   "generic: no allowed-ips in the rule, the request's own apply",
			claims: map[string]any{"sub": "system:serviceaccount:ci:deployer", "team": "Platform"},
			req:    Request{Issuer: acmeURL, AllowedIPs: []string{"10.0.0.0/8"}, TTL: 24 * time.Hour},
			want:   Grant{Rule: "acme-sync", Owner: token.OwnerUser, AccountIDs: []string{acctA}, Scopes: []token.Scope{orgWrite}, TTL: 24 * time.Hour, AllowedIPs: []string{"10.0.0.0/8"}},
		},
		{
			name:   "generic: neither sets allowed-ips, no IP condition",
			claims: map[string]any{"sub": "system:serviceaccount:ci:deployer", "team": "Platform"},
			req:    Request{Issuer: acmeURL},
			want:   Grant{Rule: "acme-sync", Owner: token.OwnerUser, AccountIDs: []string{acctA}, Scopes: []token.Scope{orgWrite}, TTL: time.Hour},
		},
		{
			name:   "generic: case matters",
			claims: map[string]any{"sub": "system:serviceaccount:ci:deployer", "team": "platform"},
			req:    Request{Issuer: acmeURL},
			denial: &Denial{Code: AccessDenied, Rule: "acme-sync", Reason: `claim team is "platform", the rule wants "Platform"`},
		},

		// Refused before any rule is read: the answer says nothing of the policy.
		{
			name:   "ttl above 24h",
			claims: ghClaims(nil),
			req:    gh(Request{TTL: 25 * time.Hour, Caller: caller4}),
			denial: &Denial{Code: InvalidRequest, Reason: "ttl 25h is outside 1m to 24h"},
		},
		{
			name:   "ttl under a minute",
			claims: ghClaims(nil),
			req:    gh(Request{TTL: 30 * time.Second, Caller: caller4}),
			denial: &Denial{Code: InvalidRequest, Reason: "ttl 30s is outside 1m to 24h"},
		},
		{
			name:   "a token-managing group",
			claims: ghClaims(nil),
			req:    gh(Request{Scopes: []token.Scope{{Name: "Account API Tokens", Level: token.Read}}, Caller: caller4}),
			denial: &Denial{Code: InvalidScope, Reason: `"Account API Tokens Read" reads or manages API tokens, which is refused: a child holding it could make tokens of its own that outlive the job; accepted: groups that do not touch API tokens (Access, DNS, …)`},
		},
		{
			name:   "a malformed account id",
			claims: ghClaims(nil),
			req:    gh(Request{AccountIDs: []string{"ACCT"}, Caller: caller4}),
			denial: &Denial{Code: InvalidRequest, Reason: `account id "ACCT" is not 32 lowercase hex characters`},
		},
		{
			name:   "a CIDR with host bits",
			claims: ghClaims(nil),
			req:    gh(Request{AllowedIPs: []string{"203.0.113.7/24"}, Caller: caller4}),
			denial: &Denial{Code: InvalidRequest, Reason: `allowed_ips "203.0.113.7/24" is not a CIDR without host bits`},
		},
		{
			name:   "caller without an address",
			claims: ghClaims(nil),
			req:    gh(Request{CallerIP: true}),
			denial: &Denial{Code: InvalidRequest, Reason: "allowed_ips names caller, but the request's source address is unknown"},
		},
		{
			name:   "a scope without a level",
			claims: ghClaims(nil),
			req:    gh(Request{Scopes: []token.Scope{{Name: "DNS"}}, Caller: caller4}),
			denial: &Denial{Code: InvalidRequest, Reason: `scope "DNS:" is malformed`},
		},

		// Outsiders.
		{
			name:   "another owner",
			claims: ghClaims(map[string]any{"repository_owner_id": "1"}),
			req:    gh(Request{Caller: caller4}),
			denial: &Denial{Code: AccessDenied, Reason: OutsiderReason},
		},
		{
			name:   "a pin claim of another type",
			claims: ghClaims(map[string]any{"repository_owner_id": json.Number("5234567"), "repository_id": json.Number("712345678")}),
			req:    gh(Request{Caller: caller4}),
			want: Grant{Rule: "access-deploy", Owner: token.OwnerAccount, AccountIDs: []string{acctA},
				Scopes: []token.Scope{apWrite, orgRead}, TTL: time.Hour, AllowedIPs: []string{"203.0.113.7/32"}},
		},
		{
			name:   "an issuer no rule names",
			claims: ghClaims(nil),
			req:    Request{Issuer: "https://gitlab.com", Caller: caller4},
			denial: &Denial{Code: AccessDenied, Reason: OutsiderReason},
		},
		{
			name:   "no claims at all",
			claims: nil,
			req:    gh(Request{}),
			denial: &Denial{Code: AccessDenied, Reason: OutsiderReason},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := p.Match(tc.claims, tc.req)
			if tc.denial != nil {
				var d *Denial
				if !errors.As(err, &d) {
					t.Fatalf("Match = %+v, %v; want denial %+v", got, err, tc.denial)
				}
				if diff := cmp.Diff(tc.denial, d); diff != "" {
					t.Errorf("denial (-want +got):\n%s", diff)
				}
				if diff := cmp.Diff(Grant{}, got); diff != "" {
					t.Errorf("a denied Match returned a grant (-want +got):\n%s", diff)
				}
				return
			}
			if err != nil {
				t.Fatalf("Match: %v", err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("grant (-want +got):\n%s", diff)
			}
		})
	}
}

// TestMatchDoesNotAlias: a grant is the caller's to change; the policy's
// slices stay as loaded.
func TestMatchDoesNotAlias(t *testing.T) {
	t.Parallel()
	p := mustParse(t, matchFile)
	g, err := p.Match(ghClaims(nil), Request{Issuer: githubURL, Caller: caller4})
	if err != nil {
		t.Fatal(err)
	}
	g.AccountIDs[0], g.Scopes[0] = "changed", token.Scope{ID: "changed"}
	g2, err := p.Match(ghClaims(nil), Request{Issuer: githubURL, Caller: caller4})
	if err != nil {
		t.Fatal(err)
	}
	if g2.AccountIDs[0] != acctA || g2.Scopes[0] != apWrite {
		t.Errorf("changing a grant changed the policy: %+v", g2)
	}
}

// TestTenantSecrecy: a caller whose token matches no rule's tenant pin is
// told nothing about the policy: not a rule's name, not a claim name, not a
// value, not an account or scope of it, whatever it asks.
func TestTenantSecrecy(t *testing.T) {
	t.Parallel()
	p := mustParse(t, matchFile)
	var secrets []string
	for _, r := range p.Rules {
		secrets = append(secrets, r.Name, r.Issuer.Name)
		for _, c := range r.Claims {
			secrets = append(secrets, c.Claim)
			secrets = append(secrets, c.Values...)
		}
		secrets = append(secrets, r.Grant.AccountIDs...)
		secrets = append(secrets, r.Grant.AllowedIPs...)
		for _, sc := range r.Grant.Scopes {
			secrets = append(secrets, sc.Name, sc.ID)
		}
	}
	outsiders := []struct {
		name   string
		claims map[string]any
		iss    string
	}{
		{"another GitHub owner", ghClaims(map[string]any{"repository_owner_id": "1", "repository_id": "2"}), githubURL},
		{"right repository id, wrong owner", ghClaims(map[string]any{"repository_owner_id": "1"}), githubURL},
		{"same names, other ids (a re-registered org)", ghClaims(map[string]any{"repository_owner_id": "77", "repository_id": "88"}), githubURL},
		{"ids as numbers that differ", ghClaims(map[string]any{"repository_owner_id": json.Number("5234568")}), githubURL},
		{"another Buildkite org", map[string]any{"organization_id": "0184990a-0000-4fa8-9968-496074483c77", "build_number": json.Number("42"), "organization_slug": "acme"}, bkURL},
		{"Buildkite without organization_id", map[string]any{"build_number": json.Number("42")}, bkURL},
		{"another generic subject", map[string]any{"sub": "system:serviceaccount:ci:other", "team": "Platform"}, acmeURL},
		{"an untrusted issuer", ghClaims(nil), "https://token.actions.githubusercontent.com/evil"},
	}
	requests := []Request{
		{},
		{Caller: caller4, CallerIP: true},
		{Scopes: []token.Scope{apWrite}, AccountIDs: []string{acctA}, TTL: 2 * time.Hour},
		{Scopes: []token.Scope{{Name: "DNS", Level: token.Write}}, AccountIDs: []string{acctB}, TTL: 23 * time.Hour, AllowedIPs: []string{"198.51.100.0/24"}},
		{Scopes: []token.Scope{{ID: groupID}}},
	}
	for _, o := range outsiders {
		for i, req := range requests {
			req.Issuer = o.iss
			_, err := p.Match(o.claims, req)
			var d *Denial
			if !errors.As(err, &d) {
				t.Fatalf("%s, request %d: Match = %v, want a denial", o.name, i, err)
			}
			if diff := cmp.Diff(&Denial{Code: AccessDenied, Reason: OutsiderReason}, d); diff != "" {
				t.Errorf("%s, request %d: denial (-want +got):\n%s", o.name, i, diff)
			}
			text := d.Error()
			for _, s := range secrets {
				if len(s) >= 3 && strings.Contains(text, s) {
					t.Errorf("%s, request %d: the denial %q tells the outsider %q", o.name, i, text, s)
				}
			}
		}
	}
}

// TestClosestRule: of the rules whose tenant matched, the denial names the
// one that got furthest: the latest stage of its first failure (claims,
// scopes, accounts, ttl, allowed-ips), then the most claims matched; on a
// tie, the earlier rule.
func TestClosestRule(t *testing.T) {
	t.Parallel()
	rule := func(name, claims, scopes, ttl string) string {
		return `  - name: ` + name + `
    issuer: github
    claims: {repository_id: "1"` + claims + `}
    grant: {account-ids: [` + acctA + `], scopes: [` + scopes + `], max-ttl: ` + ttl + `}
`
	}
	file := func(rules ...string) string {
		return "issuers: {github: " + githubURL + "}\nrules:\n" + strings.Join(rules, "")
	}
	claims := map[string]any{"repository_id": "1", "a": "1", "b": "1", "c": "x"}
	tests := []struct {
		name     string
		file     string
		req      Request
		wantRule string
		wantCode Code
	}{
		{
			name: "more claims matched before the first failure",
			file: file(
				rule("one-claim", `, c: "1"`, "organizations", "1h"),
				rule("two-claims", `, a: "1", b: "1", c: "1"`, "organizations", "1h"),
				rule("first-fails", `, c: "1", a: "1", b: "1"`, "organizations", "1h"),
			),
			wantRule: "two-claims", wantCode: AccessDenied,
		},
		{
			name: "a grant failure beats any claim failure",
			file: file(
				rule("many-claims", `, a: "1", b: "1", c: "1"`, "organizations", "1h"),
				rule("scope", ``, "organizations", "1h"),
			),
			req:      Request{Scopes: []token.Scope{apRead}},
			wantRule: "scope", wantCode: InvalidScope,
		},
		{
			name: "ttl is a later stage than scopes",
			file: file(
				rule("scope", ``, "organizations", "1h"),
				rule("ttl", ``, "apps-and-policies", "1h"),
			),
			req:      Request{Scopes: []token.Scope{apRead}, TTL: 2 * time.Hour},
			wantRule: "ttl", wantCode: InvalidRequest,
		},
		{
			name: "a tie goes to the earlier rule",
			file: file(
				rule("first", ``, "organizations", "1h"),
				rule("second", ``, "organizations:write", "1h"),
			),
			req:      Request{Scopes: []token.Scope{apRead}},
			wantRule: "first", wantCode: InvalidScope,
		},
		{
			name: "a rule outside the tenant is never the closest",
			file: file(
				`  - name: other-tenant
    issuer: github
    claims: {repository_id: "2"}
    grant: {account-ids: [`+acctA+`], scopes: [apps-and-policies], max-ttl: 1h}
`,
				rule("same-tenant", `, c: "1"`, "organizations", "1h"),
			),
			req:      Request{Scopes: []token.Scope{apRead}},
			wantRule: "same-tenant", wantCode: AccessDenied,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := mustParse(t, tc.file)
			req := tc.req
			req.Issuer = githubURL
			_, err := p.Match(maps.Clone(claims), req)
			var d *Denial
			if !errors.As(err, &d) {
				t.Fatalf("Match = %v, want a denial", err)
			}
			if d.Rule != tc.wantRule || d.Code != tc.wantCode {
				t.Errorf("denial %+v, want rule %q with %s", d, tc.wantRule, tc.wantCode)
			}
		})
	}
}

// TestDenialNeverEchoesASecret: a claim value shaped like a token, or one
// holding control characters, is not printed as it is.
func TestDenialNeverEchoesASecret(t *testing.T) {
	t.Parallel()
	p := mustParse(t, matchFile)
	const jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"
	for _, v := range []any{jwt, "cfut_Ab3dEf6hIj9kLmNoPqRsTuVwXyZ0123456789abcd", []any{"x", jwt}} {
		_, err := p.Match(ghClaims(map[string]any{"ref": v}), Request{Issuer: githubURL, Caller: caller4})
		if err == nil || strings.Contains(err.Error(), "eyJhbGci") || strings.Contains(err.Error(), "cfut_") {
			t.Errorf("denial %v echoes the claim", err)
		}
	}
	_, err := p.Match(ghClaims(map[string]any{"ref": "main\n{\"event\":\"token.mint\"}\x1b[2J"}), Request{Issuer: githubURL, Caller: caller4})
	if err == nil || strings.ContainsAny(err.Error(), "\n\x1b") {
		t.Errorf("denial %q holds control characters from a claim", err)
	}
	long := strings.Repeat("a/", 500)
	_, err = p.Match(ghClaims(map[string]any{"ref": long}), Request{Issuer: githubURL, Caller: caller4})
	if err == nil || len(err.Error()) > 300 {
		t.Errorf("denial of %d characters for a long claim: %v", len(err.Error()), err)
	}
}

func TestGlobMatch(t *testing.T) {
	t.Parallel()
	tests := []struct {
		pattern, s string
		want       bool
	}{
		{"refs/heads/main", "refs/heads/main", true},
		{"refs/heads/main", "refs/heads/Main", false},
		{"refs/heads/*", "refs/heads/main", true},
		{"refs/heads/*", "refs/heads/", true},
		{"refs/heads/*", "refs/heads/feature/x", false},
		{"refs/heads/*", "refs/heads", false},
		{"refs/*/main", "refs/heads/main", true},
		{"refs/*/main", "refs/a/b/main", false},
		{"*", "main", true},
		{"*", "a/b", false},
		{"*/*", "a/b", true},
		{"v*", "v1.2.3", true},
		{"v*", "release-v1", false},
		{"*.yml@refs/heads/main", "access.yml@refs/heads/main", true},
		{"*.yml@refs/heads/main", "x/access.yml@refs/heads/main", false},
		{"o/r/.github/workflows/*.yml@refs/heads/main", "o/r/.github/workflows/deploy.yml@refs/heads/main", true},
		{"o/r/.github/workflows/*.yml@refs/heads/main", "o/r/.github/workflows/deploy.yaml@refs/heads/main", false},
		{"a*b*c", "aXbYc", true},
		{"a*b*c", "abc", true},
		{"a*b*c", "aXbY", false},
		{"a*a*a*a*b", strings.Repeat("a", 60), false},
		{"*x*", "", false},
		{"", "", true},
		{"", "a", false},
	}
	for _, tc := range tests {
		if got := globMatch(tc.pattern, tc.s); got != tc.want {
			t.Errorf("globMatch(%q, %q) = %v, want %v", tc.pattern, tc.s, got, tc.want)
		}
	}
}

func TestIdentityKey(t *testing.T) {
	t.Parallel()
	gh := Issuer{Name: "github", URL: githubURL, Kind: GitHub}
	gl := Issuer{Name: "gitlab", URL: "https://gitlab.com", Kind: GitLab}
	bk := Issuer{Name: "buildkite", URL: bkURL, Kind: Buildkite}
	cc := Issuer{Name: "circleci", URL: circleURL, Kind: CircleCI}
	gen := Issuer{Name: "acme", URL: acmeURL, Kind: Generic}
	tests := []struct {
		is     Issuer
		claims map[string]any
		want   string
	}{
		{gh, ghClaims(nil), githubURL + " repository_id=712345678"},
		{gh, ghClaims(map[string]any{"repository_id": nil}), githubURL + " repository_owner_id=5234567"},
		{gh, map[string]any{"sub": "repo:a/b:ref:refs/heads/main"}, githubURL + " sub=repo:a/b:ref:refs/heads/main"},
		{gl, map[string]any{"project_id": "42", "namespace_id": "7", "sub": "s"}, "https://gitlab.com project_id=42"},
		{gl, map[string]any{"namespace_id": "7", "sub": "s"}, "https://gitlab.com namespace_id=7"},
		{bk, map[string]any{"organization_id": bkOrg, "sub": "s"}, bkURL + " organization_id=" + bkOrg},
		{bk, map[string]any{"sub": "organization:acme:pipeline:p"}, bkURL + " sub=organization:acme:pipeline:p"},
		{cc, map[string]any{"sub": "org/o/project/p/user/u"}, circleURL + " sub=org/o/project/p/user/u"},
		{gen, map[string]any{"sub": "svc", "repository_id": "1"}, acmeURL + " sub=svc"},
		{gen, map[string]any{}, acmeURL + " sub="},
	}
	for _, tc := range tests {
		if got := IdentityKey(tc.is, tc.claims); got != tc.want {
			t.Errorf("IdentityKey(%s, %v) = %q, want %q", tc.is.Name, tc.claims, got, tc.want)
		}
	}
	// A repository and an owner that share a number do not share a limit.
	a := IdentityKey(gh, map[string]any{"repository_id": "5"})
	b := IdentityKey(gh, map[string]any{"repository_owner_id": "5"})
	if a == b {
		t.Errorf("repository_id 5 and repository_owner_id 5 share the key %q", a)
	}
}

func TestCheckScopes(t *testing.T) {
	t.Parallel()
	const acct = token.AccountScope
	groups := []token.PermissionGroup{
		{ID: "1e0e0e0e0e0e4e0e8e0e0e0e0e0e0e01", Name: "Access: Apps and Policies Read", Scopes: []string{acct}},
		{ID: "1e0e0e0e0e0e4e0e8e0e0e0e0e0e0e02", Name: "Access: Apps and Policies Write", Scopes: []string{acct}},
		{ID: "1e0e0e0e0e0e4e0e8e0e0e0e0e0e0e03", Name: "Access: Organizations, Identity Providers, and Groups Read", Scopes: []string{acct}},
		{ID: "1e0e0e0e0e0e4e0e8e0e0e0e0e0e0e04", Name: "Account API Tokens Write", Scopes: []string{acct}},
		{ID: "1e0e0e0e0e0e4e0e8e0e0e0e0e0e0e05", Name: "Access: Custom Pages Read", Scopes: []string{"com.cloudflare.api.account.zone"}},
	}
	src := edit(map[int]string{17: `      scopes:
        - apps-and-policies:write
        - organizations
        - "Acces: Apps and Policies:read"
        - 1e0e0e0e0e0e4e0e8e0e0e0e0e0e0e04
        - 1e0e0e0e0e0e4e0e8e0e0e0e0e0e0eff
        - custom-pages`})
	p := mustParse(t, src)
	err := p.CheckScopes(groups)
	var le *LoadError
	if !errors.As(err, &le) {
		t.Fatalf("CheckScopes = %v, want a *LoadError", err)
	}
	assertFaults(t, []wantFault{
		{20, "rules[0].grant.scopes", `"Acces: Apps and Policies Read" matches no account permission group; closest: "Access: Apps and Policies Read"`},
		{21, "rules[0].grant.scopes", `1e0e0e0e0e0e4e0e8e0e0e0e0e0e0e04 is "Account API Tokens Write", which would let the child make tokens of its own`},
		{22, "rules[0].grant.scopes", `1e0e0e0e0e0e4e0e8e0e0e0e0e0e0eff is not the id of any permission group the API lists`},
		{23, "rules[0].grant.scopes", `exists only with scope "com.cloudflare.api.account.zone"`},
	}, le.Faults)

	if err := mustParse(t, baseFile).CheckScopes(groups); err != nil {
		t.Errorf("CheckScopes on a policy whose scopes all resolve: %v", err)
	}
}
