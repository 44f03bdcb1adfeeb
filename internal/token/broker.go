package token

import "net/url"

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
