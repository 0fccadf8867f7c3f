// Package linkemu emulates a network path between two TCP peers in user space: one-way delay,
// jitter, a bandwidth cap with a bounded bottleneck queue, and a path that can be cut,
// blackholed and restored while connections run. It needs no root and no kernel module (no
// netem), so tests and benchmarks can run it on any Linux machine.
//
// Typical usage:
//
//	link := linkemu.New(linkemu.Profile{Delay: 50 * time.Millisecond}) // 100 ms round trip
//	proxy, err := link.Listen("127.0.0.1:0", serverAddr)
//	if err != nil { ... }
//	defer proxy.Close()
//	conn, err := net.Dial("tcp", proxy.Addr().String()) // the client dials the proxy
//	...
//	link.Blackhole() // the path goes dead: nothing flows, nothing is closed
//	link.Restore()
//	link.Cut()       // connections through the link are reset
//
// A Link holds the path's settings and state; Join forwards between two connections the caller
// already has, and Listen is a small proxy built on it.
//
// # The path
//
// Each direction of each connection is a queue. Bytes read from one peer leave the bottleneck
// at the rate of the Profile (serialization delay: a chunk of n bytes takes n*8/Rate seconds
// after the chunk before it), then travel for Delay plus a random share of Jitter, and are
// written to the other peer. Jitter never reorders a stream: a chunk never arrives before the
// one sent before it, as on a TCP connection, whose receiver hands bytes on in order. The
// bottleneck queue holds at most Profile.Queue bytes (by default 100 ms of the rate, at least
// 16 KiB); while it is full the emulator reads nothing more from the sender, so the sender's
// writes block once its socket buffers fill, as behind a real bottleneck. Without a rate there
// is no bottleneck queue; all the same, a direction holds at most MaxInFlight bytes in its delay
// line (so throughput without a rate is at most MaxInFlight per one-way delay), which with the
// read buffers bounds the memory of a connection.
//
// Settings change with SetProfile while connections run; they apply to bytes read afterwards.
//
// Bytes are never written before their delay has passed. They may leave the bottleneck up to
// 1 ms before their serialization time ends: an idle Go process sleeps in whole milliseconds, and
// waiting for each small packet's few microseconds would add a millisecond to it. The rate holds
// all the same, as departures are accounted exactly.
//
// # Cut, Blackhole, Restore
//
// Cut resets every connection through the link (both peers see an error: an RST where the
// connection is TCP) and resets new ones at once, until Restore. Blackhole stops forwarding in
// both directions and closes nothing: no byte reaches either peer, as on a dead path, and a
// read with a deadline times out. The bytes a peer writes meanwhile are held, within the same
// bounds as above, and delivered in order after Restore, as a TCP sender's retransmissions
// would deliver them; once the bounds are reached the sender's writes block. A connection the
// proxy accepts during a blackhole is not forwarded (the upstream is not even dialled) until
// Restore.
//
// # What differs from a kernel link
//
// The emulator terminates TCP on each side: each peer's kernel talks to the emulator's socket
// over loopback, not to the other peer. So during a Blackhole each peer's kernel still gets its
// ACKs: TCP keepalive and TCP_USER_TIMEOUT see a live peer, and only probes inside the session
// (a protocol's own pings) notice the dead path. Window sizes, congestion control and loss
// recovery are the loopback connections' own, not those of a long path: the emulator loses no
// packet, and a slow start happens against the emulator, not across the delay. A peer's
// connect may succeed during a Cut (the proxy's kernel accepts it, and the proxy resets it at
// once) and does succeed during a Blackhole (the connection is then held). Delay is added to every chunk the emulator reads, so it is
// a lower bound; the scheduler and timers add a little more.
package linkemu

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"time"
)

// MaxInFlight is the most bytes one direction of a connection holds in its delay line,
// queued at the bottleneck or travelling.
const MaxInFlight = 4 << 20

// readSize is the largest chunk the emulator reads at once when no rate slices it finer.
const readSize = 32 << 10

// Profile is how a path treats the bytes of each direction. Its zero value is a path that adds
// nothing (forwarding as fast as the emulator copies).
type Profile struct {
	// Delay is the one-way delay added to each direction: the round trip grows by twice it.
	Delay time.Duration
	// Jitter adds a random extra delay in [0, Jitter) to each chunk, never reordering a stream.
	Jitter time.Duration
	// Rate caps each direction at this many bits per second; 0 is no cap.
	Rate int64
	// Queue bounds the bottleneck queue of each direction, in bytes, when Rate is set. 0 is
	// 100 ms of Rate, at least 16 KiB.
	Queue int
}

