package daemon

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/rlogin-go/rlogin/internal/sanitize"
	"github.com/rlogin-go/rlogin/keys"
	"github.com/rlogin-go/rlogin/pty"
	"github.com/rlogin-go/rlogin/session"
)

// System mode: a Server with Config.System set serves every local user, the way in.rlogind and
// sshd do, and runs each session through the system's login(1). See docs/system-mode.md.

// DefaultLoginProgram is the login(1) a System server runs when Config.LoginProgram is "".
const DefaultLoginProgram = "/bin/login"

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

// The files whose presence refuses logins of users other than root, in pam_nologin(8)'s order.
const (
	runNologin = "/var/run/nologin"
	etcNologin = "/etc/nologin"
)

// maxNologin bounds how much of a nologin file is read: the message travels in a refusal, which
// holds at most 1 KiB.
const maxNologin = 4 << 10

// defaultNologinMessage is sent when the nologin file is empty or cannot be read.
const defaultNologinMessage = "logins are disabled on this system"

// servingAttrs describes whom the server serves, for its first log line.
func (s *Server) servingAttrs() []any {
	if s.cfg.System {
		return []any{"users", "all (system mode)", "login", s.cfg.LoginProgram, "permit_root_login", s.cfg.PermitRootLogin,
			"password_authentication", s.cfg.PasswordAuthentication}
	}
	return []any{"user", s.user, "shell", s.shell}
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
	if !filepath.IsAbs(cfg.LoginProgram) {
		return fmt.Errorf("daemon: LoginProgram %q is not an absolute path", cfg.LoginProgram)
	}
	fi, err := os.Stat(cfg.LoginProgram)
	if err != nil {
		return fmt.Errorf("daemon: login program: %w", err)
	}
	if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
		return fmt.Errorf("daemon: login program %s is not an executable file", cfg.LoginProgram)
	}
	if cfg.PasswordAuthentication {
		// The password gate watches login(1) through /proc/PID/syscall (see gate_linux.go).
		if _, err := os.ReadFile("/proc/self/syscall"); err != nil {
			return fmt.Errorf("daemon: password logins need /proc/PID/syscall (turn them off or use a kernel that has it): %w", err)
		}
	}
	return nil
}

// systemUser is a local user, as the passwd database has it.
type systemUser struct {
	name string
	uid  int
	home string
}

// lookupUser finds the user called name, which must already be a valid user name.
func lookupUser(name string) (*systemUser, error) {
	u, err := user.Lookup(name)
	if err != nil {
		return nil, fmt.Errorf("daemon: %w", err)
	}
	if u.Username != name { // a name service that folds case, for instance
		return nil, fmt.Errorf("daemon: user %q is known as %q", name, sanitize.Text(u.Username))
	}
	uid, err := strconv.Atoi(u.Uid)
	if err != nil {
		return nil, fmt.Errorf("daemon: user %s: uid %q: %w", name, sanitize.Text(u.Uid), err)
	}
	if !filepath.IsAbs(u.HomeDir) {
		return nil, fmt.Errorf("daemon: user %s: home directory %q is not absolute", name, sanitize.Text(u.HomeDir))
	}
	return &systemUser{name: name, uid: uid, home: u.HomeDir}, nil
}

// authorizedKeysPath returns the authorized keys file of u: pattern with a leading "~/" taken
// relative to u's home directory, and "%u" replaced by u's name, "%h" by its home and "%%" by "%".
func authorizedKeysPath(pattern string, u *systemUser) string {
	if rest, ok := strings.CutPrefix(pattern, "~/"); ok {
		pattern = filepath.Join(u.home, rest)
	}
	return strings.NewReplacer("%%", "%", "%u", u.name, "%h", u.home).Replace(pattern)
}

// systemLogin is an authorized System login: who, and how login(1) is to let them in.
type systemLogin struct {
	user   *systemUser
	method string // methodPublicKey: login -f; methodPassword: login(1) asks for the password
	onFail func() // if not nil, called when a password login fails (the per-source penalties)
}

// authorizeLogin decides a login request: with authorizeSystem in System mode, else with
// authorize (lg is nil then).
func (s *Server) authorizeLogin(log *slog.Logger, req *session.Request, key ed25519.PublicKey) (lg *systemLogin, reason string, ok bool) {
	if s.cfg.System {
		return s.authorizeSystem(log, req, key)
	}
	reason, ok = s.authorize(log, req, key)
	return nil, reason, ok
}

