package cli

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/cf-scoped-token/cf-scoped-token/internal/token"
)

const listSynopsis = `cf-scoped-token list [--owner account --account-ids ID] [--format table|json]

Lists this tool's tokens (their names start with "cf-scoped-token ") on the
user's token endpoint, or an account's: name, id, status, expiry, age,
accounts and permission groups. The command-line counterpart of the
dashboard's API Tokens tab.`

// listed is one token as list shows it.
type listed struct {
	Name             string        `json:"name"`
	ID               string        `json:"id"`
	Status           string        `json:"status"`
	ExpiresAt        string        `json:"expires_at,omitempty"`
	IssuedAt         string        `json:"issued_at,omitempty"`
	AgeSeconds       int64         `json:"age_seconds"`
	AccountIDs       []string      `json:"account_ids"`
	PermissionGroups []listedGroup `json:"permission_groups"`
}

// listedGroup is a permission group as list shows it.
type listedGroup struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

func runList(ctx context.Context, args []string, getenv func(string) string, p *printer) error {
	fs := flag.NewFlagSet("list", flag.ContinueOnError)
	inputs := inputFlags(fs, getenv, "api-token", "owner", "account-ids", "api-url")
	format := fs.String("format", "table", "output: table or json")
	fs.StringVar(format, "f", "table", "short for --format")
	fs.BoolVar(&p.verbose, "verbose", false, "log each API call (never a secret)")
	if err := parseFlags(fs, args, p, listSynopsis); err != nil {
		return err
	}
	if *format != "table" && *format != "json" {
		return usageError{fmt.Sprintf("--format %q is not a format", *format), "use --format table or json"}
	}
	req, err := cliRequest(fs, inputs, token.ModeSweep, getenv) // sweep's inputs: an endpoint, nothing to create
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, mainDeadline)
	defer cancel()
	all, err := connect(req.APIURL.String(), req.APIToken, req.Endpoint(), p.debugf, p.logf).ListTokens(ctx, req.Endpoint())
	if err != nil {
		return err
	}
	now := time.Now()
	var rows []listed
	for _, t := range all {
		if !token.IsOwnName(t.Name) {
			continue
		}
		r := listed{Name: t.Name, ID: t.ID, Status: t.Status, AccountIDs: t.AccountIDs, PermissionGroups: []listedGroup{}}
		for _, g := range t.Groups {
			r.PermissionGroups = append(r.PermissionGroups, listedGroup{ID: g.ID, Name: g.Name})
		}
		if !t.ExpiresOn.IsZero() {
			r.ExpiresAt = t.ExpiresOn.UTC().Format(time.RFC3339)
		}
		if !t.IssuedOn.IsZero() {
			r.IssuedAt = t.IssuedOn.UTC().Format(time.RFC3339)
			r.AgeSeconds = int64(now.Sub(t.IssuedOn).Seconds())
		}
		rows = append(rows, r)
	}
	slices.SortFunc(rows, func(a, b listed) int { return strings.Compare(b.IssuedAt, a.IssuedAt) }) // newest first
	if *format == "json" {
		enc := json.NewEncoder(p.out)
		enc.SetIndent("", "  ")
		if rows == nil {
			rows = []listed{}
		}
		return enc.Encode(rows)
	}
	tw := tabwriter.NewWriter(p.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tID\tSTATUS\tEXPIRES\tAGE\tACCOUNTS\tPERMISSION GROUPS")
	for _, r := range rows {
		groups := make([]string, len(r.PermissionGroups))
		for i, g := range r.PermissionGroups {
			groups[i] = printable(g.Name)
			if g.Name == "" {
				groups[i] = g.ID
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", printable(r.Name), r.ID, printable(r.Status), orDash(r.ExpiresAt),
			age(time.Duration(r.AgeSeconds)*time.Second), orDash(strings.Join(r.AccountIDs, ",")), orDash(strings.Join(groups, ", ")))
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write the list: %w", err)
	}
	p.logf("%d token(s) named %q… on %s", len(rows), token.NamePrefix, endpointName(req.Endpoint()))
	return nil
}

// printable shows text from the API as data: with any character that is not
// printable (controls, C1, line separators, format characters) escaped, a
// name can neither forge a row nor start a line of its own, such as a
// workflow command.
func printable(s string) string {
	if !strings.ContainsFunc(s, func(r rune) bool { return !strconv.IsPrint(r) }) {
		return s
	}
	q := strconv.Quote(s)
	return q[1 : len(q)-1]
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// age is a duration as a person reads an age: 45s, 12m, 3h, 2d.
func age(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}
