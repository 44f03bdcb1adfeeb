package token

import (
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// Base names of the shorthands (SPEC, scope shorthands).
const (
	orgs     = "Access: Organizations, Identity Providers, and Groups"
	apps     = "Access: Apps and Policies"
	groupID  = "7ea222f6d5064cfa89ea366d7c1fee89"
	groupID2 = "26bc23f853634eb4bff59983b9064fde"
)

func TestParseScopes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		def  Level
		want []Scope
	}{
		{"organizations", "organizations", Read, []Scope{{Name: orgs, Level: Read}}},
		{"apps-and-policies", "apps-and-policies", Read, []Scope{{Name: apps, Level: Read}}},
		{"service-tokens", "service-tokens", Read, []Scope{{Name: "Access: Service Tokens", Level: Read}}},
		{"device-posture", "device-posture", Read, []Scope{{Name: "Access: Device Posture", Level: Read}}},
		{"custom-pages", "custom-pages", Read, []Scope{{Name: "Access: Custom Pages", Level: Read}}},
		{"mutual-tls", "mutual-tls", Read, []Scope{{Name: "Access: Mutual TLS Certificates", Level: Read}}},
		{"ssh-auditing", "ssh-auditing", Read, []Scope{{Name: "Access: SSH Auditing", Level: Read}}},
		{"audit-logs", "audit-logs", Read, []Scope{{Name: "Access: Audit Logs", Level: Read}}},
		{"audit-logs:read", "audit-logs:read", Write, []Scope{{Name: "Access: Audit Logs", Level: Read}}},
		{"shorthand any case", "Apps-And-Policies", Read, []Scope{{Name: apps, Level: Read}}},
		{"default level write", "organizations", Write, []Scope{{Name: orgs, Level: Write}}},
		{"level overrides permission", "organizations:write", Read, []Scope{{Name: orgs, Level: Write}}},
		{"level read overrides write", "organizations:read", Write, []Scope{{Name: orgs, Level: Read}}},
		{"level any case", "organizations:WRITE", Read, []Scope{{Name: orgs, Level: Write}}},
		{"level with spaces", "organizations : Write ", Read, []Scope{{Name: orgs, Level: Write}}},
		{"base name with a colon", "Access: Apps and Policies", Read, []Scope{{Name: apps, Level: Read}}},
		{"base name with a colon and a level", "Access: Apps and Policies:write", Read, []Scope{{Name: apps, Level: Write}}},
		{"base name quoted with a level", `"Access: Apps and Policies":write`, Read, []Scope{{Name: apps, Level: Write}}},
		{"quoted name with commas", `"Access: Organizations, Identity Providers, and Groups":write`, Read, []Scope{{Name: orgs, Level: Write}}},
		{"quoted name with commas, no level", `"Access: Organizations, Identity Providers, and Groups"`, Write, []Scope{{Name: orgs, Level: Write}}},
		{"quoted name and others", `"Access: Organizations, Identity Providers, and Groups":read, apps-and-policies:write`, Read,
			[]Scope{{Name: orgs, Level: Read}, {Name: apps, Level: Write}}},
		{"full group name", "DNS Read", Write, []Scope{{Name: "DNS", Level: Read}}},
		{"full group name write", "Access: Apps and Policies Write", Read, []Scope{{Name: apps, Level: Write}}},
		{"full group name with the same level", "DNS Write:write", Read, []Scope{{Name: "DNS", Level: Write}}},
		{"full group name lower case", "dns write", Read, []Scope{{Name: "dns", Level: Write}}},
		{"any base name", "DNS", Read, []Scope{{Name: "DNS", Level: Read}}},
		{"shorthand with a level word", "organizations read", Write, []Scope{{Name: orgs, Level: Read}}},
		{"shorthand with a level word, any case", "Apps-and-Policies WRITE", Read, []Scope{{Name: apps, Level: Write}}},
		{"level word twice", "DNS Read read", Write, []Scope{{Name: "DNS", Level: Read}}},
		{"any base name with level", "Workers Scripts:write", Read, []Scope{{Name: "Workers Scripts", Level: Write}}},
		{"group id", groupID, Write, []Scope{{ID: groupID}}},
		{"group ids and names", groupID + "\n" + "organizations\n" + groupID2, Read,
			[]Scope{{ID: groupID}, {Name: orgs, Level: Read}, {ID: groupID2}}},
		{"newlines", "organizations\napps-and-policies:write\r\nservice-tokens\n", Read,
			[]Scope{{Name: orgs, Level: Read}, {Name: apps, Level: Write}, {Name: "Access: Service Tokens", Level: Read}}},
		{"commas and empty items", ",organizations,,apps-and-policies,", Read,
			[]Scope{{Name: orgs, Level: Read}, {Name: apps, Level: Read}}},
		{"order kept", "ssh-auditing, organizations", Read,
			[]Scope{{Name: "Access: SSH Auditing", Level: Read}, {Name: orgs, Level: Read}}},
		{"duplicates collapse", "organizations, organizations:read, Organizations, \"" + orgs + " Read\", " + `"` + orgs + `"`, Read,
			[]Scope{{Name: orgs, Level: Read}}},
		{"same name at two levels stays two", "organizations:read, organizations:write", Read,
			[]Scope{{Name: orgs, Level: Read}, {Name: orgs, Level: Write}}},
		{"duplicate ids collapse", groupID + "," + groupID, Read, []Scope{{ID: groupID}}},
		{"name with a colon but no level", "Access: Custom Pages", Read, []Scope{{Name: "Access: Custom Pages", Level: Read}}},
		{"100 items", strings.TrimSuffix(strings.Repeat("organizations,", 100), ","), Read, []Scope{{Name: orgs, Level: Read}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseScopes(tc.in, tc.def)
			mustNoError(t, err)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("ParseScopes(%q, %s) (-want +got):\n%s", tc.in, tc.def, diff)
			}
		})
	}

	rejects := []struct{ name, in string }{
		{"empty", ""},
		{"blank", " \n "},
		{"only commas", ",,,"},
		{"audit-logs:write", "audit-logs:write"},
		{"audit logs by name at write, any case", "access: audit logs:write"},
		{"an id in upper case", "1E13C5124CA64B72B1969A67E8829049"},
		{"audit-logs:WRITE", "audit-logs:WRITE"},
		{"audit logs full name write", "Access: Audit Logs Write"},
		{"audit logs base name write", "Access: Audit Logs:write"},
		{"bad level", "organizations:admin"},
		{"empty level", "organizations:"},
		{"level only", ":write"},
		{"id with a level", groupID + ":read"},
		{"id with a write level", groupID + ":write"},
		{"two levels that disagree", "DNS Read:write"},
		{"two level words that disagree", "DNS Read Write"},
		{"id with a level word", groupID + " read"},
		{"quote across a CRLF", "\"organizations\r\napps-and-policies\""},
		{"carriage return inside quotes", "\"Access: Custom\rPages\""},
		{"stray quote", `organ"izations`},
		{"quote then text", `"organizations"x`},
		{"unclosed quote", `"Access: Organizations, Identity Providers, and Groups`},
		{"unclosed quote across a newline", "\"organizations\napps-and-policies\""},
		{"empty quotes", `""`},
		{"empty quotes with level", `"":write`},
		{"more than 100", strings.TrimSuffix(strings.Repeat("organizations,", 101), ",")},
		{"one bad among good", "organizations, apps-and-policies:admin"},
	}
	for _, tc := range rejects {
		t.Run("reject/"+tc.name, func(t *testing.T) {
			t.Parallel()
			for _, def := range []Level{Read, Write} {
				got, err := ParseScopes(tc.in, def)
				_ = wantInputError(t, err, "scopes")
				if got != nil {
					t.Errorf("ParseScopes(%q) = %v with its error", tc.in, got)
				}
			}
		})
	}
	// audit-logs with no level is refused only when the default is write.
	_, err := ParseScopes("audit-logs", Write)
	_ = wantInputError(t, err, "scopes")
}

