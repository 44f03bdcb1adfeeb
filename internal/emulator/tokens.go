package emulator

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// The token endpoints, user-owned (/user/tokens…) and account-owned
// (/accounts/{account_id}/tokens…), per reference/cloudflare-api.md "Endpoints",
// "Create body", "Responses" and "Errors and limits".

// maxNameLen is the longest token name the API accepts (iam_name maxLength).
const maxNameLen = 120

// maxBodySize bounds request bodies; real token bodies are a few KiB.
const maxBodySize = 1 << 20

// owner is whose tokens an endpoint manages: a user's or an account's.
type owner struct {
	kind string // OwnerUser or OwnerAccount
	id   string
}

// resource is the resource key on which the token-management groups are checked.
func (o owner) resource() string {
	if o.kind == OwnerUser {
		return resUserPrefix + o.id
	}
	return resAccountPrefix + o.id
}

// gate authenticates a token-endpoint call and checks the parent permission: on /user
// endpoints the caller must be a user token holding "API Tokens Write" (or, to read, "API
// Tokens Read") on its user; on account endpoints "Account API Tokens Write"/"Read" on
// the account. An account-owned token on a /user endpoint gets 403 code 9109
// "Unauthorized to access requested resource" (emulator's choice among the reference's
// codes: it is a valid token used where it cannot be).
func (e *Emulator) gate(c *call, s surface, write bool) (owner, *reply) {
	if s == surfaceAccount {
		groups := []string{groupAccountAPITokensWrite}
		if !write {
			groups = append(groups, groupAccountAPITokensRead)
		}
		id, rp := e.authorizeAccount(c, groups...)
		return owner{OwnerAccount, id}, rp
	}
	t, rp := e.authenticate(c, surfaceUser, false)
	if rp != nil {
		return owner{}, rp
	}
	if t.owner != OwnerUser {
		r := fail(http.StatusForbidden, codeInvalidAccess, messageUnauthorized)
		return owner{}, &r
	}
	groups := []string{groupAPITokensWrite}
	if !write {
		groups = append(groups, groupAPITokensRead)
	}
	o := owner{OwnerUser, t.ownerID}
	if !e.permits(t, o.resource(), groups...) {
		r := fail(http.StatusForbidden, codeAuthError, messageAuthError)
		return owner{}, &r
	}
	return o, nil
}

// withSurface binds a token handler to the user or account family of endpoints.
func (e *Emulator) withSurface(s surface, h func(*call, surface) reply) handler {
	return func(c *call) reply { return h(c, s) }
}

// Wire types of the token endpoints, written from reference/cloudflare-api.md.
type (
	tokenJSON struct {
		ID         string         `json:"id"`
		Name       string         `json:"name"`
		Status     string         `json:"status"`
		IssuedOn   string         `json:"issued_on"`
		ModifiedOn string         `json:"modified_on"`
		LastUsedOn string         `json:"last_used_on,omitempty"`
		NotBefore  string         `json:"not_before,omitempty"`
		ExpiresOn  string         `json:"expires_on,omitempty"`
		Policies   []policyJSON   `json:"policies"`
		Condition  *conditionJSON `json:"condition,omitempty"`
		Value      string         `json:"value,omitempty"` // only in the create answer
	}
	policyJSON struct {
		ID               string         `json:"id"`
		Effect           string         `json:"effect"`
		PermissionGroups []groupRefJSON `json:"permission_groups"`
		Resources        map[string]any `json:"resources"`
	}
	groupRefJSON struct {
		ID   string `json:"id"`
		Name string `json:"name,omitempty"`
	}
	// conditionJSON is answered with the current spelling, request_ip
	// (reference/cloudflare-api.md, "Create body": condition).
	conditionJSON struct {
		RequestIP requestIPJSON `json:"request_ip"`
	}
	requestIPJSON struct {
		In    []string `json:"in,omitempty"`
		NotIn []string `json:"not_in,omitempty"`
	}
	verifyJSON struct {
		ID        string `json:"id"`
		Status    string `json:"status"`
		NotBefore string `json:"not_before,omitempty"`
		ExpiresOn string `json:"expires_on,omitempty"`
	}
	idJSON struct {
		ID string `json:"id"`
	}
)

