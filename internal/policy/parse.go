package policy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"unicode"

	"go.yaml.in/yaml/v3"

	"github.com/cf-scoped-token/cf-scoped-token/internal/token"
)

// MaxFileSize bounds a policy file: far above any real policy, and small
// enough that a wrong path (a log, a binary) fails at once.
const MaxFileSize = 1 << 20

// maxItems bounds every list in the file (claims values, accounts, scopes,
// CIDRs), as package token bounds the inputs.
const maxItems = 100

// Fault is one thing wrong with a policy file: where, which field, what is
// wrong and what is accepted.
type Fault struct {
	Line  int    // 1-based; 0 when the fault concerns the file as a whole
	Field string // rules[0].claims.repository_id; empty for the whole file
	Msg   string // what is wrong and what is accepted
}

// String is the fault as policy check prints it:
// "line 12: rules[0].claims.repository_id: …".
func (f Fault) String() string {
	var b strings.Builder
	if f.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", f.Line)
	}
	if f.Field != "" {
		b.WriteString(f.Field)
		b.WriteString(": ")
	}
	b.WriteString(f.Msg)
	return b.String()
}

// LoadError is a policy file that Parse refused, with every fault found (not
// only the first), in file order.
type LoadError struct {
	Faults []Fault
}

// Error lists the faults one per line.
func (e *LoadError) Error() string {
	lines := make([]string, len(e.Faults))
	for i, f := range e.Faults {
		lines[i] = f.String()
	}
	return strings.Join(lines, "\n")
}

// Parse reads and validates a policy file. Decoding is strict: an unknown or
// repeated key, a value of the wrong type, an alias or a second document is a
// fault, and so is every breach of the load-time rules (see the package
// documentation and SPEC "The policy file"). The error is a *LoadError
// holding every fault with its line.
func Parse(data []byte) (*Policy, error) {
	l := &loader{}
	p := l.file(data)
	if len(l.faults) > 0 {
		sort.SliceStable(l.faults, func(i, j int) bool { return l.faults[i].Line < l.faults[j].Line })
		return nil, &LoadError{Faults: l.faults}
	}
	return p, nil
}

// loader walks the file's YAML nodes and collects faults. It reads through
// yaml.Node rather than into structs so that every fault has a line and no
// value is converted behind the file's back (an unquoted 0712 is an integer
// to YAML, 458 to some readers).
type loader struct {
	faults []Fault
	// badIssuers are issuers whose name is refused: the kind a name
	// declares is unreliable then, so a rule naming one is not checked
	// against it (its pin faults would be guesses).
	badIssuers map[string]bool
}

func (l *loader) add(n *yaml.Node, field, format string, args ...any) {
	line := 0
	if n != nil {
		line = n.Line
	}
	l.faults = append(l.faults, Fault{Line: line, Field: field, Msg: fmt.Sprintf(format, args...)})
}

const fileAccepted = "a mapping with audience (optional), issuers and rules"

func (l *loader) file(data []byte) *Policy {
	if len(data) > MaxFileSize {
		l.add(nil, "", "the file is %d bytes, more than %d; is it the policy file?", len(data), MaxFileSize)
		return nil
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			l.add(nil, "", "the file is empty; accepted: %s", fileAccepted)
		} else {
			l.syntax(err, data)
		}
		return nil
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case err == nil:
		l.add(&extra, "", "a second YAML document starts here; a policy file holds one")
	case !errors.Is(err, io.EOF):
		l.syntax(err, data)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		l.add(nil, "", "the file holds no YAML document; accepted: %s", fileAccepted)
		return nil
	}
	return l.policy(doc.Content[0])
}

var syntaxLine = regexp.MustCompile(`^line (\d+): `)

// parserProblems are the problems yaml.v3's parser (not its scanner)
// reports. For these, v3.0.6 prints the 0-based line of the mark (its
// decode.go fail adds 1 for scanner errors only), and no line at all for the
// file's first line.
var parserProblems = map[string]bool{
	"did not find expected ',' or ']'":       true,
	"did not find expected ',' or '}'":       true,
	"did not find expected '-' indicator":    true,
	"did not find expected <document start>": true,
	"did not find expected <stream-start>":   true,
	"did not find expected key":              true,
	"did not find expected node content":     true,
	"found duplicate %TAG directive":         true,
	"found duplicate %YAML directive":        true,
	"found incompatible YAML document":       true,
	"found undefined tag handle":             true,
}

