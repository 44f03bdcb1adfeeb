package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/cf-scoped-token/cf-scoped-token/internal/token"
)

// Output policy (as age's): data — the token in the chosen format — goes
// to stdout; everything else goes to stderr, prefixed "cf-scoped-token:",
// lower case, no period at the end. No secret is ever formatted: values
// are token.Secret, which prints as [redacted].
type printer struct {
	out, err io.Writer
	verbose  bool
	// getenv reads the variables that stand in for flags (flagsFromEnv).
	getenv func(string) string
}

func (p *printer) logf(format string, args ...any) {
	fmt.Fprintf(p.err, Name+": "+format+"\n", args...)
}

func (p *printer) debugf(format string, args ...any) {
	if p.verbose {
		p.logf("debug: "+format, args...)
	}
}

// fail prints an error and what to do about it, in the CLI's words.
func (p *printer) fail(err error) {
	var ie *token.InputError
	var ue usageError
	say := func(format string, args ...any) { p.logf("%s", vocabulary(cliWords).say(fmt.Sprintf(format, args...))) }
	switch {
	case errors.As(err, &ie) && ie.Input == "api-token":
		// The CLI takes the parent token only from the environment.
		say("error: %s %s", EnvName("api-token"), ie.Problem)
		say("hint: export %s with a token that may create tokens (\"API Tokens Write\", or \"Account API Tokens Write\" with %s), or give %s for keyless mode",
			EnvName("api-token"), token.Ref("owner", "account"), token.Ref("broker-url"))
	case errors.As(err, &ie):
		say("error: %s: %s", token.Ref(ie.Input), ie.Problem)
		if ie.Accepted != "" {
			say("hint: accepted: %s", ie.Accepted)
		}
	case errors.As(err, &ue):
		say("error: %s", ue.problem)
		if ue.hint != "" {
			say("hint: %s", ue.hint)
		}
	default:
		say("error: %v", err)
		if hint := explain(err); hint != "" {
			say("hint: %s", hint)
		}
	}
}

// vocabulary says the inputs a message refers to (token.Ref) in the words
// of its reader: the action's inputs, or the CLI's flags and variables.
// There is one message, and two ways to say its references.
type vocabulary func(name, value string, set bool) string

// actionWords are the workflow's: "owner: account", "this runner".
func actionWords(name, value string, set bool) string {
	switch {
	case name == "machine":
		return "this runner"
	case set:
		return name + ": " + value
	}
	return name
}

// cliWords are the command line's: "--owner account", the command for a
// mode, the variable for the parent token, "this machine".
func cliWords(name, value string, set bool) string {
	switch {
	case name == "machine":
		return "this machine"
	case name == "api-token":
		return EnvName(name)
	case name == "mode" && set:
		return "cf-scoped-token " + value
	case name == "mode":
		return "the command"
	case set:
		return "--" + name + " " + value
	}
	return "--" + name
}

// say renders the references of s.
func (v vocabulary) say(s string) string {
	var b strings.Builder
	for {
		i := strings.Index(s, "‹")
		j := strings.Index(s, "›")
		if i < 0 || j < i {
			b.WriteString(s)
			return b.String()
		}
		b.WriteString(s[:i])
		ref := s[i+len("‹") : j]
		name, value, set := strings.Cut(ref, "=")
		b.WriteString(v(name, value, set))
		s = s[j+len("›"):]
	}
}

// usageError is a wrong command line: unknown command, bad flag, a flag
// combination that makes no sense.
type usageError struct{ problem, hint string }

func (e usageError) Error() string { return e.problem }

// errHelpShown ends a command whose --help was printed: exit 0.
var errHelpShown = errors.New("help shown")

// parseFlags parses a subcommand's flags; -h prints its usage to stdout.
// A flag not given on the command line takes its environment variable
// (flagsFromEnv).
func parseFlags(fs *flag.FlagSet, args []string, p *printer, synopsis string) error {
	if err := parseFlagsAndArgs(fs, args, p, synopsis); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("unexpected argument %q", fs.Arg(0)), fmt.Sprintf("run \"cf-scoped-token %s --help\" for its flags", fs.Name())}
	}
	return nil
}

