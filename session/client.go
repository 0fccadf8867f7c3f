package session

import (
	"bufio"
	"bytes"
	"context"
	"crypto"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/rlogin-go/rlogin/internal/connctx"
)

// Client is the client side of a session, shaped like os/exec.Cmd: set Stdin (or call StdinPipe)
// and Stdout, then Start and Wait, or Run.
//
// Two goroutines move the output: one reads frames from the conn into a queue, one writes the
// queue to Stdout in big chunks and grants the server credit. A FLUSH from the server drops what
// is queued (but the newest bytes the server says to keep). When Stdout is a TryWriter and nothing
// is queued, the reading goroutine writes what Stdout takes at once itself. Input leaves at once:
// each StdinPipe Write is one frame in one conn Write.
type Client struct {
	Request // what to ask for

	// Stdin, if set, is copied to the server by a goroutine, one frame per Read; its EOF is the
	// end of input. If Stdin is an *os.File, Wait does not wait for that goroutine (it may stay
	// blocked in Read); otherwise Wait waits for Read to return, as os/exec does.
	Stdin io.Reader

	// Stdout receives the remote output, in large chunks; nil discards it. If Stdout is also a
	// TryWriter, output goes through TryWrite first, from the goroutine that reads the conn, and
	// only what it does not take waits for a Write from the second goroutine. If it is a
	// StoppableWriter, a chunk under way stops when the output is held after an interrupt.
	Stdout io.Writer

	// Stderr receives a command's error output (a Request with a Command without a terminal);
	// nil discards it. It is written from the goroutine that reads the conn, so a Stderr that
	// blocks holds up the session.
	Stderr io.Writer

	// OnFlush, if set, is called when the remote pty discarded output (after the client dropped
	// its queue), so a terminal client can also discard the local terminal's output queue
	// (tcflush). It is never called during a Stdout Write.
	OnFlush func()

	// Interrupts are the input bytes that may make the remote terminal discard its output: the
	// user's interrupt, quit and suspend characters (usually ^C, ^\ and ^Z). After input that
	// holds one, the client writes no output to Stdout until the server has said whether the
	// terminal discarded output, and drops what it discarded: an interrupted flood stops on the
	// screen at once, whatever the round-trip time, and output that was not discarded (a
	// program that reads ^C as a key) is only delayed by a round trip. It needs a server that
	// supports it (docs/protocol.md, section 7.3); with another, output flows as without it.
	Interrupts []byte

	// OnFlushKey, if set, discards the local terminal's output queue (tcflush), as OnFlush
	// does, but at the keystroke: the client then offers capability flushkeys, with which the
	// server announces the characters that, typed now, make the remote terminal discard its
	// output (its interrupt, quit and suspend characters while its signals are on), and input
	// that holds one calls OnFlushKey before it leaves, and holds the output as Interrupts do
	// (docs/protocol.md, section 7.5). The output already in the local terminal then was
	// written before the keystroke, and is what the remote terminal discards; a program that
	// reads ^C as a key (signals off) has nothing announced and loses nothing. But a program
	// may turn signals off after its last output: the server looks at the settings again 25 ms
	// after its last output and at each frame from the client, and a ^C typed before that news
	// arrives discards output that the remote terminal keeps (docs/protocol.md, section 7.5).
	// With a Stdout that is a StoppableWriter, OnFlushKey is never called during one of its
	// writes (the write under way stops first), unless 16 SYNCs are unanswered already: the
	// output is not held then, and the write goes on.
	OnFlushKey func()

	// Keepalive says when to probe a silent server, and when to give it up for dead (Wait then
	// returns a *NoAnswerError). The zero value probes after 15 seconds of silence and gives up
	// after 45. It needs a server that supports it; with another, only TCP notices a dead path.
	Keepalive Keepalive

	// Signer, if set, is the key the client logs in with (an ed25519 key, or a crypto.Signer
	// such as an agent's whose public half is one): the client then offers capability keyproof
	// and signs a server's CHALLENGE with it, so that a server whose privileged part did not see
	// the TLS handshake can check that the client holds the key. Nil offers nothing.
	Signer crypto.Signer

	// Reconnect, if set, makes the session survive a lost connection (capability resume, when
	// the server accepts it): when the connection fails (an I/O error, or the keepalive's
	// verdict), the Client calls Reconnect instead of ending the session, from one of its
	// goroutines, with the attempt number (from 1) and the cause. Reconnect waits as it likes
	// (a backoff), tells the user, and returns a new conn to the same server, authenticated as
	// the first was (TLS, host key checked), or an error to give up: Wait then returns the first
	// loss. The Client sends its login and a RESUME on that conn, and the session goes on; an I/O
	// error during that calls Reconnect again. ctx ends when Close is called and when the
	// server's detach timeout has passed since the loss (then the session cannot be resumed any
	// more). A REFUSE (the session is gone) ends the session: Wait returns the *RefusedError.
	Reconnect func(ctx context.Context, attempt int, cause error) (net.Conn, error)

	// Resumed, if set, is called after each resume, from the goroutine that reads the conn,
	// before any output of the new conn is read, with the count of output bytes that the server
	// dropped while detached (beyond its buffer) and the client never got. The window size (of
	// the last Resize) went with the resume.
	Resumed func(skipped uint64)

	conn         net.Conn
	capabilities []string // what Start offers: flow2 (tests change it)
	accepted     []string // what the server accepted
	flow2        bool     // capability flow2 was accepted: window growth and SYNC (under mu once running: a resume sets it)
	keepalive    bool     // capability keepalive was accepted: PING and PONG (likewise)
	flushKeysOn  bool     // capability flushkeys was accepted: FLUSHKEYS (likewise)
	alive        *prober  // probes a silent server; nil if off

	wmu  sync.Mutex // serializes frame writes, so frames never interleave
	wbuf []byte     // frame being written; under wmu

	mu      sync.Mutex
	outCond sync.Cond // writeOutput waits for output, a flush or the end
	errCond sync.Cond // writeErrorOutput waits for error output or the end
	inCond  sync.Cond // input writers wait for credit or the end
	idle    sync.Cond // writeInput waits for the Stdout write under way to stop (writing false)
	started bool      // Start was called
	running bool      // the server accepted; pumps run
	waited  bool      // Wait was called
	closed  bool      // Close was called
	pipe    *stdinPipe

	q        []byte // output received, not yet written; q[qoff:] is pending
	eq       []byte // error output (STDERR) received, not yet written to Stderr
	qoff     int
	flushed  bool // a FLUSH arrived that OnFlush has not yet been told about
	writing  bool // a goroutine is writing Stdout (or calling OnFlush)
	chunking bool // writeOutput is writing a chunk taken from the queue (client_output.go)
	restKeep int  // of that chunk's unwritten rest, what the FLUSHes since it was taken keep; MaxInt: no FLUSH
	unacked  int  // output bytes received, not yet credited
	consumed int  // output bytes written or dropped, not yet credited
	credit   int  // input bytes we may still send
	readDone bool // readOutput ended: no more output, credit or frames
	tune     windowTuner

	flushKeys []byte // the characters that the last FLUSHKEYS announced (client_flushkeys.go)

	ended    bool  // the session's result is known
	result   error // what Wait returns
	stdinErr error // Stdin's read error, returned if the session itself succeeded

	res      clientResume  // capability resume (client_resume.go)
	sessions []SessionInfo // a LIST's answer

	tryOut  TryWriter          // Stdout, if it is one (Start sees): asserted once, not per frame (see serverSession.tw)
	tryStop StoppableTryWriter // likewise

	pumps     chan error // results of readOutput, writeOutput and writeErrorOutput
	stdinDone chan error // result of copyStdin
	closeOnce sync.Once
	closeErr  error
}

