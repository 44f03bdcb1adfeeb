package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/pem"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cf-scoped-token/cf-scoped-token/internal/emulator"
	"github.com/cf-scoped-token/cf-scoped-token/internal/ghaction/ghactiontest"
	"github.com/cf-scoped-token/cf-scoped-token/internal/token"
)

// Issue 8's holes, each proved through the runner simulation: the real
// binary, the runner's environment, file commands, state and post step.

// maskLine is the index of the stdout line that masks secret, or -1.
func maskLine(st *ghactiontest.Stage, secret string) int {
	for i, l := range st.Lines {
		if l.Stream == "stdout" && strings.TrimSpace(l.Text) == "::add-mask::"+secret {
			return i
		}
	}
	return -1
}

// TestHole1_MaskBeforeUse: the child token is masked the moment create
// returns — before the verify that sends it and before any log line about
// it — and a verify error that echoes it shows nothing.
func TestHole1_MaskBeforeUse(t *testing.T) {
	t.Parallel()
	t.Run("before verify and every line", func(t *testing.T) {
		t.Parallel()
		w := newWorld(t)
		w.runner.GitHub = map[string]string{"ACTIONS_STEP_DEBUG": "true", "RUNNER_DEBUG": "1"}
		job := w.run(t, w.with("account-ids", w.seeded.AccountIDs[0]))
		if job.Main.Failed {
			t.Fatalf("main failed:\n%s", job.Main.Log)
		}
		child := job.Main.Outputs["token"]
		mask := maskLine(job.Main, child)
		if mask < 0 {
			t.Fatal("no ::add-mask:: of the child on stdout")
		}
		for i, l := range job.Main.Lines {
			about := strings.Contains(l.Text, "verify") || strings.Contains(l.Text, "created token")
			if about && i < mask {
				t.Errorf("line %d comes before the child's mask (line %d): %q", i, mask, l.Text)
			}
		}
		job.AssertNoLeaks(t, w.seeded.UserToken, child)
	})
	t.Run("a verify error that echoes the token", func(t *testing.T) {
		t.Parallel()
		var echoed atomic.Value
		w := newWorldBehind(t, func(e *emulator.Emulator) http.Handler {
			return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
				if !strings.HasSuffix(r.URL.Path, "/tokens/verify") {
					e.ServeHTTP(rw, r)
					return
				}
				bearer := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
				echoed.Store(bearer)
				rw.Header().Set("Content-Type", "application/json")
				rw.WriteHeader(http.StatusBadRequest)
				_, _ = io.WriteString(rw, `{"success":false,"result":null,"errors":[{"code":6111,"message":"Invalid format for Authorization header: `+bearer+`"}]}`)
			})
		})
		job := w.run(t, w.with("account-ids", w.seeded.AccountIDs[0]))
		if job.Main.ExitCode != 1 || len(job.Main.Annotations("error")) != 1 {
			t.Fatalf("main: exit %d, want 1 with one error\n%s", job.Main.ExitCode, job.Main.Log)
		}
		child, _ := echoed.Load().(string)
		if child == "" {
			t.Fatal("verify was never called")
		}
		job.AssertNoLeaks(t, w.seeded.UserToken, child)
		if n := len(w.children()); n != 0 {
			t.Errorf("%d tokens outlive the failed verify", n)
		}
	})
	t.Run("GODEBUG=http2debug=2 against an HTTPS API", func(t *testing.T) {
		t.Parallel()
		e := emulator.New()
		seeded := emulator.Seed(e)
		srv := httptest.NewUnstartedServer(e)
		srv.EnableHTTP2 = true
		srv.Config.ErrorLog = log.New(io.Discard, "", 0)
		srv.StartTLS()
		t.Cleanup(srv.Close)
		certFile := filepath.Join(t.TempDir(), "ca.pem")
		if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
			t.Fatal(err)
		}
		runner := &ghactiontest.Runner{Binary: mustBinary(t), ActionYML: filepath.Join(moduleRoot, "action.yml"),
			// Any earlier step can put these in the job's env through GITHUB_ENV.
			Env: map[string]string{"GODEBUG": "http2debug=2", "SSL_CERT_FILE": certFile}}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		job := runner.Run(ctx, ghactiontest.Step{With: map[string]string{
			"api-token": seeded.UserToken, "api-url": srv.URL + emulator.BasePath, "account-ids": seeded.AccountIDs[0],
		}})
		if job.Main.Failed || job.Post == nil || job.Post.Failed {
			t.Fatalf("main or post failed:\n%s\n%v", job.Main.Log, job.Post)
		}
		job.AssertNoLeaks(t, seeded.UserToken, job.Main.Outputs["token"])
		for _, st := range []*ghactiontest.Stage{job.Main, job.Post} {
			if strings.Contains(st.Stderr, "http2:") {
				t.Errorf("%s: the HTTP/2 debug log ran: the client must speak HTTP/1.1 only", st.Phase)
			}
		}
	})
}

