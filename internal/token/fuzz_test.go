package token

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
)

// Seeds live in testdata/fuzz/<FuzzName>/; crashers a fuzzer found stay
// there as regression cases and run with every go test.

// fuzzInputError fails unless err is an *InputError for input.
func fuzzInputError(t *testing.T, err error, input string) {
	t.Helper()
	var ie *InputError
	if !errors.As(err, &ie) {
		t.Fatalf("error %v (%T) is not an *InputError", err, err)
	}
	if ie.Input != input || ie.Problem == "" || ie.Accepted == "" {
		t.Fatalf("InputError %+v, want Input %q with Problem and Accepted", ie, input)
	}
}

func FuzzParseScopes(f *testing.F) {
	f.Fuzz(func(t *testing.T, s string, write bool) {
		def := Read
		if write {
			def = Write
		}
		got, err := ParseScopes(s, def)
		if err != nil {
			fuzzInputError(t, err, "scopes")
			return
		}
		if len(got) == 0 || len(got) > maxListItems {
			t.Fatalf("ParseScopes(%q) accepted %d scopes", s, len(got))
		}
		for i, sc := range got {
			switch {
			case sc.ID != "":
				if !IsHexID(sc.ID) || sc.Name != "" || sc.Level != "" {
					t.Fatalf("ParseScopes(%q): bad id scope %#v", s, sc)
				}
			case sc.Name == "" || (sc.Level != Read && sc.Level != Write):
				t.Fatalf("ParseScopes(%q): bad named scope %#v", s, sc)
			case sc.Level == Write && sc.Name == shorthands["audit-logs"]:
				t.Fatalf("ParseScopes(%q) accepted audit logs at the write level", s)
			}
			if slices.Contains(got[:i], sc) {
				t.Fatalf("ParseScopes(%q) kept the duplicate %#v", s, sc)
			}
			// Each scope alone reads back as itself, whatever the default.
			back, err := ParseScopes(sc.String(), Write)
			if err != nil {
				t.Fatalf("ParseScopes(%q) gave %#v, whose String %q does not parse: %v", s, sc, sc.String(), err)
			}
			if diff := cmp.Diff([]Scope{sc}, back); diff != "" {
				t.Fatalf("ParseScopes(%q): %#v → String %q → (-want +got):\n%s", s, sc, sc.String(), diff)
			}
		}
		// parse → format → parse is stable, whatever the default level.
		formatted := FormatScopes(got)
		for _, def := range []Level{Read, Write} {
			again, err := ParseScopes(formatted, def)
			if err != nil {
				t.Fatalf("ParseScopes(%q) = %v; FormatScopes = %q does not parse: %v", s, got, formatted, err)
			}
			if diff := cmp.Diff(got, again); diff != "" {
				t.Fatalf("ParseScopes(%q) → FormatScopes %q → ParseScopes (-first +second):\n%s", s, formatted, diff)
			}
		}
	})
}

func FuzzParseAccountIDs(f *testing.F) {
	f.Fuzz(func(t *testing.T, s string) {
		ids, err := ParseAccountIDs(s)
		if err != nil {
			fuzzInputError(t, err, "account-ids")
			if ids != nil {
				t.Fatalf("ParseAccountIDs(%q) = %q with its error", s, ids)
			}
			return
		}
		if len(ids) == 0 || len(ids) > maxListItems {
			t.Fatalf("ParseAccountIDs(%q) accepted %d ids", s, len(ids))
		}
		for i, id := range ids {
			if len(id) != 32 || strings.Trim(id, "0123456789abcdef") != "" {
				t.Fatalf("ParseAccountIDs(%q) accepted %q, not 32 lowercase hex", s, id)
			}
			if slices.Contains(ids[:i], id) {
				t.Fatalf("ParseAccountIDs(%q) kept the duplicate %q", s, id)
			}
			if !strings.Contains(s, id) {
				t.Fatalf("ParseAccountIDs(%q) made up %q", s, id)
			}
		}
		for _, sep := range []string{",", " ", "\n", ", "} {
			again, err := ParseAccountIDs(strings.Join(ids, sep))
			if err != nil {
				t.Fatalf("ParseAccountIDs(%q) = %q; joined with %q it does not parse: %v", s, ids, sep, err)
			}
			if diff := cmp.Diff(ids, again); diff != "" {
				t.Fatalf("ParseAccountIDs(%q) → Join(%q) → ParseAccountIDs (-first +second):\n%s", s, sep, diff)
			}
		}
	})
}

