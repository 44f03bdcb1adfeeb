package cloudflare

import (
	"encoding/json"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/google/go-cmp/cmp"

	"github.com/cf-scoped-token/cf-scoped-token/internal/token"
)

// answer writes a Cloudflare envelope around result with status 200.
func answer(result any) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"success": true, "errors": []any{}, "messages": []any{}, "result": result})
	}
}

func tokenObject(id, name string) map[string]any {
	return map[string]any{"id": id, "name": name, "status": "active", "issued_on": "2026-11-27T20:00:00Z",
		"expires_on": "2026-11-27T21:00:00Z", "policies": []any{}}
}

// TestHole5_AnswerIDsAndValuesAreData: an id that is not 32 lowercase hex,
// or a value that is not shaped like a token, is a malformed answer — never
// used in a path, a state file, a shell line or a workflow command. A create
// answered so is not "refused": the token may exist (the lifecycle looks it
// up by name).
func TestHole5_AnswerIDsAndValuesAreData(t *testing.T) {
	t.Parallel()
	badIDs := []string{
		"ed17574386854bf78a67040be0a770b01\n::stop-commands::pwned",
		"ED17574386854BF78A67040BE0A770B0",
		"../../accounts/x/tokens",
		"",
	}
	for _, id := range badIDs {
		t.Run("create/id/"+id, func(t *testing.T) {
			t.Parallel()
			f := mustFake(t)
			obj := tokenObject(id, "cf-scoped-token fake")
			obj["value"] = "cfut_" + strings.Repeat("a", 40)
			f.handle("POST", "/user/tokens", answer(obj))
			err := calls[1].call(t.Context(), f.client)
			if !errors.Is(err, token.ErrBadAnswer) {
				t.Fatalf("CreateToken = %v, want token.ErrBadAnswer", err)
			}
			if id != "" && strings.Contains(err.Error(), id) {
				t.Errorf("the error quotes the id: %q", err)
			}
		})
		t.Run("get/id/"+id, func(t *testing.T) {
			t.Parallel()
			f := mustFake(t)
			f.handle("GET", "/user/tokens/"+tokenID, answer(tokenObject(id, "x")))
			if _, err := f.client.GetToken(t.Context(), token.Endpoint{}, tokenID); !errors.Is(err, token.ErrBadAnswer) {
				t.Fatalf("GetToken = %v, want token.ErrBadAnswer", err)
			}
		})
		t.Run("list/id/"+id, func(t *testing.T) {
			t.Parallel()
			f := mustFake(t)
			f.handle("GET", "/user/tokens", answer([]any{tokenObject(tokenID, "ok"), tokenObject(id, "x")}))
			if _, err := f.client.ListTokens(t.Context(), token.Endpoint{}); !errors.Is(err, token.ErrBadAnswer) {
				t.Fatalf("ListTokens = %v, want token.ErrBadAnswer", err)
			}
		})
	}
	for _, value := range []string{"cfut_abc$(touch /tmp/pwned)", "cfut_abc\n::add-mask::x", "cfut_it's", "cfut abc", strings.Repeat("a", 513)} {
		t.Run("create/value", func(t *testing.T) {
			t.Parallel()
			f := mustFake(t)
			obj := tokenObject(tokenID, "cf-scoped-token fake")
			obj["value"] = value
			f.handle("POST", "/user/tokens", answer(obj))
			if err := calls[1].call(t.Context(), f.client); !errors.Is(err, token.ErrBadAnswer) {
				t.Fatalf("CreateToken = %v, want token.ErrBadAnswer", err)
			}
		})
		t.Run("roll/value", func(t *testing.T) {
			t.Parallel()
			f := mustFake(t)
			f.handle("PUT", "/user/tokens/"+tokenID+"/value", answer(value))
			if _, err := f.client.RollToken(t.Context(), token.Endpoint{}, tokenID); !errors.Is(err, token.ErrBadAnswer) {
				t.Fatalf("RollToken = %v, want token.ErrBadAnswer", err)
			}
		})
	}
	// And the wrong token: a GET must be about the id asked for.
	f := mustFake(t)
	f.handle("GET", "/user/tokens/"+tokenID, answer(tokenObject("00000000000000000000000000000001", "x")))
	if _, err := f.client.GetToken(t.Context(), token.Endpoint{}, tokenID); !errors.Is(err, token.ErrBadAnswer) {
		t.Fatalf("GetToken of another token = %v, want token.ErrBadAnswer", err)
	}
}

