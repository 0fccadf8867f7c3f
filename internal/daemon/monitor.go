package daemon

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/rlogin-go/rlogin/internal/logsink"
	"github.com/rlogin-go/rlogin/internal/pamlogin"
	"github.com/rlogin-go/rlogin/internal/privsep"
	"github.com/rlogin-go/rlogin/internal/sanitize"
	"github.com/rlogin-go/rlogin/internal/systemlogin"
	"github.com/rlogin-go/rlogin/keys"
	"github.com/rlogin-go/rlogin/pty"
	"github.com/rlogin-go/rlogin/session"
	"github.com/rlogin-go/rlogin/session/classic"
	"golang.org/x/crypto/ssh"
)

// The monitor: the root process of one connection (see roles.go). It never reads the network:
// its net child does, and asks it for what needs root (a host-key signature, the
// authorization, the session), in the messages of package privsep.

// netChildWait bounds how long a monitor waits for its net child to finish once there is
// nothing more it can do (a refusal sent, the session's shell reaped and its output drained).
const netChildWait = 5 * time.Second

// farewell is how long the net child has, past the grace deadline or a stop, to tell its
// client why the login ends, before it is killed.
const farewell = 2 * time.Second

// runMonitor is the monitor role's main: it serves the connection on monitorConnFD with the
// configuration on monitorConfigFD, reporting to the listener on monitorControlFD.
func runMonitor() int {
	cfgFile := os.NewFile(monitorConfigFD, "monitor-config")
	var mc monitorConfig
	err := json.NewDecoder(io.LimitReader(cfgFile, 1<<20)).Decode(&mc)
	_ = cfgFile.Close()
	if err != nil {
		fmt.Fprintf(os.Stderr, "rlogind: monitor: read the configuration: %v\n", err)
		return 1
	}
	sink, err := logsink.Open(logsink.Options{Level: mc.LogLevel, Format: mc.LogFormat, File: mc.LogPath}, os.Stderr, false)
	if err != nil {
		fmt.Fprintf(os.Stderr, "rlogind: monitor: %v\n", err)
		return 1
	}
	defer sink.Close()
	control, err := packetConn(os.NewFile(monitorControlFD, "monitor-control"))
	if err != nil {
		sink.Logger().Error("monitor: no control socket", "err", err)
		return 1
	}
	defer control.Close()
	connFile := os.NewFile(monitorConnFD, "monitor-conn")
	conn, err := net.FileConn(connFile)
	_ = connFile.Close() // conn has its own descriptor
	if err != nil {
		sink.Logger().Error("monitor: no connection", "err", err)
		return 1
	}
	log := sink.Logger().With("conn", mc.ConnID, "remote", conn.RemoteAddr().String())
	if len(mc.HostKeySeed) != ed25519.SeedSize {
		log.Error("monitor: no host key in the configuration")
		_ = conn.Close()
		return 1
	}
	g, err := newGeneration(Config{
		HostKey:                  ed25519.NewKeyFromSeed(mc.HostKeySeed),
		AuthorizedKeys:           mc.AuthorizedKeys,
		Home:                     "/", // System mode: each user's own
		LoginGraceTime:           mc.LoginGraceTime,
		StopGrace:                mc.StopGrace,
		Logger:                   log,
		System:                   true,
		PermitRootLogin:          mc.PermitRootLogin,
		PasswordAuthentication:   mc.PasswordAuthentication,
		LoginProgram:             mc.LoginProgram,
		Classic:                  mc.Classic,
		HostCertificate:          mc.HostCertificate,
		TrustedUserCAKeys:        mc.TrustedUserCAKeys,
		AuthorizedPrincipalsFile: mc.AuthorizedPrincipals,
		RevokedKeys:              mc.RevokedKeys,
		ClientAlive:              mc.ClientAlive,
		DetachTimeout:            mc.DetachTimeout,
		DetachBuffer:             mc.DetachBuffer,
	})
	if err != nil {
		log.Error("monitor: configuration", "err", err)
		_ = conn.Close()
		return 1
	}
	g.serverState = &serverState{}
	g.runsCommands = pamlogin.Supported
	if g.executable, err = os.Executable(); err != nil { // the net child is this program too
		log.Error("monitor: this program's path", "err", err)
		_ = conn.Close()
		return 1
	}
	// SIGTERM ends the session (EndAllSessions); SIGHUP reopens the log (logrotate signals
	// every rlogind: a reload must not end sessions); SIGINT is not for a daemon's session.
	// Handled, not ignored, so that login(1) and the shell get them at their defaults.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	others := make(chan os.Signal, 1)
	signal.Notify(others, syscall.SIGHUP, syscall.SIGINT)
	defer signal.Stop(others)
	var reopening sync.WaitGroup
	defer reopening.Wait()
	reopenCtx, endReopen := context.WithCancel(ctx)
	defer endReopen()
	reopening.Go(func() {
		for {
			select {
			case <-reopenCtx.Done():
				return
			case sig := <-others:
				if sig == syscall.SIGHUP {
					_ = sink.Reopen()
				}
			}
		}
	})
	m := &monitor{g: g, log: log, control: control, deadline: mc.Deadline}
	m.run(ctx, conn)
	return 0
}

