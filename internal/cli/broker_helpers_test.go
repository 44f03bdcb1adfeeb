package cli_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
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
	"github.com/cf-scoped-token/cf-scoped-token/internal/broker/brokertest"
	"github.com/cf-scoped-token/cf-scoped-token/internal/emulator"
	"github.com/cf-scoped-token/cf-scoped-token/internal/emulator/emulatortest"
	"github.com/cf-scoped-token/cf-scoped-token/internal/oidcissuer"
	"github.com/cf-scoped-token/cf-scoped-token/internal/oidcissuer/oidcissuertest"
	"github.com/cf-scoped-token/cf-scoped-token/internal/retry"
)

// e2ePolicy is the policy of the end-to-end tests (a format for
// writePolicy): brokertest.Policy behind a comment line, so that the line
// numbers the tests expect count a comment too.
const e2ePolicy = "# the end-to-end tests' policy\n" + brokertest.Policy

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
	cf := emulatortest.Serve(t, k.e, nil)
	k.apiURL = cf.URL + emulator.BasePath
	k.iss, _ = oidcissuertest.Serve(t)
	return k
}

// jwt signs a token of the default job for the brokers' audience.
func (k *keyless) jwt(t *testing.T, claims map[string]any, opts ...oidcissuer.SignOption) string {
	t.Helper()
	return oidcissuertest.Sign(t, k.iss, brokertest.Audience, claims, opts...)
}

// writePolicy writes a policy file, or writes it again (a format for
// brokertest.FormatPolicy).
func (k *keyless) writePolicy(t *testing.T, name, format string) string {
	t.Helper()
	path := filepath.Join(k.dir, name)
	if err := os.WriteFile(path, []byte(brokertest.FormatPolicy(format, k.iss.URL())), 0o600); err != nil {
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

// brokerProc is a broker running as the real binary.
type brokerProc struct {
	cmd            *exec.Cmd
	url            string
	stdout, stderr *brokertest.Buffer
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
	b := &brokerProc{cmd: cmd, stdout: &brokertest.Buffer{}, stderr: &brokertest.Buffer{}, done: make(chan struct{}),
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

// rawAnswer is an HTTP answer of the broker.
type rawAnswer struct {
	status int
	header http.Header
	body   string
	code   string
	desc   string
}

// Token values a failure message must not show, even a test's.
var (
	accessTokenField = regexp.MustCompile(`"access_token"\s*:\s*"[^"]*"`)
	jwtShaped        = regexp.MustCompile(`eyJ[\w-]*\.[\w-]*\.[\w-]*`)
)

// tokenIDs lists tokens by id, for a failure message: never their values.
func tokenIDs(ts []emulator.Token) []string {
	ids := make([]string, len(ts))
	for i, t := range ts {
		ids[i] = t.ID
	}
	return ids
}

// String is the answer for a failure message: its status and body, with
// the child token and anything shaped like a JWT withheld.
func (a rawAnswer) String() string {
	body := accessTokenField.ReplaceAllString(a.body, `"access_token":"[withheld]"`)
	return fmt.Sprintf("%d %s", a.status, jwtShaped.ReplaceAllString(body, "[JWT withheld]"))
}

// post sends a form (or any body) to the broker.
func (b *brokerProc) post(t *testing.T, path, contentType, body string) rawAnswer {
	t.Helper()
	a, err := b.tryPost(path, contentType, body)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// tryPost is post for a goroutine other than the test's, which may not
// call t.Fatal.
func (b *brokerProc) tryPost(path, contentType, body string) (rawAnswer, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, b.url+path, strings.NewReader(body))
	if err != nil {
		return rawAnswer{}, err
	}
	req.Header.Set("Content-Type", contentType)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return rawAnswer{}, err
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
	return a, nil
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
