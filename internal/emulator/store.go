package emulator

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash/crc32"
	"maps"
	"slices"
	"strings"
	"time"
)

// Owner kinds of a token, as reported in Token.Owner.
const (
	OwnerUser    = "user"
	OwnerAccount = "account"
)

// Token statuses (reference/cloudflare-api.md, "Responses": token object).
const (
	StatusActive   = "active"
	StatusDisabled = "disabled"
	StatusExpired  = "expired"
)

// account is a Cloudflare account and its Access state.
type account struct {
	id, name string
	access   *accessStore
}

// user is a Cloudflare user; it is a super-admin member of each account in accounts.
type user struct {
	id, email string
	accounts  map[string]bool
}

// policy is one token policy as stored. Resources map a resource key to "*" (flat) or to a
// nested map of resource keys to "*" (reference/cloudflare-api.md, "Create body": resources).
type policy struct {
	id     string
	effect string
	groups []string
	flat   map[string]string
	nested map[string]map[string]string
}

// token is a stored API token.
type token struct {
	seq        int
	id, name   string
	value      string
	owner      string // OwnerUser or OwnerAccount
	ownerID    string // user id or account id
	disabled   bool
	issuedOn   time.Time
	modifiedOn time.Time
	lastUsedOn time.Time
	notBefore  time.Time
	expiresOn  time.Time
	policies   []policy
	allowIn    []string // condition request_ip.in
	denyIn     []string // condition request_ip.not_in
}

// status is the token's status at now: disabled wins, then expiry (expires_on is the
// instant on or after which the token must not be accepted).
func (t *token) status(now time.Time) string {
	switch {
	case t.disabled:
		return StatusDisabled
	case !t.expiresOn.IsZero() && !now.Before(t.expiresOn):
		return StatusExpired
	default:
		return StatusActive
	}
}

// usable reports whether the token may authenticate a request at now.
func (t *token) usable(now time.Time) bool {
	return t.status(now) == StatusActive && (t.notBefore.IsZero() || !now.Before(t.notBefore))
}

// TokenSpec describes a token issued directly into the store by IssueUserToken or
// IssueAccountToken, bypassing validation, quotas and the parent-permission check.
type TokenSpec struct {
	// Name is the token's name.
	Name string
	// Policies are the token's policies.
	Policies []Policy
	// ExpiresOn is the token's expiry; zero means it never expires.
	ExpiresOn time.Time
	// AllowedIPs are CIDRs the token may be used from (condition request_ip.in); empty means any.
	AllowedIPs []string
}

// Policy is a token policy: an effect ("allow" or "deny"), permission-group ids and
// resources (resource key → "*").
type Policy struct {
	// Effect is "allow" or "deny".
	Effect string
	// PermissionGroups are permission-group ids.
	PermissionGroups []string
	// Resources maps resource keys such as "com.cloudflare.api.account.<id>" to "*".
	Resources map[string]string
	// NestedResources holds resource keys whose value is itself a map (for example an
	// account key mapping "com.cloudflare.api.account.zone.*" to "*"). Usually empty.
	NestedResources map[string]map[string]string
}

// Token is a snapshot of a stored token, for test inspection.
type Token struct {
	ID, Name, Value string
	// Owner is "user" or "account"; OwnerID is the user's or the account's id.
	Owner, OwnerID string
	// Status is "active", "expired" or "disabled" at the emulator's Now.
	Status string
	// IssuedOn and ModifiedOn are set by the emulator; ExpiresOn and NotBefore are zero when unset.
	IssuedOn, ModifiedOn, ExpiresOn, NotBefore time.Time
	// LastUsedOn is the last time the token authenticated a request; zero if never.
	LastUsedOn time.Time
	// Policies are the token's policies.
	Policies []Policy
	// AllowedIPs and DeniedIPs are the condition's request_ip.in and request_ip.not_in.
	AllowedIPs, DeniedIPs []string
}

