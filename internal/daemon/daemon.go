// Package daemon is rlogind: it serves secure logins, each into a login shell on a new pty.
//
// Each connection goes through the stack mailbox "login" (transport.Mux) -> TLS 1.3 with
// ed25519 keys on both ends (transport.Server) -> session protocol (session.ServerConn). The
// client's key must be listed in the user's authorized_keys, re-read at every login.
//
// Before authentication a connection is bounded in time and number: everything before the shell
// starts runs under one deadline counted from accept (Config.LoginGraceTime); new connections
// are dropped at random once many are unauthenticated (Config.MaxStartups, sshd's
// start:rate:full), one source may hold only a few of those (Config.PerSourceMaxStartups), and
// a source whose connections failed to log in is refused for a while (Config.PerSourcePenalties).
// At most Config.MaxSessions sessions run at once.
//
// Typical usage (package rlogind does this for cmd/rlogind):
//
//	key, _, err := keys.LoadOrCreate(filepath.Join(home, ".rlogin", "rlogind_host_ed25519_key"))
//	...
//	srv, err := daemon.NewServer(daemon.Config{
//		HostKey:        key,
//		AuthorizedKeys: filepath.Join(home, ".rlogin", "authorized_keys"),
//		Logger:         logger,
//	})
//	...
//	l, err := transport.Listen(ctx, ":5513")
//	...
//	err = srv.Serve(ctx, l) // until ctx is cancelled; sessions then end with "service stopping"
//
// Serve may be called for several listeners at once on one Server, one call each (socket
// activation hands over several). Server.Reload applies a new Config to the connections accepted
// from then on, without disturbing the sessions running; Server.ServeConn serves one connection
// (inetd).
//
// # One connection, step by step
//
// Serve wraps its listener in an admission.Limiter (the limits before authentication) and a
// transport.Mux, and serves each of the Mux's listeners with its own handler (serve.go): the
// login mailbox and direct TLS clients with handleSecure (secure.go), classic clients with
// handleClassic (classic.go). A handler reads as its steps: the login attempt under the grace
// deadline (beginLogin), the protocol's handshake and request, the authorization (authorizeLogin
// and system.go's policy, or authorizeClassic with package rhosts), claimSession (a session
// slot, the admission's bookkeeping), then runSession (start.go): the user's shell (package
// usershell) or login(1) (package systemlogin, with its password gate), served until it ends.
//
// # System mode
//
// Run by root with Config.System (rlogind does that when started as root), a Server serves
// every local user: the client names the user, whose own ~/.rlogin/authorized_keys (from the
// passwd database's home) must list its key, and the session runs through the system's login(1),
// "login -p -h ADDRESS -f -- USER", never as root. login(1), rather than setuid in a child,
// because a login must go through the machine's own login machinery and a Go program cannot run
// PAM without cgo: with login(1), PAM's account and session rules apply, wtmp and lastlog record
// the session, the message of the day appears and the terminal is handed to the user, as for any
// other login. The costs: the exit status is login's (0), login -f does not check /etc/nologin
// (the Server does), and after a wrong password login(1) asks for any user name, which the
// password gate (Config.PasswordAuthentication: login(1) asks for the password in the session)
// never lets through. docs/system-mode.md has the details.
package daemon

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/user"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/rlogin-go/rlogin/internal/admission"
	"github.com/rlogin-go/rlogin/internal/userfile"
	"github.com/rlogin-go/rlogin/internal/usershell"
	"github.com/rlogin-go/rlogin/keys"
	"github.com/rlogin-go/rlogin/session"
)

// Defaults for the zero fields of Config.
const (
	DefaultLoginGraceTime = admission.DefaultLoginGraceTime
	DefaultStopGrace      = 5 * time.Second
	DefaultMaxSessions    = 512
	DefaultDetachTimeout  = time.Hour
	DefaultDetachBuffer   = 1 << 20
)

// MailboxName is the transport mailbox rlogind serves logins on.
const MailboxName = "login"

// DefaultAddr is where rlogind listens unless told otherwise: TCP port 5513 on all interfaces.
const DefaultAddr = ":5513"

