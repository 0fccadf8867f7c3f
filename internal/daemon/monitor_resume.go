package daemon

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/rlogin-go/rlogin/internal/pamlogin"
	"github.com/rlogin-go/rlogin/internal/privsep"
	"github.com/rlogin-go/rlogin/internal/sanitize"
	"github.com/rlogin-go/rlogin/internal/systemlogin"
	"github.com/rlogin-go/rlogin/session"
	"golang.org/x/sys/unix"
)

// Resume and reattach with privilege separation (docs/system-mode.md, "Resume and reattach").
// The listener is the registry of its monitors' resumable sessions (separate.go). A connection
// that resumes, reattaches or lists is authenticated by its own monitor as a login is; then its
// monitor asks the listener, and either answers the list (SESSIONS) or gets one end of a
// socketpair to the session's monitor, which hands it to its net child (ATTACH): the session
// itself checks the secret and answers the client, and the new net child relays the bytes
// (RELAY). No monitor reads the session or its secret.

// reasonNoSession is the refusal of every RESUME that cannot be served, whatever the reason:
// the session layer's own.
const reasonNoSession = session.ReasonNoSession

// serveResume answers the RESUME or LIST (instead) of a connection its monitor authorized as
// lg, with cl's key (and its options: the sessions it may have are those the user-mode rule
// allows, resumable.permits), which the client proved to the monitor, after PAM's account stack
// (a build with PAM; without, accountCheck's); actx bounds the authentication.
func (m *monitor) serveResume(ctx, actx context.Context, child *netChild, r *relay, log *slog.Logger, instead privsep.Message, lg *systemLogin, cl *client, proven bool, remote net.Addr) {
	user := lg.user.Name
	refuse := func(ev byte, reason string) {
		log.Warn("login refused", "user", user, "reason", reason)
		m.report(ev)
		_ = r.send(&privsep.Refuse{Reason: reasonDenied})
	}
	switch {
	case lg.passwordPending():
		// A resuming client logs in with its key only (it asks for no password on its own).
		refuse(eventFailed, "no key authorized: a resume or a list needs one")
		return
	case !proven:
		// The monitor does not take the net child's word for the key here: a session's
		// terminal is the user's, as a root login's would be.
		refuse(eventFailed, "a resume or a list needs a key proven to the monitor (keyproof)")
		return
	}
	if pamlogin.Supported {
		r.quiet = true // no session to show the stacks' messages in
		pl, ok := m.pamCheck(actx, log, r, lg, systemlogin.PeerHost(remote))
		if !ok {
			return
		}
		_ = pl.Close() // no PAM session: the session resumed has its own
	} else if err := accountCheck(lg); err != nil {
		refuse(eventFailed, "account: "+sanitize.Text(err.Error()))
		return
	}
	u := controlUser{User: user, UID: lg.user.UID, Forced: cl.forceCommand, NoPTY: cl.noPTY}
	switch req := instead.(type) {
	case *privsep.List:
		list := m.listSessions(u)
		log.Info("sessions listed", "user", user, "sessions", len(list))
		if err := r.send(&privsep.Sessions{List: list}); err != nil {
			log.Error("cannot send the list to the network process", "err", err)
		}
	case *privsep.Resume:
		m.passResume(ctx, child, r, log, u, req, remote)
	}
}

// listSessions asks the listener for u's sessions; none without a listener.
func (m *monitor) listSessions(u controlUser) []privsep.SessionEntry {
	ev, fields, err := m.ask(eventList, u, nil)
	var list controlList
	if err != nil || ev != answerList || json.Unmarshal(fields, &list) != nil || len(list.Sessions) > privsep.MaxListed {
		return nil
	}
	return list.Sessions
}

// passResume asks the listener to pass one end of a new socketpair on to the session req
// names, if it is u's, and hands the other end to the child (RELAY), which relays the client's
// connection to the session; it returns when the child has ended. A session that cannot be had
// is refused "no such session", whatever the reason.
func (m *monitor) passResume(ctx context.Context, child *netChild, r *relay, log *slog.Logger, u controlUser, req *privsep.Resume, remote net.Addr) {
	log = log.With("user", u.User, "id", shortID(req.ID), "reattach", req.Reattach)
	mine, theirs, err := streamPair()
	if err != nil {
		log.Error("cannot resume a session", "err", err)
		_ = r.send(&privsep.Refuse{Reason: reasonNoSession})
		return
	}
	defer mine.Close()
	defer theirs.Close()
	ev, _, err := m.ask(eventResume, controlResume{controlUser: u, ID: req.ID, Reattach: req.Reattach, Peer: peerText(remote)}, theirs)
	_ = theirs.Close() // the session's monitor has its own
	if err != nil || ev != answerYes {
		log.Warn("resume refused", "reason", reasonNoSession)
		_ = r.send(&privsep.Refuse{Reason: reasonNoSession})
		return
	}
	err = r.send(&privsep.Relay{}, mine)
	_ = mine.Close()
	if err != nil {
		log.Error("cannot hand the connection to the network process", "err", err)
		return
	}
	log.Info("connection passed on to its session")
	// The child relays until the session or the client ends the connection; a stop (SIGTERM)
	// ends the session through its own monitor, and this child with it, or after farewell.
	waitChild(ctx, child, farewell)
}