// program returns what runs the session of lg (nil in user mode), for the log.
func (s *Server) program(lg *systemLogin) string {
	if lg != nil {
		return s.cfg.LoginProgram
	}
	return s.shell
}

// authorizeSystem decides a login request in System mode. In order: the name must be a valid
// user name (before anything else looks at it), name an existing user, and not be root unless
// PermitRootLogin allows it; then the client's key must be in that user's authorized keys, or
// else password logins must be allowed (login(1) then asks for the password); last, the
// nologin files refuse everyone but root. A client learns only "permission denied" whatever
// failed, except for the nologin message.
func (s *Server) authorizeSystem(log *slog.Logger, req *session.Request, key ed25519.PublicKey) (*systemLogin, string, bool) {
	if !session.ValidUserName(req.User) {
		log.Warn("login refused", "reason", errInvalidUser.Error(), "user", sanitize.Text(req.User))
		return nil, reasonInvalidUser, false
	}
	name := req.User // valid, so safe to log as is
	u, err := lookupUser(name)
	if err != nil {
		log.Warn("login refused", "user", name, "reason", "no such user", "err", err)
		return nil, reasonDenied, false
	}
	root := u.uid == 0
	if root && s.cfg.PermitRootLogin == PermitRootNo {
		log.Warn("login refused", "user", name, "reason", "root login not permitted (permit-root-login no)")
		return nil, reasonDenied, false
	}
	lg := &systemLogin{user: u, method: methodPublicKey}
	if why := s.keyAuthorized(log, u, key); why != "" {
		passwordOK := s.cfg.PasswordAuthentication && !(root && s.cfg.PermitRootLogin == PermitRootProhibitPassword)
		if !passwordOK {
			log.Warn("authentication failed", "method", methodPublicKey, "user", name, "reason", why)
			return nil, reasonDenied, false
		}
		log.Info("key not authorized; login(1) asks for the password", "method", methodPassword, "user", name, "reason", why)
		lg.method = methodPassword
	} else {
		log.Info("authentication succeeded", "method", methodPublicKey, "user", name)
	}
	if !root {
		if msg, ok := nologinMessage(runNologin, etcNologin); ok {
			log.Warn("login refused", "user", name, "reason", "nologin", "message", sanitize.Text(msg))
			return nil, msg, false
		}
	}
	return lg, "", true
}

// keyAuthorized reports why key may not log in as u, or "" if u's authorized keys list it.
func (s *Server) keyAuthorized(log *slog.Logger, u *systemUser, key ed25519.PublicKey) string {
	path := authorizedKeysPath(s.cfg.AuthorizedKeys, u)
	auth, err := keys.LoadAuthorized(path, u.uid, u.home)
	if errors.Is(err, fs.ErrNotExist) {
		return "no authorized keys file " + path
	}
	if err != nil {
		log.Error("cannot use the authorized keys file", "user", u.name, "err", err)
		return "cannot use the authorized keys file " + path
	}
	if len(auth.Skipped) > 0 {
		skipped := make([]string, len(auth.Skipped))
		for i, sk := range auth.Skipped {
			skipped[i] = sk.String()
		}
		log.Warn("authorized keys lines skipped", "path", path, "lines", strings.Join(skipped, "; "))
	}
	if !auth.Allows(key) {
		return "key not in " + path
	}
	return ""
}

// nologinMessage returns the message of the first of paths that exists: its text with runs of
// white space (line ends included) made single spaces, or a default text if it is empty or
// unreadable. ok is false if none exists.
func nologinMessage(paths ...string) (msg string, ok bool) {
	for _, p := range paths {
		f, err := os.Open(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return defaultNologinMessage, true
		}
		data, err := io.ReadAll(io.LimitReader(f, maxNologin))
		_ = f.Close()
		if msg = strings.Join(strings.Fields(string(data)), " "); err != nil || msg == "" {
			msg = defaultNologinMessage
		}
		return msg, true
	}
	return "", false
}

// peerHost returns the address of the client as login(1)'s -h wants it: the IP address alone,
// without port or zone, IPv4-mapped addresses as IPv4; "" when the peer has no IP address (a
// Unix socket), and login(1) then records a local login. No name lookup: the address is what
// wtmp and PAM see, as with sshd's default UseDNS no.
func peerHost(addr net.Addr) string {
	if addr == nil {
		return ""
	}
	host, _, err := net.SplitHostPort(addr.String())
	if err != nil {
		return ""
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return ""
	}
	return ip.Unmap().WithZone("").String()
}

