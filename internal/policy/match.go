package policy

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cf-scoped-token/cf-scoped-token/internal/token"
)

// Request is what a caller asks the broker for, read from the exchange's
// form (scope, account_ids, ttl, allowed_ips) and the connection.
type Request struct {
	Issuer     string        // the verified token's iss URL
	Scopes     []token.Scope // nil or empty: the rule's whole grant
	AccountIDs []string      // empty: every account of the rule
	TTL        time.Duration // 0: min(DefaultTTL, the rule's max-ttl)
	AllowedIPs []string      // CIDRs the caller restricts the token to
	CallerIP   bool          // allowed_ips named caller: the address the request came from
	Caller     netip.Addr    // the address the request came from
}

// Grant is what a matching rule gives a request: the request narrowed to
// what the rule allows, never widened, ready to mint.
type Grant struct {
	Rule       string
	Owner      token.Owner
	AccountIDs []string
	Scopes     []token.Scope
	TTL        time.Duration
	AllowedIPs []string // CIDRs, canonical; empty: no IP condition
}

// Code is the OAuth error code of a denial, as the broker answers it
// (SPEC, the broker's error table; RFC 6749 §5.2, RFC 8693 §2.2.2).
type Code string

// The codes a denial carries.
const (
	AccessDenied   Code = "access_denied"   // no rule matches the token's claims
	InvalidScope   Code = "invalid_scope"   // a scope item no matching rule grants, or a token-managing group
	InvalidTarget  Code = "invalid_target"  // an account no matching rule grants
	InvalidRequest Code = "invalid_request" // a ttl above max-ttl, an IP outside the rule's, a malformed value
)

// OutsiderReason is the whole of what a caller outside every rule's tenant
// is told: nothing about the policy (no rule, claim or value of it).
const OutsiderReason = "no rule of this broker's policy matches the token's identity"

// Denial is Match's answer when no rule grants the request. Rule and the
// reason's details are set only when the caller's token matched some rule's
// tenant pin; that rule is the one that came closest.
type Denial struct {
	Code   Code
	Rule   string // the closest rule; empty for a caller outside every tenant
	Reason string // what failed, for error_description; never a token
}

// Error is the denial as the broker's error_description says it:
// rule "access-deploy": claim ref is "refs/heads/feature", the rule wants "refs/heads/main".
func (d *Denial) Error() string {
	if d.Rule == "" {
		return d.Reason
	}
	return fmt.Sprintf("rule %q: %s", d.Rule, d.Reason)
}

// stage is how far a request got through a rule, in the order Match checks.
type stage int

const (
	atIssuer stage = iota
	atTenant
	atClaims
	atScopes
	atAccounts
	atTTL
	atAllowedIPs
	matched
)

// outcome is one rule's verdict on a request.
type outcome struct {
	stage  stage
	passed int // claims matched before the first that failed
	code   Code
	reason string // set only when explaining
}

// further reports whether o got further through its rule than other did.
// "Closest" is defined by it: the later the stage of the first failure (claims,
// then scopes, accounts, ttl, allowed-ips), and within the claims, the more
// claims matched before the first that failed. On a tie the earlier rule
// stays closest.
func (o outcome) further(other outcome) bool {
	if o.stage != other.stage {
		return o.stage > other.stage
	}
	return o.passed > other.passed
}

// Match finds the rule that grants the request to the token whose verified
// claims are given (decoded with json.Decoder.UseNumber: numbers as
// json.Number). Rules are tried in file order and the first that matches
// fully — issuer, tenant pin, every claim, then the request within its
// grant — wins. Otherwise the error is a *Denial: with the closest rule and
// the first claim or grant item that failed when the token matched some
// rule's tenant pin, and OutsiderReason alone when it matched none.
func (p *Policy) Match(claims map[string]any, req Request) (Grant, error) {
	if d := checkRequest(&req); d != nil {
		return Grant{}, d
	}
	best := -1
	var closest outcome
	for i := range p.Rules {
		o, g := p.Rules[i].check(claims, &req, false)
		if o.stage == matched {
			return g, nil
		}
		if o.stage > atTenant && (best < 0 || o.further(closest)) {
			best, closest = i, o
		}
	}
	if best < 0 {
		return Grant{}, &Denial{Code: AccessDenied, Reason: OutsiderReason}
	}
	r := &p.Rules[best]
	o, _ := r.check(claims, &req, true) // again, now writing the reason
	return Grant{}, &Denial{Code: o.code, Rule: r.Name, Reason: o.reason}
}

