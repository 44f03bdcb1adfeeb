package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/cf-scoped-token/cf-scoped-token/internal/broker"
	"github.com/cf-scoped-token/cf-scoped-token/internal/cloudflare"
	"github.com/cf-scoped-token/cf-scoped-token/internal/ghaction"
	"github.com/cf-scoped-token/cf-scoped-token/internal/mint"
	"github.com/cf-scoped-token/cf-scoped-token/internal/retry"
	"github.com/cf-scoped-token/cf-scoped-token/internal/token"
)

// errNoOIDC is a keyless step that cannot get the job's OIDC token.
var errNoOIDC = errors.New(`the job has no OIDC token to trade at the broker: give the job "permissions: id-token: write" (a pull request from a fork never gets one, whatever the workflow asks)`)

// newBrokerClient is the broker's client for a validated broker URL;
// progressf gets a line per retry after the first.
func newBrokerClient(brokerURL string, progressf func(string, ...any)) *broker.Client {
	return &broker.Client{BaseURL: brokerURL, HTTP: cloudflare.NewHTTPClient(), UserAgent: Name + "/" + Version, Progressf: progressf}
}

// exchange trades the subject token at the broker for the token the
// request asks for; the child is passed to mask before anything else
// happens to it. allowed-ips "runner" is the broker's "caller": the address
// it sees the job come from.
func exchange(ctx context.Context, req token.Request, subject token.Secret, mask func(token.Secret) error, logf func(string, ...any)) (mint.Minted, broker.Granted, error) {
	allowed := req.AllowedIPs
	if req.RunnerIP {
		allowed = append(append([]string(nil), allowed...), "caller")
	}
	logf("keyless: trading the job's OIDC token at the broker %s", req.BrokerURL)
	g, err := newBrokerClient(req.BrokerURL.String(), logf).Exchange(ctx, subject, broker.ExchangeRequest{
		Scopes: req.Scopes, AccountIDs: req.AccountIDs, TTL: req.TTL, AllowedIPs: allowed,
	})
	if err != nil && !g.Token.IsZero() {
		// A success answer with a fault: there is a token, which nothing
		// could hand over or revoke later. Masked, then revoked now.
		merr := mask(g.Token)
		g.TokenID = "in the broker's malformed answer"
		return mint.Minted{}, broker.Granted{}, errors.Join(err, merr, rollbackAtBroker(ctx, req.BrokerURL.String(), g, logf))
	}
	if err != nil {
		return mint.Minted{}, broker.Granted{}, err
	}
	if err := mask(g.Token); err != nil {
		return mint.Minted{}, g, errors.Join(fmt.Errorf("mask token %s: %w", g.TokenID, err), rollbackAtBroker(ctx, req.BrokerURL.String(), g, logf))
	}
	m := mint.Minted{
		Created:    token.Created{Info: token.Info{ID: g.TokenID, Name: g.Name, ExpiresOn: g.ExpiresAt}, Value: g.Token},
		Groups:     g.PermissionGroups,
		AccountIDs: g.AccountIDs,
		AllowedIPs: g.AllowedIPs,
	}
	if g.Owner == token.OwnerAccount && len(g.AccountIDs) == 1 {
		m.Endpoint = token.Endpoint{AccountID: g.AccountIDs[0]}
	}
	logf("keyless: the broker's rule %q granted token %s, expires %s", g.Rule, g.TokenID, g.ExpiresAt.UTC().Format(time.RFC3339))
	return m, g, nil
}

// revokeAtBroker deletes a child through the broker that made it, on ctx,
// within the post phase's deadline. A caller that must delete after a
// cancellation passes a context that survives it, and bounds it: the action
// a clean-up context (one grace, so that a cancelled step still ends, with
// its error, before the runner's kill), the CLI context.WithoutCancel.
func revokeAtBroker(ctx context.Context, brokerURL string, g broker.Granted, logf func(string, ...any)) error {
	ctx, cancel := context.WithTimeout(ctx, postDeadline)
	defer cancel()
	if err := newBrokerClient(brokerURL, logf).Revoke(ctx, g.Token); err != nil {
		return &mint.RevokeError{ID: g.TokenID, ExpiresOn: g.ExpiresAt, Err: err}
	}
	// RFC 7009: the broker answers 200 for a token it did not make too, and
	// deletes only its own; so this says what is known, not "deleted".
	logf("keyless: the broker took the revocation of token %s (it deletes the tokens it made)", g.TokenID)
	return nil
}

