package rlogind

import "runtime/debug"

// gcPercent is rlogind's default GOGC: see TuneRuntime.
const gcPercent = 50

// TuneRuntime sets the Go runtime's garbage collection default for a daemon that holds many
// mostly idle sessions: GOGC becomes 50 unless the GOGC environment variable is set. It returns
// the resulting GOGC.
//
// An idle session's memory is largely the collector's headroom (with GOGC=100 the heap may grow
// to twice the live data before a collection). rlogind's live heap is small and a flood
// allocates little, so the smaller headroom costs no measurable CPU, and it took each of 1000
// idle sessions from 62.7-64.3 KiB to 55.8 KiB of daemon RSS.
//
// GOMAXPROCS stays Go's default. One slot on a 2-CPU machine moved a flood 11-13% faster at
// 16-20% less daemon CPU, but it delayed other sessions: with two sessions flooding, the echo
// of the others took a p99 of 36-46 ms instead of 1.4-13 ms, because the busy slot checks the
// network only between goroutines and rlogind's hot path makes raw system calls
// (docs/benchmarks.md).
func TuneRuntime(getenv func(string) string) (gogc int) {
	if getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercent)
		return gcPercent
	}
	gogc = debug.SetGCPercent(100) // read the value the runtime took from GOGC ...
	debug.SetGCPercent(gogc)       // ... and put it back
	return gogc
}
