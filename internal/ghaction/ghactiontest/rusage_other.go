//go:build !linux

package ghactiontest

import "os"

// maxRSS is 0 off Linux: the unit of ru_maxrss differs between systems (bytes on macOS,
// KiB on Linux and the BSDs) and Windows has none, and only Linux runs these actions.
func maxRSS(*os.ProcessState) int64 { return 0 }
