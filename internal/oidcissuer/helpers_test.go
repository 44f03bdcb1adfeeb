package oidcissuer_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	neturl "net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cf-scoped-token/cf-scoped-token/internal/clocktest"
	"github.com/cf-scoped-token/cf-scoped-token/internal/oidcissuer"
	"github.com/cf-scoped-token/cf-scoped-token/internal/oidcissuer/oidcissuertest"
)

// t0 is the fixed start of every test clock.
var t0 = time.Date(2026, 11, 27, 20, 0, 0, 0, time.UTC)

// uuidRE matches the UUID-like kids and jtis the issuer makes.
var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// testIssuer is an issuer on a real HTTP server with a fake clock.
type testIssuer struct {
	iss *oidcissuer.Issuer
	srv *httptest.Server
	now *clocktest.Clock
}

// mustStart serves a new issuer at the server's URL plus path ("" or e.g. "/org/<uuid>").
func mustStart(tb testing.TB, path string) *testIssuer {
	tb.Helper()
	c := clocktest.New(t0)
	iss, srv := oidcissuertest.ServeAt(tb, path, oidcissuer.WithNow(c.Now))
	return &testIssuer{iss: iss, srv: srv, now: c}
}

// get sends GET url with the given headers and returns the status, Content-Type and body.
func (ti *testIssuer) get(tb testing.TB, url string, header http.Header) (int, string, []byte) {
	tb.Helper()
	req, err := http.NewRequestWithContext(tb.Context(), http.MethodGet, url, nil)
	if err != nil {
		tb.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := ti.srv.Client().Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	return resp.StatusCode, resp.Header.Get("Content-Type"), body
}

// requestToken asks the job's endpoint for a token; see fetchToken.
func (ti *testIssuer) requestToken(tb testing.TB, j oidcissuer.Job, audience string) string {
	tb.Helper()
	raw, err := fetchToken(tb.Context(), ti.srv.Client(), j, audience)
	if err != nil {
		tb.Fatal(err)
	}
	return raw
}

// fetchToken asks the job's endpoint for a token as the Actions toolkit does (reference/oidc.md
// §1): GET, the audience added to the URL's existing query, bearer and Accept headers.
func fetchToken(ctx context.Context, client *http.Client, j oidcissuer.Job, audience string) (string, error) {
	url := j.RequestURL
	if audience != "" {
		url += "&audience=" + neturl.QueryEscape(audience)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", "Bearer "+j.RequestToken)
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		return "", fmt.Errorf("token endpoint: %d %s %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	var v struct {
		Value string `json:"value"`
	}
	if err := json.Unmarshal(body, &v); err != nil {
		return "", fmt.Errorf("token endpoint answered %s: %w", body, err)
	}
	if v.Value == "" {
		return "", fmt.Errorf("token endpoint answered %s, without a value", body)
	}
	return v.Value, nil
}

// jwtParts decodes a compact JWS's header and claims (numbers as json.Number) and returns its
// raw signature bytes.
func jwtParts(tb testing.TB, raw string) (header, claims map[string]any, sig []byte) {
	tb.Helper()
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		tb.Fatalf("token has %d parts, want 3", len(parts))
	}
	dec := func(s string, v any) {
		b, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil {
			tb.Fatalf("decode part: %v", err)
		}
		d := json.NewDecoder(strings.NewReader(string(b)))
		d.UseNumber()
		if err := d.Decode(v); err != nil {
			tb.Fatalf("decode part %s: %v", b, err)
		}
	}
	dec(parts[0], &header)
	dec(parts[1], &claims)
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		tb.Fatalf("decode signature: %v", err)
	}
	return header, claims, sig
}
