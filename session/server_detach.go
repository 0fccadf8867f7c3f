package session

import (
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"net"
	"slices"
	"time"
)

// The server's side of capability resume (docs/protocol.md, section 6.4): a session whose conn
// is lost detaches, keeps its shell and output, and goes on over the conn Attach hands it.
//
// The conns a session was attached to are counted (gen): a pump that finds the count changed
// since it took its conn knows that the conn was given up (lost, or taken over), and goes on
// with the next, or waits for it.

// serverResume is a serverSession's state of capability resume, under the session's mu.
type serverResume struct {
	on     bool // resume was accepted: a lost conn detaches the session
	secret [ResumeSecretSize]byte
	// prev is the secret before the last Attach: it stays valid until a frame comes over the
	// conn that got the new one, so that a client that lost that conn before the answer
	// reached it (it has only the old one) can still resume.
	prev      [ResumeSecretSize]byte
	prevValid bool
	buffer    int // the output kept while detached
	// keep bounds the output kept while detached: what the session held at the detach (the
	// tail, and output not sent yet), if more than buffer, less what was read since, down to
	// buffer. The tail is what the client may not have received (a grown window's may be
	// megabytes): it is not dropped for its own size, only for newer output.
	keep    int
	timeout time.Duration

	outSent  uint64 // the output offset of the next byte sent
	tail     []byte // output sent, not yet received by the client (RECEIVED): tail[toff:] ends at outSent
	toff     int
	dropped  uint64 // output dropped for the bound since the session last detached
	cause    error  // why the session detached last
	notified bool   // the supervisor was told of the current state

	attaching bool // Attach runs
	// expired: the detach timeout passed and ends the session; an Attach that comes after
	// it is refused before it answers. expiredMeanwhile: it passed while an Attach was
	// answering, which wins; should the answer fail, the session ends then.
	expired, expiredMeanwhile bool
	// exitWritten: the EXIT (or the CLOSE for an unknown status) is written to the current
	// conn, but it counts as delivered only once the client closes after it; a conn lost
	// before that detaches the session, and the next conn gets it again after the tail.
	exitWritten bool
	eofAgain    bool // the end of input came before the last Attach: its client may send it again
}

// errTakenOver is why a session gave up a conn that was still attached: a new one took over.
var errTakenOver = errors.New("session: taken over by a new connection")

// detachedLocked reports whether the session waits for a conn.
func (s *serverSession) detachedLocked() bool { return s.cur == nil }

// startResume sets resume up for the first conn, and returns the RESUMABLE frame to append to
// the ACCEPT, if resume was accepted.
func (s *serverSession) startResume(b []byte, accepted []string) []byte {
	if !slices.Contains(accepted, capResume) {
		return b
	}
	s.res.on = true
	s.res.timeout = s.sc.Detach.Timeout
	s.res.buffer = s.sc.Detach.Buffer
	if s.res.buffer <= 0 {
		s.res.buffer = DefaultDetachBuffer
	}
	return s.appendResumableLocked(b)
}

// appendResumableLocked appends a RESUMABLE frame with a new secret.
func (s *serverSession) appendResumableLocked(b []byte) []byte {
	_, _ = rand.Read(s.res.secret[:]) // crypto/rand.Read never fails
	secs := min(max(s.res.timeout/time.Second, 1), maxDetachTimeout)
	return appendResumable(b, &resumable{id: s.sc.ID(), secret: s.res.secret, timeout: uint32(secs)})
}

// keepSentLocked counts p as sent, and keeps it until the client says it received it (RECEIVED)
// if the session is resumable.
func (s *serverSession) keepSentLocked(p []byte) {
	s.res.outSent += uint64(len(p))
	if !s.res.on {
		return
	}
	switch {
	case s.res.toff == len(s.res.tail) && len(p) < terminalRead && cap(s.res.tail) > creditBatch:
		s.res.tail, s.res.toff = nil, 0 // the flood is over: an idle session keeps a small buffer
	case s.res.toff > 0 && len(s.res.tail)+len(p) > cap(s.res.tail):
		// What was credited makes room, rather than a bigger buffer.
		s.res.tail = s.res.tail[:copy(s.res.tail, s.res.tail[s.res.toff:])]
		s.res.toff = 0
	}
	s.res.tail = append(s.res.tail, p...)
}