// NewClient returns a client for a session over conn. It never dials; the Client owns conn and
// closes it when the session ends, Start fails, or Close is called.
func NewClient(conn net.Conn, req Request) *Client {
	c := &Client{Request: req, conn: conn, pumps: make(chan error, 3), stdinDone: make(chan error, 1),
		capabilities: []string{capFlow2, capKeepalive}}
	c.tune.window = window
	c.res.ctx, c.res.cancel = context.WithCancel(context.Background())
	c.res.window = req.Window
	c.outCond.L = &c.mu
	c.errCond.L = &c.mu
	c.inCond.L = &c.mu
	c.idle.L = &c.mu
	return c
}

// StdinPipe returns a pipe to the remote shell's input, to use instead of Stdin; call it before
// Start. Each Write sends its bytes at once as one DATA frame (split only when it exceeds the frame
// size or the credit the server granted; it blocks while there is none). Close sends the end of
// input. Writes before Start fail.
func (c *Client) StdinPipe() (io.WriteCloser, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.Stdin != nil:
		return nil, errors.New("session: Stdin already set")
	case c.started:
		return nil, errors.New("session: StdinPipe after Start")
	case c.pipe != nil:
		return nil, errors.New("session: StdinPipe already called")
	}
	c.pipe = &stdinPipe{c: c}
	return c.pipe, nil
}

