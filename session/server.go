package session

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"sync"
	"time"
)

// farewellTimeout bounds a last message (a refusal, CLOSE) and the wait for the client to close
// after the last frame, so a client that stops reading cannot hold a session open.
const farewellTimeout = 2 * time.Second

// Terminal is the shell's side of a session: a pty in packet mode and the shell on it. *pty.PTY
// satisfies it through a small adapter. Serve calls ReadOutput from one goroutine, Write and
// SendEOF from a second (in the order the client sent them), Resize from a third, Wait from a
// fourth and Hangup from Serve's own goroutine, concurrently.
type Terminal interface {
	// ReadOutput reads the shell's output. flushed reports that the terminal discarded pending
	// output before these bytes (n may be 0 then). It returns io.EOF when the output is over:
	// nothing holds the terminal any more, or the shell was reaped by Wait and no output is
	// pending.
	ReadOutput(b []byte) (n int, flushed bool, err error)
	Write(b []byte) (int, error) // input for the shell
	Resize(WindowSize) error
	SendEOF() error                  // the end of input: the terminal's EOF character
	Wait() (*os.ProcessState, error) // waits for the shell to exit and reaps it

	// Hangup tells the shell the line is gone (SIGHUP to its process group). Serve calls it at most
	// once, not after Wait returned, but possibly while Wait is returning: it must do nothing once
	// the shell is reaped.
	Hangup()
}

// ServerConn is the server side of a session: ReadRequest, then Refuse or Serve, called in that
// order from one goroutine. Close may be called at any time.
type ServerConn struct {
	conn         net.Conn
	br           *bufio.Reader
	fr           frameReader
	capabilities []string // what this server supports; none in this version (tests set it)
	phase        serverPhase
	req          *Request

	closeOnce sync.Once
	closeErr  error
}

type serverPhase int

const (
	phaseNew      serverPhase = iota // nothing read
	phaseVersion                     // the client's version is read, and spoken here
	phaseRequest                     // the login request is read
	phaseAnswered                    // the answer is sent, or the conn given up
)

// NewServerConn returns the server side of a session over conn. The ServerConn owns conn.
func NewServerConn(conn net.Conn) *ServerConn {
	s := &ServerConn{conn: conn, br: bufio.NewReaderSize(conn, 16<<10)}
	s.fr.r = s.br
	return s
}

// ReadRequest reads the client's protocol version and login request. It sets no deadline: the
// caller bounds the login with one on the conn. A version this server does not speak gets the
// version refusal, and a malformed request a REFUSE; then the conn is closed and an error returned.
// After an I/O error (such as the deadline), the caller may Refuse ("login timed out") or Close.
func (s *ServerConn) ReadRequest() (*Request, error) {
	if s.phase != phaseNew {
		return nil, errors.New("session: ReadRequest called twice")
	}
	v, err := s.br.ReadByte()
	if err != nil {
		return nil, fmt.Errorf("session: reading the protocol version: %w", err)
	}
	if v != version {
		s.phase = phaseAnswered
		_ = s.farewell(appendVersionRefusal(nil, fmt.Sprintf("unsupported protocol version %d; this server speaks %d", v, version)))
		return nil, fmt.Errorf("session: client speaks protocol version %d, not %d; refused", v, version)
	}
	s.phase = phaseVersion
	m, err := s.fr.readMessage(isLoginFrame)
	if err != nil {
		if errors.Is(err, errProtocol) {
			_ = s.Refuse(err.Error())
		}
		return nil, fmt.Errorf("session: reading the login request: %w", err)
	}
	s.phase = phaseRequest
	s.req = m.req
	return m.req, nil
}

// Refuse sends a refusal with reason (which the client shows) and closes the conn. Before the
// client's version was read it uses the version refusal line, which every version understands.
func (s *ServerConn) Refuse(reason string) error {
	var b []byte
	switch s.phase {
	case phaseNew:
		b = appendVersionRefusal(nil, reason)
	case phaseVersion, phaseRequest:
		b, _ = appendMessage([]byte{version}, &message{typ: frameRefuse, text: cleanReason(reason)})
	default:
		_ = s.Close()
		return errors.New("session: Refuse after the login was answered")
	}
	s.phase = phaseAnswered
	if err := s.farewell(b); err != nil {
		return fmt.Errorf("session: sending the refusal: %w", err)
	}
	return nil
}

