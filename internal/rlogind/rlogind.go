// Package rlogind is the rlogind command: its flags and configuration file, its log, the
// sockets it serves (an address, systemd's, or inetd's one connection), its keys on first
// start, and its signals; package daemon serves the logins.
//
// Typical usage, as cmd/rlogind's main:
//
//	if err := rlogind.Main(os.Args[1:]); err != nil {
//		fmt.Fprintln(os.Stderr, err) // "rlogind: cannot listen on :5513: address already in use"
//		os.Exit(rlogind.ExitStatus(err))
//	}
//
// or, in a test or another program, with its own context, stderr and reload channel:
//
//	err := rlogind.Run(ctx, []string{"-user-mode", "-addr", "unix:/tmp/sock"}, rlogind.Env{Stderr: w})
//
// Run starts in this order, so that a daemon that cannot serve changes nothing on disk: read
// the flags and the configuration file; take the sockets (systemd's, or listen on -addr; with
// -inetd the connection on standard input); open the log; then load the host key, creating it
// on first start, and create the authorized keys file with the user's own key if there is none
// (user mode); then serve until the context is cancelled, reloading on each value of
// Env.Reload. Every error it returns starts with "rlogind: ", once, then says what went wrong in
// the user's words, so that the command prints it as it is; a bad command line or configuration
// file is a *UsageError.
package rlogind

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/user"
	"sync"
	"time"

	"github.com/rlogin-go/rlogin/internal/daemon"
	"github.com/rlogin-go/rlogin/internal/errtext"
	"github.com/rlogin-go/rlogin/internal/inetd"
	"github.com/rlogin-go/rlogin/internal/logsink"
	"github.com/rlogin-go/rlogin/internal/sigreset"
	"github.com/rlogin-go/rlogin/internal/systemd"
)