// rollbackAtBroker deletes a child that must not outlive a failed run, as
// the direct lifecycle rolls one back: on a clean-up context of ctx.
func rollbackAtBroker(ctx context.Context, brokerURL string, g broker.Granted, logf func(string, ...any)) error {
	ctx, cancel := cleanupContext(ctx)
	defer cancel()
	return revokeAtBroker(ctx, brokerURL, g, logf)
}

// cleanupContext is the direct lifecycle's clean-up context (mint's): it
// survives the cancellation of ctx by one grace, short of the runner's
// kill, for the keyless deletes too.
func cleanupContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return (&mint.Minter{}).CleanupContext(ctx)
}

// requestIDToken asks the runner for the job's OIDC token for audience,
// trying again on 502, 503 and 504 and on a dropped connection, as the
// Actions toolkit does (reference/oidc.md §1) — never after a malformed
// request URL, which cannot heal.
func requestIDToken(ctx context.Context, requestURL, bearer, audience string, logf func(string, ...any)) (token.Secret, error) {
	p := retry.Policy{Attempts: 6, Base: 200 * time.Millisecond, Max: 5 * time.Second, Timeout: 30 * time.Second,
		Progress: func(n, of int, err error, wait time.Duration) {
			logf("attempt %d of %d to get the OIDC token failed: %v; next in %s", n, of, err, wait.Round(100*time.Millisecond))
		}}
	hc := &http.Client{Transport: cloudflare.NewHTTPClient().Transport}
	var jwt string
	err := p.Do(ctx, func(ctx context.Context) error {
		var err error
		jwt, err = ghaction.RequestIDToken(ctx, hc, requestURL, bearer, audience)
		return err
	}, func(err error) retry.Verdict {
		return retry.Verdict{Again: ghaction.IDTokenTemporary(err)}
	})
	if err != nil {
		return token.Secret{}, fmt.Errorf("get the job's OIDC token: %w", err)
	}
	return token.NewSecret(jwt), nil
}

// runKeyless is the action's main phase in keyless mode: the job's OIDC
// token, masked at once, traded at the broker for the child, masked before
// anything else; then the same hand-over as in direct mode.
func runKeyless(ctx context.Context, gh *ghaction.Action, req token.Request, logf func(string, ...any)) error {
	requestURL, bearer, err := gh.IDTokenRequest()
	if err != nil {
		return errNoOIDC
	}
	gh.Mask(bearer) // the job's access token
	ctx, cancel := context.WithTimeout(ctx, mainDeadline)
	defer cancel()
	jwt, err := requestIDToken(ctx, requestURL, bearer, req.Audience, logf)
	if err != nil {
		return err
	}
	gh.Mask(jwt.Reveal())
	if err := gh.Err(); err != nil {
		return fmt.Errorf("mask the OIDC token: %w", err)
	}
	mask := func(s token.Secret) error {
		gh.Mask(s.Reveal())
		return gh.Err()
	}
	t, g, err := exchange(ctx, req, jwt, mask, logf)
	if err != nil {
		return err
	}
	// Post revokes through the broker with the child as the credential: it
	// is kept in the state, which only this action's post step receives.
	err = saveLedger(gh, mint.Ledger{ID: t.ID, Name: t.Name, ExpiresOn: t.ExpiresOn, Endpoint: t.Endpoint}, t.Value)
	if err == nil {
		err = handover(gh, req, t, g.Rule)
	}
	if err != nil {
		if rerr := rollbackAtBroker(ctx, req.BrokerURL.String(), g, logf); rerr != nil {
			return errors.Join(err, rerr)
		}
		_ = saveLedger(gh, mint.Ledger{}, token.Secret{})
		return err
	}
	return nil
}

// runKeylessPost is the action's post phase in keyless mode: the child is
// deleted through the broker that made it, on ctx, a clean-up context.
func runKeylessPost(ctx context.Context, c token.Cleanup, logf func(string, ...any)) error {
	logf("keyless: deleting token %s through the broker %s", c.Token.ID, c.BrokerURL)
	return revokeAtBroker(ctx, c.BrokerURL.String(), broker.Granted{Token: c.Child, TokenID: c.Token.ID, ExpiresAt: c.Token.ExpiresOn}, logf)
}