// farewell writes a last message, half-closes, waits (briefly) for the client to close, and
// closes. Closing with unread input would reset the connection and could destroy the message
// before the client reads it.
func (s *ServerConn) farewell(b []byte) error {
	_ = s.conn.SetWriteDeadline(time.Now().Add(farewellTimeout))
	_, err := s.conn.Write(b)
	if err == nil {
		s.linger(true)
	}
	_ = s.Close()
	return err
}

// linger half-closes the conn and gives the client farewellTimeout to close it: it reads and
// discards until then if drain is set; otherwise a pump that reads the conn anyway stops then.
func (s *ServerConn) linger(drain bool) {
	if cw, ok := s.conn.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
	_ = s.conn.SetReadDeadline(time.Now().Add(farewellTimeout))
	if drain {
		_, _ = io.Copy(io.Discard, s.br)
	}
}

// Close closes the conn. It may be called more than once.
func (s *ServerConn) Close() error {
	s.closeOnce.Do(func() { s.closeErr = s.conn.Close() })
	return s.closeErr
}

// Serve accepts the login and runs the session until the shell exits (after its output is
// drained, the client gets its exit status), the connection is lost or breaks the protocol (the
// shell gets Hangup), or ctx is cancelled (the client gets CLOSE "service stopping", the shell
// Hangup). In every case Serve waits for the shell and for its goroutines, closes the conn, and
// returns the shell's state. The error is nil after a normal end.
func (s *ServerConn) Serve(ctx context.Context, t Terminal) (*os.ProcessState, error) {
	if s.phase != phaseRequest {
		_ = s.Close()
		t.Hangup()
		st, _ := t.Wait()
		return st, errors.New("session: Serve needs a login request that ReadRequest read and nobody answered")
	}
	s.phase = phaseAnswered
	b, _ := appendMessage([]byte{version}, &message{typ: frameAccept, caps: s.accept(s.req.Capabilities)})
	if _, err := s.conn.Write(b); err != nil {
		_ = s.Close()
		t.Hangup()
		st, _ := t.Wait()
		return st, fmt.Errorf("session: sending the accept: %w", err)
	}
	ss := &serverSession{sc: s, t: t}
	ss.readCond.L = &ss.mu
	ss.sendCond.L = &ss.mu
	ss.writeCond.L = &ss.mu
	return ss.run(ctx)
}

// accept returns the offered capabilities this server supports, in the client's order.
func (s *ServerConn) accept(offered []string) []string {
	var caps []string
	for _, c := range offered {
		if slices.Contains(s.capabilities, c) {
			caps = append(caps, c)
		}
	}
	return caps
}

// serverSession is one running session: five goroutines (pumps) around a shared state.
type serverSession struct {
	sc *ServerConn
	t  Terminal

	mu        sync.Mutex
	readCond  sync.Cond // readTerminal waits for room in out
	sendCond  sync.Cond // sendOutput waits for something to send
	writeCond sync.Cond // writeTerminal waits for input

	out       []byte // output read from the terminal, not yet sent
	outEnded  bool   // ReadOutput returned an error: the output is over
	outErr    error  // that error, unless io.EOF
	fresh     int    // output bytes read since input was last written to the terminal
	flush     bool   // a FLUSH frame is due
	flushKeep int    // the FLUSH keeps that many bytes sent before it
	unacked   int    // output bytes sent, not yet credited by the client

	in        []byte // input received, not yet written to the terminal
	inEOF     bool   // the client ended its input
	inUnacked int    // input bytes received, not yet credited back
	inDone    int    // input bytes written to the terminal (or dropped), not yet credited back

	waited  bool // Wait returned
	state   *os.ProcessState
	waitErr error

	lastQueued  bool   // the last frame (EXIT or CLOSE) is being sent
	ending      bool   // the session is ending: terminal output and input are dropped
	connDead    bool   // nothing more can be sent
	closeReason string // if not "", sendOutput sends CLOSE with it and stops
	cause       error  // why the session ended, if not by the shell's exit
}

// The pumps, by name, so results say which one ended.
type pump int

const (
	pumpReadTerminal  pump = iota // terminal -> out
	pumpSendOutput                // out -> conn, and every other frame to the client
	pumpReadInput                 // conn -> in
	pumpWriteTerminal             // in -> terminal
	pumpWaitShell                 // Wait
	numPumps
)

type pumpResult struct {
	pump pump
	err  error
}

