package session

import (
	"os"
	"testing"
	"time"
)

// TestResumableBulkFigures measures bulk output through a link emulator at 100 and 300 ms, with
// and without resume (the session package alone: a terminal that floods, a client that
// discards). It runs only with RLOGIN_BULK_FIGURES=1. One run each on a shared 2-core machine
// (2026-12-07), 20 MB, MB/s without and with resume: before RECEIVED (8a317b2), 33.9 and 2.2
// at 100 ms, 13.7 and 0.73 at 300 ms (a resumable session's window did not grow); with it,
// 32.4 and 36.8 at 100 ms, 13.7 and 13.6 at 300 ms.
func TestResumableBulkFigures(t *testing.T) {
	if os.Getenv("RLOGIN_BULK_FIGURES") == "" {
		t.Skip("a measurement: set RLOGIN_BULK_FIGURES=1 to run it")
	}
	const size = 20 << 20
	for _, rtt := range []time.Duration{100 * time.Millisecond, 300 * time.Millisecond} {
		for _, resumable := range []bool{false, true} {
			c, s := delayedPair(t, rtt/2)
			term := newFakeTerminal(t, "sleep", "3600")
			term.flood = true
			term.floodMax = size
			start := time.Now()
			configure, setup := floodSetup(resumable)
			ts := startSessionWith(t, c, s, term, configure, setup)
			ts.stdout.waitFor(t, "the flood", func() bool { return ts.stdout.buf.Len() >= size })
			elapsed := time.Since(start)
			if _, _, ok := ts.client.Resumable(); ok != resumable {
				t.Fatalf("resumable %v, want %v", ok, resumable)
			}
			t.Logf("RTT %v, resumable %v: %d MB in %.2f s: %.2f MB/s", rtt, resumable, size>>20, elapsed.Seconds(), float64(size)/1e6/elapsed.Seconds())
			_ = ts.stdin.Close()
			ts.term.Hangup()
			_, _ = ts.wait()
		}
	}
}
