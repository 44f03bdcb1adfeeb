package oidcverify

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
)

// maxResponseBytes caps what is read of a discovery document or a JWKS. GitHub's are a few
// KiB; the cap only stops an issuer (or whatever answers in its place) from making the broker
// buffer without bound.
const maxResponseBytes = 1 << 20

// errTooLarge is the read error of a response body past maxResponseBytes.
var errTooLarge = fmt.Errorf("response body is larger than %d bytes", maxResponseBytes)

// fetchClient returns a copy of c whose response bodies are capped and which never follows a
// redirect: discovery and keys come from the configured URLs and nowhere else (a redirect
// could lead off https). go-oidc reads whole bodies with io.ReadAll, so the cap must sit in the
// transport.
func fetchClient(c *http.Client) *http.Client {
	cp := *c
	base := c.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	cp.Transport = cappedTransport{base: base}
	cp.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &cp
}

// cappedTransport wraps every response body in a cappedBody.
type cappedTransport struct{ base http.RoundTripper }

func (t cappedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	resp.Body = &cappedBody{rc: resp.Body, left: maxResponseBytes}
	return resp, nil
}

// cappedBody reads at most left bytes, then fails with errTooLarge if there is more.
type cappedBody struct {
	rc   io.ReadCloser
	left int64
}

func (b *cappedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		var one [1]byte
		if n, err := b.rc.Read(one[:]); n > 0 {
			return 0, errTooLarge
		} else if err != nil {
			return 0, err
		}
		return 0, nil
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	return n, err
}

func (b *cappedBody) Close() error { return b.rc.Close() }

// checkFetchURL accepts an absolute https URL, or http to a loopback host (a local issuer in
// tests and demos): keys fetched in clear text over a network could be swapped.
func checkFetchURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.Hostname() == "" || u.Opaque != "" {
		return fmt.Errorf("%q is not an absolute URL", clean(s, 200))
	}
	if u.User != nil {
		return fmt.Errorf("%q must not carry credentials", clean(s, 200))
	}
	switch {
	case u.Scheme == "https":
		return nil
	case u.Scheme == "http" && isLoopback(u.Hostname()):
		return nil
	case u.Scheme == "http":
		return fmt.Errorf("%q: http:// is accepted only to a loopback host", clean(s, 200))
	}
	return errors.New(clean(s, 200) + ": scheme is not https")
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
}
