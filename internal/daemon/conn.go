package daemon

import (
	"context"
	"crypto/ed25519"
	"errors"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/rlogin-go/rlogin/internal/admission"
	"github.com/rlogin-go/rlogin/internal/sanitize"
	"github.com/rlogin-go/rlogin/keys"
	"github.com/rlogin-go/rlogin/pty"
	"github.com/rlogin-go/rlogin/session"
	"github.com/rlogin-go/rlogin/transport"
)

// Reasons sent to refused clients. They say no more than ssh would about which check failed.
const (
	reasonDenied      = "permission denied (publickey)"
	reasonInvalidUser = "invalid user name"
	reasonNoShell     = "cannot start a shell"
	reasonStopping    = "service stopping"
	reasonTimedOut    = "login timed out"
)

// handle runs one conn from the mailbox to the end of its session; it owns conn. Everything
// before the shell starts runs under the login grace deadline, counted from when the raw conn
// was accepted when that can be seen through the mailbox's wrapping, else from now.
func (s *Server) handle(ctx context.Context, ac *admission.Conn, conn net.Conn) {
	if cc, ok := conn.(classicConn); ok {
		s.handleClassic(ctx, ac, cc.Conn)
		return
	}
	id := ac.ID()
	log := s.log.With("conn", id, "remote", conn.RemoteAddr().String())
	log.Info("connection accepted")
	deadline := ac.GraceDeadline()
	_ = conn.SetDeadline(deadline) // a conn that cannot take deadlines fails its first I/O instead
	// A shutdown during the login makes its pending I/O fail at once.
	stopAbort := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stopAbort()

	hctx, cancel := context.WithDeadline(ctx, deadline)
	sc, err := transport.Server(hctx, conn, &transport.SecureConfig{
		Key:              s.cfg.HostKey,
		HandshakeTimeout: max(time.Until(deadline), time.Millisecond),
	})
	cancel()
	if err != nil { // transport.Server closed conn
		s.logLoginError(ctx, log, "TLS handshake", err)
		return
	}
	_ = sc.SetDeadline(deadline) // the handshake may have cleared it
	key := sc.PeerKey()
	log = log.With("key", keys.Fingerprint(key))
	srv := session.NewServerConn(sc)
	req, err := srv.ReadRequest()
	if err != nil {
		s.logLoginError(ctx, log, "login request", err)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			// Say why, as docs/protocol.md §8 asks. Refuse gives its write a short deadline,
			// which the startup conn allows a little past the grace time (farewellAllowance).
			reason := reasonTimedOut
			if ctx.Err() != nil {
				reason = reasonStopping
			}
			_ = srv.Refuse(reason)
			return
		}
		_ = srv.Close()
		return
	}
	lg, reason, ok := s.authorizeLogin(log, req, key)
	if !ok {
		ac.Failed() // for the per-source penalties
		_ = srv.Refuse(reason)
		return
	}
	// From here the conn no longer counts as unauthenticated; it holds a session slot
	// (MaxSessions) until ended runs.
	ended, refusal := s.authenticated(ac)
	defer ended()
	if refusal != "" {
		_ = srv.Refuse(refusal)
		return
	}

	log, p, term, finishLogin, ok := s.startSession(sessionStart{
		id: id, log: log, lg: lg, req: req, host: peerHost(conn.RemoteAddr()), deadline: deadline,
		stopAbort: stopAbort, ended: ended, refuse: func(reason string) { _ = srv.Refuse(reason) },
		stopping: reasonStopping, noShell: reasonNoShell,
		startLogin:  s.startLogin,
		startFailed: "cannot start the shell", programKey: "shell",
		loginAttrs: func(lg *systemLogin) []any { return []any{"user", lg.user.name, "method", lg.method} },
		onFail:     ac.Failed, // a wrong password, for the penalties
	})
	if !ok {
		return
	}
	if lg != nil {
		log.Info("session started", "term", sanitize.Text(req.Term))
	} else {
		log.Info("session started", "user", s.user, "term", sanitize.Text(req.Term))
	}
	start := time.Now()
	_ = sc.SetDeadline(time.Time{}) // the session has no deadline
	state, err := srv.Serve(ctx, term)
	finishLogin()
	ended()
	_ = srv.Close()
	endSession(log, p, start, state, err)
}

