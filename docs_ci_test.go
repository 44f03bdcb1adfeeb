//go:build unix

package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.yaml.in/yaml/v3"
)

// ciJob is one job of a CI cookbook file, as its CI system would run it.
type ciJob struct {
	System, File, Name string
	// Env is what the file gives the job: its variables, environment blocks.
	Env map[string]string
	// Secrets are the variables the CI system fills from its secret store:
	// with the parent token, in direct mode.
	Secrets []string
	Steps   []ciStep
	// IDTokens are GitLab's id_tokens: variable → audience.
	IDTokens map[string]string
}

// ciStep is a shell the CI system starts for the job, in order.
type ciStep struct {
	Name string
	// Shell is the shell and its options as the CI system runs a script.
	Shell   []string
	Script  string
	Env     map[string]string
	Secrets []string
}

// script is every step's script, for finding commands in.
func (j ciJob) script() string {
	var b strings.Builder
	for _, s := range j.Steps {
		b.WriteString(s.Script + "\n")
	}
	return b.String()
}

// keyless reports whether the job trades an OIDC token instead of holding
// the parent.
func (j ciJob) keyless() bool { return strings.Contains(j.script(), "--broker-url") }

// expand replaces $NAME and ${NAME} by the job's variables.
func (j ciJob) expand(s string) string {
	return os.Expand(s, func(k string) string { return j.Env[k] })
}

// The shells each CI system runs a script with: busybox sh (here dash) in
// the Alpine images of the GitLab and CircleCI examples, bash -e on a
// Buildkite agent, sh -xe in a Jenkins sh step, GitHub's bash.
var (
	shellPOSIX   = []string{"sh", "-e", "-c"}
	shellBash    = []string{"bash", "-e", "-c"}
	shellJenkins = []string{"sh", "-xe", "-c"}
	shellGitHub  = []string{"bash", "--noprofile", "--norc", "-eo", "pipefail", "-c"}
)

// ---- GitLab CI

func gitlabJobs(src []byte) ([]ciJob, error) {
	var doc map[string]any
	if err := yaml.Unmarshal(src, &doc); err != nil {
		return nil, err
	}
	vars, err := stringMap(doc["variables"])
	if err != nil {
		return nil, fmt.Errorf("variables: %w", err)
	}
	defaults, _ := doc["default"].(map[string]any)
	reserved := map[string]bool{"stages": true, "variables": true, "default": true, "include": true,
		"workflow": true, "image": true, "services": true, "before_script": true, "after_script": true, "cache": true}
	var jobs []ciJob
	for _, name := range sortedKeys(doc) {
		if reserved[name] || strings.HasPrefix(name, ".") {
			continue
		}
		job, ok := doc[name].(map[string]any)
		if !ok || job["script"] == nil {
			return nil, fmt.Errorf("%s: not a job with a script", name)
		}
		before := job["before_script"]
		if before == nil {
			before = defaults["before_script"]
		}
		lines, err := stringList(before)
		if err != nil {
			return nil, fmt.Errorf("%s: before_script: %w", name, err)
		}
		script, err := stringList(job["script"])
		if err != nil {
			return nil, fmt.Errorf("%s: script: %w", name, err)
		}
		jobVars, err := stringMap(job["variables"])
		if err != nil {
			return nil, fmt.Errorf("%s: variables: %w", name, err)
		}
		idTokens := map[string]string{}
		if ids, ok := job["id_tokens"].(map[string]any); ok {
			for v, spec := range ids {
				m, _ := spec.(map[string]any)
				aud, ok := m["aud"].(string)
				if !ok {
					return nil, fmt.Errorf("%s: id_tokens.%s: aud is not a string", name, v)
				}
				idTokens[v] = aud
			}
		}
		jobs = append(jobs, ciJob{
			System: "gitlab", Name: name, Env: merged(vars, jobVars), IDTokens: idTokens,
			// The project's masked, protected CI/CD variable (the file's header).
			Secrets: []string{"CF_SCOPED_TOKEN_API_TOKEN"},
			// GitLab runs before_script and script as one shell script.
			Steps: []ciStep{{Name: "script", Shell: shellPOSIX, Script: strings.Join(append(lines, script...), "\n")}},
		})
	}
	return jobs, nil
}

