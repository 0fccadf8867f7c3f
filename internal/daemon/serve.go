package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"github.com/rlogin-go/rlogin/internal/admission"

	"github.com/rlogin-go/rlogin/transport"
)

// killGrace is how long Serve still waits, after StopGrace, for sessions whose shells it killed.
const killGrace = 2 * time.Second

// endSlack is how long Serve waits past StopGrace before it kills shells. A session whose shell
// has exited may still be ending its leftover jobs (pty's End): End kills them at StopGrace after
// the hangup, which the stop made, and they die at once. Killing at StopGrace itself would race
// End and warn about sessions that were about to end anyway.
const endSlack = 500 * time.Millisecond

// Serve serves logins on l until ctx is cancelled, then stops: it closes l, cancels the sessions
// it started (their clients are told "service stopping", their shells hung up), waits up to
// Config.StopGrace (and a little more, for their leftover jobs' end) for them, kills the shells of
// those still running and waits a little more.
// Serve owns l. It returns nil after ctx is cancelled, or the error that stopped it otherwise.
//
// Serve may be called for several listeners at once, one call each, as net/http's Server.Serve
// can: the calls share the Server's configuration, its limits before authentication and its
// session count (Config.MaxSessions). Once the ctx of one of them is done, the connections cut
// short by the stop are not held against their sources, on any listener.
//
// Each connection goes through a transport.Mux on l: the mailbox "login" takes secure clients;
// with the classic service, the first byte also sends classic clients (NUL) and TLS clients that
// name no mailbox (0x16) to their handlers. The Mux's limits are the admission's, so the two
// agree by design: the Mux's NameTimeout is Config.LoginGraceTime and its MaxPending is
// Config.MaxStartups' full, because a connection in the name exchange is one of the
// unauthenticated connections, which the admission never lets past full, and the deadline the
// Mux sets is bounded by the connection's own grace deadline anyway (package admission). The Mux
// takes them when Serve starts; a Reload changes the admission's at once, the Mux's at the next
// Serve.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	return s.serve(ctx, l, false)
}

// A route is one of the listeners the Mux hands conns to, and the handler of its conns.
type route struct {
	l      net.Listener
	handle func(g *Server, ctx context.Context, c *conn)
}

// serve is Serve; with oneShot, l closing is the normal end (ServeConn).
func (s *Server) serve(ctx context.Context, l net.Listener, oneShot bool) error {
	g := s.current.Load()
	if g.cfg.System && g.cfg.PrivilegeSeparation && !oneShot {
		return s.serveSeparated(ctx, l)
	}
	mux := transport.NewMux(s.lim.Listener(l))
	mux.NameTimeout = g.cfg.LoginGraceTime
	mux.MaxPending = g.cfg.MaxStartups.Full
	mux.Logger = g.log
	mux.KeepAlive = tcpKeepAlive(g.cfg.ClientAlive)
	routes, err := g.routes(mux)
	if err != nil {
		_ = mux.Close()
		return err
	}
	if !oneShot {
		g.log.Info("serving logins", append(append([]any{"addr", l.Addr().String()}, g.servingAttrs()...), g.resumeAttrs()...)...)
	}

	sessCtx, cancelSessions := context.WithCancel(ctx)
	defer cancelSessions()
	stopOnCancel := context.AfterFunc(ctx, func() {
		s.lim.ShuttingDown()
		_ = mux.Close()
	})
	defer stopOnCancel()

	sessions := newSessionSet(oneShot)
	acceptErrs := make(chan error, len(routes))
	var loops sync.WaitGroup
	for _, r := range routes {
		loops.Go(func() {
			acceptErrs <- s.accept(sessCtx, r, sessions)
			_ = mux.Close() // a failed listener ends the others too
		})
	}
	muxErr := mux.Serve()
	_ = mux.Close()
	loops.Wait()
	close(acceptErrs)

	cancelSessions()
	sessions.stop(s.current.Load())

	if ctx.Err() != nil {
		if !oneShot {
			s.current.Load().log.Info("stopped")
		}
		return nil
	}
	var acceptErr error
	for err := range acceptErrs {
		acceptErr = cmpOr(acceptErr, err)
	}
	switch { // transport's errors, with their prefix
	case acceptErr != nil:
		return acceptErr
	case muxErr != nil && !errors.Is(muxErr, net.ErrClosed):
		return muxErr
	case oneShot:
		return nil
	}
	return fmt.Errorf("daemon: listener closed: %w", net.ErrClosed)
}

