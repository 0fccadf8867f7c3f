package transport

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// A Conn is a stream that went through a mailbox's name exchange: DialMailbox
// returns one, and the Accept of every listener of a Mux (Announce,
// AnnounceFirstByte) returns one as a net.Conn, so c.(*transport.Conn) always
// holds for those. It wraps the conn it was made from (a *net.TCPConn, a
// *net.UnixConn, or the conn of another Network), which NetConn returns.
//
// On the accepting side, the bytes the Mux read past the name's CRLF (or the
// first bytes of a first-byte conn) come out of Read first, then the
// underlying conn's. On the dialing side, ReplyText holds the text of the
// server's "+" reply; a conn from DialMailboxEarly reads that reply with its
// first Read.
//
// Multiple goroutines may invoke methods on a Conn simultaneously.
type Conn struct {
	conn net.Conn

	mu    sync.Mutex
	rest  []byte // read by the Mux past the name, not yet returned by Read
	reply string // text after "+" in the server's reply; set by DialMailbox

	early earlyReply // the reply a conn of DialMailboxEarly reads with its first Read
}

// newConn returns a Conn over c whose first Reads return rest.
func newConn(c net.Conn, rest []byte) *Conn { return &Conn{conn: c, rest: rest} }

// takeRest returns and forgets the bytes the Mux read for this conn.
func (c *Conn) takeRest() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	rest := c.rest
	c.rest = nil
	return rest
}

// Read reads the bytes the Mux read past the name first, then from the
// underlying conn.
func (c *Conn) Read(p []byte) (int, error) {
	if c.early.pending.Load() {
		if err := c.readEarlyReply(); err != nil {
			return 0, err
		}
	}
	c.mu.Lock()
	if len(c.rest) > 0 {
		n := copy(p, c.rest)
		c.rest = c.rest[n:]
		c.mu.Unlock()
		return n, nil
	}
	c.mu.Unlock()
	return c.conn.Read(p)
}

// buffered returns how many bytes Read returns before it reads the underlying conn; while the
// reply of DialMailboxEarly is unread, at least 1, as Read must read it first.
func (c *Conn) buffered() int {
	if c.early.pending.Load() {
		return 1
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.rest)
}

// Write writes to the underlying conn.
func (c *Conn) Write(p []byte) (int, error) { return c.conn.Write(p) }

// Close drops bytes not read yet and closes the underlying conn.
func (c *Conn) Close() error {
	c.takeRest()
	return c.conn.Close()
}

// CloseWrite half-closes the underlying conn: the peer reads io.EOF, and can
// still write to this end. An underlying conn without CloseWrite gives an
// error matching errors.ErrUnsupported.
func (c *Conn) CloseWrite() error {
	if cw, ok := c.conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return fmt.Errorf("transport: CloseWrite: %w", errors.ErrUnsupported)
}

// NetConn returns the underlying conn, as tls.Conn.NetConn does: for
// socket options (c.NetConn().(*net.TCPConn).SetKeepAlive) or to find what a
// server put under the Mux. Reading from it directly skips the bytes the Mux
// read past the name; call it for reading only once Read has returned them.
func (c *Conn) NetConn() net.Conn { return c.conn }

// ReplyText returns the text after "+" in the server's reply to the mailbox
// request (RFC 1078 allows "+text"), as received, without the CRLF; it is
// empty for the server's plain "+" and for conns accepted from a Mux, and
// for a conn of DialMailboxEarly until its first Read. It comes from the
// peer: escape it before showing it.
func (c *Conn) ReplyText() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reply
}

// ReadFrom writes what it reads from r to the conn. It uses the underlying
// conn's ReadFrom if it has one, so io.Copy(c, file) keeps the kernel's
// sendfile and splice paths of TCP and Unix conns.
func (c *Conn) ReadFrom(r io.Reader) (int64, error) {
	if rf, ok := c.conn.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(writerOnly{c.conn}, r)
}

// WriteTo writes what the conn reads to w until EOF: first the bytes the Mux
// read past the name, then the underlying conn's, through its WriteTo if it
// has one, so io.Copy(w, c) keeps the kernel's splice path.
func (c *Conn) WriteTo(w io.Writer) (int64, error) {
	if c.early.pending.Load() {
		if err := c.readEarlyReply(); err != nil {
			return 0, err
		}
	}
	var n int64
	if rest := c.takeRest(); len(rest) > 0 {
		m, err := w.Write(rest)
		n += int64(m)
		if err != nil {
			return n, err
		}
	}
	var m int64
	var err error
	if wt, ok := c.conn.(io.WriterTo); ok {
		m, err = wt.WriteTo(w)
	} else {
		m, err = io.Copy(w, readerOnly{c.conn})
	}
	return n + m, err
}

// writerOnly and readerOnly hide a conn's ReadFrom and WriteTo from io.Copy,
// which would otherwise call back into the Conn that fell back to it.
type writerOnly struct{ io.Writer }
type readerOnly struct{ io.Reader }

// LocalAddr returns the underlying conn's local address.
func (c *Conn) LocalAddr() net.Addr { return c.conn.LocalAddr() }

// RemoteAddr returns the underlying conn's remote address.
func (c *Conn) RemoteAddr() net.Addr { return c.conn.RemoteAddr() }

// SetDeadline sets the underlying conn's deadlines. Bytes the Mux read past
// the name are returned whatever the deadline.
func (c *Conn) SetDeadline(t time.Time) error { return c.conn.SetDeadline(t) }

// SetReadDeadline sets the underlying conn's read deadline.
func (c *Conn) SetReadDeadline(t time.Time) error { return c.conn.SetReadDeadline(t) }

// SetWriteDeadline sets the underlying conn's write deadline.
func (c *Conn) SetWriteDeadline(t time.Time) error { return c.conn.SetWriteDeadline(t) }
