package main

// The tests that run the documentation: README.md's shell blocks and the CI
// cookbook (docs/ci, docs/examples/macos-windows.yml), against the real
// binary and the emulator, on loopback only. This file holds what they
// share: the binary, a Markdown and a shell reader, the flag check, the
// emulator world of the docs' placeholder account, the stand-ins for the
// tools the docs call, and a loopback stand-in for the GitHub release.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cf-scoped-token/cf-scoped-token/internal/emulator"
	"github.com/cf-scoped-token/cf-scoped-token/internal/emulator/emulatortest"
	"github.com/cf-scoped-token/cf-scoped-token/internal/ghaction/ghactiontest"
)

// docsBinary is the real cf-scoped-token, built once for every docs test.
var docsBinary = ghactiontest.NewSharedBuild(".")

func mustDocsBinary(t *testing.T) string {
	t.Helper()
	return docsBinary.Path(t)
}

// requireTools skips a test that needs programs this machine lacks (.ci/run
// and the CI workflow install them).
func requireTools(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s: %v", tool, err)
		}
	}
}

// systemPath is this machine's PATH without any directory that holds a
// cf-scoped-token (testscript puts a copy of the test binary on it): a
// snippet that installs the binary must find its own, or none.
func systemPath() string {
	var keep []string
	for _, dir := range filepath.SplitList(os.Getenv("PATH")) {
		if _, err := os.Stat(filepath.Join(dir, "cf-scoped-token")); err == nil || dir == "" {
			continue
		}
		keep = append(keep, dir)
	}
	return strings.Join(keep, string(filepath.ListSeparator))
}

// ---- Markdown

// mdBlock is a fenced code block of a Markdown file.
type mdBlock struct {
	Lang, Text string
	// Section is the nearest heading above it (## or ###), without the #s.
	Section string
	Line    int
}

// markdownBlocks reads the ``` fenced blocks of md, in order.
func markdownBlocks(md string) []mdBlock {
	var blocks []mdBlock
	var cur *mdBlock
	var body []string
	section := ""
	for i, line := range strings.Split(md, "\n") {
		switch {
		case cur == nil && strings.HasPrefix(line, "```"):
			cur = &mdBlock{Lang: strings.TrimSpace(strings.TrimPrefix(line, "```")), Section: section, Line: i + 1}
			body = nil
		case cur != nil && strings.TrimSpace(line) == "```":
			cur.Text = strings.Join(body, "\n") + "\n"
			blocks = append(blocks, *cur)
			cur = nil
		case cur != nil:
			body = append(body, line)
		case strings.HasPrefix(line, "## "), strings.HasPrefix(line, "### "):
			section = strings.TrimSpace(strings.TrimLeft(line, "#"))
		}
	}
	return blocks
}

// ---- shell

// shellCommands splits a shell script into its simple commands, as lists of
// words with quotes removed, well enough to find the commands and flags the
// docs give cf-scoped-token: it follows quotes, backslashes, line
// continuations, comments and command substitutions (whose commands are
// listed too), and ends a command at a newline, ;, &, |, ( or ).
func shellCommands(s string) [][]string {
	var cmds [][]string
	var words []string
	var cur strings.Builder
	inWord := false
	endWord := func() {
		if inWord {
			words = append(words, cur.String())
			cur.Reset()
			inWord = false
		}
	}
	endCommand := func() {
		endWord()
		if len(words) > 0 {
			cmds = append(cmds, words)
			words = nil
		}
	}
	substitution := func(i int) int { // s[i:] starts with "$("; returns the index of its ")"
		end := matchParen(s, i+1)
		cmds = append(cmds, shellCommands(s[i+2:end])...)
		cur.WriteString(s[i:min(end+1, len(s))])
		inWord = true
		return end
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\' && i+1 < len(s):
			i++
			if s[i] != '\n' {
				cur.WriteByte(s[i])
				inWord = true
			}
		case c == '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				j = len(s) - i - 1
			}
			cur.WriteString(s[i+1 : i+1+j])
			inWord = true
			i += j + 1
		case c == '"':
			inWord = true
			for i++; i < len(s) && s[i] != '"'; i++ {
				switch {
				case s[i] == '\\' && i+1 < len(s):
					i++
					cur.WriteByte(s[i])
				case s[i] == '$' && i+1 < len(s) && s[i+1] == '(':
					i = substitution(i)
				default:
					cur.WriteByte(s[i])
				}
			}
		case c == '$' && i+1 < len(s) && s[i+1] == '(':
			i = substitution(i)
		case c == '#' && !inWord:
			for i+1 < len(s) && s[i+1] != '\n' {
				i++
			}
		case c == ' ' || c == '\t':
			endWord()
		case strings.IndexByte("\n;&|()", c) >= 0:
			endCommand()
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	endCommand()
	return cmds
}