// cmpOr returns the first non-nil error.
func cmpOr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// routes announces on mux the listeners g serves and pairs each with its handler: the login
// mailbox for secure clients, and, with the classic service, the first bytes of classic clients
// and of TLS clients that name no mailbox (docs/protocol.md, "One port for all").
func (g *Server) routes(mux *transport.Mux) ([]route, error) {
	mb, err := mux.Announce(MailboxName)
	if err != nil {
		return nil, err
	}
	routes := []route{{mb, (*Server).handleSecure}}
	if !g.cfg.Classic.Enabled {
		return routes, nil
	}
	cl, err := mux.AnnounceFirstByte(transport.FirstByteClassic)
	if err != nil {
		return nil, err
	}
	tl, err := mux.AnnounceFirstByte(transport.FirstByteTLS)
	if err != nil {
		return nil, err
	}
	g.warnClassic()
	return append(routes, route{tl, (*Server).handleSecure}, route{cl, (*Server).handleClassic}), nil
}

// accept takes the conns of r's listener and serves each with r's handler, under the Server's
// generation of the moment, in a goroutine of sessions, until the listener fails; it returns
// nil once the listener is closed.
func (s *Server) accept(ctx context.Context, r route, sessions *sessionSet) error {
	for {
		nc, err := r.l.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		// The Mux hands out the limiter's conns, wrapped: take the admission's view once, here,
		// and pass it on.
		ac := admission.ConnOf(nc)
		if ac == nil {
			s.current.Load().log.Error("connection not admitted; closed", "remote", nc.RemoteAddr().String())
			_ = nc.Close()
			continue
		}
		ac.Delivered()
		g := s.current.Load()
		c := sessions.add(nc, ac)
		sessions.wg.Go(func() {
			defer sessions.remove(c)
			r.handle(g, ctx, c)
		})
	}
}

// A conn is one connection being served, from its mailbox to the end of its session.
type conn struct {
	net.Conn                 // as the mailbox handed it over
	ac       *admission.Conn // its admission: grace deadline, penalties, the unauthenticated count
	id       uint64
	set      *sessionSet

	// Guarded by set.mu: the session's program, once started, and its pty or pipes, for a
	// forced stop.
	cmd  *exec.Cmd
	term io.Closer
}

// setShell records the session's program and its pty or pipes, for a forced stop.
func (c *conn) setShell(cmd *exec.Cmd, term io.Closer) {
	c.set.mu.Lock()
	c.cmd, c.term = cmd, term
	c.set.mu.Unlock()
}

// A sessionSet is the conns one Serve call is handling, and their goroutines.
type sessionSet struct {
	wg      sync.WaitGroup // the handlers
	oneShot bool           // ServeConn's: one conn, and no other to resume its session

	mu    sync.Mutex
	conns map[*conn]struct{}
}

func newSessionSet(oneShot bool) *sessionSet {
	return &sessionSet{conns: make(map[*conn]struct{}), oneShot: oneShot}
}

func (ss *sessionSet) add(nc net.Conn, ac *admission.Conn) *conn {
	c := &conn{Conn: nc, ac: ac, id: ac.ID(), set: ss}
	ss.mu.Lock()
	ss.conns[c] = struct{}{}
	ss.mu.Unlock()
	return c
}

func (ss *sessionSet) remove(c *conn) {
	ss.mu.Lock()
	delete(ss.conns, c)
	ss.mu.Unlock()
}

// stop waits for the cancelled sessions to end: up to g's StopGrace and endSlack (the sessions
// end their leftover jobs at StopGrace after the hangup), then it kills the shells
// still running (SIGKILL, and their terminals closed, which hangs up whatever else uses them),
// makes their conns fail and waits up to killGrace more. It returns even if some session still
// has not ended.
func (ss *sessionSet) stop(g *Server) {
	done := make(chan struct{})
	go func() {
		ss.wg.Wait()
		close(done)
	}()
	if waitDone(done, g.cfg.StopGrace+endSlack) {
		return
	}
	ss.mu.Lock()
	n := len(ss.conns)
	for c := range ss.conns {
		_ = c.SetDeadline(time.Unix(1, 0)) // in the past: blocked I/O fails at once
		if c.cmd != nil {
			// Through the os.Process (a pidfd), never a bare pid: the shell may have been
			// reaped a moment ago and its pid reused.
			_ = c.cmd.Process.Signal(syscall.SIGKILL)
			_ = c.term.Close()
		}
	}
	ss.mu.Unlock()
	g.log.Warn("sessions still running after the stop grace time; killed their shells", "sessions", n, "grace", g.cfg.StopGrace)
	if !waitDone(done, killGrace) {
		g.log.Error("sessions still running; stopping anyway")
	}
}

// waitDone waits until done is closed or d has passed, and reports whether done was closed.
func waitDone(done <-chan struct{}, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-done:
		return true
	case <-t.C:
		return false
	}
}
