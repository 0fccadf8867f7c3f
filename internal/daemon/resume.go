package daemon

import (
	"cmp"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/rlogin-go/rlogin/internal/sanitize"
	"github.com/rlogin-go/rlogin/internal/systemlogin"
	"github.com/rlogin-go/rlogin/session"
	"github.com/rlogin-go/rlogin/transport"
)

// Resume (capability resume, docs/protocol.md): a terminal session whose connection is lost
// stays, detached, for Config.DetachTimeout; its client resumes it on a new connection, or a new
// client of the same user takes it over (rlogin -R). A resuming connection logs in exactly as
// a new login does (handleSecure: the same handshake, key checks and key options, the same
// admission outcome); only then does the registry look the session up, for that user only.
// This is the path of the sessions served in this process (user mode, and System mode without
// privilege separation); privilege-separated sessions have theirs (monitor_resume.go).

// resumeOffered reports whether the session of c, served by g in this process, may be resumed:
// not with a negative Config.DetachTimeout, and not for ServeConn's one conn (inetd), as no
// other conn comes to resume it. (A privilege-separated session is served by its net child,
// whose monitor decides: monitor.go.)
func (g *Server) resumeOffered(c *conn) bool {
	return g.cfg.DetachTimeout > 0 && !c.set.oneShot
}

// offersResume reports whether the client of req offered capability resume: only then does its
// session accept it, so only then is it listed, and can it be resumed or taken over. ("resume" is
// the capability's name in docs/protocol.md; package session does not export it.)
func offersResume(req *session.Request) bool { return slices.Contains(req.Capabilities, "resume") }

// A registry is the running sessions that may be resumed, by id: where a resuming or
// reattaching connection finds its session, and what LIST answers. Every check of whose
// session a connection may have is here (find, list).
type registry struct {
	mu       sync.Mutex
	sessions map[session.SessionID]*resumable
}

// A resumable is a session in the registry.
type resumable struct {
	sc      *session.ServerConn
	user    string // whose session it is: the user who logged in
	forced  string // the forced command of the key or certificate it was started with; "" if none
	what    string // what it runs, for LIST: the terminal type or the command, sanitized
	started time.Time
	reg     *registry
	log     *slog.Logger // the session's, with its id

	attachMu sync.Mutex // held by attach

	mu         sync.Mutex
	pid        int        // the shell's, once started
	peer       string     // the address of the client attached last
	detachedAt time.Time  // zero while attached
	taking     attachNote // what attached logs of the attach under way
}

// An attachNote is what attached logs of an attach: which, by which conn, from whom.
type attachNote struct {
	line string // "session resumed" or "session reattached"
	conn uint64 // the new conn's number
	from string // a reattach of an attached session: the address of the client it takes it from
}

// newResumable prepares the session of a login on srv for resume and sets srv.Detach: it is
// registered (add) once its shell runs. The client at peer logged in as user, with the key
// options of cl; what is the terminal type or command it asked for.
func (g *Server) newResumable(srv *session.ServerConn, log *slog.Logger, user string, cl *client, what string) *resumable {
	r := &resumable{
		sc:      srv,
		user:    user,
		forced:  cl.forceCommand,
		what:    sanitize.Text(what),
		started: time.Now(),
		reg:     &g.resumes,
		peer:    cl.addr.String(),
	}
	r.log = log.With("user", user, "id", srv.ID().Short())
	srv.Detach = session.Detach{
		Timeout:  g.cfg.DetachTimeout,
		Buffer:   g.cfg.DetachBuffer,
		Detached: r.detached,
		Attached: r.attached,
	}
	return r
}

// add registers r, whose shell (pid) runs; remove must follow when its session has ended.
func (reg *registry) add(r *resumable, pid int) {
	r.mu.Lock()
	r.pid = pid
	r.mu.Unlock()
	reg.mu.Lock()
	defer reg.mu.Unlock()
	if reg.sessions == nil {
		reg.sessions = make(map[session.SessionID]*resumable)
	}
	reg.sessions[r.sc.ID()] = r
}

// remove unregisters r: its session has ended.
func (reg *registry) remove(r *resumable) {
	reg.mu.Lock()
	delete(reg.sessions, r.sc.ID())
	reg.mu.Unlock()
}