// syntax turns a YAML syntax error into a fault with its line.
func (l *loader) syntax(err error, data []byte) {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 0
	if m := syntaxLine.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = msg[len(m[0]):]
	}
	if parserProblems[msg] {
		line++
	} else if line == 0 {
		line = 1 // both marks on the first line: v3 prints none
	}
	// A problem found at the end of the file is marked on the line after
	// the last one.
	last := bytes.Count(data, []byte("\n"))
	if len(data) > 0 && data[len(data)-1] != '\n' {
		last++
	}
	line = max(1, min(line, last))
	msg = strings.Map(func(r rune) rune {
		if unicode.IsPrint(r) {
			return r
		}
		return '?'
	}, msg)
	l.faults = append(l.faults, Fault{Line: line, Msg: "YAML syntax: " + msg})
}

func (l *loader) policy(root *yaml.Node) *Policy {
	if root.Kind != yaml.MappingNode {
		l.add(root, "", "the file is %s; accepted: %s", describe(root), fileAccepted)
		return nil
	}
	top := l.fields(root, "", "audience", "issuers", "rules")
	p := &Policy{}
	if n, ok := top["audience"]; ok {
		p.Audience = l.audience(n)
	}
	if n, ok := top["issuers"]; ok {
		p.Issuers = l.issuers(n)
	} else {
		l.add(root, "issuers", "is missing; accepted: a mapping of short names to issuer URLs (github: https://token.actions.githubusercontent.com)")
	}
	if n, ok := top["rules"]; ok {
		p.Rules = l.rules(n, p)
	} else {
		l.add(root, "rules", "is missing; accepted: a list of rules, each with name, issuer, claims and grant")
	}
	return p
}

// entry is one key and value of a mapping.
type entry struct {
	key     string
	keyNode *yaml.Node
	value   *yaml.Node
}

// entries reads a mapping's entries in file order. A key must be a string
// and may appear once; a repeated key is a fault, not "the last one wins".
func (l *loader) entries(n *yaml.Node, field, want string) ([]entry, bool) {
	if !l.expect(n, yaml.MappingNode, field, want) {
		return nil, false
	}
	seen := map[string]int{}
	var out []entry
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode || k.ShortTag() != "!!str" {
			if k.ShortTag() == "!!merge" {
				l.add(k, field, "merge keys (<<) are not accepted: write each entry out, so that what a rule grants is what it says")
			} else {
				l.add(k, field, "has a key that is %s; keys are strings (quote it)", describe(k))
			}
			continue
		}
		if first, dup := seen[k.Value]; dup {
			l.add(k, join(field, k.Value), "is given twice (first at line %d); a key may appear once", first)
			continue
		}
		seen[k.Value] = k.Line
		out = append(out, entry{key: k.Value, keyNode: k, value: v})
	}
	return out, true
}

// fields reads a mapping with a fixed set of keys; any other key is a fault.
func (l *loader) fields(n *yaml.Node, field string, known ...string) map[string]*yaml.Node {
	es, ok := l.entries(n, field, "a mapping with the keys "+strings.Join(known, ", "))
	if !ok {
		return nil
	}
	m := make(map[string]*yaml.Node, len(es))
	for _, e := range es {
		if slices.Contains(known, e.key) {
			m[e.key] = e.value
		}
	}
	for _, e := range es {
		if slices.Contains(known, e.key) {
			continue
		}
		meant := suggest(e.key, known)
		hint := ""
		if meant != "" {
			hint = " (did you mean " + meant + "?)"
			if _, given := m[meant]; !given {
				// Read the value as the key it was meant to be, so that its
				// own faults show now and no "missing" fault repeats this
				// one. The file is refused all the same.
				m[meant] = e.value
			}
		}
		l.add(e.keyNode, field, "unknown key %s%s; accepted: %s", show(e.key), hint, strings.Join(known, ", "))
	}
	return m
}

// suggest is the known key a mistyped one most likely meant (max_ttl,
// maxTTL and Max-TTL all mean max-ttl), or "".
func suggest(key string, known []string) string {
	norm := func(s string) string {
		return strings.NewReplacer("-", "", "_", "").Replace(strings.ToLower(s))
	}
	for _, k := range known {
		if norm(k) == norm(key) {
			return k
		}
	}
	return ""
}

