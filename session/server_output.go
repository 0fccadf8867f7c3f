package session

import (
	"errors"
	"io"
	"net"
	"sync/atomic"
)

// readTerminal reads the shell's output into out, while there is room; on a flush it drops out and
// asks for a FLUSH frame. After the end it keeps reading (and dropping) until the output is over.
//
// A flush drops only output read before the last input was written to the terminal: Linux may
// report the flush of an interrupt character after output written after it (the shell's new
// prompt), so output read since that input is kept, here and, through the FLUSH's keep count, at
// the client. But output that the terminal held already when flushing input was written (its
// stale mark, OutputMarker) is older than that input: Linux's flush leaves the up to 4 KiB that
// the master's line discipline holds, which reads return after the flush's report, and
// readTerminal reads and drops them then, with the rest, before the FLUSH. What the discipline
// took in between (a flood goes on until the flush) is left too, and read after the FLUSH: it
// counts as the newest of the output an expected flush keeps (lateAfterFlush).
//
// Output that finds nothing queued and the conn idle leaves from here, in a DATA frame written at
// once, rather than through sendOutput: one goroutine hop less for an echoed keystroke, and no
// wake-up of another goroutine per read during a flood.
//
// When the terminal can read without waiting (OutputNowReader), an idle session keeps only a small read
// buffer; when a read comes back with more than half of it, readTerminal collects what else is
// already queued into a bigger buffer, kept while the flood lasts, so that a flood leaves in
// writes of up to collectSize bytes rather than one per pty read (at most 4 KiB, the size of its
// line discipline's buffer).
func (s *serverSession) readTerminal() error {
	r := newOutputReader(s.t)
	r.flushDue = &s.flushDue
	for {
		s.waitForRoom()
		p, flushed, err := r.read()
		var stale, late int64
		if flushed {
			s.mu.Lock()
			left := s.staleMark - s.outRead
			expected := s.expectFlush || s.flushDue.Load()
			s.mu.Unlock()
			stale = r.dropStale(left)
			if expected {
				var dropped int64
				late, dropped = s.lateAfterFlush(r)
				stale += dropped
			}
		}

		s.mu.Lock()
		if s.flooding && r.big == nil {
			s.floodOverLocked()
		}
		s.flooding = r.big != nil
		if flushed && !s.ending {
			s.flushOutputLocked(late)
		}
		s.outRead += int64(len(p)) + stale
		sent := false
		if len(p) > 0 && !s.ending {
			r.frame, sent = s.takeOutputLocked(r.frame, p, r.nr != nil)
		}
		if err != nil {
			s.outEnded = true
			if !errors.Is(err, io.EOF) {
				s.outErr = err
			}
		}
		if flushed || len(p) > 0 && !sent || err != nil {
			s.sendCond.Signal()
		}
		s.mu.Unlock()
		if err != nil {
			return nil
		}
	}
}

// floodOverLocked drops the buffers the flood grew, once it is over: sendOutput's frame buffer
// (it drops it when it has nothing to send) and the resume tail's array, if the client has
// received all of it (else the RECEIVED that empties it drops it).
func (s *serverSession) floodOverLocked() {
	s.flooding = false
	s.sendCond.Signal()
	s.trimTailLocked(0)
}

// waitForRoom waits until out has room for a frame's worth of output, or the session ends. While
// a flush is due it reads on, up to flushDueRoom bytes: the flush's report comes through the
// reads, and the client may hold its output (and its credit) until that report.
func (s *serverSession) waitForRoom() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for (len(s.out) >= maxDataFrame && !s.expectFlush || len(s.out) >= flushDueRoom) && !s.ending && !s.detachedLocked() {
		s.readCond.Wait()
	}
}

// flushReserve is the part of the output window that, with flow2, only output read after a
// flush may use, until the credit for what the flush dropped comes back: the answer to an
// interrupt (an echoed ^C, a prompt) then leaves at once, even when the flood had filled the
// window, rather than a round trip later.
const flushReserve = 16 << 10

// outputWindowLocked is how many bytes may be outstanding now (see flushReserve).
func (s *serverSession) outputWindowLocked() int {
	if s.flow2 && !s.reserveOpen {
		return window - flushReserve
	}
	return window
}

// expectedFlushKeep bounds the output kept at an expected flush: more than an echoed ^C and a
// prompt, less than what a flood leaves on the screen.
const expectedFlushKeep = 4 << 10