// render turns a stored token into its wire form (without the value).
func (e *Emulator) render(t *token, now time.Time) tokenJSON {
	out := tokenJSON{
		ID: t.id, Name: t.name, Status: t.status(now),
		IssuedOn: formatTime(t.issuedOn), ModifiedOn: formatTime(t.modifiedOn),
		Policies: []policyJSON{},
	}
	if !t.lastUsedOn.IsZero() {
		out.LastUsedOn = formatTime(t.lastUsedOn)
	}
	if !t.notBefore.IsZero() {
		out.NotBefore = formatTime(t.notBefore)
	}
	if !t.expiresOn.IsZero() {
		out.ExpiresOn = formatTime(t.expiresOn)
	}
	for _, p := range t.policies {
		pj := policyJSON{ID: p.id, Effect: p.effect, PermissionGroups: []groupRefJSON{}, Resources: map[string]any{}}
		for _, g := range p.groups {
			pj.PermissionGroups = append(pj.PermissionGroups, groupRefJSON{ID: g, Name: e.groupIdx[g].Name})
		}
		for k, v := range p.flat {
			pj.Resources[k] = v
		}
		for k, v := range p.nested {
			pj.Resources[k] = v
		}
		out.Policies = append(out.Policies, pj)
	}
	if len(t.allowIn) > 0 || len(t.denyIn) > 0 {
		out.Condition = &conditionJSON{RequestIP: requestIPJSON{In: t.allowIn, NotIn: t.denyIn}}
	}
	return out
}

// lookup passes the gate (to read, or to write) and finds the caller's owner's token by
// the {token_id} path value: 404 code 7003 for an id that is not 32 hex, 404 code 1003 for
// one that does not exist (or belongs to someone else, which must look the same).
func (e *Emulator) lookup(c *call, s surface, write bool) (owner, *token, *reply) {
	o, rp := e.gate(c, s, write)
	if rp != nil {
		return owner{}, nil, rp
	}
	id := c.r.PathValue("token_id")
	if !isHexID(id) {
		rp := badIdentifier(c.r)
		return owner{}, nil, &rp
	}
	t, ok := e.tokens[id]
	if !ok || t.owner != o.kind || t.ownerID != o.id {
		rp := fail(http.StatusNotFound, codeNotFound, messageNotFound)
		return owner{}, nil, &rp
	}
	return o, t, nil
}

// listTokens answers GET …/tokens: the owner's tokens in issue order (direction asc, the
// default, or desc), expired ones left out unless include_expired=true, paginated with
// page (default 1) and per_page (default 20, 5…50); past the last page result is empty.
func (e *Emulator) listTokens(c *call, s surface) reply {
	o, rp := e.gate(c, s, false)
	if rp != nil {
		return *rp
	}
	q := c.r.URL.Query()
	page, perPage, rp := pagination(q.Get("page"), q.Get("per_page"), 20, 5, 50)
	if rp != nil {
		return *rp
	}
	includeExpired := false
	if v := q.Get("include_expired"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fail(http.StatusBadRequest, codeBadRequest, "include_expired must be true or false")
		}
		includeExpired = b
	}
	ts := e.sortedTokensLocked(func(t *token) bool {
		return t.owner == o.kind && t.ownerID == o.id && (includeExpired || t.status(c.now) != StatusExpired)
	})
	switch q.Get("direction") {
	case "", "asc":
	case "desc":
		slices.Reverse(ts)
	default:
		return fail(http.StatusBadRequest, codeBadRequest, "direction must be asc or desc")
	}
	items := []tokenJSON{}
	for _, t := range pageOf(ts, page, perPage) {
		items = append(items, e.render(t, c.now))
	}
	return okList(items, resultInfo{Page: page, PerPage: perPage, Count: len(items), TotalCount: len(ts)})
}

// pagination parses page and per_page. Out-of-range values are a 400 (code 1001, the
// emulator's choice) rather than being clamped, as the schema bounds per_page.
func pagination(pageStr, perPageStr string, defPer, minPer, maxPer int) (page, perPage int, rp *reply) {
	page, perPage = 1, defPer
	if pageStr != "" {
		n, err := strconv.Atoi(pageStr)
		if err != nil || n < 1 {
			r := fail(http.StatusBadRequest, codeBadRequest, "page must be an integer of at least 1")
			return 0, 0, &r
		}
		page = n
	}
	if perPageStr != "" {
		n, err := strconv.Atoi(perPageStr)
		if err != nil || n < minPer || n > maxPer {
			r := fail(http.StatusBadRequest, codeBadRequest,
				fmt.Sprintf("per_page must be an integer between %d and %d", minPer, maxPer))
			return 0, 0, &r
		}
		perPage = n
	}
	return page, perPage, nil
}

