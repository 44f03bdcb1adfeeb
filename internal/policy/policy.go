// Package policy is the broker's declarative policy: which CI identities (an
// OIDC issuer and the claims of its tokens) may have which child tokens. It
// reads the policy file strictly, with the line of every fault; it enforces
// the load-time rules (each rule pins its tenant by an immutable id, no
// token-managing groups, ttl bounds, scopes and accounts checked as the
// inputs are); and it answers Match: for a verified token's claims and a
// request, the grant or the reason there is none.
//
// It does no I/O and reads no clock: the broker reads the file, verifies the
// token and passes both in.
package policy

import (
	"strings"
	"time"

	"github.com/cf-scoped-token/cf-scoped-token/internal/token"
)

// Policy is a loaded, valid policy file. It is never changed after Parse, so
// one Policy may serve any number of concurrent Match calls.
type Policy struct {
	// Audience is the aud the broker accepts. Empty: the file sets none,
	// and the broker's --audience must supply it (the broker refuses to
	// start when neither does).
	Audience string
	Issuers  []Issuer // in file order
	Rules    []Rule   // in file order; the first rule that matches wins
}

// IssuerByURL returns the issuer whose URL is iss, exactly: go-oidc compares
// the token's iss with the configured issuer byte for byte
// (reference/oidc.md §6), so this does too.
func (p *Policy) IssuerByURL(iss string) (Issuer, bool) {
	for _, is := range p.Issuers {
		if is.URL == iss {
			return is, true
		}
	}
	return Issuer{}, false
}

// IssuerByName returns the issuer of the given short name.
func (p *Policy) IssuerByName(name string) (Issuer, bool) {
	for _, is := range p.Issuers {
		if is.Name == name {
			return is, true
		}
	}
	return Issuer{}, false
}

// Issuer is a trusted OIDC issuer: its short name in the file, its URL (the
// exact iss of its tokens) and the CI system it belongs to.
type Issuer struct {
	Name string
	URL  string
	Kind Kind
}

// Kind is the CI system an issuer belongs to. It decides which claims pin a
// rule's tenant and which claim keys the per-identity rate limit.
type Kind string

// The kinds of issuer the policy knows (reference/oidc.md §2 and §4).
const (
	GitHub    Kind = "github"    // GitHub Actions, github.com, GHE.com or GHES
	GitLab    Kind = "gitlab"    // GitLab CI, gitlab.com or self-managed
	Buildkite Kind = "buildkite" // Buildkite agents
	CircleCI  Kind = "circleci"  // CircleCI, one issuer per organization
	Generic   Kind = "generic"   // any other OIDC issuer: sub pins the tenant
)

// title is the CI system's name as its vendor writes it.
func (k Kind) title() string {
	switch k {
	case GitHub:
		return "GitHub"
	case GitLab:
		return "GitLab"
	case Buildkite:
		return "Buildkite"
	case CircleCI:
		return "CircleCI"
	}
	return "a generic"
}

// KindOf is the kind an issuer's short name declares: github, gitlab,
// buildkite and circleci name those CI systems, alone or followed by a
// suffix (github-acme, gitlab-self); any other name is a generic issuer.
func KindOf(name string) Kind {
	for _, k := range []Kind{GitHub, GitLab, Buildkite, CircleCI} {
		if name == string(k) || strings.HasPrefix(name, string(k)+"-") {
			return k
		}
	}
	return Generic
}

// Rule is one entry of the file's rules: an issuer, the claims a token of
// it must carry, and what a matching request may be granted.
type Rule struct {
	Name   string // unique in the file; appears in denials and the audit log
	Line   int    // where the rule starts in the file
	Issuer Issuer
	Claims []ClaimMatch // in file order; every one must match
	Grant  Allowance
}

// ClaimMatch is one entry of a rule's claims: the token's claim must equal
// one of Values. A value may hold the glob *, which matches any run of
// characters except / (never on an id claim); otherwise it matches exactly,
// case-sensitively.
type ClaimMatch struct {
	Claim  string
	Values []string // one value, or the items of a list: any of them
	// Pin marks the exact match on an immutable id that pins the rule's
	// tenant (GitHub repository_id or repository_owner_id, …). A caller
	// whose token does not match every pin of a rule is outside that rule's
	// tenant and learns nothing about it.
	Pin bool
}

// Allowance is a rule's grant: the most a matching request may have.
type Allowance struct {
	Owner      token.Owner
	AccountIDs []string      // a request may ask for these or fewer
	Scopes     []token.Scope // a request may ask for these or less (write covers read)
	MaxTTL     time.Duration
	// AllowedIPs are the rule's CIDRs (canonical); with Caller, the address
	// the request came from is allowed too. Empty and no Caller: the rule
	// sets no floor, and the request's own allowed_ips apply.
	AllowedIPs []string
	Caller     bool

	scopeLines []int // the file line of each of Scopes, for CheckScopes
}

// DefaultTTL is the ttl of a request that names none, unless the rule's
// max-ttl is shorter (SPEC, POST /v1/token).
const DefaultTTL = time.Hour

// CallerKeyword in allowed-ips (the file's and the request's) stands for the
// address the request came from.
const CallerKeyword = "caller"
