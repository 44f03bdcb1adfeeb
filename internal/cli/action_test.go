package cli_test

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cf-scoped-token/cf-scoped-token/internal/emulator"
	"github.com/cf-scoped-token/cf-scoped-token/internal/emulator/emulatortest"
	"github.com/cf-scoped-token/cf-scoped-token/internal/ghaction/ghactiontest"
)

// binary is the real cf-scoped-token, built once for all tests of the
// package (the post alias sits beside it, as in the image) by the first
// test to ask.
var binary = ghactiontest.NewSharedBuild(moduleRoot)

func TestMain(m *testing.M) {
	code := m.Run()
	binary.Remove()
	os.Exit(code)
}

func mustBinary(t *testing.T) string {
	t.Helper()
	return binary.Path(t)
}

const moduleRoot = "../.."

// Permission group ids from Cloudflare's catalogue (reference/cloudflare/
// access-permission-groups.json): the account-scoped ones a child must get.
const (
	appsWrite = "1e13c5124ca64b72b1969a67e8829049" // account scope; its zone twin is 959972745952452f8be2452be8cbb9f2
	appsRead  = "7ea222f6d5064cfa89ea366d7c1fee89" // account scope; its zone twin is eb258a38ea634c86a0c89da6b27cb6b6
	orgsRead  = "26bc23f853634eb4bff59983b9064fde"
	orgsWrite = "bfe0d8686a584fa680f4c53b5eb0de6d"
)

// world is one emulator behind a loopback server, seeded, and a runner
// for the real binary pointed at it.
type world struct {
	e      *emulator.Emulator
	seeded emulator.Seeded
	apiURL string
	runner *ghactiontest.Runner
}

func newWorld(t *testing.T) *world {
	t.Helper()
	return newWorldBehind(t, nil)
}

// newWorldBehind is newWorld with front, if not nil, between the binary and
// the emulator: a hostile or faulty API made from the faithful one.
func newWorldBehind(t *testing.T, front func(e *emulator.Emulator) http.Handler) *world {
	t.Helper()
	e := emulator.New()
	seeded := emulator.Seed(e)
	var h http.Handler
	if front != nil {
		h = front(e)
	}
	srv := emulatortest.Serve(t, e, h)
	return &world{
		e: e, seeded: seeded, apiURL: srv.URL + emulator.BasePath,
		runner: &ghactiontest.Runner{Binary: mustBinary(t), ActionYML: filepath.Join(moduleRoot, "action.yml")},
	}
}

