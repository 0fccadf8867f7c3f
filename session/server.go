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

// A shell that outlives its hangup must not hold a session whose line is gone. hangupGrace after
// Hangup, Serve closes the terminal, which hangs up the line for good (as sshd and in.rlogind do
// when they close the pty master: a shell that ignores SIGHUP then reads end of file or EIO), and
// killGrace after that it kills the shell.
const (
	hangupGrace = 2 * time.Second
	killGrace   = 2 * time.Second
)

// Terminal is the shell's side of a session: a pty in packet mode and the shell on it. *pty.PTY
// satisfies it, and all three optional interfaces below. Serve calls ReadOutput from one
// goroutine, Write and SendEOF from a second (in the order the client sent them), Resize from a
// third, Wait from a fourth, and Hangup, Close and Kill from Serve's own goroutine, concurrently.
//
// Serve looks for three optional interfaces by type assertion, each a saving, never needed:
// ExitNotifier (Serve's own goroutine calls Wait once the shell has exited, so no goroutine
// waits in Wait), OutputNowReader (a flood of output leaves in big writes while an idle session
// keeps a small buffer) and TryWriter (a keystroke reaches the shell from the goroutine that
// read it, without a hop to a second one).
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

	// Close closes the terminal, as closing a pty's master does: a pending or later ReadOutput or
	// Write fails at once, pending input is dropped, and the line is hung up for good. Serve calls
	// it when the shell is reaped and its output over (input may still wait for a terminal that a
	// background job holds), and when the shell outlives a Hangup by 2 seconds. It may be called
	// more than once.
	Close() error

	// Kill kills the shell (SIGKILL). Serve calls it when the shell outlives the Close by 2
	// seconds; like Hangup, it must do nothing once the shell is reaped.
	Kill()
}

// ExitNotifier is an optional Terminal method. Exited returns a channel that is closed once the
// shell has exited; Wait then returns without waiting. Serve calls it once, from its own
// goroutine, and calls Wait from there when the channel is closed.
type ExitNotifier interface {
	Exited() <-chan struct{}
}

// OutputNowReader is an optional Terminal method. ReadOutputNow is ReadOutput that never waits:
// when no output is pending it returns 0, false, nil at once. Serve calls it from the goroutine
// that calls ReadOutput, after a read that filled more than half of a small buffer, to collect
// the rest of a flood into one write to the client.
type OutputNowReader interface {
	ReadOutputNow(b []byte) (n int, flushed bool, err error)
}

