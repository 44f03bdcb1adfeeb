package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/cf-scoped-token/cf-scoped-token/internal/broker"
	"github.com/cf-scoped-token/cf-scoped-token/internal/oidcissuer"
	"github.com/cf-scoped-token/cf-scoped-token/internal/oidcverify"
	"github.com/cf-scoped-token/cf-scoped-token/internal/policy"
	"github.com/cf-scoped-token/cf-scoped-token/internal/token"
)

// demoAudience is the broker's audience in the keyless demo.
const demoAudience = "https://cf-broker.demo.invalid"

// demoPolicy lets the local issuer's default job (a push to main of
// acme/site-deploy) have Access apps and policies on the first account. The
// tenant is the owner, pinned by its id; within it the repository is named.
const demoPolicy = `audience: ` + demoAudience + `
issuers:
  github: %s
rules:
  - name: access-deploy
    issuer: github
    claims:
      repository_owner_id: "46576199"
      repository: acme/site-deploy
      ref: refs/heads/main
    grant:
      account-ids: [%s]
      scopes: [apps-and-policies:write, organizations:read]
      max-ttl: 1h
`

// runKeylessDemo runs keyless mode end to end in one process: the
// emulator, a local OIDC issuer shaped like GitHub's, and a broker holding
// the emulator's parent token. A job of the allowed repository gets a
// token, uses it and has it revoked; a job of another repository of the
// same owner is refused with the broker's reason. Every step is checked.
func runKeylessDemo(ctx context.Context, p *printer) error {
	say := func(format string, args ...any) { fmt.Fprintf(p.out, format+"\n", args...) }
	apiURL, seeded, stopEmulator, err := serveEmulator("127.0.0.1:0")
	if err != nil {
		return err
	}
	defer stopEmulator()
	var iss *oidcissuer.Issuer
	issuerURL, stopIssuer, err := serve("127.0.0.1:0", "oidc issuer", func(u string) (http.Handler, error) {
		var err error
		iss, err = oidcissuer.New(u)
		return iss, err
	})
	if err != nil {
		return err
	}
	defer stopIssuer()
	account := seeded.AccountIDs[0]
	say("1. A Cloudflare API emulator (%s) and a local OIDC issuer shaped like GitHub Actions' (%s)", apiURL, issuerURL)

	pol, err := policy.Parse(fmt.Appendf(nil, demoPolicy, issuerURL, account))
	if err != nil {
		return fmt.Errorf("demo policy: %w", err)
	}
	parent := token.NewSecret(seeded.UserToken)
	srv, err := broker.New(broker.Config{
		Policy: pol, API: newClient(apiURL, parent, nil, nil), Parent: parent,
		OIDC:  oidcverify.Config{HTTP: &http.Client{Timeout: 10 * time.Second}},
		Audit: io.Discard, Logf: func(string, ...any) {},
	})
	if err != nil {
		return err
	}
	if err := srv.Start(ctx); err != nil {
		return err
	}
	brokerURL, stopBroker, err := serve("127.0.0.1:0", "broker", func(string) (http.Handler, error) { return srv, nil })
	if err != nil {
		return err
	}
	defer stopBroker()
	say("2. A broker (%s) holds the parent token; its policy lets acme/site-deploy of owner id 46576199,", brokerURL)
	say("   on refs/heads/main, have Access apps and policies (read or write) on account %s for up to 1h", account)

	in, err := inputsWith(map[string]string{"scopes": "apps-and-policies", "ttl": "15m", "broker-url": brokerURL, "audience": demoAudience})
	if err != nil {
		return err
	}
	req, err := in.Parse(token.RunContext{})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, mainDeadline)
	defer cancel()
	quiet := func(string, ...any) {}

	// The allowed job: no Cloudflare secret anywhere, only its OIDC token.
	job := iss.NewJob(nil)
	jwt, err := requestIDToken(ctx, job.RequestURL, job.RequestToken, demoAudience, quiet)
	if err != nil {
		return err
	}
	say("3. A job of acme/site-deploy (push to main) asks its runner for an OIDC token for %s", demoAudience)
	t, g, err := exchange(ctx, req, jwt, func(token.Secret) error { return nil }, quiet)
	if err != nil {
		return err
	}
	say("   and trades it at the broker: rule %q granted token %s, expires %s", g.Rule, t.ID, t.ExpiresOn.Format(time.RFC3339))
	say("4. Use it")
	for _, c := range []struct {
		what, method, path string
		allowed            bool
	}{
		{"read Access groups on " + account, http.MethodGet, "/access/groups", false},
		{"read Access apps on " + account, http.MethodGet, "/access/apps", true},
		{"create an Access app on " + account + " (a read-only token)", http.MethodPost, "/access/apps", false},
	} {
		if err := demoRequest(ctx, apiURL+"/accounts/"+account+c.path, t.Value, c.method, c.allowed, c.what, say); err != nil {
			return errors.Join(err, revokeAtBroker(ctx, brokerURL, g, quiet))
		}
	}
	if err := revokeAtBroker(ctx, brokerURL, g, quiet); err != nil {
		return err
	}
	say("5. Revoked through the broker (as the action's post step does)")
	if err := demoRequest(ctx, apiURL+"/accounts/"+account+"/access/apps", t.Value, http.MethodGet, false, "read Access apps after revoke", say); err != nil {
		return err
	}

	// Another repository of the same owner: inside the rule's tenant (the
	// owner), so it is told why.
	other := iss.NewJob(map[string]any{"repository": "acme/other", "repository_id": "2200000001"})
	jwt, err = requestIDToken(ctx, other.RequestURL, other.RequestToken, demoAudience, quiet)
	if err != nil {
		return err
	}
	say("6. A job of acme/other trades its OIDC token too")
	_, _, err = exchange(ctx, req, jwt, func(token.Secret) error { return nil }, quiet)
	var be *broker.Error
	if !errors.As(err, &be) || be.Code != broker.AccessDenied {
		return fmt.Errorf("demo: the other repository's job was not refused: %w", err)
	}
	say("   refused: %s", be.Description)
	say("Done: no Cloudflare secret was in either job; the broker's policy decided what each could get.")
	return nil
}