func (p Profile) queue() int {
	if p.Queue > 0 {
		return p.Queue
	}
	return max(16<<10, int(p.Rate/8/10))
}

// String describes p in the units a person would type, e.g. "delay 50ms jitter 5ms rate 20Mbit/s".
func (p Profile) String() string {
	s := fmt.Sprintf("delay %v", p.Delay)
	if p.Jitter > 0 {
		s += fmt.Sprintf(" jitter %v", p.Jitter)
	}
	if p.Rate > 0 {
		s += " rate " + FormatRate(p.Rate)
	}
	return s
}

// state is the path's state as a whole.
type state int

const (
	up state = iota
	blackholed
	cut
)

// ErrCut is what Join returns for a connection the link reset because the path was cut.
var ErrCut = errors.New("linkemu: path cut")

// A Link is an emulated path. Its methods may be called from several goroutines at once; its
// settings and state apply to every connection joined through it.
type Link struct {
	mu      sync.Mutex
	profile Profile
	state   state
	changed chan struct{} // closed and replaced on every change, to wake waiters
	pairs   map[*pair]struct{}
}

// New returns a link whose directions both follow p, and which is up.
func New(p Profile) *Link {
	return &Link{profile: p, changed: make(chan struct{}), pairs: make(map[*pair]struct{})}
}

// SetProfile changes the settings of both directions. Bytes read afterwards follow them; bytes
// already on their way keep their times.
func (l *Link) SetProfile(p Profile) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.profile = p
	l.changedLocked()
}

// Profile returns the current settings.
func (l *Link) Profile() Profile {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.profile
}

// Cut resets every connection through the link, and every new one, until Restore.
func (l *Link) Cut() {
	l.mu.Lock()
	l.state = cut
	l.changedLocked()
	pairs := make([]*pair, 0, len(l.pairs))
	for p := range l.pairs {
		pairs = append(pairs, p)
	}
	l.mu.Unlock()
	for _, p := range pairs {
		p.end(ErrCut)
	}
}

// Blackhole stops forwarding in both directions without closing anything, until Restore.
func (l *Link) Blackhole() { l.setState(blackholed) }

// Restore ends a Cut or a Blackhole: bytes flow again, and new connections are forwarded.
func (l *Link) Restore() { l.setState(up) }

func (l *Link) setState(s state) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.state = s
	l.changedLocked()
}

func (l *Link) changedLocked() {
	close(l.changed)
	l.changed = make(chan struct{})
}

// snapshot returns the settings, the state, and a channel closed at the next change.
func (l *Link) snapshot() (Profile, state, <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.profile, l.state, l.changed
}

// Join forwards bytes between a and b through the link until both directions have ended, and
// returns. Bytes read from a are written to b and the other way round. A peer's half-close
// (io.EOF on reading it) is passed on as CloseWrite on the other, after the bytes before it, when
// that conn has CloseWrite (as *net.TCPConn has). When both directions have ended so, Join closes
// a and b and returns nil. If a read or write fails, or the link is Cut, Join resets both (closes
// them, with SO_LINGER 0 where they are TCP, so the peers get an RST) and returns the error, or
// ErrCut. A read error is passed on as a reset after the bytes read before it, as an RST travels
// behind the data on a real path. Join owns a and b from the call on and closes them before it
// returns; the caller must not use them.
func (l *Link) Join(a, b net.Conn) error {
	return l.join(nil, a, b)
}

// join is Join, also ended (with a reset) when stop is closed.
func (l *Link) join(stop <-chan struct{}, a, b net.Conn) error {
	p := &pair{a: a, b: b, stop: make(chan struct{})}
	l.mu.Lock()
	if l.state == cut {
		l.mu.Unlock()
		reset(a)
		reset(b)
		return ErrCut
	}
	l.pairs[p] = struct{}{}
	l.mu.Unlock()

	var loops sync.WaitGroup
	for _, d := range []*direction{newDirection(l, p, a, b), newDirection(l, p, b, a)} {
		loops.Add(2)
		go func() { defer loops.Done(); d.readLoop() }()
		go func() { defer loops.Done(); d.writeLoop() }()
	}
	done := make(chan struct{})
	var watcher sync.WaitGroup
	if stop != nil {
		// stop is the proxy's: its Close ends every connection through it.
		watcher.Add(1)
		go func() {
			defer watcher.Done()
			select {
			case <-stop:
				p.end(fmt.Errorf("linkemu: proxy closed: %w", net.ErrClosed))
			case <-done:
			}
		}()
	}
	loops.Wait()
	p.end(nil) // both directions ended with a half-close each: close, no reset
	close(done)
	watcher.Wait()

	l.mu.Lock()
	delete(l.pairs, p)
	l.mu.Unlock()
	return p.err
}

