package ghactiontest_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/cf-scoped-token/cf-scoped-token/internal/ghaction/ghactiontest"
)

// TestParseFileCommands covers each rule of reference/github-runner.md §3.
func TestParseFileCommands(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, content string
		want          map[string]string
		wantErr       string
	}{
		{"key=value", "a=1\nb=2\n", map[string]string{"a": "1", "b": "2"}, ""},
		{"last line needs no newline", "a=1", map[string]string{"a": "1"}, ""},
		{"nothing trimmed", " a = 1 \n", map[string]string{" a ": " 1 "}, ""},
		{"split at the first =", "a=b=c\n", map[string]string{"a": "b=c"}, ""},
		{"LF only: CR stays", "a=1\r\nb=2\r\n", map[string]string{"a": "1\r", "b": "2\r"}, ""},
		{"lone CR does not split", "a=1\rb=2\n", map[string]string{"a": "1\rb=2"}, ""},
		{"empty lines skipped", "\n\na=1\n\n\nb=2\n\n", map[string]string{"a": "1", "b": "2"}, ""},
		{"= before << is key=value", "a=b<<c\n", map[string]string{"a": "b<<c"}, ""},
		{"<< before = is a heredoc", "a<<=EOF\nx=y\n=EOF\n", map[string]string{"a": "x=y"}, ""},
		{"=v gives the empty key", "=v\n", map[string]string{"": "v"}, ""},
		{"heredoc", "k<<EOF\nline1\nline2\nEOF\n", map[string]string{"k": "line1\nline2"}, ""},
		{"heredoc exact delimiter line", "k<<EOF\nEOF \n EOF\nxEOF\nEOF\n", map[string]string{"k": "EOF \n EOF\nxEOF"}, ""},
		{"heredoc keeps empty lines", "k<<EOF\n\nv\n\nEOF\n", map[string]string{"k": "\nv\n"}, ""},
		{"heredoc empty body", "k<<EOF\nEOF\n", map[string]string{"k": ""}, ""},
		{"heredoc one empty line", "k<<EOF\n\nEOF\n", map[string]string{"k": ""}, ""},
		{"heredoc two empty lines", "k<<EOF\n\n\nEOF\n", map[string]string{"k": "\n"}, ""},
		{"heredoc delimiter is all the rest", "k<< E O F\nv\n E O F\n", map[string]string{"k": "v"}, ""},
		{"heredoc CRLF closes, values keep CR", "k<<EOF\r\nv\r\nEOF\r\n", map[string]string{"k": "v\r"}, ""},
		{"heredoc last delimiter without newline", "k<<EOF\nv\nEOF", map[string]string{"k": "v"}, ""},
		{"BOM stripped", "\uFEFFa=1\n", map[string]string{"a": "1"}, ""},
		{"invalid UTF-8 replaced", "a=\xff\n", map[string]string{"a": "\uFFFD"}, ""},
		{"duplicates: last wins", "a=1\na<<EOF\n2\nEOF\na=3\n", map[string]string{"a": "3"}, ""},
		{"empty file", "", map[string]string{}, ""},
		{"empty delimiter", "a=1\nk<<\n",
			map[string]string{"a": "1"}, "Invalid format 'k<<'. Name must not be empty and delimiter must not be empty"},
		{"empty heredoc name", "<<EOF\nv\nEOF\n",
			map[string]string{}, "Invalid format '<<EOF'. Name must not be empty and delimiter must not be empty"},
		{"delimiter not found", "a=1\nk<<EOF\nv\n", map[string]string{"a": "1"}, "Invalid value. Matching delimiter not found 'EOF'"},
		{"delimiter not found, CR", "k<<EOF\r\nv\nEOF\n", map[string]string{}, "Invalid value. Matching delimiter not found 'EOF\r'"},
		{"EOF marker missing new line", "k<<EOF\nv", map[string]string{}, "Invalid value. EOF marker missing new line."},
		{"invalid format", "a=1\njunk\nb=2\n", map[string]string{"a": "1"}, "Invalid format 'junk'"},
		// §3.5: the delimiter inside a value is not detected; the rest is parsed as new lines.
		{"injection", "k<<D\nsecret\nD\nevil=1\nD\n", map[string]string{"k": "secret", "evil": "1"}, "Invalid format 'D'"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := ghactiontest.ParseFileCommands(tc.content)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("pairs (-want +got):\n%s", diff)
			}
			gotErr := ""
			if err != nil {
				gotErr = err.Error()
			}
			if gotErr != tc.wantErr {
				t.Errorf("error = %q, want %q", gotErr, tc.wantErr)
			}
		})
	}
}