// Start sends the protocol version and the login request, and reads the answer. A refusal is a
// *RefusedError; so is a server's refusal of this protocol version, with its line as the Reason.
// On failure Start closes the conn.
//
// ctx bounds the login: if it is done before the answer arrives, Start closes the conn and
// returns an error that wraps context.Cause(ctx). Once Start has returned, ctx has no effect:
// the session runs until Wait or Close ends it.
func (c *Client) Start(ctx context.Context) error {
	c.mu.Lock()
	switch {
	case c.started:
		c.mu.Unlock()
		return errors.New("session: already started")
	case c.closed:
		c.mu.Unlock()
		return fmt.Errorf("session: %w", net.ErrClosed)
	}
	c.started = true
	c.mu.Unlock()

	br, err := c.loginUntil(ctx, c.conn, c.Request)
	if err != nil {
		_ = c.closeConn()
		return err
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return fmt.Errorf("session: %w", net.ErrClosed)
	}
	c.running = true
	c.tryOut, _ = c.Stdout.(TryWriter)
	c.tryStop, _ = c.Stdout.(StoppableTryWriter)
	c.restKeep = math.MaxInt // no FLUSH yet: nothing stops a write (stopWritingLocked)
	c.credit = window
	c.flow2 = slices.Contains(c.accepted, capFlow2)
	c.keepalive = slices.Contains(c.accepted, capKeepalive)
	c.flushKeysOn = slices.Contains(c.accepted, capFlushKeys)
	if c.keepalive {
		c.alive = newProber(c.Keepalive, c.sendPing, c.noAnswer) // under mu: Close reads it
	}
	eof := c.pipe != nil && c.pipe.closed
	c.tune.probeDue = c.flow2 // the first round-trip time
	c.mu.Unlock()
	if c.flow2 {
		_ = c.writeProbe() // a failure shows in Wait
	}
	if eof {
		_ = c.writeFrame(frameEOF, nil) // a failure shows in Wait
	}

	fr := &frameReader{r: br}
	go func() { c.pumps <- c.readOutput(fr) }()
	go func() { c.pumps <- c.writeOutput() }()
	if c.pipedCommand() {
		go func() { c.pumps <- c.writeErrorOutput() }()
	} else {
		c.pumps <- nil // no STDERR comes: no writer for it
	}
	if c.Stdin != nil {
		go func() { c.stdinDone <- c.copyStdin() }()
	}
	return nil
}

// loginUntil is login, cut short when ctx is done.
func (c *Client) loginUntil(ctx context.Context, conn net.Conn, req Request) (*bufio.Reader, error) {
	var br *bufio.Reader
	err := connctx.Do(ctx, conn, func() (err error) {
		br, err = c.login(conn, req)
		return err
	})
	if err != nil && err == context.Cause(ctx) {
		return nil, fmt.Errorf("session: login: %w", err)
	}
	return br, err
}

