package classic

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/rlogin-go/rlogin/pty"
)

// Control bytes a classic server sends its client as TCP urgent data. They are the pty's packet-mode
// status bits (pty.Status) and may be combined.
const (
	ControlFlush  byte = 0x02 // discard output up to the urgent mark (the terminal flushed its output: ^C)
	ControlNoStop byte = 0x10 // switch local ^S/^Q flow control off (the application reads them)
	ControlDoStop byte = 0x20 // switch local ^S/^Q flow control back on
	ControlWindow byte = 0x80 // send window-size messages from now on, and one at once
)

// Timeouts of the server side.
const (
	// farewellTimeout bounds a refusal's write and the wait for the client to close after the
	// server's last byte, so a client that stops reading cannot hold the conn open.
	farewellTimeout = 2 * time.Second
	// HoldTimeout is how long the server waits for the rest of a possible window message (see
	// InputFilter) before it passes the held bytes to the terminal as input.
	HoldTimeout = 100 * time.Millisecond
)

// readChunk is the size of the server's reads from the terminal and from the conn.
const readChunk = 32 << 10

// flushWait bounds how long the output read after input that makes the terminal flush waits for
// the report of that flush. The line discipline acts on input in a kernel worker, normally within
// microseconds of the write, later on a busy machine; the bound only guards against a report
// that never comes (the program changed the terminal's settings meanwhile).
const flushWait = time.Second

// maxHeld bounds the output held for a flush (see Terminal): beyond it the server reads no more
// output until the flush is reported or flushWait is over. The flush leaves little to read before
// its report: what the program wrote after it.
const maxHeld = 1 << 20

// WindowRequestDelay is how long after its confirmation the server sends no urgent data at all:
// it asks for the window size (urgent 0x80) with the first output after that, together with the
// last flow-control change seen meanwhile (flushes before then are dropped: the client has not
// shown much yet). netkit rlogin mishandles an urgent byte that comes right after the
// confirmation, before the process that handles urgent data is ready: it then misses later ones
// too, or shows them as text. in.rlogind sends none before its own password dialogue is over.
const WindowRequestDelay = 100 * time.Millisecond

// Terminal is the shell's side of a classic session: a pty in packet mode and the program on it.
// *pty.PTY satisfies it (WindowSize is pty.Size). Serve calls
// ReadPacket from one goroutine, Write and Resize from a second, Hangup from any, and Wait once
// the output is over.
//
// A Terminal that also has the method FlushesOutput(input []byte) bool, as *pty.PTY has, keeps
// the output that follows an interrupt: Linux may report the flush that ^C causes only after the
// output written after it (the echoed ^C, the shell's new prompt), which the client would then
// discard with the output before the flush. Serve holds the output read after such input until
// the flush is reported, and sends it after the urgent byte.
type Terminal interface {
	// ReadPacket reads the program's output (n > 0, status 0) or one packet-mode status change
	// (n == 0, status != 0); io.EOF when the output is over (see pty.PTY.ReadPacket).
	ReadPacket(b []byte) (n int, status pty.Status, err error)
	Write(b []byte) (int, error) // input for the program
	Resize(WindowSize) error
	Wait() (*os.ProcessState, error) // waits for the program to exit and reaps it
	// Hangup tells the program the line is gone (SIGHUP). Serve calls it at most once, possibly
	// after the program exited: it must then do nothing.
	Hangup()
}

// ServerConn is the server side of a classic rlogin connection: ReadRequest, then Refuse or Serve,
// called in that order from one goroutine. Close may be called at any time.
//
// Serve sends urgent data (the window request and forwarded flushes and flow-control changes)
// only over a TCP conn: conn must be a *net.TCPConn or wrap one, reachable through NetConn
// methods (as transport's and crypto/tls's wrappers have); over other conns they are left out.
type ServerConn struct {
	conn  net.Conn
	raw   syscall.RawConn // the TCP socket under conn, for urgent data; nil if none
	rest  []byte          // bytes the client sent after its handshake
	phase serverPhase
	req   *Request

	requestDelay time.Duration // WindowRequestDelay; tests shorten it
	holdTimeout  time.Duration // HoldTimeout; tests lengthen it

	closeOnce sync.Once
	closeErr  error
}

type serverPhase int

const (
	phaseNew      serverPhase = iota // nothing read
	phaseRequest                     // the handshake is read
	phaseAnswered                    // the answer is sent, or the conn given up
)

// NewServerConn returns the server side of a classic connection over conn. The ServerConn owns
// conn.
func NewServerConn(conn net.Conn) *ServerConn {
	return &ServerConn{conn: conn, raw: rawConnOf(conn), requestDelay: WindowRequestDelay, holdTimeout: HoldTimeout}
}