func TestScopeString(t *testing.T) {
	t.Parallel()
	tests := []struct {
		scope          Scope
		str, groupName string
	}{
		{Scope{Name: apps, Level: Write}, "Access: Apps and Policies:write", "Access: Apps and Policies Write"},
		{Scope{Name: orgs, Level: Read}, `"Access: Organizations, Identity Providers, and Groups":read`, "Access: Organizations, Identity Providers, and Groups Read"},
		{Scope{Name: "DNS", Level: Read}, "DNS:read", "DNS Read"},
		{Scope{ID: groupID}, groupID, groupID},
	}
	for _, tc := range tests {
		t.Run(tc.str, func(t *testing.T) {
			t.Parallel()
			if got := tc.scope.String(); got != tc.str {
				t.Errorf("String() = %q, want %q", got, tc.str)
			}
			if got := tc.scope.GroupName(); got != tc.groupName {
				t.Errorf("GroupName() = %q, want %q", got, tc.groupName)
			}
			back, err := ParseScopes(tc.scope.String(), Read)
			mustNoError(t, err)
			if diff := cmp.Diff([]Scope{tc.scope}, back); diff != "" {
				t.Errorf("ParseScopes(String()) (-want +got):\n%s", diff)
			}
		})
	}
	scopes := []Scope{{Name: orgs, Level: Write}, {ID: groupID}, {Name: apps, Level: Read}}
	want := "\"" + orgs + "\":write\n" + groupID + "\n" + apps + ":read"
	if got := FormatScopes(scopes); got != want {
		t.Errorf("FormatScopes = %q, want %q", got, want)
	}
	if got := FormatScopes(nil); got != "" {
		t.Errorf("FormatScopes(nil) = %q, want empty", got)
	}
}