// TestHole5_AnswerAccountAndGroupIDsAreData: the account ids a token's
// resources name and the permission-group ids of its policies and of the
// group list are printed (list) and sent back (create): one that is not 32
// lowercase hex is a malformed answer, as a token id is. The forms the API
// really gives are read as they are meant: an account wildcard, and a zone's
// key, which names no account.
func TestHole5_AnswerAccountAndGroupIDsAreData(t *testing.T) {
	t.Parallel()
	const account = "0a1b2c3d4e5f60718293a4b5c6d7e8f9"
	withPolicy := func(resources map[string]string, group string) map[string]any {
		obj := tokenObject(tokenID, "cf-scoped-token fake")
		obj["policies"] = []any{map[string]any{"id": "f267e341f3dd4697bd3b9f71dd96247f", "effect": "allow",
			"resources": resources, "permission_groups": []any{map[string]any{"id": group, "name": "Access: Apps and Policies Read"}}}}
		return obj
	}
	bad := []string{account + "\n::stop-commands::pwned", strings.ToUpper(account), "../../x", ""}
	for _, id := range bad {
		for _, tc := range []struct {
			what string
			obj  map[string]any
		}{
			{"account", withPolicy(map[string]string{token.AccountScope + "." + id: "*"}, gAppsRead)},
			{"group", withPolicy(map[string]string{token.AccountScope + "." + account: "*"}, id)},
		} {
			t.Run("get/"+tc.what+"/"+id, func(t *testing.T) {
				t.Parallel()
				f := mustFake(t)
				f.handle("GET", "/user/tokens/"+tokenID, answer(tc.obj))
				_, err := f.client.GetToken(t.Context(), token.Endpoint{}, tokenID)
				if !errors.Is(err, token.ErrBadAnswer) {
					t.Fatalf("GetToken = %v, want token.ErrBadAnswer", err)
				}
				if id != "" && strings.Contains(err.Error(), id) {
					t.Errorf("the error quotes the id: %q", err)
				}
			})
			t.Run("list/"+tc.what+"/"+id, func(t *testing.T) {
				t.Parallel()
				f := mustFake(t)
				f.handle("GET", "/user/tokens", answer([]any{tokenObject(tokenID, "ok"), tc.obj}))
				if _, err := f.client.ListTokens(t.Context(), token.Endpoint{}); !errors.Is(err, token.ErrBadAnswer) {
					t.Fatalf("ListTokens = %v, want token.ErrBadAnswer", err)
				}
			})
		}
		t.Run("permission groups/"+id, func(t *testing.T) {
			t.Parallel()
			f := mustFake(t)
			f.handle("GET", "/user/tokens/permission_groups", answer([]any{
				map[string]any{"id": gAppsRead, "name": "Access: Apps and Policies Read", "scopes": []string{token.AccountScope}},
				map[string]any{"id": id, "name": "Access: Apps and Policies Write", "scopes": []string{token.AccountScope}},
			}))
			_, err := f.client.PermissionGroups(t.Context(), token.Endpoint{})
			if !errors.Is(err, token.ErrBadAnswer) {
				t.Fatalf("PermissionGroups = %v, want token.ErrBadAnswer", err)
			}
			if id != "" && strings.Contains(err.Error(), id) {
				t.Errorf("the error quotes the id: %q", err)
			}
		})
	}
	// What real answers hold (reference/cloudflare-api.md, Tokens): every
	// account, or a zone of an account — no account id.
	f := mustFake(t)
	f.handle("GET", "/user/tokens/"+tokenID, answer(withPolicy(map[string]string{
		token.AccountScope + ".*":                                     "*",
		token.AccountScope + "." + account:                            "*",
		token.AccountScope + ".zone.eb258a38ea634c86a0c89da6b27cb6b6": "*",
		"com.cloudflare.api.user.1b2c3d4e5f60718293a4b5c6d7e8f90a":    "*",
	}, gAppsRead)))
	got, err := f.client.GetToken(t.Context(), token.Endpoint{}, tokenID)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"*", account}, got.AccountIDs); diff != "" {
		t.Errorf("account ids (-want +got):\n%s", diff)
	}
}

// TestHole5_APIErrorTextIsData: Cloudflare's messages are shown escaped
// (a newline cannot start a workflow command), and the token the request
// carried is cut out of them.
func TestHole5_APIErrorTextIsData(t *testing.T) {
	t.Parallel()
	f := mustFake(t)
	f.handle("GET", "/user/tokens/verify", func(w http.ResponseWriter, r *http.Request) {
		bearer := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		_ = json.NewEncoder(w).Encode(map[string]any{"success": false, "result": nil, "errors": []any{
			map[string]any{"code": 6003, "message": "bad token " + bearer + "\n::stop-commands::pwned\r\n| # md"},
		}})
	})
	_, err := f.client.VerifyToken(t.Context(), token.Endpoint{}, token.NewSecret(parentValue))
	if err == nil {
		t.Fatal("no error")
	}
	msg := err.Error()
	if strings.Contains(msg, parentValue) {
		t.Errorf("the error carries the token the API echoed: %q", msg)
	}
	if strings.ContainsFunc(msg, unicode.IsControl) {
		t.Errorf("the error carries a control character: %q", msg)
	}
	if !strings.Contains(msg, `\n::stop-commands::pwned`) {
		t.Errorf("the message is not shown, escaped: %q", msg)
	}
}

