package session

import (
	"errors"
	"io"
	"time"
)

// readInput reads the client's frames: DATA into in, WINDOW to Resize, EOF after the input,
// CREDIT for sendOutput. It returns when the conn fails or the client breaks the protocol; a
// resumable session's goes on with the next conn when the conn fails, until the session ends.
func (s *serverSession) readInput() error {
	for {
		sc, gen, ok := s.waitAttached()
		if !ok {
			return nil // the session ends; its cause says why
		}
		err := s.readFrames(sc, gen)
		s.mu.Lock()
		current, resumable, last := gen == s.gen, s.res.on, s.lastQueued
		s.mu.Unlock()
		switch {
		case !resumable: // the client closes after the last frame
			return err
		case current && last && (s.lastSeen(gen, err) || errors.Is(err, ErrProtocol)):
			return err
		case !current: // lost or taken over: drained until its deadline
			_ = sc.Close()
			sc.release()
		case errors.Is(err, ErrProtocol):
			return err
		default:
			s.connLost(gen, err)
			_ = sc.Close() // connLost did, unless another gave the conn up first
			s.mu.Lock()
			given := gen != s.gen // not when the session ends: stop may use the conn still
			s.mu.Unlock()
			if given {
				sc.release()
			}
		}
	}
}

// lastSeen reports whether err, the end of the current conn gen's stream after the last frame was
// queued, shows that the client got that frame: it closed the conn after the frame was
// written. The session then ends (sendOutput with it); otherwise the conn was lost.
func (s *serverSession) lastSeen(gen int, err error) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.sending && gen == s.gen {
		s.attachCond.Wait() // the last frame's Write: the client may close before it returns
	}
	if gen != s.gen || !s.res.exitWritten || !errors.Is(err, io.EOF) {
		return false
	}
	s.connDead = true // delivered: nothing more to send
	s.attachCond.Broadcast()
	return true
}

// readFrames reads the frames of sc, the conn of generation gen, until it fails.
func (s *serverSession) readFrames(sc *ServerConn, gen int) error {
	s.mu.Lock()
	allowed := isClientFrame
	if s.flow2 {
		allowed = isClientFrameFlow2
	}
	allowed = s.allowedWithKeepalive(allowed)
	if s.res.on {
		allowed = withReceived(allowed)
	}
	prober := s.ka.prober
	s.mu.Unlock()
	if s.sc.pipedCommand() {
		allowed = withSignal(allowed)
	}
	for {
		// The wait for the next frame is shallow (readFrame's frames are not on the stack
		// then): an idle session waits here for hours, and the stack its goroutine keeps is
		// sized by the deepest point of its wait. Inside TLS's read, a wait from
		// readMessage's frames made it need 8 KiB instead of 4.
		if _, err := sc.br.Peek(1); err != nil {
			return err // as readMessage would: nothing of a frame was read
		}
		if err := s.readFrame(sc, gen, allowed, prober); err != nil {
			return err
		}
	}
}

// readFrame reads and handles one frame of sc, the conn of generation gen.
func (s *serverSession) readFrame(sc *ServerConn, gen int, allowed func(frameType) bool, prober *prober) error {
	m, err := sc.fr.readMessage(allowed)
	if err != nil {
		return err
	}
	prober.heard()
	switch m.typ {
	case frameSignal:
		s.signalCommand(m.signal)
	case frameWindow:
		s.mu.Lock()
		ending := s.ending || gen != s.gen
		s.mu.Unlock()
		if !ending {
			_ = s.t.Resize(m.window) // best effort, as a window change is
		}
	default:
		return s.handleInput(&m, gen)
	}
	return nil
}

