// Package daemon is rlogind in user mode: it serves secure logins for the one user who runs it,
// into that user's own login shell on a new pty.
//
// Each connection goes through the stack mailbox "login" (transport.Mux) -> TLS 1.3 with
// ed25519 keys on both ends (transport.Server) -> session protocol (session.ServerConn). The
// client's key must be listed in the user's authorized_keys, re-read at every login, and the
// requested user must be the daemon's own user. Everything before the shell starts runs under one
// deadline (Config.LoginGraceTime), and at most Config.MaxStartups connections may be in that
// stage at once.
//
// Typical usage (cmd/rlogind does this through Main):
//
//	key, _, err := keys.LoadOrCreate(filepath.Join(home, ".rlogin", "rlogind_host_ed25519_key"))
//	...
//	srv, err := daemon.NewServer(daemon.Config{
//		HostKey:        key,
//		AuthorizedKeys: filepath.Join(home, ".rlogin", "authorized_keys"),
//		Logger:         logger,
//	})
//	...
//	l, err := transport.Listen(ctx, ":5513")
//	...
//	err = srv.Serve(ctx, l) // until ctx is cancelled; sessions then end with "service stopping"
package daemon

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/rlogin-go/rlogin/pty"
	"github.com/rlogin-go/rlogin/transport"
)

// Defaults for the zero fields of Config.
const (
	DefaultLoginGraceTime = 60 * time.Second
	DefaultMaxStartups    = 64
	DefaultStopGrace      = 5 * time.Second
)

// killGrace is how long Serve still waits, after StopGrace, for sessions whose shells it killed.
const killGrace = 2 * time.Second

// MailboxName is the transport mailbox rlogind serves logins on.
const MailboxName = "login"

// passwdPath is the passwd database the login shell is looked up in.
const passwdPath = "/etc/passwd"

// Config configures a Server. HostKey and AuthorizedKeys are required; every other zero field
// means its default.
type Config struct {
	// HostKey is the server's key, shown to clients as its identity.
	HostKey ed25519.PrivateKey
	// AuthorizedKeys is the path of the authorized_keys file (OpenSSH format) listing the client
	// keys that may log in. It is read at each login, so edits apply to the next one.
	AuthorizedKeys string
	// Home is the user's home directory: the shell's HOME and working directory.
	// "" means os.UserHomeDir().
	Home string
	// Shell is the program run as the login shell. "" means the user's shell in /etc/passwd, or
	// /bin/sh if it names none.
	Shell string
	// LoginGraceTime bounds the login: the mailbox name exchange, and everything after it until
	// the shell starts (the TLS handshake, the login request and its authorization); a conn
	// still there after it is closed. 0 means DefaultLoginGraceTime.
	LoginGraceTime time.Duration
	// MaxStartups caps the connections that are not authenticated yet; a connection beyond it is
	// closed at once. 0 means DefaultMaxStartups.
	MaxStartups int
	// StopGrace is how long Serve waits for sessions to end after its ctx is cancelled before it
	// kills their shells. 0 means DefaultStopGrace.
	StopGrace time.Duration
	// Logger receives the daemon's log. nil means no log.
	Logger *slog.Logger
}

// A Server serves logins for the user running it. Create it with NewServer.
type Server struct {
	cfg   Config
	log   *slog.Logger
	user  string // the only user served
	uid   int
	home  string
	shell string

	nextID atomic.Uint64 // connection ids

	mu       sync.Mutex
	open     int                       // raw conns accepted and not closed
	authed   int                       // of those, conns past authentication
	sessions map[uint64]*activeSession // conns being handled, by id
	dropped  int                       // conns closed for MaxStartups since the last log line
	lastDrop time.Time                 // when a drop was last logged
}

// activeSession is what a forced shutdown needs of a connection being handled.
type activeSession struct {
	conn net.Conn
	cmd  *exec.Cmd // the shell, once started
	pty  *pty.PTY  // its terminal
}