// pageOf returns the items of one page; past the end it is empty.
func pageOf[T any](items []T, page, perPage int) []T {
	start := (page - 1) * perPage
	if start >= len(items) || start < 0 {
		return nil
	}
	return items[start:min(start+perPage, len(items))]
}

// getToken answers GET …/tokens/{token_id}.
func (e *Emulator) getToken(c *call, s surface) reply {
	_, t, rp := e.lookup(c, s, false)
	if rp != nil {
		return *rp
	}
	return succeed(e.render(t, c.now))
}

// createToken answers POST …/tokens: validate the body, run the common permission check,
// enforce the quota, and answer the new token with its value (shown only here).
func (e *Emulator) createToken(c *call, s surface) reply {
	o, rp := e.gate(c, s, true)
	if rp != nil {
		return *rp
	}
	in, rp := e.parseTokenBody(c.r, true)
	if rp != nil {
		return *rp
	}
	if rp := e.commonPermissionCheck(o, in.policies); rp != nil {
		return *rp
	}
	if rp := e.quotaLocked(o); rp != nil {
		return *rp
	}
	t := &token{
		name: in.name, owner: o.kind, ownerID: o.id, issuedOn: c.now, modifiedOn: c.now,
		expiresOn: in.expiresOn, notBefore: in.notBefore, policies: in.policies,
		allowIn: in.allowIn, denyIn: in.denyIn,
	}
	e.insertLocked(t)
	out := e.render(t, c.now)
	out.Value = t.value
	return succeed(out)
}

// updateToken answers PUT …/tokens/{token_id}: the body replaces name, policies, dates,
// condition and (optionally) status; policies may carry their existing ids here.
func (e *Emulator) updateToken(c *call, s surface) reply {
	o, t, rp := e.lookup(c, s, true)
	if rp != nil {
		return *rp
	}
	in, rp := e.parseTokenBody(c.r, false)
	if rp != nil {
		return *rp
	}
	if rp := e.commonPermissionCheck(o, in.policies); rp != nil {
		return *rp
	}
	t.name, t.policies, t.expiresOn, t.notBefore = in.name, in.policies, in.expiresOn, in.notBefore
	t.allowIn, t.denyIn = in.allowIn, in.denyIn
	if in.status != "" {
		t.disabled = in.status == StatusDisabled
	}
	t.modifiedOn = c.now
	return succeed(e.render(t, c.now))
}

// deleteToken answers DELETE …/tokens/{token_id} with result {id}. The value stops working
// at once; a token may delete itself.
func (e *Emulator) deleteToken(c *call, s surface) reply {
	_, t, rp := e.lookup(c, s, true)
	if rp != nil {
		return *rp
	}
	e.deleteLocked(t)
	return succeed(idJSON{ID: t.id})
}

// rollToken answers PUT …/tokens/{token_id}/value: a new secret replaces the old one at
// once, and the result is the bare value string (reference/cloudflare-api.md, "Endpoints").
func (e *Emulator) rollToken(c *call, s surface) reply {
	_, t, rp := e.lookup(c, s, true)
	if rp != nil {
		return *rp
	}
	delete(e.byValue, t.value)
	t.value = newTokenValue(t.owner)
	e.byValue[t.value] = t
	t.modifiedOn = c.now
	return succeed(t.value)
}

// verifyToken answers GET /user/tokens/verify and /accounts/{account_id}/tokens/verify:
// it verifies the calling token itself, ignoring its IP condition. A token that cannot be
// verified there (invalid, or owned by someone other than the endpoint's owner: an
// account token on /user, a user token or another account's token on an account) gets
// 401 code 1000 (reference/cloudflare-api.md, "Errors and limits").
func (e *Emulator) verifyToken(c *call, s surface) reply {
	accountID := ""
	if s == surfaceAccount {
		accountID = c.r.PathValue("account_id")
		if !isHexID(accountID) {
			return badIdentifier(c.r)
		}
	}
	t, rp := e.authenticate(c, s, true)
	if rp != nil {
		return *rp
	}
	if (s == surfaceUser && t.owner != OwnerUser) ||
		(s == surfaceAccount && (t.owner != OwnerAccount || t.ownerID != accountID)) {
		return fail(http.StatusUnauthorized, codeInvalidAPIToken, messageInvalidToken)
	}
	v := verifyJSON{ID: t.id, Status: t.status(c.now)}
	if !t.notBefore.IsZero() {
		v.NotBefore = formatTime(t.notBefore)
	}
	if !t.expiresOn.IsZero() {
		v.ExpiresOn = formatTime(t.expiresOn)
	}
	rp2 := succeed(v)
	rp2.body.Messages = []apiMessage{{Code: 10000, Message: messageValidToken}}
	return rp2
}