// flushDueRoom bounds out while a flush is due: what the terminal still holds when the flush is
// late (its buffers hold about 64 KiB), read in small reads.
const flushDueRoom = 4 * maxDataFrame

// lateAfterFlush returns how much output the terminal still holds right after the report of an
// expected flush, past the stale mark: output that a flood wrote between the input and the
// flush, which Linux's flush leaves in the master's line discipline (up to 4 KiB), and the
// echoed ^C after it. The reads after the FLUSH send it, so it is the newest of what the flush
// keeps (expectedFlushKeep): without that, a flood sent a keep's worth read before the report,
// and then this much more after the FLUSH. Beyond expectedFlushKeep, it drops the oldest and
// returns how many (stale).
func (s *serverSession) lateAfterFlush(r *outputReader) (late, stale int64) {
	if s.om == nil {
		return 0, 0
	}
	_, late, err := s.om.OutputMark()
	if err != nil {
		return 0, 0 // best effort: the flush then keeps what it always kept
	}
	if over := late - expectedFlushKeep; over > 0 {
		stale = r.dropStale(over)
		late -= stale
	}
	return late, stale
}

// flushOutputLocked drops the queued output that the terminal's flush discarded, but the fresh
// bytes (see readTerminal), and asks for a FLUSH frame. late is what the terminal still holds
// after an expected flush (lateAfterFlush): newer than any fresh byte, it takes its place in the
// keep.
func (s *serverSession) flushOutputLocked(late int64) {
	// The fresh bytes are the newest read; none from before the stale mark.
	fresh := int(min(int64(s.fresh), max(s.outRead-s.staleMark, 0)))
	s.flushes++
	if s.expectFlush || s.flushDue.Load() {
		// Input that makes the terminal flush was written, and the line discipline acts on it a
		// moment later: output read in between is mostly what the flush discards (a flood goes
		// on until then; the kernel moves up to tens of KiB more past the mark meanwhile on a
		// busy machine), and only its newest bytes may answer the input.
		fresh = min(fresh, expectedFlushKeep-int(min(late, expectedFlushKeep)))
	}
	keepOut := min(len(s.out), fresh) // the fresh bytes are the newest
	s.out = s.out[:copy(s.out, s.out[len(s.out)-keepOut:])]
	s.flushKeep = min(fresh-keepOut, window)
	if s.flow2 {
		s.flushKeep = min(fresh-keepOut, maxWindow)
	}
	s.flush = true
	s.reserveOpen = true
	s.expectFlush = false // the flush a SYNC may wait for
	s.flushDue.Store(false)
}

// takeOutputLocked takes p, just read from the terminal: it sends it at once (sendNowLocked, with
// frame as the buffer) when nothing is queued and the conn is idle, else queues it for
// sendOutput. It returns the frame buffer and whether p was sent.
func (s *serverSession) takeOutputLocked(frame, p []byte, collects bool) (_ []byte, sent bool) {
	s.fresh += len(p)
	// Output from a terminal that cannot collect goes through sendOutput, which batches what
	// piles up while it writes, unless it is as small as an echo.
	if len(s.out) == 0 && !s.sending && s.cur != nil && !s.flush && !s.syncDueLocked() && s.unacked+len(p) <= s.outputWindowLocked() && (collects || len(p) <= terminalRead) {
		return s.sendNowLocked(frame[:0], p), true
	}
	s.out = append(s.out, p...)
	if s.cur == nil {
		s.boundDetachedLocked(len(p))
	}
	return frame, false
}

// outputReader is readTerminal's reading side: its buffers, and what a collection left for the
// next read.
type outputReader struct {
	t     Terminal
	nr    OutputNowReader // t, if it can read without waiting; else nil
	small []byte          // the buffer of one ReadOutput
	big   []byte          // collects a flood's output; nil when there is none
	frame []byte          // the buffer of a frame sent directly; dropped with big

	held        bool // a flush or an error came while collecting: the next read returns it
	heldFlushed bool
	heldErr     error

	// flushDue, if set and true, says that input which makes the terminal flush was written and
	// the flush is not reported yet: reads stay small meanwhile, so that little of the output the
	// flush should have discarded is read (and kept as fresh) before its report.
	flushDue *atomic.Bool
}

func newOutputReader(t Terminal) *outputReader {
	r := &outputReader{t: t}
	r.nr, _ = t.(OutputNowReader)
	if r.nr != nil {
		r.small = make([]byte, terminalRead)
	} else {
		r.small = make([]byte, readChunk) // cannot collect: read big
	}
	return r
}

