package ghaction_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/cf-scoped-token/cf-scoped-token/internal/ghaction"
)

// env returns a getenv over a fixed map, so tests never read the process environment.
func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// fileEnv returns an environment whose four file-command variables point at fresh empty files
// in a temporary directory, as the runner provides them (reference/github-runner.md §5).
func fileEnv(t *testing.T) map[string]string {
	t.Helper()
	dir := t.TempDir()
	m := map[string]string{}
	for _, v := range []string{"GITHUB_OUTPUT", "GITHUB_STATE", "GITHUB_ENV", "GITHUB_STEP_SUMMARY"} {
		p := filepath.Join(dir, strings.ToLower(v))
		if err := os.WriteFile(p, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		m[v] = p
	}
	return m
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestInputEnvName(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, want string }{
		{"api-token", "INPUT_API-TOKEN"},
		{"account-ids", "INPUT_ACCOUNT-IDS"},
		{"my input", "INPUT_MY_INPUT"},
		{"a.b", "INPUT_A.B"},
		{"Mixed Case-x", "INPUT_MIXED_CASE-X"},
	} {
		if got := ghaction.InputEnvName(tc.name); got != tc.want {
			t.Errorf("InputEnvName(%q) = %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestInput(t *testing.T) {
	t.Parallel()
	a := ghaction.New(env(map[string]string{
		"INPUT_API-TOKEN": "  secret\n",
		"INPUT_API_TOKEN": "wrong: hyphens must stay",
		"INPUT_MY_INPUT":  "x",
		"INPUT_EMPTY":     "",
	}), &bytes.Buffer{})
	for _, tc := range []struct{ name, want string }{
		{"api-token", "secret"},
		{"my input", "x"},
		{"empty", ""},
		{"absent", ""},
	} {
		if got := a.Input(tc.name); got != tc.want {
			t.Errorf("Input(%q) = %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestState(t *testing.T) {
	t.Parallel()
	a := ghaction.New(env(map[string]string{
		"STATE_token-id": " abc \n",
		"STATE_TOKEN-ID": "upper-cased: wrong",
	}), &bytes.Buffer{})
	// §2: the name is verbatim, and the value is returned exactly as saved.
	if got, want := a.State("token-id"), " abc \n"; got != want {
		t.Errorf("State(token-id) = %q, want %q", got, want)
	}
	if got := a.State("absent"); got != "" {
		t.Errorf("State(absent) = %q, want empty", got)
	}
}

func TestMask(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, value, want string }{
		{"plain", "cfut_abc", "::add-mask::cfut_abc\n"},
		// §4: a raw newline would end the command line; escaped, one command masks all lines.
		{"multi-line", "line1\nline2\r\nline3", "::add-mask::line1%0Aline2%0D%0Aline3\n"},
		{"percent first", "a%0Ab", "::add-mask::a%250Ab\n"},
		{"colons stay in data", "a::b,c", "::add-mask::a::b,c\n"},
		{"empty", "", ""},
		{"whitespace", " \t\n", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var out bytes.Buffer
			a := ghaction.New(env(nil), &out)
			a.Mask(tc.value)
			if diff := cmp.Diff(tc.want, out.String()); diff != "" {
				t.Errorf("Mask(%q) wrote (-want +got):\n%s", tc.value, diff)
			}
			if err := a.Err(); err != nil {
				t.Errorf("Err() = %v", err)
			}
		})
	}
}

func TestAnnotations(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	a := ghaction.New(env(nil), &out)
	a.Debugf("d %d", 1)
	a.Noticef("n %s", "x")
	a.Warningf("w")
	a.Errorf("e: %s", "two\nlines 100%")
	// Reaching this line proves Errorf did not exit, unlike the library's Fatalf.
	want := "::debug::d 1\n::notice::n x\n::warning::w\n::error::e: two%0Alines 100%25\n"
	if diff := cmp.Diff(want, out.String()); diff != "" {
		t.Errorf("annotations (-want +got):\n%s", diff)
	}
}

// failWriter fails every write, like a closed stdout.
type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("broken pipe") }

func TestMaskFailureBlocksFileCommands(t *testing.T) {
	t.Parallel()
	m := fileEnv(t)
	a := ghaction.New(env(m), failWriter{})
	a.Noticef("dropped, but no panic")
	a.Mask("cfut_secret")
	if a.Err() == nil {
		t.Fatal("Err() = nil after a failed Mask")
	}
	err := a.SetOutput("token", "cfut_secret")
	if !errors.Is(err, ghaction.ErrMaskFailed) {
		t.Fatalf("SetOutput after failed Mask: err = %v, want ErrMaskFailed", err)
	}
	if got := readFile(t, m["GITHUB_OUTPUT"]); got != "" {
		t.Errorf("GITHUB_OUTPUT = %q, want nothing written", got)
	}
}

// writers lists the three key-value file commands with the variable each one writes.
var writers = []struct {
	command, fileVar string
	write            func(a *ghaction.Action, name, value string) error
}{
	{"set output", "GITHUB_OUTPUT", (*ghaction.Action).SetOutput},
	{"save state", "GITHUB_STATE", (*ghaction.Action).SaveState},
	{"set env", "GITHUB_ENV", (*ghaction.Action).SetEnv},
}

func TestFileCommandWritesHeredoc(t *testing.T) {
	t.Parallel()
	for _, w := range writers {
		t.Run(w.fileVar, func(t *testing.T) {
			t.Parallel()
			m := fileEnv(t)
			a := ghaction.New(env(m), &bytes.Buffer{})
			if err := w.write(a, "token-id", "abc"); err != nil {
				t.Fatal(err)
			}
			// The delimiter inside a line, or with a "\r", does not end the heredoc (§3.4).
			tricky := "x" + ghaction.Delimiter + "\n" + ghaction.Delimiter + "\r\n"
			if err := w.write(a, "b", tricky); err != nil {
				t.Fatal(err)
			}
			d := ghaction.Delimiter
			want := "token-id<<" + d + "\nabc\n" + d + "\n" + "b<<" + d + "\n" + tricky + "\n" + d + "\n"
			if diff := cmp.Diff(want, readFile(t, m[w.fileVar])); diff != "" {
				t.Errorf("%s (-want +got):\n%s", w.fileVar, diff)
			}
		})
	}
}

func TestFileCommandNotSet(t *testing.T) {
	t.Parallel()
	a := ghaction.New(env(nil), &bytes.Buffer{})
	for _, w := range writers {
		// The library would panic on OpenFile(""); this must be an error naming all three.
		err := w.write(a, "token-id", "v")
		if !errors.Is(err, ghaction.ErrNotSet) {
			t.Fatalf("%s: err = %v, want ErrNotSet", w.command, err)
		}
		for _, part := range []string{w.command, `"token-id"`, w.fileVar} {
			if !strings.Contains(err.Error(), part) {
				t.Errorf("%s: error %q does not name %s", w.command, err, part)
			}
		}
	}
	if err := a.AddStepSummary("x"); !errors.Is(err, ghaction.ErrNotSet) {
		t.Errorf("AddStepSummary: err = %v, want ErrNotSet", err)
	}
}

func TestFileCommandWriteFailure(t *testing.T) {
	t.Parallel()
	// A path the library cannot open: it would panic; the layer returns an error.
	dir := t.TempDir()
	a := ghaction.New(env(map[string]string{"GITHUB_OUTPUT": dir, "GITHUB_STEP_SUMMARY": dir}), &bytes.Buffer{})
	err := a.SetOutput("token", "cfut_secret_value")
	var fe *ghaction.FileCommandError
	if !errors.As(err, &fe) || fe.Command != "set output" || fe.Name != "token" {
		t.Fatalf("SetOutput to a directory: err = %#v, want *FileCommandError for set output \"token\"", err)
	}
	if strings.Contains(err.Error(), "cfut_secret_value") {
		t.Errorf("error %q contains the value", err)
	}
	if err := a.AddStepSummary("x"); err == nil {
		t.Error("AddStepSummary to a directory: err = nil")
	}
}

func TestFileCommandRefused(t *testing.T) {
	t.Parallel()
	const secret = "cfut_SECRET_must_not_leak"
	for _, tc := range []struct {
		name, key, value string
		want             error
	}{
		{"empty name", "", "v", ghaction.ErrInvalidName},
		{"name with =", "a=b", "v", ghaction.ErrInvalidName},
		{"name with <<", "a<<b", "v", ghaction.ErrInvalidName},
		{"name ending in <", "a<", "v", ghaction.ErrInvalidName},
		{"name with newline", "a\nb", "v", ghaction.ErrInvalidName},
		{"name with CR", "a\r", "v", ghaction.ErrInvalidName},
		{"name with BOM", "\uFEFFa", "v", ghaction.ErrInvalidName},
		{"name not UTF-8", "a\xff", "v", ghaction.ErrInvalidName},
		{"value is the delimiter", "k", ghaction.Delimiter, ghaction.ErrInvalidValue},
		{"delimiter line injects", "k", secret + "\n" + ghaction.Delimiter + "\nevil=1", ghaction.ErrInvalidValue},
		{"delimiter last line", "k", secret + "\n" + ghaction.Delimiter, ghaction.ErrInvalidValue},
		{"value not UTF-8", "k", secret + "\xc3", ghaction.ErrInvalidValue},
		{"value with NUL", "k", secret + "\x00", ghaction.ErrInvalidValue},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			for _, w := range writers {
				m := fileEnv(t)
				a := ghaction.New(env(m), &bytes.Buffer{})
				err := w.write(a, tc.key, tc.value)
				if !errors.Is(err, tc.want) {
					t.Fatalf("%s: err = %v, want %v", w.command, err, tc.want)
				}
				if !strings.HasPrefix(err.Error(), w.command+" ") {
					t.Errorf("%s: error %q does not name the command", w.command, err)
				}
				if strings.Contains(err.Error(), secret) {
					t.Errorf("%s: error %q contains the value", w.command, err)
				}
				if got := readFile(t, m[w.fileVar]); got != "" {
					t.Errorf("%s: file = %q, want nothing written", w.command, got)
				}
			}
		})
	}
}

func TestSetEnvRefusesNodeOptions(t *testing.T) {
	t.Parallel()
	m := fileEnv(t)
	a := ghaction.New(env(m), &bytes.Buffer{})
	for _, name := range []string{"NODE_OPTIONS", "node_options"} {
		if err := a.SetEnv(name, "--require evil"); !errors.Is(err, ghaction.ErrInvalidName) {
			t.Errorf("SetEnv(%q): err = %v, want ErrInvalidName", name, err)
		}
	}
	if got := readFile(t, m["GITHUB_ENV"]); got != "" {
		t.Errorf("GITHUB_ENV = %q, want nothing written", got)
	}
	// Outputs and state have no such rule.
	if err := a.SetOutput("NODE_OPTIONS", "x"); err != nil {
		t.Errorf("SetOutput(NODE_OPTIONS): %v", err)
	}
}

func TestAddStepSummary(t *testing.T) {
	t.Parallel()
	m := fileEnv(t)
	a := ghaction.New(env(m), &bytes.Buffer{})
	for _, md := range []string{"| a | b |", "|---|---|"} {
		if err := a.AddStepSummary(md); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := readFile(t, m["GITHUB_STEP_SUMMARY"]), "| a | b |\n|---|---|\n"; got != want {
		t.Errorf("summary = %q, want %q", got, want)
	}
	// §3.7: the runner rejects a summary over 1 MiB; refuse before writing it.
	big := strings.Repeat("x", ghaction.MaxSummarySize)
	if err := a.AddStepSummary(big); !errors.Is(err, ghaction.ErrSummaryTooLarge) {
		t.Errorf("AddStepSummary(1 MiB): err = %v, want ErrSummaryTooLarge", err)
	}
	if got := len(readFile(t, m["GITHUB_STEP_SUMMARY"])); got != 20 {
		t.Errorf("summary size = %d after refusal, want 20", got)
	}
}
