package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/rlogin-go/rlogin/internal/admission"
	"github.com/rlogin-go/rlogin/internal/pamlogin"
	"github.com/rlogin-go/rlogin/internal/privsep"
	"github.com/rlogin-go/rlogin/session"
)

// The listener's side of privilege separation: each admitted connection goes, unread, to a
// monitor process of its own (monitor.go), which tells the listener what the admission needs
// to know over a control socket, one byte a message.
const (
	eventAttempt = 'a' // monitor: an authentication attempt started whose verdict comes later
	eventFailed  = 'F' // monitor: a login attempt failed (the penalties)
	eventSession = 'S' // monitor: authenticated; may the session start (MaxSessions)? Answered:
	answerYes    = 'y' //   listener: yes: the session counts against MaxSessions
	answerNo     = 'n' //   listener: no: too many sessions
	eventEnded   = 'E' // monitor: the session ended; its place is free

	eventServerFault = 'X' // monitor: it could not serve the login (no penalty for the client)
)

// monitorConfig is what a monitor knows of the daemon's configuration: the listener writes it
// on the monitor's configuration pipe, in JSON, then closes it. It holds the host key.
type monitorConfig struct {
	HostKeySeed            []byte
	AuthorizedKeys         string
	Deadline               time.Time // the end of the connection's login grace time
	LoginGraceTime         time.Duration
	StopGrace              time.Duration
	PermitRootLogin        string
	PasswordAuthentication bool
	LoginProgram           string
	Classic                ClassicConfig
	HostCertificate        string
	TrustedUserCAKeys      string
	AuthorizedPrincipals   string
	RevokedKeys            string
	ClientAlive            session.Keepalive
	DetachTimeout          time.Duration // negative: no resume
	DetachBuffer           int
	ConnID                 uint64
	LogPath                string
	LogLevel               slog.Level
	LogFormat              string
}

// A monitorProc is a running monitor, seen from the listener.
type monitorProc struct {
	cmd     *exec.Cmd
	control *net.UnixConn // the control socket (SOCK_SEQPACKET)
}

// startMonitor starts the monitor of nc, an admitted connection (ac), and hands nc over to it:
// the listener keeps no copy.
func (g *Server) startMonitor(nc net.Conn, ac *admission.Conn) (*monitorProc, error) {
	connFile, err := socketFile(ac.Conn)
	if err != nil {
		return nil, err
	}
	defer connFile.Close()
	lisEnd, monEnd, err := privsep.Pair()
	if err != nil {
		return nil, err
	}
	defer monEnd.Close()
	cfgR, cfgW, err := os.Pipe()
	if err != nil {
		_ = lisEnd.Close()
		return nil, fmt.Errorf("daemon: monitor configuration pipe: %w", err)
	}
	defer cfgR.Close()
	cmd := &exec.Cmd{
		Path:       g.executable,
		Args:       []string{processTitle},
		Env:        roleEnvironment(roleMonitor),
		ExtraFiles: []*os.File{connFile, monEnd, cfgR},
		Dir:        "/",
		// A session of its own: a signal to the listener's process group (^C in a terminal,
		// a restart that signals the group) does not reach the sessions.
		SysProcAttr: &syscall.SysProcAttr{Setsid: true},
	}
	if f := g.processLog(); f != nil { // not a nil *os.File in the interface: nil means /dev/null
		cmd.Stderr = f
	}
	if err := cmd.Start(); err != nil {
		_ = lisEnd.Close()
		_ = cfgW.Close()
		return nil, fmt.Errorf("daemon: start the monitor %s: %w", g.executable, err)
	}
	_ = ac.Conn.Close() // the socket: the monitor has its own copy (ac's Close, which accounts for the connection, comes when the monitor ends)
	cfg := g.monitorConfig(ac)
	err = json.NewEncoder(cfgW).Encode(&cfg)
	_ = cfgW.Close()
	if err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		_ = lisEnd.Close()
		return nil, fmt.Errorf("daemon: send the monitor its configuration: %w", err)
	}
	control, err := packetConn(lisEnd)
	if err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return nil, err
	}
	return &monitorProc{cmd: cmd, control: control}, nil
}