// slowCommitCreate is a front that holds each create for delay and then
// lets it commit whether or not the client still waits — a slow API.
func slowCommitCreate(delay time.Duration, arrived chan<- struct{}) func(*emulator.Emulator) http.Handler {
	return func(e *emulator.Emulator) http.Handler {
		return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodPost || !strings.HasSuffix(r.URL.Path, "/tokens") {
				e.ServeHTTP(rw, r)
				return
			}
			body, _ := io.ReadAll(r.Body)
			if arrived != nil {
				select {
				case arrived <- struct{}{}:
				default:
				}
			}
			time.Sleep(delay)
			cr := r.Clone(context.Background())
			cr.Body = io.NopCloser(bytes.NewReader(body))
			e.ServeHTTP(rw, cr)
		})
	}
}

// TestHole2_NoOrphanWhenCancelledDuringCreate: SIGTERM one second into a
// three-second create that commits all the same. Main saved the name
// before the create, looks it up within its grace, and deletes it; and a
// post that finds only the name (main killed outright) looks it up and
// deletes it too.
func TestHole2_NoOrphanWhenCancelledDuringCreate(t *testing.T) {
	t.Parallel()
	t.Run("main cancelled", func(t *testing.T) {
		t.Parallel()
		arrived := make(chan struct{}, 1)
		w := newWorldBehind(t, slowCommitCreate(3*time.Second, arrived))
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go func() {
			select {
			case <-arrived:
				time.Sleep(time.Second)
				cancel()
			case <-time.After(time.Minute):
			}
		}()
		job := w.runner.Run(ctx, ghactiontest.Step{With: w.with("account-ids", w.seeded.AccountIDs[0])})
		if !job.Cancelled || job.Main.ExitCode == 0 {
			t.Fatalf("the job was not cancelled (exit %d):\n%s", job.Main.ExitCode, job.Main.Log)
		}
		if job.State["token-name"] == "" || job.State["token-lost"] != "true" {
			t.Errorf("main's state %v does not record the name and the lost answer", job.State)
		}
		if job.Post == nil || job.Post.Failed {
			t.Errorf("post did not run cleanly:\n%v", job.Post)
		}
		if n := len(w.children()); n != 0 {
			t.Errorf("%d tokens outlive the cancelled job\nmain:\n%s", n, job.Main.Log)
		}
		job.AssertNoLeaks(t, w.seeded.UserToken)
	})
	t.Run("post finds a token main never heard of", func(t *testing.T) {
		t.Parallel()
		w := newWorldBehind(t, slowCommitCreate(0, nil))
		// As if main was killed mid-create: the name and pending are saved,
		// no id; the create commits two seconds into post.
		name := "cf-scoped-token octo-org/octo-repo 9876543210.1 deploy 0123456789ab"
		committed := make(chan struct{})
		go func() {
			defer close(committed)
			time.Sleep(2 * time.Second)
			w.e.IssueUserToken(w.seeded.UserID, emulator.TokenSpec{Name: name, ExpiresOn: time.Now().Add(time.Hour)})
		}()
		state := map[string]string{"token-id": "", "token-name": name, "token-expires-at": time.Now().Add(time.Hour).UTC().Format(time.RFC3339),
			"token-account": "", "token-pending": "true", "token-lost": ""}
		post := w.runner.RunPost(context.Background(), ghactiontest.Step{With: w.with("account-ids", w.seeded.AccountIDs[0])}, state)
		if post.Failed {
			t.Fatalf("post failed:\n%s", post.Log)
		}
		<-committed
		if n := len(w.children()); n != 0 {
			t.Errorf("%d tokens outlive the job\n%s", n, post.Log)
		}
	})
	t.Run("a failed rollback leaves the id for post", func(t *testing.T) {
		t.Parallel()
		w := newWorld(t)
		w.e.AddFault(emulator.Fault{Route: "GET /user/tokens/verify", Kind: emulator.Status, Status: 401})
		// A refusal, not a 5xx: the same outcome without a minute of retries.
		w.e.AddFault(emulator.Fault{Route: "DELETE /user/tokens/{token_id}", Kind: emulator.Status, Status: 403})
		step := ghactiontest.Step{With: w.with("account-ids", w.seeded.AccountIDs[0])}
		main := w.runner.RunMain(context.Background(), step)
		if main.ExitCode != 1 || main.State["token-id"] == "" {
			t.Fatalf("main: exit %d, state token-id %q; want a failure that keeps the id\n%s", main.ExitCode, main.State["token-id"], main.Log)
		}
		w.e.ClearFaults()
		post := w.runner.RunPost(context.Background(), step, main.State)
		if post.Failed || len(w.children()) != 0 {
			t.Errorf("post did not delete the token main could not:\n%s", post.Log)
		}
	})
}

