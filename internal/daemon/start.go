package daemon

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/rlogin-go/rlogin/internal/pipes"
	"github.com/rlogin-go/rlogin/internal/sanitize"
	"github.com/rlogin-go/rlogin/internal/systemlogin"
	"github.com/rlogin-go/rlogin/internal/usershell"
	"github.com/rlogin-go/rlogin/pty"
)

// An attempt is a conn's login, its handling before its session: it runs under the conn's
// grace deadline, and a shutdown cuts it short.
type attempt struct {
	*conn
	log       *slog.Logger
	deadline  time.Time   // the end of the login grace time
	stopAbort func() bool // ends the shutdown's watch; false if the shutdown came first
}

// beginLogin puts c under its grace deadline, and makes a shutdown (ctx done) fail the login's
// pending I/O at once.
func (g *Server) beginLogin(ctx context.Context, c *conn, log *slog.Logger) *attempt {
	deadline := c.ac.GraceDeadline()
	_ = c.SetDeadline(deadline) // a conn that cannot take deadlines fails its first I/O instead
	stop := context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Unix(1, 0)) })
	return &attempt{conn: c, log: log, deadline: deadline, stopAbort: stop}
}

// A slot is a session counted against MaxSessions until released.
type slot struct {
	s    *serverState
	once sync.Once
}

// release frees the slot; it may be called more than once (nil: no slot).
func (sl *slot) release() {
	if sl == nil {
		return
	}
	sl.once.Do(func() {
		sl.s.mu.Lock()
		sl.s.running--
		sl.s.mu.Unlock()
	})
}

// claimSession ends the authorization of c's login, whose outcome is ok (reason: the refusal).
// A refused client is told reason, and its source will be penalized. An authorized conn claims
// a session slot (MaxSessions), which must be released when the session has ended, and leaves
// the unauthenticated ones, unless its verdict is still pending (lg.passwordPending: login(1)
// checks the password in the session): such a conn is an authentication attempt, under its
// grace deadline and counted as unauthenticated until the password is accepted (see
// runSession), and a failure however it ends before that. If MaxSessions sessions run already,
// the client is refused, and the conn stays unauthenticated, but out of the penalties, until it
// closes. It returns nil once the client is refused.
func (g *Server) claimSession(c *conn, p interface{ Refuse(string) error }, reason string, ok bool, lg *systemLogin) *slot {
	if !ok {
		c.ac.Failed()
		_ = p.Refuse(reason)
		return nil
	}
	g.mu.Lock()
	if max := g.cfg.MaxSessions; max > 0 && g.running >= max {
		g.mu.Unlock()
		c.ac.Authenticated() // the server's limit, not the client's failure
		g.log.Warn("login refused: too many sessions", "max_sessions", max)
		_ = p.Refuse(reasonMaxSessions)
		return nil
	}
	g.running++
	g.mu.Unlock()
	if lg.passwordPending() {
		c.ac.Attempting()
	} else {
		c.ac.Authenticated()
		c.ac.StartSession()
	}
	return &slot{s: g.serverState}
}

// A sessionRequest is what an authorized login asks of its session, whatever the protocol.
type sessionRequest struct {
	term     string   // TERM, valid (session.TerminalTypeOrDumb)
	locale   []string // the accepted locale variables
	window   pty.Size
	command  string // run by the user's shell in place of a login shell (user mode): the client's, or a forced one
	original string // the client's command when command is a forced one (SSH_ORIGINAL_COMMAND)
	pipes    bool   // run command without a terminal, on pipes
	logAttrs []any  // what the session's log adds after the pid (System logins)

	resume *resumable // the session's entry in the resume registry; nil if it may not be resumed
}

// errStopping is startSession's error when the shutdown came before the session started.
var errStopping = errors.New("daemon: service stopping")

// A protocol is the server side of one login protocol, once its login is authorized.
type protocol interface {
	Refuse(reason string) error
	Close() error
	// serve lifts the login's deadline and serves term until the session ends; it returns what
	// session.ServerConn.Serve (or classic's) returns.
	serve(ctx context.Context, term systemlogin.Terminal) (*os.ProcessState, error)
}

// runSession starts the session of the login authorized on a (see startSession), holding slot,
// serves it with p to its end, and logs it; the log line of its start adds started. If the
// session cannot start, the client is refused and the slot released.
//
// A password login (lg.passwordPending) is authenticated only when login(1) has accepted the
// password and started the user's session (the password gate opens): only then does the conn
// leave the unauthenticated ones and its grace deadline, and is "session started" logged. A
// login that ends before, however it ends, is a failed attempt, logged as one and charged to
// its source.
func (g *Server) runSession(ctx context.Context, a *attempt, p protocol, slot *slot, lg *systemLogin, sr sessionRequest, started ...any) {
	var verdict passwordVerdict
	if lg.passwordPending() {
		lg.onFail = func() { verdict.failed.Store(true); a.ac.Failed() }
		openLog := a.log.With(sr.logAttrs...)
		lg.onOpen = func() {
			verdict.accepted.Store(true)
			a.ac.Authenticated()
			a.ac.StartSession()
			_ = a.SetDeadline(time.Time{}) // lifted: the grace deadline no longer clamps it
			openLog.Info("session started", started...)
		}
	}
	run, err := g.startSession(a, lg, sr)
	if err != nil {
		slot.release()
		reason := reasonNoShell
		if errors.Is(err, errStopping) {
			reason = reasonStopping
		}
		_ = p.Refuse(reason)
		return
	}
	if lg.passwordPending() {
		run.log.Info("login(1) asks for the password", started...)
	} else {
		run.log.Info("session started", started...)
	}
	start := time.Now()
	if sr.resume != nil {
		g.resumes.add(sr.resume, run.p.Pid())
	}
	var state *os.ProcessState
	if cp, ok := p.(commandProtocol); ok && run.pipes != nil {
		state, err = cp.serveCommand(ctx, run.pipes)
	} else {
		state, err = p.serve(ctx, run.term)
	}
	if sr.resume != nil {
		sr.resume.ended(ctx.Err() != nil)
	}
	run.finish()
	slot.release()
	_ = p.Close()
	if lg.passwordPending() && !verdict.accepted.Load() {
		run.endAttempt(start, verdict.failed.Load())
	} else {
		run.end(start, state, err)
	}
	run.endProcesses(g.cfg.StopGrace)
}

