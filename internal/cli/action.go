package cli

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/cf-scoped-token/cf-scoped-token/internal/ghaction"
	"github.com/cf-scoped-token/cf-scoped-token/internal/mint"
	"github.com/cf-scoped-token/cf-scoped-token/internal/token"
)

// State the main phase leaves for the post phase (reference/github-runner.md
// §2: it reaches post as STATE_<name>, name verbatim).
const (
	stateTokenID   = "token-id"
	stateName      = "token-name"
	stateExpiresAt = "token-expires-at"
	stateAccount   = "token-account" // the account of an account-owned token; empty for user-owned
)

// runAction is the action's main phase: validate every input, then create,
// verify and hand over the token — or revoke or sweep, per mode.
func runAction(ctx context.Context, getenv func(string) string, stdout io.Writer) int {
	gh := ghaction.New(getenv, stdout)
	// The parent token is masked before anything else is written, so not
	// even a message about a wrong input can show it.
	gh.Mask(strings.TrimSpace(gh.Input("api-token")))
	in, err := actionInputs(gh)
	if err != nil {
		gh.Errorf("%s", annotation(err))
		return 1
	}
	suffix, err := newSuffix()
	if err != nil {
		gh.Errorf("%s", annotation(err))
		return 1
	}
	req, err := in.Parse(runContext(getenv, suffix))
	if err != nil {
		gh.Errorf("%s", annotation(err))
		return 1
	}

	ctx, cancel := context.WithTimeout(ctx, mainDeadline)
	defer cancel()
	m := newMinter(newClient(req, gh.Debugf), func(format string, args ...any) {
		fmt.Fprintf(stdout, format+"\n", args...)
	})
	switch req.Mode {
	case token.ModeRevoke:
		err = m.Revoke(ctx, req.Endpoint(), token.Info{ID: req.TokenID})
		if err == nil {
			gh.Noticef("Token %s is deleted.", req.TokenID)
		}
	case token.ModeSweep:
		var swept []token.Info
		swept, err = m.Sweep(ctx, req.Endpoint(), false)
		if err == nil {
			gh.Noticef("Deleted %d expired %q token(s).", len(swept), strings.TrimSpace(token.NamePrefix))
		}
	default:
		_, err = m.Mint(ctx, req, func(t mint.Minted) error { return handover(gh, req, t) })
	}
	if err != nil {
		gh.Errorf("%s", annotation(err))
		return 1
	}
	return 0
}

// handover gives the token to the job: mask first, then the state post
// needs to delete it, then the outputs, env and summary. An error here
// makes the lifecycle delete the token.
func handover(gh *ghaction.Action, req token.Request, t mint.Minted) error {
	gh.Mask(t.Value.Reveal())
	if err := gh.Err(); err != nil {
		return fmt.Errorf("mask the token: %w", err)
	}
	expires := t.ExpiresOn.UTC().Format(time.RFC3339)
	type write struct {
		set         func(name, value string) error
		name, value string
	}
	steps := []write{
		{gh.SaveState, stateTokenID, t.ID},
		{gh.SaveState, stateName, t.Name},
		{gh.SaveState, stateExpiresAt, expires},
		{gh.SaveState, stateAccount, t.Endpoint.AccountID},
		{gh.SetOutput, "token", t.Value.Reveal()},
		{gh.SetOutput, "token-id", t.ID},
		{gh.SetOutput, "expires-at", expires},
		{gh.SetOutput, "name", t.Name},
	}
	if req.ExportEnv {
		// The variables wrangler and Terraform's provider read.
		steps = append(steps, write{gh.SetEnv, "CLOUDFLARE_API_TOKEN", t.Value.Reveal()})
		if len(t.AccountIDs) == 1 {
			steps = append(steps, write{gh.SetEnv, "CLOUDFLARE_ACCOUNT_ID", t.AccountIDs[0]})
		}
	}
	for _, s := range steps {
		if err := s.set(s.name, s.value); err != nil {
			return err
		}
	}
	if err := gh.AddStepSummary(summary(t, req.Revoke)); err != nil {
		gh.Warningf("Could not write the job summary: %v", err)
	}
	return nil
}

