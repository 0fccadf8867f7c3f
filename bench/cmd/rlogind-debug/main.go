// Command rlogind-debug is cmd/rlogind with two additions for the benchmarks, both off unless
// their environment variable is set:
//
//   - RLOGIND_DEBUG_ADDR=127.0.0.1:port serves net/http/pprof there (/debug/pprof/: goroutine
//     counts, heap and runtime memory statistics, CPU profiles on demand);
//   - RLOGIND_CPUPROFILE=file writes a CPU profile of the whole run to file when rlogind stops.
//
// Everything else, flags included, is rlogind's: main is cmd/rlogind's main around the same
// internal/daemon code (daemon.Main: without SIGHUP reloads, which the benchmarks do not use). The scale benchmark runs this build to count goroutines; the suite runs
// it with -cpuprofile. Never expose the debug address beyond loopback.
package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	_ "net/http/pprof" // registers /debug/pprof/ on http.DefaultServeMux
	"os"
	"runtime/pprof"

	"github.com/rlogin-go/rlogin/internal/daemon"
	"github.com/rlogin-go/rlogin/internal/sigreset"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "rlogind: %v\n", err)
		os.Exit(1)
	}
}

func run(args []string) (err error) {
	daemon.TuneRuntime(os.Getenv) // as cmd/rlogind
	stop := daemon.StopSignals()  // first: sigreset.Reset changes what signal.Ignored reports
	if err := sigreset.Reset(); err != nil {
		return err
	}
	ctx, cancel := daemon.NotifyStop(context.Background(), stop)
	defer cancel()

	if path := os.Getenv("RLOGIND_CPUPROFILE"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			return err
		}
		defer func() {
			pprof.StopCPUProfile()
			err = errors.Join(err, f.Close())
		}()
	}
	if addr := os.Getenv("RLOGIND_DEBUG_ADDR"); addr != "" {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("debug listener: %w", err)
		}
		srv := &http.Server{}
		done := make(chan struct{})
		go func() {
			defer close(done)
			_ = srv.Serve(l) // returns at Close below
		}()
		defer func() {
			_ = srv.Close()
			<-done
		}()
	}
	return daemon.Main(ctx, args, os.Stderr)
}
