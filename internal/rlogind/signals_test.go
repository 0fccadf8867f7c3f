package rlogind

import (
	"context"
	"os"
	"syscall"
	"testing"
	"time"
)

func TestStopSignals(t *testing.T) {
	// The test binary was not started with SIGTERM ignored.
	sigs := StopSignals()
	if len(sigs) == 0 || sigs[0].String() != "terminated" {
		t.Fatalf("StopSignals() = %v, want SIGTERM first", sigs)
	}
	ctx, stop := NotifyStop(context.Background(), nil)
	stop()
	<-ctx.Done()
}

// TestNotifyReload: each signal makes one reload; signals arriving before the last was taken
// count as one.
func TestNotifyReload(t *testing.T) {
	ch, stop := NotifyReload([]os.Signal{syscall.SIGUSR1})
	defer stop()
	for range 2 {
		if err := syscall.Kill(os.Getpid(), syscall.SIGUSR1); err != nil {
			t.Fatal(err)
		}
		select {
		case <-ch:
		case <-time.After(shortTimeout):
			t.Fatal("no reload after the signal")
		}
	}
	stop()
	stop()
	none, stopNone := NotifyReload(nil)
	defer stopNone()
	select {
	case <-none:
		t.Fatal("reload without signals")
	default:
	}
}