// Ids from the repository's testdata/permission_groups.json.
const (
	orgsRead       = "26bc23f853634eb4bff59983b9064fde"
	orgsWrite      = "bfe0d8686a584fa680f4c53b5eb0de6d"
	appsRead       = "7ea222f6d5064cfa89ea366d7c1fee89"
	appsReadZone   = "eb258a38ea634c86a0c89da6b27cb6b6"
	appsWrite      = "1e13c5124ca64b72b1969a67e8829049"
	appsWriteZone  = "959972745952452f8be2452be8cbb9f2"
	appsRevoke     = "6c9d1cfcfc6840a987d1b5bfb880a841"
	appsRevokeZone = "6db4e222e21248ac96a3f4c2a81e3b41"
	serviceRead    = "91f7ce32fa614d73b7e1fc8f0e78582b"
	serviceWrite   = "a1c0fec57cf94af79479a6d827fa518c"
	postureRead    = "0f4841f80adb4bada5a09493300e7f8d"
	postureWrite   = "2fc1072ee6b743828db668fcb3f9dee7"
	pagesRead      = "08e61dabe81a422dab0dea6fdef1a98a"
	pagesWrite     = "4e5fd8ac327b4a358e48c66fcbeb856d"
	mtlsRead       = "4f3196a5c95747b6ad82e34e1d0a694f"
	mtlsWrite      = "29d3afbfd4054af9accdd1118815ed05"
	sshRead        = "99ff99e4e30247a99d3777a8c4c18541"
	sshWrite       = "d30c9ad8b5224e7cb8d41bcb4757effc"
	auditRead      = "b05b28e839c54467a7d6cba5d3abb5a3"
	scimRead       = "e985ca9351db460faebbe8681c48e560"
	workersWrite   = "f0f0f0f0f0f0f0f0f0f0f0f0f0f0a002"
)

func ids(groups []PermissionGroup) []string {
	out := make([]string, len(groups))
	for i, g := range groups {
		out[i] = g.ID
	}
	return out
}