// with is a step's with: map with the parent token and api-url filled in.
func (w *world) with(kv ...string) map[string]string {
	m := map[string]string{"api-token": w.seeded.UserToken, "api-url": w.apiURL}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

// children are the tokens alive in the emulator that the seed did not make.
func (w *world) children() []emulator.Token {
	return w.seeded.Children(w.e)
}

func (w *world) run(t *testing.T, with map[string]string) *ghactiontest.Job {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	job := w.runner.Run(ctx, ghactiontest.Step{With: with})
	for _, s := range []*ghactiontest.Stage{job.Main, job.Post} {
		if s != nil && s.Err != nil {
			t.Fatalf("%s: the simulation could not run: %v", s.Phase, s.Err)
		}
		if s != nil && (len(s.Issues) > 0 || s.FileCommandErr != nil) {
			// e.g. "Unexpected input(s)": action.yml and the step disagree.
			t.Errorf("%s: the runner complained: %v %v", s.Phase, s.Issues, s.FileCommandErr)
		}
	}
	job.AssertNoLeaks(t, w.seeded.UserToken, w.seeded.AccountToken)
	return job
}

// mustRunMain runs main alone, for a test that looks at the token, the
// state or the API before post runs, and fails the test if main failed.
func (w *world) mustRunMain(t *testing.T, step ghactiontest.Step) *ghactiontest.Stage {
	t.Helper()
	main := w.runner.RunMain(context.Background(), step)
	if main.Failed {
		t.Fatalf("main failed (exit %d):\n%s", main.ExitCode, main.Log)
	}
	return main
}

func TestAction_CreatesScopedTokenAndRevokesItInPost(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	acct1, acct2 := w.seeded.AccountIDs[0], w.seeded.AccountIDs[1]
	var live []emulator.Token
	// Look at the token between main and post: run main alone, then post.
	ctx := context.Background()
	step := ghactiontest.Step{With: w.with(
		"account-ids", acct1+", "+acct2+"\n"+acct1,
		"scopes", "apps-and-policies:write\norganizations",
		"ttl", "30m",
	)}
	before := time.Now().UTC().Truncate(time.Second)
	main := w.mustRunMain(t, step)
	after := time.Now().UTC()
	live = w.children()
	if len(live) != 1 {
		t.Fatalf("after main, %d child tokens are alive, want 1", len(live))
	}
	child := live[0]

	// Exactly the asked groups (account-scoped ids, not zone twins) on exactly the asked accounts.
	if len(child.Policies) != 1 {
		t.Fatalf("child has %d policies, want 1", len(child.Policies))
	}
	got := child.Policies[0]
	want := emulator.Policy{
		Effect:           "allow",
		PermissionGroups: []string{appsWrite, orgsRead},
		Resources: map[string]string{
			"com.cloudflare.api.account." + acct1: "*",
			"com.cloudflare.api.account." + acct2: "*",
		},
	}
	slices.Sort(got.PermissionGroups)
	slices.Sort(want.PermissionGroups)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("child policy (-want +got):\n%s", diff)
	}
	// Expiry: now + ttl, whole seconds, UTC; no not_before.
	if child.ExpiresOn.Before(before.Add(30*time.Minute)) || child.ExpiresOn.After(after.Add(30*time.Minute)) {
		t.Errorf("expires_on %s, want within [%s, %s] + 30m", child.ExpiresOn, before, after)
	}
	if child.ExpiresOn.Nanosecond() != 0 {
		t.Errorf("expires_on %s is not whole seconds", child.ExpiresOn)
	}
	if !child.NotBefore.IsZero() {
		t.Errorf("not_before is %s, want none", child.NotBefore)
	}

	// Outputs and state.
	wantOut := map[string]string{
		"token":      child.Value,
		"token-id":   child.ID,
		"expires-at": child.ExpiresOn.UTC().Format(time.RFC3339),
		"name":       child.Name,
	}
	if diff := cmp.Diff(wantOut, main.Outputs); diff != "" {
		t.Errorf("outputs (-want +got):\n%s", diff)
	}
	if main.State["token-id"] != child.ID {
		t.Errorf("state token-id = %q, want %q", main.State["token-id"], child.ID)
	}
	if !strings.HasPrefix(child.Name, "cf-scoped-token octo-org/octo-repo ") {
		t.Errorf("default name %q does not start with the prefix and repository", child.Name)
	}
	if !strings.Contains(main.Summary, child.ID) || !strings.Contains(main.Summary, `Access\: Apps and Policies Write`) { // Markdown-escaped: renders as "Access: …"
		t.Errorf("summary lacks the token id or a group name:\n%s", main.Summary)
	}
	if len(main.Env) != 0 {
		t.Errorf("export-env is false, but GITHUB_ENV got %v", keys(main.Env))
	}

	post := w.runner.RunPost(ctx, step, main.State)
	if post.Failed {
		t.Fatalf("post failed (exit %d):\n%s", post.ExitCode, post.Log)
	}
	if live := w.children(); len(live) != 0 {
		t.Errorf("after post, %d child tokens are alive, want 0", len(live))
	}
	job := &ghactiontest.Job{Main: main, Post: post, State: main.State}
	job.AssertNoLeaks(t, w.seeded.UserToken, child.Value)
}

func TestAction_RevokeFalseKeepsToken(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	job := w.run(t, w.with("account-ids", w.seeded.AccountIDs[0], "revoke", "false"))
	if job.Main.Failed || job.Post.Failed {
		t.Fatalf("main or post failed:\n%s\n%s", job.Main.Log, job.Post.Log)
	}
	live := w.children()
	if len(live) != 1 || live[0].ID != job.Main.Outputs["token-id"] {
		t.Fatalf("with revoke: false, the child must outlive the job; alive: %v", live)
	}
	if n := len(job.Post.Annotations("notice")); n != 1 {
		t.Errorf("post gave %d notices, want 1 saying the token is kept", n)
	}
	job.AssertNoLeaks(t, live[0].Value)
}

