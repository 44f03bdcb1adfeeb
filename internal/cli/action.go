package cli

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode"

	"github.com/cf-scoped-token/cf-scoped-token/internal/ghaction"
	"github.com/cf-scoped-token/cf-scoped-token/internal/mint"
	"github.com/cf-scoped-token/cf-scoped-token/internal/token"
)

// State the main phase leaves for the post phase (reference/github-runner.md
// §2: it reaches post as STATE_<name>, name verbatim). Each key is one field
// of token.Record.
const (
	stateTokenID   = "token-id"
	stateName      = "token-name"
	stateExpiresAt = "token-expires-at"
	stateAccount   = "token-account" // the account of an account-owned token; empty for user-owned
	statePending   = "token-pending" // "true" while a create is on the wire
	stateLost      = "token-lost"    // "true" once a create answer was lost
	// stateSecret is the child itself, in keyless mode only: post presents it
	// to the broker to have it deleted. State reaches only this action's post.
	stateSecret = "token-secret"
)

// saveLedger writes what the post phase needs to delete what main made,
// every key every time: the first call, with an empty ledger, comes before
// anything else main does, so that post sees only this run's values — a
// STATE_* variable planted in the job's environment reaches post unless
// main saved that key (reference/github-runner.md §1, precedence).
func saveLedger(gh *ghaction.Action, l mint.Ledger, child token.Secret) error {
	expires := ""
	if !l.ExpiresOn.IsZero() {
		expires = l.ExpiresOn.UTC().Format(time.RFC3339)
	}
	for _, kv := range [...][2]string{
		{stateTokenID, l.ID},
		{stateName, l.Name},
		{stateExpiresAt, expires},
		{stateAccount, l.Endpoint.AccountID},
		{statePending, trueOrEmpty(l.Pending)},
		{stateLost, trueOrEmpty(l.Lost)},
		{stateSecret, child.Reveal()},
	} {
		if err := gh.SaveState(kv[0], kv[1]); err != nil {
			return err
		}
	}
	return nil
}

func trueOrEmpty(b bool) string {
	if b {
		return "true"
	}
	return ""
}

// record reads main's ledger back in the post phase.
func record(gh *ghaction.Action) token.Record {
	return token.Record{
		TokenID: gh.State(stateTokenID), Name: gh.State(stateName), ExpiresAt: gh.State(stateExpiresAt),
		AccountID: gh.State(stateAccount), Pending: gh.State(statePending), Lost: gh.State(stateLost),
		Secret: gh.State(stateSecret),
	}
}

// runAction is the action's main phase: validate every input, then create,
// verify and hand over the token — or revoke or sweep, per mode.
func runAction(ctx context.Context, gh *ghaction.Action, getenv func(string) string, stdout io.Writer) error {
	// The parent token is masked before anything else is written, so not
	// even a message about a wrong input can show it.
	gh.Mask(gh.Input("api-token"))
	if err := saveLedger(gh, mint.Ledger{}, token.Secret{}); err != nil {
		return err
	}
	in, err := actionInputs(gh)
	if err != nil {
		return err
	}
	suffix, err := newSuffix()
	if err != nil {
		return err
	}
	req, err := in.Parse(runContext(getenv, suffix))
	if err != nil {
		return err
	}
	logf := lineLogger(stdout)
	if req.BrokerURL != nil {
		return runKeyless(ctx, gh, req, logf)
	}
	m := newMinter(connect(req.APIURL.String(), req.APIToken, req.Endpoint(), gh.Debugf, logf), logf)
	switch req.Mode {
	case token.ModeRevoke:
		out, err := revoke(ctx, m, req.Endpoint(), token.Info{ID: req.TokenID})
		if err != nil {
			return err
		}
		if out == mint.NotFound {
			gh.Noticef("Token %s was not found on %s: it is already gone, or it lives under another owner (set owner and account-ids as when it was created).", req.TokenID, endpointName(req.Endpoint()))
		} else {
			gh.Noticef("Token %s is deleted.", req.TokenID)
		}
		return nil
	case token.ModeSweep:
		swept, err := sweep(ctx, m, req.Endpoint(), false)
		if err != nil {
			return err
		}
		gh.Noticef("Deleted %d expired %q token(s).", len(swept), strings.TrimSpace(token.NamePrefix))
		return nil
	}
	m.Mask = func(s token.Secret) error {
		gh.Mask(s.Reveal())
		return gh.Err()
	}
	m.Record = func(l mint.Ledger) error { return saveLedger(gh, l, token.Secret{}) }
	ctx, cancel := context.WithTimeout(ctx, mainDeadline)
	defer cancel()
	_, err = m.Mint(ctx, req, func(t mint.Minted) error { return handover(gh, req, t, "") })
	return err
}

