package ghactiontest_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cf-scoped-token/cf-scoped-token/internal/ghaction/ghactiontest"
)

const fakeDir = "testdata/fakeaction"

// newRunner builds the fake action and returns a Runner for it.
func newRunner(t *testing.T) *ghactiontest.Runner {
	t.Helper()
	return &ghactiontest.Runner{
		Binary:    ghactiontest.MustBuild(t, fakeDir),
		ActionYML: filepath.Join(fakeDir, "action.yml"),
	}
}

func TestMustBuild(t *testing.T) {
	t.Parallel()
	bin := ghactiontest.MustBuild(t, fakeDir)
	if got := filepath.Base(bin); got != "fakeaction" {
		t.Errorf("binary named %q, want the entrypoint's base name fakeaction", got)
	}
	alias := filepath.Join(filepath.Dir(bin), "fakeaction-post")
	target, err := os.Readlink(alias)
	if err != nil || target != "fakeaction" {
		t.Errorf("post alias: Readlink = %q, %v; want a symlink to fakeaction", target, err)
	}
}

// TestSharedBuild: one build however many tests ask, the post alias beside
// it, a failure told to each caller, and nothing left after Remove.
func TestSharedBuild(t *testing.T) {
	t.Parallel()
	s := ghactiontest.NewSharedBuild(fakeDir)
	bin := s.Path(t)
	info, err := os.Stat(bin)
	if err != nil {
		t.Fatal(err)
	}
	// A second Build into the same directory would fail on the existing alias.
	if again := s.Path(t); again != bin {
		t.Errorf("second Path = %q, want the first build's %q", again, bin)
	}
	if again, err := os.Stat(bin); err != nil || !again.ModTime().Equal(info.ModTime()) {
		t.Errorf("the binary was built again: %v", err)
	}
	if _, err := os.Readlink(filepath.Join(filepath.Dir(bin), "fakeaction-post")); err != nil {
		t.Errorf("post alias: %v", err)
	}
	s.Remove()
	if _, err := os.Stat(filepath.Dir(bin)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("after Remove, the build directory: %v, want it gone", err)
	}

	broken := ghactiontest.NewSharedBuild(t.TempDir()) // no action.yml
	for i := range 2 {
		tb := &fatalTB{TB: t}
		if broken.Path(tb); !tb.fatal {
			t.Errorf("call %d: a failed build did not fail the test", i+1)
		}
	}
	broken.Remove()
}

// fatalTB records a Fatal instead of stopping the test.
type fatalTB struct {
	testing.TB
	fatal bool
}

func (f *fatalTB) Fatal(...any) { f.fatal = true }

func TestRunMainThenPost(t *testing.T) {
	t.Parallel()
	r := newRunner(t)
	job := r.Run(t.Context(), ghactiontest.Step{With: map[string]string{"secret": "s3cr3t-value"}})
	if job.Main.Failed || job.Post == nil || job.Post.Failed || job.Cancelled {
		t.Fatalf("job: main failed=%v (%v), post=%v, cancelled=%v\nmain log:\n%s", job.Main.Failed, job.Main.Err, job.Post, job.Cancelled, job.Main.Log)
	}
	if got := job.Main.Outputs["secret"]; got != "s3cr3t-value" {
		t.Errorf("main output secret = %q", got)
	}
	if diff := cmp.Diff(map[string]string{"token-id": "id-123", "Mixed-Case": "kept"}, job.State); diff != "" {
		t.Errorf("state handed to post (-want +got):\n%s", diff)
	}
	// §2: state arrives as STATE_<name>, case kept.
	notices := job.Post.Annotations("notice")
	if len(notices) != 1 || notices[0].Data != "post token-id=id-123 mixed=kept" {
		t.Errorf("post notices = %+v", notices)
	}
	// argv: the entrypoint, then runs.args with ${{ inputs.* }} evaluated, in both stages (§1, §2).
	for _, tc := range []struct {
		stage *ghactiontest.Stage
		argv0 string
	}{{job.Main, "fakeaction"}, {job.Post, "fakeaction-post"}} {
		if got := tc.stage.Outputs["argv0"]; got != tc.argv0 {
			t.Errorf("%s argv0 = %q, want %q", tc.stage.Phase, got, tc.argv0)
		}
		if got, want := tc.stage.Outputs["args"], "action|dflt value"; got != want {
			t.Errorf("%s args = %q, want %q", tc.stage.Phase, got, want)
		}
	}
	if job.Main.Outputs["cwd"] == "" || job.Main.Outputs["cwd"] != job.Post.Outputs["cwd"] {
		t.Errorf("cwd main %q, post %q: want one workspace for the job", job.Main.Outputs["cwd"], job.Post.Outputs["cwd"])
	}
	if diff := cmp.Diff([]string{"s3cr3t-value"}, job.Main.Masks); diff != "" {
		t.Errorf("masks (-want +got):\n%s", diff)
	}
	if !strings.Contains(job.Main.Log, "::add-mask::***\n") || strings.Contains(job.Main.Log, "s3cr3t") {
		t.Errorf("main log does not show the mask as ::add-mask::***:\n%s", job.Main.Log)
	}
	job.AssertNoLeaks(t, "s3cr3t-value")
}