// TestHole3_StateCannotBeSpoofed: the job's env can carry STATE_* (any
// earlier step can write GITHUB_ENV); post must act only on what this
// run's main saved — here, nothing — and never delete the parent token.
func TestHole3_StateCannotBeSpoofed(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		with []string
	}{
		{"mode sweep", []string{"mode", "sweep"}},
		{"mode revoke", []string{"mode", "revoke", "token-id", "00000000000000000000000000000000"}},
		{"a bad input", []string{"ttl", "5s"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t)
			parent, ok := w.token(w.seeded.UserTokenID)
			if !ok {
				t.Fatal("no parent")
			}
			w.runner.Env = map[string]string{
				"STATE_token-id": w.seeded.UserTokenID, "STATE_token-name": parent.Name,
				"STATE_token-pending": "true", "STATE_token-lost": "true",
			}
			step := ghactiontest.Step{With: w.with(append([]string{"account-ids", w.seeded.AccountIDs[0]}, tc.with...)...)}
			main := w.runner.RunMain(context.Background(), step)
			before := len(w.e.Requests())
			post := w.runner.RunPost(context.Background(), step, main.State)
			if _, ok := w.token(w.seeded.UserTokenID); !ok {
				t.Fatalf("the parent token was deleted\nmain:\n%s\npost:\n%s", main.Log, post.Log)
			}
			if post.Failed {
				t.Errorf("post failed:\n%s", post.Log)
			}
			for _, r := range w.e.Requests()[before:] {
				t.Errorf("post sent %s %s", r.Method, r.Path)
			}
		})
	}
}

// TestHole4_LoopbackMeansLoopback: with HTTP_PROXY set, an http:// api-url
// to a loopback host in any case never goes through the proxy, which would
// see the parent token in clear text.
func TestHole4_LoopbackMeansLoopback(t *testing.T) {
	t.Parallel()
	var proxied atomic.Int64
	proxy := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, _ *http.Request) {
		proxied.Add(1)
		http.Error(rw, "proxy", http.StatusBadGateway)
	}))
	t.Cleanup(proxy.Close)
	for _, host := range []string{"LOCALHOST", "LocalHost", "localhost", "127.0.0.1"} {
		t.Run(host, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t)
			w.runner.Env = map[string]string{"HTTP_PROXY": proxy.URL, "http_proxy": proxy.URL, "HTTPS_PROXY": proxy.URL, "NO_PROXY": ""}
			with := w.with("account-ids", w.seeded.AccountIDs[0])
			with["api-url"] = strings.Replace(w.apiURL, "127.0.0.1", host, 1)
			job := w.run(t, with)
			if job.Main.Failed || job.Post.Failed {
				t.Fatalf("main or post failed:\n%s\n%s", job.Main.Log, job.Post.Log)
			}
		})
	}
	if n := proxied.Load(); n != 0 {
		t.Errorf("%d requests went through the proxy", n)
	}
}

