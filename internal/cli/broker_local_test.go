package cli_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestBrokerLocalScript runs docs/broker-local.sh --once, the README's
// one command for trying the broker against the emulator, with the binary
// under test: it must exchange, use and revoke a token, and show none.
func TestBrokerLocalScript(t *testing.T) {
	t.Parallel()
	for _, tool := range []string{"bash", "curl", "jq"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("the script needs %s: %v", tool, err)
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", filepath.Join(moduleRoot, "docs", "broker-local.sh"), "--once")
	cmd.Env = append(os.Environ(), "CF_SCOPED_TOKEN="+mustBinary(t))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("broker-local.sh --once: %v\n%s", err, out)
	}
	for _, want := range []string{
		"ok: 1 issuer(s), 1 rule(s)",
		`"rule": "access-deploy"`,
		"with the child: 200",
		"revoked; the child now gets: 401",
		`"event":"token.mint"`,
		`"event":"token.revoke","outcome":"deleted"`,
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("the script's output lacks %q:\n%s", want, out)
		}
	}
	for _, secret := range []string{"cfut_", "cfat_", "eyJ"} {
		if strings.Contains(string(out), secret) {
			t.Errorf("the script printed a secret (%s…)", secret)
		}
	}
}