// checkRequest refuses a malformed request before any rule is read, so its
// answer says nothing about the policy. The broker parses the form with
// package token; this guards the contract for any other caller.
func checkRequest(req *Request) *Denial {
	bad := func(code Code, format string, args ...any) *Denial {
		return &Denial{Code: code, Reason: fmt.Sprintf(format, args...)}
	}
	switch {
	case req.TTL < 0, req.TTL > 0 && req.TTL < token.MinTTL, req.TTL > token.MaxTTL:
		return bad(InvalidRequest, "ttl %s is outside %s to %s", formatDuration(req.TTL), formatDuration(token.MinTTL), formatDuration(token.MaxTTL))
	case req.TTL%time.Second != 0:
		return bad(InvalidRequest, "ttl %s is not a whole number of seconds", req.TTL)
	case len(req.Scopes) > maxItems, len(req.AccountIDs) > maxItems, len(req.AllowedIPs) > maxItems:
		return bad(InvalidRequest, "the request lists more than %d scopes, accounts or CIDRs", maxItems)
	case req.CallerIP && !req.Caller.IsValid():
		return bad(InvalidRequest, "allowed_ips names caller, but the request's source address is unknown")
	}
	for _, sc := range req.Scopes {
		switch {
		case sc.ID != "" && (!token.IsHexID(sc.ID) || sc.Name != "" || sc.Level != ""),
			sc.ID == "" && (strings.TrimSpace(sc.Name) == "" || sc.Level == ""):
			return bad(InvalidRequest, "scope %s is malformed", show(sc.Name+sc.ID+":"+string(sc.Level)))
		case token.ManagesTokens(sc.Name): // token.ParseScopes refuses it already; Match holds to it whoever calls
			return bad(InvalidScope, "%s", tokenGroupProblem(sc.GroupName()))
		}
	}
	for _, id := range req.AccountIDs {
		if !token.IsHexID(id) {
			return bad(InvalidRequest, "account id %s is not 32 lowercase hex characters", show(id))
		}
	}
	for _, c := range req.AllowedIPs {
		if p, err := netip.ParsePrefix(c); err != nil || p != p.Masked() {
			return bad(InvalidRequest, "allowed_ips %s is not a CIDR without host bits", show(c))
		}
	}
	return nil
}

