// Command rlogin-debug is cmd/rlogin with a CPU profile for the benchmarks: with
// RLOGIN_CPUPROFILE=prefix set, each run writes a profile of itself to prefix.PID.pprof.
// Everything else is rlogin's (internal/client.Main).
package main

import (
	"fmt"
	"os"
	"runtime/pprof"

	"github.com/rlogin-go/rlogin/internal/client"
)

func main() {
	os.Exit(run())
}

func run() int {
	client.TuneRuntime(os.Getenv) // as cmd/rlogin
	if prefix := os.Getenv("RLOGIN_CPUPROFILE"); prefix != "" {
		f, err := os.Create(fmt.Sprintf("%s.%d.pprof", prefix, os.Getpid()))
		if err != nil {
			fmt.Fprintf(os.Stderr, "rlogin: %v\n", err)
			return client.ExitFailure
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintf(os.Stderr, "rlogin: %v\n", err)
			return client.ExitFailure
		}
		defer pprof.StopCPUProfile()
	}
	return client.Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
}
