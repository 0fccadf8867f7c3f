package session

import "time"

// maxClientWindow is the largest output window this client grows to: 8 MiB fills a link of
// 200 Mbit/s at 300 ms, or 20 MB/s at 200 ms, and is what one session's output may have in
// flight or queued at the client (docs/protocol.md, section 7.3).
const maxClientWindow = 8 << 20

// maxIdleQueue is the largest output queue buffer a client keeps once it is empty.
const maxIdleQueue = 2 * maxDataFrame

// windowTuner is the client's side of capability flow2: the size of the output window it
// grants the server, and its SYNCs. Its fields are under the Client's mu.
//
// The window grows as HTTP/2 and QUIC receivers auto-tune theirs: when the output of the last
// half window was consumed faster than half a window per round trip, the window may be what
// limits the rate, and it doubles (up to maxClientWindow); settled, it is between two and four
// times the bandwidth-delay product. It shrinks by half, never below the base of 256 KiB, when
// more than half of it waits in the queue: then the writer (the terminal), not the link, sets the
// pace, and a big window would only hold more output that is already late. It grows by credit
// granted in advance and shrinks by credit withheld, so the server needs nothing but the bound.
type windowTuner struct {
	window int // the output window granted: base plus credit granted in advance
	debt   int // credit still to withhold, to shrink the window

	minRTT        time.Duration // the shortest round trip of a SYNC that held nothing; 0: none yet
	epochStart    time.Time     // when the current measuring epoch began
	epochConsumed int           // output consumed since then

	syncs []pendingSync // SYNCs sent, not answered yet, oldest first
	holds int           // how many of them hold the output
}

// pendingSync is a SYNC waiting for its SYNCED.
type pendingSync struct {
	sent time.Time
	hold bool // sent after an interrupt: output is held until the answer
}

// canSync reports whether another SYNC may be sent: the protocol bounds the unanswered ones.
func (w *windowTuner) canSync() bool { return len(w.syncs) < maxSyncs }

// syncSent notes a SYNC, sent now; if hold is set the output is held until its answer.
func (w *windowTuner) syncSent(hold bool) {
	w.syncs = append(w.syncs, pendingSync{sent: time.Now(), hold: hold})
	if hold {
		w.holds++
	}
}

// synced takes a SYNCED: it reports whether its SYNC held the output, and false ok for a SYNCED
// without a SYNC. One that held nothing measures the round trip.
func (w *windowTuner) synced() (held, ok bool) {
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
	if rtt := time.Since(s.sent); w.minRTT == 0 || rtt < w.minRTT {
		w.minRTT = max(rtt, time.Microsecond)
	}
	return false, true
}

// adjust is called when n bytes of consumed output are credited, with queued bytes still
// waiting to be written; it returns the credit to add to n: the window's growth, or minus what
// is withheld to shrink it.
func (w *windowTuner) adjust(n, queued int, now time.Time) int {
	if w.epochStart.IsZero() {
		w.epochStart = now // the first epoch starts at the first credit: it measures what follows
	} else {
		w.epochConsumed += n
	}
	if w.epochConsumed >= w.window/2 {
		// Consumed faster than half a window per round trip (fraction of a window in less than
		// 2 * fraction round trips): the window may be the limit.
		elapsed := now.Sub(w.epochStart)
		fast := w.minRTT > 0 && elapsed*time.Duration(w.window) < 2*time.Duration(w.epochConsumed)*w.minRTT
		w.epochStart, w.epochConsumed = now, 0
		if fast && queued <= w.window/4 && w.window < maxClientWindow {
			grow := min(w.window, maxClientWindow-w.window)
			w.window += grow
			w.debt = 0
			return grow
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