// monitorConfig returns what the monitor of ac needs of g's configuration.
func (g *Server) monitorConfig(ac *admission.Conn) monitorConfig {
	return monitorConfig{
		HostKeySeed:            g.cfg.HostKey.Seed(),
		AuthorizedKeys:         g.cfg.AuthorizedKeys,
		Deadline:               ac.GraceDeadline(),
		LoginGraceTime:         ac.GraceTime(),
		StopGrace:              g.cfg.StopGrace,
		PermitRootLogin:        g.cfg.PermitRootLogin,
		PasswordAuthentication: g.cfg.PasswordAuthentication,
		LoginProgram:           g.cfg.LoginProgram,
		Classic:                g.cfg.Classic,
		HostCertificate:        g.cfg.HostCertificate,
		TrustedUserCAKeys:      g.cfg.TrustedUserCAKeys,
		AuthorizedPrincipals:   g.cfg.AuthorizedPrincipalsFile,
		RevokedKeys:            g.cfg.RevokedKeys,
		ClientAlive:            g.cfg.ClientAlive,
		DetachTimeout:          g.cfg.DetachTimeout,
		DetachBuffer:           g.cfg.DetachBuffer,
		ConnID:                 ac.ID(),
		LogPath:                g.cfg.ProcessLog.Path,
		LogLevel:               g.cfg.ProcessLog.Level,
		LogFormat:              g.cfg.ProcessLog.Format,
	}
}

// processLog is the standard error of monitors: Config.ProcessLog.File; nothing (nil:
// /dev/null) when they open the log file themselves (ProcessLog.Path); else the listener's
// standard error (the journal, a terminal).
func (g *Server) processLog() *os.File {
	switch {
	case g.cfg.ProcessLog.File != nil:
		return g.cfg.ProcessLog.File
	case g.cfg.ProcessLog.Path != "":
		return nil
	}
	return os.Stderr
}

