package ghactiontest

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// ParseFileCommands parses the contents of a GITHUB_OUTPUT, GITHUB_STATE or GITHUB_ENV file the
// way the runner's EnvFileKeyValuePairs does on Linux (reference/github-runner.md §3,
// `FileCommandManager.cs` 353-495). It returns every pair parsed, the last of duplicate keys
// winning; on an error it returns the pairs parsed before it too, because the runner enumerates
// lazily and has already applied them (§3.6). An empty key from a "=value" line is returned as
// is: only the output and env commands refuse it (see Stage).
//
// The contents are decoded like File.ReadAllText: a UTF-8 byte-order mark at the start is
// dropped and each invalid byte becomes U+FFFD (.NET may use one U+FFFD for a longer invalid
// sequence; either way such bytes do not round-trip).
func ParseFileCommands(content string) (map[string]string, error) {
	pairs := map[string]string{}
	err := parsePairs(content, func(k, v string) error {
		pairs[k] = v
		return nil
	})
	return pairs, err
}

// parsePairs is the §3 parser; it calls yield for each pair in file order and stops at the first
// error, from the parser or from yield.
func parsePairs(content string, yield func(key, value string) error) error {
	text := strings.TrimPrefix(decodeUTF8(content), "\uFEFF") // §3.1
	index := 0
	for {
		line, _, ok := readLine(text, &index)
		if !ok {
			return nil
		}
		if line == "" { // §3.3: empty lines are skipped outside heredocs
			continue
		}
		var key, value string
		eq := strings.Index(line, "=")
		hd := strings.Index(line, "<<")
		switch {
		case eq >= 0 && (hd < 0 || eq < hd):
			// NAME=VALUE, split at the first "=", nothing trimmed. The runner's empty-name check
			// tests the whole line, so "=v" yields the key "" (§3.4).
			key, value, _ = strings.Cut(line, "=")
		case hd >= 0:
			var delimiter string
			key, delimiter, _ = strings.Cut(line, "<<")
			if key == "" || delimiter == "" {
				return fmt.Errorf("Invalid format '%s'. Name must not be empty and delimiter must not be empty", line) //nolint:staticcheck // the runner's message, verbatim
			}
			start, end := index, index
			for {
				tmp, newline, ok := readLine(text, &index)
				if ok && tmp == delimiter { // exact, ordinal comparison
					break
				}
				if !ok {
					return fmt.Errorf("Invalid value. Matching delimiter not found '%s'", delimiter) //nolint:staticcheck // the runner's message, verbatim
				}
				if !newline {
					return errors.New("Invalid value. EOF marker missing new line.") //nolint:staticcheck // the runner's message, verbatim
				}
				end = index - 1 // the value ends before this line's "\n"
			}
			value = text[start:end]
		default:
			return fmt.Errorf("Invalid format '%s'", line) //nolint:staticcheck // the runner's message, verbatim
		}
		if err := yield(key, value); err != nil {
			return err
		}
	}
}

// readLine is the runner's ReadLine on Linux: only "\n" ends a line and "\r" stays in it (§3.2).
// It reports whether a line was read and whether it ended with "\n"; the last line needs none.
func readLine(text string, index *int) (line string, newline, ok bool) {
	if *index >= len(text) {
		return "", false, false
	}
	rest := text[*index:]
	i := strings.IndexByte(rest, '\n')
	if i < 0 {
		*index = len(text)
		return rest, false, true
	}
	*index += i + 1
	return rest[:i], true, true
}

// decodeUTF8 replaces each invalid byte with U+FFFD, as decoding the file to a .NET string does.
func decodeUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		b.WriteRune(r) // range yields U+FFFD for each invalid byte
	}
	return b.String()
}

// Command is a workflow command read from a step's stdout or stderr: ::name k=v,…::data.
type Command struct {
	Name  string            // lower case; the runner matches command names ignoring case
	Props map[string]string // unescaped property values; nil when there are none
	Data  string            // unescaped data
}

