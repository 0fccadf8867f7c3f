//go:build profile

package main

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	runpprof "runtime/pprof"
)

// profiled runs rlogind with two profiling hooks for the benchmarks (bench/), both off unless
// their environment variable is set:
//
//   - RLOGIND_DEBUG_ADDR=127.0.0.1:port serves net/http/pprof there (/debug/pprof/: goroutine
//     counts, heap and runtime memory statistics, CPU profiles on demand);
//   - RLOGIND_CPUPROFILE=file writes a CPU profile of the whole run to file when rlogind stops.
//
// They exist only in a build with -tags profile, so that the rlogind people install cannot be
// made to serve its internals by its environment. Never expose the debug address beyond loopback.
func profiled(run func() error) (err error) {
	if path := os.Getenv("RLOGIND_CPUPROFILE"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			return fmt.Errorf("cpu profile: %w", err)
		}
		if err := runpprof.StartCPUProfile(f); err != nil {
			_ = f.Close() // best effort: nothing was written
			return fmt.Errorf("cpu profile: %w", err)
		}
		defer func() {
			runpprof.StopCPUProfile()
			err = errors.Join(err, f.Close())
		}()
	}
	if addr := os.Getenv("RLOGIND_DEBUG_ADDR"); addr != "" {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("debug listener: %w", err)
		}
		srv := &http.Server{Handler: pprofMux()}
		done := make(chan struct{})
		go func() {
			defer close(done)
			_ = srv.Serve(l) // returns at Close below
		}()
		defer func() {
			_ = srv.Close() // best effort: the process is ending
			<-done
		}()
	}
	return run()
}

// pprofMux serves net/http/pprof's handlers under /debug/pprof/, as importing the package
// would on http.DefaultServeMux, but on a mux of its own.
func pprofMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index) // and every named profile: goroutine, heap, ...
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}
