package cli

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cf-scoped-token/cf-scoped-token/internal/broker"
	"github.com/cf-scoped-token/cf-scoped-token/internal/mint"
)

// TestExplain_BrokerErrors: "tried again" only for what was tried again;
// another answer points at broker-url; a revoke's answer gets none of the
// exchange's hints.
func TestExplain_BrokerErrors(t *testing.T) {
	t.Parallel()
	revoke := func(be *broker.Error) error {
		return &mint.RevokeError{ID: "abc", ExpiresOn: time.Unix(0, 0), Err: be}
	}
	for _, tc := range []struct {
		name     string
		err      error
		want     []string
		wantNone []string
	}{
		{"503", &broker.Error{Status: 503, Code: "temporarily_unavailable"}, []string{"tried again"}, []string{"broker-url"}},
		{"429", &broker.Error{Status: 429}, []string{"tried again"}, nil},
		{"500", &broker.Error{Status: 500, Code: "server_error"}, []string{"answered 500", "‹broker-url›"}, []string{"tried again"}},
		{"404 from a wrong address", &broker.Error{Status: 404}, []string{"answered 404", "‹broker-url›"}, []string{"tried again"}},
		{"405", &broker.Error{Status: 405}, []string{"answered 405", "‹broker-url›"}, []string{"tried again"}},
		{"401 without a code", &broker.Error{Status: 401}, []string{"answered 401", "‹broker-url›"}, []string{"tried again"}},
		{"access denied", &broker.Error{Status: 403, Code: broker.AccessDenied}, []string{"policy has no rule"}, []string{"tried again"}},
		{"invalid request", fmt.Errorf("exchange: %w", &broker.Error{Status: 400, Code: broker.InvalidRequest}), []string{"‹audience›", "‹ttl›"}, nil},
		{"revoke: invalid request", revoke(&broker.Error{Status: 400, Code: broker.InvalidRequest}), []string{"answered 400", "‹broker-url›"}, []string{"‹audience›", "‹ttl›", "tried again"}},
		{"revoke: access denied", revoke(&broker.Error{Status: 403, Code: broker.AccessDenied}), []string{"answered 403"}, []string{"policy"}},
		{"revoke: invalid scope", revoke(&broker.Error{Status: 400, Code: broker.InvalidScope}), []string{"answered 400"}, []string{"‹scopes›"}},
		{"revoke: 503", revoke(&broker.Error{Status: 503}), []string{"tried again"}, []string{"‹audience›"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := explain(tc.err)
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("explain(%v) = %q, want it to say %q", tc.err, got, w)
				}
			}
			for _, w := range tc.wantNone {
				if strings.Contains(got, w) {
					t.Errorf("explain(%v) = %q, want it not to say %q", tc.err, got, w)
				}
			}
		})
	}
}

// TestInputSpec: the table's entry for an input, its default included (the
// broker's --api-url default), and none for a name that is no input.
func TestInputSpec(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, wantDefault string
		wantOK            bool
	}{
		{"api-url", "https://api.cloudflare.com/client/v4", true},
		{"account-ids", "", true},
		{"policy", "", false},
	} {
		s, ok := inputSpec(tc.name)
		if ok != tc.wantOK || s.Default != tc.wantDefault || ok && s.Name != tc.name {
			t.Errorf("inputSpec(%q) = %+v, %v; want default %q, %v", tc.name, s, ok, tc.wantDefault, tc.wantOK)
		}
	}
}
