//go:build race

package crypto

// raceEnabled lets single-goroutine tests that only grind through inputs
// shrink under the race detector, which has nothing to find in them.
const raceEnabled = true