// ReadRequest reads the client's handshake. It sets no deadline: the caller bounds it with one on
// the conn (netkit in.rlogind allows 60 seconds). A handshake that is malformed (first byte not
// NUL, missing NULs, overlong fields) or unacceptable (a user name that is not a portable name, as
// "-froot", a terminal type with controls) is refused at once: the client gets the reason, the
// conn is closed, and the error is ErrNotClassic or a *HandshakeError. After an I/O error (such as
// the deadline) the caller may Refuse ("login timed out") or Close.
func (s *ServerConn) ReadRequest() (*Request, error) {
	if s.phase != phaseNew {
		return nil, errors.New("classic: ReadRequest called twice")
	}
	req, rest, err := readRequest(s.conn)
	if err != nil {
		var he *HandshakeError
		switch {
		case errors.As(err, &he):
			_ = s.Refuse(he.Reason)
		case errors.Is(err, ErrNotClassic):
			_ = s.Refuse("not a classic rlogin client")
		}
		return nil, err
	}
	s.phase = phaseRequest
	s.req, s.rest = req, rest
	return req, nil
}

// Refuse sends the refusal (the byte 0x01, then reason and CR LF), waits briefly for the client to
// close, and closes the conn. reason is cut to 256 bytes of printable ASCII (other bytes become
// '?'); classic clients print it as is.
func (s *ServerConn) Refuse(reason string) error {
	if s.phase == phaseAnswered {
		_ = s.Close()
		return errors.New("classic: Refuse after the login was answered")
	}
	s.phase = phaseAnswered
	b := append([]byte{1}, cleanReason(reason)...)
	b = append(b, "\r\n"...)
	_ = s.conn.SetWriteDeadline(time.Now().Add(farewellTimeout))
	_, err := s.conn.Write(b)
	if err == nil {
		s.halfClose()
		_ = s.conn.SetReadDeadline(time.Now().Add(farewellTimeout))
		_, _ = io.Copy(io.Discard, io.LimitReader(s.conn, 1<<20))
	}
	_ = s.Close()
	if err != nil {
		return fmt.Errorf("classic: sending the refusal: %w", err)
	}
	return nil
}

// cleanReason makes reason safe for a client that prints it raw.
func cleanReason(reason string) string {
	b := []byte(reason)
	if len(b) > 256 {
		b = b[:256]
	}
	for i, c := range b {
		if c < ' ' || c >= 0x7f {
			b[i] = '?'
		}
	}
	return string(b)
}

// halfClose ends the conn's sending side, if it has one (TCP does).
func (s *ServerConn) halfClose() {
	if cw, ok := s.conn.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
}

// Close closes the conn. It may be called more than once.
func (s *ServerConn) Close() error {
	s.closeOnce.Do(func() { s.closeErr = s.conn.Close() })
	return s.closeErr
}

// Serve accepts the login (the byte 0) and runs the session: it asks for the window size
// (urgent 0x80, with the first output from WindowRequestDelay on), copies the terminal's output to the client, forwarding the terminal's flushes
// and flow-control changes as urgent data, and the client's input to the terminal, taking out the
// window-size messages (see InputFilter). The session ends when the program's output is over
// (the client then gets end of file), when the connection is lost (the program gets Hangup), or
// when ctx is cancelled (the client is told the service is stopping, the program gets Hangup, and
// its last output is still sent). In every case Serve waits for its goroutines and the program,
// closes the conn and returns the program's state; the error is nil after a normal end.
//
// Classic rlogin has no exit status: the client learns only that the connection closed.
func (s *ServerConn) Serve(ctx context.Context, t Terminal) (*os.ProcessState, error) {
	if s.phase != phaseRequest {
		_ = s.Close()
		t.Hangup()
		st, _ := t.Wait()
		return st, errors.New("classic: Serve needs a handshake that ReadRequest read and nobody answered")
	}
	s.phase = phaseAnswered
	if _, err := s.conn.Write([]byte{0}); err != nil {
		_ = s.Close()
		t.Hangup()
		st, _ := t.Wait()
		return st, fmt.Errorf("classic: sending the confirmation: %w", err)
	}
	if s.raw != nil {
		tuneServerSocket(s.raw)
	}
	ss := &serverSession{sc: s, t: t}
	return ss.run(ctx)
}

// serverSession is one running session: two pumps around the conn and the terminal.
type serverSession struct {
	sc *ServerConn
	t  Terminal

	windowKnown atomic.Bool // the client sent a window message: no more 0x80 bits
	hangupOnce  sync.Once

	// outMu orders the conn writes of the output pump against those of held output.
	outMu    sync.Mutex
	flushDue chan struct{} // guarded by outMu: non-nil while output is held; closed when released
	held     []byte        // guarded by outMu: the output read since input that flushes was written
	outOver  bool          // guarded by outMu: the output pump is done with the conn: nothing is held

	deadlineMu sync.Mutex // orders the input pump's hold deadline against the linger deadline
	lingering  bool       // guarded by deadlineMu: the server sent its last byte
	holding    bool       // guarded by deadlineMu: a hold deadline is set
}

