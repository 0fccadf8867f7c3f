package session

import "time"

// maxClientWindow is the largest output window this client grows to: 8 MiB fills a link of
// 200 Mbit/s at 300 ms, or 20 MB/s at 200 ms, and is what one session's output may have in
// flight or queued at the client (docs/protocol.md, section 7.3).
const maxClientWindow = 8 << 20

// maxIdleQueue is the largest output queue buffer a client keeps once it is empty.
const maxIdleQueue = 2 * maxDataFrame

// The window's bounds when the link queues (see windowTuner).
const (
	// queueSlack is how much longer than the shortest round trip a probe may take before the
	// window counts as holding a standing queue on the link: half of the 50 ms that the prompt
	// after ^C may take beyond a round trip (issue 14).
	queueSlack = 25 * time.Millisecond
	// growSlack is the most a probe may exceed the shortest round trip for the window to grow.
	growSlack = queueSlack / 2
	// paceMargin is the rate's worth above the bandwidth-delay product that a window shrunk to
	// the link keeps, besides a credit batch and the server's flushReserve: room for the rate
	// to vary. With 5 ms, 20 Mbit/s links carried 0.75-0.97 of their rate; with 10 ms (and
	// credit in 64 KiB batches) the bottleneck's queue still ran dry 11-20 times per 20 MB, for
	// 4-12 ms each (docs/benchmarks.md).
	paceMargin = 20 * time.Millisecond
	// linkBatch is the credit batch once the window is tuned to the link (see batch).
	linkBatch = 16 << 10
	// minQueueWindow is the smallest window shrunk to the link: the server keeps flushReserve of
	// its window for after a flush, and the client grants credit only a batch at a time, so
	// below this the two could wait for each other.
	minQueueWindow = flushReserve + creditBatch + 16<<10
	// probeGap is the shortest time between two probes: over loopback a credit goes every
	// millisecond or so during a flood, and a probe each time would only cost the server.
	probeGap = 5 * time.Millisecond
)

// windowTuner is the client's side of capability flow2: the size of the output window it
// grants the server, and its SYNCs. Its fields are under the Client's mu.
//
// The window starts at the base, whatever the round trip: a first window sized to the round
// trip (OpenSSH's channel window of 2 MB fills a link from the first moment) would queue seconds
// of a slow link's output before the first probe could show it, and a ^C in a session's first
// output would wait for all of it (measured through 2 Mbit/s at 300 ms: 3 s, against 0.5 s
// from the base). The window grows as HTTP/2 and QUIC receivers auto-tune theirs: when the output of the last half window was consumed faster than half a
// window per round trip, and a whole window or more per round trip, the window limits the
// rate, and it doubles (up to maxClientWindow), or grows at once to the window that the
// epoch's rate needs (linkWindow) when that is more. Consumed faster than half a window but
// slower than a whole one per round trip, the link, not the window, set the pace: the window
// grows only to what that rate needs, and that counts as the link's rate (below). It shrinks by
// half, never below the base of 256 KiB, when more than half of it waits in the queue: then the
// writer (the terminal), not the link, sets the pace, and a big window would only hold more
// output that is already late. It grows by credit
// granted in advance and shrinks by credit withheld, so the server needs nothing but the bound.
//
// A window bigger than the bandwidth-delay product fills the queue at the link's bottleneck
// (and the sockets' buffers before it), and whatever sits there delays the prompt after ^C:
// the client drops the flushed output as it arrives, but it must arrive first. Measured
// through a 20 Mbit/s link with a round trip of 100 ms, a window of two to four times the
// product brought the prompt 0.3 s after the round trip. So while output flows the client
// keeps one SYNC under way as a probe of the round trip (sent with a credit when none is
// under way). A probe that takes more than queueSlack longer than the shortest round trip
// shows a standing queue: the window shrinks to the rate of the last epoch (half a window
// consumed) times the shortest round trip, plus paceMargin's worth, a credit batch, the
// server's flushReserve (which it does not send into until a flush) and the output that waited
// in the client's queue at a credit on average over the epoch, and not below minQueueWindow
// (under the base when need be). That queue costs ^C nothing (the client drops it at the
// FLUSH), but without it the window left the link idle while the terminal took its output:
// 0.94x OpenSSH through 20 Mbit/s at 100 ms, where the client queued 40-50 KB at a credit. The window grows only while the last
// probe showed less than growSlack of queue, and only once a probe sent after its last growth
// has come back (one sent before shows nothing of what the growth queued, and growth ran a
// round trip ahead of the probes); once it shrank or grew to the link, by a sixteenth an epoch
// rather than twice, until the rate doubles what the link carried then (measured through a 20
// Mbit/s link at 100 ms, doubling swung the window between 330 and 660 KB and the queue up to
// 130 ms). Once tuned to the link, it grants credit in smaller batches (batch), so that the
// queue it keeps swings less and does not run dry. A link that queues nothing, or a window that a slow terminal limits, is tuned as
// before.
type windowTuner struct {
	window int // the output window granted: base plus credit granted in advance, minus withheld
	debt   int // credit still to withhold, to shrink the window

	minRTT        time.Duration // the shortest round trip of a SYNC that held nothing; 0: none yet
	queue         time.Duration // the last probe's round trip less minRTT: the link's standing queue
	rate          float64       // bytes per second consumed in the last epoch; 0: none yet
	probeDue      bool          // output flows: keep a SYNC under way that measures the round trip
	lastProbe     time.Time     // when the last probe was sent
	lastRate      float64       // the rate of the epoch before the last
	linkRate      float64       // the rate when the window last shrank to the link; 0: never
	epochStart    time.Time     // when the current measuring epoch began
	epochConsumed int           // output consumed since then
	epochQueued   int           // the sum of the output queued at each credit since then
	epochCredits  int           // how many credits since then
	localQueue    int           // the output queued at a credit, on average over the last epoch

	unseen bool // the window grew since the last answer to a probe sent after its growth

	syncs []pendingSync // SYNCs sent, not answered yet, oldest first
	holds int           // how many of them hold the output
}

