package rlogind

import (
	"crypto/ed25519"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/rlogin-go/rlogin/internal/admission"
	"github.com/rlogin-go/rlogin/internal/daemon"
	"github.com/rlogin-go/rlogin/internal/errtext"
	"github.com/rlogin-go/rlogin/internal/logsink"
)

// Configuration file locations: the system daemon's (run as root) and a user's.
const (
	SystemConfigFile = "/etc/rlogin/rlogind.conf"
	UserConfigFile   = "~/.rlogin/rlogind.conf"
)

// Default paths, relative to the home directory.
const (
	defaultHostKey        = "~/.rlogin/rlogind_host_ed25519_key"
	defaultAuthorizedKeys = "~/.rlogin/authorized_keys"
)

// commandLineOnly are the flags that are not configuration keywords.
var commandLineOnly = map[string]bool{"config": true, "inetd": true, "end-sessions": true, "v": true, "h": true, "help": true}

// A UsageError is a bad command line or configuration file (rlogind exits with status 2).
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

func usageErrorf(format string, args ...any) error {
	return &UsageError{Err: fmt.Errorf(format, args...)}
}

// options are rlogind's settings, from the command line and the configuration file.
type options struct {
	config         string
	inetd          bool
	endSessions    bool
	addr           string
	hostKey        string
	authorizedKeys string
	certs          certOptions // -host-certificate, -trusted-user-ca-keys and friends
	grace          time.Duration
	maxStartups    admission.StartupLimit
	perSourceMax   limitValue
	netBlock       admission.NetBlockSize
	penalties      admission.Penalties
	exempt         prefixList
	maxSessions    limitValue
	stopGrace      time.Duration
	alive          clientAlive // -client-alive-interval, -client-alive-count-max
	detach         detach      // -detach-timeout, -detach-buffer
	noBootstrap    bool
	logLevel       slog.Level
	logFormat      string
	logFile        string
	verbose        bool
	classic        daemon.ClassicConfig // -classic and friends
	sys            systemOptions        // -user-mode, -permit-root-login, -password-authentication

	configLoaded string // the configuration file read, "" if none
}

// systemOptions are the command-line flags (and configuration keywords) of System mode.
type systemOptions struct {
	userMode        bool   // -user-mode
	permitRootLogin string // -permit-root-login
	passwordAuth    bool   // -password-authentication
	privsep         bool   // -privilege-separation
	enabled         bool   // System mode: run as root, and not -user-mode (set by resolvePaths)
}

// newFlagSet returns the flag set of rlogind, writing into o. Every flag not in
// commandLineOnly is also a configuration keyword.
func newFlagSet(o *options) *flag.FlagSet {
	set := flag.NewFlagSet("rlogind", flag.ContinueOnError)
	set.SetOutput(io.Discard) // errors are returned, usage printed by the caller
	set.Usage = func() {}
	o.perSourceMax = admission.DefaultPerSourceMaxStartups
	o.maxSessions = daemon.DefaultMaxSessions
	o.exempt = nil
	set.StringVar(&o.config, "config", "", "configuration `file`, or none (default "+SystemConfigFile+" when run as root, else "+UserConfigFile+"; a missing default file is no error)")
	set.BoolVar(&o.inetd, "inetd", false, "serve one connection on standard input, as started by inetd (see the manual)")
	set.BoolVar(&o.endSessions, "end-sessions", false, "as root, with -privilege-separation: end every session of every rlogind on this machine (each within its -stop-grace), then exit; a stop or restart of the listener leaves them running")
	set.StringVar(&o.addr, "addr", daemon.DefaultAddr, "listen `address`: host:port, [ipv6]:port, :port, tcp:host:port, or unix:/path/sock (any address with a '/' is a Unix socket); ignored when systemd passes listening sockets")
	set.StringVar(&o.hostKey, "host-key", defaultHostKey, "host key `file` (ed25519, OpenSSH format); created if missing")
	set.StringVar(&o.authorizedKeys, "authorized-keys", defaultAuthorizedKeys, "`file` of the client keys allowed to log in (OpenSSH authorized_keys format; command=, no-pty and from= are enforced, other options ignore the line)")
	set.DurationVar(&o.grace, "login-grace-time", daemon.DefaultLoginGraceTime, "deadline for a login: everything from connecting until the shell starts")
	set.TextVar(&o.maxStartups, "max-startups", admission.DefaultMaxStartups(), "random early drop of unauthenticated connections, `start:rate:full` (or one number n for n:100:n)")
	set.Var(&o.perSourceMax, "per-source-max-startups", "most unauthenticated connections from one source, `n` or none")
	set.TextVar(&o.netBlock, "per-source-net-block-size", admission.NetBlockSize{V4: admission.DefaultNetBlock4, V6: admission.DefaultNetBlock6}, "prefix lengths `v4:v6` that make one source")
	set.TextVar(&o.penalties, "per-source-penalties", admission.DefaultPenalties(), "refuse sources for a while after failed logins: `off` or keyword:duration items (authfail, noauth, grace-exceeded, max, min; max-sources:n)")
	set.Var(&o.exempt, "per-source-penalty-exempt-list", "comma-separated `addresses` and CIDR prefixes never penalized")
	set.Var(&o.maxSessions, "max-sessions", "most sessions at once, `n` or none")
	set.DurationVar(&o.stopGrace, "stop-grace", daemon.DefaultStopGrace, "on SIGTERM, how long sessions have to end before their shells are killed; after any session ends, how long its leftover jobs may run before they are killed")
	set.BoolVar(&o.noBootstrap, "no-bootstrap", false, "do not create the authorized keys file with your own rlogin key when it does not exist")
	set.TextVar(&o.logLevel, "log-level", slog.LevelInfo, "least `level` logged: debug, info, warn or error")
	set.StringVar(&o.logFormat, "log-format", "text", "log line `format`: text or json")
	set.StringVar(&o.logFile, "log-file", "", "append the log to `file` instead of standard error (reopened on SIGHUP)")
	set.BoolVar(&o.verbose, "v", false, "log debugging details (-log-level debug)")
	addClassicFlags(set, &o.classic)
	addSystemFlags(set, &o.sys)
	addCertFlags(set, &o.certs)
	addClientAliveFlags(set, &o.alive)
	addDetachFlags(set, &o.detach)
	return set
}

