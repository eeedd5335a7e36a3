//go:build race

package channel_test

// raceEnabled reports whether the test binary was built with -race.
const raceEnabled = true