func (s *serverSession) run(ctx context.Context) (*os.ProcessState, error) {
	results := make(chan pumpResult, numPumps)
	go func() { results <- pumpResult{pumpReadTerminal, s.readTerminal()} }()
	go func() { results <- pumpResult{pumpSendOutput, s.sendOutput()} }()
	go func() { results <- pumpResult{pumpReadInput, s.readInput()} }()
	go func() { results <- pumpResult{pumpWriteTerminal, s.writeTerminal()} }()
	go func() { results <- pumpResult{pumpWaitShell, s.waitShell()} }()

	ctxDone := ctx.Done()
	for running := numPumps; running > 0; {
		select {
		case <-ctxDone:
			ctxDone = nil
			s.stop("service stopping", fmt.Errorf("session: service stopping: %w", context.Cause(ctx)))
		case r := <-results:
			running--
			switch r.pump {
			case pumpReadInput:
				s.mu.Lock()
				last := s.lastQueued
				s.mu.Unlock()
				switch {
				case last: // the client closes after the last frame, or the farewell timed out
				case errors.Is(r.err, errProtocol):
					s.stop(r.err.Error(), fmt.Errorf("session: %w", r.err))
				default:
					s.stop("", fmt.Errorf("session: connection lost: %w", r.err))
				}
			case pumpSendOutput:
				s.mu.Lock()
				dead := s.connDead
				s.mu.Unlock()
				switch {
				case r.err != nil:
					s.stop("", fmt.Errorf("session: connection lost: %w", r.err))
				case !dead:
					s.sc.linger(false) // readInput reads until the client closes
				}
			}
		}
	}
	_ = s.sc.Close()

	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.cause != nil:
		return s.state, s.cause
	case s.waitErr != nil:
		return s.state, fmt.Errorf("session: waiting for the shell: %w", s.waitErr)
	case s.outErr != nil:
		return s.state, fmt.Errorf("session: reading the terminal: %w", s.outErr)
	}
	return s.state, nil
}

// stop ends the session abnormally: with a CLOSE frame for reason, or at once if reason is ""
// (the conn is dead). The first cause is kept. The shell gets Hangup, unless it is gone.
func (s *serverSession) stop(reason string, cause error) {
	s.mu.Lock()
	if s.cause == nil {
		s.cause = cause
	}
	if reason == "" {
		s.connDead = true
	}
	if s.ending {
		s.mu.Unlock()
		if reason == "" {
			_ = s.sc.Close()
		}
		return
	}
	s.ending = true
	s.closeReason = reason
	s.out, s.in = nil, nil
	hangup := !s.waited
	s.readCond.Broadcast()
	s.sendCond.Broadcast()
	s.writeCond.Broadcast()
	s.mu.Unlock()

	if reason == "" {
		_ = s.sc.Close() // unblocks the pumps that use the conn
	} else {
		_ = s.sc.conn.SetWriteDeadline(time.Now().Add(farewellTimeout))
	}
	if hangup {
		s.t.Hangup()
	}
}

// readTerminal reads the shell's output into out, while there is room; on a flush it drops out and
// asks for a FLUSH frame. After the end it keeps reading (and dropping) until the output is over.
//
// A flush drops only output read before the last input was written to the terminal: Linux may
// report the flush of an interrupt character after output written after it (the shell's new
// prompt), so output read since that input is kept, here and, through the FLUSH's keep count, at
// the client.
func (s *serverSession) readTerminal() error {
	buf := make([]byte, readChunk)
	for {
		s.mu.Lock()
		for len(s.out) >= maxDataFrame && !s.ending {
			s.readCond.Wait()
		}
		s.mu.Unlock()

		n, flushed, err := s.t.ReadOutput(buf)

		s.mu.Lock()
		if flushed && !s.ending {
			keepOut := min(len(s.out), s.fresh) // the fresh bytes are the newest
			s.out = s.out[:copy(s.out, s.out[len(s.out)-keepOut:])]
			s.flushKeep = min(s.fresh-keepOut, window)
			s.flush = true
		}
		if n > 0 && !s.ending {
			s.out = append(s.out, buf[:n]...)
			s.fresh += n
		}
		if err != nil {
			s.outEnded = true
			if !errors.Is(err, io.EOF) {
				s.outErr = err
			}
		}
		if flushed || n > 0 || err != nil {
			s.sendCond.Signal()
		}
		s.mu.Unlock()
		if err != nil {
			return nil
		}
	}
}

