package ghaction_test

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/cf-scoped-token/cf-scoped-token/internal/ghaction"
	"github.com/cf-scoped-token/cf-scoped-token/internal/ghaction/ghactiontest"
)

// FuzzFileCommandRoundTrip checks the promise of the file commands: any name and value written
// as an output, state or env variable is either refused with an error, leaving the file as it
// was, or parses back unchanged under the runner's parser (reference/github-runner.md §3), and
// does not disturb the pair written after it (no injection, §3.5).
func FuzzFileCommandRoundTrip(f *testing.F) {
	d := ghaction.Delimiter
	for _, seed := range []struct {
		kind        uint8
		name, value string
	}{
		{0, "token", "cfut_abc"},
		{1, "token-id", ""},
		{2, "CLOUDFLARE_API_TOKEN", "a\nb"},
		{0, "k", "ends with newline\n"},
		{0, "k", "\n"},
		{1, "k", "crlf\r\nlines\r\n"},
		{2, "k", "\r"},
		{0, "k", d},
		{1, "k", "x\n" + d + "\nevil=1"},
		{2, "k", d + "\r"},
		{0, "k", " " + d},
		{0, "k=v", "x"},
		{1, "k<<EOF", "x"},
		{2, "NODE_OPTIONS", "--require x"},
		{0, "\uFEFFk", "x"},
		{0, "k", "\xff"},
		{1, "k", "nul\x00"},
		{2, "", "x"},
	} {
		f.Add(seed.kind, seed.name, seed.value)
	}
	f.Fuzz(func(t *testing.T, kind uint8, name, value string) {
		if len(name)+len(value) > 1<<16 {
			t.Skip("too large")
		}
		w := writers[int(kind)%len(writers)]
		m := fileEnv(t)
		a := ghaction.New(env(m), &bytes.Buffer{})
		err := w.write(a, name, value)
		if err != nil {
			if !errors.Is(err, ghaction.ErrInvalidName) && !errors.Is(err, ghaction.ErrInvalidValue) {
				t.Fatalf("%s(%q, %q): unexpected error %v", w.command, name, value, err)
			}
			if got := readFile(t, m[w.fileVar]); got != "" {
				t.Fatalf("%s(%q, %q) refused but wrote %q", w.command, name, value, got)
			}
			return
		}
		if err := w.write(a, "after", "ok"); err != nil {
			t.Fatal(err)
		}
		content := readFile(t, m[w.fileVar])
		got, err := ghactiontest.ParseFileCommands(content)
		if err != nil {
			t.Fatalf("%s(%q, %q): runner parser fails: %v\nfile: %q", w.command, name, value, err, content)
		}
		want := map[string]string{name: value, "after": "ok"}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("%s(%q, %q) does not round-trip (-want +got):\n%s\nfile: %q", w.command, name, value, diff, content)
		}
	})
}

// TestFileCommandValuesRoundTrip writes many awkward values into one file, as a step does, and
// reads them all back with the runner's parser.
func TestFileCommandValuesRoundTrip(t *testing.T) {
	t.Parallel()
	values := []string{"", "\n", "a\n", "a\r\n", "\r", "\n\n", " spaced ", "x" + ghaction.Delimiter, ghaction.Delimiter + " ", "é€😀", "%0A::x"}
	for _, w := range writers {
		m := fileEnv(t)
		a := ghaction.New(env(m), &bytes.Buffer{})
		want := map[string]string{}
		for i, v := range values {
			name := fmt.Sprintf("v%d", i)
			if err := w.write(a, name, v); err != nil {
				t.Fatalf("%s(%q, %q): %v", w.command, name, v, err)
			}
			want[name] = v
		}
		got, err := ghactiontest.ParseFileCommands(readFile(t, m[w.fileVar]))
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", w.fileVar, diff)
		}
	}
}