// waitChild waits for child to end; once ctx is done, it tells it (SIGTERM) and kills it grace
// later.
func waitChild(ctx context.Context, child *netChild, grace time.Duration) {
	var kill *time.Timer
	var mu sync.Mutex
	stop := context.AfterFunc(ctx, func() {
		_ = child.cmd.Process.Signal(syscall.SIGTERM)
		mu.Lock()
		kill = time.AfterFunc(grace, child.kill)
		mu.Unlock()
	})
	child.wait()
	if !stop() {
		mu.Lock()
		if kill != nil {
			kill.Stop()
		}
		mu.Unlock()
	}
}

// ask sends the listener ev with v and fd (nil: none) and returns its answer.
func (m *monitor) ask(ev byte, v any, fd *os.File) (byte, []byte, error) {
	if m.control == nil {
		return 0, nil, errors.New("daemon: no listener") // -inetd, or it stopped
	}
	if err := sendControl(m.control, ev, v, fd); err != nil {
		return 0, nil, err
	}
	_ = m.control.SetReadDeadline(time.Now().Add(controlWait))
	defer func() { _ = m.control.SetReadDeadline(time.Time{}) }()
	answer, fields, got, err := newControlReader(m.control).read()
	if got != nil {
		_ = got.Close() // no answer carries one
	}
	if err != nil {
		return 0, nil, fmt.Errorf("daemon: the listener's answer: %w", err)
	}
	return answer, fields, nil
}

// shortID is the short form of a session's id, for logs: its first 8 hex digits.
func shortID(id [privsep.SessionIDLen]byte) string { return hex.EncodeToString(id[:4]) }

// streamPair makes a connected pair of Unix stream sockets, close-on-exec.
func streamPair() (*os.File, *os.File, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("daemon: socketpair: %w", err)
	}
	return os.NewFile(uintptr(fds[0]), "resume-net"), os.NewFile(uintptr(fds[1]), "resume-session"), nil
}

// peerText is remote as sessions show it: "ADDR:PORT" of an IP peer (the kernel's, not the
// net child's word), "" for a Unix socket.
func peerText(remote net.Addr) string {
	if a, ok := remote.(*net.TCPAddr); ok {
		if s := a.AddrPort().String(); len(s) <= 64 {
			return s
		}
	}
	return ""
}

// A resumeHost is the monitor's side of a session on a terminal that its net child may make
// resumable (RESUMABLE): it registers it with the listener, logs and reports its detaches and
// attaches, and hands it the new connections the listener passes on (ATTACH), one at a time.
type resumeHost struct {
	m    *monitor
	r    *relay
	log  *slog.Logger   // the session's (with its user)
	info controlSession // ID set by RESUMABLE

	mu        sync.Mutex
	resumable bool        // RESUMABLE came, and the listener knows the session
	detached  bool        // no client is attached
	pending   *attachment // the ATTACH awaiting its ATTACHED

	done    chan struct{} // closed by close: the forwarder stops
	forward sync.WaitGroup
}

// An attachment is an ATTACH sent to the child.
type attachment struct {
	controlAttach
	answer chan struct{} // closed at its ATTACHED
}

// newResumeHost returns the resumeHost of a session of u (running pid, started now) for a
// client at peer, running what (a terminal type, or a command); forced is the forced command of
// the key it logged in with, if any.
func newResumeHost(m *monitor, r *relay, log *slog.Logger, u controlUser, forced string, pid int, peer, what string) *resumeHost {
	return &resumeHost{m: m, r: r, log: log, done: make(chan struct{}),
		info: controlSession{User: u.User, UID: u.UID, Forced: forced, PID: pid, Started: time.Now(), Peer: peer, What: whatText(what)}}
}

