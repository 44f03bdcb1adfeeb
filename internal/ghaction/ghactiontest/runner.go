// Package ghactiontest simulates the GitHub Actions runner running this project's Docker action,
// for end-to-end tests. It runs the real binary as a child process the way the runner runs the
// action's container (reference/github-runner.md, last section): the same argv, environment,
// file commands, state hand-off, post step and masking, without Docker.
//
// What it leaves out, because the action does not use it: Docker itself (mounts and path
// translation: paths are host paths), pre-entrypoint, with.entryPoint and expressions in input
// defaults, ::stop-commands::, the older ##[cmd] syntax, and the masker's encoded variants of
// secrets.
//
// It is imported by _test.go files only.
package ghactiontest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/cf-scoped-token/cf-scoped-token/internal/ghaction"
)

const (
	// killAfter is how long a cancelled process has between SIGTERM and SIGKILL.
	killAfter = 10 * time.Second
	// postTimeout bounds the post stage, which runs on a fresh context after a cancellation. The
	// runner sets no bound of its own short of the job's timeout: this one is longer than any
	// action's own post deadline should be, so the action's deadline is what a test sees.
	postTimeout = 10 * time.Minute
)

// MustBuild builds the main package in dir (the module root, which holds action.yml) into
// tb.TempDir() with Build, failing tb on error. The binary is named after action.yml's
// entrypoint (cf-scoped-token) and the post-entrypoint alias is a symlink beside it, as in the
// image: main and post are one binary told apart by its base name. It returns the binary's path.
func MustBuild(tb testing.TB, dir string) string {
	tb.Helper()
	bin, err := Build(tb.TempDir(), dir)
	if err != nil {
		tb.Fatal(err)
	}
	return bin
}

// Runner runs the action the way the runner does. The zero values of Env and GitHub are fine.
type Runner struct {
	Binary    string            // path from MustBuild; the post alias sits beside it
	ActionYML string            // path to action.yml: inputs and defaults, entrypoints, args, env, post-if
	Env       map[string]string // the job's env context (workflow and job env); lowest precedence
	// GitHub overrides GITHUB_*, RUNNER_* and ACTIONS_* variables (e.g. RUNNER_DEBUG=1,
	// ACTIONS_ID_TOKEN_REQUEST_URL). The file-command paths, GITHUB_ACTIONS and HOME are always the
	// simulation's own.
	GitHub map[string]string
	// IDToken, when set, is the job's OIDC token endpoint (the local issuer's, in tests): the
	// simulation then sets ACTIONS_ID_TOKEN_REQUEST_URL and _TOKEN, as the runner does only for a
	// job with "permissions: id-token: write" (reference/oidc.md §1). Nil: the variables are
	// absent, as for a job without that permission or a pull request from a fork.
	IDToken *IDTokenEndpoint
}

// IDTokenEndpoint is where a job asks for its OIDC token, and with what bearer.
type IDTokenEndpoint struct {
	URL, Token string
}

// Step is the step that uses the action: its with: and env: maps.
type Step struct {
	With map[string]string
	Env  map[string]string
}

// Job is the outcome of a main stage and its post stage.
type Job struct {
	Main, Post *Stage            // Post is nil when the runner would not run one
	State      map[string]string // the state main saved, as handed to post
	Cancelled  bool              // the context was cancelled while main ran
}

