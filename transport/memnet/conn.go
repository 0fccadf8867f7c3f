package memnet

import (
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"time"
)

// streamBuffer is how many bytes one direction of a conn holds before
// Write waits for the reader, as a socket's buffers do.
const streamBuffer = 64 << 10

// A stream is one direction of a conn: what one end writes and the other
// reads.
type stream struct {
	mu      sync.Mutex
	buf     []byte
	eof     bool          // the writer closed it: reads return io.EOF once buf is empty
	broken  bool          // the reader closed its end: writes fail
	changed chan struct{} // closed, and replaced, at every change of the above
}

func newStream() *stream { return &stream{changed: make(chan struct{})} }

// signal wakes the goroutines waiting on s. s.mu is held.
func (s *stream) signal() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// A deadline is a conn's read or write deadline: a channel closed when it
// passes.
type deadline struct {
	mu      sync.Mutex
	timer   *time.Timer
	expired chan struct{}
}

func newDeadline() *deadline { return &deadline{expired: make(chan struct{})} }

// set moves the deadline to t; the zero t means none.
func (d *deadline) set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil && !d.timer.Stop() {
		<-d.expired // the timer fired: wait until its function has closed expired
	}
	d.timer = nil
	passed := isClosed(d.expired)
	switch until := time.Until(t); {
	case t.IsZero() || until > 0:
		if passed {
			d.expired = make(chan struct{})
		}
		if !t.IsZero() {
			expired := d.expired
			d.timer = time.AfterFunc(until, func() { close(expired) })
		}
	case !passed:
		close(d.expired)
	}
}

// wait returns a channel closed when the deadline passes.
func (d *deadline) wait() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.expired
}

func isClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// A Conn is one end of a Network's connection: Dial returns one, and so does
// Accept of a Network's listener. It implements net.Conn and
// CloseWrite; multiple goroutines may invoke its methods simultaneously.
type Conn struct {
	local, remote Addr
	rx, tx        *stream // what this end reads, and writes
	rd, wd        *deadline
	closeOnce     sync.Once
	done          chan struct{} // closed by Close
}

// newPair returns the two ends of a connection from a to b.
func newPair(a, b Addr) (atA, atB *Conn) {
	ab, ba := newStream(), newStream()
	atA = &Conn{local: a, remote: b, rx: ba, tx: ab, rd: newDeadline(), wd: newDeadline(), done: make(chan struct{})}
	atB = &Conn{local: b, remote: a, rx: ab, tx: ba, rd: newDeadline(), wd: newDeadline(), done: make(chan struct{})}
	return atA, atB
}

func (c *Conn) opError(op string, err error) error {
	return &net.OpError{Op: op, Net: c.local.Net, Source: c.local, Addr: c.remote, Err: err}
}

// Read reads what the peer wrote; io.EOF after the peer's CloseWrite or
// Close, once all is read.
func (c *Conn) Read(p []byte) (int, error) {
	for {
		select {
		case <-c.done:
			return 0, c.opError("read", net.ErrClosed)
		case <-c.rd.wait():
			return 0, c.opError("read", os.ErrDeadlineExceeded)
		default:
		}
		if len(p) == 0 {
			return 0, nil
		}
		s := c.rx
		s.mu.Lock()
		if len(s.buf) > 0 {
			n := copy(p, s.buf)
			s.buf = s.buf[n:]
			s.signal()
			s.mu.Unlock()
			return n, nil
		}
		if s.eof {
			s.mu.Unlock()
			return 0, io.EOF
		}
		changed := s.changed
		s.mu.Unlock()
		select {
		case <-changed:
		case <-c.rd.wait():
		case <-c.done:
		}
	}
}

// Write writes p for the peer to read, waiting while the buffer is full.
// After this end's CloseWrite, or the peer's Close, it fails with an error
// matching syscall.EPIPE.
func (c *Conn) Write(p []byte) (int, error) {
	n := 0
	for {
		select {
		case <-c.done:
			return n, c.opError("write", net.ErrClosed)
		case <-c.wd.wait():
			return n, c.opError("write", os.ErrDeadlineExceeded)
		default:
		}
		s := c.tx
		s.mu.Lock()
		if s.eof || s.broken {
			s.mu.Unlock()
			return n, c.opError("write", syscall.EPIPE)
		}
		if room := streamBuffer - len(s.buf); room > 0 && n < len(p) {
			m := min(room, len(p)-n)
			s.buf = append(s.buf, p[n:n+m]...)
			n += m
			s.signal()
		}
		changed := s.changed
		s.mu.Unlock()
		if n == len(p) {
			return n, nil
		}
		select {
		case <-changed:
		case <-c.wd.wait():
		case <-c.done:
		}
	}
}

// CloseWrite ends what this end writes: the peer reads io.EOF once it has
// read the rest, and can still write to this end.
func (c *Conn) CloseWrite() error {
	select {
	case <-c.done:
		return c.opError("close", net.ErrClosed)
	default:
	}
	s := c.tx
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.eof {
		s.eof = true
		s.signal()
	}
	return nil
}

// Close closes this end: its pending and later calls fail with an error
// matching net.ErrClosed, the peer reads io.EOF after what was written,
// and the peer's writes fail.
func (c *Conn) Close() error {
	err := c.opError("close", net.ErrClosed)
	c.closeOnce.Do(func() {
		err = nil
		close(c.done)
		c.tx.mu.Lock()
		c.tx.eof = true
		c.tx.signal()
		c.tx.mu.Unlock()
		c.rx.mu.Lock()
		c.rx.broken = true
		c.rx.buf = nil
		c.rx.signal()
		c.rx.mu.Unlock()
		c.rd.set(time.Time{}) // stop the timers
		c.wd.set(time.Time{})
	})
	return err
}

// LocalAddr returns this end's address.
func (c *Conn) LocalAddr() net.Addr { return c.local }

// RemoteAddr returns the peer's address.
func (c *Conn) RemoteAddr() net.Addr { return c.remote }

// SetDeadline sets the read and write deadlines.
func (c *Conn) SetDeadline(t time.Time) error {
	if err := c.SetReadDeadline(t); err != nil {
		return err
	}
	return c.SetWriteDeadline(t)
}

// SetReadDeadline sets the time after which Read fails with an error
// matching os.ErrDeadlineExceeded; the zero time means none.
func (c *Conn) SetReadDeadline(t time.Time) error {
	if isClosed(c.done) {
		return c.opError("set", net.ErrClosed)
	}
	c.rd.set(t)
	return nil
}

// SetWriteDeadline sets the time after which Write fails with an error
// matching os.ErrDeadlineExceeded; the zero time means none.
func (c *Conn) SetWriteDeadline(t time.Time) error {
	if isClosed(c.done) {
		return c.opError("set", net.ErrClosed)
	}
	c.wd.set(t)
	return nil
}