// ---- Buildkite

// buildkiteDollar finds a $ that is not written $$: Buildkite interpolates
// it when the pipeline is uploaded, from the uploader's environment.
var buildkiteDollar = regexp.MustCompile(`\$`)

func buildkiteJobs(src []byte) ([]ciJob, error) {
	var doc struct {
		Env   map[string]string `yaml:"env"`
		Steps []map[string]any  `yaml:"steps"`
	}
	if err := yaml.Unmarshal(src, &doc); err != nil {
		return nil, err
	}
	var jobs []ciJob
	for i, st := range doc.Steps {
		label, _ := st["label"].(string)
		cmds := st["commands"]
		if cmds == nil {
			cmds = st["command"]
		}
		lines, err := stringList(cmds)
		if err != nil {
			return nil, fmt.Errorf("step %d (%s): %w", i, label, err)
		}
		if len(lines) == 0 {
			return nil, fmt.Errorf("step %d (%s): no command", i, label)
		}
		script := strings.Join(lines, "\n")
		if buildkiteDollar.MatchString(strings.ReplaceAll(script, "$$", "")) {
			return nil, fmt.Errorf("step %q: a $ not written $$ is replaced when the pipeline is uploaded, not when the job runs", label)
		}
		stepEnv, err := stringMap(st["env"])
		if err != nil {
			return nil, fmt.Errorf("step %q: env: %w", label, err)
		}
		jobs = append(jobs, ciJob{
			System: "buildkite", Name: label, Env: merged(doc.Env, stepEnv),
			// The agent runs the step's commands as one script; the parent
			// comes from buildkite-agent secret get, in the script.
			Steps: []ciStep{{Name: "command", Shell: shellBash, Script: strings.ReplaceAll(script, "$$", "$")}},
		})
	}
	return jobs, nil
}

// ---- CircleCI

func circleciJobs(src []byte) ([]ciJob, error) {
	var doc struct {
		Commands map[string]struct {
			Steps []any `yaml:"steps"`
		} `yaml:"commands"`
		Jobs map[string]struct {
			Environment map[string]string `yaml:"environment"`
			Steps       []any             `yaml:"steps"`
		} `yaml:"jobs"`
		Workflows map[string]struct {
			Jobs []any `yaml:"jobs"`
		} `yaml:"workflows"`
	}
	if err := yaml.Unmarshal(src, &doc); err != nil {
		return nil, err
	}
	// A job run with a context gets the context's variables: the parent.
	contexts := map[string]bool{}
	for _, wf := range doc.Workflows {
		for _, j := range wf.Jobs {
			if m, ok := j.(map[string]any); ok {
				for name, spec := range m {
					if s, ok := spec.(map[string]any); ok && s["context"] != nil {
						contexts[name] = true
					}
				}
			}
		}
	}
	var expand func(steps []any, depth int) ([]ciStep, error)
	expand = func(steps []any, depth int) ([]ciStep, error) {
		if depth > 5 {
			return nil, errors.New("commands nest too deep")
		}
		var out []ciStep
		for _, s := range steps {
			var name string
			var params any
			switch s := s.(type) {
			case string:
				name = s
			case map[string]any:
				if len(s) != 1 {
					return nil, fmt.Errorf("a step with %d keys", len(s))
				}
				for k, v := range s {
					name, params = k, v
				}
			}
			switch name {
			case "checkout":
			case "run":
				st := ciStep{Shell: shellPOSIX}
				switch p := params.(type) {
				case string:
					st.Script = p
				case map[string]any:
					st.Script, _ = p["command"].(string)
					st.Name, _ = p["name"].(string)
					env, err := stringMap(p["environment"])
					if err != nil {
						return nil, err
					}
					st.Env = env
				}
				if st.Script == "" {
					return nil, errors.New("a run step without a command")
				}
				out = append(out, st)
			default:
				cmd, ok := doc.Commands[name]
				if !ok {
					return nil, fmt.Errorf("step %q: no such command", name)
				}
				sub, err := expand(cmd.Steps, depth+1)
				if err != nil {
					return nil, fmt.Errorf("%s: %w", name, err)
				}
				out = append(out, sub...)
			}
		}
		return out, nil
	}
	var jobs []ciJob
	for _, name := range sortedKeys(doc.Jobs) {
		steps, err := expand(doc.Jobs[name].Steps, 0)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		j := ciJob{System: "circleci", Name: name, Env: doc.Jobs[name].Environment, Steps: steps}
		if contexts[name] {
			j.Secrets = []string{"CF_SCOPED_TOKEN_API_TOKEN"}
		}
		jobs = append(jobs, j)
	}
	return jobs, nil
}