// roleEnvironment is the environment of a process started in role: the role, and what the log
// needs to recognize the systemd journal (package logsink).
func roleEnvironment(role string) []string {
	env := []string{roleEnv + "=" + role, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	if js, ok := os.LookupEnv("JOURNAL_STREAM"); ok {
		env = append(env, "JOURNAL_STREAM="+js)
	}
	return env
}

// socketFile returns a duplicate of c's socket, to hand to another process.
func socketFile(c net.Conn) (*os.File, error) {
	fc, ok := c.(interface{ File() (*os.File, error) })
	if !ok {
		return nil, fmt.Errorf("daemon: a %T cannot be handed to a monitor process", c)
	}
	f, err := fc.File()
	if err != nil {
		return nil, fmt.Errorf("daemon: hand the connection over: %w", err)
	}
	return f, nil
}

// packetConn makes a *net.UnixConn of f, a SOCK_SEQPACKET socket, and closes f.
func packetConn(f *os.File) (*net.UnixConn, error) {
	c, err := net.FileConn(f)
	_ = f.Close()
	if err != nil {
		return nil, fmt.Errorf("daemon: control socket: %w", err)
	}
	uc, ok := c.(*net.UnixConn)
	if !ok {
		_ = c.Close()
		return nil, fmt.Errorf("daemon: control socket is a %T", c)
	}
	return uc, nil
}

// follow keeps ac's admission up to date with what m reports, until m closes its control
// socket (it exited) or stop is closed (the listener stops: the monitor goes on alone, and
// its session's place in MaxSessions is forgotten, and so is its registration in reg: it can
// no longer be resumed). It answers m's questions (a place among the MaxSessions; with reg,
// its user's resumable sessions). Then it reaps m: a monitor whose session outlives the
// listener's Serve is reaped when it ends (EndSessions waits for that).
func (s *Server) follow(stop <-chan struct{}, m *monitorProc, ac *admission.Conn, reg *separatedSessions) {
	var sl *slot
	var registered *separatedSession
	defer func() {
		reg.remove(registered)
		sl.release()
		_ = ac.Close() // accounts for the connection: penalties unless it authenticated
	}()
	ended := make(chan struct{})
	defer close(ended)
	go func() { // owned by follow: ends when the control socket closes, before follow returns
		select {
		case <-stop:
		case <-ended:
		}
		_ = m.control.SetReadDeadline(time.Unix(1, 0))
	}()
	rd := newControlReader(m.control)
	for {
		ev, fields, fd, err := rd.read()
		if err != nil {
			break // io.EOF: the monitor closed it (exited); a deadline: stop
		}
		switch ev {
		case eventAttempt:
			ac.Attempting()
		case eventFailed:
			ac.Failed()
		case eventServerFault:
			ac.Authenticated() // the login could not be served: not the client's failure
		case eventSession:
			answer := byte(answerNo)
			if sl == nil {
				if sl = s.current.Load().claimSlot(); sl != nil {
					ac.Authenticated()
					ac.StartSession()
					answer = answerYes
				} else {
					ac.Authenticated() // the server's limit, not the client's failure
				}
			}
			_, _ = m.control.Write([]byte{answer})
		case eventEnded:
			sl.release()
			reg.remove(registered)
			registered = nil
		case eventResumable, eventDetached, eventAttached:
			registered = reg.update(registered, m, ev, fields)
		case eventList:
			var u controlUser
			list := controlList{}
			if json.Unmarshal(fields, &u) == nil {
				ac.Authenticated() // the monitor authenticated the user; a list is no session
				ac.StartSession()  // nor a startup any more: it is answered and ends
				list.Sessions = reg.list(u)
			}
			_ = sendControl(m.control, answerList, list, nil)
		case eventResume:
			var r controlResume
			answer := byte(answerNo)
			switch {
			case fd == nil || json.Unmarshal(fields, &r) != nil:
			case reg.attach(r, fd):
				ac.Authenticated()
				ac.StartSession() // relayed from now on, without a place among MaxSessions
				answer = answerYes
			default:
				ac.Failed() // no such session (of this user): charged as a refused key is
			}
			_, _ = m.control.Write([]byte{answer})
		}
		if fd != nil {
			_ = fd.Close() // passed on (the session's monitor has its own), or refused
		}
	}
	_ = m.control.Close()
	go func() { // the reaper: the monitor may run long after the listener stopped
		defer s.monitors.Done()
		_ = m.cmd.Wait()
		s.monitorsMu.Lock()
		delete(s.monitorProcs, m.cmd.Process)
		s.monitorsMu.Unlock()
	}()
}

// acceptBackoff says how long to wait before the next Accept after err, if err is a shortage
// that passes (descriptors, buffers, memory): 5 ms, doubling up to 1 s.
func acceptBackoff(err error, last time.Duration) (time.Duration, bool) {
	if !errors.Is(err, syscall.EMFILE) && !errors.Is(err, syscall.ENFILE) &&
		!errors.Is(err, syscall.ENOBUFS) && !errors.Is(err, syscall.ENOMEM) {
		return 0, false
	}
	return min(max(2*last, 5*time.Millisecond), time.Second), true
}

// claimSlot claims a place among the MaxSessions, or returns nil (and logs) if there is none.
func (g *Server) claimSlot() *slot {
	g.mu.Lock()
	defer g.mu.Unlock()
	if max := g.cfg.MaxSessions; max > 0 && g.running >= max {
		g.log.Warn("login refused: too many sessions", "max_sessions", max)
		return nil
	}
	g.running++
	return &slot{s: g.serverState}
}

// serveSeparated is serve for a System server with PrivilegeSeparation: each admitted
// connection goes to a monitor process of its own; Serve's stop stops the accepting, and the
// sessions go on (EndSessions ends them).
func (s *Server) serveSeparated(ctx context.Context, l net.Listener) error {
	g := s.current.Load()
	al := s.lim.Listener(l)
	g.log.Info("serving logins", append([]any{"addr", l.Addr().String(), "privilege_separation", true}, g.servingAttrs()...)...)
	if g.cfg.PasswordAuthentication && !pamlogin.Supported {
		g.log.Warn("password logins are refused: this rlogind was built without PAM (go build -tags pam ./cmd/rlogind)")
	}
	stopping := make(chan struct{})
	stopOnCancel := context.AfterFunc(ctx, func() {
		s.lim.ShuttingDown()
		close(stopping)
		_ = al.Close()
	})
	defer stopOnCancel()
	var followers sync.WaitGroup
	reg := newSeparatedSessions()
	var acceptErr error
	var backoff time.Duration
	for {
		nc, err := al.Accept()
		if err != nil {
			if wait, ok := acceptBackoff(err, backoff); ok && ctx.Err() == nil {
				// Out of descriptors or memory for a moment: wait, as the Mux does.
				s.current.Load().log.Warn("accept failed; retrying", "err", err, "in", wait)
				backoff = wait
				time.Sleep(wait)
				continue
			}
			if !errors.Is(err, net.ErrClosed) {
				acceptErr = err
			}
			break
		}
		backoff = 0
		ac := admission.ConnOf(nc)
		g := s.current.Load()
		if ac == nil {
			g.log.Error("connection not admitted; closed", "remote", nc.RemoteAddr().String())
			_ = nc.Close()
			continue
		}
		ac.Delivered()
		m, err := g.startMonitor(nc, ac)
		if err != nil {
			g.log.Error("cannot start the connection's monitor; connection closed", "conn", ac.ID(),
				"remote", nc.RemoteAddr().String(), "err", err)
			ac.Authenticated() // the server's failure, not the client's: no penalty
			_ = ac.Close()
			continue
		}
		s.monitors.Add(1) // done by follow's reaper
		s.monitorsMu.Lock()
		s.monitorProcs[m.cmd.Process] = struct{}{}
		s.monitorsMu.Unlock()
		followers.Go(func() { s.follow(stopping, m, ac, reg) })
	}
	_ = al.Close()
	if ctx.Err() == nil {
		close(stopping) // the listener failed: the sessions go on; penalties stay as they are
	}
	followers.Wait()
	if ctx.Err() != nil {
		s.current.Load().log.Info("stopped listening; sessions go on")
		return nil
	}
	if acceptErr != nil {
		return acceptErr
	}
	return fmt.Errorf("daemon: listener closed: %w", net.ErrClosed)
}

// EndSessions ends the sessions of this Server's monitors (privilege separation), which
// outlive Serve, as a stop of the daemon without privilege separation does: each monitor gets
// SIGTERM, its client is told "service stopping" and its shell hung up, and what is still
// running StopGrace later is killed. It returns when they have all exited, or when ctx is
// done. See EndAllSessions for those of other rlogind processes.
func (s *Server) EndSessions(ctx context.Context) error {
	s.monitorsMu.Lock()
	procs := make([]*os.Process, 0, len(s.monitorProcs))
	for p := range s.monitorProcs {
		procs = append(procs, p)
	}
	s.monitorsMu.Unlock()
	for _, p := range procs {
		_ = p.Signal(syscall.SIGTERM) // os.ErrProcessDone: it ended meanwhile
	}
	done := make(chan struct{})
	go func() { // owned here: ends with the last monitor, which SIGTERM ends within StopGrace
		s.monitors.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("daemon: end sessions: %w", ctx.Err())
	}
}

// EndAllSessions ends the sessions of every rlogind monitor process on this machine (privilege
// separation), whichever listener started them, as `rlogind -end-sessions` does: each gets
// SIGTERM, and ends its session within its StopGrace (its client told "service stopping", its
// shell hung up, then killed). A monitor is a process of root's whose command line is
// processTitle, or an rlogind -inetd serving its connection (named inetdMonitorName). It returns how many it signalled once they are all gone, or an error when ctx
// ends first.
func EndAllSessions(ctx context.Context) (int, error) {
	pids, err := monitorPids()
	if err != nil {
		return 0, err
	}
	for _, pid := range pids {
		_ = syscall.Kill(pid, syscall.SIGTERM) // ESRCH: it ended meanwhile
	}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		left := 0
		for _, pid := range pids {
			if isMonitor(pid) {
				left++
			}
		}
		if left == 0 {
			return len(pids), nil
		}
		select {
		case <-ctx.Done():
			return len(pids), fmt.Errorf("daemon: %d of %d sessions still running: %w", left, len(pids), ctx.Err())
		case <-tick.C:
		}
	}
}

