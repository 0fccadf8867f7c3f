package session

import (
	"testing"
	"time"
)

// probe sends a probe at now and takes its answer a round trip later, as the client does.
func probe(w *windowTuner, now time.Time, rtt time.Duration) {
	w.syncSent(false, now)
	if _, ok := w.synced(now.Add(rtt)); !ok {
		panic("a probe's answer without the probe")
	}
}

// TestWindowJumpsToTheLink: a fast epoch of a whole window per round trip or more, whose rate
// needs more than twice the window, grows the window at once to what that rate needs
// (linkWindow), not by doubling; a fast epoch of less than a whole window per round trip (the
// link set the pace) grows it to what its rate needs too, and that counts as the link's rate:
// after it, and once the window was shrunk to the link, it grows by a sixteenth. It grows again
// only once a probe sent after the growth came back. All of it is credit granted in advance.
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

	// A slower link, which carries less than the window per round trip: to its window, not twice
	// the base, and a sixteenth after that.
	const slow = 100 * time.Millisecond
	w = windowTuner{window: window, minRTT: slow}
	link := int(rate*(slow+paceMargin).Seconds()) + linkBatch + flushReserve // tuned to the link: its batch
	if link >= 2*window || rate*slow.Seconds() >= window {
		t.Fatalf("test setup: the link's window %d is not between the base and twice it", link)
	}
	consume(&w, &now, creditBatch, at(creditBatch), 0)
	consume(&w, &now, window/2, at(window/2), 0)
	if w.window != link {
		t.Errorf("a link that carries less than the window per round trip: window %d, want its %d", w.window, link)
	}
	consume(&w, &now, link/2, at(link/2), 0)
	if w.window != link {
		t.Errorf("no probe sent after the growth came back: window %d, want %d", w.window, link)
	}
	probe(&w, now, slow)
	consume(&w, &now, link/2, at(link/2), 0)
	if want := link + link/16; w.window != want {
		t.Errorf("after the growth to the link's window: window %d, want a sixteenth more, %d", w.window, want)
	}

	// Shrunk to the link once: a sixteenth per fast epoch, however fast.
	w = windowTuner{window: window, minRTT: rtt, linkRate: rate, rate: rate}
	consume(&w, &now, creditBatch, at(creditBatch), 0)
	consume(&w, &now, window/2, at(window/2), 0)
	if want := window + window/16; w.window != want {
		t.Errorf("near the link's window: window %d, want %d", w.window, want)
	}
}

// TestFirstEpochJumps: the window starts at the base whatever the round trip (a first window
// sized to it would queue seconds of a slow link's output before ^C could be answered); at 300
// ms on an uncapped link, the first half window comes at 40 MB/s, a whole window and more per
// round trip, and the window grows at once to its bound, no probe waited for.
func TestFirstEpochJumps(t *testing.T) {
	const rate = 40_000_000
	now := time.Unix(1000, 0)
	w := windowTuner{window: window}
	probe(&w, now, 300*time.Millisecond)
	if w.window != window {
		t.Errorf("after the first round trip of 300 ms: window %d, want the base %d", w.window, window)
	}
	at := func(n int) time.Duration { return time.Duration(n) * time.Second / rate }
	consume(&w, &now, creditBatch, at(creditBatch), 0)
	consume(&w, &now, window/2, at(window/2), 0)
	if w.window != maxClientWindow {
		t.Errorf("after an epoch at %d B/s: window %d, want %d", rate, w.window, maxClientWindow)
	}
}

