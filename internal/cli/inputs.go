package cli

import (
	"flag"
	"fmt"
	"strings"

	"github.com/caarlos0/env/v11"

	"github.com/cf-scoped-token/cf-scoped-token/internal/ghaction"
	"github.com/cf-scoped-token/cf-scoped-token/internal/token"
)

// Where inputs come from: the action's INPUT_ variables, the CLI's
// CF_SCOPED_TOKEN_ variables (and its flags, laid over them). The keys under
// either prefix are token.Inputs' env tags.
const (
	actionPrefix = "INPUT_"
	// EnvPrefix starts the environment variable behind each CLI flag.
	EnvPrefix = "CF_SCOPED_TOKEN_"
)

// EnvName is the environment variable for an input on the command line:
// api-token → CF_SCOPED_TOKEN_API_TOKEN.
func EnvName(input string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(input, "-", "_"))
}

// readInputs fills token.Inputs from environ, each input under prefix plus
// its key; an input that is absent or blank gets its default. environ's
// values are trimmed here, once.
func readInputs(environ map[string]string, prefix string) (token.Inputs, error) {
	trimmed := make(map[string]string, len(environ))
	for k, v := range environ {
		if v = strings.TrimSpace(v); v != "" {
			trimmed[k] = v
		}
	}
	var in token.Inputs
	if err := env.ParseWithOptions(&in, env.Options{Environment: trimmed, Prefix: prefix}); err != nil {
		return token.Inputs{}, fmt.Errorf("read inputs: %w", err)
	}
	return in, nil
}

// inputsWith is the inputs named in values (by input name, e.g.
// "account-ids"), every other one at its default: the demo's request and
// the broker's defaults, read from the one input table.
func inputsWith(values map[string]string) (token.Inputs, error) {
	environ := map[string]string{}
	for _, s := range token.InputSpecs() {
		environ[s.Key] = values[s.Name]
	}
	return readInputs(environ, "")
}

// inputSpec is the input table's entry for the input name.
func inputSpec(name string) (token.InputSpec, bool) {
	for _, s := range token.InputSpecs() {
		if s.Name == name {
			return s, true
		}
	}
	return token.InputSpec{}, false
}

// actionInputs reads the inputs the runner passes. The runner keeps the
// input's hyphen (INPUT_ACCOUNT-IDS, reference/github-runner.md §1), which
// no shell variable can hold, so each is read by its runner name and filed
// under its key.
func actionInputs(gh *ghaction.Action) (token.Inputs, error) {
	environ := map[string]string{}
	for _, s := range token.InputSpecs() {
		environ[actionPrefix+s.Key] = gh.Input(s.Name)
	}
	return readInputs(environ, actionPrefix)
}

// inputFlags registers a flag (long name, and short alias) for each named
// input and returns the function that reads the inputs once the flags are
// parsed: from the command line, or from the flag's environment variable
// (flagsFromEnv). An input the command has no flag for keeps its default,
// whatever the environment holds. The parent token is read from its
// variable alone: its flag exists only to be refused.
func inputFlags(fs *flag.FlagSet, getenv func(string) string, names ...string) func() (token.Inputs, error) {
	specs := map[string]token.InputSpec{}
	for _, s := range token.InputSpecs() {
		specs[s.Name] = s
	}
	values := map[string]*string{}
	for _, name := range names {
		s := specs[name]
		v := new(string)
		values[name] = v
		fs.StringVar(v, name, "", s.Help)
		if s.Short != "" {
			fs.StringVar(v, s.Short, "", "short for --"+name)
		}
	}
	return func() (token.Inputs, error) {
		environ := map[string]string{}
		for name, v := range values {
			environ[EnvPrefix+specs[name].Key] = *v
			if name == "api-token" {
				environ[EnvPrefix+specs[name].Key] = getenv(EnvName(name))
			}
		}
		return readInputs(environ, EnvPrefix)
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
