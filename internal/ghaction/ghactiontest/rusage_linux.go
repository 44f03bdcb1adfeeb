package ghactiontest

import (
	"os"
	"syscall"
)

// maxRSS is the process's peak resident set size in bytes. Linux's getrusage(2) reports
// ru_maxrss in KiB.
func maxRSS(ps *os.ProcessState) int64 {
	if ru, ok := ps.SysUsage().(*syscall.Rusage); ok {
		return ru.Maxrss * 1024
	}
	return 0
}
