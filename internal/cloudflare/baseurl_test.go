package cloudflare

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/cf-scoped-token/cf-scoped-token/internal/token"
)

// TestClient_RefusesClearTextOffLoopback: whoever builds the client, the
// parent token never leaves the machine over http://.
func TestClient_RefusesClearTextOffLoopback(t *testing.T) {
	t.Parallel()
	var sent int
	hc := &http.Client{Transport: roundTripFunc(func(*http.Request) (*http.Response, error) {
		sent++
		return nil, context.Canceled
	})}
	for _, tc := range []struct {
		base string
		ok   bool
	}{
		{"http://api.example.com/client/v4", false},
		{"http://10.0.0.1/client/v4", false},
		{"ftp://127.0.0.1/client/v4", false},
		{"/client/v4", false},
		{"http://127.0.0.1:8787/client/v4", true},
		{"http://[::1]/client/v4", true},
		{"http://localhost/client/v4", true},
		{"https://api.cloudflare.com/client/v4", true},
	} {
		_, err := checkBaseURL(tc.base)
		if (err == nil) != tc.ok {
			t.Errorf("checkBaseURL(%q) = %v, want ok=%v", tc.base, err, tc.ok)
		}
		if tc.ok {
			continue
		}
		c := &Client{BaseURL: tc.base, HTTP: hc, Token: token.NewSecret("cfut_secretvalue")}
		if _, err := c.PermissionGroups(t.Context(), token.Endpoint{}); err == nil || strings.Contains(err.Error(), "secretvalue") {
			t.Errorf("PermissionGroups via %q: %v, want a refusal without the token", tc.base, err)
		}
	}
	if sent != 0 {
		t.Errorf("%d requests were sent", sent)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
