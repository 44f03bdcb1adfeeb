// Package ghaction speaks the GitHub Actions runner protocol for a Docker action: it reads inputs
// and saved state from the environment, registers masks, writes annotations, and writes outputs,
// state, environment variables and the step summary to the runner's file commands.
//
// It is a thin layer over github.com/sethvargo/go-githubactions. The layer exists for the gaps the
// library leaves against the runner contract (reference/github-runner.md §7): the library has no
// state reader, writes every file command with one fixed heredoc delimiter and no check of the
// value, panics when a file-command variable is unset or a write fails, and exits the process in
// Fatalf. Here every file command is validated first, so that what is written parses back
// unchanged under the runner's parser (§3), and failures come back as errors that name the
// command and the name but never the value, which may be a secret.
//
// The package knows nothing of Cloudflare and imports nothing of this project.
package ghaction

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"unicode"
	"unicode/utf8"

	githubactions "github.com/sethvargo/go-githubactions"
)

// Delimiter is the heredoc delimiter go-githubactions v1.3.1 writes around every output, state
// and env value (`actions.go` 50-51; reference/github-runner.md §7). It is fixed, so a value
// holding it on a line of its own would end the heredoc early and inject pairs (§3.5); such
// values are refused.
const Delimiter = "_GitHubActionsFileCommandDelimeter_"

// MaxSummarySize is the largest step summary the runner accepts; a bigger file is an error
// (reference/github-runner.md §3.7).
const MaxSummarySize = 1 << 20

// Errors a file command can wrap; match them with errors.Is. The concrete error is a
// *FileCommandError saying which command and which name.
var (
	// ErrNotSet means the runner did not provide the file-command variable (GITHUB_OUTPUT,
	// GITHUB_STATE, GITHUB_ENV or GITHUB_STEP_SUMMARY), so the process is not a runner step.
	ErrNotSet = errors.New("is not set")
	// ErrInvalidName means the name would not survive the runner's parser or is refused by it.
	ErrInvalidName = errors.New("invalid name")
	// ErrInvalidValue means the value would not parse back unchanged under the runner's parser.
	ErrInvalidValue = errors.New("invalid value")
	// ErrSummaryTooLarge means the step summary would pass the runner's 1 MiB limit.
	ErrSummaryTooLarge = errors.New("step summary larger than 1 MiB")
	// ErrMaskFailed means an earlier Mask could not be written to stdout, so the runner may not
	// know the secret; file commands refuse to run after that.
	ErrMaskFailed = errors.New("an earlier ::add-mask:: could not be written")
)

// summaryCommand names the step-summary command in errors; it is the one without a name.
const summaryCommand = "add step summary"

// FileCommandError reports a file command that was refused or could not be written. It never
// holds the value.
type FileCommandError struct {
	Command string // "set output", "save state", "set env" or "add step summary"
	Name    string // output, state or variable name; empty for the step summary
	Err     error
}

// Error says which command failed, for which name, and why.
func (e *FileCommandError) Error() string {
	if e.Command == summaryCommand {
		return fmt.Sprintf("%s: %v", e.Command, e.Err)
	}
	return fmt.Sprintf("%s %q: %v", e.Command, e.Name, e.Err)
}

// Unwrap returns the cause, for errors.Is and errors.As.
func (e *FileCommandError) Unwrap() error { return e.Err }

// Action reads a step's inputs and state and writes its workflow and file commands. Create it
// with New; it holds no global state, so tests run many in parallel.
type Action struct {
	gha    *githubactions.Action
	getenv func(string) string
	// maskErr is the first failure to write an ::add-mask:: line. After it, file commands
	// refuse to run: a secret must never reach an output while the runner may not mask it.
	maskErr error
}

// New returns an Action that reads variables through getenv and writes workflow commands to
// stdout. The runner reads commands from stdout and stderr alike (reference/github-runner.md §4).
func New(getenv func(string) string, stdout io.Writer) *Action {
	return &Action{
		gha:    githubactions.New(githubactions.WithGetenv(getenv), githubactions.WithWriter(stdout)),
		getenv: getenv,
	}
}

// InputEnvName returns the variable the runner sets for an input: "INPUT_" plus the name with
// spaces replaced by "_" and upper-cased. Hyphens and dots stay, so "api-token" is read from
// INPUT_API-TOKEN (reference/github-runner.md §1).
func InputEnvName(name string) string {
	return "INPUT_" + strings.ToUpper(strings.ReplaceAll(name, " ", "_"))
}