// ---- Jenkins

var (
	jenkinsStage   = regexp.MustCompile(`stage\('([^']+)'\)\s*\{`)
	jenkinsEnvLine = regexp.MustCompile(`(?m)^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*'([^']*)'`)
	jenkinsCredVar = regexp.MustCompile(`withCredentials\(\[string\(credentialsId:\s*'[^']+',\s*variable:\s*'([^']+)'\)\]\)`)
	jenkinsSh      = regexp.MustCompile(`\bsh\s*(?:\(\s*(?:script:\s*)?)?(['"])`)
)

// jenkinsJobs reads a declarative Jenkinsfile: the pipeline's environment,
// and per stage its withCredentials variables and sh steps. A stage that
// runs cf-scoped-token exec is a job, after the stages before it that do
// not (the install).
func jenkinsJobs(src []byte) ([]ciJob, error) {
	text := string(src)
	env := map[string]string{}
	if i := strings.Index(text, "environment {"); i >= 0 {
		end := strings.IndexByte(text[i:], '}')
		for _, m := range jenkinsEnvLine.FindAllStringSubmatch(text[i:i+end], -1) {
			env[m[1]] = m[2]
		}
	}
	stages := jenkinsStage.FindAllStringSubmatchIndex(text, -1)
	if len(stages) == 0 {
		return nil, errors.New("no stage")
	}
	var setup []ciStep
	var jobs []ciJob
	for i, m := range stages {
		end := len(text)
		if i+1 < len(stages) {
			end = stages[i+1][0]
		}
		name, body := text[m[2]:m[3]], text[m[1]:end]
		var secrets []string
		for _, c := range jenkinsCredVar.FindAllStringSubmatch(body, -1) {
			secrets = append(secrets, c[1])
		}
		var steps []ciStep
		for pos := 0; ; {
			loc := jenkinsSh.FindStringSubmatchIndex(body[pos:])
			if loc == nil {
				break
			}
			script, next, err := groovyString(body, pos+loc[2])
			if err != nil {
				return nil, fmt.Errorf("stage %q: %w", name, err)
			}
			steps = append(steps, ciStep{Name: name, Shell: shellJenkins, Script: script, Secrets: secrets})
			pos = next
		}
		if !slices.ContainsFunc(steps, func(s ciStep) bool { return strings.Contains(s.Script, "cf-scoped-token exec") }) {
			setup = append(setup, steps...)
			continue
		}
		jobs = append(jobs, ciJob{System: "jenkins", Name: name, Env: env, Steps: append(slices.Clone(setup), steps...)})
	}
	return jobs, nil
}

