package classic

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"syscall"

	"github.com/rlogin-go/rlogin/internal/connctx"
)

// Client-side sizes.
const (
	// maxRefusal bounds the refusal message a client reads after 0x01.
	maxRefusal = 1024
	// maxQueued bounds the output read from the conn and not yet written to Stdout. The reader
	// keeps the socket drained up to it, so an urgent flush arrives (and drops the queue)
	// without waiting behind a slow terminal.
	maxQueued = 256 << 10
	// writeChunk is the most a single Stdout write takes from the queue: a flush can drop
	// everything else.
	writeChunk = 16 << 10
)

// RefusedError is a server's refusal (0x01 and a message). Reason comes from the peer as it sent
// it: filter out control characters before showing it on a terminal.
type RefusedError struct {
	Reason string
}

func (e *RefusedError) Error() string { return "classic: login refused: " + e.Reason }

// Client is the client side of a classic rlogin connection, shaped like session.Client: set the
// fields, Start, write keystrokes to the StdinPipe, Wait.
//
// Output from the server is written to Stdout in order, by a goroutine of the Client. The server's
// urgent control bytes are acted on as they arrive: 0x02 drops the output not yet written (and
// the data before the urgent mark) and calls OnFlush; 0x10 and 0x20 call OnFlowControl; 0x80
// starts window-size messages (Window now, and at each Resize that changes it).
type Client struct {
	Request
	Window WindowSize // sent when the server asks for it; Resize changes it
	Stdout io.Writer  // the server's output; nil discards it

	// OnFlush, if set, is called after a flush from the server dropped the pending output, so a
	// terminal client can also discard its terminal's output queue (tcflush).
	OnFlush func()
	// OnFlowControl, if set, is called with false when the server asks to switch local ^S/^Q
	// flow control off (0x10), with true when it asks to switch it back on (0x20).
	OnFlowControl func(on bool)

	conn net.Conn
	raw  syscall.RawConn

	mu           sync.Mutex
	started      bool
	windowWanted bool // the server asked for window sizes
	sentWindow   bool
	lastSent     WindowSize
	queue        []byte // output not yet written to Stdout is queue[head:]
	head         int
	readEnded    bool // the reader is done: the writer ends once the queue is empty
	readerWaits  bool // the reader waits for room in the queue
	writeErr     error
	closedLocal  bool
	sr           *socketReader
	cond         sync.Cond // the writer waits for output

	done    chan struct{} // closed when both goroutines ended
	waitErr error

	closeOnce sync.Once
}

// NewClient returns a client that logs in with req over conn. It never dials; the Client owns
// conn. For urgent data conn must be a *net.TCPConn or wrap one (see ServerConn); without it the
// client works, without flushes, flow-control changes and window sizes.
func NewClient(conn net.Conn, req Request) *Client {
	c := &Client{Request: req, conn: conn, raw: rawConnOf(conn), done: make(chan struct{})}
	c.cond.L = &c.mu
	return c
}

// Start sends the handshake and reads the server's answer: nil for the byte 0, a *RefusedError
// for 0x01 and a message. On failure it closes the conn. On success the goroutines that read the
// conn and write Stdout are running; Wait waits for them.
//
// ctx bounds the handshake: if it is done before the answer arrives, Start closes the conn and
// returns an error that wraps context.Cause(ctx). Once Start has returned, ctx has no effect.
func (c *Client) Start(ctx context.Context) error {
	c.mu.Lock()
	if c.started {
		c.mu.Unlock()
		return errors.New("classic: Start called twice")
	}
	c.started = true
	c.mu.Unlock()
	if err := c.handshakeUntil(ctx); err != nil {
		_ = c.conn.Close()
		close(c.done)
		return err
	}
	var sr *socketReader
	if c.raw != nil {
		var err error
		if sr, err = newSocketReader(c.raw); err != nil {
			_ = c.conn.Close()
			close(c.done)
			return err
		}
	}
	c.mu.Lock()
	c.sr = sr
	c.mu.Unlock()
	go c.run(sr)
	return nil
}

// handshakeUntil is handshake, cut short when ctx is done.
func (c *Client) handshakeUntil(ctx context.Context) error {
	err := connctx.Do(ctx, c.conn, c.handshake)
	if err != nil && err == context.Cause(ctx) {
		return fmt.Errorf("classic: handshake: %w", err)
	}
	return err
}

