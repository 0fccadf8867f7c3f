package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// ServeConn serves the one connection conn, as rlogind -inetd does with the socket inetd
// passed, and returns when conn is closed: after its session, or after a failed login. The
// connection goes through the same mailbox exchange, limits and login flow as with Serve.
// Cancelling ctx ends it as it ends Serve. ServeConn owns conn. Call ServeConn (or Serve) once
// per Server.
func (s *Server) ServeConn(ctx context.Context, conn net.Conn) error {
	return s.serve(ctx, newOneConnListener(conn), true)
}

// oneConnListener hands out one conn, then blocks in Accept until that conn or the listener is
// closed, and returns net.ErrClosed.
type oneConnListener struct {
	addr net.Addr
	done chan struct{} // closed when the conn or the listener is closed
	once sync.Once

	mu   sync.Mutex
	conn net.Conn // nil once handed out
}

func newOneConnListener(c net.Conn) *oneConnListener {
	return &oneConnListener{addr: c.LocalAddr(), conn: c, done: make(chan struct{})}
}

func (l *oneConnListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	c := l.conn
	l.conn = nil
	l.mu.Unlock()
	if c != nil {
		return &closeNotifyConn{Conn: c, onClose: l.finish}, nil
	}
	<-l.done
	return nil, net.ErrClosed
}

func (l *oneConnListener) finish() { l.once.Do(func() { close(l.done) }) }

// Close closes the conn too if it was not handed out yet.
func (l *oneConnListener) Close() error {
	l.mu.Lock()
	c := l.conn
	l.conn = nil
	l.mu.Unlock()
	if c != nil {
		_ = c.Close()
	}
	l.finish()
	return nil
}

func (l *oneConnListener) Addr() net.Addr { return l.addr }

// closeNotifyConn calls onClose after it is closed.
type closeNotifyConn struct {
	net.Conn
	onClose func()
}

func (c *closeNotifyConn) Close() error {
	err := c.Conn.Close()
	c.onClose()
	return err
}

// SyscallConn exposes the socket: closeNotifyConn changes no Read or Write, so a TLS session
// over it may read and write the descriptor directly.
func (c *closeNotifyConn) SyscallConn() (syscall.RawConn, error) {
	sc, ok := c.Conn.(syscall.Conn)
	if !ok {
		return nil, fmt.Errorf("daemon: %T has no descriptor: %w", c.Conn, errors.ErrUnsupported)
	}
	return sc.SyscallConn()
}

// CloseWrite half-closes the conn (TCP or Unix).
func (c *closeNotifyConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return fmt.Errorf("daemon: CloseWrite: %w", errors.ErrUnsupported)
}

// inetdConn returns the connected socket f (inetd's standard input) as a net.Conn; it works on
// a duplicate of f's descriptor.
func inetdConn(f *os.File) (net.Conn, error) {
	c, err := net.FileConn(f)
	if err != nil {
		return nil, fmt.Errorf("daemon: -inetd: standard input is not a connected socket: %w", err)
	}
	var perr error
	if err = control(f, func(fd int) { _, perr = unix.Getpeername(fd) }); err == nil {
		err = perr
	}
	if err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("daemon: -inetd: standard input is not a connected socket (a listening socket? use socket activation without -inetd): %w", err)
	}
	return c, nil
}

// sameFile reports whether f and w (if a file) are the same open file, such as one socket
// that inetd made both standard input and standard error.
func sameFile(f *os.File, w io.Writer) bool {
	g, ok := w.(*os.File)
	if !ok {
		return false
	}
	var a, b syscall.Stat_t
	var aerr, berr error
	if control(f, func(fd int) { aerr = syscall.Fstat(fd, &a) }) != nil || aerr != nil ||
		control(g, func(fd int) { berr = syscall.Fstat(fd, &b) }) != nil || berr != nil {
		return false
	}
	return a.Dev == b.Dev && a.Ino == b.Ino
}

// control calls fn with f's descriptor. Unlike f.Fd, it leaves the descriptor's mode alone: Fd
// makes it blocking, and the socket's open file description is shared with the connection
// made from it, whose raw reads must never block (package rawio).
func control(f *os.File, fn func(fd int)) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	return rc.Control(func(fd uintptr) { fn(int(fd)) })
}

// detachStdio points descriptors 0 and 1 (the connection, under inetd) at /dev/null, and
// descriptor 2 too when it is the connection (at the log file if there is one, so that a panic
// message lands there): from then on only the protocol writes to the connection, through its
// own descriptor.
func detachStdio(logFile *reopenFile, stderrIsConn bool) error {
	null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("daemon: %w", err)
	}
	defer null.Close()
	nfd := int(null.Fd())
	fds := map[int]int{0: nfd, 1: nfd}
	if stderrIsConn {
		fds[2] = nfd
		if logFile != nil {
			fds[2] = logFile.fd()
		}
	}
	for to, from := range fds {
		if err := unix.Dup2(from, to); err != nil {
			return fmt.Errorf("daemon: dup2: %w", err)
		}
	}
	return nil
}
