package oidcissuertest_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/cf-scoped-token/cf-scoped-token/internal/oidcissuer/oidcissuertest"
)

// TestSign: the audience is the default aud, a claim overrides it, and a nil value removes it.
func TestSign(t *testing.T) {
	t.Parallel()
	iss, _ := oidcissuertest.Serve(t)
	for _, tc := range []struct {
		name   string
		claims map[string]any
		want   any // the aud claim; nil: none
	}{
		{"default", nil, "https://broker.test"},
		{"overridden", map[string]any{"aud": "https://elsewhere.test"}, "https://elsewhere.test"},
		{"removed", map[string]any{"aud": nil}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			claims := oidcissuertest.Claims(t, oidcissuertest.Sign(t, iss, "https://broker.test", tc.claims))
			if diff := cmp.Diff(tc.want, claims["aud"]); diff != "" {
				t.Errorf("aud (-want +got):\n%s", diff)
			}
			if claims["iss"] != iss.URL() {
				t.Errorf("iss %v, want %s", claims["iss"], iss.URL())
			}
		})
	}
}