// sessionStart is how a login flow (the secure one of handle, or handleClassic's) has
// startSession start the session of an authorized login.
type sessionStart struct {
	id       uint64
	log      *slog.Logger
	lg       *systemLogin // the System login; nil in user mode (the daemon's own shell)
	req      *session.Request
	host     string    // the client's host, for login(1)
	deadline time.Time // the end of the login grace time

	stopAbort func() bool // stops the shutdown's abort of the login; false if the shutdown came first
	ended     func()      // frees the session slot, before a refusal
	refuse    func(reason string)
	stopping  string // the refusal reason when the shutdown came first
	noShell   string // the refusal reason when the session cannot start

	// startLogin starts login(1) for lg (startLogin or startClassicLogin).
	startLogin  func(log *slog.Logger, req *session.Request, lg *systemLogin, host string) (*exec.Cmd, *pty.PTY, error)
	startFailed string // what is logged when the program does not start,
	programKey  string // with the program under this key
	// loginAttrs, if not nil, returns what the log of lg's session adds before the password
	// gate starts.
	loginAttrs func(lg *systemLogin) []any
	onFail     func() // if not nil, becomes lg.onFail: called when the password login fails
}

// terminal is what both flows serve: a session.Terminal that also reads in packet mode, so a
// classic.Terminal too. *pty.PTY and the password gate are both.
type terminal interface {
	session.Terminal
	ReadPacket(b []byte) (n int, status pty.Status, err error)
}

var (
	_ terminal = (*pty.PTY)(nil)
	_ terminal = (*loginGate)(nil)
)

// startSession starts the session of an authorized login unless the shutdown came first: it
// starts login(1) (st.lg not nil) or the shell on a new pty, records it for a forced shutdown,
// and for login(1) puts the password gate in front (loginSession). It returns the session's
// log (with the pid), the pty, the terminal to serve and finish, to be called once Serve has
// returned; or ok false once it has logged why, freed the slot and refused the client.
func (s *Server) startSession(st sessionStart) (log *slog.Logger, p *pty.PTY, term terminal, finish func(), ok bool) {
	log, lg := st.log, st.lg
	if !st.stopAbort() { // the shutdown came first
		st.ended()
		st.refuse(st.stopping)
		return nil, nil, nil, nil, false
	}
	var cmd *exec.Cmd
	var err error
	if lg != nil {
		cmd, p, err = st.startLogin(log, st.req, lg, st.host)
	} else {
		cmd, p, err = s.startShell(log, st.req)
	}
	if err != nil {
		log.Error(st.startFailed, st.programKey, s.program(lg), "err", err)
		st.ended()
		st.refuse(st.noShell)
		return nil, nil, nil, nil, false
	}
	s.setShell(st.id, cmd, p)
	log = log.With("pid", p.Pid())
	if lg == nil {
		return log, p, p, func() {}, true
	}
	if st.loginAttrs != nil {
		log = log.With(st.loginAttrs(lg)...)
	}
	if st.onFail != nil {
		lg.onFail = st.onFail
	}
	lt, finish, err := s.loginSession(log, p, lg, st.deadline)
	if err == nil {
		if term, ok = lt.(terminal); !ok {
			err = errors.New("daemon: the login terminal cannot serve classic rlogin")
		}
	}
	if err != nil {
		log.Error("cannot start the session", "err", err)
		st.ended()
		st.refuse(st.noShell)
		p.Hangup()
		_ = p.Close()
		_, _ = p.Wait()
		return nil, nil, nil, nil, false
	}
	return log, p, term, finish, true
}

// endSession closes p, reaps its program if Serve did not (state is nil then) and logs the end
// of the session served since start; state and err are what Serve returned.
func endSession(log *slog.Logger, p *pty.PTY, start time.Time, state *os.ProcessState, err error) {
	_ = p.Close()
	if state == nil {
		state, _ = p.Wait() // Serve waited already; this only fetches the status
	}
	attrs := []any{"duration", time.Since(start).Round(time.Millisecond)}
	attrs = append(attrs, exitAttrs(state)...)
	if err != nil {
		attrs = append(attrs, "err", sanitize.Text(err.Error())) // may quote what the peer sent
	}
	log.Info("session ended", attrs...)
}