// login sends the version and req on conn, and reads the answer.
func (c *Client) login(conn net.Conn, req Request) (*bufio.Reader, error) {
	req.Env = LocaleEnv(req.Env)
	if checkTerm(req.Term) != nil {
		req.Term = "dumb" // a terminal type that cannot be sent must not fail the login
	}
	req.Capabilities = c.offers(&req)
	if req.Resume != nil || req.List {
		req.Command = nil // the session's, or none
	}
	if c.offersKeyProof() {
		req.Capabilities = append(slices.Clip(req.Capabilities), capKeyProof)
	}
	if c.offersFlushKeys(&req) {
		req.Capabilities = append(slices.Clip(req.Capabilities), capFlushKeys)
	}
	b, err := appendMessage([]byte{version}, &message{typ: frameLogin, req: &req})
	switch {
	case err != nil:
	case req.Resume != nil:
		b, err = appendResume(b, req.Resume) // at once: the server waits for it
	case req.List:
		b = appendHeader(b, frameList, 0)
	case req.Command != nil:
		b, err = appendCommand(b, req.Command) // at once: the server waits for it
	}
	if err != nil {
		return nil, fmt.Errorf("session: bad login request: %w", err)
	}
	if _, err := conn.Write(b); err != nil {
		return nil, fmt.Errorf("session: sending login request: %w", err)
	}

	br := bufio.NewReaderSize(conn, maxDataFrame+headerLen)
	v, err := br.ReadByte()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("session: server closed the connection without answering")
		}
		return nil, fmt.Errorf("session: reading the server's answer: %w", err)
	}
	switch v {
	case version:
	case 0:
		text, err := readVersionRefusal(br)
		if err != nil {
			return nil, fmt.Errorf("session: reading the server's refusal: %w", err)
		}
		return nil, &RefusedError{Reason: text}
	default:
		return nil, fmt.Errorf("session: server answered protocol version %d to version %d (is it a session server?)", v, version)
	}
	fr := &frameReader{r: br}
	answers := isAnswerFrame
	if req.List {
		answers = func(t frameType) bool { return t == frameSessions || isAnswerFrame(t) }
	}
	allowed := answers
	if slices.Contains(req.Capabilities, capKeyProof) {
		allowed = func(t frameType) bool { return t == frameChallenge || answers(t) }
	}
	m, err := fr.readMessage(allowed)
	if err == nil && m.typ == frameChallenge {
		if err := c.prove(conn, m.data); err != nil {
			return nil, err
		}
		m, err = fr.readMessage(answers) // at most one CHALLENGE
	}
	if err != nil {
		return nil, fmt.Errorf("session: reading the server's answer: %w", err)
	}
	switch m.typ {
	case frameRefuse:
		return nil, &RefusedError{Reason: m.text}
	case frameSessions:
		c.sessions = m.sessions
		return br, nil
	}
	for _, name := range m.caps {
		if !slices.Contains(req.Capabilities, name) {
			return nil, fmt.Errorf("session: %w: server accepted capability %s, which was not offered", ErrProtocol, quote(name))
		}
	}
	c.accepted = m.caps
	if req.Command != nil && !slices.Contains(m.caps, capExec) {
		return nil, ErrCommandsUnsupported
	}
	if err := c.readResumeAnswer(fr, &req); err != nil {
		return nil, err
	}
	return br, nil
}

// Resize tells the server the window size changed.
func (c *Client) Resize(w WindowSize) error {
	if err := c.checkRunning(); err != nil {
		return err
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.mu.Lock()
	c.res.window = w // sent again after a resume
	conn, resumable := c.conn, c.resumableLocked()
	c.mu.Unlock()
	c.wbuf = appendWindow(c.wbuf[:0], w)
	if _, err := conn.Write(c.wbuf); err != nil && !resumable {
		return fmt.Errorf("session: sending window size: %w", err)
	}
	return nil
}

func (c *Client) checkRunning() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.running {
		return errors.New("session: not started")
	}
	return nil
}

// Wait waits for the session to end and for the remote output to be written to Stdout. It returns
// nil when the shell exited with status 0, an *ExitError for another status or a signal, a
// *ClosedError when the server ended the session for another reason, and an error wrapping the
// cause when the connection was lost ("session: connection lost: ...") or Close was called
// (net.ErrClosed). With Reconnect, a lost connection is the end only when no resume succeeded
// (Wait returns the first loss), or the server refused the resume (a *RefusedError: the session
// is gone). Wait closes the conn.
func (c *Client) Wait() error {
	c.mu.Lock()
	switch {
	case !c.running:
		c.mu.Unlock()
		return errors.New("session: not started")
	case c.waited:
		c.mu.Unlock()
		return errors.New("session: Wait was already called")
	}
	c.waited = true
	c.mu.Unlock()

	for range cap(c.pumps) {
		<-c.pumps
	}
	_ = c.closeConn()
	c.res.cancel()
	c.mu.Lock()
	alive := c.alive
	c.mu.Unlock()
	alive.stop()
	if _, isFile := c.Stdin.(*os.File); c.Stdin != nil && !isFile {
		<-c.stdinDone
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.result == nil {
		return c.stdinErr
	}
	return c.result
}

// Run starts the session with Start(ctx) and waits for it to end. If ctx is done first, Run
// closes the session (see Close).
func (c *Client) Run(ctx context.Context) error {
	if err := c.Start(ctx); err != nil {
		return err
	}
	closed := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(closed)
		_ = c.Close()
	})
	err := c.Wait()
	if !stop() {
		<-closed // the goroutine that closed the session is done too
	}
	return err
}