// listPermissionGroups answers GET …/tokens/permission_groups, filtered by name (exact,
// case-insensitive) and scope. The account endpoint leaves out user-scoped groups, which an
// account-owned token cannot hold.
func (e *Emulator) listPermissionGroups(c *call, s surface) reply {
	if _, rp := e.gate(c, s, false); rp != nil {
		return *rp
	}
	q := c.r.URL.Query()
	name, scope := q.Get("name"), q.Get("scope")
	out := []permissionGroup{}
	for _, g := range e.groups {
		if s == surfaceAccount && g.hasScope(scopeUser) {
			continue
		}
		if name != "" && !strings.EqualFold(g.Name, name) {
			continue
		}
		if scope != "" && !g.hasScope(scope) {
			continue
		}
		g.Scopes = slices.Clone(g.Scopes)
		out = append(out, g)
	}
	return okList(out, resultInfo{Page: 1, PerPage: len(out), Count: len(out), TotalCount: len(out)})
}

// quotaLocked refuses a create beyond the owner's token quota (reference/cloudflare-api.md,
// "Errors and limits": 50 per user, 500 per account, expired tokens count until deleted).
// The code, 1005, and the message are the emulator's choice; the reference gives no code.
func (e *Emulator) quotaLocked(o owner) *reply {
	limit, who := e.limits.UserTokenQuota, "user"
	if o.kind == OwnerAccount {
		limit, who = e.limits.AccountTokenQuota, "account"
	}
	if limit <= 0 {
		return nil
	}
	n := 0
	for _, t := range e.tokens {
		if t.owner == o.kind && t.ownerID == o.id {
			n++
		}
	}
	if n < limit {
		return nil
	}
	rp := fail(http.StatusBadRequest, codeQuotaExceeded, fmt.Sprintf(
		"Token limit reached: a %s may have at most %d API tokens (expired tokens count until they are deleted)", who, limit))
	return &rp
}

// tokenInput is a validated create or update body.
type tokenInput struct {
	name                 string
	policies             []policy
	expiresOn, notBefore time.Time
	allowIn, denyIn      []string
	status               string
}

// Request-body wire types. Pointers and RawMessage tell "absent" from "empty".
type (
	tokenBody struct {
		Name      *string                    `json:"name"`
		Policies  *[]policyBody              `json:"policies"`
		ExpiresOn *string                    `json:"expires_on"`
		NotBefore *string                    `json:"not_before"`
		Condition map[string]json.RawMessage `json:"condition"`
		Status    *string                    `json:"status"`
	}
	policyBody struct {
		ID               json.RawMessage            `json:"id"`
		Effect           string                     `json:"effect"`
		PermissionGroups []groupRefBody             `json:"permission_groups"`
		Resources        map[string]json.RawMessage `json:"resources"`
	}
	groupRefBody struct {
		ID   string          `json:"id"`
		Meta json.RawMessage `json:"meta"`
	}
	requestIPBody struct {
		In    []string `json:"in"`
		NotIn []string `json:"not_in"`
	}
)

// badBody is a 400 with the emulator's validation code.
func badBody(format string, args ...any) *reply {
	rp := fail(http.StatusBadRequest, codeBadRequest, fmt.Sprintf(format, args...))
	return &rp
}

// decodeJSON reads a bounded JSON body into v: 400 code 6007 when it is not JSON, code 1001
// when a field has the wrong type.
func decodeJSON(r *http.Request, v any) *reply {
	data, err := io.ReadAll(io.LimitReader(r.Body, maxBodySize))
	if err != nil {
		return badBody("could not read the request body")
	}
	if len(bytes.TrimSpace(data)) == 0 {
		data = []byte("{}")
	}
	if err := json.Unmarshal(data, v); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) {
			return badBody("Invalid request body: field %q has the wrong type", typeErr.Field)
		}
		rp := fail(http.StatusBadRequest, codeMalformedJSON, messageMalformedJSON)
		return &rp
	}
	return nil
}