// snapshot copies t into an exported Token.
func (t *token) snapshot(now time.Time) Token {
	out := Token{
		ID: t.id, Name: t.name, Value: t.value, Owner: t.owner, OwnerID: t.ownerID,
		Status: t.status(now), IssuedOn: t.issuedOn, ModifiedOn: t.modifiedOn,
		ExpiresOn: t.expiresOn, NotBefore: t.notBefore, LastUsedOn: t.lastUsedOn,
		AllowedIPs: slices.Clone(t.allowIn), DeniedIPs: slices.Clone(t.denyIn),
	}
	for _, p := range t.policies {
		ep := Policy{Effect: p.effect, PermissionGroups: slices.Clone(p.groups), Resources: maps.Clone(p.flat)}
		if len(p.nested) > 0 {
			ep.NestedResources = make(map[string]map[string]string, len(p.nested))
			for k, v := range p.nested {
				ep.NestedResources[k] = maps.Clone(v)
			}
		}
		out.Policies = append(out.Policies, ep)
	}
	return out
}

// AddAccount adds an account (or renames an existing one). Its Access organization exists
// from the start, as it does once Zero Trust is set up.
func (e *Emulator) AddAccount(id, name string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.addAccountLocked(id, name)
}

func (e *Emulator) addAccountLocked(id, name string) *account {
	if a, ok := e.accounts[id]; ok {
		a.name = name
		return a
	}
	a := &account{id: id, name: name, access: newAccessStore(id, name, e.now())}
	e.accounts[id] = a
	return a
}

// AddUser adds a user (or, for an email already known, extends its memberships) as a
// super-admin member of the given accounts, creating accounts that do not exist yet. The
// user id is derived from the email (32 lowercase hex), so it is stable across runs.
func (e *Emulator) AddUser(email string, accountIDs ...string) (userID string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	sum := sha256.Sum256([]byte(strings.ToLower(email)))
	userID = hex.EncodeToString(sum[:16])
	u, ok := e.users[userID]
	if !ok {
		u = &user{id: userID, email: email, accounts: map[string]bool{}}
		e.users[userID] = u
	}
	for _, id := range accountIDs {
		if _, ok := e.accounts[id]; !ok {
			e.addAccountLocked(id, "Account "+id[:min(6, len(id))])
		}
		u.accounts[id] = true
	}
	return userID
}

// IssueUserToken stores a token owned by the user, as if created in the dashboard, and
// returns its id and secret value. It returns empty strings if the user does not exist.
func (e *Emulator) IssueUserToken(userID string, spec TokenSpec) (id, value string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.users[userID]; !ok {
		return "", ""
	}
	t := e.issueLocked(OwnerUser, userID, spec)
	return t.id, t.value
}

// IssueAccountToken stores a token owned by the account and returns its id and secret
// value. It returns empty strings if the account does not exist.
func (e *Emulator) IssueAccountToken(accountID string, spec TokenSpec) (id, value string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.accounts[accountID]; !ok {
		return "", ""
	}
	t := e.issueLocked(OwnerAccount, accountID, spec)
	return t.id, t.value
}

func (e *Emulator) issueLocked(owner, ownerID string, spec TokenSpec) *token {
	now := e.now()
	t := &token{
		name: spec.Name, owner: owner, ownerID: ownerID,
		expiresOn: truncate(spec.ExpiresOn), allowIn: slices.Clone(spec.AllowedIPs),
		issuedOn: now, modifiedOn: now,
	}
	for _, p := range spec.Policies {
		sp := policy{id: newHexID(), effect: p.Effect, groups: slices.Clone(p.PermissionGroups),
			flat: maps.Clone(p.Resources)}
		if len(p.NestedResources) > 0 {
			sp.nested = map[string]map[string]string{}
			for k, v := range p.NestedResources {
				sp.nested[k] = maps.Clone(v)
			}
		}
		t.policies = append(t.policies, sp)
	}
	e.insertLocked(t)
	return t
}