// A monitor serves one connection as root.
type monitor struct {
	g        *Server
	log      *slog.Logger
	control  *net.UnixConn // to the listener (nil: none); its writes fail harmlessly once the listener is gone
	deadline time.Time     // the end of the login grace time
}

// report tells the listener ev (eventAttempt, eventFailed, eventEnded), if there is one.
func (m *monitor) report(ev byte) {
	if m.control != nil {
		_, _ = m.control.Write([]byte{ev})
	}
}

// mayStart asks the listener for a place among its MaxSessions; without a listener (it has
// stopped, or inetd started this monitor: ServeConn) the session may start.
func (m *monitor) mayStart() bool {
	if m.control == nil {
		return true
	}
	if _, err := m.control.Write([]byte{eventSession}); err != nil {
		return true
	}
	_ = m.control.SetReadDeadline(time.Now().Add(10 * time.Second))
	var b [1]byte
	n, err := m.control.Read(b[:])
	_ = m.control.SetReadDeadline(time.Time{})
	return err != nil || n == 0 || b[0] == answerYes
}

// run serves conn: it starts the net child with it, answers the child's requests until the
// login is refused or its session has ended, and ends the session's processes.
func (m *monitor) run(ctx context.Context, conn net.Conn) {
	m.log.Info("connection accepted")
	child, err := m.startNetChild(conn)
	remote := conn.RemoteAddr()
	_ = conn.Close() // the child has its own copy; the connection ends with it
	if err != nil {
		m.log.Error("cannot start the network process; connection closed", "err", err)
		m.report(eventServerFault)
		return
	}
	loggedIn := false // the child sent its LOGIN: what it says at its end is not a pre-login failure
	defer func() { child.finish(m.log, !loggedIn) }()

	// The login: everything until the session starts is bounded by the grace time, whatever
	// the child does.
	graceTimer := time.AfterFunc(time.Until(m.deadline), child.kill) // serveLogin logs it
	stopTimer := context.AfterFunc(ctx, child.kill)                  // a stop during the login ends it
	login, instead, ok := m.serveLogin(ctx, child)
	if !graceTimer.Stop() || !stopTimer() || !ok {
		return
	}
	loggedIn = true
	m.serveSession(ctx, child, login, instead, remote)
}