// check runs the request through one rule. With explain it also writes why
// the rule fails; without, it only counts (Match formats a reason for the
// one rule it reports, not for every rule it passes).
func (r *Rule) check(claims map[string]any, req *Request, explain bool) (outcome, Grant) {
	if r.Issuer.URL != req.Issuer {
		o := outcome{stage: atIssuer, code: AccessDenied}
		if explain {
			o.reason = fmt.Sprintf("the rule's issuer is %s (%s), the token's is %s", r.Issuer.Name, show(r.Issuer.URL), show(req.Issuer))
		}
		return o, Grant{}
	}
	for i := range r.Claims {
		m := &r.Claims[i]
		if m.Pin && !m.matches(claims) {
			o := outcome{stage: atTenant, code: AccessDenied}
			if explain {
				o.reason = "tenant pin: " + m.why(claims)
			}
			return o, Grant{}
		}
	}
	passed := 0
	for i := range r.Claims {
		m := &r.Claims[i]
		if m.Pin {
			continue
		}
		if !m.matches(claims) {
			o := outcome{stage: atClaims, passed: passed, code: AccessDenied}
			if explain {
				o.reason = m.why(claims)
			}
			return o, Grant{}
		}
		passed++
	}

	a := &r.Grant
	g := Grant{Rule: r.Name, Owner: a.Owner}
	if len(req.Scopes) == 0 {
		g.Scopes = append([]token.Scope(nil), a.Scopes...)
	} else {
		for _, sc := range req.Scopes {
			if !a.grantsScope(sc) {
				o := outcome{stage: atScopes, code: InvalidScope}
				if explain {
					o.reason = fmt.Sprintf("the rule does not grant scope %s; it grants %s", show(sc.GroupName()), showScopes(a.Scopes))
				}
				return o, Grant{}
			}
		}
		g.Scopes = append([]token.Scope(nil), req.Scopes...)
	}
	if len(req.AccountIDs) == 0 {
		g.AccountIDs = append([]string(nil), a.AccountIDs...)
	} else {
		for _, id := range req.AccountIDs {
			if !slices.Contains(a.AccountIDs, id) {
				o := outcome{stage: atAccounts, code: InvalidTarget}
				if explain {
					o.reason = fmt.Sprintf("the rule does not grant account %s; it grants %s", show(id), showList(a.AccountIDs))
				}
				return o, Grant{}
			}
		}
		g.AccountIDs = append([]string(nil), req.AccountIDs...)
	}
	g.TTL = req.TTL
	if g.TTL == 0 {
		g.TTL = min(DefaultTTL, a.MaxTTL)
	}
	if g.TTL > a.MaxTTL {
		o := outcome{stage: atTTL, code: InvalidRequest}
		if explain {
			o.reason = fmt.Sprintf("ttl %s is above the rule's max-ttl %s (refused, not shortened)", formatDuration(g.TTL), formatDuration(a.MaxTTL))
		}
		return o, Grant{}
	}
	ips, ok, reason := a.allowedIPs(req, explain)
	if !ok {
		return outcome{stage: atAllowedIPs, code: InvalidRequest, reason: reason}, Grant{}
	}
	g.AllowedIPs = ips
	return outcome{stage: matched}, g
}

// grantsScope reports whether the allowance covers a requested scope: the
// same group at the same level, or at read where the rule grants write
// (Cloudflare's Write group of a base name includes what its Read group
// allows). A group id covers only the same id: which name an id has is the
// catalogue's to say, and the policy does not read it. Revoke and any other
// level are covered only by themselves.
func (a *Allowance) grantsScope(sc token.Scope) bool {
	for _, have := range a.Scopes {
		switch {
		case sc.ID != "" || have.ID != "":
			if sc.ID == have.ID {
				return true
			}
		case !strings.EqualFold(sc.Name, have.Name):
		case sc.Level == have.Level, sc.Level == token.Read && have.Level == token.Write:
			return true
		}
	}
	return false
}

// allowedIPs is the IP condition of the grant. The rule's allowed-ips (its
// CIDRs, and the caller's own address if it names caller) are a floor: the
// token is never usable from anywhere else. The request's allowed_ips (its
// CIDRs, and caller) restrict it further; since a token's condition is a
// list of CIDRs, not an intersection, each CIDR the request asks for must lie
// within one of the rule's, and then the request's list is the condition.
// Without a request list the rule's is; with neither there is none.
func (a *Allowance) allowedIPs(req *Request, explain bool) (cidrs []string, ok bool, reason string) {
	var floor []netip.Prefix
	for _, c := range a.AllowedIPs {
		if p, err := netip.ParsePrefix(c); err == nil {
			floor = append(floor, p)
		}
	}
	if a.Caller {
		if !req.Caller.IsValid() {
			return nil, false, "the rule allows the caller's address, and the request's source address is unknown"
		}
		floor = append(floor, hostPrefix(req.Caller))
	}
	var asked []netip.Prefix
	for _, c := range req.AllowedIPs {
		if p, err := netip.ParsePrefix(c); err == nil {
			asked = append(asked, p)
		}
	}
	if req.CallerIP {
		asked = append(asked, hostPrefix(req.Caller))
	}
	if len(floor) > 0 {
		for _, p := range asked {
			if within(p, floor) {
				continue
			}
			if explain {
				rule := a.AllowedIPs
				if a.Caller {
					rule = append([]string{CallerKeyword}, rule...)
				}
				reason = fmt.Sprintf("allowed_ips %s lies outside the rule's allowed-ips (%s)", show(p.String()), showList(rule))
			}
			return nil, false, reason
		}
	}
	use := asked
	if len(use) == 0 {
		use = floor
	}
	for _, p := range use {
		if s := p.String(); !slices.Contains(cidrs, s) {
			cidrs = append(cidrs, s)
		}
	}
	return cidrs, true, ""
}

