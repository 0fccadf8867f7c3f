//go:build !race

package rawio

// checkEachCall is off in normal builds: Read and Write are the hot path, and their callers'
// descriptors were checked once, by NewWatch or NewConn (check_race.go checks each call).
const checkEachCall = false
