package daemon

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
	noEnv := func(string) string { return "" }

	for _, tc := range []struct{ cpus, want int }{{8, 4}, {2, 1}, {1, 1}} {
		runtime.GOMAXPROCS(tc.cpus)
		debug.SetGCPercent(100)
		gotProcs, gotGC := TuneRuntime(noEnv)
		if gotProcs != tc.want || runtime.GOMAXPROCS(0) != tc.want {
			t.Errorf("%d CPUs: TuneRuntime says GOMAXPROCS %d, runtime has %d; want %d", tc.cpus, gotProcs, runtime.GOMAXPROCS(0), tc.want)
		}
		if now := debug.SetGCPercent(100); gotGC != gcPercent || now != gcPercent {
			t.Errorf("%d CPUs: TuneRuntime says GOGC %d, runtime had %d; want %d", tc.cpus, gotGC, now, gcPercent)
		}
	}

	// Set in the environment (the runtime read them at start): left alone.
	runtime.GOMAXPROCS(6)
	debug.SetGCPercent(200)
	env := func(k string) string {
		return map[string]string{"GOMAXPROCS": "6", "GOGC": "200"}[k]
	}
	gotProcs, gotGC := TuneRuntime(env)
	if gotProcs != 6 || runtime.GOMAXPROCS(0) != 6 {
		t.Errorf("GOMAXPROCS=6 set: TuneRuntime says %d, runtime has %d", gotProcs, runtime.GOMAXPROCS(0))
	}
	if now := debug.SetGCPercent(200); gotGC != 200 || now != 200 {
		t.Errorf("GOGC=200 set: TuneRuntime says %d, runtime had %d", gotGC, now)
	}
}
