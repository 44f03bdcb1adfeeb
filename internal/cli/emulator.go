package cli

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/cf-scoped-token/cf-scoped-token/internal/emulator"
)

// serve listens on addr and serves the handler mk makes for the URL it is
// reached at (a local issuer must know its own URL before it serves); stop
// shuts the server down. The emulator, the local issuer and the demo's
// broker are served this one way.
func serve(addr, what string, mk func(url string) (http.Handler, error)) (url string, stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, fmt.Errorf("%s: %w", what, err)
	}
	url = "http://" + dialable(ln.Addr())
	h, err := mk(url)
	if err != nil {
		ln.Close()
		return "", nil, err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln) // returns http.ErrServerClosed on stop
	}()
	return url, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		<-done
	}, nil
}

// serveEmulator serves a seeded emulator on addr.
func serveEmulator(addr string) (apiURL string, seeded emulator.Seeded, stop func(), err error) {
	e := emulator.New()
	seeded = emulator.Seed(e)
	u, stop, err := serve(addr, "emulator", func(string) (http.Handler, error) { return e, nil })
	if err != nil {
		return "", emulator.Seeded{}, nil, err
	}
	return u + emulator.BasePath, seeded, stop, nil
}

// dialable is the address a client on this machine reaches a listener on:
// a wildcard address (0.0.0.0, ::) is shown as 127.0.0.1, since a URL with
// it is no loopback URL, which create would refuse to send a token to.
func dialable(a net.Addr) string {
	tcp, ok := a.(*net.TCPAddr)
	if !ok || !tcp.IP.IsUnspecified() {
		return a.String()
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(tcp.Port))
}

// emulatorEnv is what the emulator prints: the variables the CLI reads to
// talk to it (CF_SCOPED_TOKEN_*), and the rest of what it was seeded with
// (CF_EMULATOR_*), as export lines a shell can eval. The parent tokens are
// the emulator's own and grant nothing anywhere else.
func emulatorEnv(apiURL string, seeded emulator.Seeded) [][2]string {
	return [][2]string{
		{EnvName("api-url"), apiURL},
		{EnvName("api-token"), seeded.UserToken},
		{EnvName("account-ids"), seeded.AccountIDs[0]},
		{"CF_EMULATOR_API_URL", apiURL},
		{"CF_EMULATOR_USER_TOKEN", seeded.UserToken},
		{"CF_EMULATOR_ACCOUNT_TOKEN", seeded.AccountToken},
		{"CF_EMULATOR_ACCOUNT_IDS", strings.Join(seeded.AccountIDs, ",")},
	}
}

// envReadyLine ends the emulator's export lines, so that --print-env knows
// its background emulator serves.
const envReadyLine = "# the emulator serves until interrupted"

const emulatorSynopsis = `cf-scoped-token emulator [--listen 127.0.0.1:8787] [--print-env]
        [--oidc [--oidc-listen 127.0.0.1:8788] [--claim NAME=VALUE]... [--claims FILE]]

Serves a local Cloudflare API emulator (token and Access endpoints) and
prints export lines for its URL, parent tokens and accounts. With --oidc it
also serves a local OIDC issuer shaped like GitHub Actions', and prints the
variables a job with "permissions: id-token: write" has. With --print-env it
runs in the background and the command returns at once:

    $ eval "$(cf-scoped-token emulator --print-env)"
    $ cf-scoped-token create          # talks to the emulator
    $ kill "$CF_EMULATOR_PID"`

func runEmulator(ctx context.Context, args []string, p *printer) error {
	fs := flag.NewFlagSet("emulator", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:8787", "address to serve on (host:port; port 0 picks a free one)")
	fs.StringVar(listen, "l", "127.0.0.1:8787", "short for --listen")
	background := fs.Bool("print-env", false, "serve in the background: print the export lines and CF_EMULATOR_PID, then return")
	oidc := oidcFlags(fs)
	if err := parseFlags(fs, args, p, emulatorSynopsis); err != nil {
		return err
	}
	if *background {
		return startEmulator(ctx, args, *listen, p)
	}
	apiURL, seeded, stop, err := serveEmulator(*listen)
	if err != nil {
		return err
	}
	defer stop()
	env := emulatorEnv(apiURL, seeded)
	if oidc.enabled {
		jobEnv, stopIssuer, err := oidc.serveIssuer()
		if err != nil {
			return err
		}
		defer stopIssuer()
		env = append(env, jobEnv...)
	}
	var b strings.Builder
	for _, kv := range env {
		fmt.Fprintf(&b, "export %s=%s\n", kv[0], shellQuote(kv[1]))
	}
	b.WriteString(envReadyLine + "\n")
	if _, err := io.WriteString(p.out, b.String()); err != nil {
		return fmt.Errorf("emulator: write the variables: %w", err)
	}
	p.logf("emulator serving the Cloudflare API at %s until interrupted", apiURL)
	<-ctx.Done()
	p.logf("emulator stopped")
	if errors.Is(ctx.Err(), context.Canceled) {
		return nil
	}
	return ctx.Err()
}

// startEmulator runs this binary's emulator, with the command's own args,
// as a process of its own that outlives this one, passes its export lines
// on with its pid, and returns once it serves — the ssh-agent pattern, for
// eval.
func startEmulator(ctx context.Context, args []string, listen string, p *printer) error {
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("emulator: find this binary: %w", err)
	}
	// --print-env=false comes last: neither the command line nor the variable
	// CF_SCOPED_TOKEN_PRINT_ENV may send the emulator itself to the background
	// again.
	cmd := exec.Command(self, append(append([]string{"emulator"}, args...), "--print-env=false")...) //nolint:gosec // this very binary, with the command's own arguments
	detach(cmd)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return fmt.Errorf("emulator: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("emulator: start it: %w", err)
	}
	lines := make(chan []string, 1)
	go func() {
		var got []string
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if sc.Text() == envReadyLine {
				lines <- got
				return
			}
			got = append(got, sc.Text())
		}
		lines <- nil // it exited before it served
	}()
	select {
	case got := <-lines:
		if got == nil {
			_ = cmd.Wait()
			return usageError{fmt.Sprintf("the emulator could not serve on %s", listen), "is the address free? pick another with --listen, or port 0 for any"}
		}
		got = append(got, fmt.Sprintf("export CF_EMULATOR_PID=%d", cmd.Process.Pid))
		if _, err := fmt.Fprintln(p.out, strings.Join(got, "\n")); err != nil {
			return fmt.Errorf("emulator: write the variables: %w", err)
		}
		// Its stdout is done with: it writes nothing more there, and
		// releasing it leaves it to run on its own.
		return cmd.Process.Release()
	case <-ctx.Done():
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return ctx.Err()
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return errors.New("emulator: it did not serve within 30s")
	}
}