// receivedLocked takes a RECEIVED: the client has the output up to offset n, so the tail before
// it is dropped. Not CREDIT: with capability flow2 the client grants credit in advance, for
// output it has not received yet.
func (s *serverSession) receivedLocked(n uint64) error {
	tailStart := s.res.outSent - uint64(len(s.res.tail)-s.res.toff)
	if n < tailStart || n > s.res.outSent {
		return protocolErrorf("client received output up to %d, not within %d-%d", n, tailStart, s.res.outSent)
	}
	s.trimTailLocked(int(n - tailStart))
	return nil
}

// checkTailBoundLocked checks, with resume, that the credit just taken lets the tail (output
// sent, not received) grow to at most maxWindow bytes: an honest client's stays within its
// window, and any client's within the largest window (docs/protocol.md, section 6.4).
func (s *serverSession) checkTailBoundLocked() error {
	if s.res.on && len(s.res.tail)-s.res.toff+window-s.unacked > maxWindow {
		return protocolErrorf("client granted credit beyond the largest window of %d bytes, counted from the output it received", maxWindow)
	}
	return nil
}

// trimTailLocked drops the oldest n bytes of the tail.
func (s *serverSession) trimTailLocked(n int) {
	if !s.res.on {
		return
	}
	s.res.toff = min(s.res.toff+n, len(s.res.tail))
	if s.res.toff == len(s.res.tail) {
		s.res.toff = 0
		s.res.tail = s.res.tail[:0] // kept for the flood, if one goes on (see keepSentLocked)
		if len(s.out) == 0 && cap(s.res.tail) > idleBuffer && !s.flooding {
			// Nothing waits to be sent: the session may idle for hours, and would keep the
			// array that its last output grew (up to a window's worth).
			s.res.tail = nil
		}
	}
}

// idleBuffer bounds the buffers that a session keeps between its bursts of output: bigger
// ones are dropped once they are empty and nothing waits to be sent (a keystroke's echo or
// a prompt fits).
const idleBuffer = 2 * terminalRead

// boundDetachedLocked drops the oldest output beyond what a detached session keeps, after read
// bytes were read from the terminal: the tail's first, then what was never sent.
func (s *serverSession) boundDetachedLocked(read int) {
	s.res.keep = max(s.res.buffer, s.res.keep-read)
	tailLen := len(s.res.tail) - s.res.toff
	excess := tailLen + len(s.out) - s.res.keep
	if excess <= 0 {
		return
	}
	s.res.dropped += uint64(excess)
	fromTail := min(excess, tailLen)
	s.trimTailLocked(fromTail)
	if rest := excess - fromTail; rest > 0 {
		s.out = s.out[:copy(s.out, s.out[rest:])]
		s.res.outSent += uint64(rest) // those offsets are gone
	}
}

// connLost handles the loss of the conn of generation gen (an I/O error, the keepalive's
// verdict): a resumable session detaches, another stops. The loss of a conn given up already
// is nothing.
func (s *serverSession) connLost(gen int, cause error) {
	s.mu.Lock()
	if gen != s.gen {
		s.mu.Unlock()
		return
	}
	if s.res.on && s.lastQueued && s.cause == nil {
		// The session's end was written, or is being written, but the client did not show
		// that it got it: it goes to the next conn.
		s.lastQueued, s.ending, s.res.exitWritten = false, false, false
	}
	if !s.res.on || s.ending || s.lastQueued {
		s.mu.Unlock()
		s.stop("", fmt.Errorf("session: connection lost: %w", cause))
		return
	}
	cur := s.detachLocked(cause)
	s.mu.Unlock()
	_ = cur.Close() // unblocks the pumps that use it
}