// A pair is the two conns of one connection through the link.
type pair struct {
	a, b net.Conn
	stop chan struct{} // closed when the pair ends
	once sync.Once
	err  error // why it ended; nil for a clean end. Read after stop is closed.
}

// end ends the pair once: with err nil it closes both conns, otherwise it resets them.
func (p *pair) end(err error) {
	p.once.Do(func() {
		p.err = err
		close(p.stop)
		if err == nil {
			_ = p.a.Close() // best effort: both halves are done
			_ = p.b.Close()
			return
		}
		reset(p.a)
		reset(p.b)
	})
}

// reset closes c so that its peer sees an error, not an end of stream: with SO_LINGER 0 a TCP
// close sends an RST.
func reset(c net.Conn) {
	if l, ok := c.(interface{ SetLinger(int) error }); ok {
		_ = l.SetLinger(0) // best effort: a plain close still ends the peer's connection
	}
	_ = c.Close()
}

// timerSlack is how much earlier than its departure from the bottleneck a chunk may be written:
// a Go process that is idle sleeps in whole milliseconds (epoll_wait), so a timer shorter than
// that would wake a millisecond late and make a capped link of small packets a millisecond
// slower each way than its rate. Being early by this much never accumulates (departures are
// accounted exactly), and never cuts into the delay.
const timerSlack = time.Millisecond

// A chunk is bytes read at once from one peer, with the time they reach the other; or, with end
// set, the end of the stream (err nil for a half-close, else a reset).
type chunk struct {
	data     []byte
	due      time.Time // departure from the bottleneck plus delay and jitter
	earliest time.Time // read time plus delay: never written before it
	end      bool
	err      error
}

// A direction carries the bytes of src to dst: readLoop puts them into the delay line, writeLoop
// takes them out when due.
type direction struct {
	link     *Link
	pair     *pair
	src, dst net.Conn

	ready chan struct{} // a token when a chunk is queued
	space chan struct{} // a token when bytes leave the delay line

	mu            sync.Mutex
	queue         []chunk
	inFlight      int       // bytes in queue
	lastDeparture time.Time // when the last byte read leaves the bottleneck
	lastDue       time.Time // when the last chunk read arrives: no chunk arrives before it
}

func newDirection(l *Link, p *pair, src, dst net.Conn) *direction {
	return &direction{link: l, pair: p, src: src, dst: dst,
		ready: make(chan struct{}, 1), space: make(chan struct{}, 1)}
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default: // a token is already there
	}
}

// readLoop reads src into the delay line while the path is up and the line has room.
func (d *direction) readLoop() {
	buf := make([]byte, readSize)
	for {
		n, ok := d.waitToRead()
		if !ok {
			return
		}
		k, err := d.src.Read(buf[:n])
		if k > 0 {
			// The settings of the moment the bytes came, not of when the read began.
			d.push(d.link.Profile(), buf[:k])
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = nil
			} else {
				err = fmt.Errorf("linkemu: %w", err)
			}
			d.pushEnd(err)
			return
		}
	}
}

// waitToRead waits until the path is up, the delay line has room and the bottleneck queue is not
// full, and returns how many bytes to read. It returns false when the pair ends.
func (d *direction) waitToRead() (int, bool) {
	for {
		prof, st, changed := d.link.snapshot()
		var wake <-chan struct{}
		var timer *time.Timer
		if st == up {
			d.mu.Lock()
			free := MaxInFlight - d.inFlight
			// The bottleneck holds the bytes not yet departed: (lastDeparture-now)*rate.
			// Wait until it has drained to below its bound.
			var wait time.Duration
			if prof.Rate > 0 && !d.lastDeparture.IsZero() {
				wait = time.Until(d.lastDeparture.Add(-bitTime(prof.queue(), prof.Rate)))
			}
			d.mu.Unlock()
			switch {
			case free <= 0:
				wake = d.space
			case wait > 0:
				timer = time.NewTimer(wait)
				wake = nil
			default:
				return min(free, chunkSize(prof)), true
			}
		}
		var fired <-chan time.Time
		if timer != nil {
			fired = timer.C
		}
		select {
		case <-wake:
		case <-fired:
		case <-changed:
		case <-d.pair.stop:
			stopTimer(timer)
			return 0, false
		}
		stopTimer(timer)
	}
}