// groovyString reads the single-quoted Groovy string literal (in three quotes or one)
// that starts at s[i], with Groovy's escapes, and returns its value and the
// index after it. A double-quoted one is refused: Groovy interpolates it,
// so a secret in it would be on the command line.
func groovyString(s string, i int) (string, int, error) {
	delim := "'"
	switch {
	case strings.HasPrefix(s[i:], "'''"):
		delim = "'''"
	case s[i] == '"':
		return "", 0, errors.New("a double-quoted sh string: Groovy would interpolate it")
	}
	var b strings.Builder
	for j := i + len(delim); j < len(s); j++ {
		if strings.HasPrefix(s[j:], delim) {
			return b.String(), j + len(delim), nil
		}
		c := s[j]
		switch {
		case c == '\\' && j+1 < len(s):
			j++
			switch s[j] {
			case '\\', '\'', '"', '$':
				b.WriteByte(s[j])
			case 'n':
				b.WriteByte('\n')
			case 't':
				b.WriteByte('\t')
			case '\n': // a line continuation: Groovy drops both
			default:
				return "", 0, fmt.Errorf("\\%c is no Groovy escape", s[j])
			}
		case c == '\n' && delim == "'":
			return "", 0, errors.New("a newline in a single-quoted string")
		default:
			b.WriteByte(c)
		}
	}
	return "", 0, errors.New("an unterminated string")
}

// ---- GitHub Actions

var githubSecret = regexp.MustCompile(`^\$\{\{\s*secrets\.([A-Za-z0-9_]+)\s*\}\}$`)

// githubJobs reads a workflow's run steps. Every one must say shell: bash
// (Windows runners default to PowerShell); an env value may be a secret;
// no other expression is read (the docs pass values through env:).
func githubJobs(src []byte) ([]ciJob, error) {
	type step struct {
		Name  string            `yaml:"name"`
		Uses  string            `yaml:"uses"`
		Run   string            `yaml:"run"`
		Shell string            `yaml:"shell"`
		Env   map[string]string `yaml:"env"`
	}
	var doc struct {
		Env  map[string]string `yaml:"env"`
		Jobs map[string]struct {
			Env   map[string]string `yaml:"env"`
			Steps []step            `yaml:"steps"`
		} `yaml:"jobs"`
	}
	if err := yaml.Unmarshal(src, &doc); err != nil {
		return nil, err
	}
	values := func(in map[string]string) (map[string]string, []string, error) {
		out := map[string]string{}
		var secrets []string
		for k, v := range in {
			switch {
			case githubSecret.MatchString(v):
				secrets = append(secrets, k)
			case strings.Contains(v, "${{"):
				return nil, nil, fmt.Errorf("env %s: expression %q", k, v)
			default:
				out[k] = v
			}
		}
		return out, secrets, nil
	}
	var jobs []ciJob
	for _, name := range sortedKeys(doc.Jobs) {
		job := doc.Jobs[name]
		env, secrets, err := values(merged(doc.Env, job.Env))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		j := ciJob{System: "github", Name: name, Env: env, Secrets: secrets}
		for _, st := range job.Steps {
			if st.Run == "" {
				continue // uses: steps; their tools are stand-ins here
			}
			if st.Shell != "bash" {
				return nil, fmt.Errorf("%s: step %q: shell %q; macOS and Windows need shell: bash", name, st.Name, st.Shell)
			}
			if strings.Contains(st.Run, "${{") {
				return nil, fmt.Errorf("%s: step %q: an expression in run: (pass it through env:)", name, st.Name)
			}
			stepEnv, stepSecrets, err := values(st.Env)
			if err != nil {
				return nil, fmt.Errorf("%s: step %q: %w", name, st.Name, err)
			}
			j.Steps = append(j.Steps, ciStep{Name: st.Name, Shell: shellGitHub, Script: st.Run, Env: stepEnv, Secrets: stepSecrets})
		}
		jobs = append(jobs, j)
	}
	return jobs, nil
}

// ---- running a job