// handshake sends the handshake and reads the answer.
func (c *Client) handshake() error {
	b, err := AppendRequest(nil, &c.Request)
	if err != nil {
		return err
	}
	if _, err := c.conn.Write(b); err != nil {
		return fmt.Errorf("classic: sending the handshake: %w", err)
	}
	var answer [1]byte
	if _, err := io.ReadFull(c.conn, answer[:]); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return fmt.Errorf("classic: reading the server's answer: %w", err)
	}
	if answer[0] == 0 {
		return nil
	}
	// A refusal: the message runs to the end of its line or of the stream.
	msg, err := readLine(c.conn, maxRefusal)
	if msg == "" && err != nil {
		return fmt.Errorf("classic: refused with no reason (first byte %#x): %w", answer[0], err)
	}
	return &RefusedError{Reason: msg}
}

// readLine reads up to max bytes, until a newline or the end of r, and returns them without the
// line end.
func readLine(r io.Reader, max int) (string, error) {
	buf := make([]byte, max)
	n := 0
	var err error
	for n < max {
		var m int
		m, err = r.Read(buf[n:])
		if i := bytes.IndexByte(buf[n:n+m], '\n'); i >= 0 {
			n += i
			break
		}
		n += m
		if err != nil {
			break
		}
	}
	if err == io.EOF {
		err = nil
	}
	return strings.TrimRight(string(buf[:n]), "\r\n"), err
}

// StdinPipe returns the keystroke writer: each Write sends its bytes at once, as they are (RFC
// 1282 has no escaping: see InputFilter), and Close ends the input by half-closing the conn (a
// classic server then ends the session).
func (c *Client) StdinPipe() (io.WriteCloser, error) { return stdinPipe{c}, nil }

type stdinPipe struct{ c *Client }

func (p stdinPipe) Write(b []byte) (int, error) {
	n, err := p.c.conn.Write(b)
	if err != nil {
		return n, fmt.Errorf("classic: sending input: %w", err)
	}
	return n, nil
}

func (p stdinPipe) Close() error {
	if cw, ok := p.c.conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// Resize records the window size; once the server has asked for window sizes, a size that
// differs from the last one sent is sent at once.
func (c *Client) Resize(w WindowSize) error {
	c.mu.Lock()
	c.Window = w
	send := c.windowWanted && (!c.sentWindow || c.lastSent != w)
	if send {
		c.sentWindow, c.lastSent = true, w
	}
	c.mu.Unlock()
	if !send {
		return nil
	}
	return c.sendWindow(w)
}

func (c *Client) sendWindow(w WindowSize) error {
	if _, err := c.conn.Write(AppendWindowMessage(nil, w)); err != nil {
		return fmt.Errorf("classic: sending the window size: %w", err)
	}
	return nil
}

// windowRequested handles 0x80: from now on window sizes are sent; the current one at once.
func (c *Client) windowRequested() {
	c.mu.Lock()
	c.windowWanted = true
	w := c.Window
	c.sentWindow, c.lastSent = true, w
	c.mu.Unlock()
	_ = c.sendWindow(w) // a failed write shows up as a failed read too
}

// Wait waits until the server closes the connection and all its output is written, and returns
// nil then (classic rlogin has no exit status), or the error that ended the session.
func (c *Client) Wait() error {
	<-c.done
	return c.waitErr
}

// Close ends the session: Wait returns. It may be called more than once.
func (c *Client) Close() error {
	var err error
	c.closeOnce.Do(func() {
		c.mu.Lock()
		c.closedLocal = true
		sr := c.sr
		c.mu.Unlock()
		if sr != nil {
			sr.stop()
		}
		err = c.conn.Close()
	})
	return err
}

// run runs the reader and the writer and records how the session ended.
func (c *Client) run(sr *socketReader) {
	defer close(c.done)
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		c.writeOutput()
	}()
	var err error
	if sr != nil {
		err = c.readSocket(sr)
	} else {
		err = c.readConn()
	}
	c.mu.Lock()
	c.readEnded = true
	closed := c.closedLocal
	c.cond.Broadcast()
	c.mu.Unlock()
	<-writerDone
	if sr != nil {
		sr.close()
	}
	_ = c.conn.Close()
	c.mu.Lock()
	werr := c.writeErr
	c.mu.Unlock()
	switch {
	case closed:
		c.waitErr = fmt.Errorf("classic: session closed: %w", net.ErrClosed)
	case err != nil:
		c.waitErr = fmt.Errorf("classic: connection lost: %w", err)
	case werr != nil:
		c.waitErr = fmt.Errorf("classic: writing output: %w", werr)
	}
}

// room returns how much output the queue takes now; at 0 it notes that the reader waits.
func (c *Client) room() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	room := maxQueued - (len(c.queue) - c.head)
	c.readerWaits = room <= 0
	if c.writeErr != nil {
		room = maxQueued // output is being dropped: read on, so urgent data and the end are seen
	}
	return max(room, 0)
}

