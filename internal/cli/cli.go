// Package cli is the one binary's surface: the action's main and post
// phases, and the subcommands create, revoke, sweep, emulator and demo. It
// reads inputs (action) or flags and environment (CLI), validates them
// before anything is called, wires the Cloudflare client into the
// lifecycle, and renders results and errors. Only Main's caller exits.
package cli

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/cf-scoped-token/cf-scoped-token/internal/broker"
	"github.com/cf-scoped-token/cf-scoped-token/internal/cloudflare"
	"github.com/cf-scoped-token/cf-scoped-token/internal/ghaction"
	"github.com/cf-scoped-token/cf-scoped-token/internal/mint"
	"github.com/cf-scoped-token/cf-scoped-token/internal/token"
)

// Name is the binary's name; PostName is the alias the action's
// post-entrypoint runs it by (action.yml).
const (
	Name     = "cf-scoped-token"
	PostName = "cf-scoped-token-post"
)

// Version is set at build time with -ldflags "-X …/internal/cli.Version=…".
var Version = "dev"

// Deadlines for a whole phase: every retry and backoff fits inside. Post
// may wait out a whole rate-limit window of Cloudflare's (5 minutes) rather
// than leave a token alive; main gives up sooner, having made nothing yet.
const (
	mainDeadline = 3 * time.Minute
	postDeadline = 6 * time.Minute
)

const usage = `cf-scoped-token mints a Cloudflare API token limited to the Access settings,
level and accounts you name, which expires by itself.

Usage:
    cf-scoped-token create [flags]              create a token and print it
    cf-scoped-token exec [flags] -- COMMAND     run COMMAND with a token, delete it after
    cf-scoped-token revoke --token-id ID        delete a token
    cf-scoped-token list                        this tool's tokens
    cf-scoped-token sweep [--dry-run]           delete this tool's expired tokens
    cf-scoped-token broker --policy FILE        serve the keyless broker
    cf-scoped-token policy check FILE           check a broker policy file
    cf-scoped-token policy explain FILE --claims CLAIMS.json
                                                say which rule grants what, or why none does
    cf-scoped-token emulator [--print-env]      serve a local Cloudflare API emulator
                                                (--oidc: and a local OIDC issuer)
    cf-scoped-token demo                        the whole flow against the emulator
    cf-scoped-token version

The parent token comes from CF_SCOPED_TOKEN_API_TOKEN (never put it on the
command line). Every other flag has an environment variable: CF_SCOPED_TOKEN_
and the flag's name in upper case with _ for -, e.g. CF_SCOPED_TOKEN_ACCOUNT_IDS;
a flag on the command line wins. Run "cf-scoped-token COMMAND --help" for a
command's flags.

Examples:
    $ export CF_SCOPED_TOKEN_API_TOKEN=...   # may create tokens
    $ cf-scoped-token exec -a 0123456789abcdef0123456789abcdef -s apps-and-policies:write -- terraform apply
    $ eval "$(cf-scoped-token create -a $ACCOUNT --format env)"   # export CLOUDFLARE_API_TOKEN=...
    $ cf-scoped-token revoke --token-id "$CF_SCOPED_TOKEN_ID"

Exit codes: 0 done; 1 an error (one line, and a hint); exec: its command's
exit code, 128+signal when a signal ended it, 126 when it could not be run,
127 when it was not found.

In GitHub Actions, use the action (action.yml); it runs this binary as
"cf-scoped-token action" and, when the job ends, as cf-scoped-token-post.
`

// Main runs the binary and returns its exit code. getenv is the only way
// it reads the environment. Every command returns its error here, and here
// alone it is shown: as the action's one ::error:: annotation, or as the
// CLI's error and hint lines.
func Main(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	if len(args) > 0 && filepath.Base(args[0]) == PostName {
		// The runner passes the post step the same args as main
		// (reference/github-runner.md §2): the name it runs us by decides.
		gh := ghaction.New(getenv, stdout)
		return actionExit(gh, runPost(ctx, gh, stdout))
	}
	if len(args) < 2 {
		fmt.Fprint(stderr, usage)
		return 1
	}
	cmd, rest := args[1], args[2:]
	p := &printer{out: stdout, err: stderr, getenv: getenv}
	var err error
	switch cmd {
	case "action":
		gh := ghaction.New(getenv, stdout)
		return actionExit(gh, runAction(ctx, gh, getenv, stdout))
	case "create":
		err = runCreate(ctx, rest, getenv, p)
	case "exec":
		err = runExec(ctx, rest, getenv, p)
	case "list":
		err = runList(ctx, rest, getenv, p)
	case "revoke":
		err = runRevoke(ctx, rest, getenv, p)
	case "sweep":
		err = runSweep(ctx, rest, getenv, p)
	case "emulator":
		err = runEmulator(ctx, rest, p)
	case "demo":
		err = runDemo(ctx, rest, p)
	case "broker":
		err = runBroker(ctx, rest, getenv, p)
	case "policy":
		err = runPolicy(rest, p)
	case "version", "--version":
		fmt.Fprintf(stdout, "%s %s\n", Name, Version)
		return 0
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		err = usageError{fmt.Sprintf("unknown command %q", cmd), `run "cf-scoped-token --help" for the commands`}
	}
	var xe *exitError
	switch {
	case err == nil || errors.Is(err, errHelpShown):
		return 0
	case errors.As(err, &xe):
		if xe.err != nil {
			p.fail(xe.err)
		}
		return xe.code
	}
	p.fail(err)
	return 1
}

// actionExit renders an action phase's error as its one annotation.
func actionExit(gh *ghaction.Action, err error) int {
	if err == nil {
		return 0
	}
	gh.Errorf("%s", annotation(err))
	return 1
}

