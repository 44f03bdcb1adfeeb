//go:build unix

package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.yaml.in/yaml/v3"

	"github.com/cf-scoped-token/cf-scoped-token/internal/emulator"
)

// readmeShellSections says, for each README section with shell blocks, who
// runs them; TestReadmeBlocks fails on a shell block in any other section,
// so that no command gets into the README untested by oversight.
var readmeShellSections = map[string]string{
	"":                                     "not here: go run . demo is the demo testdata/script/emulator_demo.txtar runs; go test runs this",
	"Install":                              "not here: it needs the Go module proxy, GitHub's releases, Sigstore and a registry",
	"Try it locally":                       "TestReadmeTryItLocally",
	"Keyless (no Cloudflare secret in CI)": "not here: go run . demo --keyless is the demo testdata/script/emulator_demo.txtar runs",
	"Terraform and wrangler":               "TestReadmeBlocks",
	"The parent secret":                    "TestReadmeParentSecret",
	"Container":                            "not here: .ci/run runs test/container/run.sh itself",
}

func readme(t *testing.T) []mdBlock {
	t.Helper()
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	return markdownBlocks(string(b))
}

// TestReadmeBlocks checks every code block of the README: each shell block
// is valid bash, is in a section whose blocks some test runs (or that says
// why they cannot run here), and gives cf-scoped-token only flags its
// --help lists; each YAML block parses. It runs the blocks of "Terraform
// and wrangler" as a reader would, with the parent and CF_ACCOUNT_ID in the
// environment, against the emulator, with stand-ins for terraform and
// wrangler: the command gets a child token with exactly the groups the
// example asks for, never the parent, and the token is gone afterwards.
func TestReadmeBlocks(t *testing.T) {
	t.Parallel()
	requireTools(t, "bash", "curl")
	blocks := readme(t)
	fc := &flagChecker{bin: mustDocsBinary(t)}
	var shells int
	for _, b := range blocks {
		switch b.Lang {
		case "sh":
			shells++
			if _, ok := readmeShellSections[b.Section]; !ok {
				t.Errorf("README.md:%d: a shell block in section %q, whose blocks no test runs (readmeShellSections)", b.Line, b.Section)
			}
			if out, err := exec.Command("bash", "-n", "-c", b.Text).CombinedOutput(); err != nil {
				t.Errorf("README.md:%d: bash -n: %v\n%s", b.Line, err, out)
			}
			checkFlags(t, fc, fmt.Sprintf("README.md:%d", b.Line), b.Text)
		case "yaml":
			var doc any
			if err := yaml.Unmarshal([]byte(b.Text), &doc); err != nil {
				t.Errorf("README.md:%d: YAML: %v", b.Line, err)
			}
			for _, s := range yamlStrings(doc) {
				checkFlags(t, fc, fmt.Sprintf("README.md:%d", b.Line), s)
			}
			checkActionInputs(t, fmt.Sprintf("README.md:%d", b.Line), doc)
		}
	}
	// go install names this module.
	mod, err := os.ReadFile("go.mod")
	if err != nil {
		t.Fatal(err)
	}
	module := strings.Fields(strings.SplitN(string(mod), "\n", 2)[0])[1]
	var installs int
	for _, b := range blocks {
		for _, words := range shellCommands(b.Text) {
			if len(words) >= 3 && words[0] == "go" && words[1] == "install" {
				installs++
				if pkg, _, _ := strings.Cut(words[2], "@"); pkg != module {
					t.Errorf("README.md:%d: go install %s; the module is %s", b.Line, words[2], module)
				}
			}
		}
	}
	if installs == 0 {
		t.Error("README.md no longer says how to go install the binary")
	}
	if shells < 10 {
		t.Errorf("README.md has %d shell blocks; the test expects its walk-through and recipes (at least 10)", shells)
	}

	t.Run("Terraform and wrangler", func(t *testing.T) {
		t.Parallel()
		var ran int
		for _, b := range blocks {
			if b.Lang != "sh" || b.Section != "Terraform and wrangler" {
				continue
			}
			ran++
			w := newDocsWorld(t)
			se := newSnippetEnv(t, w, writeStandIns(t))
			env := se.environ(map[string]string{
				"CF_SCOPED_TOKEN_API_TOKEN": w.parent,
				"CF_ACCOUNT_ID":             docsAccount,
			}, filepath.Dir(mustDocsBinary(t)))
			out, err := runShell(t.Context(), se.workDir, env, "bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", b.Text)
			if err != nil {
				t.Fatalf("README.md:%d: %v\n%s", b.Line, err, out)
			}
			noSecrets(t, fmt.Sprintf("README.md:%d", b.Line), out)
			wantLog, wantGroups := []string{"terraform init docs/terraform", "terraform apply docs/terraform account=" + docsAccount}, []string{groupAppsWrite}
			if strings.Contains(b.Text, "wrangler") {
				wantLog, wantGroups = []string{"wrangler deploy account=" + docsAccount}, []string{groupWorkersWrite}
			}
			if diff := cmp.Diff(wantLog, se.logLines()); diff != "" {
				t.Errorf("README.md:%d: what the stand-ins did (-want +got):\n%s\n%s", b.Line, diff, out)
			}
			if diff := cmp.Diff([][]string{wantGroups}, w.createdGroups()); diff != "" {
				t.Errorf("README.md:%d: permission groups of the tokens created (-want +got):\n%s", b.Line, diff)
			}
			if left := w.children(); len(left) > 0 {
				t.Errorf("README.md:%d: %d token(s) left after exec: %+v", b.Line, len(left), left)
			}
		}
		if ran != 2 {
			t.Errorf("ran %d blocks of \"Terraform and wrangler\"; want 2 (terraform, wrangler)", ran)
		}
	})
}