// runCIJob runs a job's steps as its CI system would: each a shell of its
// own, in the work directory, with the system's own variables, the job's,
// the secrets filled with the parent, and the release URL pointed at rel.
func runCIJob(t *testing.T, j ciJob, se *snippetEnv, rel *fakeRelease) (string, error) {
	t.Helper()
	work := se.workDir
	predefined := map[string]map[string]string{
		"gitlab":    {"CI": "true", "GITLAB_CI": "true", "CI_PROJECT_DIR": work, "CI_COMMIT_BRANCH": "main", "CI_DEFAULT_BRANCH": "main"},
		"buildkite": {"CI": "true", "BUILDKITE": "true", "BUILDKITE_BUILD_CHECKOUT_PATH": work, "BUILDKITE_BRANCH": "main"},
		"circleci":  {"CI": "true", "CIRCLECI": "true", "CIRCLE_WORKING_DIRECTORY": work, "CIRCLE_BRANCH": "main"},
		"jenkins":   {"JENKINS_URL": "https://jenkins.example.com/", "WORKSPACE": work, "BRANCH_NAME": "main"},
		"github": {"CI": "true", "GITHUB_ACTIONS": "true", "GITHUB_WORKSPACE": work, "RUNNER_OS": "Linux", "RUNNER_ARCH": hostArch(),
			"RUNNER_TEMP": t.TempDir(), "GITHUB_PATH": filepath.Join(t.TempDir(), "path"),
			"DOCS_TEST_COSIGN_IDENTITY": "https://github.com/cf-scoped-token/cf-scoped-token/.github/workflows/release.yml@refs/tags/" + j.Env["CF_SCOPED_TOKEN_VERSION"]},
	}[j.System]
	var out strings.Builder
	var pathDirs []string
	for _, st := range j.Steps {
		vars := merged(predefined, j.Env, st.Env)
		for _, s := range append(slices.Clone(j.Secrets), st.Secrets...) {
			vars[s] = se.w.parent
		}
		fmt.Fprintf(&out, "== %s\n", st.Name)
		script := strings.ReplaceAll(st.Script, releaseURL, rel.url)
		o, err := runShell(t.Context(), work, se.environ(vars, pathDirs...), append(slices.Clone(st.Shell), script)...)
		out.WriteString(o)
		if err != nil {
			return out.String(), fmt.Errorf("step %q: %w", st.Name, err)
		}
		if f := predefined["GITHUB_PATH"]; f != "" {
			b, _ := os.ReadFile(f)
			for _, dir := range strings.Fields(string(b)) {
				if !slices.Contains(pathDirs, dir) {
					pathDirs = append([]string{dir}, pathDirs...)
				}
			}
		}
	}
	return out.String(), nil
}

// ---- the test