// parseTokenBody validates a create (create true) or update body as the real API does
// (reference/cloudflare-api.md, "Create body"; schema-supplement: iam_condition).
func (e *Emulator) parseTokenBody(r *http.Request, create bool) (tokenInput, *reply) {
	var b tokenBody
	if rp := decodeJSON(r, &b); rp != nil {
		return tokenInput{}, rp
	}
	var in tokenInput
	if b.Name == nil || strings.TrimSpace(*b.Name) == "" {
		return in, badBody("name is required")
	}
	if n := utf8.RuneCountInString(*b.Name); n > maxNameLen {
		return in, badBody("name must be at most %d characters, got %d", maxNameLen, n)
	}
	in.name = *b.Name
	if b.Policies == nil {
		return in, badBody("policies is required")
	}
	if len(*b.Policies) == 0 {
		return in, badBody("policies must contain at least one policy")
	}
	for i, pb := range *b.Policies {
		p, rp := e.parsePolicy(i, pb, create)
		if rp != nil {
			return in, rp
		}
		in.policies = append(in.policies, p)
	}
	var err error
	if in.expiresOn, err = parseDate(b.ExpiresOn); err != nil {
		return in, badBody("expires_on must be an RFC 3339 date-time, like 2026-11-27T20:00:00Z")
	}
	if in.notBefore, err = parseDate(b.NotBefore); err != nil {
		return in, badBody("not_before must be an RFC 3339 date-time, like 2026-11-27T20:00:00Z")
	}
	if rp := parseCondition(b.Condition, &in); rp != nil {
		return in, rp
	}
	if b.Status != nil && !create {
		switch *b.Status {
		case StatusActive, StatusDisabled, StatusExpired:
			in.status = *b.Status
		default:
			return in, badBody("status must be active or disabled")
		}
	}
	return in, nil
}

// parsePolicy validates policies[i].
func (e *Emulator) parsePolicy(i int, pb policyBody, create bool) (policy, *reply) {
	p := policy{id: newHexID(), effect: pb.Effect}
	if id := bytes.TrimSpace(pb.ID); len(id) > 0 && string(id) != "null" {
		if create {
			// reference/cloudflare-api.md, "Create body".
			return p, badBody("Reusing existing policies is not supported by token creation")
		}
		var s string
		if json.Unmarshal(id, &s) == nil && isHexID(s) {
			p.id = s
		}
	}
	if pb.Effect != "allow" && pb.Effect != "deny" {
		return p, badBody("policies[%d].effect must be allow or deny", i)
	}
	if len(pb.PermissionGroups) == 0 {
		return p, badBody("policies[%d].permission_groups must not be empty", i)
	}
	for _, g := range pb.PermissionGroups {
		if _, ok := e.groupIdx[g.ID]; !ok {
			return p, badBody("policies[%d]: unknown permission group id %q", i, g.ID)
		}
		if !slices.Contains(p.groups, g.ID) {
			p.groups = append(p.groups, g.ID)
		}
	}
	if len(pb.Resources) == 0 {
		return p, badBody("policies[%d].resources must not be empty", i)
	}
	for key, raw := range pb.Resources {
		var s string
		if json.Unmarshal(raw, &s) == nil {
			if s != "*" {
				return p, badBody("policies[%d].resources[%q] must be \"*\" or an object", i, key)
			}
			if p.flat == nil {
				p.flat = map[string]string{}
			}
			p.flat[key] = s
			continue
		}
		var m map[string]string
		if json.Unmarshal(raw, &m) != nil || len(m) == 0 {
			return p, badBody("policies[%d].resources[%q] must be \"*\" or an object", i, key)
		}
		for k, v := range m {
			if v != "*" {
				return p, badBody("policies[%d].resources[%q][%q] must be \"*\"", i, key, k)
			}
		}
		if p.nested == nil {
			p.nested = map[string]map[string]string{}
		}
		p.nested[key] = m
	}
	return p, nil
}

