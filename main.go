// Command cf-scoped-token mints a Cloudflare API token limited to the
// Access settings, level and accounts a CI step names, which expires by
// itself; as a GitHub Action it also deletes the token when the job ends.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/cf-scoped-token/cf-scoped-token/internal/cli"
)

func main() {
	// The runner cancels a job with SIGINT, then SIGTERM: either cancels the
	// context, and the lifecycle still deletes a half-made token.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, os.Args, os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
