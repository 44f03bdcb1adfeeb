package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/cf-scoped-token/cf-scoped-token/internal/mint"
	"github.com/cf-scoped-token/cf-scoped-token/internal/token"
)

// runDemo runs the whole flow against an in-process emulator and checks
// each step, so it doubles as a smoke test: create a read-only token for
// one account, use it, see it refused a write and another account, revoke
// it, see it refused.
func runDemo(ctx context.Context, args []string, p *printer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.BoolVar(&p.verbose, "verbose", false, "log each API call (never a secret)")
	keyless := fs.Bool("keyless", false, "the keyless flow: a local OIDC issuer and a broker, no parent token in the job")
	if err := parseFlags(fs, args, p, "cf-scoped-token demo [--keyless]"); err != nil {
		return err
	}
	if *keyless {
		return runKeylessDemo(ctx, p)
	}
	apiURL, seeded, stop, err := serveEmulator("127.0.0.1:0")
	if err != nil {
		return err
	}
	defer stop()
	home, other := seeded.AccountIDs[0], seeded.AccountIDs[1]
	say := func(format string, args ...any) { fmt.Fprintf(p.out, format+"\n", args...) }
	say("1. A local Cloudflare API emulator is serving %s", apiURL)
	say("   accounts %s; a parent token that may create tokens (kept secret, never printed)", strings.Join(seeded.AccountIDs, ", "))

	in, err := inputsWith(map[string]string{"api-token": seeded.UserToken, "account-ids": home, "scopes": "organizations", "ttl": "15m", "api-url": apiURL})
	if err != nil {
		return err
	}
	say("2. Ask for scopes %q at level %q on account %s for %s", in.Scopes, in.Permission, home, in.TTL)
	suffix, err := newSuffix()
	if err != nil {
		return err
	}
	req, err := in.Parse(token.RunContext{Repository: "demo", Job: "demo", Suffix: suffix})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, mainDeadline)
	defer cancel()
	m := &mint.Minter{API: newClient(req.APIURL.String(), req.APIToken, p.debugf, p.logf), Now: time.Now}
	t, err := m.Mint(ctx, req, func(mint.Minted) error { return nil })
	if err != nil {
		return err
	}
	for _, g := range t.Groups {
		say("   resolved %q to permission group %s", g.Name, g.ID)
	}
	say("3. Created token %s (%q), verified active, expires %s", t.ID, t.Name, t.ExpiresOn.UTC().Format(time.RFC3339))

	checks := []struct {
		what, method, account string
		allowed               bool
	}{
		{"read Access groups on " + home, http.MethodGet, home, true},
		{"create an Access group on " + home + " (read-only token)", http.MethodPost, home, false},
		{"read Access groups on " + other + " (not its account)", http.MethodGet, other, false},
	}
	say("4. Use it")
	for _, c := range checks {
		if err := demoCall(ctx, apiURL, t.Value, c.method, c.account, c.allowed, c.what, say); err != nil {
			_, rerr := m.Revoke(ctx, t.Endpoint, t.Info)
			return errors.Join(err, rerr)
		}
	}
	if _, err := m.Revoke(ctx, t.Endpoint, t.Info); err != nil {
		return err
	}
	say("5. Revoked token %s (as the action's post step does when the job ends)", t.ID)
	if err := demoCall(ctx, apiURL, t.Value, http.MethodGet, home, false, "read Access groups on "+home+" after revoke", say); err != nil {
		return err
	}
	say("Done: the token could do exactly what was asked, where it was asked, until it was revoked.")
	return nil
}

// demoCall calls the Access groups endpoint of an account with the child
// token and checks that it is allowed (2xx) or refused (401 or 403) as
// expected.
func demoCall(ctx context.Context, apiURL string, child token.Secret, method, account string, allowed bool, what string, say func(string, ...any)) error {
	return demoRequest(ctx, apiURL+"/accounts/"+account+"/access/groups", child, method, allowed, what, say)
}

// demoRequest calls an Access endpoint (url) with the child token and
// checks that it is allowed (2xx) or refused (401 or 403) as expected.
func demoRequest(ctx context.Context, url string, child token.Secret, method string, allowed bool, what string, say func(string, ...any)) error {
	var body io.Reader
	if method == http.MethodPost {
		body = strings.NewReader(`{"name":"demo","domain":"demo.example.com","type":"self_hosted","include":[{"everyone":{}}]}`)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+child.Reveal())
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("demo: %s %s: %w", method, url, err)
	}
	defer res.Body.Close()
	var env struct {
		Errors []struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		} `json:"errors"`
	}
	_ = json.NewDecoder(io.LimitReader(res.Body, 1<<20)).Decode(&env)
	detail := ""
	if len(env.Errors) > 0 {
		detail = fmt.Sprintf(": code %d %q", env.Errors[0].Code, env.Errors[0].Message) // the answer is data: quoted
	}
	ok := res.StatusCode >= 200 && res.StatusCode < 300
	refused := res.StatusCode == http.StatusUnauthorized || res.StatusCode == http.StatusForbidden
	mark := "allowed"
	if !ok {
		mark = "refused"
	}
	say("   %s: %s (%s %d%s)", what, mark, method, res.StatusCode, detail)
	if allowed && !ok || !allowed && !refused {
		return fmt.Errorf("demo: %s: unexpected status %d", what, res.StatusCode)
	}
	return nil
}