// pendingSync is a SYNC waiting for its SYNCED.
type pendingSync struct {
	sent   time.Time
	hold   bool // sent after an interrupt: output is held until the answer
	before bool // sent before the window's last growth
}

// canSync reports whether another SYNC may be sent: the protocol bounds the unanswered ones.
func (w *windowTuner) canSync() bool { return len(w.syncs) < maxSyncs }

// takeProbe reports whether a probe is due and may be sent, and if so notes it as sent now.
func (w *windowTuner) takeProbe() bool {
	if !w.probeDue || len(w.syncs) > 0 { // a SYNC under way measures already
		return false
	}
	now := time.Now()
	if now.Sub(w.lastProbe) < probeGap {
		return false
	}
	w.probeDue, w.lastProbe = false, now
	w.syncSent(false, now)
	return true
}

// syncSent notes a SYNC, sent at now; if hold is set the output is held until its answer.
func (w *windowTuner) syncSent(hold bool, now time.Time) {
	w.syncs = append(w.syncs, pendingSync{sent: now, hold: hold})
	if hold {
		w.holds++
	}
}

// synced takes a SYNCED, received at now: it reports whether its SYNC held the output, and
// false ok for a SYNCED without a SYNC. One that held nothing measures the round trip.
func (w *windowTuner) synced(now time.Time) (held, ok bool) {
	if len(w.syncs) == 0 {
		return false, false
	}
	s := w.syncs[0]
	w.syncs = w.syncs[1:]
	if len(w.syncs) == 0 {
		w.syncs = nil // a slice that is emptied and refilled keeps nothing alive
	}
	if s.hold {
		w.holds--
		return true, true
	}
	if !s.before && w.unseen {
		// The growth's output starts to arrive: an epoch that began before it would mix the
		// two rates.
		w.unseen = false
		w.epochStart, w.epochConsumed, w.epochQueued, w.epochCredits = now, 0, 0, 0
	}
	w.probed(now.Sub(s.sent))
	return false, true
}

// probed takes the round trip of a SYNC that held nothing: the shortest is the link's own, and
// what a probe takes beyond it is queued on the way. A standing queue longer than queueSlack
// shrinks the window to what the link carries.
func (w *windowTuner) probed(rtt time.Duration) {
	rtt = max(rtt, time.Microsecond)
	if w.minRTT == 0 || rtt < w.minRTT {
		w.minRTT = rtt
	}
	w.queue = rtt - w.minRTT
	w.shrinkToLink()
}

// grew notes that the window grew by n: the probes under way measure the window before that.
func (w *windowTuner) grew(n int) {
	w.window += n
	w.debt = 0
	w.unseen = true
	for i := range w.syncs {
		w.syncs[i].before = true
	}
}

// shrinkToLink shrinks the window, when the last probe showed a standing queue, to what the
// link carries at the last epoch's rate (see windowTuner). Never while the output is held: the
// rate then says nothing of the link.
func (w *windowTuner) shrinkToLink() {
	if w.queue <= queueSlack || w.holds > 0 || w.rate == 0 {
		return
	}
	w.linkRate = w.rate // first: the window it shrinks to has the batch of that link
	if target := w.linkWindow(w.batch()); w.window-w.debt > target {
		w.debt = w.window - target
	}
}

