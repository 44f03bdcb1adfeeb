package brokertest_test

import (
	"net/url"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/cf-scoped-token/cf-scoped-token/internal/broker"
	"github.com/cf-scoped-token/cf-scoped-token/internal/broker/brokertest"
	"github.com/cf-scoped-token/cf-scoped-token/internal/policy"
)

// TestPolicy: the policy parses, for Audience, with its one rule.
func TestPolicy(t *testing.T) {
	t.Parallel()
	p, err := policy.Parse([]byte(brokertest.FormatPolicy(brokertest.Policy, "https://issuer.test")))
	if err != nil {
		t.Fatal(err)
	}
	if p.Audience != brokertest.Audience || len(p.Rules) != 1 || p.Rules[0].Name != "access-deploy" {
		t.Errorf("audience %q, rules %+v", p.Audience, p.Rules)
	}
}

func TestForm(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		kv   []string
		want url.Values
	}{
		{"as is", nil, url.Values{
			"grant_type": {broker.GrantTypeTokenExchange}, "subject_token": {"a.b.c"}, "subject_token_type": {broker.TokenTypeIDToken},
		}},
		{"set and removed", []string{"scope", "x:read", "grant_type", ""}, url.Values{
			"scope": {"x:read"}, "subject_token": {"a.b.c"}, "subject_token_type": {broker.TokenTypeIDToken},
		}},
	} {
		if diff := cmp.Diff(tc.want, brokertest.Form("a.b.c", tc.kv...)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tc.name, diff)
		}
	}
}

// TestBufferEntries: blank lines are passed over; every other line is an entry.
func TestBufferEntries(t *testing.T) {
	t.Parallel()
	var b brokertest.Buffer
	_, _ = b.Write([]byte(`{"event":"token.mint","rule":"r"}` + "\n\n"))
	_, _ = b.Write([]byte(`{"event":"token.revoke","outcome":"deleted"}` + "\n"))
	want := []broker.Entry{{Event: broker.EventMint, Rule: "r"}, {Event: broker.EventRevoke, Outcome: "deleted"}}
	if diff := cmp.Diff(want, b.Entries(t)); diff != "" {
		t.Errorf("entries (-want +got):\n%s", diff)
	}
}