// Stage is one run of the binary (main or post) and what the runner made of it.
type Stage struct {
	Phase    string // "main" or "post"
	ExitCode int    // the container's exit code: 128+signal when killed by one; -1 if it never ran
	Stdout   string // raw bytes as the process wrote them
	Stderr   string
	// Lines are the stdout and stderr lines in arrival order, as the runner reads them (§4). The
	// runner reads the two pipes concurrently, so a stderr line can overtake an earlier stdout
	// line: a mask and what it hides belong on the same stream.
	Lines []Line
	// Log is what the runner would show: every line with the masks registered so far replaced
	// by ***, and ::add-mask:: lines shown as ::add-mask::***.
	Log      string
	Commands []Command // workflow commands from stdout and stderr, in order (§4)
	Masks    []string  // mask values this stage registered: each whole value and its trimmed lines
	// Outputs, State and Env are parsed from the stage's GITHUB_OUTPUT, GITHUB_STATE and
	// GITHUB_ENV with ParseFileCommands, even after a failure. The runner drops post outputs
	// (§2); they are kept here only to be looked at.
	Outputs, State, Env map[string]string
	// FileCommandErr joins the file-command errors: parser errors (§3.6), an empty output or env
	// name. The runner logs "Unable to process file command …" and fails the step.
	FileCommandErr error
	Summary        string   // GITHUB_STEP_SUMMARY contents
	Issues         []string // other runner messages: unexpected inputs, NODE_OPTIONS refused, oversized summary
	Err            error    // the simulation could not run the stage (bad action.yml, missing binary)
	Failed         bool     // ExitCode != 0 || FileCommandErr != nil || Err != nil

	// What the process cost, for benchmarks. All are zero when it never started.
	//
	// Started is when the simulation started the process, just before fork and exec, so that a
	// server's clock can tell how long the process took to make its first request.
	Started time.Time
	// Wall is the time from Started until the process was reaped and its output read.
	Wall time.Duration
	// CPU is the process's user plus system time, as wait4 reports it: its own and that of the
	// children it waited for.
	CPU time.Duration
	// MaxRSS is ru_maxrss as wait4 reports it, in bytes (Linux counts KiB; 0 off Linux).
	// Beware: os/exec starts the child with vfork, and Linux's exec records the peak of the
	// address space it replaces — this test process's — as the child's starting maxrss. So
	// MaxRSS is max(the test process's peak RSS so far, the child's own peak), and tells the
	// child's own peak only when that is the larger. To measure a small child, start it from
	// a small process (bench/testdata/rssprobe does).
	MaxRSS int64
}

// Run runs main and then post, as a job with this one step. Post runs whenever main started,
// also after a failure (§2), subject to runs.post-if (default always()). If ctx is cancelled
// while main runs, main gets SIGTERM (SIGKILL after 10 s), the job is marked cancelled, and
// post still runs, on a fresh context. If ctx is already done, main never starts and there is
// no post: the runner skips the step, and a skipped step registers no post step (§2).
func (r *Runner) Run(ctx context.Context, s Step) *Job {
	job := &Job{}
	meta, err := readActionYML(r.ActionYML)
	if err != nil {
		job.Main = failedStage("main", err)
		return job
	}
	if err := ctx.Err(); err != nil {
		job.Cancelled = true
		job.Main = failedStage("main", fmt.Errorf("job cancelled before the step: %w", err))
		return job
	}
	js, err := r.newJob()
	if err != nil {
		job.Main = failedStage("main", err)
		return job
	}
	defer js.cleanup()

	job.Main = r.runStage(ctx, js, meta, "main", s, nil, nil, nil)
	job.Cancelled = ctx.Err() != nil
	job.State = job.Main.State
	if meta.Runs.PostEntrypoint == "" {
		return job
	}
	run, err := postIf(meta.Runs.PostIf, job)
	if err != nil {
		job.Post = failedStage("post", err)
		return job
	}
	if !run {
		return job
	}
	// The cancelled job's post step still runs (§2); give it a context of its own.
	postCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), postTimeout)
	defer cancel()
	job.Post = r.runStage(postCtx, js, meta, "post", s, job.State, job.Main.Env, job.Main.Masks)
	return job
}

// RunMain runs the main stage only, in a job of its own.
func (r *Runner) RunMain(ctx context.Context, s Step) *Stage {
	return r.runOne(ctx, "main", s, nil)
}

// RunPost runs the post stage only, with state delivered as STATE_<name> (§2), in a job of its
// own. Unlike Run's post stage it runs on ctx itself, so pass a live one.
func (r *Runner) RunPost(ctx context.Context, s Step, state map[string]string) *Stage {
	return r.runOne(ctx, "post", s, state)
}

func (r *Runner) runOne(ctx context.Context, phase string, s Step, state map[string]string) *Stage {
	meta, err := readActionYML(r.ActionYML)
	if err != nil {
		return failedStage(phase, err)
	}
	js, err := r.newJob()
	if err != nil {
		return failedStage(phase, err)
	}
	defer js.cleanup()
	return r.runStage(ctx, js, meta, phase, s, state, nil, nil)
}