type pump int

const (
	pumpOutput pump = iota // terminal -> conn, and the urgent data
	pumpInput              // conn -> terminal
)

type pumpResult struct {
	pump pump
	err  error
}

func (s *serverSession) run(ctx context.Context) (*os.ProcessState, error) {
	results := make(chan pumpResult, 2)
	go func() { results <- pumpResult{pumpOutput, s.pumpOutput()} }()
	go func() { results <- pumpResult{pumpInput, s.pumpInput()} }()

	var cause error
	ctxDone := ctx.Done()
	outputDone := false
	for running := 2; running > 0; {
		select {
		case <-ctxDone:
			ctxDone = nil
			cause = fmt.Errorf("classic: service stopping: %w", context.Cause(ctx))
			_ = s.sc.conn.SetWriteDeadline(time.Now().Add(farewellTimeout))
			_, _ = s.sc.conn.Write([]byte("\r\nrlogind: service stopping\r\n")) // best effort
			s.hangup()
		case r := <-results:
			running--
			switch r.pump {
			case pumpOutput:
				outputDone = true
				if r.err != nil && cause == nil {
					cause = r.err
				}
				// The output is over: end of file for the client, which then closes.
				s.deadlineMu.Lock()
				s.lingering = true
				s.sc.halfClose()
				_ = s.sc.conn.SetReadDeadline(time.Now().Add(farewellTimeout))
				s.deadlineMu.Unlock()
			case pumpInput:
				if !outputDone {
					// The client closed or the conn failed: hang up; the output pump drains the
					// terminal until the program is gone.
					if cause == nil {
						cause = fmt.Errorf("classic: connection lost: %w", orEOF(r.err))
					}
					s.hangup()
					_ = s.sc.Close()
				}
			}
		}
	}
	_ = s.sc.Close()
	state, err := s.t.Wait()
	if cause == nil && err != nil {
		cause = fmt.Errorf("classic: waiting for the program: %w", err)
	}
	return state, cause
}

func orEOF(err error) error {
	if err == nil {
		return io.EOF
	}
	return err
}

func (s *serverSession) hangup() { s.hangupOnce.Do(s.t.Hangup) }

// pumpOutput asks for the window size, then copies the terminal's output to the conn and turns
// its flush and flow-control packets into urgent data, until the output is over. If the conn
// fails it goes on reading (and dropping) the output until the end, so the program never blocks
// on a full terminal; the program gets Hangup then.
func (s *serverSession) pumpOutput() error {
	var connErr error
	fail := func(err error) {
		if connErr == nil {
			connErr = fmt.Errorf("classic: connection lost: %w", err)
			s.hangup()
			_ = s.sc.Close() // unblocks the input pump
		}
	}
	requestAt := time.Now().Add(s.sc.requestDelay)
	requested := false
	var pendingFlow byte // the last flow-control change held back before the request
	requestWindow := func() {
		if requested || connErr != nil || time.Now().Before(requestAt) {
			return
		}
		requested = true
		if err := s.sc.sendUrgent(ControlWindow | pendingFlow); err != nil {
			fail(err)
		}
	}
	if s.sc.requestDelay <= 0 {
		requestWindow()
	}
	buf := make([]byte, readChunk)
	for {
		n, st, err := s.t.ReadPacket(buf)
		if connErr == nil && n > 0 {
			if sent, full, werr := s.writeOutput(buf[:n]); werr != nil {
				fail(werr)
			} else if sent {
				requestWindow()
			} else if full != nil {
				<-full // released within flushWait (awaitFlush)
			}
		}
		if c := byte(st) & (ControlFlush | ControlNoStop | ControlDoStop); connErr == nil && c != 0 {
			switch {
			case !requested && time.Now().Before(requestAt):
				if f := c & (ControlNoStop | ControlDoStop); f != 0 {
					pendingFlow = f // sent with the request; a flush this early is dropped
				}
			default:
				if !s.windowKnown.Load() {
					c |= ControlWindow // as in.rlogind: the request stands until the client answers it
					requested = true
				}
				s.outMu.Lock()
				werr := s.sc.sendUrgent(c)
				s.outMu.Unlock()
				if werr != nil {
					fail(werr)
				}
			}
		}
		if over := err != nil || connErr != nil; over || byte(st)&ControlFlush != 0 {
			// The flush is reported (its urgent byte sent), or the output is over: the output
			// held for it follows.
			if werr := s.releaseHeld(over, connErr != nil); werr != nil {
				fail(werr)
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) && connErr == nil {
				return fmt.Errorf("classic: reading the terminal: %w", err)
			}
			return connErr
		}
	}
}