// insertLocked gives t an id, a value and an issue order, and stores it.
func (e *Emulator) insertLocked(t *token) {
	e.seq++
	t.seq = e.seq
	t.id = newHexID()
	t.value = newTokenValue(t.owner)
	e.tokens[t.id] = t
	e.byValue[t.value] = t
}

// deleteLocked removes t; its value stops working at once.
func (e *Emulator) deleteLocked(t *token) {
	delete(e.tokens, t.id)
	delete(e.byValue, t.value)
	delete(e.rate, t.id)
}

// Tokens returns every token not deleted, user- and account-owned, in issue order.
func (e *Emulator) Tokens() []Token {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.now()
	ts := e.sortedTokensLocked(func(*token) bool { return true })
	out := make([]Token, 0, len(ts))
	for _, t := range ts {
		out = append(out, t.snapshot(now))
	}
	return out
}

// sortedTokensLocked returns the stored tokens that keep reports true, in issue order.
func (e *Emulator) sortedTokensLocked(keep func(*token) bool) []*token {
	var ts []*token
	for _, t := range e.tokens {
		if keep(t) {
			ts = append(ts, t)
		}
	}
	slices.SortFunc(ts, func(a, b *token) int { return a.seq - b.seq })
	return ts
}

// truncate drops sub-second precision and converts to UTC, keeping the zero time zero.
func truncate(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.UTC().Truncate(time.Second)
}

// randomHex returns n random bytes as 2n lowercase hex characters.
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+).
	return hex.EncodeToString(b)
}

// newHexID returns 32 random lowercase hex characters, the shape of Cloudflare ids.
func newHexID() string { return randomHex(16) }

// newUUID returns a random version-4 UUID, the shape of Access object ids.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

const alphanumerics = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// randomAlphanumerics returns n characters drawn uniformly from [A-Za-z0-9].
func randomAlphanumerics(n int) string {
	out := make([]byte, 0, n)
	var buf [64]byte
	for len(out) < n {
		_, _ = rand.Read(buf[:])
		for _, c := range buf {
			// 62*4 = 248: rejecting bytes ≥ 248 keeps the draw uniform.
			if c < 248 && len(out) < n {
				out = append(out, alphanumerics[c%62])
			}
		}
	}
	return string(out)
}

// Token value format. reference/cloudflare-api.md ("Responses") says new tokens are
// "cfut_" (user) or "cfat_" (account) + 40 characters + a checksum, without documenting the
// checksum. The emulator's checksum is the CRC-32 (IEEE) of prefix and body, as 8 lowercase
// hex characters, so a value is 5 + 40 + 8 = 53 characters long, e.g.
// "cfut_" + "AbC…(40)" + "1a2b3c4d".
const (
	prefixUserToken    = "cfut_"
	prefixAccountToken = "cfat_"
	tokenBodyLen       = 40
)

// newTokenValue returns a fresh secret for a token of the given owner kind.
func newTokenValue(owner string) string {
	prefix := prefixUserToken
	if owner == OwnerAccount {
		prefix = prefixAccountToken
	}
	s := prefix + randomAlphanumerics(tokenBodyLen)
	return s + fmt.Sprintf("%08x", crc32.ChecksumIEEE([]byte(s)))
}

// ValidTokenValue reports whether v has the shape of a token value this emulator issues:
// prefix, 40 alphanumerics and a matching checksum (see newTokenValue).
func ValidTokenValue(v string) bool {
	if !strings.HasPrefix(v, prefixUserToken) && !strings.HasPrefix(v, prefixAccountToken) {
		return false
	}
	if len(v) != len(prefixUserToken)+tokenBodyLen+8 {
		return false
	}
	body := v[:len(v)-8]
	for _, c := range body[len(prefixUserToken):] {
		if !strings.ContainsRune(alphanumerics, c) {
			return false
		}
	}
	return v[len(body):] == fmt.Sprintf("%08x", crc32.ChecksumIEEE([]byte(body)))
}