// Input returns the value of input name with surrounding whitespace trimmed, or "" when the
// input is empty. The runner sets a variable for every declared input, empty when it has no
// value and no default (reference/github-runner.md §1), so "" cannot tell unset from empty.
func (a *Action) Input(name string) string {
	return strings.TrimSpace(a.getenv(InputEnvName(name)))
}

// State returns the value the main step saved under name, or "". The runner delivers state as
// STATE_<name> with the name verbatim, not upper-cased (reference/github-runner.md §2); the
// value is returned as saved, not trimmed.
func (a *Action) State(name string) string {
	return a.getenv("STATE_" + name)
}

// Mask registers value with the runner so that it is shown as *** in every later log line. The
// library escapes "%", "\r" and "\n" in the data, and the runner masks the whole value and each
// of its lines (reference/github-runner.md §4, §7), so a multi-line value is fully masked.
//
// An empty or all-whitespace value writes nothing: the runner would only warn (§4), and masking
// whitespace would blank out the log. If the line cannot be written, Err reports it and every
// later file command fails with ErrMaskFailed.
func (a *Action) Mask(value string) {
	if strings.TrimSpace(value) == "" {
		return
	}
	if err := a.issue(func() { a.gha.AddMask(value) }); err != nil && a.maskErr == nil {
		a.maskErr = err
	}
}

// Err returns the first failure to write an ::add-mask:: line, or nil.
func (a *Action) Err() error { return a.maskErr }

// Debugf writes a ::debug:: line, shown only when step debug logging is on. Never pass it a secret.
func (a *Action) Debugf(format string, args ...any) {
	_ = a.issue(func() { a.gha.Debugf(format, args...) })
}

// Noticef writes a ::notice:: annotation.
func (a *Action) Noticef(format string, args ...any) {
	_ = a.issue(func() { a.gha.Noticef(format, args...) })
}

// Warningf writes a ::warning:: annotation.
func (a *Action) Warningf(format string, args ...any) {
	_ = a.issue(func() { a.gha.Warningf(format, args...) })
}

// Errorf writes an ::error:: annotation. Unlike the library's Fatalf it does not exit: the
// caller still has cleanup to do (a token to delete) and returns its exit code itself.
func (a *Action) Errorf(format string, args ...any) {
	_ = a.issue(func() { a.gha.Errorf(format, args...) })
}

// issue runs a library call that writes a workflow command and turns the panic the library
// raises on a failed write (`actions.go` IssueCommand) into an error, so no panic leaves this
// package. Annotations that cannot be written are dropped: the runner could not see them either.
func (a *Action) issue(write func()) (err error) {
	defer func() {
		if r := recover(); r != nil {
			if e, ok := r.(error); ok {
				err = fmt.Errorf("write workflow command: %w", e)
				return
			}
			err = fmt.Errorf("write workflow command: %v", r)
		}
	}()
	write()
	return nil
}

// SetOutput sets the step output name to value through GITHUB_OUTPUT. It refuses, writing
// nothing, a name or value that would not parse back unchanged (see CheckName, CheckValue).
func (a *Action) SetOutput(name, value string) error {
	return a.fileCommand("set output", "GITHUB_OUTPUT", name, value, a.gha.SetOutput)
}

// SaveState saves value under name through GITHUB_STATE; the post step reads it with State.
// It follows the SetOutput rules; state reaches the post step as the environment variable
// STATE_<name> (reference/github-runner.md §2).
func (a *Action) SaveState(name, value string) error {
	return a.fileCommand("save state", "GITHUB_STATE", name, value, a.gha.SaveState)
}

// SetEnv exports name=value to the later steps of the job through GITHUB_ENV. Like the runner
// it refuses NODE_OPTIONS (reference/github-runner.md §3.7), in any case.
func (a *Action) SetEnv(name, value string) error {
	if strings.EqualFold(name, "NODE_OPTIONS") {
		return &FileCommandError{Command: "set env", Name: name,
			Err: fmt.Errorf("%w: the runner refuses NODE_OPTIONS in GITHUB_ENV", ErrInvalidName)}
	}
	return a.fileCommand("set env", "GITHUB_ENV", name, value, a.gha.SetEnv)
}