// checkFlags fails t for each cf-scoped-token command in script that uses a
// flag its command does not have.
func checkFlags(t *testing.T, fc *flagChecker, where, script string) {
	t.Helper()
	invs, err := invocations(script)
	if err != nil {
		t.Errorf("%s: %v", where, err)
	}
	for _, inv := range invs {
		if err := fc.check(inv); err != nil {
			t.Errorf("%s: %v", where, err)
		}
	}
}

// checkActionInputs fails on a step of a YAML block that uses the action
// with an input action.yml does not declare (actionlint checks the workflows
// in docs/examples; the README's blocks are fragments it cannot read).
func checkActionInputs(t *testing.T, where string, doc any) {
	t.Helper()
	b, err := os.ReadFile("action.yml")
	if err != nil {
		t.Fatal(err)
	}
	var action struct {
		Inputs map[string]any `yaml:"inputs"`
	}
	if err := yaml.Unmarshal(b, &action); err != nil {
		t.Fatal(err)
	}
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case []any:
			for _, e := range v {
				walk(e)
			}
		case map[string]any:
			if uses, _ := v["uses"].(string); strings.HasPrefix(uses, "cf-scoped-token/cf-scoped-token@") {
				with, _ := v["with"].(map[string]any)
				for name := range with {
					if _, ok := action.Inputs[name]; !ok {
						t.Errorf("%s: input %q of %s is not in action.yml", where, name, uses)
					}
				}
			}
			for _, e := range v {
				walk(e)
			}
		}
	}
	walk(doc)
}

// yamlStrings is every string in a decoded YAML document.
func yamlStrings(v any) []string {
	switch v := v.(type) {
	case string:
		return []string{v}
	case []any:
		var out []string
		for _, e := range v {
			out = append(out, yamlStrings(e)...)
		}
		return out
	case map[string]any:
		var out []string
		for _, e := range v {
			out = append(out, yamlStrings(e)...)
		}
		return out
	}
	return nil
}

// docStep is a shell block of a walk-through and the output the README
// shows for it ("" when it shows none: then it must print nothing).
type docStep struct {
	Code, Want string
	Line       int
}

func readmeSteps(t *testing.T, section string) []docStep {
	t.Helper()
	var steps []docStep
	for _, b := range readme(t) {
		if b.Section != section {
			continue
		}
		switch b.Lang {
		case "sh":
			steps = append(steps, docStep{Code: b.Text, Line: b.Line})
		case "text":
			if len(steps) == 0 || steps[len(steps)-1].Want != "" {
				t.Fatalf("README.md:%d: an output block that follows no command block", b.Line)
			}
			steps[len(steps)-1].Want = b.Text
		default:
			t.Fatalf("README.md:%d: a %q block in %q, where only sh and text blocks are run and compared", b.Line, b.Lang, section)
		}
	}
	return steps
}

// Output normalization: what differs from run to run (and from the
// README's sample) is made the same on both sides before they are compared.
var (
	normPort   = regexp.MustCompile(`127\.0\.0\.1:\d+`)
	normTime   = regexp.MustCompile(`\b\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\b`)
	normHex32  = regexp.MustCompile(`\b[0-9a-f]{32}\b`)
	normSuffix = regexp.MustCompile(`\b(cf-scoped-token [a-z]+) [0-9a-f]{12}\b`)
	normSpace  = regexp.MustCompile(`[ \t]+`)
	normAge    = regexp.MustCompile(` \d+s `) // list's AGE column
)