// linkWindow is the window that the last epoch's rate needs (see windowTuner): the rate times
// the shortest round trip, plus paceMargin's worth, the credit batch the window will have, the
// server's flushReserve and the client's own queue, and at least minQueueWindow.
func (w *windowTuner) linkWindow(batch int) int {
	bdp := w.rate * (w.minRTT + paceMargin).Seconds()
	return max(minQueueWindow, int(bdp)+batch+flushReserve+w.localQueue)
}

// batch is how much consumed output the client gathers before it grants credit: creditBatch,
// or linkBatch once the window is tuned to a link (shrunk or grown to its rate) on which a
// creditBatch is more than paceMargin's worth and a linkBatch not (6.5-26 Mbit/s): on a
// slower link, 2 Mbit/s at 300 ms, small batches cost a quarter of the rate and ^C's prompt
// 0.1-0.2 s (docs/benchmarks.md). The server sends a batch's worth into the link
// at once when its credit comes, so the bottleneck's queue swings by a batch: with 64 KiB (26
// ms at 20 Mbit/s) and a window that keeps a short queue for ^C's sake, the queue's low points
// left the link idle. Elsewhere big batches cost fewer wake-ups per byte.
func (w *windowTuner) batch() int { return batchAt(w.linkRate) }

// batchAt is the credit batch of a window tuned to a link of linkRate bytes per second (0: not
// tuned to a link).
func batchAt(linkRate float64) int {
	if r := linkRate * paceMargin.Seconds(); r < creditBatch && r >= linkBatch {
		return linkBatch
	}
	return creditBatch
}

// adjust is called when n bytes of consumed output are credited, with queued bytes still
// waiting to be written; it returns the credit to add to n: the window's growth, or minus what
// is withheld to shrink it.
func (w *windowTuner) adjust(n, queued int, now time.Time) int {
	w.probeDue = w.minRTT > 0
	if w.epochStart.IsZero() {
		w.epochStart = now // the first epoch starts at the first credit: it measures what follows
	} else {
		w.epochConsumed += n
		w.epochQueued += queued
		w.epochCredits++
	}
	if w.epochConsumed >= w.window/2 {
		// Consumed faster than half a window per round trip (fraction of a window in less than
		// 2 * fraction round trips): the window may be the limit, unless the link queues.
		elapsed := now.Sub(w.epochStart)
		fast := w.minRTT > 0 && elapsed*time.Duration(w.window) < 2*time.Duration(w.epochConsumed)*w.minRTT
		// A whole window or more per round trip: the window, not the link, set the pace.
		full := elapsed*time.Duration(w.window) <= time.Duration(w.epochConsumed)*w.minRTT
		if elapsed > 0 {
			// The better of the last two epochs: one that began after a pause, or during a
			// hold, underestimates the link.
			r := float64(w.epochConsumed) / elapsed.Seconds()
			w.rate, w.lastRate = max(r, w.lastRate), r
		}
		w.localQueue = w.epochQueued / max(w.epochCredits, 1)
		w.epochStart, w.epochConsumed, w.epochQueued, w.epochCredits = now, 0, 0, 0
		w.shrinkToLink() // at the new rate
		if fast && !w.unseen && w.queue <= growSlack && queued <= w.window/4 && w.window < maxClientWindow {
			grow := min(w.window, maxClientWindow-w.window)
			switch {
			case w.linkRate > 0 && w.rate < 2*w.linkRate:
				// Near the link's own window: doubling would fill its queue again.
				grow = min(max(w.window/16, 16<<10), maxClientWindow-w.window)
			case !full:
				// The link set the pace: its window, no more, and its rate is the link's.
				if grow = min(w.linkWindow(batchAt(w.rate))-w.window, maxClientWindow-w.window); grow > 0 {
					w.linkRate = w.rate
				}
			default:
				w.linkRate = 0 // the link carries more than it did: not the limit any more
				// At once to the window the epoch's rate needs, when that is more than twice
				// this one: a fast epoch's output came at the link's rate, so its rate shows
				// what the link carries, where doubling takes a round trip per step, and the
				// epoch after each step, which waits for the new credit, seldom counts as fast.
				grow = min(max(grow, w.linkWindow(creditBatch)-w.window), maxClientWindow-w.window)
			}
			if grow > 0 {
				w.grew(grow)
				return grow
			}
		}
	}
	if w.debt == 0 && w.holds == 0 && w.window > window && queued > w.window/2 {
		w.debt = w.window - max(window, w.window/2)
	}
	withhold := min(w.debt, n)
	w.debt -= withhold
	w.window -= withhold
	return -withhold
}