func FuzzParseAllowedIPs(f *testing.F) {
	f.Fuzz(func(t *testing.T, s string) {
		cidrs, runner, err := ParseAllowedIPs(s)
		if err != nil {
			fuzzInputError(t, err, "allowed-ips")
			return
		}
		if len(cidrs) > maxListItems {
			t.Fatalf("ParseAllowedIPs(%q) accepted %d CIDRs", s, len(cidrs))
		}
		for i, c := range cidrs {
			p, err := netip.ParsePrefix(c)
			if err != nil {
				t.Fatalf("ParseAllowedIPs(%q) gave %q, not a CIDR: %v", s, c, err)
			}
			if p != p.Masked() || p.String() != c || p.Addr().Zone() != "" {
				t.Fatalf("ParseAllowedIPs(%q) gave %q, not a canonical masked CIDR", s, c)
			}
			if slices.Contains(cidrs[:i], c) {
				t.Fatalf("ParseAllowedIPs(%q) kept the duplicate %q", s, c)
			}
		}
		joined := strings.Join(cidrs, ",")
		if runner {
			joined += "\n" + RunnerKeyword
		}
		again, runnerAgain, err := ParseAllowedIPs(joined)
		if err != nil {
			t.Fatalf("ParseAllowedIPs(%q) = %q; joined %q does not parse: %v", s, cidrs, joined, err)
		}
		if diff := cmp.Diff(cidrs, again); diff != "" || runner != runnerAgain {
			t.Fatalf("ParseAllowedIPs(%q) → Join → ParseAllowedIPs: runner %v → %v (-first +second):\n%s", s, runner, runnerAgain, diff)
		}
	})
}

func FuzzParseTTL(f *testing.F) {
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseTTL(s)
		if err != nil {
			fuzzInputError(t, err, "ttl")
			if d != 0 {
				t.Fatalf("ParseTTL(%q) = %v with its error", s, d)
			}
			return
		}
		if d < MinTTL || d > MaxTTL || d%1e9 != 0 {
			t.Fatalf("ParseTTL(%q) = %v, outside 1m..24h or not whole seconds", s, d)
		}
		again, err := ParseTTL(d.String())
		if err != nil || again != d {
			t.Fatalf("ParseTTL(%q) = %v; ParseTTL(%q) = %v, %v", s, d, d.String(), again, err)
		}
	})
}

func FuzzParseName(f *testing.F) {
	f.Fuzz(func(t *testing.T, given, repo, runID, attempt, job string, suffix uint64) {
		rc := RunContext{
			Repository: repo, RunID: runID, RunAttempt: attempt, Job: job,
			// The caller draws 12 hex characters; the fuzzer picks which.
			Suffix: fmt.Sprintf("%012x", suffix&(1<<48-1)),
		}
		name, err := ParseName(given, rc)
		if err != nil {
			fuzzInputError(t, err, "name")
			return
		}
		if n := utf8.RuneCountInString(name); n > MaxNameLength {
			t.Fatalf("ParseName(%q, %+v) = %q, %d runes", given, rc, name, n)
		}
		if !utf8.ValidString(name) {
			t.Fatalf("ParseName(%q, %+v) = %q, not valid UTF-8", given, rc, name)
		}
		for _, r := range name {
			if !unicode.IsPrint(r) {
				t.Fatalf("ParseName(%q, %+v) = %q holds the non-printable %U", given, rc, name, r)
			}
		}
		if !strings.HasSuffix(name, " "+rc.Suffix) {
			t.Fatalf("ParseName(%q, %+v) = %q, without the suffix", given, rc, name)
		}
		if strings.TrimSpace(given) == "" && !IsOwnName(name) {
			t.Fatalf("default name %q (%+v) lacks the prefix %q", name, rc, NamePrefix)
		}
	})
}

