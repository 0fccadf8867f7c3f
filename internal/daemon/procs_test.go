package daemon

import (
	"runtime"
	"testing"
)

func TestShareCPUs(t *testing.T) {
	before := runtime.GOMAXPROCS(0)
	t.Cleanup(func() { runtime.GOMAXPROCS(before) })

	runtime.GOMAXPROCS(8)
	if got := ShareCPUs(func(string) string { return "" }); got != 4 || runtime.GOMAXPROCS(0) != 4 {
		t.Errorf("8 CPUs: ShareCPUs = %d, GOMAXPROCS %d; want 4", got, runtime.GOMAXPROCS(0))
	}
	runtime.GOMAXPROCS(1)
	if got := ShareCPUs(func(string) string { return "" }); got != 1 || runtime.GOMAXPROCS(0) != 1 {
		t.Errorf("1 CPU: ShareCPUs = %d, GOMAXPROCS %d; want 1", got, runtime.GOMAXPROCS(0))
	}
	runtime.GOMAXPROCS(6)
	env := func(k string) string {
		if k == "GOMAXPROCS" {
			return "6"
		}
		return ""
	}
	if got := ShareCPUs(env); got != 6 || runtime.GOMAXPROCS(0) != 6 {
		t.Errorf("GOMAXPROCS=6 in the environment: ShareCPUs = %d, GOMAXPROCS %d; want it left at 6", got, runtime.GOMAXPROCS(0))
	}
}