// detachLocked gives the current conn up, and returns it.
func (s *serverSession) detachLocked(cause error) *ServerConn {
	cur := s.cur
	s.cur = nil
	s.gen++
	s.res.cause = cause
	s.res.dropped = 0
	s.res.notified = false
	s.res.keep = max(s.res.buffer, len(s.res.tail)-s.res.toff+len(s.out))
	s.boundDetachedLocked(0)
	s.readCond.Broadcast() // readTerminal reads on, whatever the room
	s.attachCond.Broadcast()
	select {
	case s.stateC <- struct{}{}:
	default:
	}
	return cur
}

// waitAttached waits for a conn, and returns it with its generation; ok is false once the
// session ends.
func (s *serverSession) waitAttached() (sc *ServerConn, gen int, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.cur == nil && !s.connDead {
		s.attachCond.Wait()
	}
	return s.cur, s.gen, !s.connDead
}

// attach is ServerConn.Attach for the running session.
func (s *serverSession) attach(next *ServerConn, reattach bool, closeReason string) error {
	r := next.req.Resume
	s.mu.Lock()
	for s.res.attaching {
		s.attachCond.Wait() // another Attach answers its conn first
	}
	tailStart := s.res.outSent - uint64(len(s.res.tail)-s.res.toff)
	secretOK := subtle.ConstantTimeCompare(r.Secret, s.res.secret[:]) == 1
	if subtle.ConstantTimeCompare(r.Secret, s.res.prev[:]) == 1 && s.res.prevValid {
		secretOK = true
	}
	if !s.res.on || s.ending || s.connDead || s.res.expired || s.lastQueued || !reattach && !secretOK || r.received > s.res.outSent {
		s.mu.Unlock()
		_ = next.Refuse(reasonNoSession)
		return ErrNoSession
	}
	s.res.attaching = true
	s.res.prev, s.res.prevValid = s.res.secret, !reattach
	var old net.Conn // a conn taken over
	if s.cur != nil {
		old = s.detachLocked(errTakenOver).conn
		// A Write to the old conn ends first, before its CLOSE; on a dead path it could wait
		// for TCP's timeout.
		_ = old.SetWriteDeadline(time.Now().Add(takeoverLinger))
	}
	for s.sending {
		s.attachCond.Wait()
	}
	// The output from the client's offset, or the oldest kept, goes out again first.
	from, skipped := max(r.received, tailStart), s.res.dropped
	if !reattach {
		skipped = from - r.received
	}
	s.out = append(slices.Clone(s.res.tail[s.res.toff+int(from-tailStart):]), s.out...)
	s.res.tail, s.res.toff, s.res.outSent = s.res.tail[:0], 0, from
	offsets := resumeOffsets{inReceived: uint64(s.inTotal), outFrom: from, skipped: skipped}
	s.freshFlowLocked()
	next.phase = phaseAnswered
	accepted := next.accept(next.req.Capabilities) // without resume and attach, which it offers last
	for _, c := range []string{capResume, capAttach} {
		if slices.Contains(next.req.Capabilities, c) {
			accepted = append(accepted, c)
		}
	}
	s.flow2 = slices.Contains(accepted, capFlow2)
	s.ka.on = slices.Contains(accepted, capKeepalive)
	b, _ := appendMessage(next.answerPrefix(), &message{typ: frameAccept, caps: accepted})
	b = appendResumed(b, offsets)
	if slices.Contains(accepted, capResume) {
		b = s.appendResumableLocked(b)
	}
	s.mu.Unlock()

	if w := next.req.Window; w.Rows != 0 || w.Cols != 0 {
		_ = s.t.Resize(w) // the client's size now, as a WINDOW would say; best effort
	}
	if old != nil {
		// The old conn gets the reason, and its reading pump drains it briefly, then closes it.
		c, _ := appendMessage(nil, &message{typ: frameClose, text: cleanReason(closeReason)})
		_ = old.SetWriteDeadline(time.Now().Add(takeoverLinger))
		_, _ = old.Write(c)
		if cw, ok := old.(interface{ CloseWrite() error }); ok {
			_ = cw.CloseWrite()
		}
		_ = old.SetReadDeadline(time.Now().Add(takeoverLinger))
	}
	_ = next.conn.SetWriteDeadline(time.Now().Add(attachTimeout))
	_, err := next.conn.Write(b)
	_ = next.conn.SetWriteDeadline(time.Time{})

	s.mu.Lock()
	s.res.attaching = false
	expired := s.res.expiredMeanwhile
	s.res.expiredMeanwhile = false
	s.attachCond.Broadcast()
	if err != nil || s.ending {
		s.mu.Unlock()
		_ = next.Close()
		if expired {
			s.expire() // the answer did not get through: the timeout counts again
		}
		if err == nil {
			err = errors.New("the session ended meanwhile")
		}
		return fmt.Errorf("session: sending the resume answer: %w", err)
	}
	oldProber := s.ka.prober
	peer := next.conn.RemoteAddr().String() // before a loss of next may release it
	s.cur = next
	s.gen++
	s.res.notified = false
	s.startKeepaliveLocked()
	s.attachCond.Broadcast()
	s.sendCond.Signal()
	select {
	case s.stateC <- struct{}{}:
	default:
	}
	s.mu.Unlock()
	oldProber.stop()
	if f := s.sc.Detach.Attached; f != nil {
		f(peer, skipped)
	}
	return nil
}

