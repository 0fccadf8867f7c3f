package daemon

import (
	"context"
	"crypto/ed25519"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"os/user"
	"path/filepath"
	"strings"
	"sync"
	"syscall"

	"github.com/rlogin-go/rlogin/keys"
	"github.com/rlogin-go/rlogin/transport"
)

// Default paths, relative to the home directory.
const (
	defaultHostKey        = "~/.rlogin/rlogind_host_ed25519_key"
	defaultAuthorizedKeys = "~/.rlogin/authorized_keys"
	userKey               = "~/.rlogin/id_ed25519" // the key rlogin logs in with
)

// DefaultAddr is where rlogind listens unless told otherwise: TCP port 5513 on all interfaces.
const DefaultAddr = ":5513"

const usageText = `Usage: rlogind [flags]

rlogind serves secure remote logins, into the user's login shell on a new
terminal. Clients (rlogin) ask for the mailbox "login" at -addr, connect with
TLS 1.3, and log in if their ed25519 key is listed in -authorized-keys (OpenSSH
format, re-read at every login).

Run by root, rlogind serves every local user (system mode): the client names
the user, whose ~/.rlogin/authorized_keys must list its key, and the session
goes through login(1) and PAM; if the key is not listed, login(1) asks for the
user's password (-password-authentication=false turns that off). Root may log
in only as -permit-root-login says. The host key is ` + SystemHostKey + `.

Run by a user, rlogind serves that user only. On first start it creates its
host key. If the authorized keys file does not exist, it authorizes your own
rlogin key (~/.rlogin/id_ed25519, created if needed), so that rlogin from this
account works at once; -no-bootstrap turns that off.

Every flag but -config, -inetd and -v may also be set in the configuration
file, one "keyword value" per line (keyword = flag name); flags win.
Under systemd socket activation (LISTEN_FDS) rlogind serves the sockets it is
given; with -inetd it serves the one connection on standard input.

SIGTERM or SIGINT stops it: sessions end with "service stopping" (after
-stop-grace their shells are killed). SIGHUP re-reads the configuration file
and the host key; sessions go on. rlogind(8) has the details.

Flags:
`

// Env is what Run needs of the process it runs in.
type Env struct {
	// Stderr receives the log (unless -log-file is given, or, with -inetd, Stderr is the
	// connection itself) and the usage.
	Stderr io.Writer
	// Stdin is the connection in -inetd mode; nil means os.Stdin, whose descriptors 0 and 1
	// are then replaced by /dev/null so that nothing written there can reach the client.
	Stdin *os.File
	// Reload, when not nil, makes Run re-read its configuration each time it receives (SIGHUP).
	Reload <-chan struct{}
}

// Main is Run with only a stderr (no reloads; -inetd reads os.Stdin).
func Main(ctx context.Context, args []string, stderr io.Writer) error {
	return Run(ctx, args, Env{Stderr: stderr})
}

// Run is rlogind after the process setup: it reads the flags (see -h) and the configuration
// file, creates the host key on first start, bootstraps the authorized keys file, and serves:
// the sockets systemd passed, or -addr, until ctx is cancelled (then it returns nil); or, with
// -inetd, the one connection on env.Stdin until its session ends. With -h it prints the usage
// and returns nil. Bad flags or configuration give a *UsageError.
func Run(ctx context.Context, args []string, env Env) error {
	home, err := homeDir()
	if err != nil {
		return err
	}
	o, err := loadOptions(args, env.Stderr, home, defaultConfigFile())
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}

	var conn net.Conn // -inetd
	stderrIsConn := false
	if o.inetd {
		stdin := env.Stdin
		if stdin == nil {
			stdin = os.Stdin
		}
		if conn, err = inetdConn(stdin); err != nil {
			return err
		}
		defer conn.Close() // ServeConn closed it; this covers the failures before
		stderrIsConn = sameFile(stdin, env.Stderr)
	}
	logs, err := openLog(o, env.Stderr, stderrIsConn)
	if err != nil {
		return err
	}
	defer logs.Close()
	if o.inetd && env.Stdin == nil {
		if err := detachStdio(logs.file, stderrIsConn); err != nil {
			logs.logger.Warn("cannot detach standard input and output from the connection", "err", err)
		}
	}
	log := logs.logger
	if o.configLoaded != "" {
		log.Debug("configuration file read", "path", o.configLoaded)
	}

	hostKey, err := loadHostKey(log, o.hostKey)
	if err != nil {
		return err
	}
	if !o.noBootstrap && !o.sys.enabled {
		if err := bootstrap(log, home, o.authorizedKeys); err != nil {
			return err
		}
	}
	srv, err := NewServer(o.serverConfig(hostKey, home, log))
	if err != nil {
		return err
	}
	if o.inetd {
		return srv.ServeConn(ctx, conn)
	}

	l, activated, err := listen(ctx, o.addr, log)
	if err != nil {
		return err
	}
	notify := newNotifier()
	serveDone := make(chan struct{})
	var wg sync.WaitGroup
	if env.Reload != nil {
		wg.Go(func() {
			for {
				select {
				case <-serveDone:
					return
				case _, ok := <-env.Reload:
					if !ok {
						return
					}
					o = reload(log, notify, logs, srv, o, args, home, activated)
				}
			}
		})
	}
	stopNotify := context.AfterFunc(ctx, func() { notify.send("STOPPING=1") })
	notify.send("READY=1\nSTATUS=serving logins")
	err = srv.Serve(ctx, l)
	stopNotify()
	close(serveDone)
	wg.Wait()
	return err
}