// monitorPids lists the monitor processes running.
func monitorPids() ([]int, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("daemon: list processes: %w", err)
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err == nil && isMonitor(pid) {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

// inetdMonitorName is the name (comm, 15 bytes at most) an rlogind started by inetd takes while
// it serves its connection as the monitor (ServeConn): its command line is the one inetd gave
// it, so EndAllSessions finds it by this name.
const inetdMonitorName = "rlogind-session"

// nameInetdMonitor gives this process inetdMonitorName until the returned function restores
// its name. Best effort: a process that cannot rename itself is not reached by EndAllSessions.
func nameInetdMonitor() (restore func()) {
	const comm = "/proc/self/comm" // the thread group leader's name, what /proc/PID/comm shows
	old, err := os.ReadFile(comm)
	if err != nil || os.WriteFile(comm, []byte(inetdMonitorName), 0) != nil {
		return func() {}
	}
	return func() { _ = os.WriteFile(comm, bytes.TrimSuffix(old, []byte("\n")), 0) }
}

// isMonitor reports whether pid is a monitor: a process whose real, effective and saved uids
// are root's (from its status: the owner of /proc/PID is root's for any process that made
// itself not dumpable), with processTitle as its command line, or inetdMonitorName as its name
// (a zombie, whose command line is empty, is not one any more).
func isMonitor(pid int) bool {
	dir := "/proc/" + strconv.Itoa(pid)
	cmdline, err := os.ReadFile(dir + "/cmdline")
	if err != nil || len(cmdline) == 0 {
		return false
	}
	if string(cmdline) != processTitle+"\x00" {
		if comm, err := os.ReadFile(dir + "/comm"); err != nil || string(comm) != inetdMonitorName+"\n" {
			return false
		}
	}
	status, err := os.ReadFile(dir + "/status")
	if err != nil {
		return false
	}
	for line := range strings.Lines(string(status)) {
		if f := strings.Fields(line); len(f) >= 4 && f[0] == "Uid:" {
			return f[1] == "0" && f[2] == "0" && f[3] == "0"
		}
	}
	return false
}

// checkWorldExecutable checks that a process with no rights but the world's (a net child) can
// execute path: every directory on the way may be searched by others, and the file executed.
func checkWorldExecutable(path string) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return fmt.Errorf("daemon: privilege separation: %w", err)
	}
	for p := abs; ; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if err != nil {
			return fmt.Errorf("daemon: privilege separation: %w", err)
		}
		if fi.Mode().Perm()&0o001 == 0 {
			return fmt.Errorf("daemon: privilege separation: the network process, which runs with no rights but everyone's, cannot execute %s: %s is not executable (searchable) by others; install rlogind where everyone may run it (such as /usr/local/sbin)", abs, p)
		}
		if p == "/" {
			return nil
		}
	}
}

