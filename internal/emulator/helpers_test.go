package emulator_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cf-scoped-token/cf-scoped-token/internal/clocktest"
	"github.com/cf-scoped-token/cf-scoped-token/internal/emulator"
	"github.com/cf-scoped-token/cf-scoped-token/internal/emulator/emulatortest"
)

// Permission-group ids, written here from reference/cloudflare/access-permission-groups.json
// rather than taken from the package, so a wrong id in the catalogue fails the tests.
const (
	gAPITokensRead         = "0cc3a61731504c89b99ec1be78b77aa0"
	gAPITokensWrite        = "686d18d5ac6c441c867cbf6771e58a0a"
	gAccountAPITokensRead  = "eb56a6953c034b9d97dd838155666f06"
	gAccountAPITokensWrite = "5bc3f8b21c554832afc660159ab75fa4"
	gOrgsRead              = "26bc23f853634eb4bff59983b9064fde"
	gOrgsWrite             = "bfe0d8686a584fa680f4c53b5eb0de6d"
	gAppsRead              = "7ea222f6d5064cfa89ea366d7c1fee89"
	gAppsWrite             = "1e13c5124ca64b72b1969a67e8829049"
	gAppsReadZone          = "eb258a38ea634c86a0c89da6b27cb6b6"
	gAppsWriteZone         = "959972745952452f8be2452be8cbb9f2"
	gServiceTokensRead     = "91f7ce32fa614d73b7e1fc8f0e78582b"
	gServiceTokensWrite    = "a1c0fec57cf94af79479a6d827fa518c"
	gAuditLogsRead         = "b05b28e839c54467a7d6cba5d3abb5a3"
)

// testEnv is a seeded emulator on a real HTTP server.
type testEnv struct {
	e    *emulator.Emulator
	srv  *httptest.Server
	seed emulator.Seeded
	api  string // srv.URL + BasePath
	now  *clocktest.Clock
}

// t0 is the fixed start of every test clock.
var t0 = time.Date(2026, 11, 27, 20, 0, 0, 0, time.UTC)

// mustServe starts a seeded emulator with a fixed clock and fails the test if any request
// hit no route.
func mustServe(tb testing.TB) *testEnv {
	tb.Helper()
	e := emulator.New()
	c := clocktest.New(t0)
	e.SetNow(c.Now)
	seed := emulator.Seed(e)
	srv := emulatortest.Serve(tb, e, nil)
	return &testEnv{e: e, srv: srv, seed: seed, api: srv.URL + emulator.BasePath, now: c}
}

// apiError and envelope are the test's own view of Cloudflare's wire format
// (reference/cloudflare-api.md, "Responses").
type apiError struct {
	Code       int        `json:"code"`
	Message    string     `json:"message"`
	ErrorChain []apiError `json:"error_chain"`
}

type envelope struct {
	Success    *bool           `json:"success"`
	Errors     []apiError      `json:"errors"`
	Messages   []apiError      `json:"messages"`
	Result     json.RawMessage `json:"result"`
	ResultInfo *resultInfo     `json:"result_info"`
	Raw        map[string]any  `json:"-"`
	Header     http.Header     `json:"-"`
	Status     int             `json:"-"`
}

type resultInfo struct {
	Page       int `json:"page"`
	PerPage    int `json:"per_page"`
	Count      int `json:"count"`
	TotalCount int `json:"total_count"`
}

// do sends one request (body marshalled as JSON unless it is a string) and decodes the
// envelope. An empty token sends no Authorization header.
func (te *testEnv) do(tb testing.TB, method, path, tok string, body any) envelope {
	tb.Helper()
	return doWith(tb, te.srv.Client(), method, te.api+path, "Bearer "+tok, tok != "", body)
}

// doAuth is do with a raw Authorization header value.
func (te *testEnv) doAuth(tb testing.TB, method, path, auth string) envelope {
	tb.Helper()
	return doWith(tb, te.srv.Client(), method, te.api+path, auth, auth != "", nil)
}