// writeOutput writes the terminal's output p to the conn, or holds it while a flush is due
// (sent reports which). When the output held reaches maxHeld, full is the channel closed once
// it is released: the caller waits for it before it reads more.
func (s *serverSession) writeOutput(p []byte) (sent bool, full <-chan struct{}, err error) {
	s.outMu.Lock()
	defer s.outMu.Unlock()
	if s.flushDue != nil {
		s.held = append(s.held, p...)
		if len(s.held) >= maxHeld {
			full = s.flushDue
		}
		return false, full, nil
	}
	_, err = s.sc.conn.Write(p)
	return true, nil, err
}

// expectFlush reports whether writing input p to the terminal makes it flush its output; if so,
// the output read from now on is held until the flush is reported, and the channel returned is
// closed then. The input pump calls it, and then awaitFlush: the hold always ends within
// flushWait.
func (s *serverSession) expectFlush(p []byte) <-chan struct{} {
	fp, ok := s.t.(interface{ FlushesOutput([]byte) bool })
	if !ok || !fp.FlushesOutput(p) {
		return nil
	}
	s.outMu.Lock()
	defer s.outMu.Unlock()
	if s.outOver {
		return nil
	}
	if s.flushDue == nil {
		s.flushDue = make(chan struct{})
	}
	return s.flushDue
}

// awaitFlush waits until the output held for a flush is released, at most flushWait; then it
// releases it itself, without a flush.
func (s *serverSession) awaitFlush(released <-chan struct{}) {
	if released == nil {
		return
	}
	t := time.NewTimer(flushWait)
	defer t.Stop()
	select {
	case <-released:
	case <-t.C:
		if err := s.releaseHeld(false, false); err != nil {
			_ = s.sc.Close() // the output pump's next write fails too, and ends the session
		}
	}
}

// releaseHeld ends the hold for a flush: it writes the output held to the conn, or drops it if
// drop (the conn failed). With over (the output pump is done), nothing is held again.
func (s *serverSession) releaseHeld(over, drop bool) error {
	s.outMu.Lock()
	defer s.outMu.Unlock()
	s.outOver = s.outOver || over
	if s.flushDue == nil {
		return nil
	}
	close(s.flushDue)
	held := s.held
	s.flushDue, s.held = nil, nil
	if drop || len(held) == 0 {
		return nil
	}
	_, err := s.sc.conn.Write(held)
	return err
}

// sendUrgent sends c as TCP urgent data, after the data written before it. Without a TCP socket
// it does nothing.
func (s *ServerConn) sendUrgent(c byte) error {
	if s.raw == nil {
		return nil
	}
	return sendUrgent(s.raw, c)
}

// pumpInput copies the client's input to the terminal and applies its window messages, until the
// client closes or the conn fails. A possible start of a window message at the end of a read is
// held for at most HoldTimeout, then written as input.
func (s *serverSession) pumpInput() error {
	buf := make([]byte, readChunk)
	var f InputFilter
	var out []byte
	feed := func(p []byte) {
		for len(p) > 0 {
			var win WindowSize
			var ok bool
			var n int
			out, win, ok, n = f.Filter(out[:0], p)
			p = p[n:]
			if len(out) > 0 {
				released := s.expectFlush(out)
				_, _ = s.t.Write(out) // input for a program that is gone is dropped
				s.awaitFlush(released)
			}
			if ok {
				s.windowKnown.Store(true)
				_ = s.t.Resize(win) // best effort, as a window change is
			}
		}
	}
	feed(s.sc.rest)
	s.sc.rest = nil
	for {
		s.setHold(f.Pending() > 0)
		n, err := s.sc.conn.Read(buf)
		feed(buf[:n])
		if err == nil {
			continue
		}
		if errors.Is(err, os.ErrDeadlineExceeded) && f.Pending() > 0 {
			s.deadlineMu.Lock()
			lingering := s.lingering
			s.deadlineMu.Unlock()
			if !lingering {
				out = f.Flush(out[:0])
				_, _ = s.t.Write(out)
				continue
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		return err
	}
}

// setHold sets or clears the hold deadline on the conn's reads, unless the server is lingering:
// then the linger deadline is in force and stays.
func (s *serverSession) setHold(hold bool) {
	s.deadlineMu.Lock()
	defer s.deadlineMu.Unlock()
	if s.lingering {
		return
	}
	switch {
	case hold:
		s.holding = true
		_ = s.sc.conn.SetReadDeadline(time.Now().Add(s.sc.holdTimeout))
	case s.holding:
		s.holding = false
		_ = s.sc.conn.SetReadDeadline(time.Time{})
	}
}