// TestCICookbook reads the CI cookbook (docs/ci/*, and the macOS and
// Windows workflow) as each CI system reads it, then:
//   - checks every shell step with sh -n or bash -n, whichever shell runs it;
//   - checks every flag given to cf-scoped-token against its --help (in
//     keyless jobs too: --broker-url and --oidc-token-env must exist);
//   - checks each keyless job asks its CI system for an OIDC token whose
//     audience is the broker URL it passes, in the variable it names;
//   - runs each direct-mode job for real: its install steps against a
//     loopback copy of the release (the binary under test, SHA256SUMS), its
//     cf-scoped-token commands against the emulator, with stand-ins for
//     terraform, wrangler, buildkite-agent and cosign. The job must pass, the
//     command must get a child token with exactly the group the example asks
//     for and never the parent, no token may be printed, and none left;
//   - runs each direct-mode job again with a SHA256SUMS that does not match:
//     the job must fail before any token is made.
func TestCICookbook(t *testing.T) {
	t.Parallel()
	requireTools(t, "sh", "bash", "curl", "wget", "sha256sum")
	bin := mustDocsBinary(t)
	files := []struct {
		path  string
		parse func([]byte) ([]ciJob, error)
	}{
		{"docs/ci/gitlab-ci.yml", gitlabJobs},
		{"docs/ci/buildkite-pipeline.yml", buildkiteJobs},
		{"docs/ci/circleci-config.yml", circleciJobs},
		{"docs/ci/Jenkinsfile", jenkinsJobs},
		{"docs/examples/macos-windows.yml", githubJobs},
	}
	var jobs []ciJob
	var paths []string
	for _, f := range files {
		paths = append(paths, f.path)
		src, err := os.ReadFile(f.path)
		if err != nil {
			t.Fatal(err)
		}
		js, err := f.parse(src)
		if err != nil {
			t.Fatalf("%s: %v", f.path, err)
		}
		var direct, keyless int
		for i := range js {
			js[i].File = f.path
			if js[i].keyless() {
				keyless++
			} else {
				direct++
			}
		}
		if direct == 0 || keyless == 0 {
			t.Errorf("%s: %d direct and %d keyless jobs; the cookbook shows both", f.path, direct, keyless)
		}
		jobs = append(jobs, js...)
	}

	t.Run("syntax", func(t *testing.T) {
		t.Parallel()
		for _, j := range jobs {
			for _, st := range j.Steps {
				if out, err := runShell(t.Context(), t.TempDir(), []string{"PATH=" + systemPath()}, st.Shell[0], "-n", "-c", st.Script); err != nil {
					t.Errorf("%s, %s, step %q: %s -n: %v\n%s", j.File, j.Name, st.Name, st.Shell[0], err, out)
				}
			}
		}
	})

	t.Run("flags", func(t *testing.T) {
		t.Parallel()
		fc := &flagChecker{bin: bin}
		for _, j := range jobs {
			checkFlags(t, fc, j.File+", "+j.Name, j.script())
		}
	})

	t.Run("keyless", func(t *testing.T) {
		t.Parallel()
		for _, j := range jobs {
			if !j.keyless() {
				continue
			}
			if err := checkKeyless(j); err != nil {
				t.Errorf("%s, %s: %v", j.File, j.Name, err)
			}
		}
	})

	for _, j := range jobs {
		if j.keyless() {
			continue
		}
		t.Run("run/"+j.File+"/"+j.Name, func(t *testing.T) {
			t.Parallel()
			w := newDocsWorld(t)
			se := newSnippetEnv(t, w, writeStandIns(t))
			rel := newFakeRelease(t, bin, false)
			out, err := runCIJob(t, j, se, rel)
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			noSecrets(t, "the job", out)
			tags := rel.requestedTags()
			if len(tags) == 0 {
				t.Error("the job did not download the release")
			}
			for _, tag := range tags {
				if !regexp.MustCompile(`^v\d+\.\d+\.\d+$`).MatchString(tag) || tag != j.Env["CF_SCOPED_TOKEN_VERSION"] {
					t.Errorf("the job downloaded release %q; want CF_SCOPED_TOKEN_VERSION, a tag release.yml builds (vX.Y.Z)", tag)
				}
			}
			wantLine, wantGroups := "terraform apply infra/access account="+docsAccount, []string{groupAppsWrite}
			if strings.Contains(j.script(), "wrangler") {
				wantLine, wantGroups = "wrangler deploy account="+docsAccount, []string{groupWorkersWrite}
			}
			if log := se.logLines(); !slices.Contains(log, wantLine) {
				t.Errorf("the stand-ins did not do %q; they did %q\n%s", wantLine, log, out)
			}
			if diff := cmp.Diff([][]string{wantGroups}, w.createdGroups()); diff != "" {
				t.Errorf("permission groups of the tokens created (-want +got):\n%s", diff)
			}
			if left := w.children(); len(left) > 0 {
				t.Errorf("%d token(s) left after the job: %+v", len(left), left)
			}
		})
		t.Run("corrupt download/"+j.File+"/"+j.Name, func(t *testing.T) {
			t.Parallel()
			w := newDocsWorld(t)
			se := newSnippetEnv(t, w, writeStandIns(t))
			out, err := runCIJob(t, j, se, newFakeRelease(t, bin, true))
			if err == nil {
				t.Fatalf("the job passed with a binary that does not match SHA256SUMS:\n%s", out)
			}
			if got := w.createdGroups(); len(got) > 0 {
				t.Errorf("the job made %d token(s) with a binary that does not match SHA256SUMS", len(got))
			}
		})
	}

	t.Run("release.yml", func(t *testing.T) {
		t.Parallel()
		b, err := os.ReadFile(".github/workflows/release.yml")
		if err != nil {
			t.Fatal(err)
		}
		// What the cookbook downloads and verifies is what release.yml makes.
		for _, want := range []string{
			`-o "dist/cf-scoped-token_${os}_${arch}${ext}"`,
			`sha256sum cf-scoped-token_* > SHA256SUMS`,
			`cosign sign-blob --yes --bundle dist/SHA256SUMS.bundle dist/SHA256SUMS`,
			`--certificate-identity "${GITHUB_SERVER_URL}/${GITHUB_REPOSITORY}/.github/workflows/release.yml@${GITHUB_REF}"`,
			`"$RUNNER_TEMP"/dist/cf-scoped-token_* "$RUNNER_TEMP/dist/SHA256SUMS" "$RUNNER_TEMP/dist/SHA256SUMS.bundle"`,
			`tags: ['v[0-9]+.[0-9]+.[0-9]+']`,
		} {
			if !strings.Contains(string(b), want) {
				t.Errorf("release.yml no longer has %s", want)
			}
		}
		// Every asset name the docs give is one release.yml makes.
		named := regexp.MustCompile(`cf-scoped-token_[a-z0-9]+_[a-z0-9]+(\.exe)?`)
		for _, f := range append([]string{"README.md"}, paths...) {
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			for _, name := range named.FindAllString(string(src), -1) {
				if !releaseAsset.MatchString(name) {
					t.Errorf("%s names %s, which no release has", f, name)
				}
			}
		}
	})
}