// Close ends the session: queued output is dropped, the conn is closed, and Wait returns (an error
// wrapping net.ErrClosed, unless the session had already ended). Close may be called at any time,
// also during Start, and more than once.
func (c *Client) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	c.endLocked(fmt.Errorf("session: %w", net.ErrClosed))
	c.cutWriteLocked()
	alive := c.alive
	c.mu.Unlock()
	c.res.cancel() // a Reconnect under way gives up
	err := c.closeConn()
	alive.stop() // after the close, which ends a PING's Write that the path holds
	return err
}

func (c *Client) closeConn() error {
	c.mu.Lock()
	c.res.connDone = true // no conn replaces this one (see resume)
	conn := c.conn
	c.mu.Unlock()
	c.closeOnce.Do(func() { c.closeErr = conn.Close() })
	return c.closeErr
}

// endLocked records how the session ended, if that is not known yet, and wakes every waiter.
func (c *Client) endLocked(result error) {
	if !c.ended {
		c.ended = true
		c.result = result
	}
	c.outCond.Broadcast()
	c.errCond.Broadcast()
	c.inCond.Broadcast()
	c.idle.Broadcast()
}

func (c *Client) end(result error) {
	c.mu.Lock()
	c.endLocked(result)
	c.mu.Unlock()
}

// writeFrame sends one frame with a single conn Write.
func (c *Client) writeFrame(typ frameType, p []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.mu.Lock()
	conn := c.conn
	if typ == frameEOF {
		c.res.eofSent = true // sent again after a resume
	}
	c.mu.Unlock()
	c.wbuf = appendFrame(c.wbuf[:0], typ, p)
	_, err := conn.Write(c.wbuf)
	return err
}

// readOutput reads the server's frames until the session ends: output goes to the queue, a FLUSH
// empties it, CREDIT lets input flow, EXIT and CLOSE end the session. On a broken connection or
// protocol it closes the conn, and the server hangs up the shell.
func (c *Client) readOutput(fr *frameReader) error {
	defer func() {
		c.mu.Lock()
		c.readDone = true
		c.outCond.Broadcast()
		c.errCond.Broadcast()
		c.inCond.Broadcast()
		c.idle.Broadcast()
		c.mu.Unlock()
	}()
	allowed := isServerFrame
	if c.flow2 {
		allowed = isServerFrameFlow2
	}
	if c.keepalive {
		allowed = withKeepalive(allowed)
	}
	if c.flushKeysOn {
		allowed = withFlushKeys(allowed)
	}
	if c.pipedCommand() {
		allowed = withStderr(allowed)
	}
	for {
		m, err := fr.readMessage(allowed)
		if err == nil {
			c.alive.heard()
			var last bool
			if last, err = c.handleOutput(&m); last {
				_ = c.closeConn() // after the last frame the server waits for this close
				return nil
			}
		}
		if err != nil && !errors.Is(err, ErrProtocol) && c.mayResume() {
			var next *frameReader
			if next, err = c.resume(err); err == nil {
				fr = next
				continue
			}
		}
		if err != nil {
			var refused *RefusedError
			var noAnswer *NoAnswerError
			switch {
			case errors.As(err, &refused), errors.As(err, &noAnswer), errors.Is(err, ErrResumeUnsupported):
			case errors.Is(err, ErrProtocol):
				err = fmt.Errorf("session: %w", err)
			default:
				err = fmt.Errorf("session: connection lost: %w", err)
			}
			c.end(err)
			_ = c.closeConn()
			return err
		}
	}
}

