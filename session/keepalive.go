package session

import (
	"encoding/binary"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Keepalive configures the detection of a dead peer (capability keepalive, docs/protocol.md,
// section 7.4), as OpenSSH's ServerAliveInterval and ClientAliveInterval do: when nothing has
// come from the peer for Interval, a PING asks it to answer, and another does each Interval
// after; when nothing has come for Interval times CountMax, the peer or the path to it is dead,
// and the session ends as when the connection is lost, with a *NoAnswerError. A path that
// breaks silently (a NAT that forgot the connection, a laptop that went to sleep, a cable
// pulled) is noticed so, by both ends, where TCP alone would wait for many minutes or, with
// nothing to send, forever.
//
// The zero value is DefaultKeepaliveInterval and DefaultKeepaliveCountMax: 45 seconds. A
// negative Interval sends no PINGs; the peer's PINGs are still answered. Probes cost one timer per
// session, no goroutine, and a frame of 8 bytes each way per Interval of silence.
type Keepalive struct {
	Interval time.Duration // 0: DefaultKeepaliveInterval; negative: off
	CountMax int           // 0 (or negative): DefaultKeepaliveCountMax
}

// The defaults of Keepalive: the peer is dead after 45 seconds of silence, within the minute
// that users wait for a frozen terminal before they give up on it, and shorter than the idle
// timeouts of most NATs and stateful firewalls (30 seconds to a few minutes for TCP in the
// common home routers and mobile networks), so the probes also keep such a path open.
const (
	DefaultKeepaliveInterval = 15 * time.Second
	DefaultKeepaliveCountMax = 3
)

// maxPings bounds the PINGs a peer may have unanswered; more are a protocol error (a sender of
// this package has at most one unanswered per Interval, and few Intervals pass before the end).
const maxPings = 16

// Timeout is the silence after which the peer is taken for dead: Interval times CountMax, with
// the defaults for zero fields; 0 when the probes are off.
func (k Keepalive) Timeout() time.Duration {
	interval, count := k.resolved()
	return interval * time.Duration(count)
}

// resolved returns the Interval and CountMax in effect; an interval of 0 means off.
func (k Keepalive) resolved() (time.Duration, int) {
	interval, count := k.Interval, k.CountMax
	switch {
	case interval < 0:
		return 0, 0
	case interval == 0:
		interval = DefaultKeepaliveInterval
	}
	if count <= 0 {
		count = DefaultKeepaliveCountMax
	}
	return interval, count
}

// NoAnswerError reports a peer from which nothing came for the keepalive's Timeout, although it
// was asked to answer: the connection counts as lost. Client.Wait returns it, and Serve an error
// that wraps it.
type NoAnswerError struct {
	Silence time.Duration // the Keepalive's Timeout
}

func (e *NoAnswerError) Error() string {
	return fmt.Sprintf("session: connection lost: no answer from the peer for %v", e.Silence)
}

// withKeepalive returns allowed with PING and PONG also allowed (capability keepalive).
func withKeepalive(allowed func(frameType) bool) func(frameType) bool {
	return func(t frameType) bool { return t == framePing || t == framePong || allowed(t) }
}

// appendCookie appends a PING or PONG frame with cookie.
func appendCookie(b []byte, typ frameType, cookie uint32) []byte {
	return binary.BigEndian.AppendUint32(appendHeader(b, typ, 4), cookie)
}

// prober watches what comes from the peer and probes a silent one. It has no goroutine of its
// own: a timer runs tick when the next PING or the verdict is due, and the goroutine that reads
// the peer's frames calls heard for each, which only stores the time.
//
// The PINGs go every spacing while the peer is silent, the first after spacing; the verdict
// comes after timeout of silence. spacing is the Interval, or half the timeout when CountMax
// is 1, so that at least one PING is sent before the verdict.
type prober struct {
	spacing time.Duration
	timeout time.Duration
	start   time.Time    // the clock of last (monotonic)
	last    atomic.Int64 // when the last frame came, in nanoseconds since start

	// ping asks for a PING with cookie to be sent; it returns false if it cannot be sent now
	// (another frame is being written, which the peer hears anyway). It must not block for
	// long. dead takes the verdict. Both are called with mu held.
	ping func(cookie uint32) bool
	dead func(*NoAnswerError)

	sent     atomic.Uint32 // the cookie of the last PING sent (they count from 1)
	answered atomic.Uint32 // the cookie of the last PONG received; only the reading goroutine writes it
	quiet    atomic.Bool   // the peer said QUIET: no verdict until a frame comes from it

	mu         sync.Mutex
	timer      *time.Timer
	stopped    bool
	probedLast int64         // last, when the PINGs of the current silence were counted
	probes     int64         // PINGs sent in the current silence
	due        time.Duration // when the timer is due to run tick, since start
}

// newProber starts probing as k says, or returns nil if k turns the probes off.
func newProber(k Keepalive, ping func(uint32) bool, dead func(*NoAnswerError)) *prober {
	interval, count := k.resolved()
	if interval == 0 {
		return nil
	}
	p := &prober{spacing: interval, timeout: interval * time.Duration(count), start: time.Now(), ping: ping, dead: dead}
	if count == 1 {
		p.spacing = interval / 2
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.due = p.spacing
	p.timer = time.AfterFunc(p.spacing, p.tick)
	return p
}

// heard notes that a frame came from the peer, which ends a QUIET. A nil prober does nothing.
func (p *prober) heard() {
	if p != nil {
		p.last.Store(int64(time.Since(p.start)))
		p.quiet.Store(false)
	}
}

// quietUntilHeard takes the peer's QUIET (called after heard noted the QUIET frame itself): it
// stopped and cannot answer, so its silence is no verdict until it sends a frame again. The
// PINGs go on: they keep a NAT's mapping, and TCP still notices a dead path through them.
func (p *prober) quietUntilHeard() {
	if p != nil {
		p.quiet.Store(true)
	}
}

// pingNow sends a PING at once, as after this end was stopped: the answer shows soon that the
// peer is still there. A nil prober does nothing.
func (p *prober) pingNow() {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return
	}
	if cookie := p.sent.Add(1); !p.ping(cookie) {
		p.sent.Add(^uint32(0)) // not sent: the frame being written tells the peer as much
	}
}

// pong takes a PONG's cookie: it must answer the oldest unanswered PING.
func (p *prober) pong(cookie uint32) error {
	if p == nil || cookie != p.answered.Load()+1 || cookie > p.sent.Load() {
		return protocolErrorf("PONG %d does not answer the oldest unanswered PING", cookie)
	}
	p.answered.Store(cookie)
	return nil
}

// stop stops the probes; once it returns, neither ping nor dead is running or will be called.
// A nil prober does nothing.
func (p *prober) stop() {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stopped = true
	p.timer.Stop()
}

// tick sends the PING that is due, or takes the verdict, and sets the timer for the next.
func (p *prober) tick() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return
	}
	now := time.Since(p.start)
	last := p.last.Load()
	if now-p.due > p.spacing {
		// The timer ran a whole spacing late: this process did not run (it was stopped: job
		// control, a debugger), so the silence was not the peer's. Count it from one spacing
		// ago, which makes a PING due now, unless a frame came meanwhile. (A machine's sleep
		// does not show here: the monotonic clock stops with it.)
		if restart := int64(now - p.spacing); restart > last && p.last.CompareAndSwap(last, restart) {
			last = restart
		}
	}
	silence := now - time.Duration(last)
	if silence >= p.timeout && !p.quiet.Load() {
		p.stopped = true
		p.dead(&NoAnswerError{Silence: p.timeout})
		return
	}
	if last != p.probedLast { // something came since the last count: a new silence
		p.probedLast, p.probes = last, 0
	}
	due := int64(silence / p.spacing) // the PINGs this silence calls for
	next := time.Duration(due+1) * p.spacing
	if due > p.probes && p.sent.Load()-p.answered.Load() < maxPings { // a QUIET peer answers later
		// Counted as sent before it leaves: its PONG may come back before ping returns.
		if cookie := p.sent.Add(1); p.ping(cookie) {
			p.probes = due
		} else {
			p.sent.Add(^uint32(0))       // not sent, so no PONG can come for it
			next = silence + p.spacing/8 // the conn was busy: try again soon
		}
	}
	if silence < p.timeout {
		next = min(next, p.timeout)
	}
	p.due = now + next - silence
	p.timer.Reset(next - silence)
}
