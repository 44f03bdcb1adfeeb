package cli_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

// TestExec_TerminalInterruptOnce: a Ctrl+C on a terminal reaches the whole
// foreground process group, COMMAND with exec; exec does not pass it on as
// well, so COMMAND sees one interrupt, not two (terraform takes a second as
// "stop now"). The terminal is a pseudo-terminal on exec's stdin, and the
// Ctrl+C a SIGINT to exec's process group, as the terminal sends it.
func TestExec_TerminalInterruptOnce(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	tty := openPTY(t)
	dir := t.TempDir()
	script := `trap 'echo INT >> ints' INT; touch started; while [ ! -e stop ]; do sleep 0.05; done`
	cmd := exec.Command(mustBinary(t), "exec", "-a", w.seeded.AccountIDs[0], "--", "sh", "-c", script)
	cmd.Dir = dir
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "CF_SCOPED_TOKEN_API_TOKEN=" + w.seeded.UserToken, "CF_SCOPED_TOKEN_API_URL=" + w.apiURL}
	cmd.Stdin = tty
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // a group of its own, as a shell gives a job
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, filepath.Join(dir, "started"))
	if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // room for a second, forwarded interrupt to arrive
	if err := os.WriteFile(filepath.Join(dir, "stop"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("exec: %v", err)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "ints"))
	if n := strings.Count(string(b), "INT"); n != 1 {
		t.Errorf("COMMAND saw %d interrupts for one Ctrl+C, want 1", n)
	}
	if n := len(w.children()); n != 0 {
		t.Errorf("%d tokens outlive exec", n)
	}
}

// openPTY opens a pseudo-terminal and returns its terminal side.
func openPTY(t *testing.T) *os.File {
	t.Helper()
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	t.Cleanup(func() { master.Close() })
	var unlock int32
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, master.Fd(), syscall.TIOCSPTLCK, uintptr(unsafe.Pointer(&unlock))); e != 0 {
		t.Fatal(e)
	}
	var n uint32
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, master.Fd(), syscall.TIOCGPTN, uintptr(unsafe.Pointer(&n))); e != 0 {
		t.Fatal(e)
	}
	tty, err := os.OpenFile("/dev/pts/"+strconv.Itoa(int(n)), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tty.Close() })
	return tty
}

// waitFor waits (up to 10 s) until path exists.
func waitFor(t *testing.T, path string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, err := os.Stat(path); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never appeared", path)
		}
	}
}