// serveLogin answers the child's requests until its LOGIN, and returns it with the COMMAND,
// RESUME or LIST that came before it, if any (the conversation checks their order: newRelay).
func (m *monitor) serveLogin(ctx context.Context, child *netChild) (*privsep.Login, privsep.Message, bool) {
	holder, err := privsep.NewHostKeyHolder(m.g.cfg.HostKey)
	if err != nil {
		m.log.Error("monitor: host key", "err", err)
		return nil, nil, false
	}
	var instead privsep.Message // a COMMAND, RESUME or LIST
	for {
		msg, _, err := child.ch.Receive()
		if err != nil {
			switch {
			case ctx.Err() != nil:
				m.log.Info("login abandoned: service stopping")
			case !time.Now().Before(m.deadline):
				// The child gave up at the deadline, or the grace timer killed it.
				m.log.Warn("login grace time exceeded; connection closed", "grace", m.g.cfg.LoginGraceTime)
			case !errors.Is(err, io.EOF):
				m.log.Warn("login failed", "stage", "network process", "err", sanitize.Text(err.Error()))
			}
			return nil, nil, false
		}
		switch msg := msg.(type) {
		case *privsep.Sign:
			sig, err := holder.Answer(msg)
			if err != nil {
				m.log.Error("login failed: the network process asked for a signature it does not need; connection closed", "err", err)
				_ = child.ch.Send(&privsep.Refuse{Reason: "protocol error"})
				return nil, nil, false
			}
			if err := child.ch.Send(sig); err != nil {
				return nil, nil, false
			}
		case *privsep.Command, *privsep.Resume, *privsep.List:
			if instead != nil {
				m.log.Error("login failed: the network process sent a second COMMAND, RESUME or LIST; connection closed", "type", msg.Type().String())
				return nil, nil, false
			}
			instead = msg
		case *privsep.Login:
			return msg, instead, true
		default:
			m.log.Error("login failed: the network process sent a message out of order; connection closed", "type", msg.Type().String())
			return nil, nil, false
		}
	}
}

