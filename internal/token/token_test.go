package token

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestAllowPolicy(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		accounts []string
		groups   []string
		want     Policy
	}{
		{"one account", []string{acctA}, []string{appsWrite},
			Policy{Effect: "allow", PermissionGroups: []string{appsWrite},
				Resources: map[string]string{"com.cloudflare.api.account." + acctA: "*"}}},
		{"two accounts, two groups", []string{acctA, acctB}, []string{orgsRead, appsWrite},
			Policy{Effect: "allow", PermissionGroups: []string{orgsRead, appsWrite},
				Resources: map[string]string{
					"com.cloudflare.api.account." + acctA: "*",
					"com.cloudflare.api.account." + acctB: "*",
				}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := AllowPolicy(tc.accounts, tc.groups)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("AllowPolicy (-want +got):\n%s", diff)
			}
		})
	}
}

// TestAllowPolicyFromRequest follows the way from inputs to the policy: one
// allow policy, the account-scoped ids, every account and nothing else.
func TestAllowPolicyFromRequest(t *testing.T) {
	t.Parallel()
	in := defaultInputs(t)
	in.AccountIDs = acctB + "\n" + acctA + "," + acctB
	in.Scopes = "apps-and-policies:write, organizations"
	r, err := in.Parse(testRunContext())
	mustNoError(t, err)
	groups, err := Resolve(r.Scopes, MustLoadGroups(t))
	mustNoError(t, err)
	spec := Spec{Name: r.Name, Policies: []Policy{AllowPolicy(r.AccountIDs, ids(groups))}}
	if len(spec.Policies) != 1 {
		t.Fatalf("%d policies, want exactly one", len(spec.Policies))
	}
	want := Policy{
		Effect:           "allow",
		PermissionGroups: []string{appsWrite, orgsRead},
		Resources: map[string]string{
			"com.cloudflare.api.account." + acctB: "*",
			"com.cloudflare.api.account." + acctA: "*",
		},
	}
	if diff := cmp.Diff(want, spec.Policies[0]); diff != "" {
		t.Errorf("policy (-want +got):\n%s", diff)
	}
}

func TestExpiresOn(t *testing.T) {
	t.Parallel()
	berlin := time.FixedZone("CEST", 2*60*60)
	tests := []struct {
		name string
		now  time.Time
		ttl  time.Duration
		want time.Time
	}{
		{"non-UTC with nanoseconds", time.Date(2026, 7, 1, 12, 0, 0, 999_999_999, berlin), time.Hour,
			time.Date(2026, 7, 1, 11, 0, 0, 0, time.UTC)},
		{"UTC", time.Date(2026, 7, 1, 12, 0, 0, 0, time.UTC), 15 * time.Minute,
			time.Date(2026, 7, 1, 12, 15, 0, 0, time.UTC)},
		{"across midnight", time.Date(2026, 12, 31, 23, 30, 59, 500, time.UTC), 24 * time.Hour,
			time.Date(2027, 1, 1, 23, 30, 59, 0, time.UTC)},
		{"negative offset", time.Date(2026, 3, 8, 1, 59, 59, 1, time.FixedZone("EST", -5*60*60)), 90 * time.Second,
			time.Date(2026, 3, 8, 7, 1, 29, 0, time.UTC)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := ExpiresOn(tc.now, tc.ttl)
			if !got.Equal(tc.want) {
				t.Errorf("ExpiresOn(%v, %v) = %v, want %v", tc.now, tc.ttl, got, tc.want)
			}
			if got.Location() != time.UTC {
				t.Errorf("ExpiresOn location = %v, want UTC", got.Location())
			}
			if got.Nanosecond() != 0 {
				t.Errorf("ExpiresOn = %v, want whole seconds", got)
			}
			if s := got.Format(time.RFC3339Nano); s != tc.want.Format(time.RFC3339) {
				t.Errorf("ExpiresOn formats as %q, want %q", s, tc.want.Format(time.RFC3339))
			}
			if d := got.Sub(tc.now); d > tc.ttl || d <= tc.ttl-time.Second {
				t.Errorf("ExpiresOn is now+%v, want now+%v less a fraction of a second", d, tc.ttl)
			}
		})
	}
}

func TestRequestEndpoint(t *testing.T) {
	t.Parallel()
	if got := (Request{Owner: OwnerUser, AccountIDs: []string{acctA}}).Endpoint(); got.IsAccount() {
		t.Errorf("user-owned Endpoint() = %+v, want the user's", got)
	}
	got := (Request{Owner: OwnerAccount, AccountIDs: []string{acctB}}).Endpoint()
	if diff := cmp.Diff(Endpoint{AccountID: acctB}, got); diff != "" {
		t.Errorf("account-owned Endpoint() (-want +got):\n%s", diff)
	}
	if !got.IsAccount() {
		t.Error("account-owned Endpoint().IsAccount() = false")
	}
}

func TestIsOwnName(t *testing.T) {
	t.Parallel()
	tests := map[string]bool{
		DefaultName(testRunContext()):            true,
		"cf-scoped-token o/r 1.1 job abc":        true,
		"cf-scoped-token":                        false, // the prefix has a trailing space
		"cf-scoped-tokens o/r 1.1 job abc":       false,
		" cf-scoped-token o/r":                   false,
		"CF-SCOPED-TOKEN o/r":                    false,
		"nightly deploy " + testSuffix:           false,
		"my cf-scoped-token o/r 1.1 job abc123d": false,
	}
	for name, want := range tests {
		if got := IsOwnName(name); got != want {
			t.Errorf("IsOwnName(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestInputErrorText(t *testing.T) {
	t.Parallel()
	err := fmt.Errorf("parse inputs: %w", &InputError{Input: "ttl", Problem: "30s is shorter than 1m0s", Accepted: "a Go duration from 1m to 24h"})
	var ie *InputError
	if !errors.As(err, &ie) || ie.Input != "ttl" {
		t.Fatalf("errors.As(%v) = %v, want the *InputError for ttl", err, ie)
	}
	if got, want := ie.Error(), "input ttl: 30s is shorter than 1m0s (accepted: a Go duration from 1m to 24h)"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if got, want := (&InputError{Input: "ttl", Problem: "is empty"}).Error(), "input ttl: is empty"; got != want {
		t.Errorf("Error() without Accepted = %q, want %q", got, want)
	}
}
