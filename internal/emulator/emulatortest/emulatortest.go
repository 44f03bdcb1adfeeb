// Package emulatortest serves the Cloudflare API emulator to a test. It is
// imported by _test.go files only.
package emulatortest

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/cf-scoped-token/cf-scoped-token/internal/emulator"
)

// Serve serves e on a loopback server until the test ends, through front
// when it is not nil (a recorder, a hostile or faulty API made from the
// faithful one). At the end it fails the test on every request the emulator
// had no route for: that is a client's bug (a lost base path, a wrong
// endpoint), whatever the test asserted. The API's base URL is
// srv.URL + emulator.BasePath.
func Serve(tb testing.TB, e *emulator.Emulator, front http.Handler) *httptest.Server {
	tb.Helper()
	var h http.Handler = e
	if front != nil {
		h = front
	}
	srv := httptest.NewServer(h)
	tb.Cleanup(func() {
		srv.Close()
		for _, r := range e.Unhandled() {
			tb.Errorf("request to an unknown route: %s %s", r.Method, r.Path)
		}
	})
	return srv
}