func stopTimer(t *time.Timer) {
	if t != nil {
		t.Stop()
	}
}

// chunkSize is how much to read at once: with a rate, about 2 ms of it (at least a segment), so
// bytes trickle out of the bottleneck as packets would rather than in large bursts.
func chunkSize(p Profile) int {
	if p.Rate <= 0 {
		return readSize
	}
	return min(readSize, max(1460, int(p.Rate/8/500)))
}

// bitTime is how long n bytes take at rate bits per second.
func bitTime(n int, rate int64) time.Duration {
	return time.Duration(float64(n) * 8 / float64(rate) * float64(time.Second))
}

// push puts a copy of b into the delay line, with the time it is due at the other end.
func (d *direction) push(prof Profile, b []byte) {
	now := time.Now()
	d.mu.Lock()
	departure := now
	if prof.Rate > 0 {
		departure = later(now, d.lastDeparture).Add(bitTime(len(b), prof.Rate))
		d.lastDeparture = departure
	}
	due := departure.Add(prof.Delay)
	if prof.Jitter > 0 {
		due = due.Add(rand.N(prof.Jitter))
	}
	due = later(due, d.lastDue) // never before the bytes sent before: a stream is not reordered
	d.lastDue = due
	d.queue = append(d.queue, chunk{data: append([]byte(nil), b...), due: due, earliest: now.Add(prof.Delay)})
	d.inFlight += len(b)
	d.mu.Unlock()
	signal(d.ready)
}

// pushEnd puts the end of the stream into the delay line, behind the bytes before it.
func (d *direction) pushEnd(err error) {
	d.mu.Lock()
	now := time.Now()
	d.queue = append(d.queue, chunk{end: true, err: err, due: later(now, d.lastDue), earliest: now})
	d.mu.Unlock()
	signal(d.ready)
}

// writeLoop writes the chunks of the delay line to dst when they are due and the path is up.
func (d *direction) writeLoop() {
	for {
		c, ok := d.next()
		if !ok {
			return
		}
		if c.end {
			if c.err != nil {
				d.pair.end(c.err)
				return
			}
			if cw, ok := d.dst.(interface{ CloseWrite() error }); ok {
				if err := cw.CloseWrite(); err != nil {
					d.pair.end(fmt.Errorf("linkemu: %w", err))
				}
			}
			return
		}
		_, err := d.dst.Write(c.data)
		d.mu.Lock()
		d.queue[0] = chunk{} // let the bytes go
		d.queue = d.queue[1:]
		d.inFlight -= len(c.data)
		d.mu.Unlock()
		signal(d.space)
		if err != nil {
			d.pair.end(fmt.Errorf("linkemu: %w", err))
			return
		}
	}
}

// next waits until the first chunk of the delay line is due and the path is up, and returns it
// (still queued). It returns false when the pair ends.
func (d *direction) next() (chunk, bool) {
	for {
		d.mu.Lock()
		var c chunk
		queued := len(d.queue) > 0
		if queued {
			c = d.queue[0]
		}
		d.mu.Unlock()
		if !queued {
			select {
			case <-d.ready:
				continue
			case <-d.pair.stop:
				return chunk{}, false
			}
		}
		_, st, changed := d.link.snapshot()
		var fired <-chan time.Time
		var timer *time.Timer
		if st == up {
			wait := time.Until(later(c.earliest, c.due.Add(-timerSlack)))
			if wait <= 0 {
				if c.end {
					d.mu.Lock()
					d.queue = d.queue[1:]
					d.mu.Unlock()
				}
				return c, true
			}
			timer = time.NewTimer(wait)
			fired = timer.C
		}
		select {
		case <-fired:
		case <-changed:
		case <-d.pair.stop:
			stopTimer(timer)
			return chunk{}, false
		}
		stopTimer(timer)
	}
}

// later returns the later of a and b.
func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