func failedStage(phase string, err error) *Stage {
	return &Stage{Phase: phase, ExitCode: -1, Err: err, Failed: true}
}

// postIf evaluates runs.post-if against the job status (§2). Only the status functions are
// understood, which is all an action's post-if usually says.
func postIf(cond string, job *Job) (bool, error) {
	c := strings.TrimSpace(cond)
	if inner, ok := strings.CutPrefix(c, "${{"); ok {
		c = strings.TrimSpace(strings.TrimSuffix(inner, "}}"))
	}
	switch c {
	case "", "always()":
		return true, nil
	case "success()":
		return !job.Main.Failed && !job.Cancelled, nil
	case "failure()":
		return job.Main.Failed && !job.Cancelled, nil
	case "cancelled()":
		return job.Cancelled, nil
	}
	return false, fmt.Errorf("post-if %q: only always(), success(), failure() and cancelled() are simulated", cond)
}

// jobDirs are the directories the runner mounts into every container of a job (§5): workspace,
// home, workflow (event.json), file_commands and runner_temp. Stages of one job share them.
type jobDirs struct {
	root, workspace, home, workflow, fileCommands, runnerTemp string
	github                                                    map[string]string // GITHUB_*/RUNNER_* for the job
}

func (r *Runner) newJob() (*jobDirs, error) {
	root, err := os.MkdirTemp("", "ghactiontest-")
	if err != nil {
		return nil, fmt.Errorf("create job directory: %w", err)
	}
	js := &jobDirs{
		root:         root,
		workspace:    filepath.Join(root, "workspace"),
		home:         filepath.Join(root, "home"),
		workflow:     filepath.Join(root, "workflow"),
		fileCommands: filepath.Join(root, "file_commands"),
		runnerTemp:   filepath.Join(root, "runner_temp"),
	}
	for _, d := range []string{js.workspace, js.home, js.workflow, js.fileCommands, js.runnerTemp} {
		if err := os.Mkdir(d, 0o700); err != nil {
			js.cleanup()
			return nil, fmt.Errorf("create job directory: %w", err)
		}
	}
	js.github = githubDefaults()
	js.github["RUNNER_TEMP"] = js.runnerTemp
	js.github["GITHUB_WORKSPACE"] = js.workspace
	js.github["GITHUB_EVENT_PATH"] = filepath.Join(js.workflow, "event.json")
	maps.Copy(js.github, r.GitHub)
	if r.IDToken != nil {
		js.github["ACTIONS_ID_TOKEN_REQUEST_URL"] = r.IDToken.URL
		js.github["ACTIONS_ID_TOKEN_REQUEST_TOKEN"] = r.IDToken.Token
	}
	if err := writeEvent(js.github); err != nil {
		js.cleanup()
		return nil, err
	}
	return js, nil
}

func (js *jobDirs) cleanup() { _ = os.RemoveAll(js.root) }

// githubDefaults is a plausible push to main in octo-org/octo-repo on a hosted runner.
func githubDefaults() map[string]string {
	return map[string]string{
		"GITHUB_REPOSITORY":        "octo-org/octo-repo",
		"GITHUB_REPOSITORY_OWNER":  "octo-org",
		"GITHUB_REPOSITORY_ID":     "1296269",
		"GITHUB_RUN_ID":            "9876543210",
		"GITHUB_RUN_NUMBER":        "42",
		"GITHUB_RUN_ATTEMPT":       "1",
		"GITHUB_JOB":               "deploy",
		"GITHUB_WORKFLOW":          "Deploy",
		"GITHUB_WORKFLOW_REF":      "octo-org/octo-repo/.github/workflows/deploy.yml@refs/heads/main",
		"GITHUB_SHA":               "ffac537e6cbbf934b08745a378932722df287a53",
		"GITHUB_REF":               "refs/heads/main",
		"GITHUB_REF_NAME":          "main",
		"GITHUB_REF_TYPE":          "branch",
		"GITHUB_EVENT_NAME":        "push",
		"GITHUB_ACTOR":             "octocat",
		"GITHUB_TRIGGERING_ACTOR":  "octocat",
		"GITHUB_ACTION":            "__cf-scoped-token_cf-scoped-token",
		"GITHUB_ACTION_REPOSITORY": "cf-scoped-token/cf-scoped-token",
		"GITHUB_ACTION_REF":        "v1",
		"GITHUB_SERVER_URL":        "https://github.com",
		"GITHUB_API_URL":           "https://api.github.com",
		"GITHUB_GRAPHQL_URL":       "https://api.github.com/graphql",
		"GITHUB_RETENTION_DAYS":    "90",
		"RUNNER_OS":                "Linux",
		"RUNNER_ARCH":              "X64",
		"RUNNER_NAME":              "GitHub Actions 1",
		"RUNNER_ENVIRONMENT":       "github-hosted",
	}
}

