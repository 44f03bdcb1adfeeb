// Package bench measures cf-scoped-token the way a job runs it: the real binary's main and
// post phases, started through the runner simulation (ghactiontest) against the in-process
// emulator with injected latency, beside baseline.sh, a hand-written curl+jq script doing the
// same job against the same emulator. It also runs many jobs at once against one parent
// token under a scaled-down rate limit.
//
// It holds tests and benchmarks only. `go test ./bench` runs the quick correctness tests and
// a small scale test; bench/run.sh runs the benchmarks and the full scale run and writes the
// results into bench/README.md.
package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cf-scoped-token/cf-scoped-token/internal/emulator"
	"github.com/cf-scoped-token/cf-scoped-token/internal/emulator/emulatortest"
	"github.com/cf-scoped-token/cf-scoped-token/internal/ghaction/ghactiontest"
)

const moduleRoot = ".."

// binaries are built once per test process, before any test or benchmark runs.
type binaries struct {
	dir    string // holds everything below; TestMain removes it
	action string // the cf-scoped-token binary, its post alias beside it
	// probe is rssprobe (testdata/rssprobe) in a directory of its own, named and aliased like
	// action, so that the runner can start it in action's place; "" off Linux.
	probe string
}

// bins is set by TestMain only, before m.Run, and read-only afterwards.
var bins binaries

func TestMain(m *testing.M) {
	b, err := build()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
	bins = b
	code := m.Run()
	_ = os.RemoveAll(b.dir)
	os.Exit(code)
}

func build() (binaries, error) {
	dir, err := os.MkdirTemp("", "cf-scoped-token-bench-")
	if err != nil {
		return binaries{}, err
	}
	b := binaries{dir: dir}
	actionDir := filepath.Join(dir, "action")
	if err := os.Mkdir(actionDir, 0o700); err != nil {
		return b, err
	}
	if b.action, err = ghactiontest.Build(actionDir, moduleRoot); err != nil {
		return b, err
	}
	if runtime.GOOS != "linux" {
		return b, nil
	}
	// The probe takes the binary's name and the same aliases (symlinks to it), so the runner,
	// which starts main and post by name, starts the probe, and the probe the right binary.
	probeDir := filepath.Join(dir, "probe")
	if err := os.Mkdir(probeDir, 0o700); err != nil {
		return b, err
	}
	b.probe = filepath.Join(probeDir, filepath.Base(b.action))
	cmd := exec.Command("go", "build", "-o", b.probe, ".")
	cmd.Dir = filepath.Join("testdata", "rssprobe")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return b, fmt.Errorf("build rssprobe: %w\n%s", err, out)
	}
	entries, err := os.ReadDir(actionDir)
	if err != nil {
		return b, err
	}
	for _, e := range entries {
		if e.Type()&os.ModeSymlink == 0 {
			continue
		}
		target, err := os.Readlink(filepath.Join(actionDir, e.Name()))
		if err != nil {
			return b, err
		}
		if err := os.Symlink(target, filepath.Join(probeDir, e.Name())); err != nil {
			return b, err
		}
	}
	return b, nil
}

// world is one seeded emulator on a loopback server, and a runner for the real binary pointed
// at it. The emulator's log stamps each request's arrival and end on the real clock, before
// any injected latency: the time from a process's start to its first request is read from it.
type world struct {
	e      *emulator.Emulator
	seeded emulator.Seeded
	apiURL string
	runner *ghactiontest.Runner
}

// newWorld starts a world whose every request is delayed by latency, under limits.
func newWorld(tb testing.TB, latency time.Duration, limits emulator.Limits) *world {
	tb.Helper()
	e := emulator.New()
	seeded := emulator.Seed(e)
	e.SetLimits(limits)
	if latency > 0 {
		e.AddFault(emulator.Fault{Kind: emulator.Latency, Delay: latency}) // Route "": every route
	}
	srv := emulatortest.Serve(tb, e, nil)
	return &world{
		e: e, seeded: seeded, apiURL: srv.URL + emulator.BasePath,
		runner: &ghactiontest.Runner{Binary: bins.action, ActionYML: filepath.Join(moduleRoot, "action.yml")},
	}
}

// The job both sides do: one user-owned token holding Access: Apps and Policies Write on the
// first seeded account, for an hour.
const (
	jobScopes = "apps-and-policies:write"
	jobTTL    = time.Hour
)