// NewServer checks cfg, fills in its defaults and looks up the user running the daemon.
func NewServer(cfg Config) (*Server, error) {
	if len(cfg.HostKey) != ed25519.PrivateKeySize {
		return nil, errors.New("daemon: Config.HostKey is not an ed25519 private key")
	}
	if cfg.AuthorizedKeys == "" {
		return nil, errors.New("daemon: Config.AuthorizedKeys is empty")
	}
	if cfg.LoginGraceTime <= 0 {
		cfg.LoginGraceTime = DefaultLoginGraceTime
	}
	if cfg.MaxStartups <= 0 {
		cfg.MaxStartups = DefaultMaxStartups
	}
	if cfg.StopGrace <= 0 {
		cfg.StopGrace = DefaultStopGrace
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	u, err := user.Current()
	if err != nil {
		return nil, fmt.Errorf("daemon: who am I: %w", err)
	}
	uid, err := strconv.Atoi(u.Uid)
	if err != nil {
		return nil, fmt.Errorf("daemon: uid %q: %w", u.Uid, err)
	}
	if !validUserName(u.Username) {
		return nil, fmt.Errorf("daemon: user name %q is not a portable user name", u.Username)
	}
	home := cfg.Home
	if home == "" {
		if home, err = os.UserHomeDir(); err != nil {
			return nil, fmt.Errorf("daemon: %w", err)
		}
	}
	shell := cfg.Shell
	if shell == "" {
		shell, err = passwdShell(passwdPath, uid)
		if err != nil {
			log.Warn("no login shell found; using the fallback", "shell", shell, "err", err)
		}
	}
	return &Server{
		cfg:      cfg,
		log:      log,
		user:     u.Username,
		uid:      uid,
		home:     home,
		shell:    shell,
		sessions: make(map[uint64]*activeSession),
	}, nil
}

// User returns the name of the only user the server lets log in: the user running it.
func (s *Server) User() string { return s.user }

// Shell returns the program the server runs as the login shell.
func (s *Server) Shell() string { return s.shell }

// Serve serves logins on l until ctx is cancelled, then stops: it closes l, cancels the sessions
// (their clients are told "service stopping", their shells hung up), waits up to
// Config.StopGrace for them, kills the shells of those still running and waits a little more.
// Serve owns l. It returns nil after ctx is cancelled, or the error that stopped it otherwise.
// Call it once per Server.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	sessCtx, cancelSessions := context.WithCancel(ctx)
	defer cancelSessions()

	mux := transport.NewMux(&startupListener{Listener: l, srv: s})
	mux.NameTimeout = s.cfg.LoginGraceTime
	mux.MaxPending = s.cfg.MaxStartups
	mux.Logger = s.log
	mb, err := mux.Announce(MailboxName)
	if err != nil {
		_ = mux.Close()
		return fmt.Errorf("daemon: %w", err)
	}
	s.log.Info("serving logins", "addr", l.Addr().String(), "user", s.user, "shell", s.shell)

	var wg sync.WaitGroup
	muxErr := make(chan error, 1)
	wg.Go(func() {
		muxErr <- mux.Serve()
		_ = mux.Close() // a failed Serve: stop the accept loop below too
	})
	stopOnCancel := context.AfterFunc(ctx, func() { _ = mux.Close() })
	defer stopOnCancel()

	var sessions sync.WaitGroup
	var acceptErr error
	for {
		conn, err := mb.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				acceptErr = err
			}
			break
		}
		id := s.nextID.Add(1)
		s.track(id, conn)
		sessions.Go(func() {
			defer s.untrack(id)
			s.handle(sessCtx, id, conn)
		})
	}
	_ = mux.Close()
	wg.Wait()

	cancelSessions()
	s.stopSessions(&sessions)

	if ctx.Err() != nil {
		s.log.Info("stopped")
		return nil
	}
	if err := <-muxErr; err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("daemon: %w", err)
	}
	if acceptErr != nil {
		return fmt.Errorf("daemon: %w", acceptErr)
	}
	return fmt.Errorf("daemon: listener closed: %w", net.ErrClosed)
}

