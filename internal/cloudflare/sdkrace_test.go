package cloudflare

import (
	"bytes"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/cf-scoped-token/cf-scoped-token/internal/emulator"
	"github.com/cf-scoped-token/cf-scoped-token/internal/token"
)

// firstUseChild marks the test binary's run as TestClient_SafeFromFirstUse's
// fresh process.
const firstUseChild = "CF_SCOPED_TOKEN_TEST_FIRST_USE"

// TestClient_SafeFromFirstUse: one client may be used from several
// goroutines from its very first call (the broker does): the first creates
// and rolls of a process, side by side on both endpoints, show the race
// detector nothing. It runs them in a fresh process of this test binary,
// since the SDK's encoders are cached process-wide and this process's
// earlier tests have filled that cache.
func TestClient_SafeFromFirstUse(t *testing.T) {
	if os.Getenv(firstUseChild) == "1" {
		firstUseSideBySide(t)
		return
	}
	if !raceDetector {
		t.Skip("shows something only under -race")
	}
	t.Parallel()
	cmd := exec.Command(os.Args[0], "-test.run=^TestClient_SafeFromFirstUse$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), firstUseChild+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil || bytes.Contains(out, []byte("DATA RACE")) || !bytes.Contains(out, []byte("--- PASS: TestClient_SafeFromFirstUse")) {
		t.Fatalf("first creates and rolls side by side: %v\n%s", err, out)
	}
}

// firstUseSideBySide makes each call of the client from eight goroutines
// released together, on both endpoints: create, then the look-ups and the
// roll, then verify and delete.
func firstUseSideBySide(t *testing.T) {
	w := mustWorld(t)
	type child struct {
		c     *Client
		ep    token.Endpoint
		id    string
		value token.Secret
	}
	children := make([]child, 8)
	sideBySide := func(call func(*child)) {
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range children {
			wg.Go(func() {
				<-start
				call(&children[i])
			})
		}
		close(start)
		wg.Wait()
	}
	for i := range children {
		if i%2 == 1 {
			children[i].ep = token.Endpoint{AccountID: emulator.SeedAccount1}
		}
		children[i].c = w.client(w.parent(children[i].ep))
	}
	sideBySide(func(ch *child) {
		created, err := ch.c.CreateToken(t.Context(), ch.ep, token.Spec{
			Name:      token.NamePrefix + "first-use",
			Policies:  []token.Policy{token.AllowPolicy([]string{emulator.SeedAccount1}, []string{gAppsRead})},
			ExpiresOn: t0.Add(time.Hour),
		})
		if err != nil {
			t.Error(err)
		}
		ch.id = created.ID
	})
	// Then each other call, side by side on its own, as a first use.
	for _, call := range []struct {
		name string
		do   func(*child) error
	}{
		{"RollToken", func(ch *child) (err error) { ch.value, err = ch.c.RollToken(t.Context(), ch.ep, ch.id); return err }},
		{"PermissionGroups", func(ch *child) error { _, err := ch.c.PermissionGroups(t.Context(), ch.ep); return err }},
		{"GetToken", func(ch *child) error { _, err := ch.c.GetToken(t.Context(), ch.ep, ch.id); return err }},
		{"ListTokens", func(ch *child) error { _, err := ch.c.ListTokens(t.Context(), ch.ep); return err }},
	} {
		sideBySide(func(ch *child) {
			if err := call.do(ch); err != nil {
				t.Errorf("%s: %v", call.name, err)
			}
		})
	}
	sideBySide(func(ch *child) {
		if _, err := ch.c.VerifyToken(t.Context(), ch.ep, ch.value); err != nil {
			t.Errorf("VerifyToken: %v", err)
		}
	})
	sideBySide(func(ch *child) {
		if err := ch.c.DeleteToken(t.Context(), ch.ep, ch.id); err != nil {
			t.Errorf("DeleteToken: %v", err)
		}
	})
}
