package cli_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cf-scoped-token/cf-scoped-token/internal/broker/brokertest"
	"github.com/cf-scoped-token/cf-scoped-token/internal/ghaction/ghactiontest"
	"github.com/cf-scoped-token/cf-scoped-token/internal/oidcissuer"
)

// recorder is a reverse proxy in front of a server that counts requests
// by path, keeps the JSON "value" of answers (the OIDC tokens it served),
// and can answer instead of the server.
type recorder struct {
	srv   *httptest.Server
	mu    sync.Mutex
	paths []string
	jwts  []string
	// fault, if set, answers a request instead of the server (true).
	fault atomic.Pointer[func(http.ResponseWriter, *http.Request) bool]
	// edit, if set, rewrites the server's answer to a request's path.
	edit atomic.Pointer[func(path string, body []byte) []byte]
}

func newRecorder(t *testing.T, target string) *recorder {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	r := &recorder{}
	proxy := httputil.NewSingleHostReverseProxy(u)
	proxy.ModifyResponse = func(res *http.Response) error {
		body, err := io.ReadAll(res.Body)
		if err != nil {
			return err
		}
		res.Body.Close()
		if e := r.edit.Load(); e != nil {
			body = (*e)(res.Request.URL.Path, body)
			res.ContentLength = int64(len(body))
			res.Header.Set("Content-Length", strconv.Itoa(len(body)))
		}
		var v struct {
			Value string `json:"value"`
		}
		if json.Unmarshal(body, &v) == nil && v.Value != "" {
			r.mu.Lock()
			r.jwts = append(r.jwts, v.Value)
			r.mu.Unlock()
		}
		res.Body = io.NopCloser(strings.NewReader(string(body)))
		return nil
	}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		r.paths = append(r.paths, req.Method+" "+req.URL.Path)
		r.mu.Unlock()
		if f := r.fault.Load(); f != nil && (*f)(w, req) {
			return
		}
		proxy.ServeHTTP(w, req)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

// failWith makes r answer status with a JSON body instead of the server, to
// the requests when says yes to.
func (r *recorder) failWith(status int, body string, when func(*http.Request) bool) {
	f := func(w http.ResponseWriter, req *http.Request) bool {
		if !when(req) {
			return false
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
		return true
	}
	r.fault.Store(&f)
}

func (r *recorder) requests() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.paths...)
}

func (r *recorder) served() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.jwts...)
}

// keylessJob is a keyless step's world: the emulator, the local issuer
// behind a recorder (the job's id-token endpoint), a broker process behind
// another (the step's broker-url), and a runner whose job has
// "permissions: id-token: write".
type keylessJob struct {
	*keyless
	b      *brokerProc
	idt    *recorder // in front of the issuer
	front  *recorder // in front of the broker
	runner *ghactiontest.Runner
	job    oidcissuer.Job
	// cfAtStart is how many requests the broker made of Cloudflare to start
	// (the parent's check, the catalogue), before any job ran.
	cfAtStart int
}

func newKeylessJob(t *testing.T, claims map[string]any) *keylessJob {
	t.Helper()
	k := newKeyless(t)
	b := k.startBroker(t, k.writePolicy(t, "policy.yaml", e2ePolicy), k.seeded.UserToken)
	j := &keylessJob{keyless: k, b: b, idt: newRecorder(t, k.iss.URL()), front: newRecorder(t, b.url)}
	j.job = k.iss.NewJob(claims)
	requestURL := strings.Replace(j.job.RequestURL, k.iss.URL(), j.idt.srv.URL, 1)
	j.runner = &ghactiontest.Runner{Binary: mustBinary(t), ActionYML: filepath.Join(moduleRoot, "action.yml"),
		IDToken: &ghactiontest.IDTokenEndpoint{URL: requestURL, Token: j.job.RequestToken}}
	j.cfAtStart = k.cfRequests()
	return j
}

// requestsSinceStart is how many requests the job's world has seen since
// the broker started: for an OIDC token, at the broker, at Cloudflare.
func (j *keylessJob) requestsSinceStart() int {
	return len(j.idt.requests()) + len(j.front.requests()) + j.cfRequests() - j.cfAtStart
}

