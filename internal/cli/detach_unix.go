//go:build unix

package cli

import (
	"os/exec"
	"syscall"
)

// detach makes cmd a session of its own, so it lives on when the shell
// that ran this command (and its terminal) goes away.
func detach(cmd *exec.Cmd) { cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true} }
