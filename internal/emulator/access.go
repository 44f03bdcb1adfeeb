package emulator

import (
	"maps"
	"net/http"
	"time"
)

// Access endpoints under /accounts/{account_id}/access/…, with in-memory state. What the
// emulator is strict about is enforcement: each call needs the account-scoped Access group
// of its area on com.cloudflare.api.account.<id> (Write implies Read), the token must be
// valid, unexpired, used from an allowed address and not revoked, and the account must be
// one the token's owner can reach. Failures answer as the token endpoints do (see
// authenticate): 403 code 10000 "Authentication error" for a missing permission. Object
// bodies are kept as JSON objects with Cloudflare's field names; validation is limited to
// the required fields.

// area is a set of Access endpoints guarded by one pair of permission groups.
type area struct{ read, write string }

// The three Access areas and the groups that guard them.
func areaOrgs() area { return area{groupAccessOrgsRead, groupAccessOrgsWrite} } // organizations, identity providers, groups
func areaApps() area { return area{groupAccessAppsRead, groupAccessAppsWrite} } // apps, app policies, reusable policies
func areaServiceTokens() area {
	return area{groupAccessServiceTokensRead, groupAccessServiceTokensWrite}
} // service tokens

// groupsFor returns the groups that allow a call: Read or Write to read, Write to change.
func (a area) groupsFor(write bool) []string {
	if write {
		return []string{a.write}
	}
	return []string{a.read, a.write}
}

// accessKind describes one Access collection.
type accessKind struct {
	path     string // under /accounts/{account_id}/access/
	idParam  string // the item's path wildcard
	area     area
	underApp bool // lives under apps/{app_id}
	// validate checks a create or update body; it returns an error message or "".
	validate func(obj map[string]any) string
	// decorate fills server-side fields on create. It may return fields shown only in the
	// create answer (a service token's client_secret).
	decorate func(obj map[string]any, now time.Time, count int) (once map[string]any, problem string)
}

// accessKinds lists the Access collections the emulator serves.
func accessKinds() []accessKind {
	named := func(obj map[string]any) string {
		if s, _ := obj["name"].(string); s == "" {
			return "name is required"
		}
		return ""
	}
	withInclude := func(obj map[string]any) string {
		if p := named(obj); p != "" {
			return p
		}
		if inc, _ := obj["include"].([]any); len(inc) == 0 {
			return "include must contain at least one rule"
		}
		return ""
	}
	policy := func(obj map[string]any) string {
		if p := withInclude(obj); p != "" {
			return p
		}
		switch obj["decision"] {
		case "allow", "deny", "non_identity", "bypass":
			return ""
		}
		return "decision must be one of allow, deny, non_identity, bypass"
	}
	return []accessKind{
		{path: "identity_providers", idParam: "identity_provider_id", area: areaOrgs(),
			validate: func(obj map[string]any) string {
				if p := named(obj); p != "" {
					return p
				}
				if s, _ := obj["type"].(string); s == "" {
					return "type is required"
				}
				return ""
			},
			decorate: func(obj map[string]any, _ time.Time, _ int) (map[string]any, string) {
				if _, ok := obj["config"]; !ok {
					obj["config"] = map[string]any{}
				}
				return nil, ""
			}},
		{path: "groups", idParam: "group_id", area: areaOrgs(), validate: withInclude},
		{path: "apps", idParam: "app_id", area: areaApps(),
			validate: func(obj map[string]any) string {
				typ, _ := obj["type"].(string)
				dom, _ := obj["domain"].(string)
				if (typ == "" || typ == "self_hosted") && dom == "" {
					return "domain is required for self_hosted applications"
				}
				return ""
			},
			decorate: func(obj map[string]any, _ time.Time, _ int) (map[string]any, string) {
				setDefault(obj, "type", "self_hosted")
				setDefault(obj, "session_duration", "24h")
				obj["aud"] = randomHex(32)
				return nil, ""
			}},
		{path: "apps/{app_id}/policies", idParam: "policy_id", area: areaApps(), underApp: true, validate: policy,
			decorate: func(obj map[string]any, _ time.Time, count int) (map[string]any, string) {
				setDefault(obj, "precedence", count+1)
				return nil, ""
			}},
		{path: "policies", idParam: "policy_id", area: areaApps(), validate: policy,
			decorate: func(obj map[string]any, _ time.Time, _ int) (map[string]any, string) {
				obj["reusable"] = true
				obj["app_count"] = 0
				return nil, ""
			}},
		{path: "service_tokens", idParam: "service_token_id", area: areaServiceTokens(), validate: named,
			decorate: func(obj map[string]any, now time.Time, _ int) (map[string]any, string) {
				setDefault(obj, "duration", "8760h")
				ds, _ := obj["duration"].(string)
				d, err := time.ParseDuration(ds)
				if err != nil || d <= 0 {
					return nil, "duration must be a positive duration such as 8760h"
				}
				obj["client_id"] = randomHex(16) + ".access"
				obj["expires_at"] = formatTime(now.Add(d))
				return map[string]any{"client_secret": randomHex(32)}, ""
			}},
	}
}

