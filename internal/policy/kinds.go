package policy

import (
	"slices"
	"strings"
)

// kindRules is what a kind of issuer means for its rules: which claims pin
// a tenant (and what their values look like), which claims are only names,
// and which claim keys the per-identity rate limit.
type kindRules struct {
	pins      []string
	pinValue  func(string) bool
	pinShape  string   // what a pin value looks like, for faults
	names     []string // claims that name a tenant but do not pin it
	identity  []string // IdentityKey: the first present claim, else sub
	pinAdvice string   // how to pin a rule of this kind, for faults
}

// rulesOf holds the tenant facts per kind (reference/oidc.md §3 and §4):
// names can be deleted and re-registered by someone else, and one issuer
// (GitHub's, Buildkite's) serves every customer, so only an exact match on
// an immutable id says whose job this is.
func rulesOf(k Kind) kindRules {
	switch k {
	case GitHub:
		return kindRules{
			pins:      []string{"repository_id", "repository_owner_id"},
			pinValue:  isDigits,
			pinShape:  `a numeric string, as the token carries it ("712345678")`,
			names:     []string{"repository", "repository_owner", "enterprise", "sub", "workflow_ref", "job_workflow_ref"},
			identity:  []string{"repository_id", "repository_owner_id"},
			pinAdvice: `add an exact repository_id or repository_owner_id (numeric strings, shown in the token and by GET /repos/{owner}/{repo}); GitHub's issuer is shared by every repository on it, and a name such as repository can be deleted and re-registered by someone else`,
		}
	case GitLab:
		return kindRules{
			// job_project_id and job_namespace_id name the project that runs
			// the job; for a merge request from a fork, project_id is the
			// fork's (reference/oidc.md §4).
			pins:      []string{"project_id", "namespace_id", "job_project_id", "job_namespace_id"},
			pinValue:  isDigits,
			pinShape:  `a numeric string ("42")`,
			names:     []string{"project_path", "namespace_path", "job_project_path", "job_namespace_path", "sub", "ci_config_ref_uri"},
			identity:  []string{"project_id", "namespace_id"},
			pinAdvice: `add an exact project_id or namespace_id (numeric strings, shown on the project's and group's settings pages); a path such as project_path can be renamed and taken by someone else`,
		}
	case Buildkite:
		return kindRules{
			// Buildkite's organization_id is the organization's UUID, not a
			// number; the token carries it only when the job asks for it
			// (buildkite-agent oidc request-token --claim organization_id).
			pins:      []string{"organization_id"},
			pinValue:  isUUID,
			pinShape:  `the organization's UUID in lower case ("0184990a-477b-4fa8-9968-496074483cee")`,
			names:     []string{"organization_slug", "pipeline_slug", "sub"},
			identity:  []string{"organization_id"},
			pinAdvice: `add an exact organization_id (the organization's UUID; request it with buildkite-agent oidc request-token --claim organization_id); Buildkite's issuer is shared by every organization, and a slug can be re-registered by someone else`,
		}
	case CircleCI:
		// The issuer URL names the organization, so the issuer pins the
		// tenant; Parse requires that URL shape.
		return kindRules{}
	}
	return kindRules{
		pins:      []string{"sub"},
		pinValue:  func(s string) bool { return s != "" },
		pinShape:  "the exact subject",
		identity:  nil,
		pinAdvice: "add an exact sub (the subject the issuer puts in its tokens for this workload); a generic issuer has no other claim known to be immutable",
	}
}

func (kr kindRules) isPin(claim string) bool { return slices.Contains(kr.pins, claim) }

func (kr kindRules) isName(claim string) bool { return slices.Contains(kr.names, claim) }

// isIDClaim reports whether a claim is an identifier that must be matched
// exactly: GitHub's and GitLab's *_id claims, CircleCI's …-id claims, and a
// generic issuer's sub. A glob or a list on one is almost always a mistake
// that widens a rule to strangers (an id prefix is not an owner).
func isIDClaim(k Kind, claim string) bool {
	if k == Generic && claim == "sub" {
		return true
	}
	return strings.HasSuffix(claim, "_id") || strings.HasSuffix(claim, "-id")
}

// reservedClaims are registered claims a rule may not match on, with why.
var reservedClaims = map[string]string{
	"iss": "the rule's issuer already fixes it",
	"aud": "the broker checks it against its audience",
	"exp": "the broker checks the token's lifetime",
	"nbf": "the broker checks the token's lifetime",
	"iat": "the broker checks the token's lifetime",
	"jti": "it is unique per token and the broker accepts each one once",
}

func isDigits(s string) bool {
	if s == "" || len(s) > 20 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// isUUID reports whether s is a UUID in its canonical lower-case form, the
// form the issuers put in their tokens.
func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
				return false
			}
		}
	}
	return true
}