// parseFlagsAndArgs is parseFlags for a command that takes arguments after
// its flags (exec).
func parseFlagsAndArgs(fs *flag.FlagSet, args []string, p *printer, synopsis string) error {
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printHelp(p.out, fs, synopsis)
			return errHelpShown
		}
		return usageError{err.Error(), fmt.Sprintf("run \"cf-scoped-token %s --help\" for its flags", fs.Name())}
	}
	return flagsFromEnv(fs, p.getenv)
}

// flagsFromEnv gives every flag its environment variable, CF_SCOPED_TOKEN_
// and its name upper-cased with _ for - (EnvName): a flag not given on the
// command line takes the variable's value when it is set. Short aliases
// share their long flag's variable, and --api-token has none: the parent
// token's variable is read as the parent token, never as a flag.
func flagsFromEnv(fs *flag.FlagSet, getenv func(string) string) error {
	if getenv == nil {
		return nil
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if err != nil || given[f.Name] || isAlias(f) || f.Name == "api-token" {
			return
		}
		for _, a := range aliasesOf(fs, f.Name) {
			if given[a] {
				return
			}
		}
		if v := getenv(EnvName(f.Name)); v != "" {
			if serr := fs.Set(f.Name, v); serr != nil {
				err = usageError{fmt.Sprintf("%s: %v", EnvName(f.Name), serr), fmt.Sprintf("unset it, or see \"cf-scoped-token %s --help\"", fs.Name())}
			}
		}
	})
	return err
}

// isAlias reports whether f is a one-letter alias ("short for --name").
func isAlias(f *flag.Flag) bool { return strings.HasPrefix(f.Usage, "short for --") }

// aliasOf is the long flag an alias stands for.
func aliasOf(fs *flag.FlagSet, name string) (string, bool) {
	f := fs.Lookup(name)
	if f == nil || !isAlias(f) {
		return "", false
	}
	return strings.TrimPrefix(f.Usage, "short for --"), true
}

// aliasesOf lists the aliases of a long flag.
func aliasesOf(fs *flag.FlagSet, long string) []string {
	var out []string
	fs.VisitAll(func(f *flag.Flag) {
		if l, ok := aliasOf(fs, f.Name); ok && l == long {
			out = append(out, f.Name)
		}
	})
	return out
}

// annotation renders an error for the action's one ::error:: line, in the
// workflow's words.
func annotation(err error) string {
	var ie *token.InputError
	if errors.As(err, &ie) {
		msg := fmt.Sprintf("Input %s: %s.", ie.Input, ie.Problem)
		if ie.Accepted != "" {
			msg += " Accepted: " + ie.Accepted + "."
		}
		return vocabulary(actionWords).say(msg)
	}
	msg := err.Error()
	if hint := explain(err); hint != "" {
		msg += ". " + strings.ToUpper(hint[:1]) + hint[1:] + "."
	}
	return vocabulary(actionWords).say(msg)
}

// printHelp lists a subcommand's flags the way a person reads them: the
// short alias beside the long name, the help, and the environment
// variable that can stand in for an input flag.
func printHelp(w io.Writer, fs *flag.FlagSet, synopsis string) {
	fmt.Fprintf(w, "Usage: %s\n\nFlags:\n", synopsis)
	fs.VisitAll(func(f *flag.Flag) {
		if isAlias(f) || f.Name == "api-token" {
			return
		}
		names := "    --" + f.Name
		if short := aliasesOf(fs, f.Name); len(short) > 0 {
			names = "-" + short[0] + ", --" + f.Name
		}
		fmt.Fprintf(w, "  %s\n        %s\n", names, f.Usage)
		def := f.DefValue
		if s, ok := inputSpec(f.Name); ok {
			def = s.Default
		}
		if def != "" && def != "false" {
			fmt.Fprintf(w, "        default: %s\n", def)
		}
		fmt.Fprintf(w, "        env: %s\n", EnvName(f.Name))
	})
	switch {
	case fs.Lookup("api-token") == nil: // the command needs no parent token
	case fs.Lookup("api-token-file") != nil:
		fmt.Fprintf(w, "\nThe parent token is read from %s or --api-token-file, never from a flag.\n", EnvName("api-token"))
	default:
		fmt.Fprintf(w, "\nThe parent token is read from %s only.\n", EnvName("api-token"))
	}
}
