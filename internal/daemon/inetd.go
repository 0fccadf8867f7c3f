package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"syscall"
	"time"
)

// ServeConn serves the one connection conn, as rlogind -inetd does with the socket inetd
// passed, and returns when conn is closed: after its session, or after a failed login. The
// connection goes through the same mailbox exchange, limits and login flow as with Serve.
// Cancelling ctx ends it as it ends Serve. ServeConn owns conn. It may run alongside Serve calls
// on the same Server.
//
// With privilege separation (System mode), the calling process is the connection's monitor, as
// inetd starts one rlogind per connection: it starts the net child and serves the login and the
// session as a monitor does (monitor.go), without the listener's limits, which inetd's own
// take the place of.
func (s *Server) ServeConn(ctx context.Context, conn net.Conn) error {
	if g := s.current.Load(); g.cfg.System && g.cfg.PrivilegeSeparation {
		m := &monitor{g: g, log: g.log.With("remote", conn.RemoteAddr().String()), deadline: time.Now().Add(g.cfg.LoginGraceTime)}
		defer nameInetdMonitor()() // so that -end-sessions finds it
		m.run(ctx, conn)
		return nil
	}
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

// NetConn returns the conn it wraps, for what needs the socket itself (the classic protocol's
// urgent data).
func (c *closeNotifyConn) NetConn() net.Conn { return c.Conn }

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