// parseDate parses an optional RFC 3339 date, kept in whole seconds, UTC.
func parseDate(s *string) (time.Time, error) {
	if s == nil {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339, *s)
	if err != nil {
		return time.Time{}, err
	}
	return truncate(t), nil
}

// parseCondition accepts the IP condition under either spelling, "request_ip" (current)
// or "request.ip" (2024 schema, how-to guide), and refuses any other key: a misspelt key
// would otherwise silently drop the restriction (reference/cloudflare-api.md, "Create
// body"; schema-supplement iam_condition, additionalProperties false).
func parseCondition(cond map[string]json.RawMessage, in *tokenInput) *reply {
	if len(cond) > 1 {
		return badBody("condition must hold exactly one of request_ip or request.ip")
	}
	for key, raw := range cond {
		if key != "request_ip" && key != "request.ip" {
			return badBody("condition: unknown key %q (accepted: request_ip, request.ip)", key)
		}
		var fields map[string]json.RawMessage
		if json.Unmarshal(raw, &fields) != nil {
			return badBody("condition.%s must be an object with in and not_in", key)
		}
		for f := range fields {
			if f != "in" && f != "not_in" {
				return badBody("condition.%s: unknown key %q (accepted: in, not_in)", key, f)
			}
		}
		var rip requestIPBody
		if json.Unmarshal(raw, &rip) != nil {
			return badBody("condition.%s.in and not_in must be lists of CIDRs", key)
		}
		for _, list := range [][]string{rip.In, rip.NotIn} {
			for _, c := range list {
				if _, err := parseCIDR(c); err != nil {
					return badBody("condition.%s: %q is not an IPv4/IPv6 CIDR", key, c)
				}
			}
		}
		in.allowIn, in.denyIn = rip.In, rip.NotIn
	}
	return nil
}

// commonPermissionCheck refuses a token its owner could not hold, with Cloudflare's 400
// code 1001 "Failed common permission check against resources. (Permission group: "…")"
// (reference/cloudflare-api.md, "Errors and limits"). A user-owned token may name
// user-scoped groups only on com.cloudflare.api.user.<its user> and account or zone groups
// only on accounts its user is a member of; an account-owned token only its own account.
// The emulator knows no zones, so a zone resource may only be a wildcard.
func (e *Emulator) commonPermissionCheck(o owner, pols []policy) *reply {
	for _, p := range pols {
		for _, g := range p.groups {
			pg := e.groupIdx[g]
			good := true
			for key := range p.flat {
				good = good && e.grantable(o, pg, key)
			}
			for key, inner := range p.nested {
				good = good && strings.HasPrefix(key, resAccountPrefix) && !strings.HasPrefix(key, resZonePrefix) &&
					e.grantable(o, pg, key)
				for ik := range inner {
					good = good && strings.HasPrefix(ik, resZonePrefix) && e.grantable(o, pg, ik)
				}
			}
			if !good {
				return badBody("Failed common permission check against resources. (Permission group: %q)", pg.Name)
			}
		}
	}
	return nil
}

// grantable reports whether owner o may hold group pg on resource key.
func (e *Emulator) grantable(o owner, pg permissionGroup, key string) bool {
	switch {
	case strings.HasPrefix(key, resUserPrefix):
		rest := strings.TrimPrefix(key, resUserPrefix)
		return pg.hasScope(scopeUser) && o.kind == OwnerUser && (rest == o.id || rest == "*")
	case strings.HasPrefix(key, resZonePrefix):
		return pg.hasScope(scopeZone) && strings.TrimPrefix(key, resZonePrefix) == "*" && e.hasAnyAccount(o)
	case strings.HasPrefix(key, resAccountPrefix):
		if !pg.hasScope(scopeAccount) && !pg.hasScope(scopeZone) {
			return false
		}
		id := strings.TrimPrefix(key, resAccountPrefix)
		if id == "*" {
			return e.hasAnyAccount(o)
		}
		if o.kind == OwnerAccount {
			return id == o.id
		}
		u, ok := e.users[o.id]
		_, exists := e.accounts[id]
		return ok && exists && u.accounts[id]
	default:
		return false
	}
}

// hasAnyAccount reports whether o owns or is a member of at least one account.
func (e *Emulator) hasAnyAccount(o owner) bool {
	if o.kind == OwnerAccount {
		return true
	}
	u, ok := e.users[o.id]
	return ok && len(u.accounts) > 0
}
