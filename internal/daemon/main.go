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
	"os"
	"os/signal"
	"os/user"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/rlogin-go/rlogin/internal/keys"
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

rlogind serves secure remote logins for the user who runs it, into that user's
login shell on a new terminal. Clients (rlogin) ask for the mailbox "login" at
-addr, connect with TLS 1.3, and log in if their ed25519 key is listed in
-authorized-keys (OpenSSH format, re-read at every login) and they ask for this
user.

On first start rlogind creates its host key. If the authorized keys file does
not exist, it authorizes your own rlogin key (~/.rlogin/id_ed25519, created if
needed), so that rlogin from this account works at once; -no-bootstrap turns
that off.

SIGTERM or SIGINT stops it: sessions end with "service stopping".

Flags:
`

// options are rlogind's command-line flags.
type options struct {
	addr           string
	hostKey        string
	authorizedKeys string
	grace          time.Duration
	maxStartups    int
	noBootstrap    bool
	verbose        bool
}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	var o options
	set := flag.NewFlagSet("rlogind", flag.ContinueOnError)
	set.SetOutput(stderr)
	set.Usage = func() {
		fmt.Fprint(set.Output(), usageText)
		set.PrintDefaults()
	}
	set.StringVar(&o.addr, "addr", DefaultAddr, "listen `address`: host:port, [ipv6]:port, :port, tcp:host:port, or unix:/path/sock (any address with a '/' is a Unix socket)")
	set.StringVar(&o.hostKey, "host-key", defaultHostKey, "host key `file` (ed25519, OpenSSH format); created if missing")
	set.StringVar(&o.authorizedKeys, "authorized-keys", defaultAuthorizedKeys, "`file` of the client keys allowed to log in (OpenSSH authorized_keys format, no options)")
	set.DurationVar(&o.grace, "login-grace-time", DefaultLoginGraceTime, "deadline for a login: everything from connecting until the shell starts")
	set.IntVar(&o.maxStartups, "max-startups", DefaultMaxStartups, "most connections not yet authenticated at once; further ones are closed at once")
	set.BoolVar(&o.noBootstrap, "no-bootstrap", false, "do not create the authorized keys file with your own rlogin key when it does not exist")
	set.BoolVar(&o.verbose, "v", false, "log debugging details")
	if err := set.Parse(args); err != nil {
		return nil, err
	}
	if set.NArg() > 0 {
		set.Usage()
		return nil, fmt.Errorf("daemon: unexpected argument %q", set.Arg(0))
	}
	if o.grace <= 0 {
		return nil, fmt.Errorf("daemon: -login-grace-time %v: must be positive", o.grace)
	}
	if o.maxStartups <= 0 {
		return nil, fmt.Errorf("daemon: -max-startups %d: must be positive", o.maxStartups)
	}
	return &o, nil
}

// Main is rlogind after the process setup: it parses args (see -h), creates the host key on
// first start, bootstraps the authorized keys file, listens and serves until ctx is cancelled,
// then returns nil. It logs to stderr. With -h it prints the usage and returns nil.
func Main(ctx context.Context, args []string, stderr io.Writer) error {
	o, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	level := slog.LevelInfo
	if o.verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	home, err := os.UserHomeDir()
	if err != nil {
		return fmt.Errorf("daemon: %w", err)
	}
	hostKeyPath := expandHome(o.hostKey, home)
	authPath := expandHome(o.authorizedKeys, home)

	hostKey, created, err := keys.LoadOrCreate(hostKeyPath)
	if err != nil {
		return fmt.Errorf("daemon: host key: %w", err)
	}
	fp := keys.Fingerprint(hostKey.Public().(ed25519.PublicKey))
	if created {
		log.Info("created host key", "path", hostKeyPath, "fingerprint", fp)
	} else {
		log.Info("host key", "path", hostKeyPath, "fingerprint", fp)
	}
	if !o.noBootstrap {
		if err := bootstrap(log, home, authPath); err != nil {
			return err
		}
	}

	srv, err := NewServer(Config{
		HostKey:        hostKey,
		AuthorizedKeys: authPath,
		Home:           home,
		LoginGraceTime: o.grace,
		MaxStartups:    o.maxStartups,
		Logger:         log,
	})
	if err != nil {
		return err
	}
	l, err := transport.Listen(ctx, o.addr)
	if err != nil {
		return fmt.Errorf("daemon: %w", err)
	}
	return srv.Serve(ctx, l)
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

// NotifyStop returns a copy of ctx that is cancelled when one of sigs arrives (or stop is
// called). With no sigs it only wraps ctx: signal.NotifyContext with none would catch them all.
func NotifyStop(ctx context.Context, sigs []os.Signal) (context.Context, context.CancelFunc) {
	if len(sigs) == 0 {
		return context.WithCancel(ctx)
	}
	return signal.NotifyContext(ctx, sigs...)
}
