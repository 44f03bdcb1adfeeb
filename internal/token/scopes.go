package token

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"unicode/utf8"
)

// Scope is one item of the scopes input: a permission group base name at a
// level, or a permission group id used as given.
type Scope struct {
	Name  string // base name, shorthand expanded; empty for an id
	Level Level  // empty for an id
	ID    string // 32-hex permission group id, used as given
}

// GroupName is the full permission group name the scope resolves to.
func (s Scope) GroupName() string {
	if s.ID != "" {
		return s.ID
	}
	return s.Name + " " + s.Level.title()
}

// String is the scope as an item of the scopes input would spell it;
// ParseScopes reads it back to the same Scope.
func (s Scope) String() string {
	if s.ID != "" {
		return s.ID
	}
	name := s.Name
	if strings.ContainsAny(name, ",\n") {
		name = `"` + name + `"`
	}
	return name + ":" + string(s.Level)
}

// FormatScopes writes scopes as the scopes input, one per line.
func FormatScopes(scopes []Scope) string {
	items := make([]string, len(scopes))
	for i, s := range scopes {
		items[i] = s.String()
	}
	return strings.Join(items, "\n")
}

// shorthands maps each scope shorthand to its permission group base name
// (SPEC, scope shorthands).
var shorthands = map[string]string{
	"organizations":     "Access: Organizations, Identity Providers, and Groups",
	"apps-and-policies": "Access: Apps and Policies",
	"service-tokens":    "Access: Service Tokens",
	"device-posture":    "Access: Device Posture",
	"custom-pages":      "Access: Custom Pages",
	"mutual-tls":        "Access: Mutual TLS Certificates",
	"ssh-auditing":      "Access: SSH Auditing",
	"audit-logs":        "Access: Audit Logs",
	"population":        "Access: Population",
	"policy-test":       "Access: Policy Test",
}

// IsShorthand reports whether s is a scope shorthand (in any case).
func IsShorthand(s string) bool {
	_, ok := shorthands[strings.ToLower(s)]
	return ok
}

// shorthandNames lists the shorthands in the order SPEC gives them, for
// messages.
var shorthandNames = []string{"organizations", "apps-and-policies", "service-tokens", "device-posture",
	"custom-pages", "mutual-tls", "ssh-auditing", "audit-logs", "population", "policy-test"}

// readOnly are base names (lower case) Cloudflare offers only at the read
// level.
var readOnly = map[string]bool{"access: audit logs": true}

var scopesAccepted = "items separated by commas or newlines, each a shorthand (" + strings.Join(shorthandNames, ", ") +
	") or an account permission group's base name such as \"Access: Apps and Policies\", optionally followed by :read, :write or :revoke (where Cloudflare has a Revoke group), or a permission group's 32-hex id; quote a name that holds a comma"

// ParseScopes reads the scopes input. Items are separated by commas or
// newlines (a comma inside double quotes does not separate: Cloudflare's
// names can hold commas); an item without a level gets def.
func ParseScopes(s string, def Level) ([]Scope, error) {
	items, err := splitScopes(s)
	if err != nil {
		return nil, err
	}
	if len(items) == 0 {
		return nil, inputErrorf("scopes", scopesAccepted, "is empty")
	}
	if len(items) > maxListItems {
		return nil, inputErrorf("scopes", scopesAccepted, "lists %d items, more than %d", len(items), maxListItems)
	}
	var scopes []Scope
	for _, item := range items {
		sc, err := parseScope(item, def)
		if err != nil {
			return nil, err
		}
		if !slices.Contains(scopes, sc) {
			scopes = append(scopes, sc)
		}
	}
	return scopes, nil
}

// splitScopes splits on commas and newlines outside double quotes and
// removes the quotes.
func splitScopes(s string) ([]string, error) {
	var items []string
	var cur strings.Builder
	quoted := false
	flush := func() {
		if item := strings.TrimSpace(cur.String()); item != "" {
			items = append(items, item)
		}
		cur.Reset()
	}
	for _, r := range s {
		switch {
		case r == '"':
			quoted = !quoted
			cur.WriteRune(r)
		case (r == ',' || r == '\n' || r == '\r') && !quoted:
			flush()
		case (r == '\n' || r == '\r') && quoted:
			// \r ends a line too (CRLF input); kept inside a name it split
			// the item when Scope.String wrote it back (found by FuzzParseScopes).
			return nil, inputErrorf("scopes", scopesAccepted, "a quote is not closed on its line")
		default:
			cur.WriteRune(r)
		}
	}
	if quoted {
		return nil, inputErrorf("scopes", scopesAccepted, "a quote is not closed")
	}
	flush()
	return items, nil
}