// serveSession decides the login and, if it is authorized, starts its session on a pty, hands
// the pty's master to the child and does the shell's process operations for it until the
// session has ended. With a COMMAND (a PAM build), the session runs the command in place of the
// login shell: on the pty, or on three pipes it hands over in the pty's place (PIPES). With a
// RESUME or a LIST, the connection starts no session: once authenticated, it is answered with
// another session (serveResume).
func (m *monitor) serveSession(ctx context.Context, child *netChild, login *privsep.Login, instead privsep.Message, remote net.Addr) {
	g := m.g
	cmd, _ := instead.(*privsep.Command)
	r, err := newRelay(child.ch, instead, login)
	if err != nil {
		m.log.Error("monitor: the conversation", "err", err)
		return
	}
	actx, cancel := context.WithDeadline(ctx, m.deadline) // users' files are read by the deadline
	defer cancel()
	var lg *systemLogin
	var reason string
	var ok bool
	var sr sessionRequest
	cl := &client{addr: remote} // a secure login's key and its options, once authorized
	log := m.log
	switch login.Protocol {
	case privsep.ProtocolSecure:
		log = log.With("key", keys.Fingerprint(login.ClientKey))
		req := &session.Request{User: login.User, Term: login.Term, Window: login.Window, Env: login.Env}
		if cmd != nil {
			c := cmd.Command
			req.Command = &c
		}
		cert, err := clientCertificate(login)
		if err != nil {
			log.Warn("login refused", "reason", err.Error())
			m.report(eventFailed)
			_ = child.ch.Send(&privsep.Refuse{Reason: reasonDenied})
			return
		}
		cl = &client{key: login.ClientKey, cert: cert, addr: remote}
		if pamlogin.Supported {
			lg, reason, ok = g.authorizePasswordAlike(actx, log, req, cl)
		} else {
			lg, reason, ok = g.authorizeSystem(actx, log, req, cl)
		}
		sr = sessionRequest{term: session.TerminalTypeOrDumb(login.Term), locale: acceptedLocale(log, req), window: login.Window}
		if ok {
			ok, reason = m.sessionCommand(log, req, cl, lg, &sr)
		}
	case privsep.ProtocolClassic:
		log = log.With("protocol", "classic", "user", login.User, "client_user", login.ClientUser)
		req := &classic.Request{ServerUser: login.User, ClientUser: login.ClientUser, Term: login.Term}
		unknown := false
		if pamlogin.Supported && g.cfg.PasswordAuthentication && g.cfg.Classic.Enabled && session.ValidUserName(login.User) {
			// As for a secure login (authorizePasswordAlike): no .rhosts trusts a user that
			// does not exist, so the password is asked.
			lg, reason, unknown = g.unknownUser(log, login.User)
			ok = lg != nil
		}
		if !unknown {
			lg, reason, ok = g.authorizeClassic(actx, log, remote, req)
		}
		sr = sessionRequest{term: session.TerminalTypeOrDumb(login.Term), window: pty.Size{Rows: classicDefaultRows, Cols: classicDefaultCols}}
	}
	proven := false // the client signed the monitor's nonce with login.ClientKey
	if ok && login.KeyProof && !lg.passwordPending() {
		if err := proveKey(actx, r, login); err != nil {
			log.Warn("authentication failed", "method", methodPublicKey, "user", lg.user.Name,
				"reason", "key proof failed", "err", sanitize.Text(err.Error()))
			m.report(eventFailed)
			_ = r.send(&privsep.Refuse{Reason: reasonDenied})
			return
		}
		proven = true
	}
	if ok && lg.user.UID == 0 && !lg.passwordPending() && !proven {
		// Without the client's signature of a nonce (an older client, without capability
		// keyproof), the monitor would take the net child's word for the key the client proved
		// it holds (docs/system-mode.md): a taken-over net child could claim root's public key.
		// A proven key, or a password the monitor checks itself (PAM), PermitRootLogin decides.
		log.Warn("login refused", "user", lg.user.Name,
			"reason", "root logs in with a key under privilege separation only from a client that proves it to the monitor (keyproof: a newer rlogin)")
		m.report(eventServerFault)
		_ = r.send(&privsep.Refuse{Reason: reasonDenied})
		return
	}
	if ok && lg.passwordPending() && !pamlogin.Supported {
		// The password gate needs the terminal's input in this process, which the child serves:
		// with privilege separation, password logins need PAM's conversation. The client is
		// answered as for an unknown user, and charged alike: a different answer would tell
		// who exists, and an uncharged one would let names be probed for free.
		log.Warn("authentication failed", "method", methodPublicKey, "user", lg.user.Name,
			"reason", "no key authorized, and password logins with privilege separation need rlogind built with PAM (go build -tags pam)")
		m.report(eventFailed)
		denied := reasonDenied
		if login.Protocol == privsep.ProtocolClassic {
			denied = classicDenied
		}
		_ = child.ch.Send(&privsep.Refuse{Reason: denied})
		return
	}
	if !ok {
		m.report(eventFailed)
		if err := child.ch.Send(&privsep.Refuse{Reason: fitText(reason, privsep.MaxPromptLen)}); err != nil {
			log.Error("cannot tell the client why", "err", err)
		}
		return
	}
	host := systemlogin.PeerHost(remote)
	if cmd == nil && instead != nil {
		m.serveResume(ctx, actx, child, r, log, instead, lg, cl, proven, remote)
		return
	}
	// A command's output is the command's: the stacks' messages (the motd, an expiry warning)
	// are not shown, as sshd shows none for a command; on pipes, not even before it starts.
	r.quiet = sr.pipes
	var pl *pamlogin.Login
	if pamlogin.Supported {
		if pl, ok = m.pamCheck(actx, log, r, lg, host); !ok {
			return
		}
		defer pl.Close() // after the session's processes are ended (deferred below)
	}
	r.quiet = sr.command != ""
	if !m.mayStart() {
		_ = r.send(&privsep.Refuse{Reason: reasonMaxSessions})
		return
	}
	defer m.report(eventEnded)
	if sr.pipes {
		m.servePipes(ctx, child, r, log, lg, pl, sr)
		return
	}
	var p *pty.PTY
	var sl *systemlogin.Login
	if pl != nil {
		p, err = startPAM(actx, pl, sr)
	} else {
		sl = lg.login(host)
		_, p, err = systemlogin.Start(g.cfg.LoginProgram, sl, systemlogin.Request{Term: sr.term, Locale: sr.locale, Window: sr.window})
	}
	if err != nil {
		log.Error("cannot start the session", "program", m.sessionProgramName(pl), "err", err)
		_ = r.send(&privsep.Refuse{Reason: reasonNoShell})
		return
	}
	run := &running{log: log.With("pid", p.Pid(), "user", lg.user.Name, "method", lg.method), p: p, term: p}
	defer run.endProcesses(g.cfg.StopGrace)
	if sl != nil {
		// The logout record (utmp, wtmp) when the session ends, as without privilege separation.
		if run.login, err = systemlogin.NewSession(run.log, p, sl, m.deadline); err != nil {
			run.log.Error("cannot start the session", "err", err)
			p.Hangup()
			_ = p.Close()
			_, _ = p.Wait()
			_ = r.send(&privsep.Refuse{Reason: reasonNoShell})
			return
		}
	}
	master, err := p.DupMaster()
	if err == nil {
		err = r.send(&privsep.Accept{}, master)
		_ = master.Close()
	}
	if err != nil {
		run.log.Error("cannot hand the session to the network process", "err", err)
		p.Hangup()
		_ = p.Close()
		_, _ = p.Wait()
		return
	}
	run.log.Info("session started", "term", sanitize.Text(login.Term))
	start := time.Now()
	what := sr.term
	if sr.command != "" {
		what = sr.command
	}
	rh := newResumeHost(m, r, run.log, controlUser{User: lg.user.Name, UID: lg.user.UID}, cl.forceCommand, p.Pid(), peerText(remote), what)
	state := m.shellOps(ctx, child, r, p, rh)
	run.finish()
	if pl != nil {
		// The logout record, the PAM session's close and the credentials' deletion.
		if _, err := pl.Wait(); err != nil {
			run.log.Warn("the PAM session did not end cleanly", "err", sanitize.Text(err.Error()))
		}
	}
	run.end(start, state, nil)
}

