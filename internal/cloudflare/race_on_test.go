//go:build race

package cloudflare

// raceDetector: the tests run under -race.
const raceDetector = true
