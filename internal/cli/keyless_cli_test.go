package cli_test

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestKeylessCLI: create, exec and revoke with --broker-url and the job's
// OIDC token from a variable (GitLab's id_tokens, CircleCI's
// CIRCLE_OIDC_TOKEN_V2) or a file (Buildkite's request-token), against a
// broker process: no parent token anywhere.
func TestKeylessCLI(t *testing.T) { //nolint:tparallel // the subtests share one broker and count the tokens it leaves alive, so they run one at a time
	t.Parallel()
	k := newKeyless(t)
	b := k.startBroker(t, k.writePolicy(t, "policy.yaml", e2ePolicy), k.seeded.UserToken)
	run := func(t *testing.T, env []string, args ...string) (string, string, error) {
		t.Helper()
		cmd := exec.Command(mustBinary(t), args...)
		cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, env...)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		for _, s := range []string{k.seeded.UserToken, "eyJ"} {
			if strings.Contains(out.String()+errb.String(), s) {
				t.Errorf("%v: the output shows a parent token or a JWT", args)
			}
		}
		return out.String(), errb.String(), err
	}

	t.Run("create with --oidc-token-env, revoke with --broker-url", func(t *testing.T) {
		out, stderr, err := run(t, []string{"CF_OIDC=" + k.jwt(t, nil)},
			"create", "--broker-url", b.url, "--oidc-token-env", "CF_OIDC", "-s", "apps-and-policies:write", "--format", "json")
		if err != nil {
			t.Fatalf("create: %v\n%s", err, stderr)
		}
		var got map[string]string
		if err := json.Unmarshal([]byte(out), &got); err != nil || got["token-id"] == "" {
			t.Fatalf("create output %q", out)
		}
		b.addSecret(got["token"])
		if !k.alive(got["token-id"]) || !strings.Contains(stderr, "cf-scoped-token revoke --broker-url "+b.url) {
			t.Fatalf("the token is not alive, or the hint is missing:\n%s", stderr)
		}
		if _, stderr, err := run(t, []string{"CLOUDFLARE_API_TOKEN=" + got["token"]}, "revoke", "--broker-url", b.url); err != nil {
			t.Fatalf("revoke: %v\n%s", err, stderr)
		}
		if k.alive(got["token-id"]) {
			t.Error("the token outlives revoke --broker-url")
		}
	})
	t.Run("exec with --oidc-token-file", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "oidc")
		if err := os.WriteFile(file, []byte(k.jwt(t, nil)+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		out, stderr, err := run(t, []string{"CF_OIDC_COPY=unrelated"},
			"exec", "--broker-url", b.url, "--oidc-token-file", file, "--", "sh", "-c", "echo token=${CLOUDFLARE_API_TOKEN:+set} id=$CF_SCOPED_TOKEN_ID; env")
		if err != nil {
			t.Fatalf("exec: %v\n%s", err, stderr)
		}
		if !strings.Contains(out, "token=set id=") || len(k.children()) != 0 {
			t.Errorf("exec: %q; %d tokens alive afterwards", out, len(k.children()))
		}
	})
	t.Run("the OIDC token is withheld from the command", func(t *testing.T) {
		jwt := k.jwt(t, nil)
		out, stderr, err := run(t, []string{"CIRCLE_OIDC_TOKEN_V2=" + jwt},
			"exec", "--broker-url", b.url, "--oidc-token-env", "CIRCLE_OIDC_TOKEN_V2", "--", "env")
		if err != nil {
			t.Fatalf("exec: %v\n%s", err, stderr)
		}
		if strings.Contains(out, jwt) || strings.Contains(out, "CIRCLE_OIDC_TOKEN_V2=") {
			t.Error("the command's environment holds the OIDC token")
		}
	})
	t.Run("variables of white space reach the command", func(t *testing.T) {
		// Keyless has no parent, and --oidc-token-file names no variable:
		// nothing is withheld but the token's own variables.
		file := filepath.Join(t.TempDir(), "oidc")
		if err := os.WriteFile(file, []byte(k.jwt(t, nil)), 0o600); err != nil {
			t.Fatal(err)
		}
		out, stderr, err := run(t, []string{"IFS= \t\n", "SEP= "},
			"exec", "--broker-url", b.url, "--oidc-token-file", file, "--", "env")
		if err != nil {
			t.Fatalf("exec: %v\n%s", err, stderr)
		}
		for _, want := range []string{"\nIFS= \t\n", "\nSEP= \n"} {
			if !strings.Contains("\n"+out, want) {
				t.Errorf("the command's environment lacks %q", want)
			}
		}
	})
	t.Run("refusals", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			env  []string
			args []string
			want string
		}{
			{"no OIDC token flag", nil, []string{"create", "--broker-url", b.url}, "error: --broker-url needs the CI job's OIDC token"},
			{"an empty variable", nil, []string{"create", "--broker-url", b.url, "--oidc-token-env", "NOPE"}, "error: --oidc-token-env: NOPE is empty or not set"},
			{"not a JWT", []string{"CF_OIDC=abc"}, []string{"create", "--broker-url", b.url, "--oidc-token-env", "CF_OIDC"}, "error: the OIDC token is not a JWT"},
			{"a parent too", []string{"CF_SCOPED_TOKEN_API_TOKEN=" + k.seeded.UserToken, "CF_OIDC=a.b.c"},
				[]string{"create", "--broker-url", b.url, "--oidc-token-env", "CF_OIDC"}, "error: --broker-url: is given together with CF_SCOPED_TOKEN_API_TOKEN"},
			{"denied", []string{"CF_OIDC=" + k.jwt(t, map[string]any{"ref": "refs/heads/dev"})},
				[]string{"create", "--broker-url", b.url, "--oidc-token-env", "CF_OIDC"}, `claim ref is "refs/heads/dev"`},
			{"revoke of an id through the broker", []string{"CLOUDFLARE_API_TOKEN=" + k.seeded.UserToken},
				[]string{"revoke", "--broker-url", b.url, "--token-id", k.seeded.UserTokenID}, "error: --token-id does not go with --broker-url"},
			{"revoke with a parent on the command line", nil,
				[]string{"revoke", "--broker-url", b.url, "--api-token", "x"}, "error: --api-token is refused"},
		} {
			_, stderr, err := run(t, tc.env, tc.args...)
			if err == nil || !strings.Contains(stderr, tc.want) || !strings.Contains(stderr, "hint:") && tc.name != "denied" {
				t.Errorf("%s: %v\n%s\nwant %q", tc.name, err, stderr, tc.want)
			}
		}
	})
}
