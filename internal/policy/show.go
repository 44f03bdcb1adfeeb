package policy

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// maxShown is how many characters of a value a fault or denial quotes.
const maxShown = 100

// show quotes a value from the file or from a token for a fault or a
// denial: shortened, with control characters escaped by %q (a claim's text
// must not forge a log line), and hidden entirely when it looks like a
// secret, since a token pasted into the wrong place must not be printed back.
func show(s string) string {
	if looksSecret(s) {
		return "(a value that looks like a token, not shown)"
	}
	if utf8.RuneCountInString(s) > maxShown {
		return fmt.Sprintf("%q…", string([]rune(s)[:maxShown]))
	}
	return fmt.Sprintf("%q", s)
}

// looksSecret reports whether s holds something shaped like a Cloudflare
// API token or a JWT: the cfut_/cfat_ prefixes of Cloudflare's new tokens, a
// JWT's "eyJ" header with its dots, or a run of 40 or more token characters
// that mixes digits, upper- and lower-case letters, as random tokens do and
// ids, names and hex digests do not. It is the shape check of package token
// (which does not export it), plus JWTs: a claim value may be anything.
func looksSecret(s string) bool {
	if strings.Contains(s, "cfut_") || strings.Contains(s, "cfat_") {
		return true
	}
	if strings.Contains(s, "eyJ") && strings.Count(s, ".") >= 2 {
		return true
	}
	var run int
	var digit, upper, lower bool
	for _, r := range s + " " { // the space ends the last run
		switch {
		case '0' <= r && r <= '9':
			digit = true
		case 'A' <= r && r <= 'Z':
			upper = true
		case 'a' <= r && r <= 'z':
			lower = true
		case r == '_' || r == '-':
		default:
			if run >= 40 && digit && upper && lower {
				return true
			}
			run, digit, upper, lower = 0, false, false, false
			continue
		}
		run++
	}
	return false
}

// showList quotes up to a few values, as show does, joined by commas.
func showList(values []string) string {
	const most = 6
	var b strings.Builder
	for i, v := range values {
		if i == most {
			fmt.Fprintf(&b, ", … (%d more)", len(values)-most)
			break
		}
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(show(v))
	}
	return b.String()
}

// formatDuration writes a duration the way a policy file does: 1h, 30m,
// 1h30m, 90s; not Go's 1h0m0s.
func formatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}
