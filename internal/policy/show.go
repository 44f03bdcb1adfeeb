package policy

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/cf-scoped-token/cf-scoped-token/internal/token"
)

// maxShown is how many characters of a value a fault or denial quotes.
const maxShown = 100

// show quotes a value from the file or from a token for a fault or a
// denial: shortened, with control characters escaped by %q (a claim's text
// must not forge a log line), and hidden entirely when it looks like a
// secret, since a token pasted into the wrong place must not be printed back.
func show(s string) string {
	if token.LooksLikeSecret(s) {
		return "(a value that looks like a token, not shown)"
	}
	if utf8.RuneCountInString(s) > maxShown {
		return fmt.Sprintf("%q…", string([]rune(s)[:maxShown]))
	}
	return fmt.Sprintf("%q", s)
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
