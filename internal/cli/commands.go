package cli

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
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
func cliRequest(fs *flag.FlagSet, lookup func(string) string, mode token.Mode, getenv func(string) string) (token.Request, error) {
	if err := checkNoTokenFlag(fs); err != nil {
		return token.Request{}, err
	}
	in, err := loadInputs(lookup)
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
	lookup := inputFlags(fs, getenv, "api-token", "account-ids", "scopes", "permission", "ttl", "owner", "name", "allowed-ips", "verify", "api-url")
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
	ctx, cancel := context.WithTimeout(ctx, mainDeadline)
	defer cancel()
	m := newMinter(newClient(req, p.debugf), p.logf)
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
		out := fmt.Sprintf("CLOUDFLARE_API_TOKEN=%s\n", t.Value.Reveal())
		if len(t.AccountIDs) == 1 {
			out += fmt.Sprintf("CLOUDFLARE_ACCOUNT_ID=%s\n", t.AccountIDs[0])
		}
		out += fmt.Sprintf("CF_SCOPED_TOKEN_ID=%s\nCF_SCOPED_TOKEN_EXPIRES_AT=%s\n", t.ID, expires)
		_, err = fmt.Fprint(p.out, out)
	default:
		_, err = fmt.Fprintln(p.out, t.Value.Reveal())
	}
	if err != nil {
		return fmt.Errorf("write the token to stdout: %w", err)
	}
	return nil
}

func runRevoke(ctx context.Context, args []string, getenv func(string) string, p *printer) error {
	fs := flag.NewFlagSet("revoke", flag.ContinueOnError)
	lookup := inputFlags(fs, getenv, "api-token", "token-id", "owner", "account-ids", "api-url")
	fs.BoolVar(&p.verbose, "verbose", false, "log each API call (never a secret)")
	if err := parseFlags(fs, args, p, "cf-scoped-token revoke --token-id ID [--owner account --account-ids ID]"); err != nil {
		return err
	}
	req, err := cliRequest(fs, lookup, token.ModeRevoke, getenv)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, postDeadline)
	defer cancel()
	if err := newMinter(newClient(req, p.debugf), p.logf).Revoke(ctx, req.Endpoint(), token.Info{ID: req.TokenID}); err != nil {
		return err
	}
	return nil
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
	ctx, cancel := context.WithTimeout(ctx, mainDeadline)
	defer cancel()
	swept, err := newMinter(newClient(req, p.debugf), p.logf).Sweep(ctx, req.Endpoint(), *dryRun)
	for _, t := range swept {
		fmt.Fprintf(p.out, "%s\t%s\t%s\n", t.ID, t.ExpiresOn.UTC().Format(time.RFC3339), t.Name)
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