func TestResolve(t *testing.T) {
	t.Parallel()
	fixture := MustLoadGroups(t)
	reversed := slices.Clone(fixture)
	slices.Reverse(reversed)
	tests := []struct {
		scopes string
		want   []string
	}{
		{"organizations", []string{orgsRead}},
		{"organizations:write", []string{orgsWrite}},
		{"apps-and-policies", []string{appsRead}},
		{"apps-and-policies:write", []string{appsWrite}},
		{"service-tokens, service-tokens:write", []string{serviceRead, serviceWrite}},
		{"device-posture:read, device-posture:write", []string{postureRead, postureWrite}},
		{"custom-pages:read, custom-pages:write", []string{pagesRead, pagesWrite}},
		{"mutual-tls:read, mutual-tls:write", []string{mtlsRead, mtlsWrite}},
		{"ssh-auditing:read, ssh-auditing:write", []string{sshRead, sshWrite}},
		{"audit-logs", []string{auditRead}},
		{"access: apps and policies:WRITE", []string{appsWrite}},
		{"ACCESS: APPS AND POLICIES WRITE", []string{appsWrite}},
		{"Access: SCIM logs", []string{scimRead}},
		{"Access: SCIM Logs Read", []string{scimRead}},
		{"Workers Scripts:write", []string{workersWrite}},
		{`"Access: Organizations, Identity Providers, and Groups":write, apps-and-policies:write`, []string{orgsWrite, appsWrite}},
		{appsWriteZone, []string{appsWriteZone}},
		{appsRevoke, []string{appsRevoke}},
		{"apps-and-policies:write, " + appsWrite + ", Access: Apps and Policies Write", []string{appsWrite}},
		{appsRead + ", apps-and-policies", []string{appsRead}},
	}
	for _, order := range []struct {
		name   string
		groups []PermissionGroup
	}{{"fixture order", fixture}, {"reversed", reversed}} {
		for _, tc := range tests {
			t.Run(order.name+"/"+tc.scopes, func(t *testing.T) {
				t.Parallel()
				scopes, err := ParseScopes(tc.scopes, Read)
				mustNoError(t, err)
				got, err := Resolve(scopes, order.groups)
				mustNoError(t, err)
				if diff := cmp.Diff(tc.want, ids(got)); diff != "" {
					t.Errorf("Resolve(%q) ids (-want +got):\n%s", tc.scopes, diff)
				}
				for _, g := range got {
					if g.ID == appsReadZone || g.ID == appsWriteZone || g.ID == appsRevokeZone {
						if !strings.Contains(tc.scopes, g.ID) {
							t.Errorf("Resolve(%q) chose the zone-scoped twin %s", tc.scopes, g.ID)
						}
					}
				}
			})
		}
	}

	// A name resolves to the whole group, as listed.
	got, err := Resolve([]Scope{{Name: apps, Level: Write}}, fixture)
	mustNoError(t, err)
	want := []PermissionGroup{{ID: appsWrite, Name: "Access: Apps and Policies Write", Scopes: []string{AccountScope}}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Resolve (-want +got):\n%s", diff)
	}
	// An id is filled in from the list; one the list lacks is refused: its
	// name, and so whether it manages tokens, cannot be known.
	got, err = Resolve([]Scope{{ID: appsRead}}, fixture)
	mustNoError(t, err)
	want = []PermissionGroup{{ID: appsRead, Name: "Access: Apps and Policies Read", Scopes: []string{AccountScope}}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Resolve ids (-want +got):\n%s", diff)
	}
	_, err = Resolve([]Scope{{ID: appsRead}, {ID: "ffffffffffffffffffffffffffffffff"}}, fixture)
	if ie := wantInputError(t, err, "scopes"); !strings.Contains(ie.Problem, "ffffffffffffffffffffffffffffffff") {
		t.Errorf("the error does not name the unknown id: %v", err)
	}
}