// fileCommand checks name and value, then hands them to the library's writer. The checks come
// first because the library writes with a fixed delimiter and checks nothing.
func (a *Action) fileCommand(command, fileVar, name, value string, write func(k, v string)) error {
	fail := func(err error) error { return &FileCommandError{Command: command, Name: name, Err: err} }
	if a.maskErr != nil {
		return fail(ErrMaskFailed)
	}
	if err := CheckName(name); err != nil {
		return fail(err)
	}
	if err := CheckValue(value); err != nil {
		return fail(err)
	}
	// The library opens getenv(fileVar) with O_CREATE and panics on an empty path (§7).
	if a.getenv(fileVar) == "" {
		return fail(fmt.Errorf("%s %w", fileVar, ErrNotSet))
	}
	if err := a.issue(func() { write(name, value) }); err != nil {
		// The library's panic names the file, never the content.
		return fail(err)
	}
	return nil
}

// AddStepSummary appends markdown (and a newline) to the job summary through
// GITHUB_STEP_SUMMARY. It refuses to make the file larger than the runner's 1 MiB limit
// (reference/github-runner.md §3.7). The runner masks summary lines, but never put a secret in
// one.
func (a *Action) AddStepSummary(markdown string) error {
	fail := func(err error) error { return &FileCommandError{Command: summaryCommand, Err: err} }
	path := a.getenv("GITHUB_STEP_SUMMARY")
	if path == "" {
		return fail(fmt.Errorf("GITHUB_STEP_SUMMARY %w", ErrNotSet))
	}
	var size int64
	if fi, err := os.Stat(path); err == nil {
		size = fi.Size()
	} else if !errors.Is(err, os.ErrNotExist) {
		return fail(err)
	}
	if size+int64(len(markdown))+1 > MaxSummarySize {
		return fail(ErrSummaryTooLarge)
	}
	if err := a.issue(func() { a.gha.AddStepSummary(markdown) }); err != nil {
		return fail(err)
	}
	return nil
}

// CheckName reports whether name can be written as an output, state or env name and read back
// unchanged by the runner's parser (reference/github-runner.md §3). The library writes the
// header line name<<delimiter, and the runner takes the form from whichever of "=" and "<<"
// comes first (§3.4), splits lines on "\n" only (§3.2) and strips a byte-order mark at the start
// of the file (§3.1). So a name must be non-empty valid UTF-8 without "=", "<<", a final "<"
// (which would join the header's "<<"), a byte-order mark or any control character ("\n" and
// "\r" included; no legitimate name holds one).
func CheckName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: empty", ErrInvalidName)
	case !utf8.ValidString(name):
		return fmt.Errorf("%w: not valid UTF-8", ErrInvalidName)
	case strings.Contains(name, "="):
		return fmt.Errorf("%w: contains \"=\"", ErrInvalidName)
	case strings.Contains(name, "<<"):
		return fmt.Errorf("%w: contains \"<<\"", ErrInvalidName)
	case strings.HasSuffix(name, "<"):
		// name< + <<delimiter puts the first "<<" inside the name (found by the fuzzer).
		return fmt.Errorf("%w: ends with \"<\"", ErrInvalidName)
	case strings.ContainsRune(name, '\uFEFF'):
		return fmt.Errorf("%w: contains a byte-order mark", ErrInvalidName)
	case strings.ContainsFunc(name, unicode.IsControl):
		return fmt.Errorf("%w: contains a control character", ErrInvalidName)
	}
	return nil
}

// CheckValue reports whether value survives the library's heredoc and the runner's parser
// unchanged (reference/github-runner.md §3). The value sits between the header and a line equal
// to Delimiter; the runner reads up to the first line that equals the delimiter exactly, keeps
// "\r", empty lines and a trailing "\n", and decodes the file as UTF-8. So a value is refused
// when one of its "\n"-separated lines equals Delimiter (it would end the heredoc early and inject
// the rest as new pairs, §3.5), when it is not valid UTF-8 (the runner would replace the bad
// bytes), or when it holds a NUL, which no environment variable can carry (state and env are
// passed as variables, §2, and outputs usually end up in one). Everything else round-trips.
// The error never contains the value.
func CheckValue(value string) error {
	switch {
	case !utf8.ValidString(value):
		return fmt.Errorf("%w: not valid UTF-8", ErrInvalidValue)
	case strings.ContainsRune(value, 0):
		return fmt.Errorf("%w: contains a NUL character", ErrInvalidValue)
	}
	for line := range strings.SplitSeq(value, "\n") {
		if line == Delimiter {
			return fmt.Errorf("%w: a line equals the file-command delimiter", ErrInvalidValue)
		}
	}
	return nil
}
