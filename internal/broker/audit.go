package broker

import (
	"encoding/json"
	"io"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/cf-scoped-token/cf-scoped-token/internal/policy"
	"github.com/cf-scoped-token/cf-scoped-token/internal/token"
)

// The audit log's events (SPEC, "The broker"): one JSON line per decision.
const (
	EventMint   = "token.mint"   // a child token was handed out
	EventDeny   = "token.deny"   // an exchange was refused or failed
	EventRevoke = "token.revoke" // a revoke request was decided
	EventSweep  = "token.sweep"  // an expired token of the broker's was deleted
)

// Entry is one line of the audit log. Every string that came from a
// token's claims or a request is shortened and, when it is shaped like a
// token or a JWT, replaced by "[redacted]" (see clean); JSON encoding
// escapes control characters, so no value can forge a line. No field ever
// holds a token or a JWT.
type Entry struct {
	Time  time.Time `json:"time"`
	Event string    `json:"event"`
	// Outcome of a revoke: deleted, not_found (already gone), unknown (not a
	// token Cloudflare knows), foreign (a token this broker did not make, or
	// one the parent may not read: left alone) or failed.
	Outcome string `json:"outcome,omitempty"`
	Rule    string `json:"rule,omitempty"`
	Issuer  string `json:"issuer,omitempty"`
	Subject string `json:"subject,omitempty"`
	// Repository and RepositoryID name the job's repository or project:
	// GitHub repository and repository_id, GitLab project_path and
	// project_id, Buildkite pipeline_slug and pipeline_id, CircleCI
	// vcs-origin and project-id.
	Repository   string   `json:"repository,omitempty"`
	RepositoryID string   `json:"repository_id,omitempty"`
	RunID        string   `json:"run_id,omitempty"`
	JTI          string   `json:"jti,omitempty"`
	Caller       string   `json:"caller,omitempty"`
	Scopes       []string `json:"scopes,omitempty"`
	Accounts     []string `json:"accounts,omitempty"`
	Owner        string   `json:"owner,omitempty"`
	TokenID      string   `json:"token_id,omitempty"`
	Name         string   `json:"name,omitempty"`
	ExpiresAt    string   `json:"expires_at,omitempty"`
	Status       int      `json:"status,omitempty"` // the HTTP status answered
	Code         string   `json:"code,omitempty"`   // the OAuth error code answered
	Reason       string   `json:"reason,omitempty"`
}

// auditLog writes entries as JSON lines, one Write per line, so lines from
// concurrent requests never interleave.
type auditLog struct {
	mu  sync.Mutex
	w   io.Writer
	now func() time.Time
}

func (a *auditLog) write(e Entry) {
	e.Time = a.now().UTC()
	b, err := json.Marshal(e)
	if err != nil {
		return // an Entry holds only strings, ints and times: this does not happen
	}
	b = append(b, '\n')
	a.mu.Lock()
	defer a.mu.Unlock()
	_, _ = a.w.Write(b)
}

// maxLogged is how many characters of one value the log keeps.
const maxLogged = 200

// clean makes a value from a token or a request safe to log: valid UTF-8,
// at most maxLogged characters, and "[redacted]" when it is shaped like a
// token or a JWT (a claim such as GitHub's workflow name is the user's
// free text).
func clean(s string) string {
	if token.LooksLikeSecret(s) {
		return "[redacted]"
	}
	if !utf8.ValidString(s) {
		s = string([]rune(s)) // invalid bytes become U+FFFD
	}
	if utf8.RuneCountInString(s) > maxLogged {
		s = string([]rune(s)[:maxLogged]) + "…"
	}
	return s
}

// claimString is a claim as a cleaned string, "" when absent or not a scalar.
func claimString(claims map[string]any, name string) string {
	switch v := claims[name].(type) {
	case string:
		return clean(v)
	case json.Number:
		return clean(v.String())
	case bool:
		if v {
			return "true"
		}
		return "false"
	}
	return ""
}

// runFields are the claims that name a job's repository, its id and its run
// (for the audit log and the token's name), by CI system
// (reference/oidc.md §2, §4).
type runFields struct {
	repository, repositoryID, run, attempt string
}

func runOf(kind policy.Kind, claims map[string]any) runFields {
	get := func(name string) string { return claimString(claims, name) }
	switch kind {
	case policy.GitHub:
		return runFields{get("repository"), get("repository_id"), get("run_id"), get("run_attempt")}
	case policy.GitLab:
		return runFields{get("project_path"), get("project_id"), get("pipeline_id"), get("job_id")}
	case policy.Buildkite:
		return runFields{get("pipeline_slug"), get("pipeline_id"), get("build_number"), get("job_id")}
	case policy.CircleCI:
		return runFields{get("oidc.circleci.com/vcs-origin"), get("oidc.circleci.com/project-id"),
			get("oidc.circleci.com/pipeline-id"), get("oidc.circleci.com/job-id")}
	}
	return runFields{}
}

// scopeNames writes scopes as the scopes input would, cleaned for the log
// (a scope item is the caller's free text).
func scopeNames(scopes []token.Scope) []string {
	out := make([]string, len(scopes))
	for i, sc := range scopes {
		out[i] = clean(sc.String())
	}
	return out
}