// TryWriter is an optional method of a Terminal (and of a Client's Stdout). TryWrite writes what
// fits without waiting and returns n < len(b) with a nil error when the rest would have to wait.
// Serve calls it from the goroutine that reads the client's frames, never while a Write runs,
// and leaves the rest to Write in another goroutine: that goroutine must never block on a shell
// that reads no input, as it also reads the client's CREDIT frames.
type TryWriter interface {
	TryWrite(b []byte) (int, error)
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

	hangupGrace, killGrace time.Duration // hangupGrace and killGrace (tests shorten them)

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
	// The buffer is small: input is keystrokes and CREDIT frames, larger frames pass through it,
	// and an idle session keeps it.
	s := &ServerConn{conn: conn, br: bufio.NewReaderSize(conn, 1<<10), hangupGrace: hangupGrace, killGrace: killGrace}
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
	// No frame before the login request may be longer than the largest LOGIN: an unauthenticated
	// client gets no bigger buffer than that.
	s.fr.limit = maxLogin
	m, err := s.fr.readMessage(isLoginFrame)
	s.fr.limit = 0
	if err != nil {
		if errors.Is(err, ErrProtocol) {
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
// Hangup). A shell still there 2 seconds after its Hangup gets its terminal closed, and 2
// seconds after that, Kill. In every case Serve waits for the shell and for its
// goroutines, closes the terminal and the conn, and returns the shell's state. The error is nil
// after a normal end.
func (s *ServerConn) Serve(ctx context.Context, t Terminal) (*os.ProcessState, error) {
	if s.phase != phaseRequest {
		_ = s.Close()
		return s.abandon(t), errors.New("session: Serve needs a login request that ReadRequest read and nobody answered")
	}
	s.phase = phaseAnswered
	b, _ := appendMessage([]byte{version}, &message{typ: frameAccept, caps: s.accept(s.req.Capabilities)})
	if _, err := s.conn.Write(b); err != nil {
		_ = s.Close()
		return s.abandon(t), fmt.Errorf("session: sending the accept: %w", err)
	}
	ss := &serverSession{sc: s, t: t, hungUp: make(chan struct{})}
	ss.readCond.L = &ss.mu
	ss.sendCond.L = &ss.mu
	ss.writeCond.L = &ss.mu
	return ss.run(ctx)
}

// abandon ends the shell of a session that does not run: Hangup, then Close and Kill if it
// outlives the graces, as in a session. It waits for the shell and returns its state.
func (s *ServerConn) abandon(t Terminal) *os.ProcessState {
	t.Hangup()
	reaped := make(chan *os.ProcessState, 1)
	go func() {
		st, _ := t.Wait()
		reaped <- st
	}()
	grace := time.NewTimer(s.hangupGrace)
	defer grace.Stop()
	closed := false
	for {
		select {
		case st := <-reaped:
			_ = t.Close()
			return st
		case <-grace.C:
			if closed {
				t.Kill()
				continue
			}
			closed = true
			_ = t.Close()
			grace.Reset(s.killGrace)
		}
	}
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
	sending   bool   // a pump is writing the conn (sendOutput, or readTerminal's direct send)

	in        []byte // input received, not yet written to the terminal
	inEOF     bool   // the client ended its input
	inUnacked int    // input bytes received, not yet credited back
	inDone    int    // input bytes written to the terminal (or dropped), not yet credited back
	writing   bool   // a pump is writing the terminal (writeTerminal, or readInput's direct write)

	waited  bool // Wait returned
	state   *os.ProcessState
	waitErr error

	lastQueued  bool   // the last frame (EXIT or CLOSE) is being sent
	ending      bool   // the session is ending: terminal output and input are dropped
	connDead    bool   // nothing more can be sent
	closeReason string // if not "", sendOutput sends CLOSE with it and stops
	cause       error  // why the session ended, if not by the shell's exit
	farewell    bool   // the write deadline for the last frame is set

	hungUp chan struct{} // closed by stop once it hung up the shell
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
	// A terminal that tells when the shell exited saves the goroutine that waits for it.
	var exited <-chan struct{}
	if en, ok := s.t.(ExitNotifier); ok {
		exited = en.Exited()
	} else {
		go func() { results <- pumpResult{pumpWaitShell, s.waitShell()} }()
	}

	ctxDone := ctx.Done()
	hungUp := s.hungUp
	var grace *time.Timer // after the hangup: closes the terminal, then kills the shell
	var graceC <-chan time.Time
	defer func() {
		if grace != nil {
			grace.Stop()
		}
	}()
	var readDone, reaped, closed bool
	closeTerminal := func() {
		if !closed {
			closed = true
			_ = s.t.Close()
		}
	}
	for running := numPumps; running > 0; {
		select {
		case <-ctxDone:
			ctxDone = nil
			s.stop("service stopping", fmt.Errorf("session: service stopping: %w", context.Cause(ctx)))
		case <-hungUp:
			hungUp = nil
			grace = time.NewTimer(s.sc.hangupGrace)
			graceC = grace.C
		case <-graceC:
			// The shell outlived its hangup: close its terminal, which hangs the line up for
			// good; if it outlives that too, kill it.
			if closed {
				graceC = nil
				s.t.Kill()
				break
			}
			closeTerminal()
			grace.Reset(s.sc.killGrace)
		case <-exited:
			exited = nil
			results <- pumpResult{pumpWaitShell, s.waitShell()} // Wait returns at once now
		case r := <-results:
			running--
			switch r.pump {
			case pumpReadTerminal:
				readDone = true
			case pumpWaitShell:
				reaped = true
				graceC = nil
			case pumpReadInput:
				s.mu.Lock()
				last := s.lastQueued
				s.mu.Unlock()
				switch {
				case last: // the client closes after the last frame, or the farewell timed out
				case errors.Is(r.err, ErrProtocol):
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
			if readDone && reaped {
				// The shell is reaped and its output is over: nothing needs the terminal any
				// more, and input may wait for it forever (a background job holds it and does
				// not read; writeTerminal is blocked): closing it drops that input.
				closeTerminal()
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
	farewell := reason != "" && !s.connDead && !s.farewell
	if farewell {
		s.farewell = true
	}
	if s.ending {
		s.mu.Unlock()
		switch {
		case reason == "":
			_ = s.sc.Close()
		case farewell:
			// The last frame (EXIT) may be queued already: a client that does not read it
			// cannot hold the session either.
			_ = s.sc.conn.SetWriteDeadline(time.Now().Add(farewellTimeout))
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
	} else if farewell {
		_ = s.sc.conn.SetWriteDeadline(time.Now().Add(farewellTimeout))
	}
	if hangup {
		s.t.Hangup()
		close(s.hungUp) // run gives the shell hangupGrace to exit
	}
}

// readTerminal reads the shell's output into out, while there is room; on a flush it drops out and
// asks for a FLUSH frame. After the end it keeps reading (and dropping) until the output is over.
//
// A flush drops only output read before the last input was written to the terminal: Linux may
// report the flush of an interrupt character after output written after it (the shell's new
// prompt), so output read since that input is kept, here and, through the FLUSH's keep count, at
// the client.
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
	nr, _ := s.t.(OutputNowReader)
	small := make([]byte, terminalRead)
	if nr == nil {
		small = make([]byte, readChunk) // cannot collect: read big
	}
	var big []byte   // collects a flood's output; nil when there is none
	var frame []byte // a frame sent directly
	var (
		held        bool // a flush or an error that came while collecting, for the next round
		heldFlushed bool
		heldErr     error
	)
	for {
		s.mu.Lock()
		for len(s.out) >= maxDataFrame && !s.ending {
			s.readCond.Wait()
		}
		s.mu.Unlock()

		var n int
		var flushed bool
		var err error
		buf := small
		if held {
			flushed, err, held = heldFlushed, heldErr, false
		} else {
			n, flushed, err = s.t.ReadOutput(buf)
		}
		flood := n >= len(small)/2 // (a pty in packet mode fills all but one byte)
		if !flood && big != nil {
			// The flood is over: an idle session keeps only the small buffers.
			big, frame = nil, nil
		}
		if nr != nil && flood && !flushed && err == nil {
			if big == nil {
				big = make([]byte, collectSize)
			}
			copy(big, buf[:n])
			buf = big
			for n < len(buf) {
				m, fl, e := nr.ReadOutputNow(buf[n:])
				n += m
				if fl || e != nil {
					held, heldFlushed, heldErr = true, fl, e
					break
				}
				if m == 0 {
					break
				}
			}
		}

		s.mu.Lock()
		if flushed && !s.ending {
			keepOut := min(len(s.out), s.fresh) // the fresh bytes are the newest
			s.out = s.out[:copy(s.out, s.out[len(s.out)-keepOut:])]
			s.flushKeep = min(s.fresh-keepOut, window)
			s.flush = true
		}
		if n > 0 && !s.ending {
			s.fresh += n
			// Output from a terminal that cannot collect goes through sendOutput, which
			// batches what piles up while it writes, unless it is as small as an echo.
			if len(s.out) == 0 && !s.sending && !s.flush && s.unacked+n <= window && (nr != nil || n <= terminalRead) {
				frame = s.sendNowLocked(frame[:0], buf[:n])
				n = 0 // sent; nothing for sendOutput
			} else {
				s.out = append(s.out, buf[:n]...)
			}
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
	b = appendFrame(b, frameData, p)
	s.unacked += len(p)
	s.mu.Unlock()
	_, err := s.sc.conn.Write(b)
	if err != nil {
		s.stop("", fmt.Errorf("session: connection lost: %w", err))
	}
	s.mu.Lock()
	s.sending = false
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
		for s.sending || !s.sendableLocked() {
			s.sendCond.Wait()
		}
		if s.connDead {
			s.mu.Unlock()
			return nil
		}
		var last bool
		b, last = s.appendFramesLocked(b[:0])
		s.sending = true
		s.mu.Unlock()

		_, err := s.sc.conn.Write(b)
		s.mu.Lock()
		s.sending = false
		s.mu.Unlock()
		if err != nil {
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

// Terminal reads: an idle session reads into terminalRead bytes; a read of more than half of
// them suggests a flood (a keystroke's echo or a prompt is smaller), and readTerminal then
// collects more output, up to collectSize bytes, before it sends.
const (
	terminalRead = 512
	collectSize  = 32 << 10
)

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
		p := m.data
		if tw, ok := s.t.(TryWriter); ok && !s.ending && len(s.in) == 0 && !s.writing {
			p = s.writeNowLocked(tw, p)
		}
		if s.ending {
			s.inDone += len(p)
		} else if len(p) > 0 {
			s.in = append(s.in, p...)
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
		if len(s.out) > 0 {
			s.sendCond.Signal() // output waited for this credit
		}
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
	s.mu.Unlock()
	n, err := tw.TryWrite(p)
	s.mu.Lock()
	s.writing = false
	if err != nil {
		n = len(p) // input for a shell that is gone is dropped, as writeTerminal drops it
	}
	s.inDone += n
	if s.inDone >= creditBatch {
		s.sendCond.Signal()
	}
	return p[n:]
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
		s.mu.Unlock()

		if len(chunk) == 0 { // inEOF, and all input is written
			_ = s.t.SendEOF() // fails only if the shell is gone
			return nil
		}
		_, _ = s.t.Write(chunk) // input for a shell that is gone is dropped

		s.mu.Lock()
		s.writing = false
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
