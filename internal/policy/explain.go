package policy

import (
	"errors"
	"fmt"
	"strings"

	"github.com/cf-scoped-token/cf-scoped-token/internal/token"
)

// Explanation is what `cf-scoped-token policy explain` shows: the answer a
// request would get, and every rule's verdict on it. It is for the
// operator, who holds the file: unlike a Denial it names every rule and
// every failing claim, including tenant pins.
type Explanation struct {
	Grant  *Grant    // the grant Match gives; nil when it denies
	Denial *Denial   // what Match tells the caller when it denies
	Rules  []Verdict // one per rule, in file order; empty when the request itself is refused
}

// Verdict is one rule's view of a request.
type Verdict struct {
	Rule    string
	Line    int
	Matched bool   // the claims and the request fit this rule
	Chosen  bool   // this rule's grant is the answer (the first that matched)
	Code    Code   // when not Matched: the code this rule alone would give
	Reason  string // when not Matched: the first thing that failed
}

// Explain runs Match and also says, for each rule, whether it matches and
// if not, why.
func (p *Policy) Explain(claims map[string]any, req Request) Explanation {
	var e Explanation
	g, err := p.Match(claims, req)
	if err != nil {
		var d *Denial
		if errors.As(err, &d) {
			e.Denial = d
		}
	} else {
		e.Grant = &g
	}
	if checkRequest(&req) != nil {
		return e
	}
	chosen := false
	for i := range p.Rules {
		r := &p.Rules[i]
		o, _ := r.check(claims, &req, true)
		v := Verdict{Rule: r.Name, Line: r.Line}
		if o.stage == matched {
			v.Matched, v.Chosen = true, !chosen
			chosen = true
		} else {
			v.Code, v.Reason = o.code, o.reason
		}
		e.Rules = append(e.Rules, v)
	}
	return e
}

// String writes the explanation as policy explain prints it, one line per
// rule and a last line with the answer.
func (e Explanation) String() string {
	var b strings.Builder
	first := ""
	for _, v := range e.Rules {
		fmt.Fprintf(&b, "rule %q (line %d): ", v.Rule, v.Line)
		switch {
		case v.Chosen:
			first = v.Rule
			b.WriteString("matches\n")
		case v.Matched:
			fmt.Fprintf(&b, "matches too, but rule %q comes first\n", first)
		default:
			fmt.Fprintf(&b, "no (%s): %s\n", v.Code, v.Reason)
		}
	}
	switch {
	case e.Grant != nil:
		fmt.Fprintf(&b, "granted by rule %q: %s\n", e.Grant.Rule, describeGrant(*e.Grant))
	case e.Denial != nil:
		fmt.Fprintf(&b, "denied (%s); the caller is told: %s\n", e.Denial.Code, e.Denial.Error())
	}
	return b.String()
}

func describeGrant(g Grant) string {
	ips := "no IP condition"
	if len(g.AllowedIPs) > 0 {
		ips = "allowed-ips " + strings.Join(g.AllowedIPs, ", ")
	}
	return fmt.Sprintf("owner %s; accounts %s; scopes %s; ttl %s; %s",
		g.Owner, strings.Join(g.AccountIDs, ", "), scopeList(g.Scopes), formatDuration(g.TTL), ips)
}

func scopeList(scopes []token.Scope) string {
	items := make([]string, len(scopes))
	for i, sc := range scopes {
		items[i] = sc.String()
	}
	return strings.Join(items, ", ")
}