// writeEvent writes a minimal push event consistent with the GITHUB_* values.
func writeEvent(gh map[string]string) error {
	owner, name, _ := strings.Cut(gh["GITHUB_REPOSITORY"], "/")
	ev := map[string]any{
		"ref":   gh["GITHUB_REF"],
		"after": gh["GITHUB_SHA"],
		"repository": map[string]any{
			"full_name": gh["GITHUB_REPOSITORY"],
			"name":      name,
			"owner":     map[string]any{"login": owner},
		},
		"sender": map[string]any{"login": gh["GITHUB_ACTOR"]},
	}
	b, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("encode event.json: %w", err)
	}
	if err := os.WriteFile(gh["GITHUB_EVENT_PATH"], b, 0o600); err != nil {
		return fmt.Errorf("write event.json: %w", err)
	}
	return nil
}

// fileCommands names the per-stage files (§5) in the order the runner processes them.
var fileCommands = []struct{ envVar, prefix string }{
	{"GITHUB_PATH", "add_path_"},
	{"GITHUB_ENV", "set_env_"},
	{"GITHUB_STEP_SUMMARY", "step_summary_"},
	{"GITHUB_STATE", "save_state_"},
	{"GITHUB_OUTPUT", "set_output_"},
}

// runStage runs one stage. state is delivered as STATE_*; exported is the main stage's GITHUB_ENV,
// part of the post step's env context; masks are those registered earlier in the job (the
// runner's masker is job-wide).
func (r *Runner) runStage(ctx context.Context, js *jobDirs, meta *actionYML, phase string, s Step,
	state, exported map[string]string, masks []string) *Stage {
	st := &Stage{Phase: phase, ExitCode: -1}
	fail := func(err error) *Stage {
		st.Err = err
		st.Failed = true
		return st
	}

	// Fresh, empty file-command files for every stage (§2, §5).
	files := map[string]string{}
	for _, fc := range fileCommands {
		f, err := os.CreateTemp(js.fileCommands, fc.prefix)
		if err != nil {
			return fail(fmt.Errorf("create %s: %w", fc.envVar, err))
		}
		files[fc.envVar] = f.Name()
		_ = f.Close()
	}

	// Absolute, because the process starts in the workspace.
	path, err := filepath.Abs(r.Binary)
	if err != nil {
		return fail(err)
	}
	if phase == "post" {
		path = filepath.Join(filepath.Dir(path), filepath.Base(meta.Runs.PostEntrypoint))
	}
	if _, err := os.Stat(path); err != nil {
		return fail(fmt.Errorf("%s entrypoint: %w", phase, err))
	}

	env, issues := r.environment(js, meta, s, state, exported, files)
	st.Issues = append(st.Issues, issues...)
	var lines lineLog
	stdout, stderr := lines.writer("stdout"), lines.writer("stderr")

	cmd := exec.CommandContext(ctx, path, meta.args(s.With)...)
	cmd.Dir = js.workspace
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = stdout, stderr
	// The runner cancels a step by signalling its process; SIGKILL follows if it lingers.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = killAfter
	started := time.Now()
	runErr := cmd.Start()
	if runErr == nil {
		runErr = cmd.Wait()
	}
	wall := time.Since(started)
	stdout.close()
	stderr.close()

	st.Stdout, st.Stderr = stdout.raw.String(), stderr.raw.String()
	st.readLines(lines.lines, masks)
	if cmd.ProcessState == nil {
		return fail(fmt.Errorf("start %s: %w", phase, runErr))
	}
	st.ExitCode = exitCode(cmd.ProcessState)
	st.Started, st.Wall = started, wall
	st.CPU = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	st.MaxRSS = maxRSS(cmd.ProcessState)

	// Processed after the process exits, even on failure (§2, ActionRunner.cs 276-283).
	st.readFileCommands(files)
	st.Failed = st.ExitCode != 0 || st.FileCommandErr != nil
	return st
}

