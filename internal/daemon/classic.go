package daemon

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"time"

	"github.com/rlogin-go/rlogin/internal/rhosts"
	"github.com/rlogin-go/rlogin/internal/sanitize"
	"github.com/rlogin-go/rlogin/internal/systemlogin"
	"github.com/rlogin-go/rlogin/pty"
	"github.com/rlogin-go/rlogin/session"
	"github.com/rlogin-go/rlogin/session/classic"
)

// Classic rlogin: with Config.Classic.Enabled the daemon also serves clients of BSD rlogin's own
// protocol (RFC 1282, package session/classic), such as netkit rlogin, on the same port: the
// Mux hands it the conns whose first byte is NUL. The protocol is plaintext and has no server
// authentication; the daemon logs a warning saying so when it starts.
//
// Authentication, System mode (root): the password, asked by login(1) on the session's
// terminal behind the password gate (package systemlogin), as in.rlogind does when no trust applies.
// With Classic.TrustRhosts, a client connecting from a privileged port (512-1023) whose host and
// user are listed in /etc/hosts.equiv or the user's ~/.rhosts logs in without a password
// (login -f); never root, unless Classic.TrustRhostsRoot. PermitRootLogin applies as to secure
// logins ("prohibit-password" allows root only through trust).
//
// User mode: classic clients are refused unless Classic.AllowUserMode; even then a user-mode
// daemon cannot check a password (login(1) needs root), so the only way in is .rhosts trust of
// the daemon's own user, with TrustRhosts.

// ClassicConfig configures the classic rlogin service. The zero value is off.
type ClassicConfig struct {
	// Enabled serves classic rlogin clients (first byte NUL) on the daemon's port.
	Enabled bool
	// TrustRhosts lets clients from privileged ports (512-1023) log in without a password when
	// /etc/hosts.equiv or the user's ~/.rhosts lists their host and user. Insecure anywhere an
	// attacker can use a privileged port or an address of a trusted host.
	TrustRhosts bool
	// TrustRhostsRoot lets TrustRhosts apply to root too (through /root/.rhosts only; never
	// hosts.equiv), if PermitRootLogin allows root at all.
	TrustRhostsRoot bool
	// AllowUserMode serves classic clients in user mode (not System), with .rhosts trust as the
	// only way in.
	AllowUserMode bool
}

// Classic refusal messages: a classic client prints them as they are.
const (
	classicDenied     = "Permission denied."
	classicNotServed  = "classic rlogin is not served here in user mode; use rlogin without -c"
	classicNoPassword = "this rlogind runs as a user and cannot check passwords; only .rhosts trust can log you in"
)

// The terminal size until the client's first window message, which normally follows the window
// request at once.
const (
	classicDefaultRows = 24
	classicDefaultCols = 80
)

// methodRhosts is the authentication method logged for .rhosts and hosts.equiv trust.
const methodRhosts = "rhosts"

// warnClassic logs, when the classic service starts, that it is unencrypted.
func (g *Server) warnClassic() {
	attrs := []any{"trust_rhosts", g.cfg.Classic.TrustRhosts, "trust_rhosts_root", g.cfg.Classic.TrustRhostsRoot}
	if !g.cfg.System && !g.cfg.Classic.AllowUserMode {
		g.log.Warn("classic rlogin enabled, but refused in user mode (see -classic-user-mode)")
	}
	g.log.Warn("classic rlogin (RFC 1282) enabled: this service is UNENCRYPTED, passwords and sessions cross the network in plaintext and the server is not authenticated", attrs...)
}

// handleClassic runs one classic conn from the handshake to the end of its session; it owns c.
// Everything before the session starts runs under c's login grace deadline.
func (g *Server) handleClassic(ctx context.Context, c *conn) {
	l := g.beginLogin(ctx, c, g.log.With("conn", c.id, "remote", c.RemoteAddr().String(), "protocol", "classic"))
	defer l.stopAbort()
	l.log.Info("connection accepted (classic rlogin, unencrypted)")

	srv := classic.NewServerConn(c.Conn) // the mailbox conn itself: the urgent data reaches the socket through its NetConn
	req, ok := g.readClassicRequest(ctx, l, srv)
	if !ok {
		return
	}
	// The names passed the handshake's checks (portable user names), so they log as they are.
	l.log = l.log.With("user", req.ServerUser, "client_user", req.ClientUser)
	actx, cancel := context.WithDeadline(ctx, l.deadline) // users' files are read by the deadline
	defer cancel()
	lg, reason, ok := g.authorizeClassic(actx, l.log, c.RemoteAddr(), req)
	slot := g.claimSession(c, srv, reason, ok, lg)
	if slot == nil {
		return
	}
	defer slot.release()

	sr := sessionRequest{
		term:   session.TerminalTypeOrDumb(req.Term),
		window: pty.Size{Rows: classicDefaultRows, Cols: classicDefaultCols},
	}
	if lg != nil {
		sr.logAttrs = []any{"method", lg.method}
	}
	g.runSession(ctx, l, classicProtocol{srv, c.Conn}, slot, lg, sr, "term", req.Term)
}

