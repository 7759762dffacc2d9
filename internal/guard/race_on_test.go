//go:build race

package guard

// raceEnabled reports whether the race detector is on; it adds allocations,
// so allocation tests skip themselves under it.
const raceEnabled = true