// reasonMaxSessions is the refusal a client gets after authentication when MaxSessions
// sessions are running.
const reasonMaxSessions = "too many sessions; try again later"

// Config configures a Server. HostKey and AuthorizedKeys are required; every other zero field
// means its default.
type Config struct {
	// HostKey is the server's key, shown to clients as its identity.
	HostKey ed25519.PrivateKey
	// AuthorizedKeys is the path of the authorized_keys file (OpenSSH format) listing the client
	// keys that may log in. It is read at each login, so edits apply to the next one. In System
	// mode it is each user's own: a leading "~/" is the user's home directory, "%u" the user's
	// name, "%h" the home directory ("~/.rlogin/authorized_keys", "/etc/rlogin/keys/%u").
	AuthorizedKeys string
	// HostCertificate is the path of an OpenSSH host certificate of HostKey (ssh-keygen -s ca -h),
	// presented with it so that clients whose known_hosts trusts the authority need not be asked
	// about the key (docs/protocol.md §6.1); "" for none. NewServer and Reload read it.
	HostCertificate string
	// TrustedUserCAKeys is the path of a file of user certificate authority keys, one per line
	// (sshd's TrustedUserCAKeys): a client whose key has a certificate signed by one of them logs
	// in as its principals allow (certificate.go), without an authorized_keys entry. "" trusts no
	// certificate. AuthorizedPrincipalsFile, a path like AuthorizedKeys ("~/", "%u", "%h"), lists
	// the principals that may log in as the user; "" means the user's own name. RevokedKeys is
	// the path of a list of keys that may log in neither plainly nor with a certificate, nor sign
	// one. Each file is read at each login.
	TrustedUserCAKeys, AuthorizedPrincipalsFile, RevokedKeys string
	// Home is the user's home directory: the shell's HOME and working directory.
	// "" means os.UserHomeDir().
	Home string
	// Shell is the program run as the login shell. "" means the user's shell in /etc/passwd, or
	// /bin/sh if it names none.
	Shell string
	// LoginGraceTime bounds the login: everything from accept until the shell starts (the
	// mailbox name exchange, the TLS handshake, the login request and its authorization); a
	// conn still there after it is closed. 0 means DefaultLoginGraceTime.
	LoginGraceTime time.Duration
	// MaxStartups is the random early drop of connections that are not authenticated yet (see
	// admission.StartupLimit); a dropped connection is closed at once. Zero means
	// admission.DefaultMaxStartups().
	MaxStartups admission.StartupLimit
	// PerSourceMaxStartups caps the unauthenticated connections from one source (an IPv4
	// address, an IPv6 /64: see admission.NetBlockSize), so that one source's flood leaves room
	// for the others. 0 means admission.DefaultPerSourceMaxStartups; negative means no cap.
	PerSourceMaxStartups int
	// PerSourceNetBlockSize groups client addresses into sources. Zero means 32:64.
	PerSourceNetBlockSize admission.NetBlockSize
	// PerSourcePenalties refuses sources for a while after failed logins; nil means
	// admission.DefaultPenalties().
	PerSourcePenalties *admission.Penalties
	// PenaltyExempt lists addresses never penalized.
	PenaltyExempt []netip.Prefix
	// MaxSessions caps the sessions running at once; a login past it is refused after
	// authentication. 0 means DefaultMaxSessions; negative means no cap.
	MaxSessions int
	// StopGrace is how long Serve waits for sessions to end after its ctx is cancelled before it
	// kills their shells. 0 means DefaultStopGrace.
	StopGrace time.Duration
	// ClientAlive is how a session probes a silent client, and when it gives it up for dead
	// (session.Keepalive; the zero value: 15 seconds, 3 times); the TCP keepalive and user
	// timeout of the connections take the same bound. A negative Interval turns both off.
	ClientAlive session.Keepalive
	// DetachTimeout is how long a terminal session whose connection is lost waits, detached,
	// for its client to resume it or for a new client of the same user to take it over
	// (capability resume, docs/protocol.md): its shell goes on running, and its output is kept up
	// to DetachBuffer bytes, the oldest dropped beyond. A detached session still holds its
	// MaxSessions slot. 0 means DefaultDetachTimeout; negative means no resume: the session ends
	// at once, as with a client that does not offer it. Commands on pipes, classic sessions,
	// password logins and ServeConn's (inetd) are not resumable.
	DetachTimeout time.Duration
	// DetachBuffer is the output, in bytes, a detached session keeps; 0 means
	// DefaultDetachBuffer.
	DetachBuffer int
	// Logger receives the daemon's log. nil means no log (for Reload: the current logger).
	Logger *slog.Logger

	// System makes the server serve every local user through login(1) (see system.go); it
	// needs root.
	System bool
	// PermitRootLogin (System): PermitRootNo (""), PermitRootProhibitPassword or PermitRootYes.
	PermitRootLogin string
	// PasswordAuthentication (System): a client whose key is not authorized may log in with
	// the user's password, which login(1) asks for.
	PasswordAuthentication bool
	// LoginProgram (System) is login(1); "" means DefaultLoginProgram.
	LoginProgram string
	// PrivilegeSeparation (System) runs each connection in processes of its own, as sshd does:
	// a monitor (root) that never reads the network, and a net child without privileges that
	// does the TLS handshake and serves the protocol (docs/system-mode.md). Sessions then
	// outlive Serve's stop; EndSessions ends them. Password logins need PAM (not yet: they are
	// refused).
	PrivilegeSeparation bool
	// Executable (PrivilegeSeparation) is the program started as the monitor and net child
	// processes, which must call RunRole first thing; "" means this program (os.Executable).
	Executable string
	// ProcessLog (PrivilegeSeparation) is where the monitors log.
	ProcessLog ProcessLog

	// Classic configures the classic rlogin service (RFC 1282, unencrypted; see classic.go).
	Classic ClassicConfig

	// Test hooks: randN(n) returns a number in [0, n) (nil: math/rand/v2.IntN); now is the
	// clock of the penalties (nil: time.Now). Only NewServer reads them.
	randN func(n int) int
	now   func() time.Time
}