// handleOutput acts on one frame from the server; last reports EXIT or CLOSE.
func (c *Client) handleOutput(m *message) (last bool, err error) {
	switch m.typ {
	case frameData:
		return false, c.queueOutput(m.data)
	case frameStderr:
		return false, c.queueErrorOutput(m.data)
	case frameFlush:
		c.mu.Lock()
		queued := len(c.q) - c.qoff
		drop := max(0, queued-int(m.keep))
		c.consumed += drop
		c.qoff += drop
		if c.qoff == len(c.q) {
			c.q, c.qoff = c.q[:0], 0
		}
		c.flushChunkLocked(queued, int(m.keep)) // the chunk under way stops, and its rest is dropped too
		// OnFlush discards the local terminal's output queue too, unless part of what the server
		// asked to keep was written already.
		if int(m.keep) <= queued {
			c.flushed = true
			c.outCond.Signal()
		}
		n := c.takeCreditLocked()
		c.mu.Unlock()
		c.sendCredit(n)
	case frameCredit:
		c.mu.Lock()
		defer c.mu.Unlock()
		if int64(m.credit) > int64(window-c.credit) {
			return false, protocolErrorf("server granted more credit than input was sent")
		}
		c.credit += int(m.credit)
		c.res.inCredited(int(m.credit))
		c.inCond.Broadcast()
	case frameSynced:
		c.mu.Lock()
		defer c.mu.Unlock()
		held, ok := c.tune.synced(time.Now())
		if !ok {
			return false, protocolErrorf("SYNCED without a SYNC")
		}
		if held && c.tune.holds == 0 {
			c.outCond.Signal() // writeOutput may write the held output now
		}
	case frameFlushKeys:
		c.mu.Lock()
		c.flushKeys = announcedKeys(m.data)
		c.mu.Unlock()
	case framePing:
		c.answerPing(m.cookie)
	case framePong:
		return false, c.alive.pong(m.cookie)
	case frameExit:
		c.end(waitResult(m.exit))
		return true, nil
	case frameClose:
		c.end(&ClosedError{Reason: m.text})
		return true, nil
	}
	return false, nil
}

// queueOutput appends DATA to the queue for writeOutput. When nothing is queued or being written
// and Stdout can write without waiting (a TryWrite method, as a terminal reopened non-blocking
// has), it first writes what Stdout takes at once: output that a terminal keeps up with goes
// out without a hop to writeOutput, and readOutput never waits on a slow Stdout (it must go on
// reading FLUSH and CREDIT frames).
func (c *Client) queueOutput(p []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.unacked+len(p) > c.tune.window {
		return protocolErrorf("server sent more than the credit window of %d bytes", c.tune.window)
	}
	c.unacked += len(p)
	c.res.outReceived += uint64(len(p))
	if c.closed {
		c.consumed += len(p)
		return nil
	}
	if tw := c.tryOut; tw != nil && !c.writing && !c.flushed && c.qoff == len(c.q) && c.tune.holds == 0 {
		c.writing = true
		c.mu.Unlock()
		n, err := c.tryWrite(tw, p)
		c.mu.Lock()
		c.writing = false
		c.idle.Broadcast()
		if err != nil {
			return c.outputFailedLocked(err)
		}
		p = p[n:]
		c.consumed += n
		if k := c.takeCreditLocked(); k > 0 {
			c.mu.Unlock()
			c.sendCredit(k)
			c.mu.Lock()
		}
		if len(p) == 0 {
			return nil
		}
	}
	if c.qoff > 0 && len(c.q)+len(p) > cap(c.q) { // reuse the written part instead of growing
		c.q = c.q[:copy(c.q, c.q[c.qoff:])]
		c.qoff = 0
	}
	c.q = append(c.q, p...)
	c.outCond.Signal()
	return nil
}

// writeOutput writes the queue to Stdout, everything queued in one Write (up to maxDataFrame
// bytes), and grants credit for what it wrote. After the end it drains the queue, unless Close
// was called.
func (c *Client) writeOutput() error {
	out := c.stdout()
	buf := make([]byte, maxDataFrame)
	for {
		c.mu.Lock()
		for (c.writing || (c.qoff == len(c.q) || c.heldLocked()) && !c.flushed && !c.readDone) && !c.closed {
			c.outCond.Wait()
		}
		if c.closed {
			c.mu.Unlock()
			return nil
		}
		flushed := c.flushed
		c.flushed = false
		n := 0
		if !c.heldLocked() {
			n = copy(buf[:c.writeChunkLocked()], c.q[c.qoff:])
			c.qoff += n
			c.chunking, c.restKeep = n > 0, math.MaxInt
		}
		if c.qoff == len(c.q) {
			c.q, c.qoff = c.q[:0], 0
			if cap(c.q) > maxIdleQueue {
				c.q = nil // a grown window's or a hold's worth: not kept once written
			}
		}
		c.writing = true
		c.mu.Unlock()

		if n == 0 && !flushed { // readDone, and the queue is empty
			return nil
		}
		if flushed && c.OnFlush != nil {
			c.OnFlush()
		}
		var err error
		written := 0
		if n > 0 {
			written, err = c.writeChunk(out, buf[:n])
		}
		c.mu.Lock()
		c.writing = false
		c.idle.Broadcast()
		if err != nil {
			c.chunking = false
			err = c.outputFailedLocked(err)
			c.mu.Unlock()
			_ = c.closeConn()
			return err
		}
		c.consumed += written
		if written < n { // stopped by a hold or a flush: the rest waits for the answer
			c.putBackLocked(buf[written:n])
		}
		c.chunking, c.restKeep = false, math.MaxInt
		k := c.takeCreditLocked()
		c.mu.Unlock()
		c.sendCredit(k)
	}
}