// expect checks a node's kind. An alias is refused wherever it appears: an
// anchor defined in one rule and used in another hides what the second
// grants. A null (a key with no value) is "empty".
func (l *loader) expect(n *yaml.Node, kind yaml.Kind, field, want string) bool {
	switch {
	case n.Kind == yaml.AliasNode:
		alias := "*" + n.Value
		if !plainAnchor.MatchString(n.Value) {
			alias = "an alias"
		}
		l.add(n, field, "is an alias (%s); aliases are not accepted: write the value out", alias)
		return false
	case n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" && kind != yaml.ScalarNode:
		l.add(n, field, "is empty; accepted: %s", want)
		return false
	case n.Kind != kind:
		l.add(n, field, "is %s; accepted: %s", describe(n), want)
		return false
	}
	return true
}

var plainAnchor = regexp.MustCompile(`^[A-Za-z0-9_-]{1,40}$`)

// str reads a string scalar. A YAML integer, float or boolean written
// without quotes is refused, not taken as its text: claims, ids and
// durations are strings, and a YAML reader (an editor's schema check, a
// conversion to JSON) would see a number instead, sometimes another one
// (0712 is 458 to YAML 1.1). Quoting says what is meant for every reader.
func (l *loader) str(n *yaml.Node, field, want string) (string, bool) {
	if !l.expect(n, yaml.ScalarNode, field, want) {
		return "", false
	}
	switch tag := n.ShortTag(); tag {
	case "!!str":
		return n.Value, true
	case "!!int", "!!float", "!!bool":
		l.add(n, field, "%s is %s written without quotes; this field is a string, and YAML readers may change the text of a number: quote it (\"%s\")",
			show(n.Value), describe(n), shownText(n.Value))
	case "!!null":
		l.add(n, field, "is empty; accepted: %s", want)
	default:
		l.add(n, field, "is tagged %s; accepted: %s, untagged", show(tag), want)
	}
	return "", false
}

// shownText is a value for use inside a quoted hint: shortened and free of
// quotes and control characters.
func shownText(s string) string {
	q := show(s)
	return strings.Trim(strings.TrimSuffix(q, "…"), `"`)
}

// seq reads a list.
func (l *loader) seq(n *yaml.Node, field, want string) ([]*yaml.Node, bool) {
	if !l.expect(n, yaml.SequenceNode, field, want) {
		return nil, false
	}
	if len(n.Content) == 0 {
		l.add(n, field, "is an empty list; accepted: %s", want)
		return nil, false
	}
	if len(n.Content) > maxItems {
		l.add(n, field, "lists %d items, more than %d", len(n.Content), maxItems)
		return nil, false
	}
	return n.Content, true
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	case yaml.DocumentNode:
		return "a document"
	}
	switch n.ShortTag() {
	case "!!str":
		return "a string"
	case "!!int":
		return "a YAML integer"
	case "!!float":
		return "a YAML number"
	case "!!bool":
		return "a YAML boolean"
	case "!!null":
		return "empty"
	}
	return "a value tagged " + show(n.ShortTag())
}

// join extends a field path by a key: rules[0].claims.ref, or
// claims["oidc.circleci.com/vcs-ref"] for a key that is not a plain word.
func join(field, key string) string {
	plain := key != ""
	for _, r := range key {
		if !(r == '_' || r == '-' || '0' <= r && r <= '9' || 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z') {
			plain = false
			break
		}
	}
	switch {
	case !plain:
		return field + "[" + show(key) + "]"
	case field == "":
		return key
	}
	return field + "." + key
}

func index(field string, i int) string { return fmt.Sprintf("%s[%d]", field, i) }

func (l *loader) audience(n *yaml.Node) string {
	const want = "the audience the broker accepts, exactly as the CI job requests it (https://cf-broker.example.com)"
	aud, ok := l.str(n, "audience", want)
	if !ok {
		return ""
	}
	switch {
	case aud == "":
		l.add(n, "audience", "is empty; accepted: %s, or no audience key when the broker gets --audience", want)
	case strings.IndexFunc(aud, func(r rune) bool { return unicode.IsSpace(r) || !unicode.IsPrint(r) }) >= 0:
		l.add(n, "audience", "%s holds whitespace or control characters; a token's aud is compared exactly; accepted: %s", show(aud), want)
	case len(aud) > 1000:
		l.add(n, "audience", "is %d characters long, more than 1000", len(aud))
	default:
		return aud
	}
	return ""
}