func TestResolveRejects(t *testing.T) {
	t.Parallel()
	fixture := MustLoadGroups(t)
	tests := []struct {
		name    string
		scopes  []Scope
		groups  []PermissionGroup
		closest []string // names the Problem must quote, in this order
	}{
		{"zone-scoped only", []Scope{{Name: "DNS", Level: Read}}, fixture, nil},
		{"zone-scoped only, write", []Scope{{Name: "dns", Level: Write}}, fixture, nil},
		{"user-scoped only", []Scope{{Name: "API Tokens", Level: Write}}, fixture, nil},
		{"typo", []Scope{{Name: "Access: Apps and Policy", Level: Read}}, fixture, []string{"Access: Apps and Policies Read"}},
		{"typo, write", []Scope{{Name: "Access: Servce Tokens", Level: Write}}, fixture, []string{"Access: Service Tokens Write"}},
		{"no level the group has", []Scope{{Name: "Access: Audit Logs", Level: Write}}, fixture, []string{"Access: Audit Logs Read"}},
		// A level is read or write: a Revoke group is reachable by its id only.
		// "… Revoke" groups are chosen by id: suggestions name only what a scope item can ask for.
		{"revoke group by name", []Scope{{Name: "Access: Apps and Policies Revoke", Level: Read}}, fixture, []string{"Access: Apps and Policies Read", "Access: Apps and Policies Write"}},
		{"nothing close", []Scope{{Name: "Zzzz Qqqq Xxxx Yyyy", Level: Read}}, fixture, nil},
		{"empty list", []Scope{{Name: orgs, Level: Read}}, nil, nil},
		{"second scope bad", []Scope{{Name: orgs, Level: Read}, {Name: "Nope", Level: Read}}, fixture, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := Resolve(tc.scopes, tc.groups)
			ie := wantInputError(t, err, "scopes")
			if got != nil {
				t.Errorf("Resolve = %v with its error", got)
			}
			last := -1
			for _, name := range tc.closest {
				i := strings.Index(ie.Problem, `"`+name+`"`)
				if i < 0 {
					t.Errorf("Problem %q does not suggest %q", ie.Problem, name)
				} else if i < last {
					t.Errorf("Problem %q suggests %q out of order", ie.Problem, name)
				}
				last = i
			}
		})
	}

	// The scopes of a same-named group are the API's text: quoted (escaped)
	// beside the name, so a newline in one cannot start a workflow command.
	odd := []PermissionGroup{{ID: "00000000000000000000000000000001", Name: "DNS Read",
		Scopes: []string{"com.cloudflare.api.account.zone", "x\n::stop-commands::y"}}}
	_, err := Resolve([]Scope{{Name: "DNS", Level: Read}}, odd)
	ie := wantInputError(t, err, "scopes")
	if want := `"DNS Read" exists only with scope "com.cloudflare.api.account.zone", "x\n::stop-commands::y", not com.cloudflare.api.account`; ie.Problem != want {
		t.Errorf("Problem = %q, want %q", ie.Problem, want)
	}

	// A token pasted as a scope name parses as a name; the error Resolve
	// gives for it must not show it.
	for _, tok := range []string{newStyleToken, oldStyleToken} {
		scopes, err := ParseScopes(tok, Read)
		if err != nil {
			if leaks(err.Error(), tok) {
				t.Errorf("ParseScopes error shows the pasted token: %v", err)
			}
			continue
		}
		_, err = Resolve(scopes, fixture)
		_ = wantInputError(t, err, "scopes")
		if leaks(err.Error(), tok) {
			t.Errorf("Resolve error shows the pasted token: %v", err)
		}
	}
}

func TestClosest(t *testing.T) {
	t.Parallel()
	fixture := MustLoadGroups(t)
	tests := []struct {
		name string
		n    int
		want []string
	}{
		{"Access: Apps and Policy Read", 1, []string{"Access: Apps and Policies Read"}},
		{"access: apps and policies reed", 1, []string{"Access: Apps and Policies Read"}},
		{"Access: Device Posture Reads", 2, []string{"Access: Device Posture Read", "Access: Device Posture Write"}},
		// Zone-only and user-only groups are never suggested: they cannot be granted on an account.
		{"DNS Read", 3, nil},
		// Token-managing groups are never suggested: a child may not hold them.
		{"API Tokens Read", 1, nil},
		{"Qqqqqqqqqqqqqqqqqqqqqqqqqqq", 3, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := Closest(tc.name, fixture, tc.n)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Closest(%q, %d) (-want +got):\n%s", tc.name, tc.n, diff)
			}
			if len(got) > tc.n {
				t.Errorf("Closest returned %d names, more than %d", len(got), tc.n)
			}
		})
	}
	// Twins share a name: it is suggested once.
	got := Closest("Access: Apps and Policies Writ", fixture, 5)
	seen := map[string]bool{}
	for _, n := range got {
		if seen[n] {
			t.Errorf("Closest suggests %q twice: %q", n, got)
		}
		seen[n] = true
	}
	if len(got) == 0 || got[0] != "Access: Apps and Policies Write" {
		t.Errorf("Closest = %q, want Access: Apps and Policies Write first", got)
	}
}

