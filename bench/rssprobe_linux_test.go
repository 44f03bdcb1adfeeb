//go:build linux

package bench

import (
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
)

// TestRSSProbe shows why peak RSS is read through the probe: a child started directly by a
// big process reports that process's high-water mark, while one started by the probe reports
// its own few MiB.
func TestRSSProbe(t *testing.T) {
	t.Parallel()
	if bins.probe == "" {
		t.Fatal("no probe was built")
	}
	truePath, err := exec.LookPath("true")
	if err != nil {
		t.Skip("no true(1)")
	}
	const big = 128 << 20
	ballast := make([]byte, big) // this process's peak is now at least big
	for i := 0; i < len(ballast); i += 4096 {
		ballast[i] = 1
	}
	direct := exec.Command(truePath)
	if err := direct.Run(); err != nil {
		t.Fatal(err)
	}
	ru, ok := direct.ProcessState.SysUsage().(*syscall.Rusage)
	if !ok {
		t.Fatal("no rusage")
	}
	// Not asserted: it is the kernel's doing (exec records the replaced address space's peak,
	// here this process's), and the probe must be right either way.
	t.Logf("true(1) started directly reports a peak RSS of %d MiB, through the probe:", ru.Maxrss>>10)
	out := filepath.Join(t.TempDir(), "rss")
	probed := exec.Command(bins.probe, truePath)
	probed.Env = []string{"RSSPROBE_OUT=" + out}
	if err := probed.Run(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	rss, err := parseProbe(string(b))
	if err != nil {
		t.Fatalf("probe wrote %q: %v", b, err)
	}
	t.Logf("%d MiB", rss>>20)
	if rss <= 0 || rss >= 32<<20 {
		t.Errorf("true(1) through the probe: peak RSS %d bytes, want its own (well under 32 MiB)", rss)
	}
	ballast[0] = 2 // keep the ballast alive until here
}