func parseScope(item string, def Level) (Scope, error) {
	name, level := item, Level("")
	// NAME:LEVEL splits at the last colon, and only when a level follows:
	// names themselves hold colons ("Access: Apps and Policies").
	if i := strings.LastIndex(item, ":"); i >= 0 && !inQuotes(item, i) {
		switch l := Level(strings.ToLower(strings.TrimSpace(item[i+1:]))); l {
		case Read, Write, Revoke:
			name, level = strings.TrimSpace(item[:i]), l
		default:
			if !strings.HasPrefix(item[i+1:], " ") {
				return Scope{}, inputErrorf("scopes", scopesAccepted, "%q has the level %q; a level is read, write or revoke", clip(item), clip(item[i+1:]))
			}
		}
	}
	name = unquote(name)
	if strings.Contains(name, `"`) {
		return Scope{}, inputErrorf("scopes", scopesAccepted, "%q has a stray quote", clip(item))
	}
	if name == "" {
		return Scope{}, inputErrorf("scopes", scopesAccepted, "%q has no name", clip(item))
	}
	// A full group name ("DNS Read") is read as base name and level. This
	// comes first, and repeats, so that what is left is the bare name the
	// id and shorthand checks below expect: otherwise "organizations read"
	// kept the shorthand unexpanded, "<id> read" became a name, and
	// "x read read" a name ending in a level, none of which reads back the
	// same from Scope.String (found by FuzzParseScopes).
	for {
		base, l, ok := cutLevelSuffix(name)
		if !ok || base == "" {
			break
		}
		if level != "" && level != l {
			return Scope{}, inputErrorf("scopes", scopesAccepted, "%q names the level twice, %s and %s", clip(item), l, level)
		}
		name, level = base, l
	}
	if IsHexID(strings.ToLower(name)) && !IsHexID(name) {
		return Scope{}, inputErrorf("scopes", scopesAccepted, "%q looks like a permission group id, but ids are lower-case hex", clip(item))
	}
	if IsHexID(name) {
		if level != "" {
			return Scope{}, inputErrorf("scopes", scopesAccepted, "%q: a permission group id is used as given and takes no level", clip(item))
		}
		return Scope{ID: name}, nil
	}
	if base, ok := shorthands[strings.ToLower(name)]; ok {
		name = base
	} else if near := nearShorthand(name); near != "" {
		return Scope{}, inputErrorf("scopes", scopesAccepted, "%q is not a shorthand; did you mean %s?", clip(item), near)
	}
	if ManagesTokens(name) {
		return Scope{}, inputErrorf("scopes", scopesAccepted, "%q would let the child make tokens of its own that outlive the job; no group that reads or manages API tokens is granted", clip(item))
	}
	if level == "" {
		level = def
	}
	if level == Write && readOnly[strings.ToLower(name)] {
		return Scope{}, inputErrorf("scopes", scopesAccepted, "%q: %s is read-only, there is no write level", clip(item), name)
	}
	return Scope{Name: name, Level: level}, nil
}

// nearShorthand returns the shorthand a misspelt one most likely meant
// ("organisations" → "organizations"), or "". Only words shaped like a
// shorthand (lower case letters and hyphens) are considered: a group's
// base name ("DNS", "Access: Apps and Policies") is never one.
func nearShorthand(name string) string {
	if name == "" || strings.Trim(name, "abcdefghijklmnopqrstuvwxyz-") != "" {
		return ""
	}
	best, bestDist := "", 0
	for _, sh := range shorthandNames {
		if d := levenshtein(name, sh); d <= max(2, len(sh)/4) && (best == "" || d < bestDist) {
			best, bestDist = sh, d
		}
	}
	return best
}

func cutLevelSuffix(name string) (string, Level, bool) {
	lower := strings.ToLower(name)
	for _, l := range []Level{Read, Write, Revoke} {
		if suffix := " " + string(l); strings.HasSuffix(lower, suffix) {
			return strings.TrimSpace(name[:len(name)-len(suffix)]), l, true
		}
	}
	return "", "", false
}

func inQuotes(s string, i int) bool { return strings.Count(s[:i], `"`)%2 == 1 }

func unquote(s string) string {
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		return strings.TrimSpace(s[1 : len(s)-1])
	}
	return s
}