// classicProtocol is the classic protocol's side of a session.
type classicProtocol struct {
	*classic.ServerConn
	conn net.Conn
}

func (p classicProtocol) serve(ctx context.Context, term systemlogin.Terminal) (*os.ProcessState, error) {
	_ = p.conn.SetDeadline(time.Time{}) // the session has no deadline
	return p.Serve(ctx, term)
}

// readClassicRequest reads the classic handshake. On failure it logs why, penalizes a bad
// handshake, and closes the conn.
func (g *Server) readClassicRequest(ctx context.Context, l *attempt, srv *classic.ServerConn) (*classic.Request, bool) {
	req, err := srv.ReadRequest()
	if err == nil {
		return req, true
	}
	var he *classic.HandshakeError
	if errors.As(err, &he) || errors.Is(err, classic.ErrNotClassic) {
		// Refused and closed by ReadRequest.
		l.log.Warn("login refused: bad classic handshake", "err", sanitize.Text(err.Error()))
		l.ac.Failed()
		return nil, false
	}
	g.logLoginError(ctx, l.log, "classic handshake", err)
	_ = srv.Close()
	return nil, false
}

var _ classic.Terminal = systemlogin.Terminal(nil) // what startSession returns serves classic rlogin too

// authorizeClassic decides a classic login. It returns the System login to start (nil in user
// mode: the daemon's own shell), or the refusal's reason. peer is the client's address as the kernel
// gives it (the trust files name hosts and need a privileged port).
func (s *Server) authorizeClassic(ctx context.Context, log *slog.Logger, peer net.Addr, req *classic.Request) (*systemLogin, string, bool) {
	if !session.ValidUserName(req.ServerUser) || !session.ValidUserName(req.ClientUser) { // checked by the handshake already
		log.Warn("login refused", "reason", errInvalidUser.Error())
		return nil, classicDenied, false
	}
	c := s.cfg.Classic
	if !c.Enabled { // turned off by a reload since the listener was announced
		log.Warn("login refused", "reason", "classic rlogin is turned off")
		return nil, classicDenied, false
	}
	if !s.cfg.System {
		switch {
		case !c.AllowUserMode:
			log.Warn("login refused", "reason", "classic rlogin is refused in user mode")
			return nil, classicNotServed, false
		case req.ServerUser != s.user:
			log.Warn("login refused", "reason", "this rlogind serves only user "+s.user)
			return nil, classicDenied, false
		case !c.TrustRhosts:
			log.Warn("login refused", "reason", "user mode has no password check and .rhosts trust is off")
			return nil, classicNoPassword, false
		}
		trust := rhosts.Request{User: s.user, UID: s.uid, Home: s.home, RemoteUser: req.ClientUser, Peer: peer}
		if why := rhosts.Check(ctx, log, &s.files, trust); why != "" {
			log.Warn("authentication failed", "method", methodRhosts, "reason", why)
			return nil, classicNoPassword, false
		}
		log.Info("authentication succeeded", "method", methodRhosts)
		return nil, "", true
	}
	u, ok := s.systemUser(log, req.ServerUser)
	if !ok {
		return nil, classicDenied, false
	}
	root := u.UID == 0
	lg := &systemLogin{user: u, method: methodPassword}
	why := "trust is off"
	if c.TrustRhosts && (!root || c.TrustRhostsRoot) {
		why = rhosts.Check(ctx, log, &s.files, rhosts.Request{User: u.Name, UID: u.UID, Home: u.Home, RemoteUser: req.ClientUser, Peer: peer})
	} else if c.TrustRhosts {
		why = "trust does not apply to root"
	}
	if why == "" {
		lg.method = methodRhosts
		log.Info("authentication succeeded", "method", methodRhosts)
	} else {
		if root && s.cfg.PermitRootLogin == PermitRootProhibitPassword {
			log.Warn("login refused", "reason", "root login by password not permitted (permit-root-login prohibit-password)", "rhosts", why)
			return nil, classicDenied, false
		}
		log.Info("no trust; login(1) asks for the password", "method", methodPassword, "rhosts", why)
	}
	if msg, refused := nologin(log, u); refused {
		return nil, msg, false
	}
	return lg, "", true
}
