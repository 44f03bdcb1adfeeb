package policy

import (
	"fmt"

	"github.com/cf-scoped-token/cf-scoped-token/internal/token"
)

// CheckScopes resolves every rule's scopes against the permission-group
// list the API returned (GET …/tokens/permission_groups), as minting will:
// a name that resolves to no account group, an id the list does not hold,
// or a group that reads or manages API tokens (an id can name one) is a
// fault with its line. Parse cannot check this, having no list; the broker
// calls it at start and on reload, once it has the catalogue, so that a
// typo in a scope fails there and not at a job's first exchange.
func (p *Policy) CheckScopes(groups []token.PermissionGroup) error {
	var faults []Fault
	for i, r := range p.Rules {
		field := fmt.Sprintf("rules[%d].grant.scopes", i)
		for j, sc := range r.Grant.Scopes {
			line := 0
			if j < len(r.Grant.scopeLines) {
				line = r.Grant.scopeLines[j]
			}
			// Resolve refuses a name it cannot resolve, an id the list lacks and
			// a group that manages tokens, as it does for a job's own scopes.
			if _, err := token.Resolve([]token.Scope{sc}, groups); err != nil {
				faults = append(faults, Fault{Line: line, Field: field, Msg: inputProblem(err, scopesWant)})
			}
		}
	}
	if len(faults) > 0 {
		return &LoadError{Faults: faults}
	}
	return nil
}