const usageText = `Usage: rlogind [flags]

rlogind serves secure remote logins, into the user's login shell on a new
terminal, or runs the command a client gives. Clients (rlogin) ask for the
mailbox "login" at -addr, connect with TLS 1.3, and log in if their ed25519 key
is listed in -authorized-keys (OpenSSH format, re-read at every login).

Run by root, rlogind serves every local user (system mode), each connection in
a root monitor of its own with its network side in an unprivileged, sandboxed
process: the client names the user, whose ~/.rlogin/authorized_keys must list
its key; built with PAM (go build -tags pam), PAM's login stack runs and, if the
key is not listed, asks for the user's password (-password-authentication=false
turns that off); built without, key logins go through login(1) and passwords
are refused. Root may log in only as -permit-root-login says. The host key is
` + daemon.SystemHostKey + `.

Run by a user, rlogind serves that user only. On first start it creates its
host key. If the authorized keys file does not exist, it authorizes your own
rlogin key (~/.rlogin/id_ed25519, created if needed), so that rlogin from this
account works at once; -no-bootstrap turns that off.

Every flag but -config, -inetd and -v may also be set in the configuration
file, one "keyword value" per line (keyword = flag name); flags win.
Under systemd socket activation (LISTEN_FDS) rlogind serves the sockets it is
given; with -inetd it serves the one connection on standard input.

A terminal session whose connection is lost stays, detached, for
-detach-timeout (default 1h), its shell running, for its rlogin to resume it
or a new rlogin -R of the same user to take it over.

SIGTERM or SIGINT stops it: in user mode, and as root with
-privilege-separation=false, sessions end with "service stopping", detached
ones too (after -stop-grace their shells are killed); as root (privilege separation, the
default) they go on, and rlogind -end-sessions ends them. SIGHUP re-reads the configuration file
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

// Main is rlogind's process: it closes the descriptors it inherited but 0, 1, 2 and the
// sockets systemd passed (so that no session gets them), tunes the Go runtime (TuneRuntime),
// takes over the signals (SIGTERM and SIGINT stop, SIGHUP reloads, unless they were ignored at
// start; everything else back to its default, for the shells), and runs Run with the process's
// stderr and stdin.
func Main(args []string) error {
	if err := closeInherited(); err != nil {
		return err
	}
	TuneRuntime(os.Getenv)
	// First: sigreset.Reset changes what signal.Ignored reports.
	stop, reload := StopSignals(), ReloadSignals()
	if err := sigreset.Reset(); err != nil {
		return errtext.Errorf("rlogind: %w", err)
	}
	ctx, cancel := NotifyStop(context.Background(), stop)
	defer cancel()
	reloads, stopReloads := NotifyReload(reload)
	defer stopReloads()
	return Run(ctx, args, Env{Stderr: os.Stderr, Reload: reloads})
}

// ExitStatus is the exit status for an error of Main or Run: 0 for none, 2 for a
// *UsageError, 1 for any other.
func ExitStatus(err error) int {
	var ue *UsageError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ue):
		return 2
	}
	return 1
}

// Run is rlogind after the process setup: it reads the flags (see -h) and the configuration
// file, and serves, in the order the package doc gives: the sockets systemd passed, or -addr,
// until ctx is cancelled (then it returns nil); or, with -inetd, the one connection on
// env.Stdin until its session ends. With -h it prints the usage and returns nil. Bad flags or
// configuration give a *UsageError.
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
	if o.inetd {
		return runInetd(ctx, o, home, env)
	}
	if o.endSessions {
		return endSessions(ctx, o, env)
	}
	return runListening(ctx, o, args, home, env)
}

// endSessions ends every session of the machine's privilege-separated rlogind processes
// (daemon.EndAllSessions), and says how many it ended.
func endSessions(ctx context.Context, o *options, env Env) error {
	if os.Geteuid() != 0 {
		return errtext.Errorf("rlogind: -end-sessions needs root: the sessions' processes are root's")
	}
	ctx, cancel := context.WithTimeout(ctx, o.stopGrace+10*time.Second)
	defer cancel()
	n, err := daemon.EndAllSessions(ctx)
	if err != nil {
		return errtext.Errorf("rlogind: %w", err)
	}
	fmt.Fprintf(env.Stderr, "rlogind: ended %d sessions\n", n)
	return nil
}

// runInetd serves the one connection inetd passed on standard input.
func runInetd(ctx context.Context, o *options, home string, env Env) error {
	stdin := env.Stdin
	if stdin == nil {
		stdin = os.Stdin
	}
	conn, err := inetd.Conn(stdin)
	if err != nil {
		return errtext.Errorf("rlogind: %w", err)
	}
	defer conn.Close() // ServeConn closes it; this covers the failures before
	stderrIsConn := inetd.SameFile(stdin, env.Stderr)
	logs, err := openLog(o, env.Stderr, stderrIsConn)
	if err != nil {
		return err
	}
	defer logs.Close()
	if env.Stdin == nil {
		if err := inetd.DetachStdio(stderrIsConn, logs.FileFD()); err != nil {
			logs.Logger().Warn("cannot detach standard input and output from the connection", "err", err)
		}
	}
	srv, err := newServer(logs.Logger(), o, home)
	if err != nil {
		return err
	}
	if err := srv.ServeConn(ctx, conn); err != nil {
		return errtext.Errorf("rlogind: %w", err)
	}
	return nil
}

// runListening serves the sockets systemd passed, or a listener on -addr, until ctx is
// cancelled.
func runListening(ctx context.Context, o *options, args []string, home string, env Env) error {
	socks, err := listen(ctx, o.addr)
	if err != nil {
		return err
	}
	defer socks.close() // Serve closes them; this covers the failures before
	logs, err := openLog(o, env.Stderr, false)
	if err != nil {
		return err
	}
	defer logs.Close()
	log := logs.Logger()
	socks.logActivation(log)
	srv, err := newServer(log, o, home)
	if err != nil {
		return err
	}
	r := &reloader{log: log, notify: systemd.NewNotifier(), logs: logs, srv: srv, o: o, args: args, home: home, activated: socks.activated}
	return serveUntilDone(ctx, srv, socks, r, env.Reload)
}

// serveUntilDone serves socks with srv until ctx is cancelled or serving fails, telling systemd
// how it goes and reloading on each value of reloads.
func serveUntilDone(ctx context.Context, srv *daemon.Server, socks *sockets, r *reloader, reloads <-chan struct{}) error {
	serveDone := make(chan struct{})
	var wg sync.WaitGroup
	if reloads != nil {
		wg.Go(func() { r.run(reloads, serveDone) })
	}
	stopNotify := context.AfterFunc(ctx, func() { r.notify.Send(systemd.Stopping) })
	r.notify.Send(readyMessage)
	err := serveEach(ctx, srv, socks.ls)
	stopNotify()
	close(serveDone)
	wg.Wait()
	if err != nil {
		return errtext.Errorf("rlogind: %w", err)
	}
	return nil
}

// serveEach serves each listener with its own Serve call, as net/http's servers are used,
// until ctx is cancelled. A listener that fails stops the others: rlogind then exits with its
// error, for the service manager to restart it whole.
func serveEach(ctx context.Context, srv *daemon.Server, ls []net.Listener) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make(chan error, len(ls))
	var wg sync.WaitGroup
	for _, l := range ls {
		wg.Go(func() {
			err := srv.Serve(ctx, l)
			if err != nil {
				cancel()
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs { // in the order they ended: the first error is the cause
		if err != nil {
			return err
		}
	}
	return nil
}

// openLog opens the log the options ask for.
func openLog(o *options, stderr io.Writer, stderrIsConn bool) (*logsink.Sink, error) {
	logs, err := logsink.Open(o.logOptions(), stderr, stderrIsConn)
	if err != nil {
		return nil, errtext.Errorf("rlogind: cannot open the log file %s: %w", o.logFile, systemReason(err))
	}
	if o.configLoaded != "" {
		logs.Logger().Debug("configuration file read", "path", o.configLoaded)
	}
	return logs, nil
}

// newServer prepares the files a first start needs (the host key; the authorized keys file in
// user mode, unless -no-bootstrap) and makes the Server.
func newServer(log *slog.Logger, o *options, home string) (*daemon.Server, error) {
	hostKey, err := loadHostKey(log, o.hostKey)
	if err != nil {
		return nil, err
	}
	if !o.noBootstrap && !o.sys.enabled {
		if err := bootstrap(log, home, o.authorizedKeys); err != nil {
			return nil, err
		}
	}
	srv, err := daemon.NewServer(o.serverConfig(hostKey, home, log))
	if err != nil {
		return nil, errtext.Errorf("rlogind: %w", err)
	}
	return srv, nil
}

// readyMessage tells systemd that rlogind serves.
const readyMessage = systemd.Ready + "\nSTATUS=serving logins"

// reloader applies SIGHUP: it re-reads the configuration and the host key and applies them to
// srv.
type reloader struct {
	log       *slog.Logger
	notify    *systemd.Notifier
	logs      *logsink.Sink
	srv       *daemon.Server
	o         *options // the options in force
	args      []string
	home      string
	activated bool // the sockets are systemd's: -addr does not matter
}

// run reloads for each value of reloads until done is closed or reloads is.
func (r *reloader) run(reloads <-chan struct{}, done <-chan struct{}) {
	for {
		select {
		case <-done:
			return
		case _, ok := <-reloads:
			if !ok {
				return
			}
			r.reload()
		}
	}
}

// reload re-reads the configuration and the host key and applies them; on any error it logs
// it and keeps the current configuration.
func (r *reloader) reload() {
	r.notify.Send(systemd.ReloadingMessage())
	defer r.notify.Send(readyMessage)
	log := r.log
	if err := r.logs.Reopen(); err != nil {
		log.Error("cannot reopen the log file", "err", err)
	}
	log.Info("SIGHUP: reloading the configuration")
	no, err := loadOptions(r.args, io.Discard, r.home, defaultConfigFile())
	if err != nil {
		log.Error("reload failed; keeping the current configuration", "err", err)
		return
	}
	hostKey, err := loadHostKey(log, no.hostKey)
	if err != nil {
		log.Error("reload failed; keeping the current configuration", "err", err)
		return
	}
	if err := r.srv.Reload(no.serverConfig(hostKey, r.home, nil)); err != nil {
		log.Error("reload failed; keeping the current configuration", "err", err)
		return
	}
	o := r.o
	if no.logLevel != o.logLevel {
		r.logs.SetLevel(no.logLevel)
		log.Info("log level changed", "level", no.logLevel.String())
	}
	for _, c := range []struct{ name, old, new string }{
		{"addr", o.addr, no.addr},
		{"log-format", o.logFormat, no.logFormat},
		{"log-file", o.logFile, no.logFile},
	} {
		if c.old != c.new && (c.name != "addr" || !r.activated) {
			log.Warn("this setting changes only at the next start", "setting", c.name, "running", c.old, "configured", c.new)
		}
	}
	r.o = no
}

// homeDir is $HOME, or the home directory in the passwd database when HOME is not set (as for
// a system service).
func homeDir() (string, error) {
	if home, err := os.UserHomeDir(); err == nil {
		return home, nil
	}
	u, err := user.Current()
	if err != nil {
		return "", fmt.Errorf("rlogind: no HOME and no passwd entry: %w", err)
	}
	if u.HomeDir == "" {
		return "", errors.New("rlogind: no HOME and no home directory in the passwd database")
	}
	return u.HomeDir, nil
}