// assignment finds NAME=… (or export NAME=…) with its continuation lines.
func assignment(script, name string) string {
	re := regexp.MustCompile(`(?m)^\s*(?:export\s+)?` + regexp.QuoteMeta(name) + `=(.*(?:\\\n.*)*)`)
	if m := re.FindStringSubmatch(script); m != nil {
		return m[1]
	}
	return ""
}

// checkKeyless checks a keyless job's one exec: an https broker URL, no
// --owner or --api-url (the broker decides them), and an OIDC token that
// the job's CI system issues for that URL as audience, in the variable
// --oidc-token-env names.
func checkKeyless(j ciJob) error {
	invs, err := invocations(j.script())
	if err != nil {
		return err
	}
	invs = slices.DeleteFunc(invs, func(inv invocation) bool { return inv.Sub != "exec" })
	if len(invs) != 1 {
		return fmt.Errorf("%d exec commands; want 1", len(invs))
	}
	inv := invs[0]
	url := j.expand(inv.flagValue("--broker-url"))
	name := inv.flagValue("--oidc-token-env")
	switch {
	case !strings.HasPrefix(url, "https://"):
		return fmt.Errorf("--broker-url %q: not an https URL", url)
	case name == "":
		return errors.New("no --oidc-token-env")
	case slices.Contains(inv.Flags, "--owner") || slices.Contains(inv.Flags, "--api-url"):
		return errors.New("--owner or --api-url in keyless mode, where the broker decides them")
	}
	switch j.System {
	case "gitlab":
		aud, ok := j.IDTokens[name]
		if !ok {
			return fmt.Errorf("--oidc-token-env %s, but id_tokens: has no %s", name, name)
		}
		if j.expand(aud) != url {
			return fmt.Errorf("id_tokens.%s.aud is %q; the broker URL is %q", name, j.expand(aud), url)
		}
	case "jenkins":
		// The id-token credential's audience is set in Jenkins; the stage
		// must bind it to the variable.
		if !slices.ContainsFunc(j.Steps, func(s ciStep) bool { return slices.Contains(s.Secrets, name) }) {
			return fmt.Errorf("--oidc-token-env %s, which no withCredentials binds", name)
		}
	default:
		a := assignment(j.script(), name)
		if a == "" {
			return fmt.Errorf("--oidc-token-env %s, which the job never sets", name)
		}
		if !strings.Contains(j.expand(a), url) {
			return fmt.Errorf("%s is requested as %s, not for the audience %s", name, a, url)
		}
	}
	return nil
}

