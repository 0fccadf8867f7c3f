package session

import (
	"bytes"
	"slices"
	"time"
)

// The server's side of capability flushkeys (docs/protocol.md, section 7.5): it tells the
// client which characters, typed now, make the terminal discard its output.
//
// The set is read before each DATA frame, after that DATA's output was read: no output reaches
// the client that was produced under settings newer than the last FLUSHKEYS before it. But a
// program may change the settings after its last output (turn signals off and wait for a key),
// while the client still holds output its terminal has not drawn: at ^C the client would
// discard that output, which the remote terminal no longer does. Linux tells the master
// nothing of a termios change (packet mode's TIOCPKT_IOCTL needs EXTPROC, which changes the
// line discipline), so the server looks again, and sends FLUSHKEYS on its own when the set
// changed: at each frame from the client (CREDIT, RECEIVED, SYNC, PING...), and once
// flushKeysRecheck after the last DATA frame. It stops looking once that time has passed and
// the client has credited all the output sent (only that shows that it wrote it out): an idle
// session does not poll.

// flushKeysRecheck is how long after the last DATA frame the server looks at the set once more.
// A program that sets its terminal after its last output (a script's stty, a program that
// prints and then waits for a key) does so within a few milliseconds; a person reacts to output
// later than that (100 ms or more), so the news then usually reaches the client (half a round
// trip later) before the ^C. Short enough for that, long enough that the timer fires at most
// 40 times a second while output flows (each one system call), rather than once per frame.
const flushKeysRecheck = 25 * time.Millisecond

// flushKeys is the server's state of capability flushkeys, under the session's mu: what the
// client of the current conn was told, and the re-checks (see above).
type flushKeys struct {
	fk   FlushKeyer         // the terminal, if it can tell; else nil, and no FLUSHKEYS is sent
	gen  int                // the conn generation on and sent are for
	on   bool               // that conn's client accepted flushkeys
	sent []byte             // the characters last announced to it; a new conn's client assumes none
	look [maxFlushKeys]byte // the buffer of each look at the set: no allocation per DATA frame

	due     bool        // the set changed since it was announced: sendOutput sends FLUSHKEYS
	active  bool        // re-checking: DATA went out that the client may not have drawn yet
	data    bool        // DATA went out after the timer was armed
	armed   bool        // the timer is pending
	stopped bool        // the session ended: the timer is not armed again
	timer   *time.Timer // runs flushKeysTick
}

// flushKeysOnLocked reports whether the current conn's client accepted flushkeys; a new conn
// starts from the empty set. s.cur is not nil.
func (s *serverSession) flushKeysOnLocked() bool {
	k := &s.keys
	if k.fk == nil {
		return false
	}
	if k.gen != s.gen || k.sent == nil {
		k.gen, k.sent = s.gen, make([]byte, 0, maxFlushKeys)
		k.on = slices.Contains(s.cur.req.Capabilities, capFlushKeys) && slices.Contains(s.cur.capabilities, capFlushKeys)
	}
	return k.on
}

// appendFlushKeysLocked appends a FLUSHKEYS frame, before a DATA frame, when the characters that
// make the terminal flush differ from those the client last heard of, and starts the re-checks
// (see appendFlushKeysBeforeDataLocked).
func (s *serverSession) appendFlushKeysLocked(b []byte) []byte {
	b = s.appendFlushKeysBeforeDataLocked(b)
	s.armFlushKeysLocked()
	return b
}

// appendFlushKeysBeforeDataLocked is appendFlushKeysLocked without the re-checks' timer: the
// caller arms it (armFlushKeysLocked) once its DATA is written. It reads the terminal's settings
// after the output in that DATA was read, so no output reaches the client that was produced
// under settings newer than the last FLUSHKEYS before it: a program that turns signals off and
// then draws is announced before its drawing.
func (s *serverSession) appendFlushKeysBeforeDataLocked(b []byte) []byte {
	if !s.flushKeysOnLocked() {
		return b
	}
	s.keys.active = true
	return s.announceFlushKeysLocked(b)
}

// armFlushKeysLocked starts the re-checks after a DATA frame: the timer's look flushKeysRecheck
// later, or, if one is pending, one more after it. Arming a timer that fires before all others
// wakes another thread of the process (Go's runtime hands it the timer): an echo arms it after
// its Write, so that wake-up does not delay the echo.
func (s *serverSession) armFlushKeysLocked() {
	k := &s.keys
	if !k.on || k.gen != s.gen || k.stopped {
		return // flushkeys is off for this conn: appendFlushKeysBeforeDataLocked looked at nothing
	}
	k.active = true // a CREDIT may have come while the DATA was written: the look still comes
	if k.armed {
		k.data = true // the pending look comes too early for this DATA: it looks again after
		return
	}
	k.armed = true
	if k.timer == nil {
		k.timer = time.AfterFunc(flushKeysRecheck, s.flushKeysTick)
	} else {
		k.timer.Reset(flushKeysRecheck)
	}
}

// announceFlushKeysLocked appends a FLUSHKEYS frame if the set differs from the one announced.
func (s *serverSession) announceFlushKeysLocked(b []byte) []byte {
	k := &s.keys
	k.due = false
	keys, changed := s.lookFlushKeysLocked()
	if !changed {
		return b
	}
	k.sent = append(k.sent[:0], keys...)
	return appendFrame(b, frameFlushKeys, keys)
}

// lookFlushKeysLocked reads the set now, and reports whether it differs from the one announced.
func (s *serverSession) lookFlushKeysLocked() (keys []byte, changed bool) {
	k := &s.keys
	keys = k.fk.AppendFlushKeys(k.look[:0])
	return keys, len(keys) <= maxFlushKeys && !bytes.Equal(keys, k.sent)
}

// recheckFlushKeysLocked looks at the set again, while re-checking, and has sendOutput announce
// it if it changed. readInput calls it at each frame from the client but input DATA (whose
// keystroke the client has judged already).
func (s *serverSession) recheckFlushKeysLocked() {
	k := &s.keys
	if !k.active {
		return
	}
	s.checkFlushKeysLocked()
	if !k.armed && s.unacked <= 0 {
		k.active = false // the client wrote out everything, and the last look came after the DATA
	}
}

// checkFlushKeysLocked makes a FLUSHKEYS due if the set changed since the last one.
func (s *serverSession) checkFlushKeysLocked() {
	k := &s.keys
	if k.due || s.cur == nil || s.ending || !s.flushKeysOnLocked() {
		return
	}
	if _, changed := s.lookFlushKeysLocked(); changed {
		k.due = true
		s.sendCond.Signal()
	}
}

// flushKeysTick is the timer's look at the set, flushKeysRecheck after DATA: again later if
// more DATA went out meanwhile, else the last one.
func (s *serverSession) flushKeysTick() {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := &s.keys
	k.armed = false
	if k.stopped || !k.active {
		return
	}
	s.checkFlushKeysLocked()
	if k.data {
		k.data, k.armed = false, true
		k.timer.Reset(flushKeysRecheck)
		return
	}
	if s.unacked <= 0 {
		k.active = false
	}
}

// stopFlushKeysLocked stops the timer for good, at the session's end.
func (s *serverSession) stopFlushKeysLocked() {
	s.keys.stopped = true
	if s.keys.timer != nil {
		s.keys.timer.Stop()
	}
}