var issuerName = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

func (l *loader) issuers(n *yaml.Node) []Issuer {
	const want = "a mapping of short names to issuer URLs (github: https://token.actions.githubusercontent.com)"
	es, ok := l.entries(n, "issuers", want)
	if !ok {
		return nil
	}
	if len(es) == 0 {
		l.add(n, "issuers", "is empty; accepted: %s", want)
	}
	var out []Issuer
	byURL := map[string]string{}
	for _, e := range es {
		field := join("issuers", e.key)
		is := Issuer{Name: e.key, Kind: KindOf(e.key)}
		if !issuerName.MatchString(e.key) {
			l.add(e.keyNode, field, "%s is not an issuer name; accepted: lower-case letters, digits and hyphens, at most 63 (github, github-acme, gitlab-self, acme-idp)", show(e.key))
			if l.badIssuers == nil {
				l.badIssuers = map[string]bool{}
			}
			l.badIssuers[e.key] = true
		}
		if raw, ok := l.str(e.value, field, "the issuer's URL, its tokens' exact iss"); ok {
			if problem := checkIssuerURL(is.Kind, raw); problem != "" {
				l.add(e.value, field, "%s", problem)
			} else if other, dup := byURL[raw]; dup {
				l.add(e.value, field, "has the same URL as issuers.%s; a token's iss must name one issuer", other)
			} else {
				byURL[raw] = e.key
				is.URL = raw
			}
		}
		// A named issuer is kept even when its URL is wrong, so that a rule
		// naming it is not also told that the issuer does not exist.
		out = append(out, is)
	}
	return out
}