// loginArgs returns login(1)'s argument list: "login -p [-h host] [-f] -- name". The name is
// checked again here, and goes after "--", so it can never be read as an option whatever
// happened before (CVE-1999-0113's "-froot"); there is never an argument after it (login(1)
// would take it as an environment variable).
func loginArgs(host string, preauthenticated bool, name string) ([]string, error) {
	if !session.ValidUserName(name) {
		return nil, fmt.Errorf("daemon: %w: %s", errInvalidUser, sanitize.Text(name))
	}
	args := []string{"login", "-p"}
	if host != "" {
		if strings.HasPrefix(host, "-") || strings.ContainsFunc(host, func(r rune) bool { return r <= ' ' || r >= 0x7f }) {
			return nil, fmt.Errorf("daemon: invalid peer host %q", sanitize.Text(host))
		}
		args = append(args, "-h", host)
	}
	if preauthenticated {
		args = append(args, "-f")
	}
	return append(args, "--", name), nil
}

// loginEnv is the complete environment of login(1): TERM and the accepted locale variables,
// which login -p keeps for the session (as sshd passes LANG and LC_*). login(1) and PAM set
// HOME, SHELL, USER, LOGNAME, PATH and MAIL themselves; nothing of the daemon's own environment
// is passed.
func loginEnv(term string, locale []string) []string {
	return append([]string{"TERM=" + term}, locale...)
}

// startLogin starts login(1) for lg on a new pty, in the root directory (login(1) changes to
// the user's home): "login -f" unless login(1) is to ask for the password.
func (s *Server) startLogin(lg *systemLogin, host string, sr sessionRequest) (*exec.Cmd, *pty.PTY, error) {
	args, err := loginArgs(host, lg.method != methodPassword, lg.user.name)
	if err != nil {
		return nil, nil, err
	}
	cmd := &exec.Cmd{
		Path: s.cfg.LoginProgram,
		Args: args,
		Env:  loginEnv(sr.term, sr.locale),
		Dir:  "/",
	}
	p, err := pty.Start(cmd, sr.window)
	return cmd, p, err
}

// A systemSession is the session of login(1) for a System login: its terminal, the password
// gate in front of it for a password login, and the logout record to write at its end.
type systemSession struct {
	log  *slog.Logger
	p    *pty.PTY
	tty  string     // the terminal of login(1), "" if unknown
	gate *loginGate // nil unless a password login
}

// loginSession prepares the session of login(1) p for lg, whose login grace time ends at
// deadline: for a password login, it puts the password gate in front of the terminal.
func loginSession(log *slog.Logger, p *pty.PTY, lg *systemLogin, deadline time.Time) (*systemSession, error) {
	ss := &systemSession{log: log, p: p, tty: ttyOf(p.Pid())}
	if lg.method != methodPassword {
		return ss, nil
	}
	if ss.tty == "" {
		return nil, errors.New("daemon: password login: cannot find the terminal of login(1)")
	}
	g, err := newLoginGate(log, p, ss.tty, lg.user.uid, deadline, lg.onFail)
	if err != nil {
		return nil, err
	}
	ss.gate = g
	return ss, nil
}

// terminal returns what the session serves: the password gate, or the pty.
func (ss *systemSession) terminal() terminal {
	if ss.gate != nil {
		return ss.gate
	}
	return ss.p
}

// finish is called once the session is served: it stops the gate and writes the logout record.
func (ss *systemSession) finish() {
	if ss.gate != nil {
		ss.gate.close()
	}
	if ss.tty == "" {
		ss.log.Warn("no logout record written: the terminal of login(1) is unknown")
		return
	}
	if err := recordLogout(utmpPath, wtmpPath, strings.TrimPrefix(ss.tty, "/dev/"), ss.p.Pid(), time.Now()); err != nil {
		ss.log.Warn("cannot write the logout record", "err", err)
	}
}

// ttyOf returns the terminal that process pid has as its standard input ("/dev/pts/3"), or ""
// if that cannot be read.
func ttyOf(pid int) string {
	tty, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/fd/0")
	if err != nil || !strings.HasPrefix(tty, "/dev/") || strings.ContainsAny(tty, " \n") {
		return ""
	}
	return tty
}
