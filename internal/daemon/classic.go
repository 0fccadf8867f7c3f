package daemon

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

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
// terminal behind the password gate (gate_linux.go), as in.rlogind does when no trust applies.
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

// Paths of the trust files.
const (
	hostsEquivPath = "/etc/hosts.equiv"
	rhostsName     = ".rhosts"
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
	lg, reason, ok := g.authorizeClassic(l.log, c, req)
	slot := g.claimSession(c, srv, reason, ok)
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
// mode: the daemon's own shell), or the refusal's reason.
func (s *Server) authorizeClassic(log *slog.Logger, conn net.Conn, req *classic.Request) (*systemLogin, string, bool) {
	if !session.ValidUserName(req.ServerUser) || !session.ValidUserName(req.ClientUser) { // checked by the handshake already
		log.Warn("login refused", "reason", errInvalidUser.Error())
		return nil, classicDenied, false
	}
	peer, privileged := classicPeer(conn.RemoteAddr())
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
		u := &systemlogin.User{Name: s.user, UID: s.uid, Home: s.home}
		if why := s.rhostsTrust(log, u, req.ClientUser, peer, privileged); why != "" {
			log.Warn("authentication failed", "method", methodRhosts, "reason", why)
			return nil, classicNoPassword, false
		}
		log.Info("authentication succeeded", "method", methodRhosts)
		return nil, "", true
	}
	u, err := systemlogin.LookupUser(req.ServerUser)
	if err != nil {
		log.Warn("login refused", "reason", "no such user", "err", err)
		return nil, classicDenied, false
	}
	root := u.UID == 0
	if root && s.cfg.PermitRootLogin == PermitRootNo {
		log.Warn("login refused", "reason", "root login not permitted (permit-root-login no)")
		return nil, classicDenied, false
	}
	lg := &systemLogin{user: u, method: methodPassword}
	why := "trust is off"
	if c.TrustRhosts && (!root || c.TrustRhostsRoot) {
		why = s.rhostsTrust(log, u, req.ClientUser, peer, privileged)
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
	if !root {
		if msg, refused := systemlogin.Nologin(); refused {
			log.Warn("login refused", "reason", "nologin", "message", sanitize.Text(msg))
			return nil, msg, false
		}
	}
	return lg, "", true
}

// classicPeer returns the client's address and whether its port is privileged (512-1023, as
// rresvport(3) binds them).
func classicPeer(addr net.Addr) (netip.Addr, bool) {
	ta, ok := addr.(*net.TCPAddr)
	if !ok {
		return netip.Addr{}, false
	}
	ap := ta.AddrPort()
	return ap.Addr().Unmap(), ap.Port() >= 512 && ap.Port() <= 1023
}

// rhostsTrust reports why the client user ruser at peer is not trusted to log in as u without
// a password, or "" if it is: the connection comes from a privileged port, and /etc/hosts.equiv
// (not for root) or u's ~/.rhosts lists the peer's host and ruser (see rhostsAllows).
func (s *Server) rhostsTrust(log *slog.Logger, u *systemlogin.User, ruser string, peer netip.Addr, privileged bool) string {
	if !privileged || !peer.IsValid() {
		return "the client's port is not privileged (512-1023)"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	lookup := func(host string) []netip.Addr {
		ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		if err != nil {
			return nil
		}
		return ips
	}
	files := []string{filepath.Join(u.Home, rhostsName)}
	if u.UID != 0 {
		files = append([]string{hostsEquivPath}, files...)
	}
	for _, path := range files {
		lines, err := readTrustFile(path, u.UID)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			log.Warn("trust file not used", "err", err)
			continue
		}
		if rhostsAllows(lines, path == hostsEquivPath, u.Name, ruser, peer, lookup) {
			log.Info("trusted by "+path, "peer", peer.String())
			return ""
		}
	}
	return "no trust file lists the client's host and user"
}

// readTrustFile reads a trust file, which must be a regular file (not a symbolic link) owned by
// uid or root and not writable by group or others, as ruserok(3) requires.
func readTrustFile(path string, uid int) ([]string, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("daemon: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("daemon: %w", err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	switch {
	case !fi.Mode().IsRegular():
		return nil, fmt.Errorf("daemon: %s is not a regular file", path)
	case !ok || (int(st.Uid) != uid && st.Uid != 0):
		return nil, fmt.Errorf("daemon: %s is not owned by the user or root", path)
	case fi.Mode().Perm()&0o022 != 0:
		return nil, fmt.Errorf("daemon: %s is writable by group or others", path)
	}
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() && len(lines) < 1024 {
		lines = append(lines, sc.Text())
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("daemon: %s: %w", path, err)
	}
	return lines, nil
}

// rhostsAllows reports whether trust-file lines let ruser at peer log in as luser. Each line is
// "host [user]": host an IP address or a name whose addresses (lookup) include peer; user the
// client user allowed, or, when missing, the same name as luser. A line that names host "-host"
// or user "-user" denies and ends the search, as in ruserok(3). Wildcards ("+") and netgroups
// ("@group") are never honoured: they trust the whole network. In hosts.equiv (equiv) a line
// with a user lets that user in as any local user, as ruserok(3) has it.
func rhostsAllows(lines []string, equiv bool, luser, ruser string, peer netip.Addr, lookup func(string) []netip.Addr) bool {
	for _, line := range lines {
		f := strings.Fields(line)
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		host, user := f[0], ""
		if len(f) > 1 {
			user = f[1]
		}
		hostNeg := strings.HasPrefix(host, "-")
		host = strings.TrimPrefix(host, "-")
		if host == "" || host == "+" || strings.HasPrefix(host, "@") || strings.HasPrefix(user, "+") || strings.HasPrefix(user, "@") {
			continue
		}
		if !hostMatches(host, peer, lookup) {
			continue
		}
		if hostNeg {
			return false
		}
		userNeg := strings.HasPrefix(user, "-")
		user = strings.TrimPrefix(user, "-")
		switch {
		case user == "" && !userNeg:
			if ruser == luser {
				return true
			}
		case user == ruser:
			if userNeg {
				return false
			}
			return true // in hosts.equiv too: that user, as any local user (ruserok(3))
		}
	}
	return false
}

// hostMatches reports whether a trust-file host is peer: an equal IP address, or a name one of
// whose addresses is peer.
func hostMatches(host string, peer netip.Addr, lookup func(string) []netip.Addr) bool {
	if ip, err := netip.ParseAddr(host); err == nil {
		return ip.Unmap() == peer
	}
	for _, ip := range lookup(host) {
		if ip.Unmap() == peer {
			return true
		}
	}
	return false
}