// step is the action step doing the job with the user-owned parent token.
func (w *world) step() ghactiontest.Step {
	return ghactiontest.Step{With: map[string]string{
		"api-token":   w.seeded.UserToken,
		"api-url":     w.apiURL,
		"account-ids": emulator.SeedAccount1,
		"scopes":      jobScopes,
		"ttl":         jobTTL.String(),
	}}
}

// children are the tokens alive in the emulator that the seed did not make.
func (w *world) children() []emulator.Token {
	return w.seeded.Children(w.e)
}

// redact hides the seeded parent tokens in text that is about to be printed.
func (w *world) redact(s string) string {
	return strings.NewReplacer(w.seeded.UserToken, "***", w.seeded.AccountToken, "***").Replace(s)
}

// phase is what one run of one phase cost.
type phase struct {
	reqs      []emulator.Request // the requests it made, in order of arrival
	wall, cpu time.Duration
	// firstRequest is the time from the process's start to the arrival of its first request;
	// 0 when it made none.
	firstRequest time.Duration
}

func observe(started time.Time, wall, cpu time.Duration, reqs []emulator.Request) phase {
	p := phase{reqs: reqs, wall: wall, cpu: cpu}
	if len(reqs) > 0 {
		p.firstRequest = reqs[0].Arrived.Sub(started)
	}
	return p
}

// requests is how many requests the phase made.
func (p phase) requests() int { return len(p.reqs) }

// name is "METHOD path" of a request, all of it that a test prints: its headers hold tokens.
func name(r emulator.Request) string { return r.Method + " " + r.Path }

// names is the name of each request.
func names(rs []emulator.Request) []string {
	var out []string
	for _, r := range rs {
		out = append(out, name(r))
	}
	return out
}

// runStage runs main (state nil) or post and measures it. It fails tb if the stage fails.
func (w *world) runStage(tb testing.TB, ctx context.Context, r *ghactiontest.Runner, state map[string]string) (*ghactiontest.Stage, phase) {
	tb.Helper()
	n := w.e.RequestCount()
	var st *ghactiontest.Stage
	if state == nil {
		st = r.RunMain(ctx, w.step())
	} else {
		st = r.RunPost(ctx, w.step(), state)
	}
	reqs := w.e.Requests()[n:]
	if st.Failed || len(st.Issues) > 0 {
		tb.Fatalf("%s failed (exit %d, %v, issues %q); log:\n%s", st.Phase, st.ExitCode, st.Err, st.Issues, w.redact(st.Log))
	}
	return st, observe(st.Started, st.Wall, st.CPU, reqs)
}

// script is one run of baseline.sh.
type script struct {
	stdout, stderr string
	exit           int
	started        time.Time
	wall, cpu      time.Duration
}

// missingTool names the first tool baseline.sh needs that is not on PATH; "" if none is.
func missingTool() string {
	for _, tool := range []string{"bash", "curl", "jq", "date"} {
		if _, err := exec.LookPath(tool); err != nil {
			return tool
		}
	}
	return ""
}

// haveTools skips tb unless every tool baseline.sh needs is on PATH.
func haveTools(tb testing.TB) {
	tb.Helper()
	if tool := missingTool(); tool != "" {
		tb.Skipf("baseline.sh needs %s, which is not on PATH (Debian: apt-get install -y curl jq)", tool)
	}
}

