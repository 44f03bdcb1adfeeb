package cli

import (
	"flag"
	"fmt"
	"strings"

	"github.com/caarlos0/env/v11"

	"github.com/cf-scoped-token/cf-scoped-token/internal/ghaction"
	"github.com/cf-scoped-token/cf-scoped-token/internal/token"
)

// inputOptions read token.Inputs by the names in its struct tags (the
// action's input names) with the defaults in its tags (action.yml's).
var inputOptions = env.Options{TagName: "input", DefaultValueTagName: "default"}

// inputNames lists every input, in token.Inputs' order.
func inputNames() []string {
	params, err := env.GetFieldParamsWithOptions(&token.Inputs{}, inputOptions)
	if err != nil {
		return nil // token.Inputs' tags are fixed; a test proves this never happens
	}
	names := make([]string, len(params))
	for i, p := range params {
		names[i] = p.Key
	}
	return names
}

// loadInputs fills token.Inputs from lookup, which returns an input's
// value by name ("" when not given: the default applies).
func loadInputs(lookup func(name string) string) (token.Inputs, error) {
	values := map[string]string{}
	for _, name := range inputNames() {
		if v := strings.TrimSpace(lookup(name)); v != "" {
			values[name] = v
		}
	}
	opts := inputOptions
	opts.Environment = values
	var in token.Inputs
	if err := env.ParseWithOptions(&in, opts); err != nil {
		return token.Inputs{}, fmt.Errorf("read inputs: %w", err)
	}
	return in, nil
}

// actionInputs reads the inputs the runner passes as INPUT_<NAME>
// (reference/github-runner.md §1).
func actionInputs(gh *ghaction.Action) (token.Inputs, error) {
	return loadInputs(gh.Input)
}

// EnvPrefix starts the environment variable behind each CLI flag.
const EnvPrefix = "CF_SCOPED_TOKEN_"

// EnvName is the environment variable for an input on the command line:
// api-token → CF_SCOPED_TOKEN_API_TOKEN.
func EnvName(input string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(input, "-", "_"))
}

// flagHelp is each CLI flag's one-line help; the action's descriptions are
// in action.yml.
var flagHelp = map[string]string{
	"api-token":   "parent token: refused as a flag (it would show in the process list); set " + EnvName("api-token"),
	"account-ids": "account ids (32 hex) the token may act on, separated by commas or spaces",
	"scopes":      `what it may touch: shorthands (organizations, apps-and-policies, service-tokens, device-posture, custom-pages, mutual-tls, ssh-auditing, audit-logs), group base names or ids, each with optional :read or :write (default organizations)`,
	"permission":  "default level for scopes: read or write (default read)",
	"ttl":         "lifetime, 1m to 24h (default 1h)",
	"owner":       "user (/user/tokens) or account (/accounts/{id}/tokens, one account) (default user)",
	"name":        "token name; a random suffix is added (default: cf-scoped-token and the run)",
	"allowed-ips": `CIDRs the token may be used from, or "runner" for this machine's public address`,
	"verify":      "check the token is active before printing it: true or false (default true)",
	"token-id":    "id of the token to delete",
	"api-url":     "API base URL (default https://api.cloudflare.com/client/v4)",
}

// shortFlags are the one-letter aliases.
var shortFlags = map[string]string{
	"account-ids": "a", "scopes": "s", "permission": "p", "ttl": "t", "owner": "o", "name": "n",
}

// inputFlags registers a flag (long name, and short alias) for each named
// input and returns the lookup that prefers a flag given on the command
// line, then the input's environment variable.
func inputFlags(fs *flag.FlagSet, getenv func(string) string, names ...string) func(string) string {
	values := map[string]*string{}
	for _, name := range names {
		v := new(string)
		values[name] = v
		fs.StringVar(v, name, "", flagHelp[name])
		if s, ok := shortFlags[name]; ok {
			fs.StringVar(v, s, "", "short for --"+name)
		}
	}
	return func(name string) string {
		set := false
		fs.Visit(func(f *flag.Flag) {
			if f.Name == name || f.Name == shortFlags[name] {
				set = true
			}
		})
		if v, ok := values[name]; ok && set {
			return *v
		}
		return getenv(EnvName(name))
	}
}

// checkNoTokenFlag refuses a parent token given on the command line.
func checkNoTokenFlag(fs *flag.FlagSet) error {
	var given bool
	fs.Visit(func(f *flag.Flag) { given = given || f.Name == "api-token" })
	if given {
		return usageError{"--api-token is refused: a token on the command line shows in the process list and shell history",
			"set " + EnvName("api-token") + " instead, e.g. from your secret store"}
	}
	return nil
}