// holdChunk is the largest Stdout Write while an interrupt may hold the output across a long
// round trip (holdChunkRTT or more), unless Stdout is a StoppableWriter (whose write stops when the
// hold begins): a Write under way when the user types the interrupt character still reaches
// the terminal, so it is no bigger than the output a flush may let through (docs/protocol.md,
// section 7.3). Over a short round trip the flush comes before much more is written anyway,
// and a flood a fast link brings leaves in fewer, bigger Writes.
const (
	holdChunk    = 4 << 10
	holdChunkRTT = 10 * time.Millisecond
)

// writeChunkLocked is the most writeOutput writes at once.
func (c *Client) writeChunkLocked() int {
	if _, stops := c.Stdout.(StoppableWriter); !stops && c.flow2 && len(c.Interrupts) > 0 && c.tune.minRTT >= holdChunkRTT {
		return holdChunk
	}
	return maxDataFrame
}

// heldLocked reports whether output waits for the answer to a SYNC after an interrupt.
func (c *Client) heldLocked() bool { return c.tune.holds > 0 && !c.readDone }

// stdout is where the output goes.
func (c *Client) stdout() io.Writer {
	if c.Stdout == nil {
		return io.Discard
	}
	return c.Stdout
}

// outputFailedLocked ends the session after a failed Stdout Write and returns the error to report;
// the caller closes the conn once it has released c.mu.
func (c *Client) outputFailedLocked(err error) error {
	err = fmt.Errorf("session: writing output: %w", err)
	c.endLocked(err)
	return err
}

// takeCreditLocked returns the credit to grant now (0 until a batch is due) and counts it as
// granted.
func (c *Client) takeCreditLocked() int {
	if c.consumed < c.tune.batch() || c.readDone {
		return 0
	}
	n := c.consumed
	c.consumed = 0
	c.unacked -= n
	c.res.creditGen = c.res.gen
	if c.flow2 {
		n += c.tune.adjust(n, len(c.q)-c.qoff, time.Now())
	}
	return n
}

func (c *Client) sendCredit(n int) {
	if n == 0 {
		return
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.mu.Lock()
	conn, stale := c.conn, c.res.creditGen != c.res.gen
	var b []byte
	if !stale && c.res.on {
		// The server keeps its output until it hears that it was received: credit says
		// nothing of that once it may be granted in advance (docs/protocol.md, section 6.4).
		// Before the credit, so that the server's tail is trimmed before it sends more.
		c.res.ackSent = c.res.outReceived
		b = appendReceived(c.wbuf[:0], c.res.outReceived)
	}
	c.mu.Unlock()
	if stale {
		return // for output of a conn given up: the resume started the count afresh
	}
	if b == nil {
		b = c.wbuf[:0]
	}
	c.appendProbe(appendCredit(b, n)) // a probe rides along when one is due
	_, _ = conn.Write(c.wbuf)         // a broken conn shows in readOutput
}

// sendInput sends p as DATA frames, as credit allows.
func (c *Client) sendInput(p []byte, pipe *stdinPipe) (int, error) {
	sent := 0
	for len(p) > 0 {
		c.mu.Lock()
		for c.running && c.credit <= 0 && !c.readDone && !c.closed && !(pipe != nil && pipe.closed) {
			c.inCond.Wait()
		}
		var err error
		switch {
		case pipe != nil && pipe.closed:
			err = fmt.Errorf("session: write to closed stdin: %w", os.ErrClosed)
		case c.readDone || c.closed:
			err = fmt.Errorf("session: write to stdin after the session ended: %w", io.ErrClosedPipe)
		case !c.running:
			err = errors.New("session: write to stdin before Start")
		}
		n := min(len(p), max(c.credit, 0), maxDataFrame)
		c.credit -= n
		gen := c.res.gen
		// After an interrupt, hold the output until the server says what the terminal did;
		// after a character the server announced, discard the local terminal's output too.
		flushKey := err == nil && c.flushKeysOn && c.OnFlushKey != nil && containsAnyByte(p[:n], c.flushKeys)
		hold := err == nil && c.flow2 && (flushKey || containsAnyByte(p[:n], c.Interrupts))
		c.mu.Unlock()
		if err != nil {
			return sent, err
		}
		if err := c.writeInput(p[:n], hold, flushKey, gen); err != nil {
			return sent, fmt.Errorf("session: sending input: %w", err)
		}
		sent += n
		p = p[n:]
	}
	return sent, nil
}

// writeInput sends p as a DATA frame, followed by a SYNC that holds the output if hold is set
// (and another SYNC may be sent), in one conn Write; with flushKey, the local terminal's output
// queue is discarded first (OnFlushKey), once the hold has stopped the write under way.
func (c *Client) writeInput(p []byte, hold, flushKey bool, gen int) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.mu.Lock()
	conn, resumable := c.conn, c.resumableLocked()
	if gen != c.res.gen {
		c.credit -= len(p) // its credit was the conn's that was given up
	}
	c.res.keepInput(p)
	c.mu.Unlock()
	c.wbuf = appendFrame(c.wbuf[:0], frameData, p)
	if hold || flushKey {
		c.mu.Lock()
		if hold = hold && c.tune.canSync(); hold {
			c.tune.syncSent(true, time.Now()) // the output is held from here on
			c.cutWriteLocked()                // and the chunk under way stops at once
		}
		if flushKey && hold {
			c.waitWriteStoppedLocked()
		}
		c.mu.Unlock()
		if flushKey {
			c.OnFlushKey()
		}
	}
	if hold {
		c.wbuf = appendHeader(c.wbuf, frameSync, 0)
	}
	if _, err := conn.Write(c.wbuf); err != nil && !resumable {
		return err
	}
	return nil // a resume sends the input again
}