// with is a keyless step: broker-url and audience, no api-token.
func (j *keylessJob) with(kv ...string) map[string]string {
	m := map[string]string{"broker-url": j.front.srv.URL, "audience": brokertest.Audience}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

func (j *keylessJob) run(t *testing.T, with map[string]string) *ghactiontest.Job {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	job := j.runner.Run(ctx, ghactiontest.Step{With: with})
	for _, s := range []*ghactiontest.Stage{job.Main, job.Post} {
		if s != nil && (s.Err != nil || len(s.Issues) > 0 || s.FileCommandErr != nil) {
			t.Fatalf("%s: the runner simulation complained: %v %v %v", s.Phase, s.Err, s.Issues, s.FileCommandErr)
		}
	}
	secrets := append([]string{j.seeded.UserToken, j.seeded.AccountToken, j.job.RequestToken}, j.idt.served()...)
	if v := job.Main.Outputs["token"]; v != "" {
		secrets = append(secrets, v)
	}
	job.AssertNoLeaks(t, secrets...)
	return job
}

// TestKeyless_HappyPath: no Cloudflare secret in the job; the OIDC token is
// fetched once for the audience and masked, traded once at the broker,
// the child masked first and handed over as in direct mode, and deleted by
// post with one revoke at the broker.
func TestKeyless_HappyPath(t *testing.T) {
	t.Parallel()
	j := newKeylessJob(t, nil)
	job := j.run(t, j.with("scopes", "apps-and-policies:write", "ttl", "30m", "export-env", "true"))
	if job.Main.Failed || job.Post == nil || job.Post.Failed {
		t.Fatalf("main or post failed:\nmain:\n%s\npost:\n%v", job.Main.Log, job.Post)
	}
	child, id := job.Main.Outputs["token"], job.Main.Outputs["token-id"]
	if child == "" || id == "" || job.Main.Outputs["expires-at"] == "" || !strings.HasPrefix(job.Main.Outputs["name"], "cf-scoped-token acme/site-deploy ") {
		t.Fatalf("outputs %v", keys(job.Main.Outputs))
	}
	if job.Main.Env["CLOUDFLARE_API_TOKEN"] != child {
		t.Error("export-env: CLOUDFLARE_API_TOKEN is not the child")
	}
	jwts := j.idt.served()
	if len(jwts) != 1 {
		t.Fatalf("the issuer served %d OIDC tokens, want 1", len(jwts))
	}
	for _, secret := range []string{jwts[0], child, j.job.RequestToken} {
		if maskLine(job.Main, secret) < 0 {
			t.Errorf("a secret (%.8s…) was never masked", secret)
		}
	}
	if mask, first := maskLine(job.Main, child), firstLineWith(job.Main, "granted token"); first >= 0 && mask > first {
		t.Error("the child was masked after a line about it")
	}
	if !strings.Contains(job.Main.Summary, "access-deploy") {
		t.Errorf("the summary does not name the broker's rule:\n%s", job.Main.Summary)
	}
	// Request counts: one OIDC token request with the audience, one exchange, one revoke.
	idReqs := j.idt.requests()
	if len(idReqs) != 1 || !strings.Contains(idReqs[0], "/idtoken") {
		t.Errorf("requests for the OIDC token: %v, want one", idReqs)
	}
	if got := j.front.requests(); len(got) != 2 || got[0] != "POST /v1/token" || got[1] != "POST /v1/revoke" {
		t.Errorf("requests to the broker: %v, want one exchange (main) and one revoke (post)", got)
	}
	if j.alive(id) {
		t.Error("the child outlives the job")
	}
	j.b.addSecret(child)
}

func firstLineWith(st *ghactiontest.Stage, s string) int {
	for i, l := range st.Lines {
		if strings.Contains(l.Text, s) {
			return i
		}
	}
	return -1
}

// oneError fails the test unless main exited 1 with exactly one ::error::
// holding every one of want; it returns that error's text.
func oneError(t *testing.T, job *ghactiontest.Job, want ...string) string {
	t.Helper()
	errs := job.Main.Annotations("error")
	ok := job.Main.ExitCode == 1 && len(errs) == 1
	for _, w := range want {
		ok = ok && strings.Contains(errs[0].Data, w)
	}
	if !ok {
		t.Fatalf("main: exit %d, errors %v, want exit 1 and one error saying %q\n%s", job.Main.ExitCode, errs, want, job.Main.Log)
	}
	return errs[0].Data
}

// TestKeyless_Refusals: what a user can act on, each in one ::error::.
func TestKeyless_Refusals(t *testing.T) {
	t.Parallel()
	t.Run("denied by the policy: the broker's reason", func(t *testing.T) {
		t.Parallel()
		j := newKeylessJob(t, map[string]any{"ref": "refs/heads/feature"})
		job := j.run(t, j.with())
		oneError(t, job, `claim ref is "refs/heads/feature"`)
		if n := len(j.children()); n != 0 {
			t.Errorf("%d tokens after a denial", n)
		}
	})
	t.Run("no id-token: write", func(t *testing.T) {
		t.Parallel()
		j := newKeylessJob(t, nil)
		j.runner.IDToken = nil
		job := j.run(t, j.with())
		oneError(t, job, "permissions: id-token: write", "fork")
		if n := j.requestsSinceStart(); n != 0 {
			t.Errorf("%d requests, want none", n)
		}
	})
	t.Run("both credentials", func(t *testing.T) {
		t.Parallel()
		j := newKeylessJob(t, nil)
		job := j.run(t, j.with("api-token", j.seeded.UserToken))
		if msg := oneError(t, job); !strings.HasPrefix(msg, "Input broker-url: ") {
			t.Fatalf("the error %q does not start with the input's name", msg)
		}
		if n := j.requestsSinceStart(); n != 0 {
			t.Errorf("%d requests, want none", n)
		}
	})
	t.Run("broker answering 5xx: retried", func(t *testing.T) {
		t.Parallel()
		j := newKeylessJob(t, nil)
		var n atomic.Int32
		j.front.failWith(http.StatusServiceUnavailable, `{"error":"temporarily_unavailable","error_description":"Cloudflare is failing"}`,
			func(r *http.Request) bool { return r.URL.Path == "/v1/token" && n.Add(1) <= 2 })
		job := j.run(t, j.with())
		if job.Main.Failed || job.Post.Failed {
			t.Fatalf("main or post failed:\n%s", job.Main.Log)
		}
		if got := j.front.requests(); len(got) != 4 {
			t.Errorf("requests to the broker %v, want 3 exchanges (2 refused 503) and a revoke", got)
		}
	})
	t.Run("broker answering 4xx: not retried, explained", func(t *testing.T) {
		t.Parallel()
		j := newKeylessJob(t, nil)
		j.front.failWith(http.StatusBadRequest, `{"error":"invalid_scope","error_description":"rule \"access-deploy\": scope DNS:write is not granted"}`,
			func(*http.Request) bool { return true })
		job := j.run(t, j.with())
		oneError(t, job, "scope DNS:write is not granted")
		if got := j.front.requests(); len(got) != 1 {
			t.Errorf("requests to the broker %v, want one", got)
		}
	})
	t.Run("a token in a malformed answer: masked and revoked", func(t *testing.T) {
		t.Parallel()
		j := newKeylessJob(t, nil)
		edit := func(path string, body []byte) []byte {
			if path != "/v1/token" {
				return body
			}
			return regexp.MustCompile(`"expires_at":"[^"]*"`).ReplaceAll(body, []byte(`"expires_at":"soon"`))
		}
		j.front.edit.Store(&edit)
		job := j.run(t, j.with())
		oneError(t, job, "expires_at is not an RFC 3339 time")
		if got := j.front.requests(); len(got) != 2 || got[1] != "POST /v1/revoke" {
			t.Errorf("requests to the broker %v, want the exchange, then a revoke of what it made", got)
		}
		if kids := j.children(); len(kids) != 0 {
			t.Errorf("%d tokens outlive the malformed answer", len(kids))
		}
	})
	t.Run("broker down: its URL and what was tried", func(t *testing.T) {
		t.Parallel()
		j := newKeylessJob(t, nil)
		down := httptest.NewServer(http.NotFoundHandler())
		downURL := down.URL
		down.Close()
		job := j.run(t, j.with("broker-url", downURL))
		oneError(t, job, downURL, "connection refused")
		if !strings.Contains(job.Main.Log, "attempt 2 of 5 failed") {
			t.Errorf("the retries are not told:\n%s", job.Main.Log)
		}
	})
}

// TestKeyless_PostFinishesUnderSIGTERM: a post step cancelled while the
// broker does not answer its revoke ends within the clean-up grace, before
// the runner's kill, with an error naming the token it could not delete —
// as the direct post step does.
func TestKeyless_PostFinishesUnderSIGTERM(t *testing.T) {
	t.Parallel()
	j := newKeylessJob(t, nil)
	step := ghactiontest.Step{With: j.with("scopes", "apps-and-policies:write")}
	main := j.runner.RunMain(context.Background(), step)
	if main.Failed {
		t.Fatalf("main failed (exit %d):\n%s", main.ExitCode, main.Log)
	}
	id := main.State["token-id"]
	// The revoke hangs until the client goes away (which the server sees
	// once the body is read) or the test ends.
	release := make(chan struct{})
	t.Cleanup(func() { close(release) }) // before the server's Close, which waits for this handler
	hang := func(_ http.ResponseWriter, req *http.Request) bool {
		if req.URL.Path != "/v1/revoke" {
			return false
		}
		_, _ = io.Copy(io.Discard, req.Body)
		select {
		case <-req.Context().Done():
		case <-release:
		}
		return true
	}
	j.front.fault.Store(&hang)
	const sigterm, grace, margin = 500 * time.Millisecond, 8 * time.Second, 1500 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), sigterm)
	defer cancel()
	start := time.Now()
	post := j.runner.RunPost(ctx, step, main.State)
	took := time.Since(start)
	errs := post.Annotations("error")
	if post.ExitCode != 1 || len(errs) != 1 || !strings.Contains(errs[0].Data, id) {
		t.Fatalf("post: exit %d after %s, errors %v; want exit 1 and one error naming token %s\n%s", post.ExitCode, took, errs, id, post.Log)
	}
	if took > sigterm+grace+margin {
		t.Errorf("post took %s, want at most the grace (%s) after SIGTERM", took, grace)
	}
	if got := j.front.requests(); len(got) != 2 || got[1] != "POST /v1/revoke" {
		t.Errorf("requests to the broker %v, want the exchange and one revoke", got)
	}
}

