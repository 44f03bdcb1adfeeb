package token

import (
	"net/url"
	"strings"
)

// ParseBrokerURL reads the broker-url input: the base URL of a keyless
// broker (SPEC, "Keyless"). The rules are api-url's: https, or http only to
// a loopback host, since the job's OIDC token and the child token cross
// that connection; no credentials, query or fragment; the host in lower
// case and no trailing slash, so that the client appends its endpoints'
// paths (/v1/token, /v1/revoke) to it.
func ParseBrokerURL(s string) (*url.URL, error) {
	return parseServiceURL("broker-url", s,
		"an https:// URL of a cf-scoped-token broker such as https://cf-broker.example.com, or http:// to a loopback host (127.0.0.1, [::1], localhost) for a local one",
		"the job's OIDC token and the child token")
}

// LooksLikeSecret reports whether s holds something shaped like a
// Cloudflare API token (the check behind every quoted input value) or a
// JWT (a base64url "eyJ" header and two dots). The broker writes claim
// values and request fields into its audit log and answers; a value of
// this shape is left out of both, whatever field it came in.
func LooksLikeSecret(s string) bool {
	if looksLikeToken(s) {
		return true
	}
	i := strings.Index(s, "eyJ")
	return i >= 0 && strings.Count(s[i:], ".") >= 2
}