// newSuffix draws the random part of a token name.
func newSuffix() (string, error) {
	b := make([]byte, token.SuffixLength/2)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("draw a random name suffix: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// connect is newClient for a run that talks to ep: its first line names
// the API and the tokens it works on, so that a wait on a wrong URL is never
// a silent one.
func connect(apiURL string, parent token.Secret, ep token.Endpoint, debugf, logf func(string, ...any)) *cloudflare.Client {
	logf("Cloudflare API at %s, %s", apiURL, endpointName(ep))
	return newClient(apiURL, parent, debugf, logf)
}

// newClient builds the Cloudflare client for a validated API URL and parent
// token; debugf gets a line per request, progressf a line per retry after
// the first.
func newClient(apiURL string, parent token.Secret, debugf, progressf func(string, ...any)) *cloudflare.Client {
	return &cloudflare.Client{
		BaseURL:   apiURL,
		HTTP:      cloudflare.NewHTTPClient(),
		Token:     parent,
		UserAgent: Name + "/" + Version,
		Debugf:    debugf,
		Progressf: progressf,
	}
}

func newMinter(api mint.API, logf func(string, ...any)) *mint.Minter {
	return &mint.Minter{API: api, Now: time.Now, Logf: logf}
}

// revoke deletes one token, for the action's mode revoke and the revoke
// command alike, under one deadline.
func revoke(ctx context.Context, m *mint.Minter, ep token.Endpoint, t token.Info) (mint.Outcome, error) {
	ctx, cancel := context.WithTimeout(ctx, postDeadline)
	defer cancel()
	return m.Revoke(ctx, ep, t)
}

// sweep deletes this tool's expired tokens, for the action's mode sweep
// and the sweep command alike, under one deadline.
func sweep(ctx context.Context, m *mint.Minter, ep token.Endpoint, dryRun bool) ([]token.Info, error) {
	ctx, cancel := context.WithTimeout(ctx, mainDeadline)
	defer cancel()
	return m.Sweep(ctx, ep, dryRun)
}

// endpointName says whose tokens an endpoint holds.
func endpointName(ep token.Endpoint) string {
	if ep.IsAccount() {
		return "account " + ep.AccountID + "'s tokens"
	}
	return "the user's tokens"
}

// explain adds what a user can do about an error, by what the client
// classified it as. Its references to inputs (token.Ref) are said in the
// reader's words by annotation or the CLI's printer.
func explain(err error) string {
	var verr *mint.VerifyError
	var rerr *mint.RevokeError
	var be *broker.Error
	ref := token.Ref
	// A revoke's answer is not about the exchange: the exchange's hints
	// (policy, scopes, audience, ttl) do not fit it.
	isRevoke := errors.As(err, &rerr)
	switch {
	case errors.As(err, &verr):
		// Verify is called with the new token, not the parent.
		hint := "Cloudflare did not accept the new token when it was checked"
		if !isRevoke {
			hint += ", so it was deleted"
		}
		return hint + "; set " + ref("verify", "false") + " to hand it out unchecked"
	case errors.As(err, &be) && !isRevoke && be.Code == broker.AccessDenied:
		return "the broker's policy has no rule for this job's identity (repository, ref, environment, workflow): ask its owner, or run this from the branch or environment a rule names"
	case errors.As(err, &be) && !isRevoke && (be.Code == broker.InvalidScope || be.Code == broker.InvalidTarget):
		return "the broker's rule does not grant all of it: ask for less (" + ref("scopes") + ", " + ref("account-ids") + "), or have the policy's rule extended"
	case errors.As(err, &be) && !isRevoke && be.Code == broker.InvalidRequest:
		return "the broker refused the request or the job's OIDC token; its description says which (" + ref("audience") + " must be the broker's, " + ref("ttl") + " at most the rule's max-ttl)"
	case errors.As(err, &be) && be.Temporary():
		return "the broker could not serve the request; it was tried again and may work in a while"
	case errors.As(err, &be):
		// Not tried again: a 500 is the broker's own fault, a 401, 404 or
		// 405 most often an address that is not the broker's.
		return fmt.Sprintf("the broker answered %d, which trying again would not change: check that %s is the broker's address, or ask its owner (its log says why)", be.Status, ref("broker-url"))
	case errors.Is(err, token.ErrUnauthorized):
		return "Cloudflare refused " + ref("api-token") + ": it is mistyped, expired or deleted, an account-owned token used with " + ref("owner", "user") + ", or limited to other IP addresses than " + ref("machine") + "'s"
	case errors.Is(err, token.ErrForbidden):
		return ref("api-token") + ` lacks a permission: user-owned tokens need "API Tokens Write" (template "Create Additional Tokens"), account-owned ones "Account API Tokens Write"`
	case errors.Is(err, token.ErrPermissionCeiling):
		return "Cloudflare would not let " + ref("api-token") + " grant these permission groups on these accounts (the parent's owner lacks them there, or the parent must hold them itself): add them to the parent, or ask for fewer " + ref("scopes")
	case errors.Is(err, token.ErrQuotaExceeded):
		return "Cloudflare allows 50 tokens per user and 500 per account, expired ones included: delete this tool's expired ones with " + ref("mode", "sweep") + ", or unused tokens in the dashboard"
	case errors.Is(err, token.ErrRateLimited):
		return "Cloudflare's rate limit (1200 requests per 5 minutes per token, shared by every job that uses it) held for longer than this step waits"
	case errors.Is(err, token.ErrUnavailable):
		return "Cloudflare's API kept failing; try again later (https://www.cloudflarestatus.com)"
	case errors.Is(err, token.ErrOutcomeUnknown):
		return "the API did not answer; check the network path to " + ref("api-url")
	}
	return ""
}