// handover gives the masked and recorded token to the job: the outputs,
// env and summary (rule: the broker's rule that granted it, in keyless
// mode). An error here makes the lifecycle delete the token.
func handover(gh *ghaction.Action, req token.Request, t mint.Minted, rule string) error {
	expires := t.ExpiresOn.UTC().Format(time.RFC3339)
	type write struct {
		set         func(name, value string) error
		name, value string
	}
	steps := []write{
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
	if err := gh.AddStepSummary(summary(t, req.Revoke, rule)); err != nil {
		gh.Warningf("Could not write the job summary: %v", err)
	}
	return nil
}

// runPost is the action's post phase, run when the job ends (also after a
// failure or cancellation): delete what main made, as main recorded it.
func runPost(ctx context.Context, gh *ghaction.Action, stdout io.Writer) error {
	gh.Mask(gh.Input("api-token"))
	in, err := actionInputs(gh)
	if err != nil {
		return err
	}
	c, err := in.ParseCleanup(record(gh))
	if err != nil {
		return err
	}
	switch {
	case c.Nothing():
		gh.Noticef("No token to revoke: the main step created none.")
		return nil
	case c.Mode != token.ModeCreate:
		fmt.Fprintf(stdout, "mode %s: the main step makes no token, so there is nothing to delete\n", c.Mode)
		return nil
	case c.Keep && !c.FindByName: // keyless never looks up by name
		gh.Noticef("Token %s is kept (revoke: false); it expires at %s.", c.Token.ID, formatTime(c.Token.ExpiresOn))
		return nil
	case c.BrokerURL != nil:
		// As below: a cancelled post step ends within the grace, with an
		// error that names the token, before the runner's kill.
		ctx, cancel := context.WithTimeout(ctx, postDeadline)
		defer cancel()
		ctx, cancelClean := cleanupContext(ctx)
		defer cancelClean()
		return runKeylessPost(ctx, c, lineLogger(stdout))
	}
	logf := lineLogger(stdout)
	m := newMinter(connect(c.APIURL.String(), c.APIToken, c.Endpoint, gh.Debugf, logf), logf)
	ctx, cancel := context.WithTimeout(ctx, postDeadline)
	defer cancel()
	// One grace for the delete and the look-up after it: a cancelled post
	// step must be done before the runner's kill.
	ctx, cancelClean := m.CleanupContext(ctx)
	defer cancelClean()
	if c.Token.ID != "" && !c.Keep {
		out, err := m.Revoke(ctx, c.Endpoint, c.Token)
		if err != nil {
			return err
		}
		if out == mint.NotFound {
			fmt.Fprintf(stdout, "token %s was already gone\n", c.Token.ID)
		}
	}
	if c.FindByName {
		// Main saw a create answer lost, or was stopped before it learned the
		// outcome (then the create may still be committing: look patiently):
		// a token of that name may exist that no id names.
		deleted, err := m.DeleteNamed(ctx, c.Endpoint, c.Token.Name, c.Token.ID, c.Pending)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "looked up tokens named %q: deleted %d\n", c.Token.Name, len(deleted))
	}
	return nil
}

// lineLogger writes progress lines to w, the action's log.
func lineLogger(w io.Writer) func(format string, args ...any) {
	return func(format string, args ...any) { fmt.Fprintf(w, format+"\n", args...) }
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return "its expiry"
	}
	return t.UTC().Format(time.RFC3339)
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

// summary is the job summary: what was made, never its value. Every text
// from the API (names) goes through cell or code: it is data, never
// Markdown.
func summary(t mint.Minted, revoke bool, rule string) string {
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
	if rule != "" {
		row("Granted by", "the broker's rule "+code(rule))
	}
	if t.Adopted {
		row("Note", "the create answer was lost; the token was found by its name and given a new value")
	}
	return b.String()
}

// cell escapes text for a Markdown table cell: every ASCII punctuation mark
// is backslash-escaped (GFM allows it for all of them), so no character of
// the text can end the cell or the row, or open HTML, a link, an image,
// emphasis or a code span; a control character (a newline would start a new
// Markdown block) shows as its escape.
func cell(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case isControl(r):
			fmt.Fprintf(&b, "\\u%04x", r)
		case r < 0x80 && (unicode.IsPunct(r) || unicode.IsSymbol(r)):
			b.WriteByte('\\')
			b.WriteRune(r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// code is text as a code span in a table cell. Inside a code span Markdown
// and HTML are shown as they are, so only what could end the span, the cell
// or the row is replaced: a backtick by a quote, a pipe by its escape (GFM
// reads \| in a table even inside code), a control character by its escape.
func code(s string) string {
	var b strings.Builder
	b.WriteByte('`')
	for _, r := range s {
		switch {
		case isControl(r):
			fmt.Fprintf(&b, "\\u%04x", r)
		case r == '`':
			b.WriteByte('\'')
		case r == '|':
			b.WriteString(`\|`)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('`')
	return b.String()
}

// isControl reports the characters that must never be printed as they are:
// C0 and C1 controls, DEL, and the Unicode line and paragraph separators.
func isControl(r rune) bool {
	return r < 0x20 || r == 0x7f || 0x80 <= r && r < 0xa0 || r == '\u2028' || r == '\u2029'
}