// FuzzParseAPIURL: no panic; an accepted URL is https, or http to a
// loopback host, with a host, no credentials, query or fragment, and
// parses back to itself.
func FuzzParseAPIURL(f *testing.F) {
	for _, s := range []string{
		"https://api.cloudflare.com/client/v4", "http://127.0.0.1:8787/client/v4", "http://[::1]/x",
		"http://localhost:1/", "http://api.example.com", "https://u:p@h/", "https://h/?", "https://:443",
		"ftp://127.0.0.1", "https://h/#f", " https://h/a/ ", "http://127.0.0.1.example.com/", "http://0x7f.1/",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		u, err := ParseAPIURL(s)
		if err != nil {
			var ie *InputError
			if !errors.As(err, &ie) || ie.Input != "api-url" {
				t.Fatalf("error %v is not an InputError for api-url", err)
			}
			return
		}
		if u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.ForceQuery {
			t.Fatalf("accepted %q as %#v", s, u)
		}
		if u.Scheme != "https" && !(u.Scheme == "http" && IsLoopback(u.Hostname())) {
			t.Fatalf("accepted %q: scheme %s to host %s", s, u.Scheme, u.Hostname())
		}
		again, err := ParseAPIURL(u.String())
		if err != nil || again.String() != u.String() {
			t.Fatalf("%q → %q does not parse back to itself: %v", s, u, err)
		}
	})
}

// FuzzInputsParse: the whole validation never panics, fails only with an
// InputError, and never quotes a token pasted into any input.
func FuzzInputsParse(f *testing.F) {
	const tok = "cfut_0123456789abcdefghijABCDEFGHIJ0123456789abcdef"
	f.Add("0a1b2c3d4e5f60718293a4b5c6d7e8f9", "organizations", "read", "1h", "user", "", "", "create", "")
	f.Add(tok, "apps-and-policies:write", "write", "15m", "account", "deploy", "runner", "revoke", "abc")
	f.Add("x", tok, "admin", tok, "team", tok, tok, "sweep", tok)
	f.Fuzz(func(t *testing.T, accounts, scopes, permission, ttl, owner, name, ips, mode, tokenID string) {
		in := Inputs{APIToken: "parent", AccountIDs: accounts, Scopes: scopes, Permission: permission, TTL: ttl,
			Owner: owner, Name: name, AllowedIPs: ips, Verify: "true", Revoke: "true", ExportEnv: "false",
			Mode: mode, TokenID: tokenID, APIURL: "https://api.cloudflare.com/client/v4"}
		_, err := in.Parse(RunContext{Repository: "o/r", RunID: "1", RunAttempt: "1", Job: "j", Suffix: "0123456789ab"})
		if err == nil {
			return
		}
		var ie *InputError
		if !errors.As(err, &ie) {
			t.Fatalf("error %v (%T) is not an InputError", err, err)
		}
		msg := err.Error()
		inputs := []string{accounts, scopes, permission, ttl, owner, name, ips, mode, tokenID}
		for _, field := range strings.FieldsFunc(strings.Join(inputs, "\n"), func(r rune) bool { return r == ',' || unicode.IsSpace(r) }) {
			if LooksLikeSecret(field) && strings.Contains(msg, field) {
				t.Fatalf("error quotes a pasted token: %v", err)
			}
		}
		// Nor a piece of one: what a cut would keep of a token starts with
		// its prefix, which no message holds but a quoted value. (A piece of
		// its digits would not do: an account id, or an escaped control
		// character before "123…", holds the same digits.)
		if strings.Contains(msg, "cfut_") || strings.Contains(msg, "cfat_") {
			t.Fatalf("error quotes a piece of a pasted token: %v", err)
		}
	})
}
