package policy

import "strings"

// globMatch reports whether s matches pattern, where * matches any run of
// characters except / and every other character matches itself, exactly
// and case-sensitively. A * never crosses a /, so the pattern and s must have
// the same number of path segments, and each segment matches on its own.
func globMatch(pattern, s string) bool {
	if strings.IndexByte(pattern, '*') < 0 {
		return pattern == s
	}
	for {
		pseg, prest, pmore := strings.Cut(pattern, "/")
		sseg, srest, smore := strings.Cut(s, "/")
		if pmore != smore || !segmentMatch(pseg, sseg) {
			return false
		}
		if !pmore {
			return true
		}
		pattern, s = prest, srest
	}
}

// segmentMatch matches a pattern without / against a text without /, where
// * matches any run of bytes. It is the classic greedy match that returns
// to the last * on a mismatch: linear in practice, O(len(p)·len(s)) at worst,
// with no recursion for a hostile pattern to exploit.
func segmentMatch(p, s string) bool {
	px, sx := 0, 0
	star, resume := -1, 0
	for sx < len(s) {
		switch {
		case px < len(p) && p[px] == '*':
			star, resume = px, sx
			px++
		case px < len(p) && p[px] == s[sx]:
			px++
			sx++
		case star >= 0:
			resume++
			px, sx = star+1, resume
		default:
			return false
		}
	}
	for px < len(p) && p[px] == '*' {
		px++
	}
	return px == len(p)
}