// TestHole6_MalformedIDIsNotGone: a 404 with code 7003 is about the request
// (an id the API cannot route), not a token that is already gone.
func TestHole6_MalformedIDIsNotGone(t *testing.T) {
	t.Parallel()
	f := mustFake(t)
	f.handle("DELETE", "/user/tokens/"+tokenID, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte(`{"success":false,"result":null,"errors":[{"code":7003,"message":"Could not route to /user/tokens/x, perhaps your object identifier is invalid?"}]}`))
	})
	err := f.client.DeleteToken(t.Context(), token.Endpoint{}, tokenID)
	if err == nil || errors.Is(err, token.ErrNotFound) {
		t.Fatalf("DeleteToken = %v, want an error that is not token.ErrNotFound", err)
	}
	g := mustFake(t)
	g.handle("DELETE", "/user/tokens/"+tokenID, reply(t, http.StatusNotFound, "not_found.json"))
	if err := g.client.DeleteToken(t.Context(), token.Endpoint{}, tokenID); !errors.Is(err, token.ErrNotFound) {
		t.Fatalf("DeleteToken of a missing token = %v, want token.ErrNotFound", err)
	}
}

// TestHole7_WhatCannotHealFailsAtOnce: a certificate the client does not
// trust, https to something that does not speak TLS, a token no header can
// carry and a port no connection can use fail on the first attempt, with no
// backoff; a refused connection is retried.
func TestHole7_WhatCannotHealFailsAtOnce(t *testing.T) {
	t.Parallel()
	untrusted := httptest.NewUnstartedServer(http.NotFoundHandler())
	untrusted.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes are the point
	untrusted.StartTLS()
	t.Cleanup(untrusted.Close)
	plain := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(plain.Close)
	for _, tc := range []struct {
		name, base string
		secret     string
	}{
		{"untrusted certificate", untrusted.URL + "/client/v4", parentValue},
		{"https to plain http", strings.Replace(plain.URL, "http://", "https://", 1) + "/client/v4", parentValue},
		{"control character in the token", plain.URL + "/client/v4", "cfut_abc\x01def"},
		{"port out of range", "http://127.0.0.1:99999/client/v4", parentValue},
	} {
		for _, call := range calls {
			t.Run(tc.name+"/"+call.name, func(t *testing.T) {
				t.Parallel()
				w := &waits{}
				c := &Client{BaseURL: tc.base, HTTP: NewHTTPClient(), Token: token.NewSecret(tc.secret), Retry: testRetry(w)}
				err := call.call(t.Context(), c)
				if err == nil {
					t.Fatal("no error")
				}
				if got := w.All(); len(got) != 0 {
					t.Errorf("backoffs %v: a fault that cannot heal was retried (%v)", got, err)
				}
				if errors.Is(err, token.ErrOutcomeUnknown) {
					t.Errorf("%v: a request that was never sent has a known outcome", err)
				}
				if strings.Contains(err.Error(), "abc") {
					t.Errorf("the error shows the token: %v", err)
				}
			})
		}
	}
	// A refused connection can heal (an API or emulator starting): retried.
	w := &waits{}
	c := &Client{BaseURL: plain.URL + "/client/v4", HTTP: NewHTTPClient(), Token: token.NewSecret(parentValue), Retry: testRetry(w)}
	closed := httptest.NewServer(http.NotFoundHandler())
	c.BaseURL = closed.URL + "/client/v4"
	closed.Close()
	if _, err := c.GetToken(t.Context(), token.Endpoint{}, tokenID); err == nil {
		t.Fatal("no error")
	}
	if n := len(w.All()); n != 3 {
		t.Errorf("%d backoffs after refused connections, want 3 (Attempts 4)", n)
	}
}

// TestHole10_CreateWaitsLongerThanOtherCalls: one attempt of a create may
// take far longer than one of any other call — giving up on a slow create is
// what makes a twin — and by default it is given more than a minute.
func TestHole10_CreateWaitsLongerThanOtherCalls(t *testing.T) {
	t.Parallel()
	if d := DefaultRetry(); DefaultCreateTimeout < time.Minute || DefaultCreateTimeout <= d.Timeout {
		t.Errorf("a create attempt may take %s, other attempts %s; want a create over a minute and longer", DefaultCreateTimeout, d.Timeout)
	}
	f := mustFake(t)
	f.client.Retry.Timeout, f.client.CreateTimeout = 50*time.Millisecond, 5*time.Second
	slow := func(h http.HandlerFunc) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			time.Sleep(200 * time.Millisecond)
			h(w, r)
		}
	}
	f.handle("POST", "/user/tokens", slow(reply(t, http.StatusOK, "created.json")))
	f.handle("GET", "/user/tokens/"+tokenID, slow(reply(t, http.StatusOK, "token.json")))
	if err := calls[1].call(t.Context(), f.client); err != nil {
		t.Errorf("a create that takes 200ms under a 5s create timeout: %v", err)
	}
	if _, err := f.client.GetToken(t.Context(), token.Endpoint{}, tokenID); err == nil {
		t.Error("a GET that takes 200ms under a 50ms attempt timeout succeeded")
	}
}