func TestAction_MaskComesFirstAndNothingLeaks(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.runner.GitHub = map[string]string{"ACTIONS_STEP_DEBUG": "true", "RUNNER_DEBUG": "1"}
	ctx := context.Background()
	step := ghactiontest.Step{With: w.with("account-ids", w.seeded.AccountIDs[0], "export-env", "true")}
	main := w.mustRunMain(t, step)
	child := main.Outputs["token"]
	if child == "" {
		t.Fatal("no token output")
	}
	// The first line that holds the child token anywhere must be its mask.
	for _, l := range main.Lines {
		if strings.Contains(l.Text, child) {
			if strings.TrimSpace(l.Text) != "::add-mask::"+child {
				t.Fatalf("the first line holding the token is not its mask: %q", l.Text)
			}
			break
		}
	}
	if !slices.Contains(main.Masks, w.seeded.UserToken) {
		t.Error("the parent token was not masked")
	}
	if main.Env["CLOUDFLARE_API_TOKEN"] != child || main.Env["CLOUDFLARE_ACCOUNT_ID"] != w.seeded.AccountIDs[0] {
		t.Errorf("export-env: GITHUB_ENV has %v, want CLOUDFLARE_API_TOKEN and CLOUDFLARE_ACCOUNT_ID", keys(main.Env))
	}
	post := w.runner.RunPost(ctx, step, main.State)
	job := &ghactiontest.Job{Main: main, Post: post, State: main.State}
	job.AssertNoLeaks(t, w.seeded.UserToken, child)
	if post.Failed || len(w.children()) != 0 {
		t.Errorf("post failed or left a token:\n%s", post.Log)
	}
}

func TestAction_OnlyTheParentBearerIsSent(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	// A job whose environment holds other Cloudflare credentials: the SDK
	// would read them if it were built the default way.
	w.runner.Env = map[string]string{
		"CLOUDFLARE_API_TOKEN":            "cfut_someoneElsesTokenAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		"CLOUDFLARE_API_KEY":              "0123456789abcdef0123456789abcdef01234",
		"CLOUDFLARE_EMAIL":                "someone@example.com",
		"CLOUDFLARE_API_USER_SERVICE_KEY": "v1.0-servicekey",
		"CLOUDFLARE_BASE_URL":             "http://127.0.0.1:9/client/v4",
	}
	job := w.run(t, w.with("account-ids", w.seeded.AccountIDs[0]))
	if job.Main.Failed || job.Post.Failed {
		t.Fatalf("main or post failed:\n%s\n%s", job.Main.Log, job.Post.Log)
	}
	child := job.Main.Outputs["token"]
	reqs := w.e.Requests()
	if len(reqs) == 0 {
		t.Fatal("no request reached the emulator")
	}
	for _, r := range reqs {
		for _, h := range []string{"X-Auth-Key", "X-Auth-Email", "X-Auth-User-Service-Key"} {
			if r.Header.Get(h) != "" {
				t.Errorf("%s %s carries %s", r.Method, r.Path, h)
			}
		}
		auth := r.Header.Values("Authorization")
		want := "Bearer " + w.seeded.UserToken
		if strings.HasSuffix(r.Path, "/tokens/verify") {
			want = "Bearer " + child // verify checks the child itself
		}
		if r.Path == "/cdn-cgi/trace" {
			want = ""
		}
		if want == "" && len(auth) != 0 || want != "" && (len(auth) != 1 || auth[0] != want) {
			t.Errorf("%s %s: Authorization is not exactly the expected Bearer token (%d values)", r.Method, r.Path, len(auth))
		}
	}
}

func TestAction_AccountOwnedToken(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	acct := w.seeded.AccountIDs[0]
	with := w.with("account-ids", acct, "owner", "account", "scopes", "apps-and-policies", "permission", "write")
	with["api-token"] = w.seeded.AccountToken
	job := w.run(t, with)
	if job.Main.Failed || job.Post.Failed {
		t.Fatalf("main or post failed:\n%s\n%s", job.Main.Log, job.Post.Log)
	}
	for _, r := range w.e.Requests() {
		if strings.HasPrefix(r.Path, emulator.BasePath+"/user/") {
			t.Errorf("owner: account must not call user endpoints: %s %s", r.Method, r.Path)
		}
	}
	var created bool
	for _, r := range w.e.Requests() {
		created = created || r.Route == "POST /accounts/{account_id}/tokens" && r.Status == http.StatusOK
	}
	if !created {
		t.Error("no account-owned token was created")
	}
	if live := w.children(); len(live) != 0 {
		t.Errorf("after post, %d child tokens are alive", len(live))
	}
}

func TestAction_PostWithoutTokenIsANotice(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	post := w.runner.RunPost(context.Background(), ghactiontest.Step{With: w.with("account-ids", w.seeded.AccountIDs[0])}, nil)
	post.AssertNoLeaks(t, w.seeded.UserToken)
	if post.Failed {
		t.Fatalf("post failed:\n%s", post.Log)
	}
	if n := len(post.Annotations("notice")); n != 1 {
		t.Errorf("got %d notices, want 1", n)
	}
	if n := len(w.e.Requests()); n != 0 {
		t.Errorf("post with no token made %d requests, want 0", n)
	}
}

func keys(m map[string]string) []string {
	var k []string
	for key := range m {
		k = append(k, key)
	}
	slices.Sort(k)
	return k
}
