package client

import "runtime"

// TuneRuntime lets one thread at a time run rlogin's Go code (GOMAXPROCS=1), unless the
// GOMAXPROCS environment variable is set; it returns the resulting GOMAXPROCS. The mains call
// it; Main does not, so that a program embedding it keeps its own setting.
//
// rlogin's work for its one session is sequential: a keystroke goes out, output comes in, and
// it waits for the terminal and the connection in Go's poller, not in blocking system calls. A
// second slot only makes the runtime wake spare threads to look for work: with one, a flood
// of output cost 11% less CPU on a 2-CPU machine (3.10 vs 3.50 s/GB, 5 interleaved rounds,
// docs/benchmarks.md), with the same keystroke echo.
func TuneRuntime(getenv func(string) string) int {
	if getenv("GOMAXPROCS") != "" {
		return runtime.GOMAXPROCS(0)
	}
	runtime.GOMAXPROCS(1)
	return 1
}