var circleCIIssuer = regexp.MustCompile(`^https://oidc\.circleci\.com/org/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// checkIssuerURL says what is wrong with an issuer URL, or "". The URL is
// compared with the token's iss byte for byte (go-oidc, reference/oidc.md
// §6), so it must be written exactly as the issuer writes iss: no trailing
// slash, lower-case scheme and host.
func checkIssuerURL(k Kind, raw string) string {
	const accepted = "accepted: an https URL without query, fragment or trailing slash, as the tokens' iss spells it (http only to a loopback host)"
	u, err := url.Parse(raw)
	switch {
	case err != nil || u.Host == "" || u.Opaque != "":
		return fmt.Sprintf("%s is not an absolute URL; %s", show(raw), accepted)
	case strings.ContainsAny(raw, " \t"):
		return fmt.Sprintf("%s holds whitespace; %s", show(raw), accepted)
	case u.User != nil:
		return fmt.Sprintf("%s holds a user or password; %s", show(raw), accepted)
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.Contains(raw, "#"):
		return fmt.Sprintf("%s has a query or fragment; %s", show(raw), accepted)
	case strings.HasSuffix(raw, "/"):
		return fmt.Sprintf("%s ends with /; go-oidc compares iss exactly, and issuers write it without one; %s", show(raw), accepted)
	case !strings.HasPrefix(raw, u.Scheme+"://") || u.Host != strings.ToLower(u.Host):
		return fmt.Sprintf("%s has upper-case letters in its scheme or host; iss is compared exactly; %s", show(raw), accepted)
	case u.Scheme == "http" && !token.IsLoopback(u.Hostname()):
		return fmt.Sprintf("%s is http:// to a host that is not loopback; keys fetched in clear text could be swapped; %s", show(raw), accepted)
	case u.Scheme != "https" && u.Scheme != "http":
		return fmt.Sprintf("%s has the scheme %s; %s", show(raw), show(u.Scheme), accepted)
	}
	if k == CircleCI && !circleCIIssuer.MatchString(raw) {
		return fmt.Sprintf("%s is not a CircleCI issuer; accepted: https://oidc.circleci.com/org/<organization id> (the organization's UUID, lower case): that URL names the organization, and so pins the tenant of every rule on it", show(raw))
	}
	if known := knownKind(u.Hostname()); known != "" && known != k {
		return fmt.Sprintf("%s is %s's issuer, but the name declares a %s issuer; name it %s or %s-<suffix>, so that its rules pin the tenant by %s's ids",
			show(raw), known.title(), k, known, known, known.title())
	}
	return ""
}

// knownKind is the kind of the public issuers whose hosts are known
// (reference/oidc.md §2, §4), so that GitHub's shared issuer cannot be
// declared generic and pinned by a sub that holds only names.
func knownKind(host string) Kind {
	switch {
	case host == "token.actions.githubusercontent.com",
		strings.HasPrefix(host, "token.actions.") && strings.HasSuffix(host, ".ghe.com"):
		return GitHub
	case host == "gitlab.com":
		return GitLab
	case host == "agent.buildkite.com":
		return Buildkite
	case host == "oidc.circleci.com":
		return CircleCI
	}
	return ""
}

func (l *loader) rules(n *yaml.Node, p *Policy) []Rule {
	items, ok := l.seq(n, "rules", "a list of rules, each with name, issuer, claims and grant")
	if !ok {
		return nil
	}
	rules := make([]Rule, 0, len(items))
	names := map[string]int{}
	for i, item := range items {
		r, nameNode := l.rule(index("rules", i), item, p)
		if r.Name != "" {
			if first, dup := names[r.Name]; dup {
				l.add(nameNode, index("rules", i)+".name", "%s is also the name of the rule at line %d; names are unique (they identify the rule in denials and the audit log)", show(r.Name), first)
			} else {
				names[r.Name] = r.Line
			}
		}
		rules = append(rules, r)
	}
	return rules
}

var ruleName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

func (l *loader) rule(field string, n *yaml.Node, p *Policy) (Rule, *yaml.Node) {
	r := Rule{Line: n.Line}
	f := l.fields(n, field, "name", "issuer", "claims", "grant")
	if f == nil {
		return r, nil
	}
	const nameWant = "letters, digits, '.', '_' and '-', at most 64, starting with a letter or digit (access-deploy)"
	if nn, ok := f["name"]; !ok {
		l.add(n, field+".name", "is missing; accepted: %s", nameWant)
	} else if name, ok := l.str(nn, field+".name", nameWant); ok {
		switch {
		case token.LooksLikeSecret(name):
			l.add(nn, field+".name", "looks like a token; a rule's name is shown in denials and the audit log; accepted: %s", nameWant)
		case ruleName.MatchString(name):
			r.Name = name
		default:
			l.add(nn, field+".name", "%s is not a rule name; accepted: %s", show(name), nameWant)
		}
	}
	kindKnown := false
	if in, ok := f["issuer"]; !ok {
		l.add(n, field+".issuer", "is missing; accepted: %s", issuerNames(p))
	} else if name, ok := l.str(in, field+".issuer", issuerNames(p)); ok {
		if is, found := p.IssuerByName(name); found {
			r.Issuer, kindKnown = is, !l.badIssuers[name]
		} else {
			l.add(in, field+".issuer", "%s names no issuer; accepted: %s", show(name), issuerNames(p))
		}
	}
	var pinFault bool
	claimsNode := n
	if cn, ok := f["claims"]; ok {
		claimsNode = cn
		kind := r.Issuer.Kind
		if !kindKnown {
			kind = ""
		}
		r.Claims, pinFault = l.claims(field+".claims", cn, kind, kindKnown)
	}
	if kindKnown && !pinFault {
		l.checkPinned(field+".claims", claimsNode, r)
	}
	if gn, ok := f["grant"]; ok {
		r.Grant = l.allowance(field+".grant", gn)
	} else {
		l.add(n, field+".grant", "is missing; accepted: a mapping with owner, account-ids, scopes, max-ttl and allowed-ips")
	}
	return r, f["name"]
}

func issuerNames(p *Policy) string {
	if len(p.Issuers) == 0 {
		return "a key of issuers"
	}
	var names []string
	for _, is := range p.Issuers {
		if issuerName.MatchString(is.Name) { // a bad name has its own fault, and is not repeated
			names = append(names, is.Name)
		}
	}
	if len(names) == 0 {
		return "a key of issuers"
	}
	return "a key of issuers (" + strings.Join(names, ", ") + ")"
}

// checkPinned enforces the tenant pin: at least one exact match on an
// immutable id claim of the issuer's kind (CircleCI: the issuer URL itself).
func (l *loader) checkPinned(field string, n *yaml.Node, r Rule) {
	if r.Issuer.Kind == CircleCI {
		return
	}
	var names []string
	for _, c := range r.Claims {
		if c.Pin {
			return
		}
		if rulesOf(r.Issuer.Kind).isName(c.Claim) {
			names = append(names, c.Claim)
		}
	}
	advice := rulesOf(r.Issuer.Kind).pinAdvice
	if len(names) > 0 {
		l.add(n, field, "pins its tenant only by name (%s), which is refused: %s", strings.Join(names, ", "), advice)
		return
	}
	l.add(n, field, "pins no tenant: %s", advice)
}

const claimWant = "a string, or a list of strings (any of them); * matches any run of characters except /"

// claims reads a rule's claims. pinFault reports a fault on a pin claim
// itself (a list, a glob, a value of the wrong shape), which already says
// what the missing pin would.
func (l *loader) claims(field string, n *yaml.Node, k Kind, kindKnown bool) (matches []ClaimMatch, pinFault bool) {
	es, ok := l.entries(n, field, "a mapping of claim names to values")
	if !ok {
		return nil, false
	}
	kr := rulesOf(k)
	for _, e := range es {
		cf := join(field, e.key)
		if e.key == "" {
			l.add(e.keyNode, field, "has an empty claim name")
			continue
		}
		if why, reserved := reservedClaims[e.key]; reserved {
			l.add(e.keyNode, cf, "cannot be matched in a rule: %s", why)
			continue
		}
		values, list, ok := l.claimValues(cf, e.value)
		if !ok {
			pinFault = pinFault || kindKnown && kr.isPin(e.key)
			continue
		}
		m := ClaimMatch{Claim: e.key, Values: values}
		glob := false
		for _, v := range values {
			if strings.Contains(v, "**") {
				l.add(e.value, cf, "%s holds **; a * already matches any run of characters except /, and no glob crosses /; write one * per path segment", show(v))
			}
			glob = glob || strings.Contains(v, "*")
		}
		isPin := kindKnown && kr.isPin(e.key)
		if isIDClaim(k, e.key) { // k is empty when the issuer is unknown: only *_id claims count then
			switch {
			case list:
				l.add(e.value, cf, "is a list; an id claim matches one exact value (write one rule per id)")
				pinFault = pinFault || isPin
				continue
			case glob:
				l.add(e.value, cf, "%s holds *; an id claim matches exactly (a pattern on an id admits strangers' ids)", show(values[0]))
				pinFault = pinFault || isPin
				continue
			}
		}
		if isPin && !list && !glob {
			if kr.pinValue(values[0]) {
				m.Pin = true
			} else {
				l.add(e.value, cf, "%s is not a valid %s; accepted: %s", show(values[0]), e.key, kr.pinShape)
				pinFault = true
			}
		}
		matches = append(matches, m)
	}
	return matches, pinFault
}

// claimValues reads a claim's value: a string or a list of strings.
func (l *loader) claimValues(field string, n *yaml.Node) (values []string, list, ok bool) {
	if n.Kind == yaml.SequenceNode {
		items, ok := l.seq(n, field, claimWant)
		if !ok {
			return nil, true, false
		}
		good := true
		for i, item := range items {
			v, ok := l.str(item, index(field, i), claimWant)
			if !ok {
				good = false
				continue
			}
			if !slices.Contains(values, v) {
				values = append(values, v)
			}
		}
		return values, true, good
	}
	v, ok := l.str(n, field, claimWant)
	if !ok {
		return nil, false, false
	}
	return []string{v}, false, true
}

const (
	accountsWant = "a list of Cloudflare account ids (32 lowercase hex characters, from the dashboard's account home)"
	scopesWant   = "a list of scope items, each a shorthand (organizations, apps-and-policies, …), a permission group's base name such as \"Access: Apps and Policies\", followed by :read, :write or :revoke (default read), or a permission group's 32-hex id"
	ipsWant      = "a list of IPv4 or IPv6 CIDRs (203.0.113.0/24, 2001:db8::/32) or single addresses, and the word caller (the address the request comes from)"
)

func (l *loader) allowance(field string, n *yaml.Node) Allowance {
	a := Allowance{Owner: token.OwnerUser}
	f := l.fields(n, field, "owner", "account-ids", "scopes", "max-ttl", "allowed-ips")
	if f == nil {
		return a
	}
	if on, ok := f["owner"]; ok {
		if s, ok := l.str(on, field+".owner", "user or account"); ok {
			switch o := token.Owner(s); o {
			case token.OwnerUser, token.OwnerAccount:
				a.Owner = o
			default:
				l.add(on, field+".owner", "%s is not an owner; accepted: user (the parent token's user owns the child) or account (the one account of account-ids owns it)", show(s))
			}
		}
	}
	if an, ok := f["account-ids"]; !ok {
		l.add(n, field+".account-ids", "is missing; accepted: %s", accountsWant)
	} else {
		a.AccountIDs = l.accounts(field+".account-ids", an)
	}
	if a.Owner == token.OwnerAccount && len(a.AccountIDs) > 1 {
		l.add(f["owner"], field+".owner", "is account, but account-ids lists %d accounts; an account-owned token belongs to exactly one account", len(a.AccountIDs))
	}
	if sn, ok := f["scopes"]; !ok {
		l.add(n, field+".scopes", "is missing; accepted: %s", scopesWant)
	} else {
		a.Scopes, a.scopeLines = l.scopes(field+".scopes", sn)
	}
	if tn, ok := f["max-ttl"]; !ok {
		l.add(n, field+".max-ttl", "is missing; accepted: a Go duration from 1m to 24h, such as 15m, 1h or 1h30m")
	} else if s, ok := l.grantStr(tn, field+".max-ttl", "a Go duration from 1m to 24h"); ok {
		ttl, err := token.ParseTTL(s)
		if err != nil {
			l.add(tn, field+".max-ttl", "%s", inputProblem(err, ""))
		}
		a.MaxTTL = ttl
	}
	if in, ok := f["allowed-ips"]; ok {
		a.AllowedIPs, a.Caller = l.allowedIPs(field+".allowed-ips", in)
	}
	return a
}

// grantStr reads a grant value that package token will check. A value
// shaped like a token is refused here without being passed on, since the
// token package's fault would quote it (it knows Cloudflare's shapes, not a
// JWT's).
func (l *loader) grantStr(n *yaml.Node, field, want string) (string, bool) {
	s, ok := l.str(n, field, want)
	if ok && token.LooksLikeSecret(s) {
		l.add(n, field, "holds a value that looks like a token (not shown); accepted: %s", want)
		return "", false
	}
	return s, ok
}

// inputProblem is what an *InputError of package token says, with this
// file's own accepted text when the input's would speak of the action's
// comma-separated inputs.
func inputProblem(err error, accepted string) string {
	var ie *token.InputError
	if !errors.As(err, &ie) {
		return err.Error()
	}
	if accepted == "" {
		accepted = ie.Accepted
	}
	return ie.Problem + "; accepted: " + accepted
}

func (l *loader) accounts(field string, n *yaml.Node) []string {
	items, ok := l.seq(n, field, accountsWant)
	if !ok {
		return nil
	}
	var ids []string
	for i, item := range items {
		f := index(field, i)
		s, ok := l.grantStr(item, f, accountsWant)
		if !ok {
			continue
		}
		got, err := token.ParseAccountIDs(s)
		ids = l.addOne(ids, item, f, got, err, accountsWant, "account ids")
	}
	return ids
}

// addOne adds to list, once, the one value that a list item parsed to with
// the action's parser (got, err): a grant's list holds one value an item,
// so that each line the loader names is one value.
func (l *loader) addOne(list []string, item *yaml.Node, f string, got []string, err error, want, what string) []string {
	switch {
	case err != nil:
		l.add(item, f, "%s", inputProblem(err, want))
	case len(got) != 1:
		l.add(item, f, "holds %d %s; write one per list item", len(got), what)
	case !slices.Contains(list, got[0]):
		list = append(list, got[0])
	}
	return list
}

func (l *loader) scopes(field string, n *yaml.Node) ([]token.Scope, []int) {
	items, ok := l.seq(n, field, scopesWant)
	if !ok {
		return nil, nil
	}
	var scopes []token.Scope
	var lines []int
	for i, item := range items {
		f := index(field, i)
		if item.Kind == yaml.MappingNode {
			// "- Access: Apps and Policies" is a mapping to YAML.
			l.add(item, f, "is a mapping: a scope name that holds \": \" must be quoted in YAML (- \"Access: Apps and Policies:write\")")
			continue
		}
		s, ok := l.grantStr(item, f, scopesWant)
		if !ok {
			continue
		}
		sc, problem := parseScopeItem(s)
		if problem != "" {
			l.add(item, f, "%s", problem)
			continue
		}
		if !containsScope(scopes, sc) {
			scopes = append(scopes, sc)
			lines = append(lines, item.Line)
		}
	}
	return scopes, lines
}

// parseScopeItem reads one list item as one scope, through package token as
// the scopes input is read. In a YAML list the item ends where the list says,
// so a comma is part of the name (Cloudflare's names hold commas: "Access:
// Organizations, Identity Providers, and Groups"); the item is quoted for
// token.ParseScopes, which would split it. An item that is plainly several
// shorthands or ids in one string is refused rather than read as one name.
func parseScopeItem(item string) (token.Scope, string) {
	s := item
	if strings.Contains(item, ",") && !strings.Contains(item, `"`) {
		if several(item) {
			return token.Scope{}, fmt.Sprintf("%s holds several scope items; write one per list item", show(item))
		}
		name, level := item, ""
		if i := strings.LastIndex(item, ":"); i >= 0 && !strings.HasPrefix(item[i+1:], " ") {
			name, level = item[:i], item[i:]
		}
		s = `"` + strings.TrimSpace(name) + `"` + level
	}
	scopes, err := token.ParseScopes(s, token.Read)
	switch {
	case err != nil:
		return token.Scope{}, inputProblem(err, scopesWant)
	case len(scopes) != 1:
		return token.Scope{}, fmt.Sprintf("%s holds %d scope items; write one per list item", show(item), len(scopes))
	}
	return scopes[0], ""
}

