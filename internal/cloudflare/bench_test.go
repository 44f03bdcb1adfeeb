package cloudflare

import (
	"strconv"
	"testing"
	"time"

	"github.com/cf-scoped-token/cf-scoped-token/internal/emulator"
	"github.com/cf-scoped-token/cf-scoped-token/internal/token"
)

// unlimited lifts the quota and the rate limit, which b.N creates would hit.
var unlimited = emulator.Limits{}

func BenchmarkCreateToken(b *testing.B) {
	w := mustWorld(b)
	w.e.SetLimits(unlimited)
	c := w.client(w.seed.UserToken)
	spec := token.Spec{
		Policies:   []token.Policy{token.AllowPolicy([]string{emulator.SeedAccount1}, []string{gAppsRead, gServiceRead})},
		ExpiresOn:  t0.Add(time.Hour),
		AllowedIPs: []string{"127.0.0.1/32"},
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		spec.Name = token.NamePrefix + "bench " + strconv.Itoa(i)
		i++
		if _, err := c.CreateToken(b.Context(), token.Endpoint{}, spec); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPermissionGroups(b *testing.B) {
	w := mustWorld(b)
	w.e.SetLimits(unlimited)
	c := w.client(w.seed.UserToken)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.PermissionGroups(b.Context(), token.Endpoint{}); err != nil {
			b.Fatal(err)
		}
	}
}
