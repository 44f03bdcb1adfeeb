package cloudflare

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/cf-scoped-token/cf-scoped-token/internal/emulator"
	"github.com/cf-scoped-token/cf-scoped-token/internal/token"
)

func TestClient_VerifyToken(t *testing.T) {
	forEachEndpoint(t, func(t *testing.T, w *world, c *Client, tc endpointCase) {
		child, err := c.CreateToken(t.Context(), tc.ep, childSpec("verify"))
		if err != nil {
			t.Fatal(err)
		}
		info, err := c.VerifyToken(t.Context(), tc.ep, child.Value)
		if err != nil {
			t.Fatal(err)
		}
		if info.ID != child.ID || info.Status != "active" || !info.ExpiresOn.Equal(t0.Add(time.Hour)) {
			t.Errorf("VerifyToken = %+v, want id %s, active, expiring %s", info, child.ID, t0.Add(time.Hour))
		}
		verifies := w.requests("GET " + tc.base + "/verify")
		if len(verifies) != 1 {
			t.Fatalf("%d verify requests, want 1", len(verifies))
		}
		// The child's credential, not the parent's: verify checks the caller.
		if got, want := verifies[0].Header.Get("Authorization"), "Bearer "+child.Value.Reveal(); got != want {
			t.Errorf("verify Authorization is not the child's Bearer")
		}
		if tc.ep.IsAccount() && verifies[0].Path != emulator.BasePath+"/accounts/"+tc.ep.AccountID+"/tokens/verify" {
			t.Errorf("verify path = %s", verifies[0].Path)
		}

		// A secret the endpoint does not know: 401 code 1000, ErrUnauthorized, not retried.
		_, err = c.VerifyToken(t.Context(), tc.ep, token.NewSecret("cfut_NotATokenAtAll000000000000000000000000000000000"))
		var apiErr *APIError
		if !errors.As(err, &apiErr) || apiErr.Status != http.StatusUnauthorized || !apiErr.Has(1000) || !errors.Is(err, token.ErrUnauthorized) {
			t.Errorf("VerifyToken(unknown) = %v, want a 401 *APIError with code 1000 matching ErrUnauthorized", err)
		}
		if got := len(w.requests("GET " + tc.base + "/verify")); got != 2 {
			t.Errorf("%d verify requests, want 2", got)
		}
		if _, err := c.VerifyToken(t.Context(), tc.ep, token.Secret{}); err == nil {
			t.Error("VerifyToken with no token succeeded")
		}
	})
}

func TestClient_VerifyTokenOtherOwner(t *testing.T) {
	t.Parallel()
	w := mustWorld(t)
	user := token.Endpoint{}
	acct := token.Endpoint{AccountID: emulator.SeedAccount1}
	// A user-owned child is not known on an account's endpoint, and the other way round.
	c := w.client(w.parent(user))
	child, err := c.CreateToken(t.Context(), user, childSpec("user child"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.VerifyToken(t.Context(), acct, child.Value); !errors.Is(err, token.ErrUnauthorized) {
		t.Errorf("user child on an account endpoint: %v, want ErrUnauthorized", err)
	}
}

func TestClient_VerifyTokenBadAnswer(t *testing.T) {
	t.Parallel()
	f := mustFake(t)
	f.handle("GET", "/user/tokens/verify", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"success":true,"errors":[],"messages":[],"result":{"id":"../../x","status":"active"}}`))
	})
	_, err := f.client.VerifyToken(t.Context(), token.Endpoint{}, token.NewSecret("cfut_child"))
	if !errors.Is(err, token.ErrBadAnswer) {
		t.Errorf("VerifyToken with a malformed id = %v, want ErrBadAnswer", err)
	}
}