// logLoginError logs why a login ended before authorization.
func (s *Server) logLoginError(ctx context.Context, log *slog.Logger, stage string, err error) {
	switch {
	case ctx.Err() != nil:
		log.Info("login abandoned: service stopping", "stage", stage)
	case isTimeout(err):
		log.Warn("login grace time exceeded; connection closed", "stage", stage, "grace", s.cfg.LoginGraceTime)
	default:
		log.Warn("login failed", "stage", stage, "err", sanitize.Text(err.Error()))
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) ||
		(errors.As(err, &ne) && ne.Timeout())
}

// authorize decides a login request from the holder of key. It returns the refusal's reason and
// false, or "" and true. In order: the requested name must be a valid user name (checked before
// anything else), the key must be in the authorized_keys file, and the name must be the
// daemon's user; so a client whose key is not authorized learns nothing about the user.
func (s *Server) authorize(log *slog.Logger, req *session.Request, key ed25519.PublicKey) (string, bool) {
	if !session.ValidUserName(req.User) {
		log.Warn("login refused", "reason", errInvalidUser.Error(), "user", sanitize.Text(req.User))
		return reasonInvalidUser, false
	}
	user := req.User // valid, so safe to log as is
	auth, err := keys.LoadAuthorized(s.cfg.AuthorizedKeys, s.uid, s.home)
	if err != nil {
		log.Error("authentication failed: cannot use the authorized keys file", "user", user, "err", err)
		return reasonDenied, false
	}
	if len(auth.Skipped) > 0 {
		skipped := make([]string, len(auth.Skipped))
		for i, sk := range auth.Skipped {
			skipped[i] = sk.String()
		}
		log.Warn("authorized keys lines skipped", "path", s.cfg.AuthorizedKeys, "lines", strings.Join(skipped, "; "))
	}
	if !auth.Allows(key) {
		log.Warn("authentication failed", "user", user, "reason", "key not in "+s.cfg.AuthorizedKeys)
		return reasonDenied, false
	}
	if user != s.user {
		log.Warn("login refused", "user", user, "reason", "this rlogind serves only user "+s.user)
		return "this rlogind serves only user " + s.user, false
	}
	log.Info("authentication succeeded", "method", methodPublicKey, "user", user)
	return "", true
}

// startShell starts the user's login shell on a new pty: argv[0] is "-" and the shell's base
// name, the working directory the home directory, and the environment exactly shellEnv's.
func (s *Server) startShell(log *slog.Logger, req *session.Request) (*exec.Cmd, *pty.PTY, error) {
	locale := acceptedLocale(log, req)
	dir := s.home
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		log.Warn("no home directory; starting the shell in /", "home", dir)
		dir = "/"
	}
	cmd := &exec.Cmd{
		Path: s.shell,
		Args: []string{"-" + filepath.Base(s.shell)},
		Env:  shellEnv(s.user, s.home, s.shell, session.TerminalTypeOrDumb(req.Term), locale),
		Dir:  dir,
	}
	p, err := pty.Start(cmd, req.Window)
	return cmd, p, err
}

// acceptedLocale returns the locale variables of req that the shell gets (see localeEnv), and
// logs the names of the others.
func acceptedLocale(log *slog.Logger, req *session.Request) []string {
	locale, dropped := localeEnv(req.Env)
	if len(dropped) > 0 {
		names := make([]string, len(dropped))
		for i, kv := range dropped {
			name, _, _ := strings.Cut(kv, "=")
			names[i] = sanitize.Text(name)
		}
		log.Debug("environment variables not passed", "names", strings.Join(names, ","))
	}
	return locale
}

// exitAttrs describes how a shell ended, for the log.
func exitAttrs(st *os.ProcessState) []any {
	if st == nil {
		return []any{"status", "unknown"}
	}
	if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return []any{"signal", ws.Signal().String(), "core_dumped", ws.CoreDump()}
	}
	return []any{"status", st.ExitCode()}
}
