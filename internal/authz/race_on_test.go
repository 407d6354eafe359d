//go:build race

package authz_test

// raceEnabled: the race detector slows the single-goroutine property tests
// several times over without finding anything more in them.
const raceEnabled = true