// A passwordVerdict is what the password gate said of a password login.
type passwordVerdict struct {
	accepted atomic.Bool // the session started
	failed   atomic.Bool // the login failed, and the gate logged why
}

// commandProtocol is a protocol that also serves a command without a terminal (the secure
// one: capability exec).
type commandProtocol interface {
	serveCommand(ctx context.Context, c *pipes.Command) (*os.ProcessState, error)
}

// running is a session that started: its program on a pty (or pipes) and what to serve.
type running struct {
	log   *slog.Logger         // with the pid
	p     program              // the program's pty, or pipes
	term  systemlogin.Terminal // the pty, or the password gate in front of it; nil for pipes
	pipes *pipes.Command       // the command's pipes; nil on a pty
	login *systemlogin.Session // nil in user mode
}

// program is what a session's end needs of its program's terminal or pipes (*pty.PTY and
// *pipes.Command are).
type program interface {
	Pid() int
	Close() error
	Wait() (*os.ProcessState, error)
	End(grace time.Duration) error
}

// startSession starts the session of an authorized login unless the shutdown came first
// (errStopping): login(1) for lg (a System login), or the daemon user's shell (lg nil), on a new
// pty, recorded on l's conn for a forced stop; for a password login, the password gate in front
// of it. It logs why it failed.
func (g *Server) startSession(l *attempt, lg *systemLogin, sr sessionRequest) (*running, error) {
	if !l.stopAbort() {
		return nil, errStopping
	}
	if lg == nil {
		return g.startUserSession(l, sr)
	}
	sl := lg.login(systemlogin.PeerHost(l.RemoteAddr()))
	cmd, p, err := systemlogin.Start(g.cfg.LoginProgram, sl, systemlogin.Request{Term: sr.term, Locale: sr.locale, Window: sr.window})
	if err != nil {
		l.log.Error("cannot start the session", "program", g.cfg.LoginProgram, "err", err)
		return nil, err
	}
	l.setShell(cmd, p)
	run := &running{log: l.log.With("pid", p.Pid()).With(sr.logAttrs...), p: p, term: p}
	run.login, err = systemlogin.NewSession(run.log, p, sl, l.deadline)
	if err != nil {
		run.log.Error("cannot start the session", "err", err)
		p.Hangup()
		_ = p.Close()
		_, _ = p.Wait()
		_ = p.End(g.cfg.StopGrace) // login(1) did not get far: at most a cgroup to remove
		return nil, err
	}
	run.term = run.login.Terminal()
	return run, nil
}

// startUserSession starts the daemon user's shell (user mode): a login shell, or a command on
// a pty or on pipes.
func (g *Server) startUserSession(l *attempt, sr sessionRequest) (*running, error) {
	sh := usershell.Shell{User: g.user, Home: g.home, Path: g.shell, Command: sr.command, OriginalCommand: sr.original}
	var cmd *exec.Cmd
	run := &running{}
	var err error
	if sr.pipes {
		cmd, run.pipes, err = usershell.StartPipes(l.log, sh, sr.locale)
		run.p = run.pipes
	} else {
		var p *pty.PTY
		cmd, p, err = usershell.Start(l.log, sh, sr.term, sr.locale, sr.window)
		run.p, run.term = p, p
	}
	if err != nil {
		l.log.Error("cannot start the shell", "shell", g.shell, "err", err)
		return nil, err
	}
	l.setShell(cmd, run.p)
	run.log = l.log.With("pid", run.p.Pid()).With(sr.logAttrs...)
	return run, nil
}

// finish is called once the session is served, before its end is logged.
func (r *running) finish() {
	if r.login != nil {
		r.login.Finish()
	}
}

// end closes the pty, reaps its program if Serve did not (state is nil then) and logs the end
// of the session served since start; state and err are what Serve returned.
func (r *running) end(start time.Time, state *os.ProcessState, err error) {
	_ = r.p.Close()
	if state == nil {
		state, _ = r.p.Wait() // Serve waited already; this only fetches the status
	}
	attrs := []any{"duration", time.Since(start).Round(time.Millisecond)}
	attrs = append(attrs, exitAttrs(state)...)
	if err != nil {
		attrs = append(attrs, "err", sanitize.Text(err.Error())) // may quote what the peer sent
	}
	r.log.Info("session ended", attrs...)
}

// endAttempt closes the pty of a password login that ended before the password was accepted,
// reaps login(1), and logs the failed attempt, unless the gate logged it already (logged).
func (r *running) endAttempt(start time.Time, logged bool) {
	_ = r.p.Close()
	_, _ = r.p.Wait()
	if !logged {
		r.log.Warn("authentication failed", "reason", "the connection ended before the password was accepted",
			"duration", time.Since(start).Round(time.Millisecond))
	}
}

// endProcesses ends what is left of the session once its program has exited (the jobs it left
// behind, SIGHUP-proof or not): they are gone grace after the hangup, or after now if there was
// none (PTY.End).
func (r *running) endProcesses(grace time.Duration) {
	if err := r.p.End(grace); err != nil {
		r.log.Error("cannot end the session's processes", "err", err)
	}
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
