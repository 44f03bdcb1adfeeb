package emulatortest_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/cf-scoped-token/cf-scoped-token/internal/emulator"
	"github.com/cf-scoped-token/cf-scoped-token/internal/emulator/emulatortest"
)

// recordingTB is a testing.TB whose Errorf is recorded, and whose Cleanup
// functions run when the test says so.
type recordingTB struct {
	testing.TB
	errors   []string
	cleanups []func()
}

func (r *recordingTB) Helper()                        {}
func (r *recordingTB) Cleanup(f func())               { r.cleanups = append(r.cleanups, f) }
func (r *recordingTB) Errorf(format string, _ ...any) { r.errors = append(r.errors, format) }
func (r *recordingTB) end() {
	for i := len(r.cleanups) - 1; i >= 0; i-- {
		r.cleanups[i]()
	}
}

// TestServe: the emulator answers through the server (and through a front
// when given one); a request to no route fails the test at its end, a
// routed one does not; the server is closed then.
func TestServe(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		path      string
		wantError bool
	}{
		{"routed", emulator.BasePath + "/user/tokens/permission_groups", false},
		{"no route", "/client/v4/no/such/route", true},
		{"base path lost", "/user/tokens", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := emulator.New()
			seeded := emulator.Seed(e)
			fronted := false
			rec := &recordingTB{TB: t}
			srv := emulatortest.Serve(rec, e, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				fronted = true
				e.ServeHTTP(w, r)
			}))
			req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL+tc.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Authorization", "Bearer "+seeded.UserToken)
			res, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if !fronted {
				t.Error("the request did not go through the front")
			}
			rec.end()
			if got := len(rec.errors) > 0 && strings.Contains(rec.errors[0], "unknown route"); got != tc.wantError {
				t.Errorf("errors at the end %q, want an unknown-route error: %v", rec.errors, tc.wantError)
			}
			if res, err := srv.Client().Get(srv.URL); err == nil {
				res.Body.Close()
				t.Error("the server still answers after the test's end")
			}
		})
	}
}