// sessionProgramName names what starts a session, for the log.
func (m *monitor) sessionProgramName(pl *pamlogin.Login) string {
	if pl != nil {
		return "PAM"
	}
	return m.g.cfg.LoginProgram
}

// shellOps does the child's process operations on the shell of p (hangup, kill) until the shell
// has exited, tells the child how it ended (EXITED), waits for the child to finish the session,
// and returns how the shell ended. A stop of the monitor (ctx) hangs the shell up, and kills it
// if it is still there StopGrace later; so does the child's end. With rh (a session on a
// terminal), the child may make the session resumable: rh registers it with the listener and
// passes on new connections, and a detached session's child is waited for until it ends (its
// detach timeout), even after the shell exited: a resume still gets the rest of the output.
func (m *monitor) shellOps(ctx context.Context, child *netChild, r *relay, p shellProcess, rh *resumeHost) *os.ProcessState {
	exited := make(chan struct{})
	var state *os.ProcessState
	var waiting sync.WaitGroup
	waiting.Go(func() {
		state, _ = p.Wait()
		close(exited)
	})
	hangupKill := func() {
		p.Hangup()
		time.AfterFunc(m.g.cfg.StopGrace, p.Kill) // Kill does nothing once the shell is reaped
	}
	// A stop: the child tells its client "service stopping" (protocol.md §8) and asks for the
	// hangup (HANGUP); the monitor hangs the shell up itself only if the child has not ended
	// the session within farewell. Hanging up at once would race the child: a shell quick to
	// die would reach the client as an exit by SIGHUP instead of the stop's reason.
	stopping := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		_ = child.cmd.Process.Signal(syscall.SIGTERM)
		close(stopping)
	})
	defer stop()
	var ops sync.WaitGroup
	ops.Go(func() {
		for {
			msg, _, err := child.ch.Receive()
			if err != nil {
				select {
				case <-exited: // the child finished after the shell: the normal end
				default:
					hangupKill() // the child is gone: nobody serves the terminal any more
				}
				return
			}
			if err := r.received(msg); err != nil {
				m.log.Error("the network process sent a message out of order; session ended", "err", err)
				hangupKill()
				return
			}
			switch msg := msg.(type) {
			case *privsep.Hangup:
				p.Hangup() // nothing once the shell is reaped
			case *privsep.Kill:
				p.Kill()
			case *privsep.Resumable:
				rh.registered(msg)
			case *privsep.Detached:
				rh.detachedNow(msg)
			case *privsep.Attached:
				rh.attached(msg)
			case *privsep.SignalCommand:
				if s, ok := p.(session.Signaler); ok { // Received lets it through only for pipes
					_ = s.Signal(msg.Signal)
				}
			}
		}
	})
	select {
	case <-exited:
	case <-stopping:
		select {
		case <-exited:
		case <-time.After(farewell):
			hangupKill()
		}
	}
	<-exited
	waiting.Wait()
	_ = r.send(exitedOf(state))
	if rh.isResumable() {
		// Attached, it drains the output, sends the client the exit and closes; detached, it
		// keeps the output for a resume until its detach timeout.
		waitChild(ctx, child, farewell)
	} else {
		child.waitOrKill(netChildWait) // it drains the output, sends the client the exit and closes
	}
	ops.Wait() // the child's end ended the Receive
	rh.close()
	if rh.isDetached() && ctx.Err() == nil {
		m.log.Info("detached session expired", "user", rh.info.User, "id", shortID(rh.info.ID))
	}
	return state
}