// addClassicFlags adds the classic service's flags (and configuration keywords) to set.
func addClassicFlags(set *flag.FlagSet, c *daemon.ClassicConfig) {
	set.BoolVar(&c.Enabled, "classic", false, "also serve classic rlogin clients (RFC 1282: netkit rlogin, rlogin -c) on the same port; UNENCRYPTED: passwords and sessions in plaintext; passwords are asked by login(1) (root only)")
	set.BoolVar(&c.TrustRhosts, "classic-trust-rhosts", false, "with -classic: no password for clients from privileged ports (512-1023) listed in /etc/hosts.equiv or ~/.rhosts (insecure outside a closed network)")
	set.BoolVar(&c.TrustRhostsRoot, "classic-trust-rhosts-root", false, "with -classic-trust-rhosts: let ~root/.rhosts trust apply to root too")
	set.BoolVar(&c.AllowUserMode, "classic-user-mode", false, "with -classic, when not run as root: serve classic clients for your own user, by .rhosts trust only (-classic-trust-rhosts)")
}

// addSystemFlags adds the flags (and configuration keywords) of System mode to set.
func addSystemFlags(set *flag.FlagSet, o *systemOptions) {
	set.BoolVar(&o.userMode, "user-mode", false, "when run as root, serve only root, in user mode, instead of every local user")
	set.StringVar(&o.permitRootLogin, "permit-root-login", daemon.PermitRootNo, "when run as root: may root log in? `no`, prohibit-password (with an authorized key only) or yes")
	set.BoolVar(&o.privsep, "privilege-separation", true, "when run as root: serve each connection in processes of its own, as sshd does: a root monitor that never reads the network and an unprivileged process that does; sessions outlive a restart (-end-sessions ends them); =false (deprecated, kept for one release) serves them in one root process")
	set.BoolVar(&o.passwordAuth, "password-authentication", true, "when run as root: a user whose key is not authorized may log in with their password, which PAM checks (rlogind built with -tags pam; otherwise refused), or login(1) with -privilege-separation=false")
}

// certOptions are the flags (and configuration keywords) of OpenSSH certificates.
type certOptions struct {
	hostCert, trustedUserCAKeys, authorizedPrincipals, revokedKeys string
}

// addCertFlags adds the flags of OpenSSH certificates to set.
func addCertFlags(set *flag.FlagSet, c *certOptions) {
	set.StringVar(&c.hostCert, "host-certificate", "", "OpenSSH host certificate `file` of the host key (ssh-keygen -s ca -h), presented to clients")
	set.StringVar(&c.trustedUserCAKeys, "trusted-user-ca-keys", "", "`file` of user certificate authority keys: a client key certified by one logs in as the certificate's principals allow")
	set.StringVar(&c.authorizedPrincipals, "authorized-principals-file", "", "per-user `file` of the certificate principals that may log in as the user (~/, %u, %h as for -authorized-keys); default: the user's name")
	set.StringVar(&c.revokedKeys, "revoked-keys", "", "`file` of public keys that may not log in, nor sign certificates")
}

