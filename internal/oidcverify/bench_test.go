package oidcverify_test

import (
	"fmt"
	"sync"
	"testing"

	"github.com/cf-scoped-token/cf-scoped-token/internal/oidcissuer"
)

// BenchmarkVerify measures Verify with discovery and keys cached: parse, algorithm pin,
// signature (go-oidc), claims and the replay check. Every iteration needs a token of its own
// (a second use is a replay), so the tokens are signed before the timer starts.
func BenchmarkVerify(b *testing.B) {
	for _, alg := range []oidcissuer.Alg{oidcissuer.RS256, oidcissuer.ES256} {
		b.Run(string(alg), func(b *testing.B) {
			e := mustEnv(b)
			e.warm(b)
			tokens := make([]string, b.N)
			var wg sync.WaitGroup
			const workers = 4
			for w := range workers {
				wg.Go(func() {
					for i := w; i < len(tokens); i += workers {
						raw, err := e.iss.Sign(map[string]any{"aud": aud, "jti": fmt.Sprint("bench-", i)}, oidcissuer.WithAlg(alg))
						if err != nil {
							b.Error(err)
							return
						}
						tokens[i] = raw
					}
				})
			}
			wg.Wait()
			before := e.counts()
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				if _, err := e.v.Verify(b.Context(), tokens[i]); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			e.assertRequests(b, "while verifying with cached keys", counts{}, before)
		})
	}
}
