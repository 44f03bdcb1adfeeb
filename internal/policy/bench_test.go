package policy

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cf-scoped-token/cf-scoped-token/internal/token"
)

// BenchmarkParse loads the GitHub example policy (three rules), as the
// broker does at start and on every SIGHUP.
func BenchmarkParse(b *testing.B) {
	data, err := os.ReadFile(filepath.Join("..", "..", "docs", "policy", "github.yaml"))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := Parse(data); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMatch is one exchange's policy decision: the token fails the
// first rule's claims and is granted by the second, with a scope, an
// account and a ttl asked for.
func BenchmarkMatch(b *testing.B) {
	p := mustParse(b, matchFile)
	claims := ghClaims(map[string]any{"ref": "refs/heads/dev", "ref_protected": "true"})
	req := Request{Issuer: githubURL, Scopes: []token.Scope{apRead}, AccountIDs: []string{acctB}, TTL: 15 * time.Minute, Caller: caller4}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.Match(claims, req); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMatchOutsider is the decision for a token outside every tenant:
// the cost a flood of strangers' tokens puts on the broker.
func BenchmarkMatchOutsider(b *testing.B) {
	p := mustParse(b, matchFile)
	claims := ghClaims(map[string]any{"repository_owner_id": "1", "repository_id": "2"})
	req := Request{Issuer: githubURL, Caller: caller4}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.Match(claims, req); err == nil {
			b.Fatal("an outsider was granted")
		}
	}
}