// find returns the session id if it is user's and a client with the key options of cl may have
// it; nil otherwise. A key or certificate that forces a command may have only the sessions started with that
// same forced command, so that resume is never a way around it (and a no-pty key none: resume
// is for terminal sessions, which it could not have started).
func (reg *registry) find(user string, cl *client, id session.SessionID) *resumable {
	reg.mu.Lock()
	r := reg.sessions[id]
	reg.mu.Unlock()
	if r == nil || !r.permits(user, cl) {
		return nil
	}
	return r
}

// permits reports whether a client of user with the key options of cl may see and have r.
func (r *resumable) permits(user string, cl *client) bool {
	return r.user == user && r.forced == cl.forceCommand && !cl.noPTY
}

// list returns the sessions of user that cl may have, the oldest first.
func (reg *registry) list(user string, cl *client) []session.SessionInfo {
	reg.mu.Lock()
	var rs []*resumable
	for _, r := range reg.sessions {
		if r.permits(user, cl) {
			rs = append(rs, r)
		}
	}
	reg.mu.Unlock()
	oldestFirst(rs, func(r *resumable) time.Time { return r.started })
	list := make([]session.SessionInfo, len(rs))
	for i, r := range rs {
		list[i] = r.info()
	}
	return list
}

// oldestFirst sorts sessions by when they started (started says), the oldest first: the order
// of every list of sessions, this process's (registry.list) and the listener's
// (separatedSessions.list).
func oldestFirst[S any](sessions []S, started func(S) time.Time) {
	slices.SortFunc(sessions, func(a, b S) int { return started(a).Compare(started(b)) })
}

// count returns the number of sessions in the registry, and of those detached.
func (reg *registry) count() (sessions, detached int) {
	reg.mu.Lock()
	defer reg.mu.Unlock()
	for _, r := range reg.sessions {
		if r.isDetached() {
			detached++
		}
	}
	return len(reg.sessions), detached
}

// info is r as LIST shows it.
func (r *resumable) info() session.SessionInfo {
	r.mu.Lock()
	defer r.mu.Unlock()
	return session.SessionInfo{
		ID:       r.sc.ID(),
		Attached: r.detachedAt.IsZero(),
		Started:  r.started,
		Detached: r.detachedAt,
		Peer:     r.peer,
		What:     r.what,
		PID:      r.pid,
	}
}

func (r *resumable) isDetached() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return !r.detachedAt.IsZero()
}

// detached is the session's Detach.Detached: its connection is gone.
func (r *resumable) detached(cause error) {
	r.mu.Lock()
	r.detachedAt = time.Now()
	peer := r.peer
	r.mu.Unlock()
	r.log.Info("session detached", "peer", peer, "cause", sanitize.Text(causeText(cause)))
}

// causeText is why a session detached, as the log says it.
func causeText(err error) string {
	if err == nil {
		return "unknown"
	}
	return err.Error()
}

// attached is the session's Detach.Attached: a new connection, from peer, has it now; skipped
// output bytes were dropped while it was detached.
func (r *resumable) attached(peer string, skipped uint64) {
	r.mu.Lock()
	note := r.taking
	r.peer, r.detachedAt = sanitize.Text(peer), time.Time{}
	r.mu.Unlock()
	attrs := []any{"peer", sanitize.Text(peer), "skipped", skipped, "new_conn", note.conn}
	if note.from != "" {
		attrs = append(attrs, "took_over_from", note.from)
	}
	r.log.Info(cmp.Or(note.line, "session resumed"), attrs...)
}

// ended logs the end of a session that was detached when it ended, and unregisters it; stopping
// says that the service stopped it.
func (r *resumable) ended(stopping bool) {
	r.reg.remove(r)
	r.mu.Lock()
	at := r.detachedAt
	r.mu.Unlock()
	if at.IsZero() {
		return
	}
	if stopping {
		r.log.Info("detached session ended: service stopping", "detached_for", time.Since(at).Round(time.Second))
		return
	}
	r.log.Info("detached session expired", "detached_for", time.Since(at).Round(time.Second))
}