func setDefault(obj map[string]any, key string, v any) {
	if _, ok := obj[key]; !ok {
		obj[key] = v
	}
}

// accessStore is one account's Access state.
type accessStore struct {
	org   map[string]any
	colls map[string]*collection // by kind path, or "apps/<app id>/policies"
}

// collection keeps objects in creation order.
type collection struct {
	order []string
	items map[string]map[string]any
}

func newAccessStore(accountID, name string, now time.Time) *accessStore {
	ts := formatTime(now)
	return &accessStore{
		org: map[string]any{
			"name": name, "auth_domain": accountID[:min(8, len(accountID))] + ".cloudflareaccess.com",
			"is_ui_read_only": false, "session_duration": "24h", "user_seat_expiration_inactive_time": "",
			"login_design": map[string]any{}, "created_at": ts, "updated_at": ts,
		},
		colls: map[string]*collection{},
	}
}

// coll returns (creating if needed) the collection under key.
func (s *accessStore) coll(key string) *collection {
	c, ok := s.colls[key]
	if !ok {
		c = &collection{items: map[string]map[string]any{}}
		s.colls[key] = c
	}
	return c
}

func (c *collection) remove(id string) {
	delete(c.items, id)
	for i, x := range c.order {
		if x == id {
			c.order = append(c.order[:i], c.order[i+1:]...)
			break
		}
	}
}

// accessGate authorizes an Access call and returns the account's store.
func (e *Emulator) accessGate(c *call, a area, write bool) (*accessStore, *reply) {
	id, rp := e.authorizeAccount(c, a.groupsFor(write)...)
	if rp != nil {
		return nil, rp
	}
	return e.accounts[id].access, nil
}

// collectionFor finds the collection of kind k for the request; for app policies the app
// must exist (else 404 code 1003).
func (e *Emulator) collectionFor(c *call, s *accessStore, k accessKind) (*collection, *reply) {
	if !k.underApp {
		return s.coll(k.path), nil
	}
	appID := c.r.PathValue("app_id")
	if _, ok := s.coll("apps").items[appID]; !ok {
		rp := fail(http.StatusNotFound, codeNotFound, messageNotFound)
		return nil, &rp
	}
	return s.coll("apps/" + appID + "/policies"), nil
}

// accessCollection passes the gate of the kind's Access area (read or
// write) and returns the account's store and the kind's collection.
func (e *Emulator) accessCollection(c *call, k accessKind, write bool) (*accessStore, *collection, *reply) {
	s, rp := e.accessGate(c, k.area, write)
	if rp != nil {
		return nil, nil, rp
	}
	col, rp := e.collectionFor(c, s, k)
	return s, col, rp
}

// accessList answers GET …/access/<kind>, paginated like other v4 lists (page default 1,
// per_page default 25, 1…1000; empty past the end).
func (e *Emulator) accessList(k accessKind) handler {
	return func(c *call) reply {
		_, col, rp := e.accessCollection(c, k, false)
		if rp != nil {
			return *rp
		}
		q := c.r.URL.Query()
		page, perPage, rp := pagination(q.Get("page"), q.Get("per_page"), 25, 1, 1000)
		if rp != nil {
			return *rp
		}
		items := []map[string]any{}
		for _, id := range pageOf(col.order, page, perPage) {
			items = append(items, maps.Clone(col.items[id]))
		}
		return okList(items, resultInfo{Page: page, PerPage: perPage, Count: len(items), TotalCount: len(col.order)})
	}
}