// TestMaskPrecedesEveryAppearance proves that after Mask the runner hides every later
// appearance of the value, multi-line values included: each line of the output that shows the
// secret, or one of its lines, raw or in a command's unescaped data, comes after a mask that
// hides it (reference/github-runner.md §4). A naive writer that prints the value raw after
// ::add-mask:: is caught by the same check, so the check can fail.
func TestMaskPrecedesEveryAppearance(t *testing.T) {
	t.Parallel()
	secrets := []string{
		"cfut_plainSecret123",
		"multi\nline\nsecret",
		"crlf-part-one\r\ncrlf-part-two",
		"  padded-secret  ",
		"100%-secret%0A",
		"colon::comma,secret",
	}
	use := func(a *ghaction.Action, s string) {
		a.Noticef("token %s", s)
		a.Warningf("%s", s)
		a.Errorf("failed for %s", s)
		a.Debugf("value=%s", s)
	}
	for _, secret := range secrets {
		var out bytes.Buffer
		a := ghaction.New(env(nil), &out)
		a.Mask(secret)
		use(a, secret)
		if problems := unmaskedAppearances(out.String(), secret); len(problems) > 0 {
			t.Errorf("Mask(%q) then use: %s\noutput:\n%s", secret, strings.Join(problems, "; "), out.String())
		}
	}

	// The negative control: a raw newline ends the command, so the second line is printed
	// before anything masks it.
	var naive bytes.Buffer
	fmt.Fprintf(&naive, "::add-mask::%s\n", "multi\nline\nsecret")
	if len(unmaskedAppearances(naive.String(), "multi\nline\nsecret")) == 0 {
		t.Error("a naive ::add-mask:: of a multi-line secret passed the check")
	}
}

// unmaskedAppearances returns where secret, or one of its non-blank lines, shows in output
// without a mask registered before that line hiding it, and whether the masked log shows it.
func unmaskedAppearances(output, secret string) []string {
	st := ghactiontest.ReadOutput(output)
	pieces := []string{secret}
	for _, l := range strings.FieldsFunc(secret, func(r rune) bool { return r == '\r' || r == '\n' }) {
		if l = strings.TrimSpace(l); l != "" {
			pieces = append(pieces, l)
		}
	}
	var problems []string
	var masks []string
	for i, l := range st.Lines {
		cmd, isCmd := ghactiontest.ParseCommand(l.Text)
		if isCmd && cmd.Name == "add-mask" {
			masks = append(masks, cmd.Data)
			for _, p := range strings.FieldsFunc(cmd.Data, func(r rune) bool { return r == '\r' || r == '\n' }) {
				masks = append(masks, strings.TrimSpace(p))
			}
			continue
		}
		for _, p := range pieces {
			if !strings.Contains(l.Text, p) && !(isCmd && strings.Contains(cmd.Data, p)) {
				continue
			}
			if !hidden(p, masks) {
				problems = append(problems, fmt.Sprintf("line %d shows %q before a mask hides it", i+1, p))
			}
		}
	}
	for _, p := range pieces {
		if strings.Contains(st.Log, p) {
			problems = append(problems, fmt.Sprintf("log shows %q", p))
		}
	}
	return problems
}

// hidden reports whether a registered mask is exactly p, so the runner shows p as ***.
func hidden(p string, masks []string) bool {
	return slices.Contains(masks, p)
}

// TestStateValueIsExact follows a state value from SaveState through the runner's parser to
// State in the post step: it arrives byte for byte.
func TestStateValueIsExact(t *testing.T) {
	t.Parallel()
	m := fileEnv(t)
	a := ghaction.New(env(m), &bytes.Buffer{})
	if err := a.SaveState("token-id", " id with spaces \n"); err != nil {
		t.Fatal(err)
	}
	got, err := ghactiontest.ParseFileCommands(readFile(t, m["GITHUB_STATE"]))
	if err != nil {
		t.Fatal(err)
	}
	// Handed to post as STATE_token-id and read back by State without trimming (§2).
	post := ghaction.New(env(map[string]string{"STATE_token-id": got["token-id"]}), &bytes.Buffer{})
	if v := post.State("token-id"); v != " id with spaces \n" {
		t.Errorf("State after round trip = %q", v)
	}
}