// rewriteCreate is a front that hands every POST to the emulator and edits
// the result of its answer before the binary reads it: a create answer no
// real API gives, made from a real one.
func rewriteCreate(edit func(result map[string]any)) func(*emulator.Emulator) http.Handler {
	return func(e *emulator.Emulator) http.Handler {
		return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodPost {
				e.ServeHTTP(rw, r)
				return
			}
			rec := httptest.NewRecorder()
			e.ServeHTTP(rec, r)
			var env map[string]any
			_ = json.Unmarshal(rec.Body.Bytes(), &env)
			edit(env["result"].(map[string]any))
			rw.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(rw).Encode(env)
		})
	}
}

// TestHole5_AnswersAreDataNeverCommands: an id in a create answer that
// would be a workflow command is a malformed answer — the token is found by
// name and deleted — and names from the API are escaped in the summary.
func TestHole5_AnswersAreDataNeverCommands(t *testing.T) {
	t.Parallel()
	t.Run("id with a workflow command", func(t *testing.T) {
		t.Parallel()
		w := newWorldBehind(t, rewriteCreate(func(res map[string]any) {
			res["id"] = res["id"].(string) + "\n::stop-commands::pwned"
		}))
		job := w.run(t, w.with("account-ids", w.seeded.AccountIDs[0]))
		if job.Main.ExitCode != 1 {
			t.Fatalf("main: exit %d, want 1\n%s", job.Main.ExitCode, job.Main.Log)
		}
		for _, st := range []*ghactiontest.Stage{job.Main, job.Post} {
			for _, c := range st.Commands {
				if strings.EqualFold(c.Name, "stop-commands") {
					t.Errorf("%s: an API answer became a workflow command: %q", st.Phase, c.Name)
				}
			}
			for _, l := range st.Lines {
				if strings.HasPrefix(strings.TrimSpace(l.Text), "::stop-commands::") {
					t.Errorf("%s: a line starts a workflow command: %q", st.Phase, l.Text)
				}
			}
		}
		if n := len(w.children()); n != 0 {
			t.Errorf("%d tokens outlive the malformed answer", n)
		}
	})
	t.Run("group names in the summary", func(t *testing.T) {
		t.Parallel()
		w := newWorldBehind(t, func(e *emulator.Emulator) http.Handler {
			return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
				if !strings.HasSuffix(r.URL.Path, "/permission_groups") {
					e.ServeHTTP(rw, r)
					return
				}
				rec := httptest.NewRecorder()
				e.ServeHTTP(rec, r)
				body := strings.ReplaceAll(rec.Body.String(), `"Access: Apps and Policies Write"`,
					`"Access: Apps and Policies Write\n\n# injected | <img src=x> ![i](https://x.test/p) [l](https://x.test) **b** `+"`"+`code`+"`"+`\r\n::warning::pwned"`)
				rw.Header().Set("Content-Type", "application/json")
				_, _ = io.WriteString(rw, body)
			})
		})
		job := w.run(t, w.with("account-ids", w.seeded.AccountIDs[0], "scopes", appsWrite))
		if job.Main.Failed {
			t.Fatalf("main failed:\n%s", job.Main.Log)
		}
		for i, line := range strings.Split(strings.TrimRight(job.Main.Summary, "\n"), "\n") {
			if i >= 2 && line != "" && !strings.HasPrefix(line, "|") {
				t.Errorf("summary line %d is not a table row: %q", i+1, line)
			}
		}
		// Every Markdown or HTML character of the name is escaped: none is
		// left that is not preceded by a backslash.
		_, groupsRow, _ := strings.Cut(job.Main.Summary, "| Permission groups |")
		groupsRow, _, _ = strings.Cut(groupsRow, "\n")
		if live := regexp.MustCompile(`(^|[^\\])(<img|!\[|\[l\]|\*\*|#)`).FindString(groupsRow); live != "" || strings.Contains(job.Main.Summary, "\r") {
			t.Errorf("the summary carries live Markdown or HTML (%q) or a raw control character:\n%s", live, job.Main.Summary)
		}
		if len(job.Main.Annotations("warning")) != 0 {
			t.Error("a group name became a ::warning::")
		}
	})
	t.Run("a value that is no token never reaches the shell", func(t *testing.T) {
		t.Parallel()
		w := newWorldBehind(t, rewriteCreate(func(res map[string]any) {
			res["value"] = "cfut_x$(touch pwned)"
		}))
		dir := t.TempDir()
		// --verify false: the value is never checked against the API, so only
		// the client's own check of the answer stands between it and the shell.
		cmd := exec.Command(mustBinary(t), "create", "--account-ids", w.seeded.AccountIDs[0], "--format", "env", "--verify", "false")
		cmd.Dir = dir
		cmd.Env = []string{"CF_SCOPED_TOKEN_API_TOKEN=" + w.seeded.UserToken, "CF_SCOPED_TOKEN_API_URL=" + w.apiURL}
		out, err := cmd.Output()
		if err == nil {
			t.Fatalf("create succeeded with a value that is no token:\n%s", out)
		}
		shell := exec.Command("sh", "-c", `eval "$1"`, "sh", string(out))
		shell.Dir = dir
		_ = shell.Run()
		if _, err := os.Stat(filepath.Join(dir, "pwned")); err == nil {
			t.Error("eval of the output ran a command from the API's answer")
		}
		if n := len(w.children()); n != 0 {
			t.Errorf("%d tokens outlive the malformed answer", n)
		}
	})
	t.Run("list and sweep print names as data", func(t *testing.T) {
		t.Parallel()
		w := newWorld(t)
		// Anyone who may make tokens on the account can name one so; expired,
		// it is one sweep deletes and prints.
		hostile := token.NamePrefix + "x\n::warning::pwned\u009b31m\u2028::error::pwned"
		w.e.IssueUserToken(w.seeded.UserID, emulator.TokenSpec{Name: hostile, ExpiresOn: time.Now().Add(-time.Hour)})
		for _, args := range [][]string{{"list"}, {"sweep", "--dry-run"}, {"sweep"}} {
			cmd := exec.Command(mustBinary(t), args...)
			cmd.Env = []string{"CF_SCOPED_TOKEN_API_TOKEN=" + w.seeded.UserToken, "CF_SCOPED_TOKEN_API_URL=" + w.apiURL}
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("%v: %v\n%s", args, err, out)
			}
			if !strings.Contains(string(out), `x\n::warning::pwned`) {
				t.Errorf("%v does not show the name, escaped:\n%s", args, out)
			}
			for _, line := range strings.FieldsFunc(string(out), func(r rune) bool { return r == '\n' || r == '\r' || r == '\u2028' }) {
				if strings.HasPrefix(strings.TrimSpace(line), "::") || strings.ContainsRune(line, '\u009b') {
					t.Errorf("%v: a token's name became a line of its own or a terminal escape: %q", args, line)
				}
			}
		}
	})
}