// accessGet answers GET …/access/<kind>/{id}.
func (e *Emulator) accessGet(k accessKind) handler {
	return func(c *call) reply {
		_, col, rp := e.accessCollection(c, k, false)
		if rp != nil {
			return *rp
		}
		obj, ok := col.items[c.r.PathValue(k.idParam)]
		if !ok {
			return fail(http.StatusNotFound, codeNotFound, messageNotFound)
		}
		return succeed(maps.Clone(obj))
	}
}

// accessCreate answers POST …/access/<kind>: a new object with a UUID id and timestamps.
func (e *Emulator) accessCreate(k accessKind) handler {
	return func(c *call) reply {
		_, col, rp := e.accessCollection(c, k, true)
		if rp != nil {
			return *rp
		}
		obj := map[string]any{}
		if rp := decodeJSON(c.r, &obj); rp != nil {
			return *rp
		}
		if p := k.validate(obj); p != "" {
			return *badBody("%s", p)
		}
		var once map[string]any
		if k.decorate != nil {
			var p string
			if once, p = k.decorate(obj, c.now, len(col.order)); p != "" {
				return *badBody("%s", p)
			}
		}
		id := newUUID()
		obj["id"] = id
		obj["created_at"] = formatTime(c.now)
		obj["updated_at"] = formatTime(c.now)
		col.items[id] = obj
		col.order = append(col.order, id)
		out := maps.Clone(obj)
		maps.Copy(out, once)
		return succeed(out)
	}
}

// accessUpdate answers PUT …/access/<kind>/{id}: the body replaces the object's fields;
// id, created_at and server-generated secrets stay.
func (e *Emulator) accessUpdate(k accessKind) handler {
	return func(c *call) reply {
		_, col, rp := e.accessCollection(c, k, true)
		if rp != nil {
			return *rp
		}
		id := c.r.PathValue(k.idParam)
		old, ok := col.items[id]
		if !ok {
			return fail(http.StatusNotFound, codeNotFound, messageNotFound)
		}
		obj := map[string]any{}
		if rp := decodeJSON(c.r, &obj); rp != nil {
			return *rp
		}
		if p := k.validate(obj); p != "" {
			return *badBody("%s", p)
		}
		for _, keep := range []string{"id", "created_at", "aud", "client_id", "expires_at", "reusable", "app_count"} {
			if v, ok := old[keep]; ok {
				obj[keep] = v
			}
		}
		obj["updated_at"] = formatTime(c.now)
		col.items[id] = obj
		return succeed(maps.Clone(obj))
	}
}

// accessDelete answers DELETE …/access/<kind>/{id} with result {id}. Deleting an app
// deletes its policies.
func (e *Emulator) accessDelete(k accessKind) handler {
	return func(c *call) reply {
		s, col, rp := e.accessCollection(c, k, true)
		if rp != nil {
			return *rp
		}
		id := c.r.PathValue(k.idParam)
		if _, ok := col.items[id]; !ok {
			return fail(http.StatusNotFound, codeNotFound, messageNotFound)
		}
		col.remove(id)
		if k.path == "apps" {
			delete(s.colls, "apps/"+id+"/policies")
		}
		return succeed(idJSON{ID: id})
	}
}

// getOrganization answers GET /accounts/{account_id}/access/organizations.
func (e *Emulator) getOrganization(c *call) reply {
	s, rp := e.accessGate(c, areaOrgs(), false)
	if rp != nil {
		return *rp
	}
	return succeed(maps.Clone(s.org))
}

// updateOrganization answers PUT /accounts/{account_id}/access/organizations: the body's
// fields are merged into the organization.
func (e *Emulator) updateOrganization(c *call) reply {
	s, rp := e.accessGate(c, areaOrgs(), true)
	if rp != nil {
		return *rp
	}
	body := map[string]any{}
	if rp := decodeJSON(c.r, &body); rp != nil {
		return *rp
	}
	if v, present := body["name"]; present {
		if n, _ := v.(string); n == "" {
			return *badBody("name must not be empty")
		}
	}
	delete(body, "created_at")
	maps.Copy(s.org, body)
	s.org["updated_at"] = formatTime(c.now)
	return succeed(maps.Clone(s.org))
}
