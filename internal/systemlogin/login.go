package systemlogin

import (
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
	"strconv"
	"strings"
	"time"

	"github.com/rlogin-go/rlogin/internal/sanitize"
	"github.com/rlogin-go/rlogin/pty"
	"github.com/rlogin-go/rlogin/session"
)

// DefaultProgram is the system's login(1).
const DefaultProgram = "/bin/login"

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

// errInvalidUser is loginArgs's error for a name that is not a portable user name.
var errInvalidUser = errors.New("invalid user name")

// A User is a local user, as the passwd database has it.
type User struct {
	Name string
	UID  int
	Home string // absolute
}

// LookupUser finds the user called name, which must already be a valid user name
// (session.ValidUserName).
func LookupUser(name string) (*User, error) {
	u, err := user.Lookup(name)
	if err != nil {
		return nil, fmt.Errorf("systemlogin: %w", err)
	}
	if u.Username != name { // a name service that folds case, for instance
		return nil, fmt.Errorf("systemlogin: user %q is known as %q", name, sanitize.Text(u.Username))
	}
	uid, err := strconv.Atoi(u.Uid)
	if err != nil {
		return nil, fmt.Errorf("systemlogin: user %s: uid %q: %w", name, sanitize.Text(u.Uid), err)
	}
	if !filepath.IsAbs(u.HomeDir) {
		return nil, fmt.Errorf("systemlogin: user %s: home directory %q is not absolute", name, sanitize.Text(u.HomeDir))
	}
	return &User{Name: name, UID: uid, Home: u.HomeDir}, nil
}

// AuthorizedKeysPath returns the authorized keys file of u: pattern with a leading "~/" taken
// relative to u's home directory, and "%u" replaced by u's name, "%h" by its home and "%%" by "%".
func (u *User) AuthorizedKeysPath(pattern string) string {
	if rest, ok := strings.CutPrefix(pattern, "~/"); ok {
		pattern = filepath.Join(u.Home, rest)
	}
	return strings.NewReplacer("%%", "%", "%u", u.Name, "%h", u.Home).Replace(pattern)
}

// Nologin reports whether the system refuses logins of users other than root (pam_nologin(8):
// /var/run/nologin or /etc/nologin exists), and with what message: the file's text with runs of
// white space made single spaces, or a default text if it is empty or unreadable.
func Nologin() (msg string, refused bool) { return nologinMessage(runNologin, etcNologin) }

// nologinMessage is Nologin with the files at paths, the first that exists.
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

// PeerHost returns the address of the client as login(1)'s -h wants it: the IP address alone,
// without port or zone, IPv4-mapped addresses as IPv4; "" when the peer has no IP address (a
// Unix socket), and login(1) then records a local login. No name lookup: the address is what
// wtmp and PAM see, as with sshd's default UseDNS no.
func PeerHost(addr net.Addr) string {
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

// CheckProgram checks that program can serve as login(1): an absolute path to an executable
// file; and, for password logins, that the kernel shows what a process waits for
// (/proc/PID/syscall), which the password gate needs.
func CheckProgram(program string, passwords bool) error {
	if !filepath.IsAbs(program) {
		return fmt.Errorf("systemlogin: login program %q is not an absolute path", program)
	}
	fi, err := os.Stat(program)
	if err != nil {
		return fmt.Errorf("systemlogin: login program: %w", err)
	}
	if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
		return fmt.Errorf("systemlogin: login program %s is not an executable file", program)
	}
	if passwords {
		if _, err := os.ReadFile("/proc/self/syscall"); err != nil {
			return fmt.Errorf("systemlogin: password logins need /proc/PID/syscall (turn them off or use a kernel that has it): %w", err)
		}
	}
	return nil
}

// A Login is an authorized login of a system user, for login(1) to carry out.
type Login struct {
	User *User
	// Password makes login(1) ask for the user's password, behind the password gate; otherwise
	// the login is preauthenticated ("login -f").
	Password bool
	// Host is the client's address for login(1)'s -h (PeerHost); "" for none.
	Host string
	// OnFail, if not nil, is called once if a password login fails (for the per-source
	// penalties); not if the client leaves.
	OnFail func()
	// OnAuthenticated, if not nil, is called once when a password login's session starts:
	// login(1) has checked the password, the account and the PAM session. Until then the
	// client is not authenticated.
	OnAuthenticated func()
}

// A Request is what the client asked of its session.
type Request struct {
	Term   string   // TERM, already valid (session.TerminalTypeOrDumb)
	Locale []string // the locale variables to pass, already accepted ("LANG=...")
	Window pty.Size
}

