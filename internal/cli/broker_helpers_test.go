package cli_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cf-scoped-token/cf-scoped-token/internal/broker"
	"github.com/cf-scoped-token/cf-scoped-token/internal/emulator"
	"github.com/cf-scoped-token/cf-scoped-token/internal/oidcissuer"
	"github.com/cf-scoped-token/cf-scoped-token/internal/retry"
)

// brokerAud is the audience of the end-to-end brokers.
const brokerAud = "https://cf-broker.test"

// e2ePolicy is the policy of the end-to-end tests: %[1]s is the issuer.
const e2ePolicy = `# the end-to-end tests' policy
audience: https://cf-broker.test
issuers:
  github: %[1]s
rules:
  - name: access-deploy
    issuer: github
    claims:
      repository_owner_id: "46576199"
      repository_id: "1104004353"
      ref: refs/heads/main
    grant:
      account-ids: [0a1b2c3d4e5f60718293a4b5c6d7e8f9, 1b2c3d4e5f60718293a4b5c6d7e8f90a]
      scopes: [apps-and-policies:write, organizations:read]
      max-ttl: 2h
`

// keyless is one Cloudflare emulator and one local OIDC issuer, each on a
// loopback server, for brokers run as real processes.
type keyless struct {
	e      *emulator.Emulator
	seeded emulator.Seeded
	apiURL string
	iss    *oidcissuer.Issuer
	dir    string
}

func newKeyless(t *testing.T) *keyless {
	t.Helper()
	k := &keyless{e: emulator.New(), dir: t.TempDir()}
	k.seeded = emulator.Seed(k.e)
	cf := httptest.NewServer(k.e)
	t.Cleanup(func() {
		cf.Close()
		for _, r := range k.e.Unhandled() {
			t.Errorf("request to an unknown route: %s %s", r.Method, r.Path)
		}
	})
	k.apiURL = cf.URL + emulator.BasePath
	srv := httptest.NewUnstartedServer(nil)
	iss, err := oidcissuer.New("http://" + srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	srv.Config.Handler = iss
	srv.Start()
	t.Cleanup(srv.Close)
	k.iss = iss
	return k
}

// jwt signs a token of the default job for the brokers' audience.
func (k *keyless) jwt(t *testing.T, claims map[string]any, opts ...oidcissuer.SignOption) string {
	t.Helper()
	c := map[string]any{"aud": brokerAud}
	for key, v := range claims {
		c[key] = v
	}
	raw, err := k.iss.Sign(c, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// writePolicy writes a policy file (a format with the issuer as %[1]s).
func (k *keyless) writePolicy(t *testing.T, name, format string) string {
	t.Helper()
	path := filepath.Join(k.dir, name)
	if err := os.WriteFile(path, []byte(fmt.Sprintf(format, k.iss.URL())), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func (k *keyless) cfRequests() int { return len(k.e.Requests()) }

func (k *keyless) alive(id string) bool {
	for _, tok := range k.e.Tokens() {
		if tok.ID == id {
			return true
		}
	}
	return false
}

// children are the tokens besides the seeded parents.
func (k *keyless) children() []emulator.Token {
	return k.seeded.Children(k.e)
}

// lockedBuffer collects a process's output.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// brokerProc is a broker running as the real binary.
type brokerProc struct {
	cmd            *exec.Cmd
	url            string
	stdout, stderr *lockedBuffer
	done           chan struct{}
	exit           error
	client         *broker.Client
	// secrets must never appear in the process's output; tests add the
	// child tokens they get.
	mu      sync.Mutex
	secrets []string
}

var listening = regexp.MustCompile(`listening on (http://[0-9.:]+);`)

// startBroker runs the binary's broker command against k with the policy
// file and the parent token (from the environment); it waits until the
// broker listens, or fails the test if it exits first.
func (k *keyless) startBroker(t *testing.T, policyPath, parent string, args ...string) *brokerProc {
	t.Helper()
	b := k.runBroker(t, policyPath, parent, args...)
	deadline := time.After(20 * time.Second)
	for {
		if m := listening.FindStringSubmatch(b.stderr.String()); m != nil {
			b.url = m[1]
			break
		}
		select {
		case <-b.done:
			t.Fatalf("the broker exited before listening (%v):\n%s", b.exit, b.stderr)
		case <-deadline:
			t.Fatalf("the broker did not listen within 20 s:\n%s", b.stderr)
		case <-time.After(10 * time.Millisecond):
		}
	}
	b.client = &broker.Client{BaseURL: b.url, HTTP: &http.Client{Timeout: 30 * time.Second}, Retry: retry.Policy{Attempts: 1}}
	return b
}

// runBroker starts the broker command without waiting for it.
func (k *keyless) runBroker(t *testing.T, policyPath, parent string, args ...string) *brokerProc {
	t.Helper()
	argv := append([]string{"broker", "--policy", policyPath, "--listen", "127.0.0.1:0", "--api-url", k.apiURL}, args...)
	cmd := exec.Command(mustBinary(t), argv...)
	cmd.Env = []string{"CF_SCOPED_TOKEN_API_TOKEN=" + parent}
	b := &brokerProc{cmd: cmd, stdout: &lockedBuffer{}, stderr: &lockedBuffer{}, done: make(chan struct{}),
		secrets: []string{parent, k.seeded.UserToken, k.seeded.AccountToken}}
	cmd.Stdout, cmd.Stderr = b.stdout, b.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		b.exit = cmd.Wait()
		close(b.done)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-b.done:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-b.done
		}
		b.assertNoSecrets(t)
	})
	return b
}

// wait waits for the process to exit and returns its exit code.
func (b *brokerProc) wait(t *testing.T, within time.Duration) int {
	t.Helper()
	select {
	case <-b.done:
	case <-time.After(within):
		t.Fatalf("the broker did not exit within %s:\n%s", within, b.stderr)
	}
	return b.cmd.ProcessState.ExitCode()
}

func (b *brokerProc) addSecret(s string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.secrets = append(b.secrets, s)
}

// assertNoSecrets scans the process's stdout and stderr for every secret
// it saw and for any JWT.
func (b *brokerProc) assertNoSecrets(t *testing.T) {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	for name, out := range map[string]string{"stdout": b.stdout.String(), "stderr": b.stderr.String()} {
		for _, s := range b.secrets {
			if s != "" && strings.Contains(out, s) {
				t.Errorf("the broker's %s holds a secret (%.10s…)", name, s)
			}
		}
		if strings.Contains(out, "eyJ") {
			t.Errorf("the broker's %s holds a JWT", name)
		}
	}
	// Every stdout line is one JSON audit entry.
	sc := bufio.NewScanner(strings.NewReader(b.stdout.String()))
	for sc.Scan() {
		var e broker.Entry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil || e.Event == "" {
			t.Errorf("stdout line is not an audit entry: %q", sc.Text())
		}
	}
}

// audit decodes the audit log so far.
func (b *brokerProc) audit(t *testing.T) []broker.Entry {
	t.Helper()
	var out []broker.Entry
	sc := bufio.NewScanner(strings.NewReader(b.stdout.String()))
	for sc.Scan() {
		var e broker.Entry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("audit line %q: %v", sc.Text(), err)
		}
		out = append(out, e)
	}
	return out
}

// rawAnswer is an HTTP answer of the broker.
type rawAnswer struct {
	status int
	header http.Header
	body   string
	code   string
	desc   string
}

// post sends a form (or any body) to the broker.
func (b *brokerProc) post(t *testing.T, path, contentType, body string) rawAnswer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, b.url+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	a := rawAnswer{status: res.StatusCode, header: res.Header, body: string(raw)}
	var eb struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	if json.Unmarshal(raw, &eb) == nil {
		a.code, a.desc = eb.Error, eb.Description
	}
	return a
}

