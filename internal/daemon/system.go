package daemon

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/rlogin-go/rlogin/internal/pamlogin"
	"github.com/rlogin-go/rlogin/internal/sanitize"
	"github.com/rlogin-go/rlogin/internal/systemlogin"
	"github.com/rlogin-go/rlogin/internal/userfile"
	"github.com/rlogin-go/rlogin/keys"
	"github.com/rlogin-go/rlogin/session"
)

// System mode: a Server with Config.System set serves every local user, the way in.rlogind and
// sshd do, and runs each session through the system's login(1). See docs/system-mode.md.

// DefaultLoginProgram is the login(1) a System server runs when Config.LoginProgram is "".
const DefaultLoginProgram = systemlogin.DefaultProgram

// SystemHostKey is the host key of rlogind run as root (created on first start, with its .pub).
const SystemHostKey = "/etc/rlogin/rlogind_host_ed25519_key"

// Values of Config.PermitRootLogin, as sshd_config(5)'s PermitRootLogin.
const (
	PermitRootNo               = "no"                // root never logs in (the default)
	PermitRootProhibitPassword = "prohibit-password" // root logs in with an authorized key only
	PermitRootYes              = "yes"               // root logs in like any other user
)

// Authentication methods, as logged.
const (
	methodPublicKey = "publickey"
	methodPassword  = "password"
)

// servingAttrs describes whom the server serves, for its first log line.
func (s *Server) servingAttrs() []any {
	if s.cfg.System {
		attrs := []any{"users", "all (system mode)", "login", s.cfg.LoginProgram, "permit_root_login", s.cfg.PermitRootLogin,
			"password_authentication", s.cfg.PasswordAuthentication}
		if s.cfg.PrivilegeSeparation {
			attrs = append(attrs, "pam", pamlogin.Supported)
		}
		return append(attrs, s.certAttrs()...)
	}
	return append([]any{"user", s.user, "shell", s.shell}, s.certAttrs()...)
}

// checkSystem checks the System fields of cfg and fills in their defaults. It runs for a System
// config only.
func checkSystem(cfg *Config) error {
	if runtime.GOOS != "linux" {
		return errors.New("daemon: Config.System is supported on Linux only")
	}
	if os.Geteuid() != 0 {
		return errors.New("daemon: Config.System needs root: login(1) must run as root to start another user's session")
	}
	switch cfg.PermitRootLogin {
	case "":
		cfg.PermitRootLogin = PermitRootNo
	case PermitRootNo, PermitRootProhibitPassword, PermitRootYes:
	default:
		return fmt.Errorf("daemon: PermitRootLogin %q: want %q, %q or %q", cfg.PermitRootLogin,
			PermitRootNo, PermitRootProhibitPassword, PermitRootYes)
	}
	if k := cfg.AuthorizedKeys; !strings.HasPrefix(k, "~/") && !strings.HasPrefix(k, "%h/") && !filepath.IsAbs(k) {
		return fmt.Errorf("daemon: AuthorizedKeys %q: in System mode it must start with ~/ or %%h/ (the user's home) or be absolute", k)
	}
	if cfg.LoginProgram == "" {
		cfg.LoginProgram = DefaultLoginProgram
	}
	// The password gate, which needs /proc/PID/syscall, serves password logins only without
	// privilege separation: with it, PAM does (or they are refused in a build without PAM).
	return systemlogin.CheckProgram(cfg.LoginProgram, cfg.PasswordAuthentication && !cfg.PrivilegeSeparation)
}

// systemLogin is an authorized System login: who, and how login(1) is to let them in.
type systemLogin struct {
	user   *systemlogin.User
	method string // methodPublicKey, methodRhosts: login -f; methodPassword: login(1) asks for the password
	// unknown says that user does not exist (only its Name is set): a password login that PAM
	// refuses after the same prompts and delay as a wrong password (authorizePasswordAlike).
	unknown bool
	onFail  func() // if not nil, called when a password login fails (the per-source penalties)
	onOpen  func() // if not nil, called when a password login's session starts (authenticated)
}

// passwordPending reports whether lg's verdict is still to come: login(1) checks the password.
func (lg *systemLogin) passwordPending() bool { return lg != nil && lg.method == methodPassword }

// authorizeLogin decides a login request: with authorizeSystem in System mode, else with
// authorize (lg is nil then).
func (s *Server) authorizeLogin(ctx context.Context, log *slog.Logger, req *session.Request, cl *client) (lg *systemLogin, reason string, ok bool) {
	if s.cfg.System {
		return s.authorizeSystem(ctx, log, req, cl)
	}
	reason, ok = s.authorize(ctx, log, req, cl)
	return nil, reason, ok
}

// authorizeSystem decides a login request in System mode. In order: the name must be a valid
// user name (before anything else looks at it), name an existing user, and not be root unless
// PermitRootLogin allows it; then the client's key must be in that user's authorized keys, or
// else password logins must be allowed (login(1) then asks for the password); last, the
// nologin files refuse everyone but root. A client learns only "permission denied" whatever
// failed, except for the nologin message.
func (s *Server) authorizeSystem(ctx context.Context, log *slog.Logger, req *session.Request, cl *client) (*systemLogin, string, bool) {
	return s.authorizeSystemUser(ctx, log, req, cl, false)
}

// authorizePasswordAlike is authorizeSystem for a server that checks passwords itself (PAM in
// the monitor): when password logins are on, a user that does not exist gets a password login
// too, which PAM refuses after the same prompts and delay as a known user's wrong password, so
// that a client cannot tell who exists (as sshd).
func (s *Server) authorizePasswordAlike(ctx context.Context, log *slog.Logger, req *session.Request, cl *client) (*systemLogin, string, bool) {
	return s.authorizeSystemUser(ctx, log, req, cl, s.cfg.PasswordAuthentication)
}

