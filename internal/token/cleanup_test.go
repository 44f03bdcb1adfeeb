package token

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// cleanupView is what a Cleanup says, with the secrets and URLs as the text
// a comparison can read.
type cleanupView struct {
	Mode                      Mode
	APIToken, APIURL          string
	Endpoint                  Endpoint
	Token                     Info
	FindByName, Pending, Keep bool
	BrokerURL, Child          string
}

func viewCleanup(c Cleanup) cleanupView {
	v := cleanupView{Mode: c.Mode, APIToken: c.APIToken.Reveal(), Endpoint: c.Endpoint, Token: c.Token,
		FindByName: c.FindByName, Pending: c.Pending, Keep: c.Keep, Child: c.Child.Reveal()}
	if c.APIURL != nil {
		v.APIURL = c.APIURL.String()
	}
	if c.BrokerURL != nil {
		v.BrokerURL = c.BrokerURL.String()
	}
	return v
}

// TestParseCleanup: what main recorded becomes a Cleanup only when main
// could have written it; anything else is a *StateError naming the state
// key — nothing is deleted on a guess — or, for the inputs post reads, an
// *InputError. A record that says main made nothing needs no valid input.
func TestParseCleanup(t *testing.T) {
	t.Parallel()
	const (
		id      = "ed17574386854bf78a67040be0a770b0"
		name    = NamePrefix + "octo-org/infra 9876543210.2 deploy " + testSuffix
		expires = "2026-11-27T21:00:00Z"
		broker  = "https://cf-broker.example.com"
		child   = newStyleToken
	)
	exp := time.Date(2026, 11, 27, 21, 0, 0, 0, time.UTC)
	direct := func(edit ...func(*Inputs)) Inputs {
		in := Inputs{Mode: "create", Revoke: "true", APIToken: oldStyleToken, APIURL: "https://api.cloudflare.com/client/v4"}
		for _, f := range edit {
			f(&in)
		}
		return in
	}
	keyless := func(edit ...func(*Inputs)) Inputs {
		in := Inputs{Mode: "create", Revoke: "true", BrokerURL: broker, APIURL: "https://api.cloudflare.com/client/v4"}
		for _, f := range edit {
			f(&in)
		}
		return in
	}
	noRevoke := func(in *Inputs) { in.Revoke = "false" }
	made := Record{TokenID: id, Name: name, ExpiresAt: expires}
	with := func(r Record, edit func(*Record)) Record {
		edit(&r)
		return r
	}
	made1 := Info{ID: id, Name: name, ExpiresOn: exp}
	directView := cleanupView{Mode: ModeCreate, APIToken: oldStyleToken, APIURL: "https://api.cloudflare.com/client/v4", Token: made1}
	for _, tc := range []struct {
		name      string
		in        Inputs
		rec       Record
		want      cleanupView // when it is accepted
		wantState string      // the StateError's key
		wantInput string      // the InputError's input
	}{
		// Accepted.
		{name: "main made nothing", in: Inputs{Mode: "nonsense"}, want: cleanupView{Mode: ModeCreate}},
		{name: "mode revoke: main made nothing", in: direct(func(in *Inputs) { in.Mode = "revoke" }), rec: made,
			want: cleanupView{Mode: ModeRevoke}},
		{name: "direct", in: direct(), rec: made, want: directView},
		{name: "direct, account-owned", in: direct(), rec: with(made, func(r *Record) { r.AccountID = acctA }),
			want: func() cleanupView { v := directView; v.Endpoint = Endpoint{AccountID: acctA}; return v }()},
		{name: "direct, no expiry recorded", in: direct(), rec: with(made, func(r *Record) { r.ExpiresAt = "" }),
			want: func() cleanupView { v := directView; v.Token.ExpiresOn = time.Time{}; return v }()},
		{name: "direct, revoke false: kept", in: direct(noRevoke), rec: made,
			want: func() cleanupView { v := directView; v.Keep = true; return v }()},
		{name: "direct, lost: found by name", in: direct(), rec: with(made, func(r *Record) { r.TokenID, r.Lost = "", "true" }),
			want: func() cleanupView { v := directView; v.Token.ID, v.FindByName = "", true; return v }()},
		{name: "direct, pending: found by name, patiently", in: direct(), rec: with(made, func(r *Record) { r.TokenID, r.Pending = "", "true" }),
			want: func() cleanupView { v := directView; v.Token.ID, v.FindByName, v.Pending = "", true, true; return v }()},
		{name: "direct, pending, revoke false: not kept", in: direct(noRevoke), rec: with(made, func(r *Record) { r.Pending = "true" }),
			want: func() cleanupView { v := directView; v.FindByName, v.Pending = true, true; return v }()},
		{name: "keyless", in: keyless(), rec: with(made, func(r *Record) { r.Secret = child }),
			want: cleanupView{Mode: ModeCreate, Token: made1, BrokerURL: broker, Child: child}},
		{name: "keyless, revoke false: kept", in: keyless(noRevoke), rec: with(made, func(r *Record) { r.Secret = child }),
			want: cleanupView{Mode: ModeCreate, Token: made1, BrokerURL: broker, Child: child, Keep: true}},

		// State main could not have written.
		{name: "direct, id not hex", in: direct(), rec: with(made, func(r *Record) { r.TokenID = strings.ToUpper(id) }), wantState: "token-id"},
		{name: "direct, id with a space", in: direct(), rec: with(made, func(r *Record) { r.TokenID = id + " " }), wantState: "token-id"},
		{name: "direct, id a path", in: direct(), rec: with(made, func(r *Record) { r.TokenID = "../../accounts/x" }), wantState: "token-id"},
		{name: "direct, account not hex", in: direct(), rec: with(made, func(r *Record) { r.AccountID = acctA + "," + acctB }), wantState: "token-account"},
		{name: "direct, bad expiry", in: direct(), rec: with(made, func(r *Record) { r.ExpiresAt = "tomorrow" }), wantState: "token-expires-at"},
		{name: "direct, name with a newline", in: direct(), rec: with(made, func(r *Record) { r.Name = "a\n::stop-commands::x" }), wantState: "token-name"},
		{name: "direct, name too long", in: direct(), rec: with(made, func(r *Record) { r.Name = strings.Repeat("n", MaxNameLength+1) }), wantState: "token-name"},
		{name: "direct, name not UTF-8", in: direct(), rec: with(made, func(r *Record) { r.Name = "\xff" }), wantState: "token-name"},
		{name: "direct, lost without a name", in: direct(), rec: Record{Lost: "true"}, wantState: "token-name"},
		{name: "direct, pending without a name", in: direct(), rec: Record{Pending: "true", ExpiresAt: expires}, wantState: "token-name"},
		{name: "keyless, no id", in: keyless(), rec: Record{Name: name, Secret: child, Lost: "true"}, wantState: "token-id"},
		{name: "keyless, id not hex", in: keyless(), rec: with(made, func(r *Record) { r.TokenID, r.Secret = "x", child }), wantState: "token-id"},
		{name: "keyless, no secret", in: keyless(), rec: made, wantState: "token-secret"},
		{name: "keyless, secret with a space", in: keyless(), rec: with(made, func(r *Record) { r.Secret = "cfut_a b" }), wantState: "token-secret"},
		{name: "keyless, secret with a newline", in: keyless(), rec: with(made, func(r *Record) { r.Secret = child + "\n" }), wantState: "token-secret"},
		{name: "keyless, pending", in: keyless(), rec: with(made, func(r *Record) { r.Secret, r.Pending = child, "true" }), wantState: "token-pending"},
		{name: "keyless, lost", in: keyless(), rec: with(made, func(r *Record) { r.Secret, r.Lost = child, "true" }), wantState: "token-pending"},
		{name: "keyless, bad expiry", in: keyless(), rec: with(made, func(r *Record) { r.Secret, r.ExpiresAt = child, "2026-11-27 21:00" }), wantState: "token-expires-at"},

		// Inputs post reads, once main made something.
		{name: "bad mode", in: direct(func(in *Inputs) { in.Mode = "destroy" }), rec: made, wantInput: "mode"},
		{name: "bad revoke", in: direct(func(in *Inputs) { in.Revoke = "maybe" }), rec: made, wantInput: "revoke"},
		{name: "no api-token", in: direct(func(in *Inputs) { in.APIToken = "" }), rec: made, wantInput: "api-token"},
		{name: "api-url in clear text", in: direct(func(in *Inputs) { in.APIURL = "http://api.example.com/client/v4" }), rec: made, wantInput: "api-url"},
		{name: "keyless, bad broker-url", in: keyless(func(in *Inputs) { in.BrokerURL = "http://cf-broker.example.com" }),
			rec: with(made, func(r *Record) { r.Secret = child }), wantInput: "broker-url"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := tc.in.ParseCleanup(tc.rec)
			switch {
			case tc.wantState != "":
				var se *StateError
				if !errors.As(err, &se) || se.Key != tc.wantState || se.Problem == "" {
					t.Fatalf("ParseCleanup = %+v, %v; want a *StateError for %q", got, err, tc.wantState)
				}
				if diff := cmp.Diff(cleanupView{}, viewCleanup(got)); diff != "" {
					t.Errorf("a Cleanup came back with the error (-want +got):\n%s", diff)
				}
			case tc.wantInput != "":
				_ = wantInputError(t, err, tc.wantInput)
			default:
				if err != nil {
					t.Fatalf("ParseCleanup: %v", err)
				}
				if diff := cmp.Diff(tc.want, viewCleanup(got)); diff != "" {
					t.Errorf("ParseCleanup (-want +got):\n%s", diff)
				}
			}
		})
	}
}
