package daemon

import "runtime"

// ShareCPUs sets how many threads may run rlogind's Go code at once (GOMAXPROCS) to half the
// CPUs the process may use, at least one, and returns the new value. If the GOMAXPROCS
// environment variable is set, it changes nothing and returns the value the runtime took from it.
//
// Why half: a session's output costs about as much CPU outside rlogind (the shell writing to
// the pty, the kernel's pty workers, the client) as inside it, and what rlogind does is mostly
// system calls, which leave their slot when they block. With a slot per CPU the runtime keeps
// waking spare threads to look for work, which take the CPUs the shells and the kernel need:
// on a 2-CPU machine, one slot instead of two made a 200 MB flood 13% faster and cut rlogind's
// CPU per GB by 20%, with no change in keystroke echo (docs/benchmarks.md).
func ShareCPUs(getenv func(string) string) int {
	if getenv("GOMAXPROCS") != "" {
		return runtime.GOMAXPROCS(0)
	}
	n := max(1, runtime.GOMAXPROCS(0)/2)
	runtime.GOMAXPROCS(n)
	return n
}