// separatedSessions is the listener's registry of its monitors' resumable sessions
// (privilege separation): a monitor registers its session when the session accepted resume,
// reports each detach and attach, and is forgotten when it ends. A new connection's monitor,
// once it has authenticated its user, asks it for that user's sessions (LIST) or to pass its
// socket on to one of them (RESUME). Sessions of a listener that stopped are forgotten with
// it (docs/system-mode.md: they cannot be resumed).
type separatedSessions struct {
	mu   sync.Mutex
	byID map[[privsep.SessionIDLen]byte]*separatedSession
}

// A separatedSession is a registered session and its monitor. Its Peer and detached change
// (under separatedSessions.mu); the rest does not.
type separatedSession struct {
	controlSession
	m        *monitorProc
	detached time.Time // since when it is detached; zero while a client is attached
}

func newSeparatedSessions() *separatedSessions {
	return &separatedSessions{byID: make(map[[privsep.SessionIDLen]byte]*separatedSession)}
}

// update applies the event ev of m, whose session is registered as e (nil: not yet), with its
// fields, and returns its registration.
func (r *separatedSessions) update(e *separatedSession, m *monitorProc, ev byte, fields []byte) *separatedSession {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch ev {
	case eventResumable:
		var cs controlSession
		if e != nil || json.Unmarshal(fields, &cs) != nil || r.byID[cs.ID] != nil {
			return e // once per session; an id is random (128 bits): one taken is a broken monitor
		}
		e = &separatedSession{controlSession: cs, m: m}
		r.byID[cs.ID] = e
	case eventDetached:
		if e != nil {
			e.detached = time.Now()
		}
	case eventAttached:
		var p controlPeer
		if e != nil && json.Unmarshal(fields, &p) == nil {
			e.detached = time.Time{}
			e.Peer = p.Peer
		}
	}
	return e
}