// ---- YAML helpers

func stringList(v any) ([]string, error) {
	switch v := v.(type) {
	case nil:
		return nil, nil
	case string:
		return []string{v}, nil
	case []any:
		out := make([]string, 0, len(v))
		for _, e := range v {
			s, ok := e.(string)
			if !ok {
				return nil, fmt.Errorf("%v is not a string", e)
			}
			out = append(out, s)
		}
		return out, nil
	}
	return nil, fmt.Errorf("%v is neither a string nor a list", v)
}

func stringMap(v any) (map[string]string, error) {
	out := map[string]string{}
	m, ok := v.(map[string]any)
	if v != nil && !ok {
		return nil, fmt.Errorf("%v is not a map", v)
	}
	for k, e := range m {
		s, ok := e.(string)
		if !ok {
			return nil, fmt.Errorf("%s: %v is not a string", k, e)
		}
		out[k] = s
	}
	return out, nil
}

func merged(ms ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range ms {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// TestTerraformStandIn keeps the docs tests' terraform stand-in honest where
// no terraform is installed (as on CI): docs/terraform/main.tf manages one
// resource, the reusable Access policy whose request the stand-in sends, with
// the values it sends, so a change to main.tf that needs other permissions
// fails here rather than passing against a stand-in that no longer matches.
func TestTerraformStandIn(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile(filepath.Join("docs", "terraform", "main.tf"))
	if err != nil {
		t.Fatal(err)
	}
	tf := string(b)
	if got := regexp.MustCompile(`(?m)^resource "([^"]+)"`).FindAllStringSubmatch(tf, -1); len(got) != 1 || got[0][1] != "cloudflare_zero_trust_access_policy" {
		t.Errorf("main.tf resources %q: want one cloudflare_zero_trust_access_policy (what the stand-in creates, on the apps-and-policies scope)", got)
	}
	standIn := standIns["terraform"]
	for _, v := range []struct{ attr, value string }{
		{"name", "Employees"}, {"decision", "allow"}, {"session_duration", "12h"},
	} {
		if !regexp.MustCompile(`(?m)^\s*` + v.attr + `\s*=\s*"` + regexp.QuoteMeta(v.value) + `"$`).MatchString(tf) {
			t.Errorf("main.tf: no %s = %q, which the stand-in sends", v.attr, v.value)
		}
		if !strings.Contains(standIn, fmt.Sprintf("%q: %q", v.attr, v.value)) {
			t.Errorf("the terraform stand-in does not send %s %q", v.attr, v.value)
		}
	}
	if !regexp.MustCompile(`(?s)variable "email_domain" \{[^}]*default\s*=\s*"example\.com"`).MatchString(tf) ||
		!strings.Contains(standIn, `"email_domain": {"domain": "example.com"}`) {
		t.Error(`main.tf's email_domain default and the stand-in's include domain differ from "example.com"`)
	}
}

// TestTerraformExample checks docs/terraform/main.tf is valid, formatted
// HCL with terraform fmt, where terraform is installed (its provider, for
// validate, would need the registry).
func TestTerraformExample(t *testing.T) {
	t.Parallel()
	requireTools(t, "terraform")
	env := []string{"PATH=" + systemPath(), "HOME=" + t.TempDir(), "CHECKPOINT_DISABLE=1"}
	if out, err := runShell(t.Context(), ".", env, "terraform", "fmt", "-check", "-diff", "docs/terraform"); err != nil {
		t.Errorf("terraform fmt -check docs/terraform: %v\n%s", err, out)
	}
}
