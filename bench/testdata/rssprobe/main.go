//go:build linux

// Command rssprobe runs a command and writes the command's peak resident set size
// to the file named by RSSPROBE_OUT, as "maxrss=<bytes>".
//
// It exists because Linux's ru_maxrss cannot be read for a child of a big process: os/exec
// starts children with vfork, and exec(2) records the high-water mark of the address space
// it replaces — the parent's — into the child's maxrss. A child of the test binary so reports
// the test binary's peak. Started from this small process instead, the number is the
// command's own, or this probe's few MiB if the command stayed below that.
//
// Two forms:
//   - rssprobe COMMAND [ARG...] runs COMMAND;
//   - with RSSPROBE_DIR set, the probe stands in for a binary: it runs
//     $RSSPROBE_DIR/<its own base name> with its own arguments, so that a runner which tells
//     main from post by the name it starts (an action's post alias) starts the right one.
//
// Stdin, stdout, stderr and the environment pass through; SIGINT and SIGTERM are forwarded;
// the probe exits with the command's status (128+signal if a signal ended it).
package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
)

func main() {
	os.Exit(run())
}

func run() int {
	var cmd *exec.Cmd
	if dir := os.Getenv("RSSPROBE_DIR"); dir != "" {
		target := filepath.Join(dir, filepath.Base(os.Args[0]))
		cmd = exec.Command(target, os.Args[1:]...)
	} else if len(os.Args) > 1 {
		cmd = exec.Command(os.Args[1], os.Args[2:]...)
	} else {
		fmt.Fprintln(os.Stderr, "usage: rssprobe COMMAND [ARG...] (or set RSSPROBE_DIR)")
		return 2
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(os.Stderr, "rssprobe: %v\n", err)
		return 127
	}
	go func() {
		for s := range sig {
			_ = cmd.Process.Signal(s)
		}
	}()
	err := cmd.Wait()
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		fmt.Fprintf(os.Stderr, "rssprobe: %v\n", err)
		return 127
	}
	ps := cmd.ProcessState
	ru, _ := ps.SysUsage().(*syscall.Rusage)
	if out := os.Getenv("RSSPROBE_OUT"); out != "" && ru != nil {
		line := fmt.Sprintf("maxrss=%d\n", ru.Maxrss*1024)
		if err := os.WriteFile(out, []byte(line), 0o600); err != nil {
			fmt.Fprintf(os.Stderr, "rssprobe: %v\n", err)
			return 127
		}
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ps.ExitCode()
}
