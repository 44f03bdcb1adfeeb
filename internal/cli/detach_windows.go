//go:build windows

package cli

import (
	"os/exec"
	"syscall"
)

// detach makes cmd a process group of its own, so a Ctrl+C in the console
// that ran this command does not reach it.
func detach(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{CreationFlags: syscall.CREATE_NEW_PROCESS_GROUP}
}
