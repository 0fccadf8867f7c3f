//go:build profile

package main

import (
	"fmt"
	"os"
	"runtime/pprof"

	"github.com/rlogin-go/rlogin/internal/client"
)

// profiled runs rlogin with a CPU profile for the benchmarks (bench/): with
// RLOGIN_CPUPROFILE=prefix set, each run writes a profile of itself to prefix.PID.pprof. The
// hook exists only in a build with -tags profile.
func profiled(run func() int) int {
	prefix := os.Getenv("RLOGIN_CPUPROFILE")
	if prefix == "" {
		return run()
	}
	f, err := os.Create(fmt.Sprintf("%s.%d.pprof", prefix, os.Getpid()))
	if err != nil {
		fmt.Fprintf(os.Stderr, "rlogin: cpu profile: %v\n", err)
		return client.ExitFailure
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		_ = f.Close() // best effort: nothing was written
		fmt.Fprintf(os.Stderr, "rlogin: cpu profile: %v\n", err)
		return client.ExitFailure
	}
	code := run()
	pprof.StopCPUProfile()
	if err := f.Close(); err != nil {
		fmt.Fprintf(os.Stderr, "rlogin: cpu profile: %v\n", err)
	}
	return code
}
