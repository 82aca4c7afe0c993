//go:build race

package gateway

// raceEnabled: sync.Pool drops some Puts under the race detector.
const raceEnabled = true