// matchParen is the index of the ")" that closes the "(" at s[open], or
// len(s): quotes inside are skipped.
func matchParen(s string, open int) int {
	depth := 0
	for i := open; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '\'':
			if j := strings.IndexByte(s[i+1:], '\''); j >= 0 {
				i += j + 1
			}
		case '"':
			for i++; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' {
					i++
				}
			}
		case '(':
			depth++
		case ')':
			depth--
			if depth == 0 {
				return i
			}
		}
	}
	return len(s)
}

// invocation is one cf-scoped-token command line of the docs.
type invocation struct {
	Sub   string
	Flags []string // as written, without their values: "--ttl", "-a"
	Words []string // the whole command, for messages and values
}

// flagValue is the value given to a long flag (--name VALUE or
// --name=VALUE), or "".
func (inv invocation) flagValue(name string) string {
	for i, w := range inv.Words {
		if w == "--" {
			break
		}
		if v, ok := strings.CutPrefix(w, name+"="); ok {
			return v
		}
		if w == name && i+1 < len(inv.Words) {
			return inv.Words[i+1]
		}
	}
	return ""
}

// isBinary reports whether a word names cf-scoped-token: the command, a
// path to it (.bin/cf-scoped-token), or its image
// (ghcr.io/cf-scoped-token/cf-scoped-token:v1.0.0, whose entrypoint it is).
func isBinary(word string) bool {
	base := path.Base(word)
	if i := strings.IndexAny(base, ":@"); i >= 0 {
		base = base[:i]
	}
	return base == "cf-scoped-token"
}

// invocations finds the cf-scoped-token commands of a script (isBinary).
// exec's flags end at "--", which the docs always write.
func invocations(script string) ([]invocation, error) {
	var out []invocation
	for _, words := range shellCommands(script) {
		k := slices.IndexFunc(words, isBinary)
		if k < 0 || k+1 >= len(words) {
			continue
		}
		inv := invocation{Sub: words[k+1], Words: words[k:]}
		rest := words[k+2:]
		if inv.Sub == "policy" && len(rest) > 0 && (rest[0] == "check" || rest[0] == "explain") {
			inv.Sub, rest = "policy "+rest[0], rest[1:] // a command of two words, with flags of its own
		}
		if inv.Sub == "exec" {
			end := slices.Index(rest, "--")
			if end < 0 {
				return nil, fmt.Errorf("%q: exec without -- before its command", strings.Join(words[k:], " "))
			}
			rest = rest[:end]
		}
		for _, w := range rest {
			if strings.HasPrefix(w, "-") && w != "-" && w != "--" {
				name, _, _ := strings.Cut(w, "=")
				inv.Flags = append(inv.Flags, name)
			}
		}
		out = append(out, inv)
	}
	return out, nil
}

// helpFlag matches a flag line of "cf-scoped-token COMMAND --help".
var helpFlag = regexp.MustCompile(`(?m)^\s+(?:-([A-Za-z]), )?--([a-z0-9-]+)$`)

