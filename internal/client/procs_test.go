package client

import (
	"runtime"
	"testing"
)

func TestTuneRuntime(t *testing.T) {
	procs := runtime.GOMAXPROCS(0)
	t.Cleanup(func() { runtime.GOMAXPROCS(procs) })

	runtime.GOMAXPROCS(4)
	if got := TuneRuntime(func(string) string { return "" }); got != 1 || runtime.GOMAXPROCS(0) != 1 {
		t.Errorf("TuneRuntime = %d, GOMAXPROCS %d; want 1", got, runtime.GOMAXPROCS(0))
	}
	runtime.GOMAXPROCS(3)
	env := func(k string) string {
		if k == "GOMAXPROCS" {
			return "3"
		}
		return ""
	}
	if got := TuneRuntime(env); got != 3 || runtime.GOMAXPROCS(0) != 3 {
		t.Errorf("GOMAXPROCS=3 set: TuneRuntime = %d, GOMAXPROCS %d; want 3 left alone", got, runtime.GOMAXPROCS(0))
	}
}
