package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/cf-scoped-token/cf-scoped-token/internal/emulator"
)

// serveEmulator starts a seeded emulator on addr and returns its API base
// URL, what it was seeded with, and a stop function.
func serveEmulator(addr string) (apiURL string, seeded emulator.Seeded, stop func(), err error) {
	e := emulator.New()
	seeded = emulator.Seed(e)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", emulator.Seeded{}, nil, fmt.Errorf("emulator: %w", err)
	}
	srv := &http.Server{Handler: e, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln) // returns http.ErrServerClosed on stop
	}()
	stop = func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		<-done
	}
	return "http://" + ln.Addr().String() + emulator.BasePath, seeded, stop, nil
}

func runEmulator(ctx context.Context, args []string, p *printer) error {
	fs := flag.NewFlagSet("emulator", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:8787", "address to serve on (host:port; port 0 picks a free one)")
	fs.StringVar(listen, "l", "127.0.0.1:8787", "short for --listen")
	oidc := oidcFlags(fs)
	if err := parseFlags(fs, args, p, "cf-scoped-token emulator [--listen 127.0.0.1:8787] [--oidc [--oidc-listen A] [--claim NAME=VALUE]… [--claims FILE]]"); err != nil {
		return err
	}
	apiURL, seeded, stop, err := serveEmulator(*listen)
	if err != nil {
		return err
	}
	defer stop()
	// KEY=value lines on stdout, for scripts (eval or an env file): the
	// parent tokens are the emulator's own and grant nothing elsewhere.
	fmt.Fprintf(p.out, "CF_EMULATOR_API_URL=%s\nCF_EMULATOR_USER_TOKEN=%s\nCF_EMULATOR_ACCOUNT_TOKEN=%s\nCF_EMULATOR_ACCOUNT_IDS=%s\n",
		apiURL, seeded.UserToken, seeded.AccountToken, strings.Join(seeded.AccountIDs, ","))
	if oidc.enabled {
		lines, stopIssuer, err := oidc.serveIssuer()
		if err != nil {
			return err
		}
		defer stopIssuer()
		fmt.Fprint(p.out, lines)
	}
	if f, ok := p.out.(interface{ Sync() error }); ok {
		_ = f.Sync()
	}
	p.logf("emulator serving the Cloudflare API at %s until interrupted", apiURL)
	<-ctx.Done()
	p.logf("emulator stopped")
	if errors.Is(ctx.Err(), context.Canceled) {
		return nil
	}
	return ctx.Err()
}
