package rlogind

import (
	"runtime"
	"runtime/debug"
	"testing"
)

func TestTuneRuntime(t *testing.T) {
	procs := runtime.GOMAXPROCS(0)
	gogc := debug.SetGCPercent(100)
	t.Cleanup(func() {
		runtime.GOMAXPROCS(procs)
		debug.SetGCPercent(gogc)
	})

	runtime.GOMAXPROCS(3)
	if got := TuneRuntime(func(string) string { return "" }); got != gcPercent {
		t.Errorf("TuneRuntime = %d; want GOGC %d", got, gcPercent)
	}
	if now := debug.SetGCPercent(100); now != gcPercent {
		t.Errorf("after TuneRuntime the runtime had GOGC %d; want %d", now, gcPercent)
	}
	if got := runtime.GOMAXPROCS(0); got != 3 {
		t.Errorf("TuneRuntime changed GOMAXPROCS to %d; want it left alone", got)
	}

	// Set in the environment (the runtime read it at start): left alone.
	debug.SetGCPercent(200)
	env := func(k string) string { return map[string]string{"GOGC": "200"}[k] }
	if got := TuneRuntime(env); got != 200 {
		t.Errorf("GOGC=200 set: TuneRuntime = %d; want 200", got)
	}
	if now := debug.SetGCPercent(200); now != 200 {
		t.Errorf("GOGC=200 set: the runtime had GOGC %d after TuneRuntime; want 200", now)
	}
}
