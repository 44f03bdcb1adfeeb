package main

import (
	"bufio"
	"fmt"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/cf-scoped-token/cf-scoped-token/internal/cli"
	"github.com/cf-scoped-token/cf-scoped-token/internal/emulator"
)

// TestMain registers the real main as the cf-scoped-token command of the
// scripts in testdata/script, as age's cmd/age tests do with theirs, and
// removes the docs tests' binary once every test is done.
func TestMain(m *testing.M) {
	testscript.Main(cleanupM{m}, map[string]func(){cli.Name: main})
}

// cleanupM runs the tests, then removes what they left for one another.
type cleanupM struct{ m *testing.M }

func (c cleanupM) Run() int {
	code := c.m.Run()
	docsBinary.Remove()
	return code
}

type emulatorKey struct{}

// TestScripts runs the binary's scripts, each against its own seeded
// emulator: $API_URL, $PARENT (the user-owned parent token),
// $ACCOUNT_PARENT, $ACCOUNT1..3, with CF_SCOPED_TOKEN_API_TOKEN and
// CF_SCOPED_TOKEN_API_URL set to them.
func TestScripts(t *testing.T) {
	t.Parallel()
	testscript.Run(t, testscript.Params{
		Dir: "testdata/script",
		Setup: func(env *testscript.Env) error {
			e := emulator.New()
			seeded := emulator.Seed(e)
			srv := httptest.NewServer(e)
			env.Defer(srv.Close)
			env.Values[emulatorKey{}] = e
			apiURL := srv.URL + emulator.BasePath
			env.Setenv("API_URL", apiURL)
			env.Setenv("API_HOST", srv.Listener.Addr().String())
			env.Setenv("PARENT", seeded.UserToken)
			env.Setenv("ACCOUNT_PARENT", seeded.AccountToken)
			for i, id := range seeded.AccountIDs {
				env.Setenv("ACCOUNT"+strconv.Itoa(i+1), id)
			}
			env.Setenv(cli.EnvName("api-token"), seeded.UserToken)
			env.Setenv(cli.EnvName("api-url"), apiURL)
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			// loadenv FILE: set the export KEY='value' lines of FILE (as --format
			// env and the emulator write them; a shell's eval of them is tested
			// in env.txtar).
			"loadenv": func(ts *testscript.TestScript, neg bool, args []string) {
				if neg || len(args) != 1 {
					ts.Fatalf("usage: loadenv FILE")
				}
				sc := bufio.NewScanner(strings.NewReader(ts.ReadFile(args[0])))
				for sc.Scan() {
					if strings.HasPrefix(sc.Text(), "#") {
						continue
					}
					line, ok := strings.CutPrefix(sc.Text(), "export ")
					k, v, ok2 := strings.Cut(line, "=")
					if !ok || !ok2 {
						ts.Fatalf("loadenv: %q is not export KEY=value", sc.Text())
					}
					if len(v) >= 2 && v[0] == '\'' && v[len(v)-1] == '\'' {
						v = strings.ReplaceAll(v[1:len(v)-1], `'\''`, "'")
					}
					ts.Setenv(k, v)
					if k == "CF_EMULATOR_PID" {
						// A background emulator ends with the script, also when
						// a command fails before the script's own killpid.
						if pid, err := strconv.Atoi(v); err == nil {
							ts.Defer(func() {
								if proc, err := os.FindProcess(pid); err == nil {
									_ = proc.Signal(syscall.SIGTERM)
								}
							})
						}
					}
				}
			},
			// killpid PID: end a process the script's commands left running (the
			// emulator of --print-env) with SIGTERM.
			"killpid": func(ts *testscript.TestScript, neg bool, args []string) {
				if neg || len(args) != 1 {
					ts.Fatalf("usage: killpid PID")
				}
				pid, err := strconv.Atoi(args[0])
				ts.Check(err)
				proc, err := os.FindProcess(pid)
				ts.Check(err)
				ts.Check(proc.Signal(syscall.SIGTERM))
			},
			// waitfile FILE: wait (up to 30s) until a background command made FILE.
			"waitfile": func(ts *testscript.TestScript, neg bool, args []string) {
				if neg || len(args) != 1 {
					ts.Fatalf("usage: waitfile FILE")
				}
				for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
					if _, err := os.Stat(ts.MkAbs(args[0])); err == nil {
						return
					}
					if time.Now().After(deadline) {
						ts.Fatalf("waitfile: %s did not appear in 30s", args[0])
					}
				}
			},
			// tokens N: the emulator holds N tokens besides the two seeded parents.
			"tokens": func(ts *testscript.TestScript, neg bool, args []string) {
				if len(args) != 1 {
					ts.Fatalf("usage: tokens N")
				}
				e := ts.Value(emulatorKey{}).(*emulator.Emulator)
				got := len(e.Tokens()) - 2
				if (fmt.Sprint(got) == args[0]) == neg {
					ts.Fatalf("the emulator holds %d child tokens; want %s%s", got, map[bool]string{true: "not ", false: ""}[neg], args[0])
				}
			},
		},
	})
}
