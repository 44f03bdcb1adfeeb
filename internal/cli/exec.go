package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strings"
	"syscall"

	"golang.org/x/term"

	"github.com/cf-scoped-token/cf-scoped-token/internal/broker"
	"github.com/cf-scoped-token/cf-scoped-token/internal/mint"
	"github.com/cf-scoped-token/cf-scoped-token/internal/token"
)

const execSynopsis = `cf-scoped-token exec [create flags] -- COMMAND [ARGS...]

Creates a token, runs COMMAND with it in CLOUDFLARE_API_TOKEN (and
CLOUDFLARE_ACCOUNT_ID with one account, CF_SCOPED_TOKEN_ID and
CF_SCOPED_TOKEN_EXPIRES_AT) and without the parent token, forwards SIGINT
and SIGTERM to it, deletes the token when it ends however it ends, and exits
with its exit code (128+signal when a signal ended it).

    $ cf-scoped-token exec -a $ACCOUNT -s apps-and-policies:write -- terraform apply`

// exitError ends a command with an exit code other than 1: exec's, which
// exits as its command did. err, if not nil, is shown as every error is;
// a command that failed said so itself.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err != nil {
		return e.err.Error()
	}
	return fmt.Sprintf("exit status %d", e.code)
}

func (e *exitError) Unwrap() error { return e.err }

func runExec(ctx context.Context, args []string, getenv func(string) string, p *printer) error {
	fs := flag.NewFlagSet("exec", flag.ContinueOnError)
	inputs := inputFlags(fs, getenv, "api-token", "account-ids", "scopes", "permission", "ttl", "owner", "name", "allowed-ips", "verify", "api-url", "broker-url")
	subject := registerSubjectFlags(fs)
	fs.BoolVar(&p.verbose, "verbose", false, "log each API call (never a secret)")
	if err := parseFlagsAndArgs(fs, args, p, execSynopsis); err != nil {
		return err
	}
	command := fs.Args()
	if len(command) == 0 {
		return usageError{"exec needs a command after --", `e.g. cf-scoped-token exec -a ACCOUNT_ID -- terraform apply`}
	}
	req, err := cliRequest(fs, inputs, token.ModeCreate, getenv)
	if err != nil {
		return err
	}
	// Signals are caught from here on: one that comes while the token is
	// being made cancels the make (which cleans up after itself); one that
	// comes while the command runs is passed on to it.
	signals := make(chan os.Signal, 4)
	signal.Notify(signals, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(signals)

	var t mint.Minted
	var remove func() error
	if req.BrokerURL != nil {
		var g broker.Granted
		if t, g, err = mintKeyless(ctx, req, subject, getenv, p); err != nil {
			return err
		}
		remove = func() error { return revokeAtBroker(context.WithoutCancel(ctx), req.BrokerURL.String(), g, p.logf) }
	} else {
		m := newMinter(connect(req.APIURL.String(), req.APIToken, req.Endpoint(), p.debugf, p.logf), p.logf)
		mctx, cancel := context.WithTimeout(ctx, mainDeadline)
		t, err = m.Mint(mctx, req, func(mint.Minted) error { return nil })
		cancel()
		if err != nil {
			return err
		}
		remove = func() error {
			out, err := revoke(context.WithoutCancel(ctx), m, t.Endpoint, t.Info)
			if err == nil && out == mint.NotFound {
				p.logf("token %s was already gone", t.ID)
			}
			return err
		}
	}
	// The command gets neither the parent nor the job's OIDC token, which
	// it has no use for (and which the broker has taken already). Only
	// values that are there: an empty one (keyless has no parent) would
	// withhold every variable that is only white space, IFS for one.
	withheld := []string{req.APIToken.Reveal()}
	if subject.env != "" {
		withheld = append(withheld, strings.TrimSpace(getenv(subject.env)))
	}
	withheld = slices.DeleteFunc(withheld, func(v string) bool { return v == "" })
	code, runErr := runCommand(command, childEnv(os.Environ(), withheld, tokenEnv(t)), signals, p)

	// However the command ended, the token goes — on a context of its own:
	// the run's may have been cancelled by the signal that ended the command.
	if rerr := remove(); rerr != nil {
		p.logf("error: %v", rerr)
	}
	if runErr != nil || code != 0 {
		return &exitError{code: code, err: runErr}
	}
	return nil
}

// runCommand runs command with env and the terminal's stdin, stdout and
// stderr, passing each signal on to it, and returns its exit code: 128 plus
// the signal's number when a signal ended it, 127 when it does not exist,
// 126 when it cannot run (as POSIX shells report them).
func runCommand(command, env []string, signals <-chan os.Signal, p *printer) (int, error) {
	cmd := exec.Command(command[0], command[1:]...) //nolint:gosec // running the user's command is exec's job
	cmd.Env = env
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, p.out, p.err
	if err := cmd.Start(); err != nil {
		if errors.Is(err, exec.ErrNotFound) || errors.Is(err, os.ErrNotExist) {
			return 127, usageError{fmt.Sprintf("command %q not found", command[0]), "check the command's name and PATH"}
		}
		return 126, fmt.Errorf("start %q: %w", command[0], err)
	}
	// A terminal's Ctrl+C reaches its whole foreground process group, COMMAND
	// with exec: passing it on too would make it a second interrupt, which
	// terraform, for one, takes as "stop now, whatever it costs". So with a
	// terminal on stdin an interrupt is left to the terminal; any other
	// signal, and every signal without a terminal, is passed on.
	fromTerminal := term.IsTerminal(int(os.Stdin.Fd()))
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	for {
		select {
		case s := <-signals:
			if s == os.Interrupt && fromTerminal {
				continue
			}
			_ = cmd.Process.Signal(s)
		case err := <-done:
			var ee *exec.ExitError
			if err != nil && !errors.As(err, &ee) {
				return 1, fmt.Errorf("run %q: %w", command[0], err)
			}
			return exitStatus(cmd.ProcessState), nil
		}
	}
}

// exitStatus is the exit code a shell would report: the process's own, or
// 128 plus the signal that ended it.
func exitStatus(ps *os.ProcessState) int {
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ps.ExitCode()
}

// childEnv is the command's environment: this process's, without the
// parent token's variable and without any variable whose value is one of
// withheld (the parent's, the OIDC token's), and with the token's
// variables set.
func childEnv(environ []string, withheld []string, set [][2]string) []string {
	drop := map[string]bool{EnvName("api-token"): true}
	for _, kv := range set {
		drop[kv[0]] = true
	}
	out := make([]string, 0, len(environ)+len(set))
	for _, kv := range environ {
		name, value, _ := strings.Cut(kv, "=")
		if drop[name] || value != "" && slices.Contains(withheld, strings.TrimSpace(value)) {
			continue
		}
		out = append(out, kv)
	}
	for _, kv := range set {
		out = append(out, kv[0]+"="+kv[1])
	}
	return out
}