// sendOutput is the only writer of the conn after the accept. Each round it sends, in one Write,
// what is due: FLUSH, input CREDIT, output DATA (everything read while the last Write was busy, as
// the client's credit allows), and at the end EXIT or CLOSE.
func (s *serverSession) sendOutput() error {
	var b []byte
	for {
		s.mu.Lock()
		for !s.sendableLocked() {
			s.sendCond.Wait()
		}
		if s.connDead {
			s.mu.Unlock()
			return nil
		}
		var last bool
		b, last = s.appendFramesLocked(b[:0])
		s.mu.Unlock()

		if _, err := s.sc.conn.Write(b); err != nil {
			return err
		}
		if last {
			return nil
		}
	}
}

func (s *serverSession) sendableLocked() bool {
	return s.connDead || s.closeReason != "" || s.flush || s.inDone >= creditBatch ||
		len(s.out) > 0 && s.unacked < window || s.exitDueLocked()
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
	if n := min(len(s.out), window-s.unacked, maxDataFrame); n > 0 {
		b = appendFrame(b, frameData, s.out[:n])
		s.out = s.out[:copy(s.out, s.out[n:])]
		s.unacked += n
		s.readCond.Signal()
	}
	if !s.exitDueLocked() {
		return b, false
	}
	s.lastQueued = true
	s.ending = true
	s.writeCond.Broadcast()
	if s.state == nil {
		b, _ = appendMessage(b, &message{typ: frameClose, text: "the shell's exit status is unknown"})
	} else {
		b, _ = appendMessage(b, &message{typ: frameExit, exit: exitStatus(s.state)})
	}
	return b, true
}

// readInput reads the client's frames: DATA into in, WINDOW to Resize, EOF after the input,
// CREDIT for sendOutput. It returns when the conn fails or the client breaks the protocol.
func (s *serverSession) readInput() error {
	for {
		m, err := s.sc.fr.readMessage(isClientFrame)
		if err != nil {
			return err
		}
		if m.typ == frameWindow {
			s.mu.Lock()
			ending := s.ending
			s.mu.Unlock()
			if !ending {
				_ = s.t.Resize(m.window) // best effort, as a window change is
			}
			continue
		}
		if err := s.handleInput(&m); err != nil {
			return err
		}
	}
}

func (s *serverSession) handleInput(m *message) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch m.typ {
	case frameData:
		if s.inEOF {
			return protocolErrorf("DATA after EOF")
		}
		if s.inUnacked+len(m.data) > window {
			return protocolErrorf("client sent more than the credit window of %d bytes", window)
		}
		s.inUnacked += len(m.data)
		if s.ending {
			s.inDone += len(m.data)
		} else {
			s.in = append(s.in, m.data...)
			s.writeCond.Signal()
		}
	case frameEOF:
		if s.inEOF {
			return protocolErrorf("second EOF")
		}
		s.inEOF = true
		s.writeCond.Signal()
	case frameCredit:
		if int64(m.credit) > int64(s.unacked) {
			return protocolErrorf("client granted credit for %d bytes, but only %d were outstanding", m.credit, s.unacked)
		}
		s.unacked -= int(m.credit)
		s.sendCond.Signal()
	}
	return nil
}

// writeTerminal writes the input to the terminal, everything received in one Write, counts it
// for the client's credit, and after the last input sends the end of input.
func (s *serverSession) writeTerminal() error {
	var chunk []byte
	for {
		s.mu.Lock()
		for len(s.in) == 0 && !s.inEOF && !s.ending {
			s.writeCond.Wait()
		}
		if s.ending {
			s.mu.Unlock()
			return nil
		}
		chunk, s.in = s.in, chunk[:0]
		s.fresh = 0 // output from here on may answer this input
		s.mu.Unlock()

		if len(chunk) == 0 { // inEOF, and all input is written
			_ = s.t.SendEOF() // fails only if the shell is gone
			return nil
		}
		_, _ = s.t.Write(chunk) // input for a shell that is gone is dropped

		s.mu.Lock()
		s.inDone += len(chunk)
		if s.inDone >= creditBatch {
			s.sendCond.Signal()
		}
		s.mu.Unlock()
	}
}

// waitShell waits for the shell to exit, for EXIT.
func (s *serverSession) waitShell() error {
	st, err := s.t.Wait()
	s.mu.Lock()
	s.waited = true
	s.state, s.waitErr = st, err
	s.sendCond.Signal()
	s.mu.Unlock()
	return err
}