// flagChecker knows the flags of each command from the binary's own --help.
type flagChecker struct {
	bin  string
	mu   sync.Mutex
	help map[string]map[string]bool
}

// check says which flags of inv its command does not have.
func (fc *flagChecker) check(inv invocation) error {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	flags, ok := fc.help[inv.Sub]
	if !ok {
		cmd := exec.Command(fc.bin, append(strings.Fields(inv.Sub), "--help")...)
		cmd.Env = []string{"PATH=" + systemPath()}
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("cf-scoped-token %s --help: %w\n%s", inv.Sub, err, out)
		}
		flags = map[string]bool{"-h": true, "--help": true}
		for _, m := range helpFlag.FindAllStringSubmatch(string(out), -1) {
			if m[1] != "" {
				flags["-"+m[1]] = true
			}
			flags["--"+m[2]] = true
		}
		if fc.help == nil {
			fc.help = map[string]map[string]bool{}
		}
		fc.help[inv.Sub] = flags
	}
	var missing []string
	for _, f := range inv.Flags {
		if !flags[f] {
			missing = append(missing, f)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("cf-scoped-token %s has no %s (its --help lists no such flag): %s",
			inv.Sub, strings.Join(missing, ", "), strings.Join(inv.Words, " "))
	}
	return nil
}

// ---- the emulator world of the docs

// docsAccount is the account id the docs write as a placeholder; the docs'
// emulator has it, so the snippets run as written. otherAccount is one
// more account of the same user.
const (
	docsAccount  = "0123456789abcdef0123456789abcdef"
	otherAccount = "fedcba9876543210fedcba9876543210"
)

// Permission groups (ids from Cloudflare's catalogue, which the emulator
// carries; reference/cloudflare/access-permission-groups.json).
const (
	groupAccountTokensWrite = "5bc3f8b21c554832afc660159ab75fa4" // Account API Tokens Write
	groupAppsWrite          = "1e13c5124ca64b72b1969a67e8829049" // Access: Apps and Policies Write
	groupWorkersWrite       = "e086da7e2179491d91ee5f35b3ca210a" // Workers Scripts Write
)

// docsWorld is an emulator on loopback with the docs' account (and another
// one), a parent token for it as README's "The parent secret" makes one
// (account-owned, "Account API Tokens Write" alone), and a record of the
// permission groups of every token created through it.
type docsWorld struct {
	e      *emulator.Emulator
	apiURL string
	parent string
	// bootstrap may create the parent: it holds the parent's groups.
	bootstrap string

	mu      sync.Mutex
	created [][]string // permission group ids of each POST …/tokens body
}

func newDocsWorld(t *testing.T) *docsWorld {
	t.Helper()
	e := emulator.New()
	e.AddAccount(docsAccount, "Docs")
	e.AddAccount(otherAccount, "Other")
	e.AddUser("docs@example.com", docsAccount, otherAccount)
	spec := func(name string, groups ...string) emulator.TokenSpec {
		return emulator.TokenSpec{Name: name, Policies: []emulator.Policy{{
			Effect: "allow", PermissionGroups: groups,
			Resources: map[string]string{"com.cloudflare.api.account." + docsAccount: "*"},
		}}}
	}
	w := &docsWorld{e: e}
	_, w.parent = e.IssueAccountToken(docsAccount, spec("parent of the docs tests", groupAccountTokensWrite))
	_, w.bootstrap = e.IssueAccountToken(docsAccount, spec("bootstrap", groupAccountTokensWrite))
	srv := emulatortest.Serve(t, e, http.HandlerFunc(w.serve))
	w.apiURL = srv.URL + emulator.BasePath
	return w
}