func (c *Client) push(b []byte) {
	c.mu.Lock()
	if c.writeErr == nil {
		if c.head > 0 && c.head >= len(c.queue)/2 {
			c.queue = c.queue[:copy(c.queue, c.queue[c.head:])]
			c.head = 0
		}
		c.queue = append(c.queue, b...)
		c.cond.Signal()
	}
	c.mu.Unlock()
}

// readSocket is the reading goroutine over a TCP socket: data into the queue, urgent bytes acted
// on in order with it. It returns nil at the end of the stream.
func (c *Client) readSocket(sr *socketReader) error {
	buf := make([]byte, readChunk)
	notYet := false // at the mark, the urgent byte has not arrived: wait for it, not for data
	for {
		room := c.room()
		data, urgent, err := sr.wait(room > 0 && !notYet, room > 0)
		if errors.Is(err, errStopped) {
			return nil
		}
		if err != nil {
			return err
		}
		if urgent {
			notYet = false
			if err := c.urgent(sr, buf); err != nil {
				return err
			}
			continue
		}
		if !data {
			notYet = false // woken up (room in the queue); look again
			continue
		}
		if notYet {
			// The stream ended or failed before the urgent byte came: the read says which.
			notYet = false
		} else if at, err := sr.atMark(); err != nil {
			// A read that starts at the urgent mark goes past it and loses the urgent byte:
			// read that byte first.
			return err
		} else if at {
			b, st, err := sr.readUrgent()
			if err != nil {
				return err
			}
			switch st {
			case urgentGot:
				if err := c.control(sr, b, buf); err != nil {
					return err
				}
				continue
			case urgentNotYet:
				notYet = true
				continue
			}
		}
		n, err := sr.read(buf[:min(room, len(buf))])
		if errors.Is(err, errAgain) {
			continue
		}
		if err != nil {
			return err
		}
		if n == 0 {
			return nil
		}
		c.push(buf[:n])
	}
}

// urgent reads and acts on an urgent byte that poll reported.
func (c *Client) urgent(sr *socketReader, buf []byte) error {
	b, st, err := sr.readUrgent()
	if err != nil || st != urgentGot {
		return err
	}
	return c.control(sr, b, buf)
}

// control acts on the urgent byte b, in in.rlogind's order: window request, flow control, flush.
func (c *Client) control(sr *socketReader, b byte, buf []byte) error {
	if b&ControlWindow != 0 {
		c.windowRequested()
	}
	if c.OnFlowControl != nil {
		if b&ControlNoStop != 0 {
			c.OnFlowControl(false)
		}
		if b&ControlDoStop != 0 {
			c.OnFlowControl(true)
		}
	}
	if b&ControlFlush == 0 {
		return nil
	}
	c.mu.Lock()
	c.queue, c.head = c.queue[:0], 0
	c.mu.Unlock()
	if c.OnFlush != nil {
		c.OnFlush()
	}
	// Discard the data before the mark: it was all sent before the flush.
	for {
		at, err := sr.atMark()
		if err != nil {
			return err
		}
		if at {
			return nil
		}
		n, err := sr.read(buf)
		if errors.Is(err, errAgain) {
			if _, _, err := sr.wait(true, true); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return err
		}
		if n == 0 {
			return nil // the end of the stream; the caller's next read sees it again
		}
	}
}

// readConn is the reading goroutine over a conn without urgent data.
func (c *Client) readConn() error {
	buf := make([]byte, readChunk)
	for {
		n, err := c.conn.Read(buf)
		c.push(buf[:n])
		if err == io.EOF {
			return nil
		}
		if err != nil {
			c.mu.Lock()
			closed := c.closedLocal
			c.mu.Unlock()
			if closed {
				return nil
			}
			return err
		}
	}
}

// writeOutput is the writing goroutine: queue to Stdout, in chunks of at most writeChunk, until
// the reader ended and the queue is empty. After a failed write it drops the output.
func (c *Client) writeOutput() {
	out := c.Stdout
	if out == nil {
		out = io.Discard
	}
	var chunk []byte
	for {
		c.mu.Lock()
		for len(c.queue) == c.head && !c.readEnded {
			c.cond.Wait()
		}
		if len(c.queue) == c.head {
			c.mu.Unlock()
			return
		}
		n := min(len(c.queue)-c.head, writeChunk)
		chunk = append(chunk[:0], c.queue[c.head:c.head+n]...)
		c.head += n
		if c.head == len(c.queue) {
			c.queue, c.head = c.queue[:0], 0
		}
		wake := c.readerWaits && c.sr != nil
		c.readerWaits = false
		sr := c.sr
		c.mu.Unlock()
		if wake {
			sr.wakeup()
		}
		if _, err := out.Write(chunk); err != nil {
			c.mu.Lock()
			c.writeErr = err
			c.queue, c.head = nil, 0
			c.mu.Unlock()
			if sr != nil {
				sr.wakeup()
			}
		}
	}
}