// TestWindowKeepsTheLocalQueue: the window shrunk to the link also holds the output that waited
// in the client's own queue at a credit, on average over the epoch: it is not on the link, and
// without it the link would run dry while the terminal takes its output. The first shrink
// goes to that window at once.
func TestWindowKeepsTheLocalQueue(t *testing.T) {
	const (
		rtt    = 100 * time.Millisecond
		rate   = 2_500_000 // bytes per second: a 20 Mbit/s link
		queued = 48 << 10  // at each credit
	)
	at := func(n int) time.Duration { return time.Duration(n) * time.Second / rate }
	now := time.Unix(1000, 0)
	link := int(rate*(rtt+paceMargin).Seconds()) + linkBatch + flushReserve

	for _, q := range []int{0, queued} {
		w := windowTuner{window: 4 << 20, minRTT: rtt}
		consume(&w, &now, 3<<20, at(3<<20), q) // an epoch at the link's rate
		w.probed(rtt + 300*time.Millisecond)
		// At once the link's window, with the batch of a window tuned to it: a window 48 KiB
		// too big (a creditBatch in place of a linkBatch) was not shrunk again once the
		// probes showed no queue.
		if want := link + q; w.window-w.debt != want {
			t.Errorf("%d bytes queued at each credit: after the first shrink, window %d less debt %d, want the link's %d and the queue, %d", q, w.window, w.debt, link, want)
		}
		for range 8 {
			consume(&w, &now, 1<<20, at(1<<20), q)
		}
		if want := link + q; w.window != want {
			t.Errorf("%d bytes queued at each credit: window %d, want the link's %d and the queue, %d", q, w.window, link, want)
		}
	}
}

// TestCreditBatchAtTheLink: once the window is tuned to a slow link, the client grants credit in
// batches of linkBatch, so that the queue the window keeps at the bottleneck swings by less than
// it holds; before, on a fast link, and again once the rate doubles the link's, in batches of
// creditBatch.
func TestCreditBatchAtTheLink(t *testing.T) {
	now := time.Unix(1000, 0)
	w := windowTuner{window: 4 << 20, minRTT: 300 * time.Millisecond}
	if b := w.batch(); b != creditBatch {
		t.Errorf("untuned: batch %d, want %d", b, creditBatch)
	}
	consume(&w, &now, 3<<20, 2*time.Second, 0) // an epoch at 1.5 MiB/s
	w.probed(time.Second)                      // 700 ms of queue: shrunk to the link
	if b := w.batch(); b != linkBatch {
		t.Errorf("shrunk to the link: batch %d, want %d", b, linkBatch)
	}

	c := &Client{flow2: true}
	c.tune = w
	c.consumed = linkBatch - 1
	if n := c.takeCreditLocked(); n != 0 {
		t.Errorf("credit %d for less than a batch consumed", n)
	}
	c.consumed = linkBatch
	c.tune.debt = 0
	if n := c.takeCreditLocked(); n != linkBatch {
		t.Errorf("credit %d for a batch of %d consumed, want it all", n, linkBatch)
	}

	// A fast link, on which a creditBatch is less than paceMargin's worth: big batches.
	fast := windowTuner{window: window, minRTT: 300 * time.Millisecond}
	consume(&fast, &now, 3<<20, 200*time.Millisecond, 0) // an epoch at 15 MiB/s
	fast.probed(time.Second)
	if fast.linkRate == 0 {
		t.Fatal("test setup: the fast link's window was not shrunk to it")
	}
	if b := fast.batch(); b != creditBatch {
		t.Errorf("shrunk to a link of %.0f B/s: batch %d, want %d", fast.linkRate, b, creditBatch)
	}

	// A slow link (2 Mbit/s), on which a linkBatch is more than paceMargin's worth: big batches.
	slow := windowTuner{window: window, minRTT: 300 * time.Millisecond, linkRate: 250_000}
	if b := slow.batch(); b != creditBatch {
		t.Errorf("tuned to a link of %.0f B/s: batch %d, want %d", slow.linkRate, b, creditBatch)
	}

	// The link carries four times what it did at the shrink (rate/4): doubling again.
	const (
		rtt  = 100 * time.Millisecond
		rate = 2_500_000 // bytes per second: a 20 Mbit/s link
	)
	at := func(n int) time.Duration { return time.Duration(n) * time.Second / rate }
	w = windowTuner{window: window, minRTT: rtt, linkRate: rate / 4, rate: rate / 4}
	consume(&w, &now, creditBatch, at(creditBatch/4), 0)
	consume(&w, &now, window/2, at(window/8), 0) // a whole window per round trip and more
	if w.linkRate != 0 {
		t.Fatalf("link rate %.0f after an epoch at four times it, want none", w.linkRate)
	}
	if b := w.batch(); b != creditBatch {
		t.Errorf("no longer at the link: batch %d, want %d", b, creditBatch)
	}
}
