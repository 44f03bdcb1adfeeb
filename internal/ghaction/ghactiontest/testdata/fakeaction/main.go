// Command fakeaction is a stand-in for the real action in ghactiontest's tests. It speaks the
// runner protocol through ghaction, and its inputs (see action.yml) choose what it does, so the
// tests can prove the simulation without the product.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cf-scoped-token/cf-scoped-token/internal/ghaction"
)

func main() {
	a := ghaction.New(os.Getenv, os.Stdout)
	if filepath.Base(os.Args[0]) == "fakeaction-post" {
		os.Exit(post(a))
	}
	os.Exit(run(a))
}

func run(a *ghaction.Action) int {
	secret := a.Input("secret")
	leak := a.Input("leak")
	must(a.SaveState("token-id", a.Input("state")))
	must(a.SaveState("Mixed-Case", "kept"))
	if secret != "" {
		if leak == "before-mask" {
			fmt.Printf("the secret is %s\n", secret)
		}
		a.Mask(secret)
		switch leak {
		case "debug":
			a.Debugf("secret=%s", secret)
		case "stderr":
			// The runner reads stdout and stderr concurrently, so a line on stderr can overtake
			// the mask on stdout; wait so the test sees the mask first, deterministically.
			time.Sleep(200 * time.Millisecond)
			fmt.Fprintf(os.Stderr, "secret=%s\n", secret)
		case "error-escaped":
			a.Errorf("bad %s", secret)
		case "summary":
			must(a.AddStepSummary("| token | " + secret + " |"))
		}
		must(a.SetOutput("secret", secret))
	}
	report(a)
	if f := a.Input("wait-file"); f != "" {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM)
		must(os.WriteFile(f, nil, 0o600))
		select {
		case s := <-sig:
			must(a.SetOutput("signal", s.String()))
			a.Warningf("cancelled")
			return 1
		case <-time.After(30 * time.Second):
			return 2
		}
	}
	if raw := a.Input("raw-output"); raw != "" {
		f, err := os.OpenFile(os.Getenv("GITHUB_OUTPUT"), os.O_APPEND|os.O_WRONLY, 0)
		must(err)
		_, err = f.WriteString(strings.ReplaceAll(raw, `\n`, "\n"))
		must(err)
		must(f.Close())
	}
	spend(a)
	code, _ := strconv.Atoi(a.Input("exit"))
	if code != 0 {
		a.Errorf("failing with %d", code)
	}
	return code
}

func post(a *ghaction.Action) int {
	a.Noticef("post token-id=%s mixed=%s", a.State("token-id"), a.State("Mixed-Case"))
	if a.Input("post-leak") == "true" {
		fmt.Printf("post: %s\n", a.Input("secret"))
	}
	report(a)
	code, _ := strconv.Atoi(a.Input("post-exit"))
	return code
}

// spend uses the CPU time, wall time and memory the inputs busy, sleep and alloc-mib ask for.
func spend(a *ghaction.Action) {
	if d, err := time.ParseDuration(a.Input("busy")); err == nil {
		var x uint64
		for start := time.Now(); time.Since(start) < d; {
			for i := range 1 << 16 {
				x = x*6364136223846793005 + uint64(i)
			}
		}
		must(a.SetOutput("busy-result", strconv.FormatUint(x, 16)))
	}
	if d, err := time.ParseDuration(a.Input("sleep")); err == nil {
		time.Sleep(d)
	}
	if n, err := strconv.Atoi(a.Input("alloc-mib")); err == nil && n > 0 {
		buf := make([]byte, n<<20)
		for i := 0; i < len(buf); i += 4096 { // touch every page, so it is resident
			buf[i] = 1
		}
		must(a.SetOutput("alloc-touched", strconv.Itoa(len(buf))))
	}
}

// report sets outputs describing how the process was started.
func report(a *ghaction.Action) {
	wd, _ := os.Getwd()
	must(a.SetOutput("argv0", filepath.Base(os.Args[0])))
	must(a.SetOutput("args", strings.Join(os.Args[1:], "|")))
	must(a.SetOutput("cwd", wd))
	for _, name := range strings.Split(a.Input("env-names"), ",") {
		if name = strings.TrimSpace(name); name == "" {
			continue
		}
		v, ok := os.LookupEnv(name)
		must(a.SetOutput("has:"+name, strconv.FormatBool(ok)))
		must(a.SetOutput("env:"+name, v))
	}
}

func must(err error) {
	if err != nil {
		fmt.Fprintf(os.Stderr, "fakeaction: %v\n", err)
		os.Exit(99)
	}
}
