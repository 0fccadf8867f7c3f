//go:build !profile

package main

// profiled runs run. A build with -tags profile adds the benchmarks' CPU profile here
// (profile.go).
func profiled(run func() int) int { return run() }
