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

// ServerConn is the server side of a session: ReadRequest, then Refuse or Serve, called in that
// order from one goroutine. Close may be called at any time.
type ServerConn struct {
	// Keepalive says when to probe a silent client, and when to give it up for dead (the session
	// then ends as when the connection is lost, and Serve's error wraps a *NoAnswerError). The
	// zero value probes after 15 seconds of silence and gives up after 45. Set it before Serve.
	Keepalive Keepalive

	// RunsCommands says that the caller runs a Request's Command (capability exec) in place of
	// a login shell. Without it, ReadRequest refuses a request that has one ("this server runs
	// no commands"), so that no caller serves a login shell to a client that asked for a
	// command. Set it before ReadRequest.
	RunsCommands bool

	// Detach makes the session resumable (capability resume): a lost connection detaches it
	// instead of ending it, and Attach continues it over a new one. The zero value resumes
	// nothing. Set it before Serve.
	Detach Detach

	conn         net.Conn
	br           *bufio.Reader
	fr           frameReader
	capabilities []string // what this server supports: flow2, keepalive, exec, keyproof, flushkeys (tests change it)
	phase        serverPhase
	req          *Request
	challenged   bool // Challenge was called
	sessMu       sync.Mutex
	sess         *serverSession // the session Serve runs, for Attach
	id           SessionID
	idOnce       sync.Once

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
	s := &ServerConn{conn: conn, br: bufio.NewReaderSize(conn, 1<<10), capabilities: []string{capFlow2, capKeepalive, capExec, capKeyProof, capResume, capAttach, capFlushKeys},
		hangupGrace: hangupGrace, killGrace: killGrace}
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
	if err == nil {
		s.phase = phaseRequest
		s.req = m.req
		if slices.Contains(m.req.Capabilities, capExec) && slices.Contains(s.capabilities, capExec) {
			err = s.readCommand() // it follows the request at once
		}
		if err == nil && slices.Contains(m.req.Capabilities, capAttach) && slices.Contains(s.capabilities, capAttach) {
			err = s.readResumeRequest() // so does RESUME or LIST
		}
		if err == nil && s.req.Command != nil && !s.RunsCommands {
			_ = s.Refuse(reasonNoCommands)
			return nil, errors.New("session: the client asked for a command, which this server does not run; refused")
		}
	}
	s.fr.limit = 0
	if err != nil {
		if errors.Is(err, ErrProtocol) {
			_ = s.Refuse(err.Error())
		}
		return nil, fmt.Errorf("session: reading the login request: %w", err)
	}
	return s.req, nil
}

// Refuse sends a refusal with reason (which the client shows) and closes the conn. Before the
// client's version was read it uses the version refusal line, which every version understands.
func (s *ServerConn) Refuse(reason string) error {
	var b []byte
	switch s.phase {
	case phaseNew:
		b = appendVersionRefusal(nil, reason)
	case phaseVersion, phaseRequest:
		b, _ = appendMessage(s.answerPrefix(), &message{typ: frameRefuse, text: cleanReason(reason)})
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
	halfClose(s.conn)
	if drain {
		_, _ = io.Copy(io.Discard, s.br)
	}
}

// halfClose half-closes conn, if it can, and gives its reader farewellTimeout to see the client
// close.
func halfClose(conn net.Conn) {
	if cw, ok := conn.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
	_ = conn.SetReadDeadline(time.Now().Add(farewellTimeout))
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
// goroutines, closes the terminal and the conn, and returns the shell's state (nil for a
// StatusWaiter, whose WaitStatus tells). The error is nil after a normal end.
//
// With Detach.Timeout set and a client that offers resume, a lost connection (or the
// keepalive's verdict) detaches the session instead of ending it: Serve goes on until the
// shell's end is delivered over a conn that Attach handed it, or until Detach.Timeout passes
// with none (the shell gets Hangup then, as for a lost connection), or ctx is cancelled. A
// request that asks to resume or list (Request.Resume, Request.List) cannot be served: Serve
// refuses it.
func (s *ServerConn) Serve(ctx context.Context, t Terminal) (*os.ProcessState, error) {
	if s.phase != phaseRequest {
		_ = s.Close()
		return s.abandon(t), errors.New("session: Serve needs a login request that ReadRequest read and nobody answered")
	}
	if s.req.Resume != nil || s.req.List {
		_ = s.Refuse(reasonNoSession)
		return s.abandon(t), errors.New("session: Serve of a RESUME or LIST request (see Attach and SendSessions)")
	}
	s.phase = phaseAnswered
	accepted := s.accept(s.req.Capabilities)
	tw, _ := t.(TryWriter)
	fp, _ := t.(FlushPredictor)
	ss := &serverSession{sc: s, cur: s, t: t, tw: tw, fp: fp, hungUp: make(chan struct{}), stateC: make(chan struct{}, 1), flow2: slices.Contains(accepted, capFlow2)}
	ss.ka.on = slices.Contains(accepted, capKeepalive)
	ss.keys.fk, _ = t.(FlushKeyer)
	if om, ok := t.(OutputMarker); ok {
		// Before readTerminal starts: the terminal's count of output read may include reads
		// made before Serve, which outRead does not count.
		if read, _, err := om.OutputMark(); err == nil {
			ss.om, ss.omBase = om, read
		}
	}
	ss.readCond.L = &ss.mu
	ss.sendCond.L = &ss.mu
	ss.writeCond.L = &ss.mu
	ss.errCond.L = &ss.mu
	ss.attachCond.L = &ss.mu
	b, _ := appendMessage(s.answerPrefix(), &message{typ: frameAccept, caps: accepted})
	b = ss.startResume(b, accepted)
	if _, err := s.conn.Write(b); err != nil {
		_ = s.Close()
		return s.abandon(t), fmt.Errorf("session: sending the accept: %w", err)
	}
	s.sessMu.Lock()
	s.sess = ss
	s.sessMu.Unlock()
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
		if c == capAttach || c == capResume && !s.acceptsResume() {
			continue // attach only in Attach's answer
		}
		if slices.Contains(s.capabilities, c) {
			caps = append(caps, c)
		}
	}
	return caps
}
