package policy

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"go.yaml.in/yaml/v3"

	"github.com/cf-scoped-token/cf-scoped-token/internal/token"
)

// FuzzParse: Parse never panics; a refusal is a *LoadError whose faults are
// single lines with a line number inside the file; and a policy that loads
// obeys the load-time rules and, written back out as YAML, loads again to
// the same policy. Seeds: the example policies and the test files; crashers
// a fuzzer finds stay in testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	for _, path := range examples(f) {
		b, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(baseFile))
	f.Add([]byte(matchFile))
	f.Add([]byte(edit(map[int]string{10: "      repository_id: 0712", 16: "      account-ids: &a [x]", 20: "---\n"})))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 64<<10 {
			t.Skip("larger than any policy worth fuzzing")
		}
		p, err := Parse(data)
		if err != nil {
			checkLoadError(t, data, err)
			return
		}
		checkInvariants(t, p)
		again, err := Parse(encode(t, p))
		if err != nil {
			t.Fatalf("a loaded policy, written back, does not load:\n%s\n%v", encode(t, p), err)
		}
		if diff := cmp.Diff(p, again, cmpopts.IgnoreFields(Rule{}, "Line"), cmpopts.IgnoreUnexported(Allowance{})); diff != "" {
			t.Fatalf("round trip (-first +again):\n%s", diff)
		}
		// Match on any claims and request neither panics nor grants more
		// than the rule holds.
		for _, r := range p.Rules {
			claims := map[string]any{}
			for _, c := range r.Claims {
				claims[c.Claim] = c.Values[0]
			}
			g, err := p.Match(claims, Request{Issuer: r.Issuer.URL, Caller: caller4})
			if err != nil {
				var d *Denial
				if !errors.As(err, &d) {
					t.Fatalf("Match error %v is not a *Denial", err)
				}
				continue
			}
			got, _ := p.rule(g.Rule)
			if g.TTL > got.Grant.MaxTTL || len(g.AccountIDs) > len(got.Grant.AccountIDs) || len(g.Scopes) > len(got.Grant.Scopes) {
				t.Fatalf("grant %+v exceeds rule %+v", g, got.Grant)
			}
		}
	})
}

func (p *Policy) rule(name string) (Rule, bool) {
	for _, r := range p.Rules {
		if r.Name == name {
			return r, true
		}
	}
	return Rule{}, false
}

func checkLoadError(t *testing.T, data []byte, err error) {
	t.Helper()
	var le *LoadError
	if !errors.As(err, &le) || len(le.Faults) == 0 {
		t.Fatalf("Parse error %v (%T) is not a *LoadError with faults", err, err)
	}
	lines := strings.Count(string(data), "\n") + 1
	for _, f := range le.Faults {
		if f.Msg == "" || strings.ContainsAny(f.String(), "\n\r") {
			t.Fatalf("fault %q is empty or not a single line", f.String())
		}
		if f.Line < 0 || f.Line > lines {
			t.Fatalf("fault %q has line %d; the file has %d", f.String(), f.Line, lines)
		}
	}
	if got := strings.Count(err.Error(), "\n") + 1; got != len(le.Faults) {
		t.Fatalf("Error() has %d lines for %d faults", got, len(le.Faults))
	}
}

