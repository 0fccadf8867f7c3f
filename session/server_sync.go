package session

import (
	"bytes"
	"time"
)

// How long a SYNC waits for the report of a flush that input was expected to cause. The line
// discipline acts on input in a kernel worker, normally within microseconds of the write, but
// later on a busy machine. A flush the terminal predicted (FlushPredictor) is certain to come:
// the bound only guards against a report that never comes. A guessed one (^C without the
// terminal's settings) may not come, when the program has signals off: the bound is what such a
// program's output is delayed after it.
const (
	predictedFlushWait = time.Second
	guessedFlushWait   = 50 * time.Millisecond
)

// defaultSignalChars are the usual interrupt, quit and suspend characters (^C, ^\, ^Z): input
// that holds one may make the terminal flush its output, when the terminal cannot say
// (FlushPredictor).
const defaultSignalChars = "\x03\x1c\x1a"

// maxSyncs bounds the SYNCs a client may have unanswered (docs/protocol.md, section 7.3).
const maxSyncs = 16

// mayFlush returns how long to wait for the report of the flush that writing p to the terminal
// may cause, 0 if none; if one may come, it makes readTerminal's reads small at once, before the
// write, so that little output is read between the write and the flush (the line discipline
// acts on input a moment after the write). Called without s.mu.
func (s *serverSession) mayFlush(p []byte) time.Duration {
	var wait time.Duration
	if fp := s.fp; fp != nil {
		if len(p) > 0 && fp.FlushesOutput(p) {
			wait = predictedFlushWait
			s.markStale()
		}
	} else if bytes.ContainsAny(p, defaultSignalChars) {
		wait = guessedFlushWait
	}
	if wait > 0 {
		s.flushDue.Store(true)
	}
	return wait
}

// markStale notes, before input that makes the terminal flush is written, the offset in the
// output up to which the terminal holds output already (OutputMarker): that output is older than
// the input, and a flush makes it stale (see readTerminal). A mark stays valid for any later
// flush, so only the newest counts. Called without s.mu.
func (s *serverSession) markStale() {
	if s.om == nil {
		return
	}
	read, held, err := s.om.OutputMark()
	if err != nil {
		return // best effort: the flush then keeps what it always kept
	}
	s.mu.Lock()
	s.staleMark = max(s.staleMark, read-s.omBase+held)
	s.mu.Unlock()
}

// syncLocked takes a SYNC: it is answered once the input before it is written to the terminal
// and any flush that input caused is reported. Input that waits for the terminal is waited for
// no longer than guessedFlushWait: a terminal whose program reads no input would otherwise hold
// the answer, and the client's output, for as long; nothing of that input acts meanwhile anyway.
func (s *serverSession) syncLocked() error {
	if s.syncsDue >= maxSyncs {
		return protocolErrorf("more than %d SYNCs unanswered", maxSyncs)
	}
	s.syncsDue++
	s.syncTarget = s.inTotal
	if s.inWritten < s.syncTarget && !s.expectFlush {
		s.armFlushTimerLocked(guessedFlushWait)
	}
	if s.syncDueLocked() {
		s.sendCond.Signal()
	}
	return nil
}

// armFlushTimerLocked makes flushWaitOver run after d.
func (s *serverSession) armFlushTimerLocked(d time.Duration) {
	if s.flushTimer == nil {
		s.flushTimer = time.AfterFunc(d, s.flushWaitOver)
	} else {
		s.flushTimer.Reset(d)
	}
}

// inputWrittenLocked counts n input bytes written to the terminal; if they may make it discard
// output, a SYNC waits for the report of that, at most flushWait.
func (s *serverSession) inputWrittenLocked(n int, flushWait time.Duration) {
	s.inWritten += int64(n)
	if flushWait == 0 && !s.expectFlush {
		s.flushDue.Store(false) // predicted for input that was not written
	}
	if flushWait > 0 {
		s.expectFlush = true
		s.flushDue.Store(true)
		s.readCond.Signal() // readTerminal reads on to the flush's report
		s.armFlushTimerLocked(flushWait)
	}
	if s.syncDueLocked() {
		s.sendCond.Signal()
	}
}

// flushWaitOver gives up waiting for a flush report, and for input the terminal did not take.
func (s *serverSession) flushWaitOver() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.syncTarget = min(s.syncTarget, s.inWritten)
	s.expectFlush = false
	s.flushDue.Store(false)
	if s.syncDueLocked() {
		s.sendCond.Signal()
	}
}

// syncDueLocked reports whether SYNCED answers are due.
func (s *serverSession) syncDueLocked() bool {
	return s.syncsDue > 0 && s.inWritten >= s.syncTarget && !s.expectFlush
}

// appendSyncedLocked appends the SYNCED answers that are due.
func (s *serverSession) appendSyncedLocked(b []byte) []byte {
	if !s.syncDueLocked() {
		return b
	}
	for ; s.syncsDue > 0; s.syncsDue-- {
		b = appendHeader(b, frameSynced, 0)
	}
	return b
}