func TestRunEnvironment(t *testing.T) {
	t.Parallel()
	r := newRunner(t)
	r.Env = map[string]string{"FROM_JOB": "job", "SHARED": "job", "INPUT_WITH-DEFAULT": "env loses", "STATE_token-id": "env loses", "CI": "kept"}
	r.GitHub = map[string]string{"GITHUB_REPOSITORY": "me/repo", "ACTIONS_ID_TOKEN_REQUEST_URL": "http://127.0.0.1/oidc"}
	names := []string{
		"INPUT_WITH-DEFAULT", "INPUT_NO-DEFAULT", "INPUT_UNDECLARED", "INPUT_SECRET", "INPUT_LEAK",
		"FROM_JOB", "SHARED", "STATE_token-id", "STATE_TOKEN-ID", "HOME", "GITHUB_ACTIONS", "CI",
		"GITHUB_REPOSITORY", "GITHUB_RUN_ATTEMPT", "GITHUB_JOB", "ACTIONS_ID_TOKEN_REQUEST_URL", "PATH",
		"GITHUB_OUTPUT", "GITHUB_EVENT_PATH",
	}
	job := r.Run(t.Context(), ghactiontest.Step{
		With: map[string]string{"env-names": strings.Join(names, ","), "undeclared": "x", "Leak": "stderr"},
		Env:  map[string]string{"SHARED": "step"},
	})
	if job.Main.Failed || job.Post == nil {
		t.Fatalf("main failed=%v err=%v post=%v\n%s", job.Main.Failed, job.Main.Err, job.Post, job.Main.Log)
	}
	present := func(v string) string { return "true " + v }
	want := map[string]string{
		"INPUT_WITH-DEFAULT":           present("dflt value"), // an input beats the env context (§1)
		"INPUT_NO-DEFAULT":             present(""),           // no default: present and empty (§1)
		"INPUT_UNDECLARED":             present("x"),          // every with: key gets a variable
		"INPUT_SECRET":                 present(""),
		"INPUT_LEAK":                   present("stderr"), // with: keys match inputs ignoring case
		"FROM_JOB":                     present("job"),
		"SHARED":                       present("step"),
		"STATE_TOKEN-ID":               "false ",
		"GITHUB_ACTIONS":               present("true"),
		"CI":                           present("kept"),
		"GITHUB_REPOSITORY":            present("me/repo"),
		"GITHUB_RUN_ATTEMPT":           present("1"),
		"GITHUB_JOB":                   present("deploy"),
		"ACTIONS_ID_TOKEN_REQUEST_URL": present("http://127.0.0.1/oidc"),
		"PATH":                         "false ", // nothing inherited from the test process
	}
	for _, st := range []*ghactiontest.Stage{job.Main, job.Post} {
		got := map[string]string{}
		for name := range want {
			got[name] = st.Outputs["has:"+name] + " " + st.Outputs["env:"+name]
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s environment (-want +got):\n%s", st.Phase, diff)
		}
	}
	// STATE_* beats the env context in post; main has no state (there is no pre step).
	if got := job.Main.Outputs["env:STATE_token-id"]; got != "env loses" {
		t.Errorf("main STATE_token-id = %q, want the env context's value", got)
	}
	if got := job.Post.Outputs["env:STATE_token-id"]; got != "id-123" {
		t.Errorf("post STATE_token-id = %q, want id-123", got)
	}
	for _, st := range []*ghactiontest.Stage{job.Main, job.Post} {
		home := st.Outputs["env:HOME"]
		if fi, err := os.Stat(home); home == "" || (err == nil && !fi.IsDir()) {
			t.Errorf("%s HOME = %q, want a directory", st.Phase, home)
		}
		if !strings.HasSuffix(st.Outputs["env:GITHUB_EVENT_PATH"], "event.json") {
			t.Errorf("%s GITHUB_EVENT_PATH = %q", st.Phase, st.Outputs["env:GITHUB_EVENT_PATH"])
		}
	}
	// Every stage gets fresh file-command files (§2).
	if job.Main.Outputs["env:GITHUB_OUTPUT"] == job.Post.Outputs["env:GITHUB_OUTPUT"] {
		t.Error("main and post share a GITHUB_OUTPUT file")
	}
	if len(job.Main.Issues) != 1 || !strings.Contains(job.Main.Issues[0], "Unexpected input(s) 'undeclared'") {
		t.Errorf("main issues = %q, want the unexpected-input warning", job.Main.Issues)
	}
}

