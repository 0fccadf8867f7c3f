//go:build !profile

package main

// profiled runs run. A build with -tags profile adds the benchmarks' profiling hooks here
// (profile.go).
func profiled(run func() error) error { return run() }