// exitCode reports what docker run would: the code, or 128+signal for a process killed by one.
func exitCode(ps *os.ProcessState) int {
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ps.ExitCode()
}

// environment builds the stage's environment, with the precedence of §1 (later wins): the env
// context (job env, then GITHUB_ENV values exported earlier in the job, then the step's env),
// STATE_*, INPUT_*, runs.env for keys not yet set, HOME, GITHUB_*/RUNNER_*, ACTIONS_*. Nothing
// is inherited from the test process.
func (r *Runner) environment(js *jobDirs, meta *actionYML, s Step, state, exported, files map[string]string) ([]string, []string) {
	env := map[string]string{}
	maps.Copy(env, r.Env)
	maps.Copy(env, exported)
	maps.Copy(env, s.Env)
	for k, v := range state {
		env["STATE_"+k] = v // name verbatim (§2)
	}
	inputs, issues := meta.inputs(s.With)
	for k, v := range inputs {
		env[ghaction.InputEnvName(k)] = v
	}
	for k, v := range meta.Runs.Env {
		if _, ok := env[k]; !ok {
			env[k] = v
		}
	}
	env["HOME"] = js.home
	var actionsVars []string
	for k, v := range js.github {
		if strings.HasPrefix(k, "ACTIONS_") {
			actionsVars = append(actionsVars, k)
			continue
		}
		env[k] = v
	}
	maps.Copy(env, files)
	env["GITHUB_ACTIONS"] = "true"
	if _, ok := env["CI"]; !ok {
		env["CI"] = "true"
	}
	for _, k := range actionsVars {
		env[k] = js.github[k]
	}
	list := make([]string, 0, len(env))
	for _, k := range slices.Sorted(maps.Keys(env)) {
		list = append(list, k+"="+env[k])
	}
	return list, issues
}

// readFileCommands applies the stage's files as the runner's ProcessFiles does: each command on
// its own, an error in one failing the step without stopping the others (§3.6).
func (s *Stage) readFileCommands(files map[string]string) {
	s.Outputs, s.State, s.Env = map[string]string{}, map[string]string{}, map[string]string{}
	var errs []error
	apply := func(kind, envVar string, set func(k, v string) error) {
		b, err := os.ReadFile(files[envVar])
		if err == nil {
			err = parsePairs(string(b), set)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("Unable to process file command '%s' successfully: %w", kind, err)) //nolint:staticcheck // the runner's message
		}
	}
	// An empty name ("=v") is accepted by the parser; setting an output or env var with it throws.
	errEmptyName := errors.New("Value cannot be null or empty. (Parameter 'name')") //nolint:staticcheck // .NET's message
	apply("env", "GITHUB_ENV", func(k, v string) error {
		if k == "" {
			return errEmptyName
		}
		if strings.EqualFold(k, "NODE_OPTIONS") { // §3.7
			s.Issues = append(s.Issues, "error: Can't store NODE_OPTIONS output parameter using '$GITHUB_ENV' command.")
			return nil
		}
		s.Env[k] = v
		return nil
	})
	if b, err := os.ReadFile(files["GITHUB_STEP_SUMMARY"]); err == nil {
		s.Summary = string(b)
		if len(b) > ghaction.MaxSummarySize { // §3.7
			s.Issues = append(s.Issues, "error: $GITHUB_STEP_SUMMARY upload aborted, supports content up to a size of 1024k")
		}
	}
	apply("state", "GITHUB_STATE", func(k, v string) error {
		s.State[k] = v
		return nil
	})
	apply("output", "GITHUB_OUTPUT", func(k, v string) error {
		if k == "" {
			return errEmptyName
		}
		s.Outputs[k] = v
		return nil
	})
	s.FileCommandErr = errors.Join(errs...)
}