// TestParseCommand covers reference/github-runner.md §4.
func TestParseCommand(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, line string
		want       ghactiontest.Command
		ok         bool
	}{
		{"plain", "::notice::hello", ghactiontest.Command{Name: "notice", Data: "hello"}, true},
		{"leading whitespace", " \t::debug::x", ghactiontest.Command{Name: "debug", Data: "x"}, true},
		{"name ignores case", "::Add-Mask::x", ghactiontest.Command{Name: "add-mask", Data: "x"}, true},
		{"data unescaped", "::add-mask::a%0Ab%0D%0Ac%25d", ghactiontest.Command{Name: "add-mask", Data: "a\nb\r\nc%d"}, true},
		{"%25 last", "::add-mask::%250A", ghactiontest.Command{Name: "add-mask", Data: "%0A"}, true},
		{"data keeps ::, %3A", "::error::a::b%3A", ghactiontest.Command{Name: "error", Data: "a::b%3A"}, true},
		{"empty data", "::endgroup::", ghactiontest.Command{Name: "endgroup"}, true},
		{"properties", "::error file=a%3Ab%2Cc,line=3, title=x%0Ay::msg",
			ghactiontest.Command{Name: "error", Props: map[string]string{"file": "a:b,c", "line": "3", " title": "x\ny"}, Data: "msg"}, true},
		{"property pieces dropped or trimmed", "::warning ,k=,=v,a=b=c,d==e,,::m",
			ghactiontest.Command{Name: "warning", Props: map[string]string{"a": "b=c", "d": "e"}, Data: "m"}, true},
		{"not a command", "hello ::notice::x", ghactiontest.Command{}, false},
		{"no second separator", "::notice x", ghactiontest.Command{}, false},
		{"empty name", ":: x::y", ghactiontest.Command{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, ok := ghactiontest.ParseCommand(tc.line)
			if ok != tc.ok {
				t.Fatalf("ParseCommand(%q) ok = %v, want %v", tc.line, ok, tc.ok)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("ParseCommand(%q) (-want +got):\n%s", tc.line, diff)
			}
		})
	}
}

func TestReadOutput(t *testing.T) {
	t.Parallel()
	out := "before s3cret\r\n" +
		"::add-mask::  s3cret  %0Aother-line\n" +
		"after s3cret and other-line\r" +
		"::add-mask:: \n" +
		"s3crets3cret!"
	st := ghactiontest.ReadOutput(out)
	// The whole value and each trimmed line are masks (§4).
	if diff := cmp.Diff([]string{"  s3cret  \nother-line", "s3cret", "other-line"}, st.Masks); diff != "" {
		t.Errorf("masks (-want +got):\n%s", diff)
	}
	// Lines end at \n, \r or \r\n; masks apply only after they are registered; adjacent
	// matches merge.
	want := "before s3cret\n::add-mask::***\nafter *** and ***\n::add-mask::***\n***!\n"
	if diff := cmp.Diff(want, st.Log); diff != "" {
		t.Errorf("log (-want +got):\n%s", diff)
	}
	if len(st.Issues) != 1 {
		t.Errorf("issues = %q, want one warning for the blank mask", st.Issues)
	}
	if n := len(st.Commands); n != 2 {
		t.Errorf("%d commands, want 2", n)
	}
}