// answerResume answers a login request that resumes or reattaches a session (RESUME) or lists
// the user's sessions (LIST), on srv over sc, once the login was authorized (reason, ok: as
// authorizeLogin said; lg: a System login). A refused request is a failed login, as a refused
// key is, whatever failed: the authorization, a session that does not exist or is not the
// user's, or a wrong secret. A resumed connection goes to its session, which serves it from then
// on; it takes no session slot of its own. The registry holds only sessions that were offered
// resume, under the configuration they started with (a Reload that turns resume off leaves
// them resumable), so a server that offers none answers an empty list and "no such session".
func (g *Server) answerResume(l *attempt, srv *session.ServerConn, sc *transport.SecureConn, req *session.Request, cl *client, lg *systemLogin, reason string, ok bool) {
	user := g.user
	if lg != nil {
		user = lg.user.Name
	}
	if ok && lg.passwordPending() {
		// login(1) would ask for a password in a session, which a resume never gets to.
		l.log.Warn("authentication failed", "user", user, "reason", "the key is not authorized; a resume or a list needs one")
		ok, reason = false, reasonDenied
	}
	if ok {
		if err := accountCheck(lg); err != nil {
			l.log.Warn("login refused", "stage", "account", "user", user, "reason", sanitize.Text(err.Error()))
			ok, reason = false, reasonDenied
		}
	}
	if !ok {
		l.ac.Failed()
		_ = srv.Refuse(reason)
		return
	}
	if req.List {
		l.ac.Authenticated()
		list := g.resumes.list(user, cl)
		l.log.Info("sessions listed", "user", user, "sessions", len(list))
		if err := srv.SendSessions(list); err != nil {
			l.log.Warn("cannot send the list of sessions", "err", sanitize.Text(err.Error()))
		}
		return
	}
	id := req.Resume.ID
	r := g.resumes.find(user, cl, id)
	if r == nil {
		l.log.Warn("resume refused", "user", user, "id", id.Short(), "reason", reasonNoSession)
		l.ac.Failed()
		_ = srv.Refuse(reasonNoSession)
		return
	}
	if !l.stopAbort() {
		_ = srv.Refuse(reasonStopping)
		return
	}
	// The session serves the conn from now on: no grace deadline, out of the unauthenticated.
	l.ac.Authenticated()
	l.ac.StartSession()
	_ = sc.SetDeadline(time.Time{})
	if err := r.attach(srv, req.Resume.Secret == nil, l.conn); err != nil {
		if errors.Is(err, session.ErrNoSession) { // a wrong secret, or the session ended meanwhile
			l.ac.Failed()
		}
		l.log.Warn("resume refused", "user", user, "id", id.Short(), "reason", sanitize.Text(err.Error()))
	}
}

// accountCheck is the account check of a resume, a reattach or a list of the System login lg,
// in place of the one a new login gets from PAM's account stack (through login(1), or in the
// monitor of a PAM build), which no resume runs: the shadow file's expired account, or expired
// password or one that must be changed (systemlogin.CheckAccount), refuses it. A user mode login
// (lg nil) is the server's own user, which has no such check. Both resume paths call it: this
// process's (answerResume) and the monitor's in a build without PAM (serveResume).
func accountCheck(lg *systemLogin) error {
	if lg == nil {
		return nil
	}
	return systemlogin.CheckAccount(lg.user.Name, time.Now())
}

// attach hands next, on c, to r's session: a resume (the session checks the secret), or a
// reattach by the session's own user (the caller checked that). A client still attached is told
// why it lost the session.
func (r *resumable) attach(next *session.ServerConn, reattach bool, c *conn) error {
	r.attachMu.Lock() // one at a time, so that attached logs each with its own words
	defer r.attachMu.Unlock()
	peer := c.RemoteAddr().String()
	r.mu.Lock()
	r.taking = attachNote{line: "session resumed", conn: c.id}
	closeReason := "resumed from " + peer
	if reattach {
		r.taking = attachNote{line: "session reattached", conn: c.id}
		if r.detachedAt.IsZero() { // a client is attached: it is taken over (closed)
			r.taking.from = r.peer
		}
		closeReason = "taken over from " + peer
	}
	r.mu.Unlock()
	err := r.sc.Attach(next, reattach, closeReason)
	r.mu.Lock()
	r.taking = attachNote{}
	r.mu.Unlock()
	return err
}

// resumeAttrs describes resume in the "serving logins" line of Serve (without privilege
// separation: serveSeparated has its own line).
func (g *Server) resumeAttrs() []any {
	if g.cfg.DetachTimeout < 0 {
		return []any{"resume", false}
	}
	return []any{"resume", true, "detach_timeout", g.cfg.DetachTimeout, "detach_buffer", g.cfg.DetachBuffer}
}