// writeProbe sends a SYNC that measures the round trip, if one is due (see windowTuner).
func (c *Client) writeProbe() error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if !c.appendProbe(c.wbuf[:0]) {
		return nil
	}
	c.mu.Lock()
	conn := c.conn
	c.mu.Unlock()
	_, err := conn.Write(c.wbuf)
	return err
}

// appendProbe appends a SYNC that measures the round trip to b, into c.wbuf, if one is due,
// and reports whether it did. c.wmu is held: SYNCs are noted in the order they are written,
// which is the order of their answers, so that each SYNCED finds its own SYNC (a hold's or a
// probe's).
func (c *Client) appendProbe(b []byte) bool {
	c.mu.Lock()
	probe := c.tune.takeProbe()
	c.mu.Unlock()
	if probe {
		c.wbuf = appendHeader(b, frameSync, 0)
	} else {
		c.wbuf = b
	}
	return probe
}

// containsAnyByte reports whether p holds any of the bytes of set.
func containsAnyByte(p, set []byte) bool {
	for _, b := range set {
		if bytes.IndexByte(p, b) >= 0 {
			return true
		}
	}
	return false
}

// copyStdin copies Stdin to the server, one frame per Read, then sends the end of input.
func (c *Client) copyStdin() error {
	buf := make([]byte, readChunk)
	for {
		n, err := c.Stdin.Read(buf)
		if n > 0 {
			if _, werr := c.sendInput(buf[:n], nil); werr != nil {
				return nil // the session ended; Wait reports how
			}
		}
		if err != nil {
			_ = c.writeFrame(frameEOF, nil)
			if errors.Is(err, io.EOF) {
				return nil
			}
			err = fmt.Errorf("session: reading Stdin: %w", err)
			c.mu.Lock()
			c.stdinErr = err
			c.mu.Unlock()
			return err
		}
	}
}

// stdinPipe is the writer StdinPipe returns.
type stdinPipe struct {
	c      *Client
	closed bool // under c.mu
}

func (p *stdinPipe) Write(b []byte) (int, error) { return p.c.sendInput(b, p) }

// Close sends the end of input (once).
func (p *stdinPipe) Close() error {
	c := p.c
	c.mu.Lock()
	if p.closed {
		c.mu.Unlock()
		return nil
	}
	p.closed = true
	send := c.running && !c.readDone && !c.closed // before Start, Start sends it
	c.inCond.Broadcast()
	c.mu.Unlock()
	if !send {
		return nil
	}
	if err := c.writeFrame(frameEOF, nil); err != nil {
		return fmt.Errorf("session: sending end of input: %w", err)
	}
	return nil
}