// TestHole6_PostDeletesExactlyWhatItChecked: a state value main could not
// have written is refused as it is — never trimmed into something else and
// sent — and nothing is deleted on a guess.
func TestHole6_PostDeletesExactlyWhatItChecked(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		edit func(state map[string]string)
	}{
		{"trailing space on the id", func(s map[string]string) { s["token-id"] += " " }},
		{"NBSP on the id", func(s map[string]string) { s["token-id"] += "\u00a0" }},
		{"two accounts", func(s map[string]string) {
			s["token-account"] = "0a1b2c3d4e5f60718293a4b5c6d7e8f9,1b2c3d4e5f60718293a4b5c6d7e8f90a"
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t)
			step := ghactiontest.Step{With: w.with("account-ids", w.seeded.AccountIDs[0])}
			main := w.mustRunMain(t, step)
			before := len(w.e.Requests())
			tc.edit(main.State)
			post := w.runner.RunPost(context.Background(), step, main.State)
			if post.ExitCode != 1 || len(post.Annotations("error")) != 1 {
				t.Fatalf("post: exit %d, want 1 with one error\n%s", post.ExitCode, post.Log)
			}
			if msg := post.Annotations("error")[0].Data; !strings.Contains(msg, "state") {
				t.Errorf("the error does not name the state: %q", msg)
			}
			if n := len(w.e.Requests()) - before; n != 0 {
				t.Errorf("post sent %d requests on a state it could not trust", n)
			}
		})
	}
}