// handleInput acts on a frame of the conn of generation gen; one from a conn given up is
// dropped: its client resends what counts.
func (s *serverSession) handleInput(m *message, gen int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if gen != s.gen {
		return nil
	}
	s.res.prevValid = false // the client got the new secret
	if m.typ != frameData {
		defer s.recheckFlushKeysLocked() // after a CREDIT counts
	}
	switch m.typ {
	case frameData:
		if s.inEOF {
			return protocolErrorf("DATA after EOF")
		}
		if s.inUnacked+len(m.data) > window {
			return protocolErrorf("client sent more than the credit window of %d bytes", window)
		}
		s.inUnacked += len(m.data)
		s.inTotal += int64(len(m.data))
		p := m.data
		if tw := s.tw; tw != nil && !s.ending && len(s.in) == 0 && !s.writing {
			p = s.writeNowLocked(tw, p)
		}
		if s.ending {
			s.inDone += len(p)
			s.inWritten += int64(len(p))
		} else if len(p) > 0 {
			s.in = append(s.in, p...)
			s.startWriterLocked()
			s.writeCond.Signal()
		}
	case frameEOF:
		if s.inEOF && s.res.eofAgain {
			s.res.eofAgain = false // a resuming client sends it again: it cannot know it came
			return nil
		}
		if s.inEOF {
			return protocolErrorf("second EOF")
		}
		s.inEOF = true
		s.startWriterLocked()
		s.writeCond.Signal()
	case frameSync:
		return s.syncLocked()
	case framePing, framePong, frameQuiet:
		return s.keepaliveInputLocked(m)
	case frameReceived:
		return s.receivedLocked(m.received)
	case frameCredit:
		switch {
		case s.flow2 && int64(s.unacked)-int64(m.credit) < window-maxWindow:
			return protocolErrorf("client granted credit beyond the largest window of %d bytes", maxWindow)
		case !s.flow2 && int64(m.credit) > int64(s.unacked):
			return protocolErrorf("client granted credit for %d bytes, but only %d were outstanding", m.credit, s.unacked)
		}
		s.unacked -= int(m.credit)
		if err := s.checkTailBoundLocked(); err != nil {
			return err
		}
		if s.reserveOpen && s.unacked <= window-flushReserve {
			s.reserveOpen = false // the credit for what the flush dropped came back
		}
		if len(s.out) > 0 {
			s.sendCond.Signal() // output waited for this credit
		}
		s.errCond.Broadcast() // so may the error output
	}
	return nil
}

// writeNowLocked writes input that finds nothing queued straight to the terminal from readInput,
// as much as the terminal takes without waiting, and returns the rest for writeTerminal: a
// keystroke reaches the shell without a goroutine hop, and readInput never blocks on a terminal
// whose program reads no input (it must go on reading the client's CREDIT frames). s.mu is held
// on entry and on return, not during the write.
func (s *serverSession) writeNowLocked(tw TryWriter, p []byte) []byte {
	s.writing = true
	s.fresh = 0 // output from here on may answer this input
	// flow2 is read under the lock: Attach may change it.
	seen, flow2 := s.flushes, s.flow2
	s.mu.Unlock()
	var flushWait time.Duration
	if flow2 {
		flushWait = s.mayFlush(p)
	}
	n, err := tw.TryWrite(p)
	s.mu.Lock()
	if s.flushes != seen || n == 0 {
		flushWait = 0 // the flush was reported already, or nothing was written
	}
	s.writing = false
	if err != nil {
		n = len(p) // input for a shell that is gone is dropped, as writeTerminal drops it
	}
	s.inputWrittenLocked(n, flushWait)
	s.inDone += n
	if s.inDone >= creditBatch {
		s.sendCond.Signal()
	}
	return p[n:]
}

// startWriterLocked starts writeTerminal, once, for input that readInput did not write itself:
// an idle session, whose keystrokes readInput writes (writeNowLocked), has no goroutine (and
// goroutine stack) waiting for input that rarely comes. Only readInput calls it (handleInput).
func (s *serverSession) startWriterLocked() {
	if !s.writer {
		s.writer = true
		go func() { s.results <- pumpResult{pumpWriteTerminal, s.writeTerminal()} }()
	}
}

// endWriterLocked reports writeTerminal's end for it if it never started: readInput ended, and
// nothing else starts it.
func (s *serverSession) endWriterLocked() {
	if !s.writer {
		s.writer = true
		s.results <- pumpResult{pumpWriteTerminal, nil} // never blocks: it has room for every pump
	}
}

// writeTerminal writes the input that readInput did not write itself to the terminal, everything
// queued in one Write, counts it for the client's credit, and after the last input sends the end
// of input.
func (s *serverSession) writeTerminal() error {
	var chunk []byte
	for {
		s.mu.Lock()
		for (s.writing || len(s.in) == 0 && !s.inEOF) && !s.ending {
			s.writeCond.Wait()
		}
		if s.ending {
			s.mu.Unlock()
			return nil
		}
		chunk, s.in = s.in, chunk[:0]
		s.fresh = 0 // output from here on may answer this input
		s.writing = true
		seen, flow2 := s.flushes, s.flow2 // flow2 under the lock: Attach may change it
		s.mu.Unlock()

		if len(chunk) == 0 { // inEOF, and all input is written
			_ = s.t.SendEOF() // fails only if the shell is gone
			return nil
		}
		var flushWait time.Duration
		if flow2 {
			flushWait = s.mayFlush(chunk)
		}
		_, _ = s.t.Write(chunk) // input for a shell that is gone is dropped

		s.mu.Lock()
		s.writing = false
		if s.flushes != seen {
			flushWait = 0 // the flush was reported already
		}
		s.inputWrittenLocked(len(chunk), flushWait)
		s.inDone += len(chunk)
		if s.inDone >= creditBatch {
			s.sendCond.Signal()
		}
		s.mu.Unlock()
	}
}