// read returns the terminal's next output (valid until the next read): what one ReadOutput
// gives, and during a flood also what else is queued already (collect).
func (r *outputReader) read() (p []byte, flushed bool, err error) {
	n := 0
	switch {
	case r.held:
		flushed, err, r.held = r.heldFlushed, r.heldErr, false
	case r.big != nil:
		// During a flood, a read that would wait shows that the terminal has nothing more
		// queued: the flood is over, and the session may idle from here on, without its
		// buffers (the caller sees big gone, and reads again).
		n, flushed, err = r.nr.ReadOutputNow(r.small)
		if n == 0 && !flushed && err == nil {
			r.big, r.frame = nil, nil
			return r.small[:0], false, nil
		}
	default:
		n, flushed, err = r.t.ReadOutput(r.small)
	}
	flood := n >= len(r.small)/2 // (a pty in packet mode fills all but one byte)
	if !flood && r.big != nil {
		// The flood is over: an idle session keeps only the small buffers.
		r.big, r.frame = nil, nil
	}
	if r.nr == nil || !flood || flushed || err != nil || r.flushDue != nil && r.flushDue.Load() {
		return r.small[:n], flushed, err
	}
	return r.collect(n), false, nil
}

// collect returns the n bytes in small followed by what the terminal has queued already, up to
// collectSize bytes in all. A flush or an error that comes meanwhile is held for the next read.
func (r *outputReader) collect(n int) []byte {
	if r.big == nil {
		r.big = make([]byte, collectSize)
	}
	buf := r.big
	copy(buf, r.small[:n])
	for n < len(buf) {
		m, fl, e := r.nr.ReadOutputNow(buf[n:])
		n += m
		if fl || e != nil {
			r.held, r.heldFlushed, r.heldErr = true, fl, e
			break
		}
		if m == 0 || r.flushDue != nil && r.flushDue.Load() {
			break
		}
	}
	return buf[:n]
}

// dropStale reads and drops up to n bytes of the output that the terminal holds already: the
// stale output before the mark (see readTerminal), which Linux's flush leaves in the line
// discipline, ready to read at once. It returns how many it dropped. A flush or an error that
// comes meanwhile is held for the next read.
func (r *outputReader) dropStale(n int64) int64 {
	var dropped int64
	for r.nr != nil && dropped < n {
		m, fl, e := r.nr.ReadOutputNow(r.small[:min(int64(len(r.small)), n-dropped)])
		dropped += int64(m)
		if fl || e != nil {
			r.held, r.heldFlushed, r.heldErr = true, fl, e
			break
		}
		if m == 0 {
			break
		}
	}
	return dropped
}

// sendNowLocked sends p, just read from the terminal, as a DATA frame in one conn Write from the
// calling goroutine, with an input CREDIT before it if one is due; s.mu is held on entry and on
// return, not during the Write. The caller checked that nothing is queued before p, that no other
// Write runs and that the client's credit allows p. A failed Write stops the session as
// sendOutput's would. It returns the frame buffer for reuse.
func (s *serverSession) sendNowLocked(b, p []byte) []byte {
	s.sending = true
	if s.inDone >= creditBatch {
		b = appendCredit(b, s.inDone)
		s.inUnacked -= s.inDone
		s.inDone = 0
	}
	b = s.appendFlushKeysBeforeDataLocked(b)
	b = appendFrame(b, frameData, p)
	s.unacked += len(p)
	s.keepSentLocked(p)
	conn, gen := s.cur.conn, s.gen
	s.mu.Unlock()
	_, err := conn.Write(b)
	if err != nil {
		s.connLost(gen, err)
	}
	s.mu.Lock()
	s.armFlushKeysLocked() // after the Write: arming wakes a thread (see armFlushKeysLocked)
	s.sending = false
	s.attachCond.Broadcast()
	if s.sendableLocked() {
		s.sendCond.Signal() // sendOutput waited for the conn
	}
	return b
}