// A shellProcess is the session's program as shellOps runs its process operations: a
// *pty.PTY, or a *pipes.Command (which also passes on SIGNAL: session.Signaler).
type shellProcess interface {
	Hangup()
	Kill()
	Wait() (*os.ProcessState, error)
}

// clientCertificate parses the certificate of a secure LOGIN, if any, and checks that it
// certifies the client's key: the net child is not trusted to have checked. Its signature and
// the policy are checked by the authorization, as without privilege separation.
func clientCertificate(login *privsep.Login) (*ssh.Certificate, error) {
	if len(login.ClientCertificate) == 0 {
		return nil, nil
	}
	pub, err := ssh.ParsePublicKey(login.ClientCertificate)
	if err != nil {
		return nil, fmt.Errorf("client certificate: %w", err)
	}
	cert, ok := pub.(*ssh.Certificate)
	if !ok {
		return nil, errors.New("client certificate: not a certificate")
	}
	ck, ok := cert.Key.(ssh.CryptoPublicKey)
	if !ok {
		return nil, errors.New("client certificate: not for an ed25519 key")
	}
	if k, ok := ck.CryptoPublicKey().(ed25519.PublicKey); !ok || !k.Equal(login.ClientKey) {
		return nil, errors.New("client certificate: for another key than the client's")
	}
	return cert, nil
}

// exitedOf is the EXITED message of a shell that ended as st (nil: unknown, sent as status 1).
func exitedOf(st *os.ProcessState) *privsep.Exited {
	if st == nil {
		return &privsep.Exited{Status: 1}
	}
	if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return &privsep.Exited{Signal: int(ws.Signal()), CoreDumped: ws.CoreDump()}
	}
	return &privsep.Exited{Status: st.ExitCode()}
}

// A netChild is a running net child, seen from its monitor.
type netChild struct {
	cmd    *exec.Cmd
	ch     *privsep.Channel
	stderr *os.File          // the read end of its standard error: why it failed
	lease  *privsep.UIDLease // its uid, released once it is reaped
	once   sync.Once
}