// hostPrefix is the single-address CIDR of an address: /32 or /128, with an
// IPv4-mapped IPv6 address read as the IPv4 address it is.
func hostPrefix(a netip.Addr) netip.Prefix {
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen())
}

// within reports whether every address of p lies in one of the prefixes.
func within(p netip.Prefix, in []netip.Prefix) bool {
	for _, q := range in {
		if q.Bits() <= p.Bits() && q.Contains(p.Addr()) {
			return true
		}
	}
	return false
}

// matches reports whether the token's claim matches. An array claim (such
// as CircleCI's context-ids) matches when any element does.
func (m *ClaimMatch) matches(claims map[string]any) bool {
	v, ok := claims[m.Claim]
	if !ok {
		return false
	}
	if elems, ok := v.([]any); ok {
		for _, e := range elems {
			if s, ok := claimText(e); ok && m.matchesText(s) {
				return true
			}
		}
		return false
	}
	s, ok := claimText(v)
	return ok && m.matchesText(s)
}

func (m *ClaimMatch) matchesText(s string) bool {
	for _, want := range m.Values {
		if globMatch(want, s) {
			return true
		}
	}
	return false
}

// claimText is a scalar claim as text: strings as they are, numbers as
// their JSON text (json.Number; a float64 from a decoder without UseNumber
// in its shortest form), booleans as "true"/"false".
func claimText(v any) (string, bool) {
	switch v := v.(type) {
	case string:
		return v, true
	case json.Number:
		return v.String(), true
	case bool:
		return strconv.FormatBool(v), true
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64), true
	case int:
		return strconv.Itoa(v), true
	case int64:
		return strconv.FormatInt(v, 10), true
	}
	return "", false
}

// why says how the token's claim fails the match.
func (m *ClaimMatch) why(claims map[string]any) string {
	want := show(m.Values[0])
	if len(m.Values) > 1 {
		want = "one of " + showList(m.Values)
	}
	v, ok := claims[m.Claim]
	if !ok {
		return fmt.Sprintf("the token has no claim %s, the rule wants %s", claimName(m.Claim), want)
	}
	return fmt.Sprintf("claim %s is %s, the rule wants %s", claimName(m.Claim), showClaim(v), want)
}

// showClaim writes a token's claim value for a denial, as show does.
func showClaim(v any) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case []any:
		texts := make([]string, 0, len(v))
		for _, e := range v {
			if s, ok := claimText(e); ok {
				texts = append(texts, s)
			}
		}
		return "[" + showList(texts) + "]"
	case map[string]any:
		return "an object"
	}
	if s, ok := claimText(v); ok {
		return show(s)
	}
	return "a value of another type"
}

// claimName writes a claim's name: as it is when it is a plain name
// (including CircleCI's oidc.circleci.com/vcs-ref), else quoted.
func claimName(name string) string {
	for _, r := range name {
		if !(r == '_' || r == '-' || r == '.' || r == '/' || '0' <= r && r <= '9' || 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z') {
			return show(name)
		}
	}
	return name
}

// showScopes writes scopes by their full group names ("Access: Apps and
// Policies Write"), as Cloudflare's dashboard lists them.
func showScopes(scopes []token.Scope) string {
	items := make([]string, len(scopes))
	for i, sc := range scopes {
		items[i] = sc.GroupName()
	}
	return showList(items)
}

// IdentityKey is the key of the per-identity rate limit: the issuer URL and
// the claim that names the tenant most narrowly — GitHub repository_id, else
// repository_owner_id; GitLab project_id, else namespace_id; Buildkite
// organization_id; otherwise (CircleCI, generic, or none of those present)
// sub. The claim's name is part of the key, so a repository and an owner
// that share a number do not share a limit.
func IdentityKey(is Issuer, claims map[string]any) string {
	for _, c := range rulesOf(is.Kind).identity {
		if s, ok := claimText(claims[c]); ok && s != "" {
			return is.URL + " " + c + "=" + s
		}
	}
	s, _ := claimText(claims["sub"])
	return is.URL + " sub=" + s
}
