package rawio

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
)

// Conn is a net.Conn whose Read and Write go to the descriptor of the conn it wraps with raw
// system calls; its other methods are the wrapped conn's, so deadlines and Close work as on it.
type Conn struct {
	net.Conn
	rc syscall.RawConn

	// The state of a Read and of a Write, reused (see op). Each mutex holds one call at a
	// time, as the descriptor's own read or write lock would while the call waits.
	rmu, wmu sync.Mutex
	r, w     op
}

// NewConn wraps c, which must expose its descriptor (syscall.Conn, as *net.TCPConn and
// *net.UnixConn do), and that descriptor must be one that a raw call cannot block on
// (non-blocking, and a socket or another kind that honours it: see the package doc); ok is
// false if it is not.
//
// A net.Conn's descriptor is non-blocking, but the flag belongs to the open file description,
// which a duplicate shares: calling Fd on an *os.File made from the conn (or the conn from the
// file, as net.FileConn does) makes the conn's descriptor blocking too. A raw read that blocks
// would hold its scheduler slot and stall the garbage collector's stop-the-world, which hangs
// the whole process; so NewConn refuses such a conn, and the caller keeps using c's own Read
// and Write. The flag must not change afterwards.
func NewConn(c net.Conn) (_ *Conn, ok bool) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return nil, false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil, false
	}
	var cerr error
	if err := rc.Control(func(fd uintptr) { cerr = check(int(fd)) }); err != nil || cerr != nil {
		return nil, false
	}
	return &Conn{Conn: c, rc: rc}, true
}

// Read reads as the wrapped conn's Read does; errors are *net.OpErrors as net's.
func (c *Conn) Read(p []byte) (int, error) {
	c.rmu.Lock()
	n, err := c.r.readWait(c.rc, p)
	c.rmu.Unlock()
	if err != nil && err != io.EOF {
		return n, c.opError("read", err)
	}
	return n, err
}

// Write writes as the wrapped conn's Write does; errors are *net.OpErrors as net's.
func (c *Conn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	n, err := c.w.writeWait(c.rc, p)
	c.wmu.Unlock()
	if err != nil {
		return n, c.opError("write", err)
	}
	return n, nil
}

// opError returns err as net's conns return the same failure: an *os.SyscallError for an
// errno, os.ErrDeadlineExceeded and net.ErrClosed as they are (rc's methods wrap them in a
// "raw-read" or "raw-write" *net.OpError), all inside an *net.OpError for op.
func (c *Conn) opError(op string, err error) error {
	var oe *net.OpError
	if errors.As(err, &oe) {
		err = oe.Err
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		err = os.NewSyscallError(op, errno)
	}
	oe = &net.OpError{Op: op, Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
	if oe.Source != nil { // a wrapped conn of another kind may have no address
		oe.Net = oe.Source.Network()
	}
	return oe
}

// CloseWrite half-closes the wrapped conn, if it can (TCP and Unix conns can).
func (c *Conn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return &net.OpError{Op: "close", Net: c.LocalAddr().Network(), Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: errors.ErrUnsupported}
}

// NetConn returns the wrapped conn.
func (c *Conn) NetConn() net.Conn { return c.Conn }