func (b *brokerProc) exchangeForm(t *testing.T, form url.Values) rawAnswer {
	t.Helper()
	return b.post(t, broker.TokenPath, "application/x-www-form-urlencoded", form.Encode())
}

func (b *brokerProc) get(t *testing.T, path string) int {
	t.Helper()
	res, err := http.Get(b.url + path)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

// form is an exchange form for subject, with overrides (an empty value
// removes a parameter).
func form(subject string, kv ...string) url.Values {
	f := url.Values{
		"grant_type":         {broker.GrantTypeTokenExchange},
		"subject_token":      {subject},
		"subject_token_type": {broker.TokenTypeIDToken},
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "" {
			f.Del(kv[i])
		} else {
			f.Set(kv[i], kv[i+1])
		}
	}
	return f
}

// childAccess calls the emulator's Access API with a child token.
func (k *keyless) childAccess(t *testing.T, child, account string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, k.apiURL+"/accounts/"+account+"/access/apps", nil)
	req.Header.Set("Authorization", "Bearer "+child)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

// anotherParent issues a second user parent of the seeded user, able to
// make the e2e policy's tokens.
func (k *keyless) anotherParent() string {
	accounts := map[string]string{}
	for _, id := range k.seeded.AccountIDs {
		accounts["com.cloudflare.api.account."+id] = "*"
	}
	_, v := k.e.IssueUserToken(k.seeded.UserID, emulator.TokenSpec{
		Name: "another broker's parent",
		Policies: []emulator.Policy{
			{Effect: "allow", PermissionGroups: []string{"686d18d5ac6c441c867cbf6771e58a0a"}, // API Tokens Write
				Resources: map[string]string{"com.cloudflare.api.user." + k.seeded.UserID: "*"}},
			{Effect: "allow", PermissionGroups: []string{appsWrite, orgsWrite}, Resources: accounts},
		},
	})
	return v
}
