package daemon

import (
	"cmp"
	"context"
	"crypto/ed25519"
	"errors"
	"log/slog"
	"net"
	"os"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/rlogin-go/rlogin/internal/pipes"
	"github.com/rlogin-go/rlogin/internal/sanitize"
	"github.com/rlogin-go/rlogin/internal/systemlogin"
	"github.com/rlogin-go/rlogin/internal/userfile"
	"github.com/rlogin-go/rlogin/keys"
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

// errInvalidUser is the reason logged for a user name that fails session.ValidUserName.
var errInvalidUser = errors.New("invalid user name")

// handleSecure runs one secure conn (TLS 1.3, then the session protocol) from its mailbox to
// the end of its session; it owns c. Everything before the shell starts runs under c's login
// grace deadline, counted from accept.
func (g *Server) handleSecure(ctx context.Context, c *conn) {
	l := g.beginLogin(ctx, c, g.log.With("conn", c.id, "remote", c.RemoteAddr().String()))
	defer l.stopAbort()
	l.log.Info("connection accepted")

	sc, ok := g.handshake(ctx, l)
	if !ok {
		return
	}
	key := sc.PeerKey()
	l.log = l.log.With("key", keys.Fingerprint(key))
	srv := session.NewServerConn(sc)
	srv.Keepalive = g.cfg.ClientAlive
	srv.RunsCommands = true // or refuses them, after authorization, saying why (command.go)
	req, ok := g.readRequest(ctx, l, srv)
	if !ok {
		return
	}
	actx, cancel := context.WithDeadline(ctx, l.deadline) // users' files are read by the deadline
	defer cancel()
	cl := &client{key: key, cert: sc.PeerCertificate(), addr: c.RemoteAddr()}
	lg, reason, ok := g.authorizeLogin(actx, l.log, req, cl)
	if req.Resume != nil || req.List {
		g.answerResume(l, srv, sc, req, cl, lg, reason, ok)
		return
	}
	var cmd sessionCommand
	if ok {
		cmd, reason, ok = commandOf(l.log, req, cl, lg)
	}
	slot := g.claimSession(c, srv, reason, ok, lg)
	if slot == nil {
		return
	}
	defer slot.release()

	sr := sessionRequest{
		term:     session.TerminalTypeOrDumb(req.Term),
		locale:   acceptedLocale(l.log, req),
		window:   req.Window,
		command:  cmd.command,
		original: cmd.original,
		pipes:    cmd.pipes,
	}
	user := g.user
	if lg != nil {
		user = lg.user.Name
		sr.logAttrs = []any{"user", user, "method", lg.method}
	}
	// A password login is not resumable: its session would wait, detached, for a client that
	// never proved who it is.
	if g.resumeOffered(c) && offersResume(req) && !sr.pipes && !lg.passwordPending() {
		what := cmp.Or(sr.command, sr.term)
		sr.resume = g.newResumable(srv, l.log, user, cl, what)
	}
	started := []any{"term", sanitize.Text(req.Term)}
	if lg == nil {
		started = []any{"user", g.user, "term", sanitize.Text(req.Term)}
	}
	g.runSession(ctx, l, &secureProtocol{srv, sc}, slot, lg, sr, started...)
}

// secureProtocol is the secure protocol's side of a session.
type secureProtocol struct {
	*session.ServerConn
	tls *transport.SecureConn // until the session is served
}

func (p *secureProtocol) serve(ctx context.Context, term systemlogin.Terminal) (*os.ProcessState, error) {
	p.liftDeadline()
	return p.Serve(ctx, term)
}

func (p *secureProtocol) serveCommand(ctx context.Context, c *pipes.Command) (*os.ProcessState, error) {
	p.liftDeadline()
	return p.Serve(ctx, c)
}

// liftDeadline lifts the login's deadline: the session has none. It forgets the conn, which the
// session owns from then on: the session drops a conn it gave up (a detached session holds no
// conn's buffers and TLS state), and so must its caller.
func (p *secureProtocol) liftDeadline() {
	_ = p.tls.SetDeadline(time.Time{})
	p.tls = nil
}

// handshake runs the TLS handshake of l's conn with the host key, within the grace deadline.
// On failure it logs why (transport.Server has closed the conn).
func (g *Server) handshake(ctx context.Context, l *attempt) (*transport.SecureConn, bool) {
	hctx, cancel := context.WithDeadline(ctx, l.deadline)
	defer cancel()
	sc, err := transport.Server(hctx, l.Conn, &transport.SecureConfig{
		Key:              g.cfg.HostKey,
		Certificate:      g.hostCert,
		HandshakeTimeout: max(time.Until(l.deadline), time.Millisecond),
	})
	if err != nil {
		g.logLoginError(ctx, l.log, "TLS handshake", err)
		return nil, false
	}
	_ = sc.SetDeadline(l.deadline) // the handshake may have cleared it
	return sc, true
}

// readRequest reads the login request. On failure it logs why, tells the client if the login
// timed out or the service is stopping (docs/protocol.md §8), and closes the conn.
func (g *Server) readRequest(ctx context.Context, l *attempt, srv *session.ServerConn) (*session.Request, bool) {
	req, err := srv.ReadRequest()
	if err == nil {
		return req, true
	}
	g.logLoginError(ctx, l.log, "login request", err)
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		_ = srv.Close()
		return nil, false
	}
	// Refuse gives its write a short deadline, which the admitted conn allows a little past
	// the grace time.
	reason := reasonTimedOut
	if ctx.Err() != nil {
		reason = reasonStopping
	}
	_ = srv.Refuse(reason)
	return nil, false
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

// A client is who the client proved to be in the handshake: its key, the OpenSSH certificate it
// sent for it (nil if none), and where it connects from; and, once its certificate or its
// authorized_keys line let it in, the command that forces, if any, and whether it forbids a
// terminal (no-pty).
type client struct {
	key          ed25519.PublicKey
	cert         *ssh.Certificate
	addr         net.Addr
	forceCommand string
	noPTY        bool
}

// authorize decides a login request from cl. It returns the refusal's reason and false, or ""
// and true. In order: the requested name must be a valid user name (checked before anything
// else), the key must not be revoked, its certificate must let it in (userCertificate) or the
// key be in the authorized_keys file, and the name must be the daemon's user; so a client
// whose key is not authorized learns nothing about the user.
func (s *Server) authorize(ctx context.Context, log *slog.Logger, req *session.Request, cl *client) (string, bool) {
	if !session.ValidUserName(req.User) {
		log.Warn("login refused", "reason", errInvalidUser.Error(), "user", sanitize.Text(req.User))
		return reasonInvalidUser, false
	}
	user, key := req.User, cl.key // valid, so safe to log as is
	switch s.userCertificate(ctx, log, &systemlogin.User{Name: user, UID: s.uid, Home: s.home}, cl) {
	case certRevoked:
		return reasonDenied, false
	case certAccepted:
		if user != s.user {
			log.Warn("login refused", "user", user, "reason", "this rlogind serves only user "+s.user)
			return "this rlogind serves only user " + s.user, false
		}
		log.Info("authentication succeeded", "method", methodPublicKey, "user", user)
		return "", true
	}
	auth, err := userfile.Load(ctx, &s.files, s.uid, func() (*keys.Authorized, error) { return keys.LoadAuthorized(s.cfg.AuthorizedKeys, s.uid, s.home) })
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
	opts, ok := auth.Permit(key, cl.addr)
	if !ok {
		log.Warn("authentication failed", "user", user, "reason", "key not in "+s.cfg.AuthorizedKeys+" (or its from= does not match)")
		return reasonDenied, false
	}
	if user != s.user {
		log.Warn("login refused", "user", user, "reason", "this rlogind serves only user "+s.user)
		return "this rlogind serves only user " + s.user, false
	}
	cl.forceCommand, cl.noPTY = opts.Command, opts.NoPTY
	log.Info("authentication succeeded", append([]any{"method", methodPublicKey, "user", user}, keyOptionAttrs(opts)...)...)
	return "", true
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