// authorizeSystemUser is authorizeSystem, and authorizePasswordAlike with unknownAlike.
func (s *Server) authorizeSystemUser(ctx context.Context, log *slog.Logger, req *session.Request, cl *client, unknownAlike bool) (*systemLogin, string, bool) {
	if !session.ValidUserName(req.User) {
		log.Warn("login refused", "reason", errInvalidUser.Error(), "user", sanitize.Text(req.User))
		return nil, reasonInvalidUser, false
	}
	name := req.User // valid, so safe to log as is
	if unknownAlike {
		if lg, reason, unknown := s.unknownUser(log, name); unknown {
			return lg, reason, lg != nil
		}
	}
	u, ok := s.systemUser(log.With("user", name), name)
	if !ok {
		return nil, reasonDenied, false
	}
	root := u.UID == 0
	lg := &systemLogin{user: u, method: methodPublicKey}
	if why := s.keyAuthorized(ctx, log, u, cl); why != "" {
		passwordOK := s.cfg.PasswordAuthentication && !(root && s.cfg.PermitRootLogin == PermitRootProhibitPassword)
		if !passwordOK {
			log.Warn("authentication failed", "method", methodPublicKey, "user", name, "reason", why)
			return nil, reasonDenied, false
		}
		log.Info("key not authorized; the password is asked", "method", methodPassword, "user", name, "reason", why)
		lg.method = methodPassword
	} else {
		log.Info("authentication succeeded", "method", methodPublicKey, "user", name)
	}
	if msg, refused := nologin(log.With("user", name), u); refused {
		return nil, msg, false
	}
	return lg, "", true
}

// unknownUser reports whether name, a valid user name, names no user; if so it returns the
// password login that PAM will refuse after the same prompts and delay as a wrong password
// (authorizePasswordAlike), or nil and the nologin files' message if they refuse logins.
func (s *Server) unknownUser(log *slog.Logger, name string) (lg *systemLogin, reason string, unknown bool) {
	_, err := systemlogin.LookupUser(name)
	if err == nil {
		return nil, "", false
	}
	log.Info("no such user; the password is asked all the same", "method", methodPassword, "user", name, "err", err)
	u := &systemlogin.User{Name: name, UID: -1}
	if msg, refused := nologin(log.With("user", name), u); refused {
		return nil, msg, true
	}
	return &systemLogin{user: u, method: methodPassword, unknown: true}, "", true
}

// systemUser looks up the user a System login names, which must be a valid user name, and
// applies PermitRootLogin's "no"; it logs why and returns false if the login is refused.
func (s *Server) systemUser(log *slog.Logger, name string) (*systemlogin.User, bool) {
	u, err := systemlogin.LookupUser(name)
	if err != nil {
		log.Warn("login refused", "reason", "no such user", "err", err)
		return nil, false
	}
	if u.UID == 0 && s.cfg.PermitRootLogin == PermitRootNo {
		log.Warn("login refused", "reason", "root login not permitted (permit-root-login no)")
		return nil, false
	}
	return u, true
}

// nologin reports whether the nologin files refuse u's login (never root's), and with what
// message for the client; it logs the refusal.
func nologin(log *slog.Logger, u *systemlogin.User) (msg string, refused bool) {
	if u.UID == 0 {
		return "", false
	}
	msg, refused = systemlogin.Nologin()
	if refused {
		log.Warn("login refused", "reason", "nologin", "message", sanitize.Text(msg))
	}
	return msg, refused
}

// keyAuthorized reports why cl's key may not log in as u, or "" if its certificate lets it in
// (userCertificate) or u's authorized keys list it.
func (s *Server) keyAuthorized(ctx context.Context, log *slog.Logger, u *systemlogin.User, cl *client) string {
	switch s.userCertificate(ctx, log, u, cl) {
	case certRevoked:
		return "key revoked"
	case certAccepted:
		return ""
	}
	key := cl.key
	path := u.AuthorizedKeysPath(s.cfg.AuthorizedKeys)
	auth, err := userfile.Load(ctx, &s.files, u.UID, func() (*keys.Authorized, error) { return keys.LoadAuthorized(path, u.UID, u.Home) })
	if errors.Is(err, fs.ErrNotExist) {
		return "no authorized keys file " + path
	}
	if err != nil {
		log.Error("cannot use the authorized keys file", "user", u.Name, "err", err)
		return "cannot use the authorized keys file " + path
	}
	if len(auth.Skipped) > 0 {
		skipped := make([]string, len(auth.Skipped))
		for i, sk := range auth.Skipped {
			skipped[i] = sk.String()
		}
		log.Warn("authorized keys lines skipped", "path", path, "lines", strings.Join(skipped, "; "))
	}
	if !s.runsCommands {
		// login(1) starts the shell: a line with options (a forced command, no-pty, from=)
		// would be obeyed in nothing, so it lets nobody in.
		if !auth.Allows(key) {
			return "key not in " + path
		}
		return ""
	}
	opts, ok := auth.Permit(key, cl.addr)
	if !ok {
		return "key not in " + path // or its from= does not match
	}
	cl.forceCommand, cl.noPTY = opts.Command, opts.NoPTY
	if attrs := keyOptionAttrs(opts); len(attrs) > 0 {
		log.Info("key options apply", append([]any{"user", u.Name}, attrs...)...)
	}
	return ""
}

// login returns lg as systemlogin carries it out, for a client at host.
func (lg *systemLogin) login(host string) *systemlogin.Login {
	return &systemlogin.Login{User: lg.user, Password: lg.method == methodPassword, Host: host, OnFail: lg.onFail, OnAuthenticated: lg.onOpen}
}