// sendOutput writes every frame to the client but the DATA that readTerminal sends directly. Each
// round it sends, in one Write, what is due: FLUSH, input CREDIT, output DATA (everything read
// while the last Write was busy, as the client's credit allows), and at the end EXIT or CLOSE.
func (s *serverSession) sendOutput() error {
	var b []byte
	for {
		s.mu.Lock()
		for s.sending || s.cur == nil && !s.connDead || !s.sendableLocked() {
			if cap(b) > idleBuffer && !s.flooding {
				b = nil // the burst is over: an idle session keeps no frame buffer of its size
			}
			if s.cur == nil && !s.connDead {
				s.attachCond.Wait() // detached
			} else {
				s.sendCond.Wait()
			}
		}
		if s.connDead {
			s.mu.Unlock()
			return nil
		}
		var last bool
		b, last = s.appendFramesLocked(b[:0])
		s.sending = true
		conn, gen, resumable := s.cur.conn, s.gen, s.res.on
		s.mu.Unlock()

		_, err := conn.Write(b)
		s.mu.Lock()
		s.sending = false
		if err == nil && last && gen == s.gen {
			s.res.exitWritten = true
		}
		s.attachCond.Broadcast()
		s.mu.Unlock()
		switch {
		case err != nil && resumable:
			s.connLost(gen, err) // a last frame goes to the next conn (see connLost)
		case err != nil:
			return err
		case last && resumable:
			if !s.lastDelivered(conn, gen) {
				continue // lost with the conn: it goes again over the next
			}
			return nil
		case last:
			return nil
		}
	}
}

// lastDelivered waits, after the last frame was written to conn of generation gen, until the
// client shows that it got it: it closes the conn (readInput sees the end of its stream and
// ends the session), or the conn is lost first (readInput or the keepalive detach the session:
// a write into a dead path's kernel buffer succeeds too, and that frame and the output before
// it would be lost with the session). The client has farewellTimeout to close.
func (s *serverSession) lastDelivered(conn net.Conn, gen int) bool {
	halfClose(conn)
	s.mu.Lock()
	defer s.mu.Unlock()
	// A session stopped for a cause (its last frame a CLOSE) does not wait: its conn may have
	// no reader any more (a protocol error ended readInput).
	for gen == s.gen && !s.connDead && s.cause == nil {
		s.attachCond.Wait()
	}
	return s.connDead || s.cause != nil
}

func (s *serverSession) sendableLocked() bool {
	return s.connDead || s.closeReason != "" || s.flush || s.inDone >= creditBatch ||
		len(s.out) > 0 && s.unacked < s.outputWindowLocked() || s.exitDueLocked() || s.syncDueLocked() ||
		s.keepaliveDueLocked() || s.keys.due
}

// exitDueLocked reports whether the shell exited and all its output was sent.
func (s *serverSession) exitDueLocked() bool {
	return s.outEnded && len(s.out) == 0 && s.waited
}

func (s *serverSession) appendFramesLocked(b []byte) (_ []byte, last bool) {
	if s.closeReason != "" {
		s.lastQueued = true
		b, _ = appendMessage(b, &message{typ: frameClose, text: cleanReason(s.closeReason)})
		return b, true
	}
	if s.flush {
		s.flush = false
		b = appendFlush(b, s.flushKeep)
	}
	if s.inDone >= creditBatch {
		b = appendCredit(b, s.inDone)
		s.inUnacked -= s.inDone
		s.inDone = 0
	}
	b = s.appendSyncedLocked(b) // after the FLUSH a SYNC waited for, before newer output
	b = s.appendKeepaliveLocked(b)
	if n := min(len(s.out), s.outputWindowLocked()-s.unacked, maxDataFrame); n > 0 {
		b = s.appendFlushKeysLocked(b)
		b = appendFrame(b, frameData, s.out[:n])
		s.keepSentLocked(s.out[:n])
		s.out = s.out[:copy(s.out, s.out[n:])]
		s.unacked += n
		s.readCond.Signal()
	} else if s.keys.due {
		b = s.announceFlushKeysLocked(b) // the set changed with no output after it
	}
	if !s.exitDueLocked() {
		return b, false
	}
	s.lastQueued = true
	s.ending = true
	s.writeCond.Broadcast()
	if s.exit == nil {
		b, _ = appendMessage(b, &message{typ: frameClose, text: "the shell's exit status is unknown"})
	} else {
		b, _ = appendMessage(b, &message{typ: frameExit, exit: *s.exit})
	}
	return b, true
}

// Terminal reads: an idle session reads into terminalRead bytes; a read of more than half of
// them suggests a flood (a keystroke's echo or a prompt is smaller), and readTerminal then
// collects more output, up to collectSize bytes, before it sends.
const (
	terminalRead = 512
	collectSize  = 32 << 10
)