func normalizeOutput(s string) string {
	seeded := []string{emulator.SeedAccount1, emulator.SeedAccount2, emulator.SeedAccount3}
	var lines []string
	for _, line := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		line = normPort.ReplaceAllString(line, "127.0.0.1:PORT")
		line = normTime.ReplaceAllString(line, "TIME")
		line = normHex32.ReplaceAllStringFunc(line, func(id string) string {
			if slices.Contains(seeded, id) {
				return id // an account: which one matters
			}
			return "ID"
		})
		line = normSuffix.ReplaceAllString(line, "$1 SUFFIX")
		line = normSpace.ReplaceAllString(strings.TrimRight(line, " \t"), " ")
		line = normAge.ReplaceAllString(line, " AGE ")
		lines = append(lines, line)
	}
	return strings.Join(lines, "\n")
}

var stepMarker = regexp.MustCompile(`\n?@@docs-(step \d+|pid \d*)@@\n`)

// TestReadmeTryItLocally runs README's "Try it locally" as a reader would:
// its shell blocks in order in one bash session, with the real binary on
// PATH and nothing else of this machine's environment, and compares each
// block's output (stdout and stderr, as a terminal shows them) with the
// output block the README shows after it, ids, times, ports and random name
// suffixes aside. The emulator listens on a free port
// (CF_SCOPED_TOKEN_LISTEN, its flag's variable), not the README's 8787, so
// that runs do not collide. The last block must stop the emulator it
// started.
func TestReadmeTryItLocally(t *testing.T) {
	t.Parallel()
	requireTools(t, "bash", "curl")
	bin := mustDocsBinary(t)
	steps := readmeSteps(t, "Try it locally")
	var all strings.Builder
	for _, s := range steps {
		all.WriteString(s.Code)
	}
	for _, want := range []string{`cf-scoped-token emulator --print-env`, "cf-scoped-token create", "curl ", "cf-scoped-token revoke", "cf-scoped-token exec", `kill "$CF_EMULATOR_PID"`} {
		if !strings.Contains(all.String(), want) {
			t.Errorf("\"Try it locally\" no longer runs %s", want)
		}
	}

	var script strings.Builder
	script.WriteString("set -eu\nexec 2>&1\n")
	// Should a block fail, the emulator it started is stopped all the same.
	script.WriteString(`trap 'if [ -n "${CF_EMULATOR_PID:-}" ]; then kill "$CF_EMULATOR_PID" 2>/dev/null || true; fi' EXIT` + "\n")
	for i, s := range steps {
		fmt.Fprintf(&script, "printf '\\n@@docs-step %d@@\\n'\n%s", i, s.Code)
	}
	script.WriteString(`printf '\n@@docs-pid %s@@\n' "${CF_EMULATOR_PID:-}"` + "\n")

	home := t.TempDir()
	env := []string{
		"PATH=" + filepath.Dir(bin) + string(filepath.ListSeparator) + systemPath(),
		"HOME=" + home, "LC_ALL=C", "CF_SCOPED_TOKEN_LISTEN=127.0.0.1:0",
	}
	start := time.Now()
	out, err := runShell(t.Context(), home, env, "bash", "--noprofile", "--norc", "-c", script.String())
	t.Logf("the walk-through ran in %v", time.Since(start).Round(time.Millisecond))
	noSecrets(t, "the walk-through", out)

	got := map[int]string{}
	pid := ""
	marks := stepMarker.FindAllStringSubmatchIndex(out, -1)
	for i, m := range marks {
		end := len(out)
		if i+1 < len(marks) {
			end = marks[i+1][0]
		}
		label := out[m[2]:m[3]]
		if p, ok := strings.CutPrefix(label, "pid "); ok {
			pid = p
			continue
		}
		n, _ := strconv.Atoi(strings.TrimPrefix(label, "step "))
		got[n] = out[m[1]:end]
	}
	if err != nil {
		last := len(got) - 1
		if last < 0 {
			t.Fatalf("the walk-through did not start: %v\n%s", err, out)
		}
		t.Fatalf("README.md:%d: the block failed: %v\n%s", steps[last].Line, err, got[last])
	}
	for i, s := range steps {
		if diff := cmp.Diff(normalizeOutput(s.Want), normalizeOutput(got[i])); diff != "" {
			t.Errorf("README.md:%d: the output differs from the README's (-README +run):\n%s", s.Line, diff)
		}
	}

	if pid == "" {
		t.Fatal("the walk-through started no emulator (CF_EMULATOR_PID is empty)")
	}
	n, err := strconv.Atoi(pid)
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); alive(n); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			_ = syscall.Kill(n, syscall.SIGKILL)
			t.Fatalf("the emulator (pid %d) still runs after the walk-through's kill", n)
		}
	}
}