// several reports whether every comma-separated part of item is a
// shorthand or a group id, optionally with a level: a list written as one
// string, not a group name with commas.
func several(item string) bool {
	for _, part := range strings.Split(item, ",") {
		part = strings.ToLower(strings.TrimSpace(part))
		if i := strings.LastIndex(part, ":"); i >= 0 {
			part = part[:i]
		}
		if !token.IsShorthand(part) && !token.IsHexID(part) {
			return false
		}
	}
	return true
}

func tokenGroupProblem(group string) string {
	return fmt.Sprintf("%s reads or manages API tokens, which is refused: a child holding it could make tokens of its own that outlive the job; accepted: groups that do not touch API tokens (Access, DNS, …)", show(group))
}

// sameScope reports whether a and b name the same group at the same level;
// base names compare case-insensitively, as token.Resolve resolves them.
func sameScope(a, b token.Scope) bool {
	if a.ID != "" || b.ID != "" {
		return a.ID == b.ID
	}
	return a.Level == b.Level && strings.EqualFold(a.Name, b.Name)
}

func containsScope(list []token.Scope, sc token.Scope) bool {
	return slices.ContainsFunc(list, func(x token.Scope) bool { return sameScope(x, sc) })
}

func (l *loader) allowedIPs(field string, n *yaml.Node) (cidrs []string, caller bool) {
	if n.Kind == yaml.SequenceNode && len(n.Content) == 0 {
		return nil, false // an empty list, like no list: no floor
	}
	items, ok := l.seq(n, field, ipsWant)
	if !ok {
		return nil, false
	}
	for i, item := range items {
		f := index(field, i)
		s, ok := l.grantStr(item, f, ipsWant)
		if !ok {
			continue
		}
		switch {
		case strings.EqualFold(s, CallerKeyword):
			caller = true
			continue
		case strings.EqualFold(s, token.RunnerKeyword):
			l.add(item, f, "runner is the action's word for the runner's own address; the broker sees the address a request comes from: write caller")
			continue
		}
		got, _, err := token.ParseAllowedIPs(s)
		cidrs = l.addOne(cidrs, item, f, got, err, ipsWant, "entries")
	}
	return cidrs, caller
}
