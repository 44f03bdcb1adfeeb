package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/cf-scoped-token/cf-scoped-token/internal/mint"
	"github.com/cf-scoped-token/cf-scoped-token/internal/token"
)

// Output formats of create.
const (
	formatText = "text" // the token alone, for $(…)
	formatJSON = "json" // token, token-id, expires-at, name: the action's outputs
	formatEnv  = "env"  // KEY=value lines for eval or an env file
)

// cliRequest reads a subcommand's inputs and validates them all; nothing
// is called before it returns.
func cliRequest(fs *flag.FlagSet, inputs func() (token.Inputs, error), mode token.Mode, getenv func(string) string) (token.Request, error) {
	if err := checkNoTokenFlag(fs); err != nil {
		return token.Request{}, err
	}
	in, err := inputs()
	if err != nil {
		return token.Request{}, err
	}
	in.Mode = string(mode)
	suffix, err := newSuffix()
	if err != nil {
		return token.Request{}, err
	}
	return in.Parse(runContext(getenv, suffix))
}

func runCreate(ctx context.Context, args []string, getenv func(string) string, p *printer) error {
	fs := flag.NewFlagSet("create", flag.ContinueOnError)
	lookup := inputFlags(fs, getenv, "api-token", "account-ids", "scopes", "permission", "ttl", "owner", "name", "allowed-ips", "verify", "api-url", "broker-url")
	subject := registerSubjectFlags(fs)
	format := fs.String("format", formatText, "output: text (the token alone), json or env")
	fs.StringVar(format, "f", formatText, "short for --format")
	fs.BoolVar(&p.verbose, "verbose", false, "log each API call (never a secret)")
	if err := parseFlags(fs, args, p, "cf-scoped-token create -a ACCOUNT_IDS [-s SCOPES] [-t TTL] [flags]"); err != nil {
		return err
	}
	switch *format {
	case formatText, formatJSON, formatEnv:
	default:
		return usageError{fmt.Sprintf("--format %q is not a format", *format), "use --format text, json or env"}
	}
	req, err := cliRequest(fs, lookup, token.ModeCreate, getenv)
	if err != nil {
		return err
	}
	if req.BrokerURL != nil {
		t, g, err := mintKeyless(ctx, req, subject, getenv, p)
		if err != nil {
			return err
		}
		if err := printToken(p, *format, t); err != nil {
			return errors.Join(err, revokeAtBroker(context.WithoutCancel(ctx), req.BrokerURL.String(), g, p.logf))
		}
		p.logf("token %s lives until %s; delete it sooner with: cf-scoped-token revoke --broker-url %s (it reads the token from CLOUDFLARE_API_TOKEN)",
			t.ID, t.ExpiresOn.UTC().Format(time.RFC3339), req.BrokerURL)
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, mainDeadline)
	defer cancel()
	m := newMinter(connect(req.APIURL.String(), req.APIToken, req.Endpoint(), p.debugf, p.logf), p.logf)
	t, err := m.Mint(ctx, req, func(t mint.Minted) error { return printToken(p, *format, t) })
	if err != nil {
		return err
	}
	p.logf("token %s lives until %s; delete it sooner with: cf-scoped-token revoke --token-id %s%s",
		t.ID, t.ExpiresOn.UTC().Format(time.RFC3339), t.ID, ownerFlags(req))
	return nil
}

// ownerFlags repeats the flags revoke needs to find an account-owned token.
func ownerFlags(req token.Request) string {
	if req.Owner == token.OwnerAccount {
		return " --owner account --account-ids " + req.AccountIDs[0]
	}
	return ""
}

// printToken writes the token to stdout, the one place a CLI run shows it.
func printToken(p *printer, format string, t mint.Minted) error {
	expires := t.ExpiresOn.UTC().Format(time.RFC3339)
	var err error
	switch format {
	case formatJSON:
		enc := json.NewEncoder(p.out)
		enc.SetIndent("", "  ")
		err = enc.Encode(map[string]string{
			"token": t.Value.Reveal(), "token-id": t.ID, "expires-at": expires, "name": t.Name,
		})
	case formatEnv:
		var b strings.Builder
		for _, kv := range tokenEnv(t) {
			fmt.Fprintf(&b, "export %s=%s\n", kv[0], shellQuote(kv[1]))
		}
		_, err = fmt.Fprint(p.out, b.String())
	default:
		_, err = fmt.Fprintln(p.out, t.Value.Reveal())
	}
	if err != nil {
		return fmt.Errorf("write the token to stdout: %w", err)
	}
	return nil
}

