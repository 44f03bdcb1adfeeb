package emulator

import (
	"math"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
)

// surface says which family of endpoints a request came in on, because Cloudflare answers
// the same failure differently on each (reference/cloudflare-api.md, "Errors and limits").
type surface int

const (
	surfaceUser    surface = iota // /user/tokens…
	surfaceAccount                // /accounts/{account_id}/…
)

// Resource-key prefixes (reference/cloudflare-api.md, "Create body": resources).
const (
	resAccountPrefix = "com.cloudflare.api.account."
	resZonePrefix    = "com.cloudflare.api.account.zone."
	resUserPrefix    = "com.cloudflare.api.user."
)

// isBearerValue reports whether s can be the credential of an Authorization header at
// all: token values are letters, digits, '_' and '-'.
func isBearerValue(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// isHexID reports whether s is a Cloudflare identifier: 32 lowercase hex characters.
func isHexID(s string) bool {
	if len(s) != 32 {
		return false
	}
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// authenticate identifies the calling token. It fails the way Cloudflare does
// (reference/cloudflare-api.md, "Errors and limits"):
//   - missing or malformed Authorization: 400, 6003 with 6111 in error_chain;
//   - unknown, deleted, disabled, expired or not-yet-valid token: on verify endpoints 401
//     code 1000; on /user endpoints 403 code 9109 "Invalid access token"; on account
//     endpoints 401 code 10000 "Authentication error" (the reference allows 401 or 403; the
//     emulator uses 401 so that a client can tell "bad credential" from "no permission");
//   - over the rate limit: 429, code 971, Retry-After;
//   - request from outside the token's IP condition (not checked by verify): 403 code 9109
//     "Cannot use the access token from location: <ip>".
//
// Callers hold e.mu.
func (e *Emulator) authenticate(c *call, s surface, verify bool) (*token, *reply) {
	auth := c.r.Header.Get("Authorization")
	scheme, value, found := strings.Cut(auth, " ")
	if !found || !strings.EqualFold(scheme, "Bearer") || !isBearerValue(value) {
		rp := failWith(http.StatusBadRequest, apiError{
			Code: codeInvalidHeaders, Message: messageInvalidHeaders,
			ErrorChain: []apiError{{Code: codeBadAuthFormat, Message: messageBadAuthFormat}},
		})
		return nil, &rp
	}
	t, known := e.byValue[value]
	if !known || !t.usable(c.now) {
		var rp reply
		switch {
		case verify:
			rp = fail(http.StatusUnauthorized, codeInvalidAPIToken, messageInvalidToken)
		case s == surfaceUser:
			rp = fail(http.StatusForbidden, codeInvalidAccess, messageInvalidAccess)
		default:
			rp = fail(http.StatusUnauthorized, codeAuthError, messageAuthError)
		}
		return nil, &rp
	}
	c.tok = t
	if rp := e.rateLimitLocked(c); rp != nil {
		return nil, rp
	}
	t.lastUsedOn = c.now
	if !verify {
		if ip := clientIP(c.r); !t.allowsIP(ip) {
			rp := fail(http.StatusForbidden, codeInvalidAccess, "Cannot use the access token from location: "+ip)
			return nil, &rp
		}
	}
	return t, nil
}

// allowsIP checks the token's condition: the address must be inside one of request_ip.in
// (when that list is not empty) and inside none of request_ip.not_in.
func (t *token) allowsIP(ip string) bool {
	addr, err := netip.ParseAddr(ip)
	if err != nil {
		return len(t.allowIn) == 0 && len(t.denyIn) == 0
	}
	addr = addr.Unmap()
	in := func(list []string) bool {
		for _, s := range list {
			if p, err := parseCIDR(s); err == nil && p.Contains(addr) {
				return true
			}
		}
		return false
	}
	if len(t.allowIn) > 0 && !in(t.allowIn) {
		return false
	}
	return !in(t.denyIn)
}

// parseCIDR parses a CIDR, accepting a bare address as a single-host prefix.
func parseCIDR(s string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-unmapBits(p.Addr())), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// unmapBits is how many prefix bits an IPv4-mapped IPv6 address loses when unmapped.
func unmapBits(a netip.Addr) int {
	if a.Is4In6() {
		return 96
	}
	return 0
}

// rateLimitLocked counts the call against its token's window: a sliding log of request
// times per token, 1200 per 5 minutes by default (reference/cloudflare-api.md, "Errors and
// limits"). Beyond it: 429, code 971, Retry-After in whole seconds until the oldest request
// leaves the window. Refused requests are not counted.
func (e *Emulator) rateLimitLocked(c *call) *reply {
	if e.limits.RateLimit <= 0 {
		return nil
	}
	id := c.tok.id
	log := e.pruneLocked(id, c.now)
	c.limited = true
	if len(log) >= e.limits.RateLimit {
		wait := log[0].Add(e.limits.RateWindow).Sub(c.now)
		rp := fail(http.StatusTooManyRequests, codeRateLimited, messageRateLimited)
		rp.header = http.Header{"Retry-After": {strconv.Itoa(ceilSeconds(wait))}}
		return &rp
	}
	e.rate[id] = append(log, c.now)
	return nil
}

// pruneLocked drops request times that fell out of the window and returns the rest.
func (e *Emulator) pruneLocked(id string, now time.Time) []time.Time {
	log := e.rate[id]
	cut := 0
	for cut < len(log) && !log[cut].Add(e.limits.RateWindow).After(now) {
		cut++
	}
	log = log[cut:]
	e.rate[id] = log
	return log
}

// ceilSeconds rounds d up to whole seconds, at least 1.
func ceilSeconds(d time.Duration) int {
	return max(1, int(math.Ceil(d.Seconds())))
}

// rateHeadersLocked adds the Ratelimit and Ratelimit-Policy headers, which Cloudflare
// sends on every response (reference/cloudflare-api.md, "Errors and limits"), in the IETF
// draft form Cloudflare documents: Ratelimit: "default";r=<remaining>;t=<seconds to reset>
// and Ratelimit-Policy: "default";q=<quota>;w=<window seconds>. Calls without an
// identified token report the full quota.
func (e *Emulator) rateHeadersLocked(c *call, h http.Header) {
	l := e.limits
	if l.RateLimit <= 0 {
		return
	}
	window := int(l.RateWindow / time.Second)
	remaining, reset := l.RateLimit, window
	if c.tok != nil && c.limited {
		log := e.pruneLocked(c.tok.id, c.now)
		remaining = max(0, l.RateLimit-len(log))
		if len(log) > 0 {
			reset = ceilSeconds(log[0].Add(l.RateWindow).Sub(c.now))
		}
	}
	h.Set("Ratelimit", `"default";r=`+strconv.Itoa(remaining)+`;t=`+strconv.Itoa(reset))
	h.Set("Ratelimit-Policy", `"default";q=`+strconv.Itoa(l.RateLimit)+`;w=`+strconv.Itoa(window))
}

// reaches reports whether the token's owner can act on the account at all: a user token
// only on accounts its user is a member of, an account-owned token only on its own account.
func (e *Emulator) reaches(t *token, accountID string) bool {
	if _, ok := e.accounts[accountID]; !ok {
		return false
	}
	if t.owner == OwnerAccount {
		return t.ownerID == accountID
	}
	u, ok := e.users[t.ownerID]
	return ok && u.accounts[accountID]
}

// permits reports whether the token holds any of the given permission groups on resource,
// evaluating as Cloudflare does (reference/cloudflare-api.md, "Create body": explicit deny,
// then explicit allow, then implicit deny). A group counts only if its scope matches the
// resource's kind, so a zone-scoped twin grants nothing on an account resource.
func (e *Emulator) permits(t *token, resource string, groupIDs ...string) bool {
	scope := scopeAccount
	if strings.HasPrefix(resource, resUserPrefix) {
		scope = scopeUser
	}
	for _, g := range groupIDs {
		pg, ok := e.groupIdx[g]
		if !ok || !pg.hasScope(scope) {
			continue
		}
		if t.matches("allow", g, resource) && !t.matches("deny", g, resource) {
			return true
		}
	}
	return false
}

// matches reports whether a policy with the given effect names group g on resource.
func (t *token) matches(effect, g, resource string) bool {
	for _, p := range t.policies {
		if p.effect != effect || !slices.Contains(p.groups, g) {
			continue
		}
		for key, v := range p.flat {
			if v == "*" && keyMatches(key, resource) {
				return true
			}
		}
	}
	return false
}

// keyMatches matches a policy's resource key against a concrete resource: exactly, or by
// a trailing "*" wildcard ("com.cloudflare.api.account.*"). Zone keys never match an
// account resource.
func keyMatches(key, resource string) bool {
	if key == resource {
		return true
	}
	prefix, wild := strings.CutSuffix(key, "*")
	if !wild || !strings.HasPrefix(resource, prefix) {
		return false
	}
	return !strings.HasPrefix(resource, resZonePrefix) || strings.HasPrefix(prefix, resZonePrefix)
}

// authorizeAccount is the common gate of account endpoints: a well-formed account id (else
// 404 code 7003, as Cloudflare's router answers before auth), an authenticated caller, and
// one of groups on com.cloudflare.api.account.<id> (else 403 code 10000).
func (e *Emulator) authorizeAccount(c *call, groups ...string) (accountID string, rp *reply) {
	accountID = c.r.PathValue("account_id")
	if !isHexID(accountID) {
		r := badIdentifier(c.r)
		return "", &r
	}
	t, rp := e.authenticate(c, surfaceAccount, false)
	if rp != nil {
		return "", rp
	}
	if !e.reaches(t, accountID) || !e.permits(t, resAccountPrefix+accountID, groups...) {
		r := fail(http.StatusForbidden, codeAuthError, messageAuthError)
		return "", &r
	}
	return accountID, nil
}

// badIdentifier is Cloudflare's answer to a path whose identifier is not well-formed.
func badIdentifier(r *http.Request) reply {
	return fail(http.StatusNotFound, codeBadIdentifier,
		"Could not route to "+r.URL.Path+", perhaps your object identifier is invalid?")
}