// reload re-reads the configuration and the host key for SIGHUP and applies them to srv; on
// any error it logs it and keeps the current configuration. It returns the options in force.
func reload(log *slog.Logger, notify *notifier, logs *logSink, srv *Server, o *options, args []string, home string, activated bool) *options {
	notify.send(reloadingMessage())
	defer notify.send("READY=1\nSTATUS=serving logins")
	if err := logs.Reopen(); err != nil {
		log.Error("cannot reopen the log file", "err", err)
	}
	log.Info("SIGHUP: reloading the configuration")
	no, err := loadOptions(args, io.Discard, home, defaultConfigFile())
	if err != nil {
		log.Error("reload failed; keeping the current configuration", "err", err)
		return o
	}
	hostKey, err := loadHostKey(log, no.hostKey)
	if err != nil {
		log.Error("reload failed; keeping the current configuration", "err", err)
		return o
	}
	if err := srv.Reload(no.serverConfig(hostKey, home, nil)); err != nil {
		log.Error("reload failed; keeping the current configuration", "err", err)
		return o
	}
	if no.logLevel != o.logLevel {
		logs.level.Set(no.logLevel)
		log.Info("log level changed", "level", no.logLevel.String())
	}
	for _, c := range []struct{ name, old, new string }{
		{"addr", o.addr, no.addr},
		{"log-format", o.logFormat, no.logFormat},
		{"log-file", o.logFile, no.logFile},
	} {
		if c.old != c.new && (c.name != "addr" || !activated) {
			log.Warn("this setting changes only at the next start", "setting", c.name, "running", c.old, "configured", c.new)
		}
	}
	return no
}

// serverConfig is the Server configuration the options ask for. A nil log keeps the current
// logger (Reload).
func (o *options) serverConfig(hostKey ed25519.PrivateKey, home string, log *slog.Logger) Config {
	p := o.penalties
	return Config{
		HostKey:               hostKey,
		AuthorizedKeys:        o.authorizedKeys,
		Home:                  home,
		LoginGraceTime:        o.grace,
		MaxStartups:           o.maxStartups,
		PerSourceMaxStartups:  int(o.perSourceMax),
		PerSourceNetBlockSize: o.netBlock,
		PerSourcePenalties:    &p,
		PenaltyExempt:         o.exempt,
		MaxSessions:           int(o.maxSessions),
		StopGrace:             o.stopGrace,
		Logger:                log,
		Classic:               o.classic,

		// System mode (system.go).
		System:                 o.sys.enabled,
		PermitRootLogin:        o.sys.permitRootLogin,
		PasswordAuthentication: o.sys.passwordAuth,
	}
}

// loadHostKey loads the host key at path, creating it if there is none.
func loadHostKey(log *slog.Logger, path string) (ed25519.PrivateKey, error) {
	hostKey, created, err := keys.LoadOrCreate(path)
	if err != nil {
		return nil, fmt.Errorf("daemon: host key: %w", err)
	}
	fp := keys.Fingerprint(hostKey.Public().(ed25519.PublicKey))
	if created {
		log.Info("created host key", "path", path, "fingerprint", fp)
	} else {
		log.Info("host key", "path", path, "fingerprint", fp)
	}
	return hostKey, nil
}

// listen returns the sockets systemd passed (activated true), or a listener on addr.
func listen(ctx context.Context, addr string, log *slog.Logger) (l net.Listener, activated bool, err error) {
	ls, names, err := systemdListeners(os.Getenv, os.Getpid(), listenFDsStart)
	for _, v := range []string{"LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"} {
		_ = os.Unsetenv(v) // for no child to see
	}
	if err != nil {
		return nil, false, err
	}
	if len(ls) > 0 {
		addrs := make([]string, len(ls))
		for i, l := range ls {
			addrs[i] = l.Addr().String()
		}
		log.Info("socket activation: serving the sockets systemd passed", "addrs", strings.Join(addrs, ","), "names", strings.Join(names, ","))
		if len(ls) == 1 {
			return ls[0], true, nil
		}
		return newMultiListener(ls), true, nil
	}
	l, err = transport.Listen(ctx, addr)
	if err != nil {
		return nil, false, fmt.Errorf("daemon: %w", err)
	}
	return l, false, nil
}