// runScript runs baseline.sh with the parent token in its environment, as a run: step would,
// optionally through the probe (probeOut names the file it writes). A script that exits
// non-zero is the caller's to judge; one that cannot be started fails tb.
func (w *world) runScript(tb testing.TB, ctx context.Context, probeOut string) (script, phase) {
	tb.Helper()
	path, err := filepath.Abs("baseline.sh")
	if err != nil {
		tb.Fatal(err)
	}
	args := []string{"bash", path}
	if probeOut != "" {
		args = append([]string{bins.probe}, args...)
	}
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	// What a runner's shell step has, and nothing of this process: curl reads ~/.curlrc, so
	// HOME is an empty directory.
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + tb.TempDir(), "LC_ALL=C",
		"CF_API_TOKEN=" + w.seeded.UserToken, "CF_API_URL=" + w.apiURL,
		"CF_ACCOUNT_ID=" + emulator.SeedAccount1, "CF_TTL=" + strconv.Itoa(int(jobTTL.Seconds())),
	}
	if probeOut != "" {
		cmd.Env = append(cmd.Env, "RSSPROBE_OUT="+probeOut)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	n := w.e.RequestCount()
	started := time.Now()
	err = cmd.Start()
	if err == nil {
		err = cmd.Wait()
	}
	wall := time.Since(started)
	reqs := w.e.Requests()[n:]
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		tb.Fatalf("run baseline.sh: %v", err)
	}
	ps := cmd.ProcessState
	s := script{
		stdout: stdout.String(), stderr: stderr.String(), exit: ps.ExitCode(),
		started: started, wall: wall, cpu: ps.UserTime() + ps.SystemTime(),
	}
	return s, observe(started, s.wall, s.cpu, reqs)
}

// sample is one measured job: main and post of the binary, and the baseline script.
type sample struct {
	main, post, baseline phase
	state                map[string]string // what main left for post
	mainStage, postStage *ghactiontest.Stage
	script               script
}

// measure runs one job both ways, one after the other on the same emulator. Odd runs start
// with the script, so that neither side always finds the machine warmed by the other.
func (w *world) measure(tb testing.TB, ctx context.Context, run int, withBaseline bool) sample {
	tb.Helper()
	var s sample
	binary := func() {
		s.mainStage, s.main = w.runStage(tb, ctx, w.runner, nil)
		s.state = s.mainStage.State
		s.postStage, s.post = w.runStage(tb, ctx, w.runner, s.state)
	}
	baseline := func() {
		if !withBaseline {
			return
		}
		s.script, s.baseline = w.runScript(tb, ctx, "")
		if s.script.exit != 0 {
			tb.Fatalf("baseline.sh exited %d; stderr:\n%s", s.script.exit, w.redact(s.script.stderr))
		}
	}
	if run%2 == 0 {
		binary()
		baseline()
	} else {
		baseline()
		binary()
	}
	return s
}

// peakRSS runs the job runs times through the probe and returns the largest peak RSS in
// bytes of main, post and the script; all 0 off Linux, where there is no probe.
func (w *world) peakRSS(tb testing.TB, ctx context.Context, runs int, withBaseline bool) (main, post, baseline int64) {
	tb.Helper()
	if bins.probe == "" {
		return 0, 0, 0
	}
	dir := tb.TempDir()
	read := func(file string) int64 {
		b, err := os.ReadFile(file)
		if err != nil {
			tb.Fatalf("rssprobe wrote nothing: %v", err)
		}
		rss, err := parseProbe(string(b))
		if err != nil {
			tb.Fatalf("rssprobe output %q: %v", b, err)
		}
		return rss
	}
	for i := range runs {
		out := func(name string) string { return filepath.Join(dir, fmt.Sprintf("%s-%d", name, i)) }
		r := *w.runner
		r.Binary = bins.probe
		r.Env = map[string]string{"RSSPROBE_DIR": filepath.Dir(bins.action), "RSSPROBE_OUT": out("main")}
		st, _ := w.runStage(tb, ctx, &r, nil)
		main = max(main, read(out("main")))
		r.Env = map[string]string{"RSSPROBE_DIR": filepath.Dir(bins.action), "RSSPROBE_OUT": out("post")}
		w.runStage(tb, ctx, &r, st.State)
		post = max(post, read(out("post")))
		if withBaseline {
			if s, _ := w.runScript(tb, ctx, out("baseline")); s.exit != 0 {
				tb.Fatalf("baseline.sh exited %d; stderr:\n%s", s.exit, w.redact(s.stderr))
			}
			baseline = max(baseline, read(out("baseline")))
		}
	}
	return main, post, baseline
}

// parseProbe reads what rssprobe wrote: peak RSS in bytes.
func parseProbe(s string) (rss int64, err error) {
	_, err = fmt.Sscanf(s, "maxrss=%d", &rss)
	return rss, err
}

// percentile is the nearest-rank p-quantile (0 < p ≤ 1) of ds; 0 for none.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	rank := int(math.Ceil(float64(len(s))*p - 1e-9)) // the tolerance keeps 0.9×10 at 9
	return s[min(max(rank, 1), len(s))-1]
}