// actionYML is the part of action.yml the simulation reads.
type actionYML struct {
	Inputs map[string]struct {
		Default *string `yaml:"default"`
	} `yaml:"inputs"`
	Runs struct {
		Using          string            `yaml:"using"`
		Entrypoint     string            `yaml:"entrypoint"`
		PostEntrypoint string            `yaml:"post-entrypoint"`
		PostIf         string            `yaml:"post-if"`
		Args           []string          `yaml:"args"`
		Env            map[string]string `yaml:"env"`
	} `yaml:"runs"`
}

func readActionYML(path string) (*actionYML, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read action.yml: %w", err)
	}
	var m actionYML
	if err := yaml.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("parse %s: %w", path, err)
	}
	if m.Runs.Using != "docker" {
		return nil, fmt.Errorf("%s: runs.using is %q; only docker actions are simulated", path, m.Runs.Using)
	}
	return &m, nil
}

// inputs returns every input's value by name: each declared input with its default ("" when it
// has none: present and empty), then every with: key, declared or not (§1). Names match
// ignoring case, which the upper-cased variable name does by itself. An undeclared key draws the
// runner's warning.
func (m *actionYML) inputs(with map[string]string) (map[string]string, []string) {
	vals := map[string]string{}
	declared := map[string]bool{}
	for name, in := range m.Inputs {
		declared[strings.ToLower(name)] = true
		if in.Default != nil {
			vals[name] = *in.Default
		} else {
			vals[name] = ""
		}
	}
	var unexpected []string
	for _, k := range slices.Sorted(maps.Keys(with)) {
		// Drop a default spelled in another case, so the with: value wins whatever the order.
		for name := range vals {
			if strings.EqualFold(name, k) {
				delete(vals, name)
			}
		}
		vals[k] = with[k]
		if !declared[strings.ToLower(k)] {
			unexpected = append(unexpected, k)
		}
	}
	if len(unexpected) > 0 {
		valid := slices.Sorted(maps.Keys(m.Inputs))
		return vals, []string{fmt.Sprintf("warning: Unexpected input(s) '%s', valid inputs are ['%s']",
			strings.Join(unexpected, "', '"), strings.Join(valid, "', '"))}
	}
	return vals, nil
}

// inputExpr matches ${{ inputs.name }} in runs.args items.
var inputExpr = regexp.MustCompile(`\$\{\{\s*inputs\.([A-Za-z0-9_.-]+)\s*\}\}`)

// args returns the argv after the entrypoint, the same in every stage (§1, §2): each runs.args
// item, with ${{ inputs.x }} evaluated, as one argument; without runs.args, the with.args string
// split on spaces with double quotes grouping.
func (m *actionYML) args(with map[string]string) []string {
	if m.Runs.Args == nil {
		return splitArgs(with["args"])
	}
	inputs, _ := m.inputs(with)
	out := make([]string, 0, len(m.Runs.Args))
	for _, a := range m.Runs.Args {
		out = append(out, inputExpr.ReplaceAllStringFunc(a, func(e string) string {
			name := inputExpr.FindStringSubmatch(e)[1]
			for k, v := range inputs {
				if strings.EqualFold(k, name) {
					return v
				}
			}
			return ""
		}))
	}
	return out
}

// splitArgs splits a command line on blanks; double quotes group and \" is a literal quote.
func splitArgs(s string) []string {
	var out []string
	var cur strings.Builder
	inQuote, have := false, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\' && i+1 < len(s) && s[i+1] == '"':
			cur.WriteByte('"')
			have = true
			i++
		case c == '"':
			inQuote = !inQuote
			have = true
		case (c == ' ' || c == '\t') && !inQuote:
			if have {
				out = append(out, cur.String())
				cur.Reset()
				have = false
			}
		default:
			cur.WriteByte(c)
			have = true
		}
	}
	if have {
		out = append(out, cur.String())
	}
	return out
}