// expire ends the session for its detach timeout, unless an Attach is answering a conn: the
// attach got there first and wins (attach ends the session itself if its answer fails). An
// Attach that comes later is refused before it answers.
func (s *serverSession) expire() {
	s.mu.Lock()
	if s.res.attaching {
		s.res.expiredMeanwhile = true
		s.mu.Unlock()
		return
	}
	s.res.expired = true
	s.mu.Unlock()
	s.stop("", fmt.Errorf("session: detached for %v: expired", s.res.timeout))
}

// takeoverLinger bounds the CLOSE to a conn that was taken over, and the reading of what its
// client still sent: that client may be gone (a resume that came before the server noticed the
// loss), and the new conn's input waits meanwhile.
const takeoverLinger = 250 * time.Millisecond

// attachTimeout bounds the write of the answer to a resume: a client that does not read it is
// not waited for longer (the session stays detached, and another resume may come).
const attachTimeout = 10 * time.Second

// freshFlowLocked starts flow control afresh for a new conn, as a new ACCEPT does; the offsets
// carry on. Input received but not yet written to the terminal is written still, and not
// credited to the new conn (its client sends from the server's received offset with a full
// window).
func (s *serverSession) freshFlowLocked() {
	s.unacked = 0
	pending := s.inUnacked - s.inDone // received, not yet written
	s.inUnacked, s.inDone = 0, -pending
	s.flush, s.flushKeep = false, 0 // output sent again is not flushed again
	s.reserveOpen = false
	s.syncsDue = 0
	s.syncTarget = s.inTotal
	s.ka.pingDue = false
	s.ka.pongs = s.ka.pongs[:0]
	s.res.eofAgain = s.inEOF
}

// release drops a closed conn that the session gave up, with its buffers (and TLS state), so
// that a detached session holds no conn's memory: the ServerConn that Serve runs stays with the
// caller, who calls Attach on it, for as long as the session lives. Only readInput, once done
// with the conn, calls it; no other goroutine uses a conn given up (they take the conn, not
// the ServerConn, under the session's mu). Close does not use conn again once it has run.
func (sc *ServerConn) release() { sc.conn, sc.br, sc.fr = nil, nil, frameReader{} }

// session returns the session that Serve runs, or nil.
func (s *ServerConn) session() *serverSession {
	s.sessMu.Lock()
	defer s.sessMu.Unlock()
	return s.sess
}