// ParseCommand parses one output line as a workflow command the way the runner's
// ActionCommand.TryParseV2 does (reference/github-runner.md §4, `Runner.Common/ActionCommand.cs`
// 51-119): leading whitespace is trimmed; the command info runs from the leading "::" to the next
// "::"; the name ends at the first space; properties are split on "," and then at "=" (the
// runner's Split with RemoveEmptyEntries skips empty pieces, so a pair with an empty key or
// value is dropped and leading "=" are skipped); the data is the rest of the line and may hold
// "::". It reports false for a line that is not a command.
func ParseCommand(line string) (Command, bool) {
	line = strings.TrimLeftFunc(line, unicode.IsSpace)
	rest, ok := strings.CutPrefix(line, "::")
	if !ok {
		return Command{}, false
	}
	info, data, ok := strings.Cut(rest, "::")
	if !ok {
		return Command{}, false
	}
	name, props, hasProps := strings.Cut(info, " ")
	if name == "" {
		return Command{}, false
	}
	cmd := Command{Name: strings.ToLower(name), Data: unescapeData(data)}
	if hasProps {
		for p := range strings.SplitSeq(strings.TrimSpace(props), ",") {
			k, v, ok := strings.Cut(strings.TrimLeft(p, "="), "=")
			v = strings.TrimLeft(v, "=")
			if !ok || k == "" || v == "" {
				continue
			}
			if cmd.Props == nil {
				cmd.Props = map[string]string{}
			}
			cmd.Props[k] = unescapeProperty(v)
		}
	}
	return cmd, true
}

// unescapeData undoes the data escaping in the runner's order: %0D, %0A, then %25 (§4).
func unescapeData(s string) string {
	s = strings.ReplaceAll(s, "%0D", "\r")
	s = strings.ReplaceAll(s, "%0A", "\n")
	return strings.ReplaceAll(s, "%25", "%")
}

// unescapeProperty also undoes %3A and %2C, still with %25 last (§4).
func unescapeProperty(s string) string {
	s = strings.ReplaceAll(s, "%0D", "\r")
	s = strings.ReplaceAll(s, "%0A", "\n")
	s = strings.ReplaceAll(s, "%3A", ":")
	s = strings.ReplaceAll(s, "%2C", ",")
	return strings.ReplaceAll(s, "%25", "%")
}

// maskValues returns what the runner registers for ::add-mask::data: the whole value, and each
// of its lines split on "\r" or "\n", trimmed, empties dropped (§4, `ActionCommandManager.cs`
// 420-451). Empty or whitespace-only data registers nothing (the runner warns).
func maskValues(data string) []string {
	if strings.TrimSpace(data) == "" {
		return nil
	}
	vals := []string{data}
	for _, l := range strings.FieldsFunc(data, func(r rune) bool { return r == '\r' || r == '\n' }) {
		if l = strings.TrimSpace(l); l != "" && l != data {
			vals = append(vals, l)
		}
	}
	return vals
}

// maskLine replaces every occurrence of every mask in line with "***", merging overlapping and
// adjacent matches into one, as the runner's secret masker does.
func maskLine(line string, masks []string) string {
	if len(masks) == 0 || line == "" {
		return line
	}
	hidden := make([]bool, len(line))
	found := false
	for _, m := range masks {
		if m == "" {
			continue
		}
		for from := 0; ; {
			i := strings.Index(line[from:], m)
			if i < 0 {
				break
			}
			for j := from + i; j < from+i+len(m); j++ {
				hidden[j] = true
			}
			found = true
			from += i + 1
		}
	}
	if !found {
		return line
	}
	var b strings.Builder
	for i := 0; i < len(line); {
		if !hidden[i] {
			b.WriteByte(line[i])
			i++
			continue
		}
		b.WriteString("***")
		for i < len(line) && hidden[i] {
			i++
		}
	}
	return b.String()
}