// tokenEnv is the environment a token is handed over in: the variables
// wrangler and Terraform read, and its id and expiry.
func tokenEnv(t mint.Minted) [][2]string {
	env := [][2]string{{"CLOUDFLARE_API_TOKEN", t.Value.Reveal()}}
	if len(t.AccountIDs) == 1 {
		env = append(env, [2]string{"CLOUDFLARE_ACCOUNT_ID", t.AccountIDs[0]})
	}
	return append(env,
		[2]string{"CF_SCOPED_TOKEN_ID", t.ID},
		[2]string{"CF_SCOPED_TOKEN_EXPIRES_AT", t.ExpiresOn.UTC().Format(time.RFC3339)})
}

// shellQuote quotes s for a POSIX shell, and so for eval: inside single
// quotes nothing is special, and a single quote is written as '\”. Dotenv
// readers take the same form.
func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

func runRevoke(ctx context.Context, args []string, getenv func(string) string, p *printer) error {
	fs := flag.NewFlagSet("revoke", flag.ContinueOnError)
	lookup := inputFlags(fs, getenv, "api-token", "token-id", "owner", "account-ids", "api-url")
	brokerURL := fs.String("broker-url", "", "keyless: delete the token in --token-env through this broker, which made it")
	tokenEnv := fs.String("token-env", "CLOUDFLARE_API_TOKEN", "keyless: the variable holding the token to delete")
	fs.BoolVar(&p.verbose, "verbose", false, "log each API call (never a secret)")
	if err := parseFlags(fs, args, p, "cf-scoped-token revoke --token-id ID [--owner account --account-ids ID]\n       cf-scoped-token revoke --broker-url URL [--token-env CLOUDFLARE_API_TOKEN]"); err != nil {
		return err
	}
	if *brokerURL != "" {
		if err := checkNoTokenFlag(fs); err != nil {
			return err
		}
		// The broker finds the token by the token itself: a --token-id would
		// be ignored, and deleting another token than the one named is the
		// one mistake revoke must not make.
		idGiven := false
		fs.Visit(func(f *flag.Flag) { idGiven = idGiven || f.Name == "token-id" })
		if idGiven {
			return usageError{"--token-id does not go with --broker-url: the broker deletes the token it is shown, the one in --token-env",
				"keyless: --broker-url URL --token-env VAR; with the parent token: --token-id ID without --broker-url"}
		}
		return runRevokeKeyless(ctx, *brokerURL, *tokenEnv, getenv, p)
	}
	req, err := cliRequest(fs, lookup, token.ModeRevoke, getenv)
	if err != nil {
		return err
	}
	out, err := revoke(ctx, newMinter(connect(req.APIURL.String(), req.APIToken, req.Endpoint(), p.debugf, p.logf), p.logf), req.Endpoint(), token.Info{ID: req.TokenID})
	if err != nil {
		return err
	}
	if out == mint.NotFound {
		p.logf("token %s not found on %s: it is already gone, or it lives under another owner%s", req.TokenID, endpointName(req.Endpoint()), otherOwnerHint(req))
	}
	return nil
}

// otherOwnerHint says how to reach a token of the other owner.
func otherOwnerHint(req token.Request) string {
	if req.Owner == token.OwnerAccount {
		return " (a user-owned token is deleted without --owner account)"
	}
	return " (an account-owned token is deleted with --owner account --account-ids ID)"
}

func runSweep(ctx context.Context, args []string, getenv func(string) string, p *printer) error {
	fs := flag.NewFlagSet("sweep", flag.ContinueOnError)
	lookup := inputFlags(fs, getenv, "api-token", "owner", "account-ids", "api-url")
	dryRun := fs.Bool("dry-run", false, "list what would be deleted, delete nothing")
	fs.BoolVar(&p.verbose, "verbose", false, "log each API call (never a secret)")
	if err := parseFlags(fs, args, p, "cf-scoped-token sweep [--dry-run] [--owner account --account-ids ID]"); err != nil {
		return err
	}
	req, err := cliRequest(fs, lookup, token.ModeSweep, getenv)
	if err != nil {
		return err
	}
	swept, err := sweep(ctx, newMinter(connect(req.APIURL.String(), req.APIToken, req.Endpoint(), p.debugf, p.logf), p.logf), req.Endpoint(), *dryRun)
	for _, t := range swept {
		fmt.Fprintf(p.out, "%s\t%s\t%s\n", t.ID, t.ExpiresOn.UTC().Format(time.RFC3339), printable(t.Name))
	}
	if err != nil {
		return err
	}
	verb := "deleted"
	if *dryRun {
		verb = "would delete"
	}
	p.logf("%s %d expired token(s) named %q…", verb, len(swept), token.NamePrefix)
	return nil
}
