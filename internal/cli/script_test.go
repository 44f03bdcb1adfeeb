package cli_test

import (
	"bufio"
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/cf-scoped-token/cf-scoped-token/internal/cli"
	"github.com/cf-scoped-token/cf-scoped-token/internal/emulator"
)

// TestMain registers the real cli.Main as the cf-scoped-token command of
// the scripts in testdata/script (as age's tests do with its main).
func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		cli.Name: func() {
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			code := cli.Main(ctx, os.Args, os.Getenv, os.Stdout, os.Stderr)
			stop()
			os.Exit(code)
		},
	})
}

type emulatorKey struct{}

// TestScripts runs the CLI scripts, each against its own seeded emulator:
// $API_URL, $PARENT (user parent token), $ACCOUNT_PARENT, $ACCOUNT1..3,
// with CF_SCOPED_TOKEN_API_TOKEN and CF_SCOPED_TOKEN_API_URL set to them.
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
			// env writes them; a shell's eval of them is tested in env.txtar).
			"loadenv": func(ts *testscript.TestScript, neg bool, args []string) {
				if neg || len(args) != 1 {
					ts.Fatalf("usage: loadenv FILE")
				}
				sc := bufio.NewScanner(strings.NewReader(ts.ReadFile(args[0])))
				for sc.Scan() {
					line, ok := strings.CutPrefix(sc.Text(), "export ")
					k, v, ok2 := strings.Cut(line, "=")
					if !ok || !ok2 || len(v) < 2 || v[0] != '\'' || v[len(v)-1] != '\'' {
						ts.Fatalf("loadenv: %q is not export KEY='value'", sc.Text())
					}
					ts.Setenv(k, strings.ReplaceAll(v[1:len(v)-1], `'\''`, "'"))
				}
			},
			// sleep DURATION: let a background command get going.
			"sleep": func(ts *testscript.TestScript, neg bool, args []string) {
				d, err := time.ParseDuration(strings.Join(args, ""))
				if neg || err != nil {
					ts.Fatalf("usage: sleep DURATION")
				}
				time.Sleep(d)
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
