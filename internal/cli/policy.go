package cli

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"net/netip"
	"strings"

	"github.com/cf-scoped-token/cf-scoped-token/internal/policy"
	"github.com/cf-scoped-token/cf-scoped-token/internal/token"
)

// maxClaimsFile bounds a claims file for policy explain.
const maxClaimsFile = 1 << 20

func runPolicy(args []string, p *printer) error {
	if len(args) == 0 {
		return usageError{"policy needs a subcommand: check or explain", "cf-scoped-token policy check FILE, or policy explain FILE --claims CLAIMS.json"}
	}
	switch args[0] {
	case "check":
		return runPolicyCheck(args[1:], p)
	case "explain":
		return runPolicyExplain(args[1:], p)
	}
	return usageError{fmt.Sprintf("unknown policy subcommand %q", args[0]), "use policy check or policy explain"}
}

// parseWithFile parses flags that may come before or after the one FILE
// argument, and returns FILE.
func parseWithFile(fs *flag.FlagSet, args []string, p *printer, synopsis string) (string, error) {
	if err := parseFlagsAndArgs(fs, nonFlagLast(fs, args), p, synopsis); err != nil {
		return "", err
	}
	switch fs.NArg() {
	case 0:
		return "", usageError{"no policy file given", "usage: " + synopsis}
	case 1:
		return fs.Arg(0), nil
	}
	return "", usageError{fmt.Sprintf("unexpected argument %q", fs.Arg(1)), "usage: " + synopsis}
}

// nonFlagLast moves the first argument that is not a flag (the file) to
// the end, so that the standard flag package reads every flag around it.
func nonFlagLast(fs *flag.FlagSet, args []string) []string {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			break
		}
		if strings.HasPrefix(a, "-") {
			name := strings.TrimLeft(a, "-")
			if !strings.Contains(name, "=") {
				if f := fs.Lookup(name); f != nil {
					if _, isBool := f.Value.(interface{ IsBoolFlag() bool }); !isBool {
						i++ // its value
					}
				}
			}
			continue
		}
		out := append(append(append([]string(nil), args[:i]...), args[i+1:]...), a)
		return out
	}
	return args
}

func runPolicyCheck(args []string, p *printer) error {
	const synopsis = "cf-scoped-token policy check FILE"
	fs := flag.NewFlagSet("policy check", flag.ContinueOnError)
	file, err := parseWithFile(fs, args, p, synopsis)
	if err != nil {
		return err
	}
	pol, err := loadPolicyFile(file, p)
	if err != nil {
		return err
	}
	fmt.Fprintf(p.out, "%s: ok: %d issuer(s), %d rule(s)", file, len(pol.Issuers), len(pol.Rules))
	if pol.Audience != "" {
		fmt.Fprintf(p.out, ", audience %s", pol.Audience)
	} else {
		fmt.Fprint(p.out, ", no audience (the broker needs --audience)")
	}
	fmt.Fprintln(p.out)
	return nil
}

func runPolicyExplain(args []string, p *printer) error {
	const synopsis = "cf-scoped-token policy explain FILE --claims CLAIMS.json [--scopes S] [--account-ids IDS] [--ttl D] [--allowed-ips CIDRS] [--caller IP]"
	fs := flag.NewFlagSet("policy explain", flag.ContinueOnError)
	claimsFile := fs.String("claims", "", "JSON file of the OIDC token's claims (its payload), iss included")
	scopes := fs.String("scopes", "", "scope items as the scopes input spells them (default: the rule's whole grant)")
	level := fs.String("permission", "read", "default level of the scope items: read or write")
	accounts := fs.String("account-ids", "", "account ids (default: every account of the rule)")
	ttl := fs.String("ttl", "", "lifetime (default: min(1h, the rule's max-ttl))")
	ips := fs.String("allowed-ips", "", `CIDRs, or "caller"`)
	caller := fs.String("caller", "", "the address the request would come from (for caller)")
	file, err := parseWithFile(fs, args, p, synopsis)
	if err != nil {
		return err
	}
	if *claimsFile == "" {
		return usageError{"--claims is required", "give the token's claims as a JSON file, e.g. the payload of a decoded token"}
	}
	pol, err := loadPolicyFile(file, p)
	if err != nil {
		return err
	}
	b, err := readLimited(*claimsFile, maxClaimsFile)
	if err != nil {
		return usageError{fmt.Sprintf("--claims: %v", err), "give a JSON file of the token's claims"}
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var claims map[string]any
	if err := dec.Decode(&claims); err != nil || claims == nil {
		return usageError{"--claims: the file is not a JSON object", `e.g. {"iss": "https://token.actions.githubusercontent.com", "repository_id": "123", …}`}
	}
	iss, _ := claims["iss"].(string)
	req := policy.Request{Issuer: iss}
	if strings.TrimSpace(*scopes) != "" {
		lvl, err := token.ParseLevel("permission", *level)
		if err != nil {
			return flagFault("permission", err)
		}
		if req.Scopes, err = token.ParseScopes(*scopes, lvl); err != nil {
			return flagFault("scopes", err)
		}
	}
	if strings.TrimSpace(*accounts) != "" {
		if req.AccountIDs, err = token.ParseAccountIDs(*accounts); err != nil {
			return flagFault("account-ids", err)
		}
	}
	if strings.TrimSpace(*ttl) != "" {
		if req.TTL, err = token.ParseTTL(*ttl); err != nil {
			return flagFault("ttl", err)
		}
	}
	var cidrs []string
	for item := range strings.FieldsFuncSeq(*ips, func(r rune) bool { return r == ',' || r == ' ' }) {
		// "runner", as the action's input says it, is what the action asks the
		// broker for as "caller".
		if strings.EqualFold(item, policy.CallerKeyword) || strings.EqualFold(item, "runner") {
			req.CallerIP = true
		} else {
			cidrs = append(cidrs, item)
		}
	}
	if req.AllowedIPs, _, err = token.ParseAllowedIPs(strings.Join(cidrs, ",")); err != nil {
		return flagFault("allowed-ips", err)
	}
	if *caller != "" {
		a, err := netip.ParseAddr(*caller)
		if err != nil {
			return usageError{fmt.Sprintf("--caller %q is not an IP address", *caller), "e.g. --caller 203.0.113.7"}
		}
		req.Caller = a
	}
	e := pol.Explain(claims, req)
	fmt.Fprint(p.out, e.String())
	if e.Grant == nil {
		return usageError{"no rule grants the request", ""}
	}
	return nil
}