// ProcessLog says where and how the processes of a privilege-separated server log: each
// writes its own lines (slog's text or JSON format, as package logsink makes them).
type ProcessLog struct {
	Path   string     // a log file each opens and appends to (the daemon's -log-file); "": File
	File   *os.File   // their standard error, where they log without Path; nil: the daemon's own
	Level  slog.Level // the least level logged
	Format string     // "text" (or "") or "json"
}

// withDefaults fills in the zero fields of cfg and checks it.
func (cfg Config) withDefaults() (Config, error) {
	if len(cfg.HostKey) != ed25519.PrivateKeySize {
		return cfg, errors.New("daemon: Config.HostKey is not an ed25519 private key")
	}
	if cfg.AuthorizedKeys == "" {
		return cfg, errors.New("daemon: Config.AuthorizedKeys is empty")
	}
	lim, err := cfg.limits().WithDefaults()
	if err != nil {
		return cfg, err
	}
	cfg.LoginGraceTime, cfg.MaxStartups, cfg.PerSourceMaxStartups = lim.LoginGraceTime, lim.MaxStartups, lim.PerSourceMaxStartups
	cfg.PerSourceNetBlockSize, cfg.PerSourcePenalties = lim.NetBlockSize, lim.Penalties
	if cfg.MaxSessions == 0 {
		cfg.MaxSessions = DefaultMaxSessions
	}
	if cfg.StopGrace <= 0 {
		cfg.StopGrace = DefaultStopGrace
	}
	if cfg.DetachTimeout == 0 {
		cfg.DetachTimeout = DefaultDetachTimeout
	}
	if cfg.DetachBuffer <= 0 {
		cfg.DetachBuffer = DefaultDetachBuffer
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.PrivilegeSeparation && !cfg.System {
		return cfg, errors.New("daemon: Config.PrivilegeSeparation is for System mode")
	}
	if cfg.System {
		if err := checkSystem(&cfg); err != nil {
			return cfg, err
		}
	}
	return cfg, nil
}

// limits returns the admission rules of cfg.
func (cfg Config) limits() admission.Limits {
	return admission.Limits{
		LoginGraceTime:       cfg.LoginGraceTime,
		MaxStartups:          cfg.MaxStartups,
		PerSourceMaxStartups: cfg.PerSourceMaxStartups,
		NetBlockSize:         cfg.PerSourceNetBlockSize,
		Penalties:            cfg.PerSourcePenalties,
		PenaltyExempt:        cfg.PenaltyExempt,
	}
}

// A Server serves logins for the user running it. Create it with NewServer.
//
// A Server value is one generation of the configuration: Reload makes a new one, which the
// connections accepted afterwards use, while the others finish with theirs. All generations
// share the serverState.
type Server struct {
	cfg        Config
	log        *slog.Logger
	executable string // Config.Executable, or this program (PrivilegeSeparation)
	user       string // the only user served
	uid        int
	home       string
	shell      string

	hostCert *ssh.Certificate // Config.HostCertificate's, or nil

	// runsCommands: a system-mode server that starts the user's program itself (the monitor of
	// a PAM build), so it can carry out what an authorized key's or certificate's options ask
	// (a forced command, no terminal); one that runs login(1) refuses them instead.
	runsCommands bool

	*serverState
}

// serverState is what the generations of a Server share: the connections, sessions and limits.
type serverState struct {
	current atomic.Pointer[Server] // the generation new connections get
	lim     *admission.Limiter     // the limits before authentication
	files   userfile.Reader        // reads users' authorized_keys and trust files: as the user, a bound per user

	mu      sync.Mutex
	running int // sessions running (MaxSessions), detached ones included

	resumes registry // the sessions that may be resumed

	// Privilege separation: the monitor processes started, reaped by follow (EndSessions).
	monitors     sync.WaitGroup
	monitorsMu   sync.Mutex
	monitorProcs map[*os.Process]struct{}
}

// NewServer checks cfg, fills in its defaults and looks up the user running the daemon.
func NewServer(cfg Config) (*Server, error) {
	g, err := newGeneration(cfg)
	if err != nil {
		return nil, err
	}
	lim, err := admission.NewLimiterWith(g.cfg.limits(), g.log, cfg.randN, cfg.now)
	if err != nil {
		return nil, err // admission's, with its prefix
	}
	st := &serverState{
		lim:          lim,
		monitorProcs: make(map[*os.Process]struct{}),
	}
	g.serverState = st
	st.current.Store(g)
	return g, nil
}

// newGeneration checks cfg and does the lookups NewServer and Reload share.
func newGeneration(cfg Config) (*Server, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	log := cfg.Logger
	u, err := user.Current()
	if err != nil {
		return nil, fmt.Errorf("daemon: who am I: %w", err)
	}
	uid, err := strconv.Atoi(u.Uid)
	if err != nil {
		return nil, fmt.Errorf("daemon: uid %q: %w", u.Uid, err)
	}
	if !session.ValidUserName(u.Username) {
		return nil, fmt.Errorf("daemon: user name %q is not a portable user name", u.Username)
	}
	home := cfg.Home
	if home == "" {
		if home, err = os.UserHomeDir(); err != nil {
			return nil, fmt.Errorf("daemon: %w", err)
		}
	}
	shell := cfg.Shell
	if shell == "" {
		shell, err = usershell.Lookup(usershell.PasswdPath, uid)
		if err != nil {
			log.Warn("no login shell found; using the fallback", "shell", shell, "err", err)
		}
	}
	hostCert, err := loadHostCertificate(cfg)
	if err != nil {
		return nil, err
	}
	executable := cfg.Executable
	if cfg.PrivilegeSeparation {
		if executable == "" {
			if executable, err = os.Executable(); err != nil {
				return nil, fmt.Errorf("daemon: privilege separation needs this program's path: %w", err)
			}
		}
		if err := checkWorldExecutable(executable); err != nil {
			return nil, err
		}
	}
	return &Server{
		cfg:        cfg,
		log:        log,
		executable: executable,
		user:       u.Username,
		uid:        uid,
		home:       home,
		shell:      shell,
		hostCert:   hostCert,
	}, nil
}

// User returns the name of the only user the server lets log in: the user running it.
func (s *Server) User() string { return s.current.Load().user }

// Shell returns the program the server runs as the login shell.
func (s *Server) Shell() string { return s.current.Load().shell }

// Reload checks cfg and makes it the configuration of the connections accepted from now on
// (nil cfg.Logger keeps the current logger). Sessions running, and logins under way, keep the
// configuration they started with; the limits on unauthenticated connections and the
// penalties change at once (penalties already given keep their expiry). On error nothing
// changes. It logs what changed.
func (s *Server) Reload(cfg Config) error {
	old := s.current.Load()
	if cfg.Logger == nil {
		cfg.Logger = old.cfg.Logger
	}
	g, err := newGeneration(cfg)
	if err != nil {
		return err
	}
	g.serverState = s.serverState
	if err := s.lim.Configure(g.cfg.limits(), g.log); err != nil {
		return err // admission's, with its prefix
	}
	s.current.Store(g)
	changes := configChanges(old, g)
	if len(changes) == 0 {
		g.log.Info("configuration reloaded; nothing changed")
		return nil
	}
	g.log.Info("configuration reloaded", changes...)
	return nil
}

// configChanges lists, as log attributes "setting" -> "old -> new", what differs between two
// generations.
func configChanges(a, b *Server) []any {
	var attrs []any
	diff := func(name string, x, y any) {
		xs, ys := fmt.Sprint(x), fmt.Sprint(y)
		if xs != ys {
			attrs = append(attrs, name, xs+" -> "+ys)
		}
	}
	fp := func(k ed25519.PrivateKey) string {
		return keys.Fingerprint(k.Public().(ed25519.PublicKey))
	}
	ac, bc := a.cfg, b.cfg
	diff("host_key", fp(ac.HostKey), fp(bc.HostKey))
	diff("authorized_keys", ac.AuthorizedKeys, bc.AuthorizedKeys)
	diff("host_certificate", certID(a.hostCert), certID(b.hostCert))
	diff("trusted_user_ca_keys", ac.TrustedUserCAKeys, bc.TrustedUserCAKeys)
	diff("authorized_principals_file", ac.AuthorizedPrincipalsFile, bc.AuthorizedPrincipalsFile)
	diff("revoked_keys", ac.RevokedKeys, bc.RevokedKeys)
	diff("home", a.home, b.home)
	diff("shell", a.shell, b.shell)
	diff("login_grace_time", ac.LoginGraceTime, bc.LoginGraceTime)
	diff("max_startups", ac.MaxStartups, bc.MaxStartups)
	diff("per_source_max_startups", limitString(ac.PerSourceMaxStartups), limitString(bc.PerSourceMaxStartups))
	diff("per_source_net_block_size", ac.PerSourceNetBlockSize, bc.PerSourceNetBlockSize)
	diff("per_source_penalties", *ac.PerSourcePenalties, *bc.PerSourcePenalties)
	diff("per_source_penalty_exempt_list", ac.PenaltyExempt, bc.PenaltyExempt)
	diff("max_sessions", limitString(ac.MaxSessions), limitString(bc.MaxSessions))
	diff("stop_grace", ac.StopGrace, bc.StopGrace)
	diff("detach_timeout", detachString(ac.DetachTimeout), detachString(bc.DetachTimeout))
	diff("detach_buffer", ac.DetachBuffer, bc.DetachBuffer)
	diff("permit_root_login", ac.PermitRootLogin, bc.PermitRootLogin)
	diff("password_authentication", ac.PasswordAuthentication, bc.PasswordAuthentication)
	diff("login_program", ac.LoginProgram, bc.LoginProgram)
	return attrs
}

// detachString shows Config.DetachTimeout, where a negative value is off.
func detachString(d time.Duration) string {
	if d < 0 {
		return "off"
	}
	return d.String()
}

// limitString shows a count where a negative value means no limit.
func limitString(n int) string {
	if n < 0 {
		return "none"
	}
	return strconv.Itoa(n)
}

// unauthenticated returns the number of admitted conns not in a session.
func (s *serverState) unauthenticated() int { return s.lim.Unauthenticated() }