// runPost is the action's post phase, run when the job ends (also after a
// failure or cancellation): delete the token main created.
func runPost(ctx context.Context, getenv func(string) string, stdout io.Writer) int {
	gh := ghaction.New(getenv, stdout)
	gh.Mask(strings.TrimSpace(gh.Input("api-token")))
	id := gh.State(stateTokenID)
	if id == "" {
		gh.Noticef("No token to revoke: the main step created none.")
		return 0
	}
	expires := gh.State(stateExpiresAt)
	in, err := actionInputs(gh)
	if err != nil {
		gh.Errorf("%s", annotation(err))
		return 1
	}
	revoke, err := token.ParseBool("revoke", in.Revoke)
	if err != nil {
		gh.Errorf("%s", annotation(err))
		return 1
	}
	if !revoke {
		gh.Noticef("Token %s is kept (revoke: false); it expires at %s.", id, expires)
		return 0
	}
	// The state was written by main; check it like any input all the same.
	if _, err := token.ParseTokenID(id); err != nil {
		gh.Errorf("The state token-id is not a token id; nothing was deleted.")
		return 1
	}
	ep := token.Endpoint{AccountID: gh.State(stateAccount)}
	if ep.AccountID != "" {
		if _, err := token.ParseAccountIDs(ep.AccountID); err != nil {
			gh.Errorf("The state token-account is not an account id; token %s was not deleted and expires at %s.", id, expires)
			return 1
		}
	}
	apiURL, err := token.ParseAPIURL(in.APIURL)
	if err != nil {
		gh.Errorf("%s", annotation(err))
		return 1
	}
	req := token.Request{APIToken: token.NewSecret(strings.TrimSpace(in.APIToken)), APIURL: apiURL}
	ctx, cancel := context.WithTimeout(ctx, postDeadline)
	defer cancel()
	m := newMinter(newClient(req, gh.Debugf), func(format string, args ...any) {
		fmt.Fprintf(stdout, format+"\n", args...)
	})
	exp, _ := time.Parse(time.RFC3339, expires)
	if err := m.Revoke(ctx, ep, token.Info{ID: id, Name: gh.State(stateName), ExpiresOn: exp}); err != nil {
		gh.Errorf("%s", annotation(err))
		return 1
	}
	return 0
}

// runContext is what the default token name is made of.
func runContext(getenv func(string) string, suffix string) token.RunContext {
	return token.RunContext{
		Repository: getenv("GITHUB_REPOSITORY"),
		RunID:      getenv("GITHUB_RUN_ID"),
		RunAttempt: getenv("GITHUB_RUN_ATTEMPT"),
		Job:        getenv("GITHUB_JOB"),
		Suffix:     suffix,
	}
}

// summary is the job summary: what was made, never its value.
func summary(t mint.Minted, revoke bool) string {
	var b strings.Builder
	b.WriteString("### Cloudflare scoped token\n\n| | |\n|---|---|\n")
	row := func(k, v string) { fmt.Fprintf(&b, "| %s | %s |\n", k, v) }
	row("Name", code(t.Name))
	row("Token id", code(t.ID))
	groups := make([]string, len(t.Groups))
	for i, g := range t.Groups {
		if g.Name == "" {
			groups[i] = code(g.ID)
		} else {
			groups[i] = cell(g.Name) + " (" + code(g.ID) + ")"
		}
	}
	row("Permission groups", strings.Join(groups, "<br>"))
	accounts := make([]string, len(t.AccountIDs))
	for i, a := range t.AccountIDs {
		accounts[i] = code(a)
	}
	row("Accounts", strings.Join(accounts, ", "))
	owner := "user"
	if t.Endpoint.IsAccount() {
		owner = "account " + code(t.Endpoint.AccountID)
	}
	row("Owner", owner)
	row("Expires", t.ExpiresOn.UTC().Format(time.RFC3339))
	ips := "none"
	if len(t.AllowedIPs) > 0 {
		c := make([]string, len(t.AllowedIPs))
		for i, ip := range t.AllowedIPs {
			c[i] = code(ip)
		}
		ips = strings.Join(c, ", ")
	}
	row("IP restriction", ips)
	if revoke {
		row("Revoked", "when the job ends")
	} else {
		row("Revoked", "no (revoke: false): lives until it expires")
	}
	if t.Adopted {
		row("Note", "the create answer was lost; the token was found by its name and given a new value")
	}
	return b.String()
}

// cell escapes text for a Markdown table cell.
func cell(s string) string {
	return strings.NewReplacer("|", `\|`, "<", "&lt;", ">", "&gt;", "`", "'").Replace(s)
}

func code(s string) string { return "`" + strings.ReplaceAll(cell(s), "`", "'") + "`" }
