// Package brokertest is what the broker's tests and the CLI's end-to-end tests of the broker
// share: the test policy, the exchange form, a second parent token on the seeded emulator,
// and a buffer for a broker's concurrent output. Only _test.go files import it.
package brokertest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/cf-scoped-token/cf-scoped-token/internal/broker"
	"github.com/cf-scoped-token/cf-scoped-token/internal/emulator"
)

// Audience is the brokers' audience in the tests: Policy's, and the aud of their tokens.
const Audience = "https://broker.test"

// Policy is the tests' policy, a format for FormatPolicy. Its one rule, access-deploy, admits
// the issuer's default job (oidcissuer.DefaultClaims: a push to main of repository 1104004353
// of owner 46576199) to the first two seeded accounts.
const Policy = `audience: ` + Audience + `
issuers:
  github: %[1]s
rules:
  - name: access-deploy
    issuer: github
    claims:
      repository_owner_id: "46576199"
      repository_id: "1104004353"
      ref: refs/heads/main
    grant:
      account-ids: [%[2]s, %[3]s]
      scopes: [apps-and-policies:write, organizations:read]
      max-ttl: 2h
`

// FormatPolicy fills a policy format as Policy is one: %[1]s is the issuer's URL, %[2]s and
// %[3]s are emulator.SeedAccount1 and SeedAccount2 (named by index, so that a format may use
// any of them).
func FormatPolicy(format, issuerURL string) string {
	return fmt.Sprintf(format, issuerURL, emulator.SeedAccount1, emulator.SeedAccount2)
}

// Form is a valid RFC 8693 exchange form for subject, with overrides as key, value pairs
// (an empty value removes the parameter).
func Form(subject string, kv ...string) url.Values {
	f := url.Values{
		"grant_type":         {broker.GrantTypeTokenExchange},
		"subject_token":      {subject},
		"subject_token_type": {broker.TokenTypeIDToken},
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "" {
			f.Del(kv[i])
		} else {
			f.Set(kv[i], kv[i+1])
		}
	}
	return f
}

// SecondParent issues another user-owned parent token of s's user, as able as s.UserToken to
// make Policy's tokens, and returns its value: the parent of a second broker, whose tokens
// the first must not count as its own.
func SecondParent(e *emulator.Emulator, s emulator.Seeded) string {
	accounts := map[string]string{}
	for _, id := range s.AccountIDs {
		accounts["com.cloudflare.api.account."+id] = "*"
	}
	_, v := e.IssueUserToken(s.UserID, emulator.TokenSpec{
		Name: "another broker's parent",
		Policies: []emulator.Policy{
			{Effect: "allow", PermissionGroups: []string{"686d18d5ac6c441c867cbf6771e58a0a"}, // API Tokens Write
				Resources: map[string]string{"com.cloudflare.api.user." + s.UserID: "*"}},
			{Effect: "allow", PermissionGroups: []string{
				"1e13c5124ca64b72b1969a67e8829049", // Access: Apps and Policies Write
				"bfe0d8686a584fa680f4c53b5eb0de6d", // Access: Organizations, Identity Providers, and Groups Write
			}, Resources: accounts},
		},
	})
	return v
}

// Buffer collects a broker's output (its audit log, its log lines) from concurrent writers.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// String returns what was written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// Entries decodes what was written so far as an audit log, one JSON entry a line; it fails
// tb at a line that is not one.
func (b *Buffer) Entries(tb testing.TB) []broker.Entry {
	tb.Helper()
	var out []broker.Entry
	for _, line := range strings.Split(strings.TrimSpace(b.String()), "\n") {
		if line == "" {
			continue
		}
		var e broker.Entry
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			tb.Fatalf("audit line %q: %v", line, err)
		}
		out = append(out, e)
	}
	return out
}