// TestNoTokenMakingChildren: a group that reads or manages API tokens is
// refused whether it is asked for by name (at parse, before any request)
// or by id (at resolution, before any token is created) — SPEC "No
// token-making children".
func TestNoTokenMakingChildren(t *testing.T) {
	t.Parallel()
	fixture := MustLoadGroups(t)
	for _, item := range []string{"Account API Tokens:write", "Account API Tokens Write", "API Tokens:read",
		"api tokens write", `"Account API Tokens":read`} {
		t.Run("name/"+item, func(t *testing.T) {
			t.Parallel()
			_, err := ParseScopes(item, Read)
			if ie := wantInputError(t, err, "scopes"); !strings.Contains(ie.Problem, "make tokens of its own") {
				t.Errorf("the error does not say why: %v", err)
			}
		})
	}
	for _, g := range fixture {
		if !ManagesTokens(g.Name) {
			continue
		}
		t.Run("id/"+g.Name, func(t *testing.T) {
			t.Parallel()
			scopes, err := ParseScopes("organizations, "+g.ID, Read)
			mustNoError(t, err)
			_, err = Resolve(scopes, fixture)
			if ie := wantInputError(t, err, "scopes"); !strings.Contains(ie.Problem, g.Name) || !strings.Contains(ie.Problem, "make tokens of its own") {
				t.Errorf("the error does not name the group and say why: %v", err)
			}
		})
	}
	if ManagesTokens("Access: Service Tokens Write") {
		t.Error("Access service tokens are not API tokens")
	}
}

// TestScopeLevelRevoke: revoke resolves where Cloudflare has a Revoke group
// and is refused, naming the missing group, where it has none.
func TestScopeLevelRevoke(t *testing.T) {
	t.Parallel()
	fixture := MustLoadGroups(t)
	for _, tc := range []struct{ item, want string }{
		{"apps-and-policies:revoke", appsRevoke},
		{"Access: Apps and Policies Revoke", appsRevoke},
		{"organizations:revoke", "7121a0c7e9ed46e3829f9cca2bb572aa"},
	} {
		scopes, err := ParseScopes(tc.item, Read)
		mustNoError(t, err)
		got, err := Resolve(scopes, fixture)
		mustNoError(t, err)
		if diff := cmp.Diff([]string{tc.want}, ids(got)); diff != "" {
			t.Errorf("Resolve(%q) (-want +got):\n%s", tc.item, diff)
		}
	}
	scopes, err := ParseScopes("service-tokens:revoke", Read)
	mustNoError(t, err)
	_, err = Resolve(scopes, fixture)
	if ie := wantInputError(t, err, "scopes"); !strings.Contains(ie.Problem, "Access: Service Tokens Revoke") {
		t.Errorf("the error does not name the missing group: %v", err)
	}
	if _, err := ParseLevel("permission", "revoke"); err == nil {
		t.Error("permission: revoke was accepted; the default level is read or write")
	}
}

// TestShorthands: every SPEC shorthand resolves at both levels it has; a
// misspelt one suggests the shorthand without any request.
func TestShorthands(t *testing.T) {
	t.Parallel()
	fixture := MustLoadGroups(t)
	for _, sh := range shorthandNames {
		levels := []Level{Read, Write}
		if sh == "audit-logs" {
			levels = levels[:1]
		}
		for _, l := range levels {
			scopes, err := ParseScopes(sh+":"+string(l), Read)
			mustNoError(t, err)
			got, err := Resolve(scopes, fixture)
			mustNoError(t, err)
			if len(got) != 1 || got[0].Name != shorthands[sh]+" "+l.title() {
				t.Errorf("%s:%s resolved to %v", sh, l, got)
			}
		}
	}
	for in, want := range map[string]string{
		"organisations": "organizations", "apps-and-policy": "apps-and-policies", "audit-log": "audit-logs",
		"servicetokens": "service-tokens", "policy-tests": "policy-test",
	} {
		_, err := ParseScopes(in+":read", Read)
		if ie := wantInputError(t, err, "scopes"); !strings.Contains(ie.Problem, "did you mean "+want+"?") {
			t.Errorf("%q: %v, want a suggestion of %s", in, err, want)
		}
	}
	// Group base names are never taken for misspelt shorthands.
	for _, in := range []string{"DNS", "Workers Scripts", "zone"} {
		if _, err := ParseScopes(in, Read); err != nil {
			t.Errorf("ParseScopes(%q): %v", in, err)
		}
	}
}