// TestKeyless_RevokeFalseKeepsTheToken: with revoke: false the post step
// says the token is kept and when it expires, and sends the broker no
// revoke: the token outlives the job.
func TestKeyless_RevokeFalseKeepsTheToken(t *testing.T) {
	t.Parallel()
	j := newKeylessJob(t, nil)
	job := j.run(t, j.with("scopes", "apps-and-policies:write", "revoke", "false"))
	if job.Main.Failed || job.Post == nil || job.Post.Failed {
		t.Fatalf("main or post failed:\nmain:\n%s\npost:\n%v", job.Main.Log, job.Post)
	}
	id, expires := job.Main.Outputs["token-id"], job.Main.Outputs["expires-at"]
	j.b.addSecret(job.Main.Outputs["token"])
	notices := job.Post.Annotations("notice")
	if len(notices) != 1 || !strings.Contains(notices[0].Data, "Token "+id+" is kept") || !strings.Contains(notices[0].Data, expires) {
		t.Errorf("post notices %v, want one saying token %s is kept until %s", notices, id, expires)
	}
	if got := j.front.requests(); len(got) != 1 || got[0] != "POST /v1/token" {
		t.Errorf("requests to the broker: %v, want the exchange alone", got)
	}
	if !j.alive(id) {
		t.Error("the kept token is gone")
	}
}

// TestKeyless_AllowedIPsRunner: allowed-ips "runner" asks the broker for
// "caller", the address it sees the job come from (loopback here): the
// child may be used from there alone.
func TestKeyless_AllowedIPsRunner(t *testing.T) {
	t.Parallel()
	j := newKeylessJob(t, nil)
	job := j.run(t, j.with("scopes", "apps-and-policies:write", "allowed-ips", "runner", "revoke", "false"))
	if job.Main.Failed {
		t.Fatalf("main failed:\n%s", job.Main.Log)
	}
	j.b.addSecret(job.Main.Outputs["token"])
	id := job.Main.Outputs["token-id"]
	var got []string
	for _, tok := range j.e.Tokens() {
		if tok.ID == id {
			got = tok.AllowedIPs
		}
	}
	if len(got) != 1 || !strings.HasPrefix(got[0], "127.0.0.1") {
		t.Errorf("token %s may be used from %v, want the loopback caller alone", id, got)
	}
}