// defaultConfigFile is the configuration file read when -config is not given.
func defaultConfigFile() string {
	if os.Geteuid() == 0 {
		return SystemConfigFile
	}
	return UserConfigFile
}

// loadOptions reads the command line args and the configuration file it names (-config; else
// defaultConfig, which may be missing; "none" for no file) into options; command-line flags
// win over the file. With -h it prints the usage to stderr and returns flag.ErrHelp.
func loadOptions(args []string, stderr io.Writer, home, defaultConfig string) (*options, error) {
	var first options
	set := newFlagSet(&first)
	if err := parseFlags(set, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stderr, usageText)
			set.SetOutput(stderr)
			set.PrintDefaults()
			return nil, err
		}
		return nil, usageErrorf("rlogind: %w (rlogind -h lists the flags)", err)
	}
	if set.NArg() > 0 {
		return nil, usageErrorf("rlogind: unexpected argument %q (rlogind -h lists the flags)", set.Arg(0))
	}
	path, explicit := first.config, first.config != ""
	if !explicit {
		path = defaultConfig
	}
	path = expandHome(path, home)

	var o options
	set = newFlagSet(&o)
	var data []byte
	var err error
	if path != "none" {
		data, err = readConfigFile(path)
	}
	switch {
	case path == "none":
	case errors.Is(err, os.ErrNotExist) && !explicit:
	case err != nil:
		return nil, usageErrorf("rlogind: %w", err)
	default:
		if err := applyConfig(set, path, data); err != nil {
			return nil, &UsageError{Err: err}
		}
		o.configLoaded = path
	}
	if err := parseFlags(set, args); err != nil { // the command line wins
		return nil, usageErrorf("rlogind: %w", err)
	}
	o.config = path
	if o.verbose {
		o.logLevel = slog.LevelDebug
	}
	switch {
	case o.grace <= 0:
		return nil, usageErrorf("rlogind: login-grace-time %v: must be positive", o.grace)
	case o.stopGrace <= 0:
		return nil, usageErrorf("rlogind: stop-grace %v: must be positive", o.stopGrace)
	case o.logFormat != "text" && o.logFormat != "json":
		return nil, usageErrorf("rlogind: log-format %q: want text or json", o.logFormat)
	case !validRootLogin(o.sys.permitRootLogin):
		// Here, before anything is created; daemon's own check is only a backstop.
		return nil, usageErrorf("rlogind: permit-root-login %q: want %s, %s or %s", o.sys.permitRootLogin,
			daemon.PermitRootNo, daemon.PermitRootProhibitPassword, daemon.PermitRootYes)
	}
	o.resolvePaths(home, os.Geteuid() == 0) // System mode when root
	if o.logFile != "" {
		o.logFile = expandHome(o.logFile, home)
	}
	return &o, nil
}

// validRootLogin reports whether v is a value of -permit-root-login.
func validRootLogin(v string) bool {
	switch v {
	case daemon.PermitRootNo, daemon.PermitRootProhibitPassword, daemon.PermitRootYes:
		return true
	}
	return false
}

// parseFlags is set.Parse, except that a bad value gives a *valueError: flag's own error for it
// has only the text of the value's error, not the error.
func parseFlags(set *flag.FlagSet, args []string) error {
	var bad error
	set.VisitAll(func(f *flag.Flag) { f.Value = &watchedValue{Value: f.Value, name: f.Name, bad: &bad} })
	// Back to the flags' own values, which -h's list of defaults looks at.
	defer set.VisitAll(func(f *flag.Flag) { f.Value = f.Value.(*watchedValue).Value })
	err := set.Parse(args)
	if err != nil && bad != nil {
		return bad
	}
	return err
}

// A watchedValue is a flag's value that keeps the first error of Set in bad, as a *valueError.
type watchedValue struct {
	flag.Value
	name string
	bad  *error
}

func (v *watchedValue) Set(s string) error {
	err := v.Value.Set(s)
	if err != nil && *v.bad == nil {
		*v.bad = &valueError{name: v.name, value: s, err: err}
	}
	return err
}