// stopSessions waits for the cancelled sessions to end: up to StopGrace, then it kills the shells
// still running (SIGKILL, and their terminals closed, which hangs up whatever else uses them),
// makes their conns fail and waits up to killGrace more. It returns even if some session still
// has not ended.
func (s *Server) stopSessions(sessions *sync.WaitGroup) {
	done := make(chan struct{})
	go func() {
		sessions.Wait()
		close(done)
	}()
	if waitDone(done, s.cfg.StopGrace) {
		return
	}
	s.mu.Lock()
	n := len(s.sessions)
	for _, a := range s.sessions {
		_ = a.conn.SetDeadline(time.Unix(1, 0)) // in the past: blocked I/O fails at once
		if a.cmd != nil {
			// Through the os.Process (a pidfd), never a bare pid: the shell may have been
			// reaped a moment ago and its pid reused.
			_ = a.cmd.Process.Signal(syscall.SIGKILL)
			_ = a.pty.Close()
		}
	}
	s.mu.Unlock()
	s.log.Warn("sessions still running after the stop grace time; killed their shells", "sessions", n, "grace", s.cfg.StopGrace)
	if !waitDone(done, killGrace) {
		s.log.Error("sessions still running; stopping anyway")
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

func (s *Server) track(id uint64, conn net.Conn) {
	s.mu.Lock()
	s.sessions[id] = &activeSession{conn: conn}
	s.mu.Unlock()
}

func (s *Server) untrack(id uint64) {
	s.mu.Lock()
	delete(s.sessions, id)
	s.mu.Unlock()
}

// setShell records the shell of session id, for a forced shutdown.
func (s *Server) setShell(id uint64, cmd *exec.Cmd, p *pty.PTY) {
	s.mu.Lock()
	if a := s.sessions[id]; a != nil {
		a.cmd, a.pty = cmd, p
	}
	s.mu.Unlock()
}

// Startup accounting: every raw conn is counted from Accept to Close (open); a conn that passed
// authentication is counted in authed until its session ends. open-authed is the number of
// conns not authenticated yet, wherever they are (name exchange, TLS handshake, login request),
// so the cap needs no link between a raw conn and the conn that reaches the mailbox.

// admit counts a new raw conn and reports whether it fits under MaxStartups.
func (s *Server) admit(remote string) bool {
	s.mu.Lock()
	if s.open-s.authed < s.cfg.MaxStartups {
		s.open++
		s.mu.Unlock()
		return true
	}
	// Log the first drop, then at most one line a second, with the count: a flood of
	// connections must not become a flood of log lines.
	s.dropped++
	dropped, now := s.dropped, time.Now()
	logIt := now.Sub(s.lastDrop) >= time.Second
	if logIt {
		s.dropped, s.lastDrop = 0, now
	}
	s.mu.Unlock()
	if logIt {
		s.log.Warn("too many unauthenticated connections (max-startups); connection closed",
			"remote", remote, "max_startups", s.cfg.MaxStartups, "closed", dropped)
	}
	return false
}

func (s *Server) closed() {
	s.mu.Lock()
	s.open--
	s.mu.Unlock()
}

// authenticated moves one conn out of the unauthenticated count; the func it returns moves it
// back when its session ends, just before its conn is closed.
func (s *Server) authenticated() (sessionEnded func()) {
	s.mu.Lock()
	s.authed++
	s.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			s.authed--
			s.mu.Unlock()
		})
	}
}

// startupListener applies MaxStartups to the raw conns of the daemon's listener.
type startupListener struct {
	net.Listener
	srv *Server
}

// Accept returns the next conn that fits under MaxStartups; it closes the others at once.
func (l *startupListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.srv.admit(c.RemoteAddr().String()) {
			return &startupConn{Conn: c, srv: l.srv, accepted: time.Now()}, nil
		}
		_ = c.Close()
	}
}

// startupConn counts itself out of Server.open when closed.
type startupConn struct {
	net.Conn
	srv      *Server
	accepted time.Time
	once     sync.Once
}

func (c *startupConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.srv.closed)
	return err
}

// CloseWrite half-closes the conn (TCP or Unix).
func (c *startupConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return fmt.Errorf("daemon: CloseWrite: %w", errors.ErrUnsupported)
}

// acceptedAt returns when the raw conn under c was accepted, if c wraps a startupConn in a way
// it can see (through NetConn methods, as the mailbox's conns and *tls.Conn have), else
// fallback, so the login grace time counts from accept and covers the name exchange too.
func acceptedAt(c net.Conn, fallback time.Time) time.Time {
	for range 8 { // bounded: a wrapper that returns itself must not loop forever
		if sc, ok := c.(*startupConn); ok {
			return sc.accepted
		}
		w, ok := c.(interface{ NetConn() net.Conn })
		if !ok {
			break
		}
		c = w.NetConn()
	}
	return fallback
}