// whatText is what, cut to what SESSIONS carries, as text.
func whatText(what string) string { return fitText(what, privsep.MaxWhatLen) }

// registered handles RESUMABLE: the session is registered with the listener, which passes new
// connections of its user on to this monitor from now on.
func (h *resumeHost) registered(msg *privsep.Resumable) {
	if h == nil || h.m.control == nil {
		return
	}
	h.mu.Lock()
	h.info.ID = msg.ID
	h.resumable = true
	h.mu.Unlock()
	if err := sendControl(h.m.control, eventResumable, h.info, nil); err != nil {
		h.log.Warn("the session cannot be resumed: the listener is gone", "err", err)
		return
	}
	h.forward.Go(h.forwardAttaches)
}

// detachedNow handles DETACHED.
func (h *resumeHost) detachedNow(msg *privsep.Detached) {
	if h == nil {
		return
	}
	h.mu.Lock()
	h.detached = true
	peer := h.info.Peer
	h.mu.Unlock()
	h.log.Info("session detached", "peer", peer, "id", shortID(h.info.ID), "cause", msg.Cause)
	h.tell(eventDetached, nil)
}

// attached handles ATTACHED, the answer to the pending ATTACH.
func (h *resumeHost) attached(msg *privsep.Attached) {
	if h == nil {
		return
	}
	h.mu.Lock()
	a := h.pending
	h.pending = nil
	old := h.info.Peer
	tookOver := !h.detached // a client was attached: the session closed its connection
	if a != nil && msg.Accepted {
		h.detached = false
		h.info.Peer = a.Peer
	}
	h.mu.Unlock()
	if a == nil {
		return
	}
	close(a.answer)
	log := h.log.With("peer", a.Peer, "id", shortID(h.info.ID))
	switch {
	case !msg.Accepted:
		log.Warn("resume refused", "reattach", a.Reattach, "reason", reasonNoSession)
		return
	case a.Reattach && tookOver:
		log.Info("session reattached", "took_over_from", old)
	case a.Reattach:
		log.Info("session reattached")
	default:
		log.Info("session resumed", "skipped", msg.Skipped)
	}
	h.tell(eventAttached, controlPeer{Peer: a.Peer})
}

// isDetached reports whether the session is detached.
func (h *resumeHost) isDetached() bool {
	if h == nil {
		return false
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.detached
}

// isResumable reports whether the session was registered.
func (h *resumeHost) isResumable() bool {
	if h == nil {
		return false
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.resumable
}

// tell reports ev to the listener; a listener that is gone cannot resume the session anyway.
func (h *resumeHost) tell(ev byte, v any) { _ = sendControl(h.m.control, ev, v, nil) }

// forwardAttaches hands the connections the listener passes on to the child, one ATTACH at a
// time, until close.
func (h *resumeHost) forwardAttaches() {
	rd := newControlReader(h.m.control)
	for {
		ev, fields, fd, err := rd.read()
		if err != nil {
			return // the listener is gone, or close
		}
		var ca controlAttach
		if ev == commandAttach && fd != nil && json.Unmarshal(fields, &ca) == nil {
			h.attach(ca, fd)
		}
		if fd != nil {
			_ = fd.Close() // the child has its own
		}
	}
}

// attach sends the child ATTACH with sock and waits (a while) for its ATTACHED.
func (h *resumeHost) attach(ca controlAttach, sock *os.File) {
	a := &attachment{controlAttach: ca, answer: make(chan struct{})}
	a.Peer = fitText(a.Peer, 64)
	h.mu.Lock()
	h.pending = a
	h.mu.Unlock()
	if err := h.r.send(&privsep.Attach{Reattach: a.Reattach, Peer: a.Peer}, sock); err != nil {
		h.mu.Lock()
		h.pending = nil
		h.mu.Unlock()
		h.log.Warn("cannot pass a resuming connection to the network process", "err", err)
		return
	}
	t := time.NewTimer(controlWait)
	defer t.Stop()
	select {
	case <-a.answer:
	case <-h.done:
	case <-t.C:
		// The child holds the ATTACH; the conversation allows no other until its ATTACHED.
		h.log.Warn("the network process did not answer a resume in time")
		<-h.done
	}
}

// close stops forwarding and waits for the forwarder.
func (h *resumeHost) close() {
	if h == nil {
		return
	}
	close(h.done)
	if h.m.control != nil {
		_ = h.m.control.SetReadDeadline(time.Unix(1, 0))
	}
	h.forward.Wait()
	if h.m.control != nil {
		_ = h.m.control.SetReadDeadline(time.Time{})
	}
}
