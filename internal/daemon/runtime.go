package daemon

import (
	"runtime"
	"runtime/debug"
)

// gcPercent is rlogind's default GOGC: see TuneRuntime.
const gcPercent = 50

// TuneRuntime sets two of the Go runtime's defaults for a daemon that holds many sessions and
// moves their bytes mostly in system calls; the environment variables GOMAXPROCS and GOGC,
// when set, win. It returns the resulting GOMAXPROCS and GOGC.
//
// GOMAXPROCS, how many threads may run Go code at once, becomes half the CPUs the process may
// use (at least one). A session's output costs about as much CPU outside rlogind (the shell
// writing to the pty, the kernel's pty workers, the client) as inside it. With a slot per CPU
// the runtime keeps waking spare threads to look for work, which take the CPUs the shells and
// the kernel need: on a 2-CPU machine, one slot instead of two made a flood 11-13% faster and
// cut rlogind's CPU per GB by 16-20% (docs/benchmarks.md), with no change in keystroke echo.
//
// GOGC becomes 50: an idle session's memory is largely the collector's headroom (with GOGC=100
// the heap may grow to twice the live data before a collection). rlogind's live heap is small
// and a flood allocates little, so the smaller headroom costs no measurable CPU, and it took
// each of 1000 idle sessions from 62.7-64.3 KiB to 55.8 KiB of daemon RSS.
func TuneRuntime(getenv func(string) string) (procs, gogc int) {
	procs = runtime.GOMAXPROCS(0)
	if getenv("GOMAXPROCS") == "" {
		procs = max(1, procs/2)
		runtime.GOMAXPROCS(procs)
	}
	if getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercent)
		return procs, gcPercent
	}
	gogc = debug.SetGCPercent(100) // read the value the runtime took from GOGC ...
	debug.SetGCPercent(gogc)       // ... and put it back
	return procs, gogc
}