// Start starts program (login(1)) for l on a new pty, in the root directory (login(1) changes to
// the user's home), as "login -p [-h host] [-f] -- name", with only TERM and req's locale in its
// environment. The caller ends what is left of the session with the PTY's End once login(1) has
// exited.
func Start(program string, l *Login, req Request) (*exec.Cmd, *pty.PTY, error) {
	args, err := loginArgs(l.Host, !l.Password, l.User.Name)
	if err != nil {
		return nil, nil, err
	}
	cmd := &exec.Cmd{
		Path: program,
		Args: args,
		Env:  loginEnv(req.Term, req.Locale),
		Dir:  "/",
	}
	// Contained: every process of the session, login(1)'s and the shell's (which login(1) runs in
	// a session of its own), can be ended with the session (PTY.End).
	p, err := pty.StartContained(cmd, req.Window) // pty's error, with its prefix
	return cmd, p, err
}

// loginArgs returns login(1)'s argument list: "login -p [-h host] [-f] -- name". The name is
// checked again here, and goes after "--", so it can never be read as an option whatever
// happened before (CVE-1999-0113's "-froot"); there is never an argument after it (login(1)
// would take it as an environment variable).
func loginArgs(host string, preauthenticated bool, name string) ([]string, error) {
	if !session.ValidUserName(name) {
		return nil, fmt.Errorf("systemlogin: %w: %s", errInvalidUser, sanitize.Text(name))
	}
	args := []string{"login", "-p"}
	if host != "" {
		if strings.HasPrefix(host, "-") || strings.ContainsFunc(host, func(r rune) bool { return r <= ' ' || r >= 0x7f }) {
			return nil, fmt.Errorf("systemlogin: invalid peer host %q", sanitize.Text(host))
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

// A Terminal is what a Session serves: a session.Terminal that also reads in packet mode, so a
// classic.Terminal too.
type Terminal interface {
	session.Terminal
	ReadPacket(b []byte) (n int, status pty.Status, err error)
}

var (
	_ Terminal = (*pty.PTY)(nil)
	_ Terminal = (*loginGate)(nil)
)

// A Session is the session of login(1): its terminal, the password gate in front of it for a
// password login, and the logout record to write at its end.
type Session struct {
	log  *slog.Logger
	p    *pty.PTY
	tty  string     // the terminal of login(1), "" if unknown
	gate *loginGate // nil unless a password login
}

// NewSession prepares the session of login(1), just started on p for l, whose login grace time
// ends at deadline: for a password login it puts the password gate in front of the terminal,
// before any input reaches login(1). End it with Finish.
func NewSession(log *slog.Logger, p *pty.PTY, l *Login, deadline time.Time) (*Session, error) {
	s := &Session{log: log, p: p, tty: ttyOf(p.Pid())}
	if !l.Password {
		return s, nil
	}
	if s.tty == "" {
		return nil, errors.New("systemlogin: password login: cannot find the terminal of login(1)")
	}
	g, err := newLoginGate(log, p, s.tty, l.User.UID, deadline, l.OnFail, l.OnAuthenticated)
	if err != nil {
		return nil, err
	}
	s.gate = g
	return s, nil
}

// Terminal returns what the session serves: the password gate, or the pty.
func (s *Session) Terminal() Terminal {
	if s.gate != nil {
		return s.gate
	}
	return s.p
}

// Finish is called once the session is served: it stops the gate and writes the logout record
// (login(1) writes the login record; the logout record is the job of whoever started it).
func (s *Session) Finish() {
	if s.gate != nil {
		s.gate.close()
	}
	if s.tty == "" {
		s.log.Warn("no logout record written: the terminal of login(1) is unknown")
		return
	}
	if err := recordLogout(utmpPath, wtmpPath, strings.TrimPrefix(s.tty, "/dev/"), s.p.Pid(), time.Now()); err != nil {
		s.log.Warn("cannot write the logout record", "err", err)
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

// Records writes the login records of a session that this process starts itself, without
// login(1) (a PAM login: package pamlogin's LoginRecords). Its zero value writes to the
// system's files.
type Records struct{}

// Login writes the login record of the session on line (a tty name without "/dev/") whose
// program is pid: utmp's entry for the line becomes a USER_PROCESS for user from host, as
// login(1)'s. wtmp's login record is pam_lastlog's (login's PAM stack), as with login(1). A
// missing utmp is not created.
func (Records) Login(line, user, host string, pid int) error {
	return recordLogin(utmpPath, line, user, host, pid, time.Now())
}

// Logout writes the logout record of the session on line whose program was pid, as the daemon
// does for login(1)'s sessions: utmp's entry becomes DEAD_PROCESS and wtmp gets a DEAD_PROCESS
// record.
func (Records) Logout(line string, pid int) error {
	return recordLogout(utmpPath, wtmpPath, line, pid, time.Now())
}