// remove forgets e (nil: nothing).
func (r *separatedSessions) remove(e *separatedSession) {
	if e == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.byID[e.ID] == e {
		delete(r.byID, e.ID)
	}
}

// mayResume says who may see, resume or take over a session: user mode's rule
// (resumable.permits: its own user, with a key of the same forced command, if any, and not
// no-pty), for the same account (name and uid: a user deleted and made again under the name
// is another).
func (e *separatedSession) mayResume(u controlUser) bool {
	own := &resumable{user: e.User, forced: e.Forced}
	return e.UID == u.UID && own.permits(u.User, &client{forceCommand: u.Forced, noPTY: u.NoPTY})
}

// list returns u's sessions, the oldest first (oldestFirst), at most privsep.MaxListed: the
// newest ones.
func (r *separatedSessions) list(u controlUser) []privsep.SessionEntry {
	r.mu.Lock()
	var mine []*separatedSession
	for _, e := range r.byID {
		if e.mayResume(u) {
			mine = append(mine, e)
		}
	}
	oldestFirst(mine, func(e *separatedSession) time.Time { return e.Started })
	mine = mine[max(0, len(mine)-privsep.MaxListed):]
	list := make([]privsep.SessionEntry, 0, len(mine))
	for _, e := range mine {
		list = append(list, e.entry()) // under r.mu, which guards what update changes
	}
	r.mu.Unlock()
	return list
}

// entry is e as SESSIONS lists it.
func (e *separatedSession) entry() privsep.SessionEntry {
	en := privsep.SessionEntry{ID: e.ID, Attached: e.detached.IsZero(), Started: unixSeconds(e.Started),
		Peer: e.Peer, What: e.What, PID: uint32(e.PID)}
	if !en.Attached {
		en.Detached = unixSeconds(e.detached)
	}
	return en
}

// unixSeconds is t in Unix seconds, at least 1 (SESSIONS' 0 means "none").
func unixSeconds(t time.Time) uint64 { return uint64(max(t.Unix(), 1)) }

// attach passes sock, a new connection's socket, to the monitor of the session r asks for, if
// r's user may resume it; it reports whether it did. The session's own net child checks the
// secret, and answers the client.
func (r *separatedSessions) attach(req controlResume, sock *os.File) bool {
	r.mu.Lock()
	e := r.byID[req.ID]
	r.mu.Unlock()
	if e == nil || !e.mayResume(req.controlUser) {
		return false
	}
	return sendControl(e.m.control, commandAttach, controlAttach{Reattach: req.Reattach, Peer: req.Peer}, sock) == nil
}