// serve passes every request to the emulator, noting the groups of each
// token created.
func (w *docsWorld) serve(rw http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/tokens") {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		r.Body = io.NopCloser(bytes.NewReader(body))
		var req struct {
			Policies []struct {
				PermissionGroups []struct {
					ID string `json:"id"`
				} `json:"permission_groups"`
			} `json:"policies"`
		}
		if json.Unmarshal(body, &req) == nil {
			var ids []string
			for _, p := range req.Policies {
				for _, g := range p.PermissionGroups {
					ids = append(ids, g.ID)
				}
			}
			slices.Sort(ids)
			w.mu.Lock()
			w.created = append(w.created, ids)
			w.mu.Unlock()
		}
	}
	w.e.ServeHTTP(rw, r)
}

// createdGroups is the permission groups of each token created so far.
func (w *docsWorld) createdGroups() [][]string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.created)
}

// children is the tokens the emulator holds besides the two it started
// with.
func (w *docsWorld) children() []emulator.Token {
	var out []emulator.Token
	for _, tok := range w.e.Tokens() {
		if tok.Value != w.parent && tok.Value != w.bootstrap {
			out = append(out, tok)
		}
	}
	return out
}

// ---- stand-ins for the tools the docs run

// The stand-ins share the docs test's variables: DOCS_TEST_LOG (one line
// per thing done), DOCS_TEST_PARENT_FILE (the parent's value, so a stand-in
// can tell it is absent from its environment without having it there),
// DOCS_TEST_API_URL (the emulator) and DOCS_TEST_COSIGN_IDENTITY.
const standInCommon = `set -eu
fail() { echo "$0 stand-in: $*" >&2; exit 90; }
log() { printf '%s\n' "$*" >> "$DOCS_TEST_LOG"; }
child_token() { # a child token and not the parent, and the parent under no name
	[ -n "${CLOUDFLARE_API_TOKEN:-}" ] || fail "CLOUDFLARE_API_TOKEN is not set"
	parent=$(cat "$DOCS_TEST_PARENT_FILE")
	[ "$CLOUDFLARE_API_TOKEN" != "$parent" ] || fail "CLOUDFLARE_API_TOKEN is the parent token"
	if env | grep -qF "$parent"; then fail "the parent token is in my environment"; fi
}
`

var standIns = map[string]string{
	// terraform: init needs nothing; apply does what the Cloudflare provider
	// does for docs/terraform/main.tf, with the token it was given.
	"terraform": `
chdir=. sub= account=
for a in "$@"; do
	case $a in
	-chdir=*) chdir=${a#-chdir=} ;;
	-*) ;;
	account_id=*) account=${a#account_id=} ;;
	*) if [ -z "$sub" ]; then sub=$a; fi ;;
	esac
done
[ -f "$chdir/main.tf" ] || fail "no $chdir/main.tf"
case $sub in
init)
	echo "terraform init: done (stand-in)"
	log "terraform init $chdir" ;;
apply)
	child_token
	[ -n "$account" ] || fail "apply without -var account_id=…"
	code=$(curl -sS -o /dev/null -w '%{http_code}' -X POST \
		-H "Authorization: Bearer $CLOUDFLARE_API_TOKEN" -H 'Content-Type: application/json' \
		-d '{"name": "Employees", "decision": "allow", "session_duration": "12h", "include": [{"email_domain": {"domain": "example.com"}}]}' \
		"$DOCS_TEST_API_URL/accounts/$account/access/policies")
	[ "$code" = 200 ] || fail "creating the Access policy of main.tf answered $code"
	echo "terraform apply: the Access policy is created (stand-in)"
	log "terraform apply $chdir account=$account" ;;
*) fail "no stand-in for terraform $*" ;;
esac
`,
	// npx wrangler deploy: the token verifies on the account wrangler is told.
	"npx": `
[ "$*" = "wrangler deploy" ] || fail "no stand-in for npx $*"
child_token
[ -n "${CLOUDFLARE_ACCOUNT_ID:-}" ] || fail "CLOUDFLARE_ACCOUNT_ID is not set"
code=$(curl -sS -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $CLOUDFLARE_API_TOKEN" \
	"$DOCS_TEST_API_URL/accounts/$CLOUDFLARE_ACCOUNT_ID/tokens/verify")
[ "$code" = 200 ] || fail "the token does not verify on account $CLOUDFLARE_ACCOUNT_ID: $code"
echo "wrangler deploy: done (stand-in)"
log "wrangler deploy account=$CLOUDFLARE_ACCOUNT_ID"
`,
	// buildkite-agent secret get KEY: the secret store holds the parent.
	"buildkite-agent": `
[ "$#" -eq 3 ] && [ "$1 $2" = "secret get" ] || fail "no stand-in for buildkite-agent $*"
log "buildkite-agent secret get $3"
cat "$DOCS_TEST_PARENT_FILE"
`,
	// cosign verify-blob: no Sigstore here, so it checks no signature; it
	// checks that the docs ask for the identity release.yml signs with.
	"cosign": `
[ "${1:-}" = verify-blob ] || fail "no stand-in for cosign $*"
shift
blob= bundle= identity= issuer=
while [ "$#" -gt 0 ]; do
	case $1 in
	--bundle) bundle=$2; shift ;;
	--certificate-identity) identity=$2; shift ;;
	--certificate-oidc-issuer) issuer=$2; shift ;;
	-*) fail "unexpected flag $1" ;;
	*) blob=$1 ;;
	esac
	shift
done
[ -f "$blob" ] && [ -f "$bundle" ] || fail "blob $blob or bundle $bundle missing"
[ "$identity" = "$DOCS_TEST_COSIGN_IDENTITY" ] || fail "identity $identity; release.yml signs as $DOCS_TEST_COSIGN_IDENTITY"
[ "$issuer" = https://token.actions.githubusercontent.com ] || fail "issuer $issuer"
echo "Verified OK (stand-in: identity and issuer as release.yml signs)"
log "cosign verify-blob $blob"
`,
}