func TestRunPostAfterFailure(t *testing.T) {
	t.Parallel()
	r := newRunner(t)
	job := r.Run(t.Context(), ghactiontest.Step{With: map[string]string{"exit": "3", "state": "id-9"}})
	if got := job.Main.ExitCode; got != 3 || !job.Main.Failed {
		t.Fatalf("main exit code %d, failed %v; want 3, true", got, job.Main.Failed)
	}
	if errs := job.Main.Annotations("error"); len(errs) != 1 || errs[0].Data != "failing with 3" {
		t.Errorf("main errors = %+v", errs)
	}
	// §2: state is processed after a failure and post runs (post-if defaults to always()).
	if job.Post == nil {
		t.Fatal("no post stage after a failed main")
	}
	if n := job.Post.Annotations("notice"); len(n) != 1 || !strings.Contains(n[0].Data, "token-id=id-9") {
		t.Errorf("post notices = %+v", n)
	}
}

func TestRunCancelled(t *testing.T) {
	t.Parallel()
	r := newRunner(t)
	ready := filepath.Join(t.TempDir(), "ready")
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go func() {
		// Cancel once main has its SIGTERM handler in place.
		for ctx.Err() == nil {
			if _, err := os.Stat(ready); err == nil {
				cancel()
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	job := r.Run(ctx, ghactiontest.Step{With: map[string]string{"wait-file": ready}})
	if !job.Cancelled {
		t.Fatal("job not marked cancelled")
	}
	if got := job.Main.Outputs["signal"]; got != "terminated" {
		t.Errorf("main got signal %q, want SIGTERM (terminated)", got)
	}
	if job.Main.ExitCode != 1 {
		t.Errorf("main exit code %d, want 1", job.Main.ExitCode)
	}
	if job.Post == nil || job.Post.Err != nil || job.Post.ExitCode != 0 {
		t.Fatalf("post after cancellation: %+v", job.Post)
	}
	if n := job.Post.Annotations("notice"); len(n) != 1 || !strings.Contains(n[0].Data, "token-id=id-123") {
		t.Errorf("post notices = %+v", n)
	}
}

func TestRunCancelledBeforeStart(t *testing.T) {
	t.Parallel()
	r := newRunner(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	job := r.Run(ctx, ghactiontest.Step{})
	// A step that never started has no post step (§2).
	if !job.Cancelled || job.Main.Err == nil || job.Post != nil {
		t.Errorf("job = %+v, main = %+v; want cancelled, main not run, no post", job, job.Main)
	}
}

func TestRunPostIf(t *testing.T) {
	t.Parallel()
	r := newRunner(t)
	src, err := os.ReadFile(r.ActionYML)
	if err != nil {
		t.Fatal(err)
	}
	yml := strings.Replace(string(src), "  args:\n", "  post-if: success()\n  args:\n", 1)
	r.ActionYML = filepath.Join(t.TempDir(), "action.yml")
	if err := os.WriteFile(r.ActionYML, []byte(yml), 0o600); err != nil {
		t.Fatal(err)
	}
	if job := r.Run(t.Context(), ghactiontest.Step{With: map[string]string{"exit": "1"}}); job.Post != nil {
		t.Error("post-if: success() ran post after a failed main")
	}
	if job := r.Run(t.Context(), ghactiontest.Step{}); job.Post == nil {
		t.Error("post-if: success() skipped post after a successful main")
	}
}

func TestRunFileCommandError(t *testing.T) {
	t.Parallel()
	r := newRunner(t)
	st := r.RunMain(t.Context(), ghactiontest.Step{With: map[string]string{
		"raw-output": `late=1\n=empty-name\nbroken<<EOF\nno end\n`,
	}})
	if st.ExitCode != 0 || !st.Failed {
		t.Fatalf("exit code %d, failed %v; want 0 and failed by the file command", st.ExitCode, st.Failed)
	}
	// The empty output name throws first; pairs before it are already applied (§3.6).
	if st.FileCommandErr == nil || !strings.Contains(st.FileCommandErr.Error(), "Unable to process file command 'output' successfully") {
		t.Errorf("FileCommandErr = %v", st.FileCommandErr)
	}
	if st.Outputs["late"] != "1" || st.Outputs["argv0"] != "fakeaction" {
		t.Errorf("outputs before the error were dropped: %q", st.Outputs)
	}
}

func TestRunPostAlone(t *testing.T) {
	t.Parallel()
	r := newRunner(t)
	st := r.RunPost(t.Context(), ghactiontest.Step{With: map[string]string{"post-exit": "4"}},
		map[string]string{"token-id": "tok-1"})
	if st.ExitCode != 4 || !st.Failed {
		t.Errorf("post exit code %d, failed %v", st.ExitCode, st.Failed)
	}
	if n := st.Annotations("notice"); len(n) != 1 || n[0].Data != "post token-id=tok-1 mixed=" {
		t.Errorf("post notices = %+v", n)
	}
}

func TestStageResourceUsage(t *testing.T) {
	t.Parallel()
	r := newRunner(t)
	const (
		busy  = 300 * time.Millisecond
		sleep = 200 * time.Millisecond
		alloc = 64 << 20
	)
	before := time.Now()
	idle := r.RunMain(t.Context(), ghactiontest.Step{})
	st := r.RunMain(t.Context(), ghactiontest.Step{With: map[string]string{
		"busy": busy.String(), "sleep": sleep.String(), "alloc-mib": strconv.Itoa(alloc >> 20),
	}})
	after := time.Now()
	for _, s := range []*ghactiontest.Stage{idle, st} {
		if s.Failed {
			t.Fatalf("main failed (exit %d, %v):\n%s", s.ExitCode, s.Err, s.Log)
		}
		if s.Started.Before(before) || s.Started.Add(s.Wall).After(after) {
			t.Errorf("Started %v + Wall %v is not within the call [%v, %v]", s.Started, s.Wall, before, after)
		}
		if s.CPU <= 0 || s.CPU > s.Wall*time.Duration(runtime.NumCPU()) {
			t.Errorf("CPU %v, want in (0, Wall %v × %d CPUs]", s.CPU, s.Wall, runtime.NumCPU())
		}
	}
	t.Logf("idle: Wall %v, CPU %v, MaxRSS %d; busy: Wall %v, CPU %v, MaxRSS %d", idle.Wall, idle.CPU, idle.MaxRSS, st.Wall, st.CPU, st.MaxRSS)
	if st.Wall < busy+sleep {
		t.Errorf("Wall %v, want at least busy+sleep = %v", st.Wall, busy+sleep)
	}
	// The spin loop runs for busy of wall time; even on a loaded machine it gets a good share
	// of a CPU, and the sleep adds none.
	if st.CPU < busy/3 || st.CPU > st.Wall-sleep/2 {
		t.Errorf("CPU %v, want about busy = %v (at least a third of it, and well under Wall %v, which includes the sleep)", st.CPU, busy, st.Wall)
	}
	if runtime.GOOS != "linux" {
		return // MaxRSS is reported on Linux only
	}
	// Bytes, not KiB: the process that touched 64 MiB reports at least that, and neither
	// reports a thousand times too much. (Each also reports at least this test process's own
	// peak: see Stage.MaxRSS.)
	for _, s := range []*ghactiontest.Stage{idle, st} {
		if s.MaxRSS < 1<<20 || s.MaxRSS > 1<<30 {
			t.Errorf("MaxRSS = %d bytes, want between 1 MiB and 1 GiB", s.MaxRSS)
		}
	}
	if st.MaxRSS < alloc {
		t.Errorf("MaxRSS = %d bytes after touching %d, want at least that", st.MaxRSS, alloc)
	}
}

func TestStageNotStartedHasNoUsage(t *testing.T) {
	t.Parallel()
	r := &ghactiontest.Runner{Binary: "/nonexistent/fakeaction", ActionYML: filepath.Join(fakeDir, "action.yml")}
	st := r.RunMain(t.Context(), ghactiontest.Step{})
	if !st.Started.IsZero() || st.Wall != 0 || st.CPU != 0 || st.MaxRSS != 0 {
		t.Errorf("a stage that never ran has Started %v, Wall %v, CPU %v, MaxRSS %d; want zeros", st.Started, st.Wall, st.CPU, st.MaxRSS)
	}
}

// leakRecorder is a testing.TB that records failures instead of failing the test.
type leakRecorder struct {
	testing.TB
	errs []string
}

func (r *leakRecorder) Helper() {}
func (r *leakRecorder) Errorf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

func TestAssertNoLeaks(t *testing.T) {
	t.Parallel()
	r := newRunner(t)
	const secret = "leaky:s3cr3t,value"
	for _, tc := range []struct {
		name string
		with map[string]string
		want []string // substrings, one per expected failure
	}{
		{"masked first", map[string]string{"leak": "none"}, nil},
		{"printed before the mask", map[string]string{"leak": "before-mask"},
			[]string{"main: secret #1 appears in stdout line 1, before its ::add-mask::: the secret is <secret #1>",
				"main: secret #1 appears in the masked log"}},
		{"debug after the mask", map[string]string{"leak": "debug"},
			[]string{"main: secret #1 appears in stdout line 2, outside ::add-mask::: ::debug::secret=<secret #1>"}},
		{"stderr after the mask", map[string]string{"leak": "stderr"},
			[]string{"main: secret #1 appears in stderr line 1, outside ::add-mask::"}},
		{"summary", map[string]string{"leak": "summary"},
			[]string{"main: secret #1 appears in the step summary"}},
		{"post prints it, masked by main's mask", map[string]string{"post-leak": "true"},
			[]string{"post: secret #1 appears in stdout line 2, outside ::add-mask::: post: <secret #1>"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			with := map[string]string{"secret": secret}
			for k, v := range tc.with {
				with[k] = v
			}
			job := r.Run(t.Context(), ghactiontest.Step{With: with})
			rec := &leakRecorder{TB: t}
			job.AssertNoLeaks(rec, secret)
			if len(rec.errs) != len(tc.want) {
				t.Fatalf("AssertNoLeaks reported %d failures, want %d:\n%s", len(rec.errs), len(tc.want), strings.Join(rec.errs, "\n"))
			}
			for i, w := range tc.want {
				if !strings.Contains(rec.errs[i], w) {
					t.Errorf("failure %d = %q, want it to contain %q", i, rec.errs[i], w)
				}
			}
			for _, e := range rec.errs {
				if strings.Contains(e, "s3cr3t") {
					t.Errorf("failure message shows the secret: %q", e)
				}
			}
			// Main's mask is job-wide, so post's raw print is *** in the log (§4).
			if job.Post != nil && strings.Contains(job.Post.Log, "s3cr3t") {
				t.Errorf("post log shows the secret:\n%s", job.Post.Log)
			}
		})
	}
}

func TestAssertNoLeaksEscapedCommand(t *testing.T) {
	t.Parallel()
	// §4: "::error::a%0Ab" is shown as "a\nb"; the secret "a\nb" leaks through it.
	secret := "line-one\nline-two"
	st := ghactiontest.ReadOutput("::error::bad line-one%0Aline-two\n")
	rec := &leakRecorder{TB: t}
	st.AssertNoLeaks(rec, secret)
	if len(rec.errs) != 1 || !strings.Contains(rec.errs[0], "before its ::add-mask::: ::error::bad <secret #1>") {
		t.Errorf("failures = %q", rec.errs)
	}
}

func TestAssertNoLeaksStageNotRun(t *testing.T) {
	t.Parallel()
	r := &ghactiontest.Runner{Binary: "/nonexistent/fakeaction", ActionYML: filepath.Join(fakeDir, "action.yml")}
	job := r.Run(t.Context(), ghactiontest.Step{})
	if job.Main.Err == nil || !errors.Is(job.Main.Err, os.ErrNotExist) || !job.Main.Failed {
		t.Fatalf("main Err = %v, want not-exist", job.Main.Err)
	}
	rec := &leakRecorder{TB: t}
	job.AssertNoLeaks(rec, "x")
	if len(rec.errs) == 0 {
		t.Error("AssertNoLeaks passed a job whose stages never ran")
	}
}
