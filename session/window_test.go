package session

import (
	"testing"
	"time"
)

// TestWindowJumpsToTheLink: a fast epoch whose rate needs more than twice the window grows the
// window at once to what that rate needs (linkWindow), not by doubling; one whose rate needs
// less doubles it; and once the window was shrunk to the link, it grows by a sixteenth, as
// before. All of it is credit granted in advance.
func TestWindowJumpsToTheLink(t *testing.T) {
	const (
		rtt  = 300 * time.Millisecond
		rate = 2_500_000 // bytes per second: a 20 Mbit/s link, whose product is 750 KB at 300 ms
	)
	at := func(n int) time.Duration { return time.Duration(n) * time.Second / rate }
	now := time.Unix(1000, 0)

	w := windowTuner{window: window, minRTT: rtt}
	consume(&w, &now, creditBatch, at(creditBatch), 0) // the first credit starts the epoch
	granted := consume(&w, &now, window/2, at(window/2), 0)
	want := int(rate*(rtt+paceMargin).Seconds()) + creditBatch + flushReserve
	if want <= 2*window {
		t.Fatalf("test setup: the link's window %d is not above twice the base", want)
	}
	if w.window != want {
		t.Errorf("after a fast epoch at %d B/s: window %d, want the link's %d", rate, w.window, want)
	}
	if granted-window/2 != want-window {
		t.Errorf("granted %d in advance, want the growth %d", granted-window/2, want-window)
	}

	// A slower link, whose window is less than twice this one: doubling.
	w = windowTuner{window: window, minRTT: 100 * time.Millisecond}
	consume(&w, &now, creditBatch, at(creditBatch), 0)
	consume(&w, &now, window/2, at(window/2), 0)
	if w.window != 2*window {
		t.Errorf("a link that needs less than twice the window: window %d, want %d", w.window, 2*window)
	}

	// Shrunk to the link once: a sixteenth per fast epoch, however fast.
	w = windowTuner{window: window, minRTT: rtt, linkRate: rate, rate: rate}
	consume(&w, &now, creditBatch, at(creditBatch), 0)
	consume(&w, &now, window/2, at(window/2), 0)
	if want := window + window/16; w.window != want {
		t.Errorf("near the link's window: window %d, want %d", w.window, want)
	}
}

// TestWindowKeepsTheLocalQueue: the window shrunk to the link also holds the output that waited
// in the client's own queue at a credit, on average over the epoch: it is not on the link, and
// without it the link would run dry while the terminal takes its output.
func TestWindowKeepsTheLocalQueue(t *testing.T) {
	const (
		rtt    = 100 * time.Millisecond
		rate   = 2_500_000 // bytes per second: a 20 Mbit/s link
		queued = 48 << 10  // at each credit
	)
	at := func(n int) time.Duration { return time.Duration(n) * time.Second / rate }
	now := time.Unix(1000, 0)
	link := int(rate*(rtt+paceMargin).Seconds()) + creditBatch + flushReserve

	for _, q := range []int{0, queued} {
		w := windowTuner{window: 4 << 20, minRTT: rtt}
		consume(&w, &now, 3<<20, at(3<<20), q) // an epoch at the link's rate
		w.probed(rtt + 300*time.Millisecond)
		for range 8 {
			consume(&w, &now, 1<<20, at(1<<20), q)
		}
		if want := link + q; w.window != want {
			t.Errorf("%d bytes queued at each credit: window %d, want the link's %d and the queue, %d", q, w.window, link, want)
		}
	}
}