func checkInvariants(t *testing.T, p *Policy) {
	t.Helper()
	if len(p.Issuers) == 0 || len(p.Rules) == 0 {
		t.Fatalf("policy without issuers or rules: %+v", p)
	}
	names := map[string]bool{}
	for _, r := range p.Rules {
		if r.Name == "" || names[r.Name] {
			t.Fatalf("rule name %q empty or repeated", r.Name)
		}
		names[r.Name] = true
		if is, ok := p.IssuerByURL(r.Issuer.URL); !ok || is != r.Issuer {
			t.Fatalf("rule %s names issuer %+v, not in the policy", r.Name, r.Issuer)
		}
		pinned := r.Issuer.Kind == CircleCI
		for _, c := range r.Claims {
			if len(c.Values) == 0 {
				t.Fatalf("rule %s claim %s has no values", r.Name, c.Claim)
			}
			if c.Pin {
				pinned = true
				if len(c.Values) != 1 || strings.Contains(c.Values[0], "*") {
					t.Fatalf("rule %s pins by %s %q, not exactly", r.Name, c.Claim, c.Values)
				}
			}
		}
		if !pinned {
			t.Fatalf("rule %s is not pinned", r.Name)
		}
		g := r.Grant
		if g.MaxTTL < token.MinTTL || g.MaxTTL > token.MaxTTL || len(g.AccountIDs) == 0 || len(g.Scopes) == 0 {
			t.Fatalf("rule %s grant out of bounds: %+v", r.Name, g)
		}
		if g.Owner == token.OwnerAccount && len(g.AccountIDs) != 1 {
			t.Fatalf("rule %s: account owner with %d accounts", r.Name, len(g.AccountIDs))
		}
		for _, sc := range g.Scopes {
			if token.ManagesTokens(sc.Name) {
				t.Fatalf("rule %s grants the token-managing %v", r.Name, sc)
			}
		}
	}
}

// encode writes a policy as a policy file, every string double-quoted.
func encode(t *testing.T, p *Policy) []byte {
	t.Helper()
	str := func(s string) *yaml.Node {
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s, Style: yaml.DoubleQuotedStyle}
	}
	seq := func(items []string) *yaml.Node {
		n := &yaml.Node{Kind: yaml.SequenceNode}
		for _, s := range items {
			n.Content = append(n.Content, str(s))
		}
		return n
	}
	mapping := func(kv ...any) *yaml.Node {
		n := &yaml.Node{Kind: yaml.MappingNode}
		for i := 0; i < len(kv); i += 2 {
			n.Content = append(n.Content, str(kv[i].(string)), kv[i+1].(*yaml.Node))
		}
		return n
	}
	root := mapping()
	if p.Audience != "" {
		root.Content = append(root.Content, str("audience"), str(p.Audience))
	}
	issuers := mapping()
	for _, is := range p.Issuers {
		issuers.Content = append(issuers.Content, str(is.Name), str(is.URL))
	}
	rules := &yaml.Node{Kind: yaml.SequenceNode}
	for _, r := range p.Rules {
		claims := mapping()
		for _, c := range r.Claims {
			v := seq(c.Values)
			if len(c.Values) == 1 {
				v = str(c.Values[0])
			}
			claims.Content = append(claims.Content, str(c.Claim), v)
		}
		scopes := make([]string, len(r.Grant.Scopes))
		for i, sc := range r.Grant.Scopes {
			scopes[i] = sc.String()
		}
		grant := mapping("owner", str(string(r.Grant.Owner)), "account-ids", seq(r.Grant.AccountIDs),
			"scopes", seq(scopes), "max-ttl", str(r.Grant.MaxTTL.String()))
		if r.Grant.Caller || len(r.Grant.AllowedIPs) > 0 {
			ips := r.Grant.AllowedIPs
			if r.Grant.Caller {
				ips = append([]string{CallerKeyword}, ips...)
			}
			grant.Content = append(grant.Content, str("allowed-ips"), seq(ips))
		}
		rules.Content = append(rules.Content, mapping("name", str(r.Name), "issuer", str(r.Issuer.Name), "claims", claims, "grant", grant))
	}
	root.Content = append(root.Content, str("issuers"), issuers, str("rules"), rules)
	b, err := yaml.Marshal(root)
	if err != nil {
		t.Fatalf("encode: %v", err)
	}
	return b
}

// TestEncodeRoundTrip runs the fuzz target's round trip on the examples,
// with go test alone.
func TestEncodeRoundTrip(t *testing.T) {
	t.Parallel()
	for _, path := range examples(t) {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		p := mustParse(t, string(b))
		again := mustParse(t, string(encode(t, p)))
		if diff := cmp.Diff(p, again, cmpopts.IgnoreFields(Rule{}, "Line"), cmpopts.IgnoreUnexported(Allowance{})); diff != "" {
			t.Errorf("%s round trip (-first +again):\n%s", path, diff)
		}
	}
}