// alive reports whether process pid runs (a zombie does not count).
func alive(pid int) bool {
	if err := syscall.Kill(pid, 0); err != nil {
		return !errors.Is(err, syscall.ESRCH)
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	// pid (comm) STATE …; comm may hold spaces, so read after its last ")".
	rest := string(stat[strings.LastIndexByte(string(stat), ')')+1:])
	return !strings.HasPrefix(strings.TrimSpace(rest), "Z")
}

// TestReadmeParentSecret runs the API calls of README's "The parent secret"
// against the emulator (their https://api.cloudflare.com/client/v4 pointed
// at it), with the variables the README says the reader has. Creating the
// parent makes exactly what the README promises: account-owned, "Account
// API Tokens Write" alone on the one account, the IP condition, its own
// expiry. Such a parent cannot be used from elsewhere; made for this
// machine's address instead it grants what the cookbook asks for (and, as
// the README warns, anything else on its account), but nothing on another
// account and no token-making group. Rolling gives a new value and ends
// the old one; deleting removes the old parent; listing shows the account's
// tokens.
func TestReadmeParentSecret(t *testing.T) {
	t.Parallel()
	requireTools(t, "bash", "curl", "date")
	bin := mustDocsBinary(t)
	blocks := map[string]docStep{}
	for _, s := range readmeSteps(t, "The parent secret") {
		kind := ""
		switch {
		case strings.Contains(s.Code, "--data @-"):
			kind = "create"
		case strings.Contains(s.Code, "-X DELETE"):
			kind = "delete"
		case strings.Contains(s.Code, "-X PUT") && strings.Contains(s.Code, "/value"):
			kind = "roll"
		case strings.Contains(s.Code, "per_page"):
			kind = "list"
		default:
			t.Fatalf("README.md:%d: a block of \"The parent secret\" that this test does not know how to run", s.Line)
		}
		if _, dup := blocks[kind]; dup {
			t.Fatalf("README.md:%d: a second %s block", s.Line, kind)
		}
		blocks[kind] = s
	}
	for _, kind := range []string{"create", "delete", "roll", "list"} {
		if _, ok := blocks[kind]; !ok {
			t.Fatalf("\"The parent secret\" lost its %s call", kind)
		}
	}

	w := newDocsWorld(t)
	se := newSnippetEnv(t, w, writeStandIns(t))
	run := func(s docStep, vars map[string]string, edit func(string) string) string {
		t.Helper()
		code := strings.ReplaceAll(s.Code, "https://api.cloudflare.com/client/v4", w.apiURL)
		if edit != nil {
			code = edit(code)
		}
		vars["CLOUDFLARE_BOOTSTRAP_TOKEN"] = w.bootstrap
		vars["ACCOUNT_ID"] = docsAccount
		out, err := runShell(t.Context(), se.workDir, se.environ(vars), "bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", code)
		if err != nil {
			t.Fatalf("README.md:%d: %v\n%s", s.Line, err, out)
		}
		return out
	}
	// made finds the parent the create call made, by the value it answered.
	made := func(out string) emulator.Token {
		t.Helper()
		var answer struct {
			Result struct{ ID, Value string } `json:"result"`
		}
		if err := json.Unmarshal([]byte(out), &answer); err != nil {
			t.Fatalf("the create call's answer: %v\n%s", err, out)
		}
		for _, tok := range w.e.Tokens() {
			if tok.ID == answer.Result.ID && tok.Value == answer.Result.Value {
				return tok
			}
		}
		t.Fatalf("no token %s with the value answered", answer.Result.ID)
		return emulator.Token{}
	}
	// use runs exec with parent as the parent token and reports its error.
	use := func(parent, account, scopes string) error {
		cmd := exec.Command(bin, "exec", "--owner", "account", "--account-ids", account, "--scopes", scopes, "--", "true")
		cmd.Env = []string{"PATH=" + systemPath(), "CF_SCOPED_TOKEN_API_URL=" + w.apiURL, "CF_SCOPED_TOKEN_API_TOKEN=" + parent}
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("%w: %s", err, out)
		}
		return nil
	}

	// As the README writes it: usable only from 203.0.113.0/24.
	first := made(run(blocks["create"], map[string]string{}, nil))
	want := emulator.Token{
		Name: "CI parent of cf-scoped-token", Owner: "account", OwnerID: docsAccount, Status: "active",
		Policies: []emulator.Policy{{
			Effect:           "allow",
			PermissionGroups: []string{groupAccountTokensWrite},
			Resources:        map[string]string{"com.cloudflare.api.account." + docsAccount: "*"},
		}},
		AllowedIPs: []string{"203.0.113.0/24"},
	}
	ignore := func(tok emulator.Token) emulator.Token {
		tok.ID, tok.Value, tok.IssuedOn, tok.ModifiedOn, tok.ExpiresOn, tok.LastUsedOn = "", "", time.Time{}, time.Time{}, time.Time{}, time.Time{}
		for i := range tok.Policies {
			slices.Sort(tok.Policies[i].PermissionGroups)
		}
		return tok
	}
	slices.Sort(want.Policies[0].PermissionGroups)
	if diff := cmp.Diff(want, ignore(first)); diff != "" {
		t.Errorf("the parent the README makes (-want +got):\n%s", diff)
	}
	if days := time.Until(first.ExpiresOn).Hours() / 24; days < 89 || days > 91 {
		t.Errorf("the parent expires in %.1f days; the README says 90", days)
	}
	if err := use(first.Value, docsAccount, "apps-and-policies:write"); err == nil {
		t.Error("the parent restricted to 203.0.113.0/24 made a token from 127.0.0.1")
	}

	// The same call for this machine's address: a parent that works, for
	// exactly what it holds.
	second := made(run(blocks["create"], map[string]string{}, func(code string) string {
		return strings.ReplaceAll(code, "RUNNER_CIDR=203.0.113.0/24", "RUNNER_CIDR=127.0.0.1/32")
	}))
	for _, scopes := range []string{"apps-and-policies:write", "organizations:read", "Workers Scripts:write"} {
		if err := use(second.Value, docsAccount, scopes); err != nil {
			t.Errorf("the README's parent could not grant %s on its account: %v", scopes, err)
		}
	}
	if err := use(second.Value, otherAccount, "organizations:read"); err == nil {
		t.Error("the README's parent granted a token on another account")
	}
	if err := use(second.Value, docsAccount, "Account API Tokens:write"); err == nil {
		t.Error("a child that may make tokens was made")
	}

	// Roll: a new value; the old one is refused at once.
	out := run(blocks["roll"], map[string]string{"PARENT_ID": second.ID}, nil)
	var rolled struct {
		Result string `json:"result"`
	}
	if err := json.Unmarshal([]byte(out), &rolled); err != nil || rolled.Result == "" || rolled.Result == second.Value {
		t.Fatalf("the roll call answered no new value (%v):\n%s", err, out)
	}
	if err := use(second.Value, docsAccount, "apps-and-policies:write"); err == nil {
		t.Error("the rolled parent's old value still works")
	}
	if err := use(rolled.Result, docsAccount, "apps-and-policies:write"); err != nil {
		t.Errorf("the rolled parent's new value does not work: %v", err)
	}

	// Delete the old parent.
	run(blocks["delete"], map[string]string{"OLD_PARENT_ID": first.ID}, nil)
	for _, tok := range w.e.Tokens() {
		if tok.ID == first.ID {
			t.Errorf("token %s is still there after the README's delete", first.ID)
		}
	}

	// List: the account's tokens, the rolled parent among them.
	var listed struct {
		Success bool `json:"success"`
		Result  []struct {
			ID string `json:"id"`
		} `json:"result"`
	}
	out = run(blocks["list"], map[string]string{}, nil)
	if err := json.Unmarshal([]byte(out), &listed); err != nil || !listed.Success ||
		!slices.ContainsFunc(listed.Result, func(r struct {
			ID string `json:"id"`
		}) bool {
			return r.ID == second.ID
		}) {
		t.Errorf("the list call did not list the parent %s (%v):\n%s", second.ID, err, out)
	}
	if left := w.children(); len(left) != 1 || left[0].ID != second.ID {
		t.Errorf("tokens left: %d, want only the rolled parent", len(left))
	}
}
