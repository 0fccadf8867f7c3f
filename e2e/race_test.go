//go:build race

package e2e

// raceEnabled makes TestMain build the commands with the race detector too, when the tests run
// under -race, so a data race in a real session fails the suite.
const raceEnabled = true