func doWith(tb testing.TB, client *http.Client, method, url, auth string, sendAuth bool, body any) envelope {
	tb.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			tb.Fatal(err)
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		tb.Fatal(err)
	}
	if sendAuth {
		req.Header.Set("Authorization", auth)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := client.Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, url, err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		tb.Fatal(err)
	}
	var env envelope
	if err := json.Unmarshal(data, &env); err != nil {
		tb.Fatalf("%s %s: body is not JSON: %v\n%s", method, url, err, data)
	}
	if err := json.Unmarshal(data, &env.Raw); err != nil {
		tb.Fatal(err)
	}
	env.Header, env.Status = res.Header, res.StatusCode
	return env
}

// wantOK fails unless the envelope is a success; it returns the envelope for chaining.
func wantOK(tb testing.TB, env envelope) envelope {
	tb.Helper()
	if env.Status != http.StatusOK || env.Success == nil || !*env.Success || len(env.Errors) != 0 {
		tb.Fatalf("want 200 success, got %d success=%v errors=%+v", env.Status, env.Success, env.Errors)
	}
	return env
}

// checkFail reports whether env is a Cloudflare-shaped failure with the given status and
// first error code: success false, result null, errors and messages arrays.
func checkFail(tb testing.TB, env envelope, status, code int) {
	tb.Helper()
	if env.Status != status {
		tb.Errorf("status = %d, want %d (errors %+v)", env.Status, status, env.Errors)
	}
	if env.Success == nil || *env.Success {
		tb.Errorf("success = %v, want false", env.Success)
	}
	if string(env.Result) != "null" {
		tb.Errorf("result = %s, want null", env.Result)
	}
	if _, ok := env.Raw["messages"].([]any); !ok {
		tb.Errorf("messages = %v, want an array", env.Raw["messages"])
	}
	if len(env.Errors) == 0 {
		tb.Fatalf("errors is empty, want code %d", code)
	}
	if env.Errors[0].Code != code {
		tb.Errorf("error code = %d (%q), want %d", env.Errors[0].Code, env.Errors[0].Message, code)
	}
}

// decode unmarshals the envelope's result into v.
func decode(tb testing.TB, env envelope, v any) {
	tb.Helper()
	if err := json.Unmarshal(env.Result, v); err != nil {
		tb.Fatalf("result %s: %v", env.Result, err)
	}
}

// tokenOut is the test's view of a token object.
type tokenOut struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	Status     string `json:"status"`
	Value      string `json:"value"`
	IssuedOn   string `json:"issued_on"`
	ModifiedOn string `json:"modified_on"`
	ExpiresOn  string `json:"expires_on"`
	NotBefore  string `json:"not_before"`
	Policies   []struct {
		ID               string `json:"id"`
		Effect           string `json:"effect"`
		PermissionGroups []struct {
			ID   string `json:"id"`
			Name string `json:"name"`
		} `json:"permission_groups"`
		Resources map[string]any `json:"resources"`
	} `json:"policies"`
	Condition map[string]map[string][]string `json:"condition"`
}

// acct is the resource key of an account.
func acct(id string) string { return "com.cloudflare.api.account." + id }

// createBody is a create body with one allow policy of groups on resources.
func createBody(name string, groups []string, resources map[string]string) map[string]any {
	pg := []map[string]any{}
	for _, g := range groups {
		pg = append(pg, map[string]any{"id": g})
	}
	return map[string]any{
		"name":     name,
		"policies": []any{map[string]any{"effect": "allow", "permission_groups": pg, "resources": resources}},
	}
}

// createUserToken creates a user token through the API with the seeded parent and returns it.
func (te *testEnv) createUserToken(tb testing.TB, body map[string]any) tokenOut {
	tb.Helper()
	var out tokenOut
	decode(tb, wantOK(tb, te.do(tb, "POST", "/user/tokens", te.seed.UserToken, body)), &out)
	return out
}

// issue stores a user token of the seeded user with one allow policy.
func (te *testEnv) issue(groups []string, resources map[string]string) string {
	_, v := te.e.IssueUserToken(te.seed.UserID, emulator.TokenSpec{
		Name:     "test",
		Policies: []emulator.Policy{{Effect: "allow", PermissionGroups: groups, Resources: resources}},
	})
	return v
}

// newServer serves e on a test server closed at the end of the test.
func newServer(tb testing.TB, e *emulator.Emulator) *httptest.Server {
	tb.Helper()
	srv := httptest.NewServer(e)
	tb.Cleanup(srv.Close)
	return srv
}

// readAll reads a response body as a string.
func readAll(tb testing.TB, res *http.Response) string {
	tb.Helper()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}