// homeDir is $HOME, or the home directory in the passwd database when HOME is not set (as for
// a system service).
func homeDir() (string, error) {
	if home, err := os.UserHomeDir(); err == nil {
		return home, nil
	}
	u, err := user.Current()
	if err != nil {
		return "", fmt.Errorf("daemon: no HOME and no passwd entry: %w", err)
	}
	if u.HomeDir == "" {
		return "", errors.New("daemon: no HOME and no home directory in the passwd database")
	}
	return u.HomeDir, nil
}

// bootstrap writes the authorized keys file at path with the user's own rlogin key, creating
// that key if needed, if and only if there is no file at path. It never touches an existing
// file, nor one created by someone else meanwhile.
func bootstrap(log *slog.Logger, home, path string) error {
	if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
		return nil // there is a file (or something that LoadAuthorized will complain about)
	}
	keyPath := expandHome(userKey, home)
	key, _, err := keys.LoadOrCreate(keyPath)
	if err != nil {
		return fmt.Errorf("daemon: bootstrapping %s: %w", path, err)
	}
	pub := key.Public().(ed25519.PublicKey)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("daemon: bootstrapping %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return nil // created meanwhile: not ours to touch
	}
	if err != nil {
		return fmt.Errorf("daemon: bootstrapping %s: %w", path, err)
	}
	_, err = f.Write(keys.MarshalAuthorizedKey(pub, keyComment()))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(path) // best effort: a half-written file would stop the next bootstrap
		return fmt.Errorf("daemon: bootstrapping %s: %w", path, err)
	}
	log.Info(fmt.Sprintf("authorized your own key %s.pub (%s) in %s because that file did not exist",
		tildePath(keyPath, home), keys.Fingerprint(pub), tildePath(path, home)))
	return nil
}

// keyComment is the comment of a bootstrapped authorized_keys line: user@host, as ssh-keygen's.
func keyComment() string {
	name := "rlogin"
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	host, err := os.Hostname()
	if err != nil {
		host = "localhost"
	}
	return name + "@" + host
}

// expandHome replaces a leading "~/" of p with home.
func expandHome(p, home string) string {
	if rest, ok := strings.CutPrefix(p, "~/"); ok {
		return filepath.Join(home, rest)
	}
	return p
}

// tildePath shows p relative to home as "~/...", when it is under home.
func tildePath(p, home string) string {
	rel, err := filepath.Rel(home, p)
	if err != nil || rel == "." || strings.HasPrefix(rel, "..") || filepath.IsAbs(rel) {
		return p
	}
	return "~/" + rel
}

// StopSignals returns the signals that stop rlogind: SIGTERM and SIGINT, less those that were
// ignored when the process started (`nohup` and `&` in a script leave signals ignored, and a
// daemon started that way must keep ignoring them). Call it before sigreset.Reset, which
// installs handlers for the ignored signals and so changes what signal.Ignored reports.
func StopSignals() []os.Signal {
	var sigs []os.Signal
	for _, sig := range []os.Signal{syscall.SIGTERM, syscall.SIGINT} {
		if !signal.Ignored(sig) {
			sigs = append(sigs, sig)
		}
	}
	return sigs
}

// ReloadSignals returns the signals that make rlogind reload its configuration: SIGHUP, unless
// it was ignored when the process started (nohup: a hangup of the terminal rlogind was started
// from must then do nothing). Call it before sigreset.Reset, as StopSignals.
func ReloadSignals() []os.Signal {
	if signal.Ignored(syscall.SIGHUP) {
		return nil
	}
	return []os.Signal{syscall.SIGHUP}
}

// NotifyStop returns a copy of ctx that is cancelled when one of sigs arrives (or stop is
// called). With no sigs it only wraps ctx: signal.NotifyContext with none would catch them all.
func NotifyStop(ctx context.Context, sigs []os.Signal) (context.Context, context.CancelFunc) {
	if len(sigs) == 0 {
		return context.WithCancel(ctx)
	}
	return signal.NotifyContext(ctx, sigs...)
}

// NotifyReload returns a channel that receives a value for each of sigs that arrives (several
// arriving before the last one was handled count as one), and a func that stops the delivery.
// With no sigs the channel never receives.
func NotifyReload(sigs []os.Signal) (<-chan struct{}, func()) {
	out := make(chan struct{}, 1)
	if len(sigs) == 0 {
		return out, func() {}
	}
	in := make(chan os.Signal, 1)
	signal.Notify(in, sigs...)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-in:
				select {
				case out <- struct{}{}:
				default: // one is pending already
				}
			case <-done:
				return
			}
		}
	})
	var once sync.Once
	return out, func() {
		once.Do(func() {
			signal.Stop(in)
			close(done)
			wg.Wait()
		})
	}
}