// TestHole8_PostFinishesItsDeleteUnderSIGTERM: the runner cancels the job
// while post's DELETE is on the wire; post finishes it within its grace.
func TestHole8_PostFinishesItsDeleteUnderSIGTERM(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	step := ghactiontest.Step{With: w.with("account-ids", w.seeded.AccountIDs[0])}
	main := w.mustRunMain(t, step)
	w.e.AddFault(emulator.Fault{Route: "DELETE /user/tokens/{token_id}", Kind: emulator.Latency, Delay: 2 * time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	post := w.runner.RunPost(ctx, step, main.State)
	if n := len(w.children()); n != 0 {
		t.Errorf("%d tokens outlive a post cancelled mid-delete (exit %d)\n%s", n, post.ExitCode, post.Log)
	}
}

// TestHole9_MessagesSayWhatHappened: a failed verify whose rollback failed
// too says the token could not be deleted, not that it was.
func TestHole9_MessagesSayWhatHappened(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.e.AddFault(emulator.Fault{Route: "GET /user/tokens/verify", Kind: emulator.Status, Status: 401})
	w.e.AddFault(emulator.Fault{Route: "DELETE /user/tokens/{token_id}", Kind: emulator.Status, Status: 403})
	main := w.runner.RunMain(context.Background(), ghactiontest.Step{With: w.with("account-ids", w.seeded.AccountIDs[0])})
	errs := main.Annotations("error")
	if main.ExitCode != 1 || len(errs) != 1 {
		t.Fatalf("main: exit %d with %d errors\n%s", main.ExitCode, len(errs), main.Log)
	}
	msg := errs[0].Data
	if strings.Contains(msg, "so it was deleted") || !strings.Contains(msg, "could not be deleted") || !strings.Contains(msg, main.State["token-id"]) {
		t.Errorf("the error does not say what happened: %q", msg)
	}
}

// TestHole11_NoTokenMakingChildren: a group that manages API tokens is
// refused by name before any request, and by id after the one look-up that
// names it — never created.
func TestHole11_NoTokenMakingChildren(t *testing.T) {
	t.Parallel()
	const accountAPITokensWrite = "5bc3f8b21c554832afc660159ab75fa4" // reference/cloudflare/access-permission-groups.json
	for _, tc := range []struct {
		scopes   string
		requests int
	}{
		{"Account API Tokens:write", 0},
		{"API Tokens Write", 0},
		{"organizations\n" + accountAPITokensWrite, 1},
	} {
		t.Run(tc.scopes, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t)
			job := w.run(t, w.with("account-ids", w.seeded.AccountIDs[0], "scopes", tc.scopes))
			errs := job.Main.Annotations("error")
			if job.Main.ExitCode != 1 || len(errs) != 1 || !strings.HasPrefix(errs[0].Data, "Input scopes: ") ||
				!strings.Contains(errs[0].Data, "tokens of its own") {
				t.Fatalf("main: exit %d, errors %v\n%s", job.Main.ExitCode, errs, job.Main.Log)
			}
			reqs := w.e.Requests()
			if len(reqs) != tc.requests {
				t.Errorf("%d requests, want %d", len(reqs), tc.requests)
			}
			for _, r := range reqs {
				if r.Route != "GET /user/tokens/permission_groups" {
					t.Errorf("unexpected request %s %s", r.Method, r.Path)
				}
			}
		})
	}
}

// token is the emulator's token with the id.
func (w *world) token(id string) (emulator.Token, bool) {
	for _, t := range w.e.Tokens() {
		if t.ID == id {
			return t, true
		}
	}
	return emulator.Token{}, false
}