// subjectFlags are the CLI's keyless flags: where the CI system put the
// job's OIDC token.
type subjectFlags struct{ env, file string }

func registerSubjectFlags(fs *flag.FlagSet) *subjectFlags {
	s := &subjectFlags{}
	fs.StringVar(&s.env, "oidc-token-env", "", "keyless: the variable holding the CI job's OIDC token (GitLab id_tokens: NAME, CircleCI CIRCLE_OIDC_TOKEN_V2)")
	fs.StringVar(&s.file, "oidc-token-file", "", "keyless: a file holding the CI job's OIDC token (e.g. from buildkite-agent oidc request-token)")
	return s
}

// maxOIDCToken bounds an OIDC token read from a variable or a file, as the
// broker bounds it.
const maxOIDCToken = 16 << 10

// subject reads the job's OIDC token from where the flags say.
func (s *subjectFlags) subject(getenv func(string) string) (token.Secret, error) {
	const hint = `GitLab CI: id_tokens: {CF_OIDC: {aud: BROKER_URL}} and --oidc-token-env CF_OIDC; Buildkite: buildkite-agent oidc request-token --audience BROKER_URL --claim organization_id > $TMP/oidc and --oidc-token-file $TMP/oidc; CircleCI: --oidc-token-env CIRCLE_OIDC_TOKEN_V2`
	var raw string
	switch {
	case s.env != "" && s.file != "":
		return token.Secret{}, usageError{"--oidc-token-env and --oidc-token-file are both given", "give one: where the CI system put the job's OIDC token"}
	case s.env != "":
		if raw = strings.TrimSpace(getenv(s.env)); raw == "" {
			return token.Secret{}, usageError{fmt.Sprintf("--oidc-token-env: %s is empty or not set", s.env), hint}
		}
	case s.file != "":
		b, err := readLimited(s.file, maxOIDCToken)
		if err != nil {
			return token.Secret{}, usageError{fmt.Sprintf("--oidc-token-file: %v", err), hint}
		}
		raw = strings.TrimSpace(string(b))
	default:
		return token.Secret{}, usageError{"--broker-url needs the CI job's OIDC token: give --oidc-token-env NAME or --oidc-token-file PATH", hint}
	}
	if parts := strings.Split(raw, "."); len(parts) != 3 || len(raw) > maxOIDCToken ||
		strings.ContainsFunc(raw, func(r rune) bool { return r <= ' ' || r > '~' }) {
		return token.Secret{}, usageError{"the OIDC token is not a JWT (three dot-separated parts)", hint}
	}
	return token.NewSecret(raw), nil
}

// mintKeyless is create's and exec's keyless half: the child from the
// broker for the job's OIDC token.
func mintKeyless(ctx context.Context, req token.Request, s *subjectFlags, getenv func(string) string, p *printer) (mint.Minted, broker.Granted, error) {
	subject, err := s.subject(getenv)
	if err != nil {
		return mint.Minted{}, broker.Granted{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, mainDeadline)
	defer cancel()
	return exchange(ctx, req, subject, func(token.Secret) error { return nil }, p.logf)
}

// runRevokeKeyless deletes, through the broker that made it, the child in
// the variable named by tokenEnv (by default CLOUDFLARE_API_TOKEN, as create
// --format env and exec hand it over).
func runRevokeKeyless(ctx context.Context, brokerURL, tokenEnv string, getenv func(string) string, p *printer) error {
	u, err := token.ParseBrokerURL(brokerURL)
	if err != nil {
		return err
	}
	child, err := token.ParseAPIToken(getenv(tokenEnv))
	if err != nil {
		return usageError{fmt.Sprintf("--token-env: %s holds no token", tokenEnv), "keyless revoke presents the child token itself to the broker: export it, or name its variable with --token-env"}
	}
	p.logf("keyless: revoking the token in %s through the broker %s", tokenEnv, u)
	// As the direct revoke: one grace after an interrupt.
	ctx, cancel := cleanupContext(ctx)
	defer cancel()
	return revokeAtBroker(ctx, u.String(), broker.Granted{Token: child, TokenID: "in " + tokenEnv}, p.logf)
}