// Resolve turns scopes into permission groups from the live list the API
// returned. Names resolve case-insensitively and only to account-scoped
// groups: a zone-scoped twin of the same name has another id and would
// grant nothing on an account. A name that does not resolve is an input
// error naming the closest existing groups. An id must be one of the list's
// (only then is its name known, and with it whether it manages tokens).
// No group that reads or manages API tokens is ever returned.
func Resolve(scopes []Scope, groups []PermissionGroup) ([]PermissionGroup, error) {
	var out []PermissionGroup
	for _, sc := range scopes {
		g, err := resolveOne(sc, groups)
		if err != nil {
			return nil, err
		}
		if ManagesTokens(g.Name) {
			return nil, inputErrorf("scopes", scopesAccepted, "%s is %q, which would let the child make tokens of its own that outlive the job; no group that reads or manages API tokens is granted", sc, g.Name)
		}
		if !slices.ContainsFunc(out, func(o PermissionGroup) bool { return o.ID == g.ID }) {
			out = append(out, g)
		}
	}
	return out, nil
}

func resolveOne(sc Scope, groups []PermissionGroup) (PermissionGroup, error) {
	if sc.ID != "" {
		for _, g := range groups {
			if g.ID == sc.ID {
				return g, nil
			}
		}
		return PermissionGroup{}, inputErrorf("scopes", "permission group ids from the API's list (GET …/tokens/permission_groups) that the parent token may grant",
			"%s is not the id of any permission group the API lists", sc.ID)
	}
	want := sc.GroupName()
	var otherScope []string // scopes of same-named groups that do not act on accounts
	for _, g := range groups {
		if !strings.EqualFold(g.Name, want) {
			continue
		}
		if g.hasScope(AccountScope) {
			return g, nil
		}
		otherScope = append(otherScope, g.Scopes...)
	}
	switch {
	case len(otherScope) > 0:
		return PermissionGroup{}, inputErrorf("scopes", "account permission groups: the token's policy grants them on the listed accounts",
			"%q exists only with scope %s, not %s", want, quoteAll(otherScope), AccountScope)
	case sc.Level == Revoke:
		return PermissionGroup{}, inputErrorf("scopes", scopesAccepted, "%q has no revoke level: Cloudflare has no group %q", shownName(sc.Name), want)
	}
	problem := fmt.Sprintf("%q matches no account permission group", shownName(want))
	if near := Closest(want, groups, 3); len(near) > 0 {
		problem += "; closest: " + quoteAll(near)
	}
	return PermissionGroup{}, &InputError{Input: "scopes", Problem: problem, Accepted: scopesAccepted}
}

// shownName is how a name that did not resolve appears in the error: in
// full when it could be a group name, else through clip, which shortens it
// and hides an API token pasted into the scopes input (ParseScopes takes
// any text as a name; only here does it meet the list).
func shownName(name string) string {
	if utf8.RuneCountInString(name) <= 100 && !LooksLikeSecret(name) {
		return name
	}
	return clip(name)
}

func quoteAll(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = fmt.Sprintf("%q", n)
	}
	return strings.Join(q, ", ")
}

// Closest returns up to n account-scoped group names nearest to name:
// names that contain it (or that it contains) first, then by edit distance,
// within a distance that still looks like a typo.
func Closest(name string, groups []PermissionGroup, n int) []string {
	type cand struct {
		name string
		dist int
	}
	want := strings.ToLower(name)
	var cands []cand
	seen := map[string]bool{}
	for _, g := range groups {
		if _, _, selectable := cutLevelSuffix(g.Name); !selectable || !g.hasScope(AccountScope) || seen[g.Name] || ManagesTokens(g.Name) {
			continue // only names a scope item can ask for
		}
		seen[g.Name] = true
		have := strings.ToLower(g.Name)
		d := levenshtein(want, have)
		if strings.Contains(have, want) || strings.Contains(want, have) {
			d = 0
		}
		if d <= max(3, len(want)/3) {
			cands = append(cands, cand{g.Name, d})
		}
	}
	sort.Slice(cands, func(i, j int) bool {
		if cands[i].dist != cands[j].dist {
			return cands[i].dist < cands[j].dist
		}
		return cands[i].name < cands[j].name
	})
	var out []string
	for i := 0; i < len(cands) && i < n; i++ {
		out = append(out, cands[i].name)
	}
	return out
}

// levenshtein is the edit distance between a and b, in bytes: names are
// ASCII, and bytes keep it allocation-light.
func levenshtein(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