// writeStandIns writes the stand-ins into a directory of their own.
func writeStandIns(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range standIns {
		script := "#!/bin/sh\n# " + name + " stand-in of the docs tests\n" + standInCommon + body
		if err := os.WriteFile(filepath.Join(dir, name), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// ---- the release, served on loopback

// releaseURL is where the docs download release assets from; the tests
// point it at a fakeRelease.
const releaseURL = "https://github.com/cf-scoped-token/cf-scoped-token/releases/download/"

// releaseAsset matches the names release.yml gives the binaries.
var releaseAsset = regexp.MustCompile(`^cf-scoped-token_(linux|darwin|windows)_(amd64|arm64)(\.exe)?$`)

// fakeRelease serves a release as GitHub does under releases/download/TAG/:
// this machine's build as the linux binaries (the only ones that can run
// here), SHA256SUMS with their sums (wrong ones when corrupt) and a
// signature bundle.
type fakeRelease struct {
	url     string
	bin     []byte
	corrupt bool

	mu   sync.Mutex
	tags []string
}

func newFakeRelease(t *testing.T, bin string, corrupt bool) *fakeRelease {
	t.Helper()
	b, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	fr := &fakeRelease{bin: b, corrupt: corrupt}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /cf-scoped-token/cf-scoped-token/releases/download/{tag}/{asset}", fr.serve)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	fr.url = srv.URL + "/cf-scoped-token/cf-scoped-token/releases/download/"
	return fr
}

func (fr *fakeRelease) serve(w http.ResponseWriter, r *http.Request) {
	fr.mu.Lock()
	fr.tags = append(fr.tags, r.PathValue("tag"))
	fr.mu.Unlock()
	asset := r.PathValue("asset")
	switch {
	case asset == "SHA256SUMS":
		sum := sha256.Sum256(fr.bin)
		if fr.corrupt {
			sum[0] ^= 0xff
		}
		for _, arch := range []string{"amd64", "arm64"} {
			fmt.Fprintf(w, "%s  cf-scoped-token_linux_%s\n", hex.EncodeToString(sum[:]), arch)
		}
	case asset == "SHA256SUMS.bundle":
		fmt.Fprint(w, "{}\n")
	case releaseAsset.MatchString(asset) && strings.Contains(asset, "_linux_"):
		_, _ = w.Write(fr.bin)
	default:
		http.NotFound(w, r)
	}
}

// requestedTags is the release tags the snippets asked for.
func (fr *fakeRelease) requestedTags() []string {
	fr.mu.Lock()
	defer fr.mu.Unlock()
	return slices.Clone(fr.tags)
}

// ---- running a snippet

// snippetEnv is what a docs test gives a shell snippet: the stand-ins, the
// world's variables, and the rest of the environment as given.
type snippetEnv struct {
	w        *docsWorld
	standIns string
	log      string // DOCS_TEST_LOG
	workDir  string
	vars     map[string]string
}

// newSnippetEnv makes a work directory holding docs/terraform/main.tf as
// the cookbook's infra/access/main.tf and as itself, and the variables the
// stand-ins read.
func newSnippetEnv(t *testing.T, w *docsWorld, standIns string) *snippetEnv {
	t.Helper()
	work := t.TempDir()
	mainTF, err := os.ReadFile(filepath.Join("docs", "terraform", "main.tf"))
	if err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{filepath.Join(work, "infra", "access"), filepath.Join(work, "docs", "terraform")} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "main.tf"), mainTF, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	state := t.TempDir()
	parentFile := filepath.Join(state, "parent")
	if err := os.WriteFile(parentFile, []byte(w.parent), 0o600); err != nil {
		t.Fatal(err)
	}
	se := &snippetEnv{w: w, standIns: standIns, log: filepath.Join(state, "log"), workDir: work}
	se.vars = map[string]string{
		"HOME":                      filepath.Join(state, "home"),
		"LC_ALL":                    "C",
		"DOCS_TEST_LOG":             se.log,
		"DOCS_TEST_PARENT_FILE":     parentFile,
		"DOCS_TEST_API_URL":         w.apiURL,
		"DOCS_TEST_COSIGN_IDENTITY": "",
		// The API the binary talks to: every flag has its variable, so the
		// snippets run unchanged against the emulator.
		"CF_SCOPED_TOKEN_API_URL": w.apiURL,
	}
	if err := os.MkdirAll(se.vars["HOME"], 0o755); err != nil {
		t.Fatal(err)
	}
	return se
}

// logLines is what the stand-ins did so far.
func (se *snippetEnv) logLines() []string {
	b, _ := os.ReadFile(se.log)
	if s := strings.TrimSpace(string(b)); s != "" {
		return strings.Split(s, "\n")
	}
	return nil
}

// environ is vars, the given extra variables and PATH (the directories
// first, then the stand-ins, then this machine's).
func (se *snippetEnv) environ(extra map[string]string, pathDirs ...string) []string {
	all := map[string]string{}
	for k, v := range se.vars {
		all[k] = v
	}
	for k, v := range extra {
		all[k] = v
	}
	dirs := append(slices.Clone(pathDirs), se.standIns, systemPath())
	all["PATH"] = strings.Join(dirs, string(filepath.ListSeparator))
	out := make([]string, 0, len(all))
	for k, v := range all {
		out = append(out, k+"="+v)
	}
	slices.Sort(out)
	return out
}

// runShell runs argv (a shell and its options, the script last) in the
// work directory with env, for at most two minutes, and returns stdout and
// stderr together.
func runShell(ctx context.Context, dir string, env []string, argv ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// noSecrets fails t if out holds a token value of the emulator's.
func noSecrets(t *testing.T, what, out string) {
	t.Helper()
	for _, prefix := range []string{"cfut_", "cfat_"} {
		if strings.Contains(out, prefix) {
			t.Errorf("%s printed a token (%s…):\n%s", what, prefix, out)
		}
	}
}

// hostArch is the runner architecture GitHub would report for this machine.
func hostArch() string {
	if runtime.GOARCH == "arm64" {
		return "ARM64"
	}
	return "X64"
}
