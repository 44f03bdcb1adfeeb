package token

import "testing"

// BenchmarkParse validates a typical create request: two accounts, a few
// scopes, an IP list, a default name.
func BenchmarkParse(b *testing.B) {
	in := Inputs{
		APIToken:   oldStyleToken,
		AccountIDs: acctA + "\n" + acctB,
		Scopes:     "organizations:write, apps-and-policies:write\nservice-tokens",
		Permission: "read",
		TTL:        "30m",
		Owner:      "user",
		AllowedIPs: "203.0.113.0/24, 2001:db8::/48, runner",
		Verify:     "true",
		Revoke:     "true",
		ExportEnv:  "false",
		Mode:       "create",
		APIURL:     "https://api.cloudflare.com/client/v4",
	}
	rc := testRunContext()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := in.Parse(rc); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkResolve resolves three scopes against the fixture's list, the
// Apps and Policies names behind their zone-scoped twins.
func BenchmarkResolve(b *testing.B) {
	groups := MustLoadGroups(b)
	scopes, err := ParseScopes(`"Access: Organizations, Identity Providers, and Groups":write, apps-and-policies:write, ssh-auditing`, Read)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Resolve(scopes, groups); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkResolveUnknown is the error path: an unknown name and the
// edit-distance search for the closest groups.
func BenchmarkResolveUnknown(b *testing.B) {
	groups := MustLoadGroups(b)
	scopes := []Scope{{Name: "Access: Apps and Policy", Level: Write}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Resolve(scopes, groups); err == nil {
			b.Fatal("Resolve of an unknown name succeeded")
		}
	}
}