// startNetChild starts the net child of conn, without privileges (privsep.NetCommand), as a
// dynamic uid of its own.
func (m *monitor) startNetChild(conn net.Conn) (*netChild, error) {
	connFile, err := socketFile(conn)
	if err != nil {
		return nil, err
	}
	defer connFile.Close()
	monEnd, netEnd, err := privsep.Pair()
	if err != nil {
		return nil, err
	}
	defer netEnd.Close()
	errR, errW, err := os.Pipe()
	if err != nil {
		_ = monEnd.Close()
		return nil, fmt.Errorf("daemon: net child's stderr: %w", err)
	}
	defer errW.Close()
	lease, err := privsep.LeaseUID(privsep.DefaultUIDDir, privsep.DefaultUIDRange())
	if err != nil {
		_ = monEnd.Close()
		_ = errR.Close()
		return nil, err
	}
	pub := m.g.cfg.HostKey.Public().(ed25519.PublicKey)
	classicOn := "0"
	if m.g.cfg.Classic.Enabled {
		classicOn = "1"
	}
	cmd := privsep.NetCommand(m.g.executable, lease, netEnd, connFile)
	cmd.Args = []string{"rlogind: net"}
	cmd.Env = []string{
		roleEnv + "=" + roleNet,
		netHostKeyEnv + "=" + hex.EncodeToString(pub),
		netDeadlineEnv + "=" + strconv.FormatInt(m.deadline.UnixNano(), 10),
		netClassicEnv + "=" + classicOn,
		clientAliveEnv(m.g.cfg.ClientAlive),
	}
	if c := m.g.hostCert; c != nil {
		cmd.Env = append(cmd.Env, netHostCertEnv+"="+base64.StdEncoding.EncodeToString(c.Marshal()))
	}
	if m.control != nil && m.g.cfg.DetachTimeout > 0 {
		// Only a listener passes new connections on to a session: under -inetd (no listener)
		// the session is not resumable, and its client is not offered resume.
		cmd.Env = append(cmd.Env, detachEnv(session.Detach{Timeout: m.g.cfg.DetachTimeout, Buffer: m.g.cfg.DetachBuffer}))
	}
	cmd.Stderr = errW
	if err := cmd.Start(); err != nil {
		_ = monEnd.Close()
		_ = errR.Close()
		lease.Release()
		return nil, fmt.Errorf("daemon: start the network process: %w", err)
	}
	ch, err := privsep.NewFileChannel(monEnd, privsep.MonitorSide)
	if err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		_ = errR.Close()
		lease.Release()
		return nil, err
	}
	return &netChild{cmd: cmd, ch: ch, stderr: errR, lease: lease}, nil
}

// kill ends the child at once.
func (c *netChild) kill() { _ = c.cmd.Process.Kill() }

// waitOrKill waits up to d for the child to exit on its own, then kills it.
func (c *netChild) waitOrKill(d time.Duration) {
	t := time.AfterFunc(d, c.kill)
	defer t.Stop()
	c.wait()
}

// wait reaps the child (once).
func (c *netChild) wait() {
	c.once.Do(func() {
		_ = c.cmd.Wait()
		c.lease.Release() // nothing of that uid runs any more
	})
}

// finish closes the channel, reaps the child (killing it if it is still there) and logs what
// it said on its standard error, if anything: why it failed. Before the login request
// (preLogin) that is a failed login, logged as such with its stage (the child's error starts
// with it: "TLS handshake: ...", "classic handshake: ..."); after it, what ended the session.
func (c *netChild) finish(log *slog.Logger, preLogin bool) {
	_ = c.ch.Close()
	c.waitOrKill(netChildWait)
	said, _ := io.ReadAll(io.LimitReader(c.stderr, 4<<10))
	_ = c.stderr.Close()
	if len(said) == 0 {
		return
	}
	text := sanitize.Text(strings.TrimSpace(string(said))) // it may quote the peer
	if !preLogin {
		log.Info("network process ended", "said", text)
		return
	}
	stage, _, _ := strings.Cut(text, ": ")
	switch stage {
	case "TLS handshake", "login request", "classic handshake": // serveSecure's and serveClassic's
	default:
		stage = "network process"
	}
	log.Warn("login failed", "stage", stage, "err", text)
}
