package policy

import (
	"errors"
	"strings"
	"testing"
)

const (
	acctA = "0123456789abcdef0123456789abcdef"
	acctB = "fedcba9876543210fedcba9876543210"

	githubURL = "https://token.actions.githubusercontent.com"
)

// baseFile is a valid policy; the load-rule tables edit it line by line, so
// the line numbers in their expectations are this file's.
const baseFile = `audience: https://cf-broker.example.com
issuers:
  github: https://token.actions.githubusercontent.com
  gitlab: https://gitlab.com
rules:
  - name: access-deploy
    issuer: github
    claims:
      repository_owner_id: "5234567"
      repository_id: "712345678"
      ref: refs/heads/main
      environment: [production, staging]
      job_workflow_ref: octo-org/infra/.github/workflows/access.yml@refs/heads/*
    grant:
      owner: account
      account-ids: [0123456789abcdef0123456789abcdef]
      scopes: [apps-and-policies:write, organizations:read]
      max-ttl: 1h
      allowed-ips: [caller]
`

// edit returns baseFile with the given lines (1-based) replaced; a
// replacement may hold several lines, and "" deletes the line. A key past
// the last line appends.
func edit(lines map[int]string) string {
	src := strings.Split(strings.TrimSuffix(baseFile, "\n"), "\n")
	var out []string
	for i, line := range src {
		repl, ok := lines[i+1]
		switch {
		case !ok:
			out = append(out, line)
		case repl != "":
			out = append(out, repl)
		}
	}
	for n := len(src) + 1; n <= len(src)+5; n++ {
		if repl, ok := lines[n]; ok {
			out = append(out, repl)
		}
	}
	return strings.Join(out, "\n") + "\n"
}

// mustParse parses a policy the test expects to be valid.
func mustParse(tb testing.TB, src string) *Policy {
	tb.Helper()
	p, err := Parse([]byte(src))
	if err != nil {
		tb.Fatalf("Parse: %v", err)
	}
	return p
}

// faultsOf parses a policy the test expects to be refused and returns its faults.
func faultsOf(tb testing.TB, src string) []Fault {
	tb.Helper()
	p, err := Parse([]byte(src))
	if err == nil {
		tb.Fatalf("Parse accepted the file:\n%s\npolicy: %+v", src, p)
	}
	var le *LoadError
	if !errors.As(err, &le) {
		tb.Fatalf("Parse error %v (%T) is not a *LoadError", err, err)
	}
	if p != nil {
		tb.Fatalf("Parse returned a policy with its error")
	}
	if len(le.Faults) == 0 {
		tb.Fatal("LoadError holds no faults")
	}
	return le.Faults
}