// IsBoolFlag keeps a boolean flag one that needs no value.
func (v *watchedValue) IsBoolFlag() bool {
	b, ok := v.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

// A valueError is a bad value of a flag or, with keyword, of a configuration keyword.
type valueError struct {
	name, value string
	keyword     bool
	err         error
}

func (e *valueError) Error() string {
	what := "-" + e.name
	if e.keyword {
		what = e.name
	}
	return fmt.Sprintf("invalid value %q for %s: %s", e.value, what, e.reason())
}

func (e *valueError) Unwrap() error { return e.err }

// reason is why the value is bad: the text of err, without package prefixes nor what it repeats
// of the message around it (the flag's name, the value), so that
// `admission: max-startups "1:2": want start:rate:full` reads "want start:rate:full".
func (e *valueError) reason() string {
	text := errtext.Plain(e.err)
	parts := strings.Split(text, ": ")
	kept := parts[:0]
	for _, p := range parts {
		if p != e.name && !strings.HasPrefix(p, e.name+" ") && p != strconv.Quote(e.value) {
			kept = append(kept, p)
		}
	}
	if len(kept) == 0 {
		return text
	}
	return strings.Join(kept, ": ")
}

// limitValue is a count flag that also takes "none" (no limit, stored as -1).
type limitValue int

func (v *limitValue) String() string {
	if *v < 0 {
		return "none"
	}
	return strconv.Itoa(int(*v))
}

func (v *limitValue) Set(s string) error {
	if s == "none" {
		*v = -1
		return nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		return errors.New("want a positive number or none")
	}
	*v = limitValue(n)
	return nil
}

// prefixList is a flag of comma-separated addresses and prefixes (admission.ParsePrefixList).
type prefixList []netip.Prefix

func (l *prefixList) String() string {
	if l == nil || len(*l) == 0 {
		return ""
	}
	s := make([]string, len(*l))
	for i, p := range *l {
		s[i] = p.String()
	}
	return strings.Join(s, ",")
}

func (l *prefixList) Set(s string) error {
	list, err := admission.ParsePrefixList(s)
	if err != nil {
		return err
	}
	*l = list
	return nil
}

// resolvePaths decides the mode (System when root is true, unless -user-mode) and completes the
// paths of the options: "~/" is home; except that in System mode the host key defaults to
// daemon.SystemHostKey and the authorized keys stay "~/..." (each user's home, see
// daemon.Config).
func (o *options) resolvePaths(home string, root bool) {
	o.sys.enabled = root && !o.sys.userMode
	if o.sys.enabled {
		if o.hostKey == defaultHostKey {
			o.hostKey = daemon.SystemHostKey
		}
	} else {
		o.authorizedKeys = expandHome(o.authorizedKeys, home)
	}
	o.hostKey = expandHome(o.hostKey, home)
	for _, p := range []*string{&o.certs.hostCert, &o.certs.trustedUserCAKeys, &o.certs.revokedKeys} {
		*p = expandHome(*p, home)
	}
}

// serverConfig is the Server configuration the options ask for. A nil log keeps the current
// logger (Reload).
func (o *options) serverConfig(hostKey ed25519.PrivateKey, home string, log *slog.Logger) daemon.Config {
	p := o.penalties
	detachTimeout, detachBuffer := o.detach.config()
	return daemon.Config{
		HostKey:        hostKey,
		AuthorizedKeys: o.authorizedKeys,
		Home:           home,

		HostCertificate:          o.certs.hostCert,
		TrustedUserCAKeys:        o.certs.trustedUserCAKeys,
		AuthorizedPrincipalsFile: o.certs.authorizedPrincipals,
		RevokedKeys:              o.certs.revokedKeys,

		LoginGraceTime:        o.grace,
		MaxStartups:           o.maxStartups,
		PerSourceMaxStartups:  int(o.perSourceMax),
		PerSourceNetBlockSize: o.netBlock,
		PerSourcePenalties:    &p,
		PenaltyExempt:         o.exempt,
		MaxSessions:           int(o.maxSessions),
		StopGrace:             o.stopGrace,
		ClientAlive:           o.alive.keepalive(),
		DetachTimeout:         detachTimeout,
		DetachBuffer:          detachBuffer,
		Logger:                log,
		Classic:               o.classic,

		System:                 o.sys.enabled,
		PermitRootLogin:        o.sys.permitRootLogin,
		PasswordAuthentication: o.sys.passwordAuth,
		PrivilegeSeparation:    o.sys.enabled && o.sys.privsep,
		ProcessLog:             daemon.ProcessLog{Path: o.logFile, Level: o.logLevel, Format: o.logFormat},
	}
}

// logOptions are the log settings of the options.
func (o *options) logOptions() logsink.Options {
	return logsink.Options{Level: o.logLevel, Format: o.logFormat, File: o.logFile}
}
