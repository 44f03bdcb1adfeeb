package mint_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/cf-scoped-token/cf-scoped-token/internal/emulator"
	"github.com/cf-scoped-token/cf-scoped-token/internal/mint"
	"github.com/cf-scoped-token/cf-scoped-token/internal/token"
)

// The benchmarks run the lifecycle against the emulator on loopback, so
// time and allocations include the server's side of each request.

// BenchmarkMint: permission groups, create, verify, handover.
func BenchmarkMint(b *testing.B) {
	w := mustWorld(b)
	w.e.SetLimits(emulator.Limits{}) // b.N creates would hit the quota and the rate limit
	req := w.request(b)
	base := req.Name
	handover := func(mint.Minted) error { return nil }
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		req.Name = base + strconv.Itoa(i)
		i++
		if _, err := w.m.Mint(b.Context(), req, handover); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRevoke: delete, confirming get, look-up of same-named twins.
func BenchmarkRevoke(b *testing.B) {
	w := mustWorld(b)
	w.e.SetLimits(emulator.Limits{})
	exp := t0.Add(time.Hour)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		name := token.NamePrefix + "bench " + strconv.Itoa(i)
		id, _ := w.e.IssueUserToken(w.seed.UserID, emulator.TokenSpec{Name: name, ExpiresOn: exp})
		b.StartTimer()
		if _, err := w.m.Revoke(b.Context(), token.Endpoint{}, token.Info{ID: id, Name: name, ExpiresOn: exp}); err != nil {
			b.Fatal(err)
		}
	}
}
