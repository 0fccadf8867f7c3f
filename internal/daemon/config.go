package daemon

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/rlogin-go/rlogin/internal/admission"
)

// Configuration file locations: the system daemon's (run as root) and a user's.
const (
	SystemConfigFile = "/etc/rlogin/rlogind.conf"
	UserConfigFile   = "~/.rlogin/rlogind.conf"
)

// maxConfigSize bounds the configuration file.
const maxConfigSize = 64 << 10

// commandLineOnly are the flags that are not configuration keywords.
var commandLineOnly = map[string]bool{"config": true, "inetd": true, "v": true, "h": true, "help": true}

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
	addr           string
	hostKey        string
	authorizedKeys string
	grace          time.Duration
	maxStartups    admission.StartupLimit
	perSourceMax   limitValue
	netBlock       admission.NetBlockSize
	penalties      admission.Penalties
	exempt         prefixList
	maxSessions    limitValue
	stopGrace      time.Duration
	noBootstrap    bool
	logLevel       slog.Level
	logFormat      string
	logFile        string
	verbose        bool
	classic        ClassicConfig // -classic and friends (classic.go)
	sys            systemOptions // -user-mode, -permit-root-login, -password-authentication (system.go)

	configLoaded string // the configuration file read, "" if none
}

// newFlagSet returns the flag set of rlogind, writing into o. Every flag not in
// commandLineOnly is also a configuration keyword.
func newFlagSet(o *options) *flag.FlagSet {
	set := flag.NewFlagSet("rlogind", flag.ContinueOnError)
	set.SetOutput(io.Discard) // errors are returned, usage printed by the caller
	set.Usage = func() {}
	o.perSourceMax = admission.DefaultPerSourceMaxStartups
	o.maxSessions = DefaultMaxSessions
	o.exempt = nil
	set.StringVar(&o.config, "config", "", "configuration `file`, or none (default "+SystemConfigFile+" when run as root, else "+UserConfigFile+"; a missing default file is no error)")
	set.BoolVar(&o.inetd, "inetd", false, "serve one connection on standard input, as started by inetd (see the manual)")
	set.StringVar(&o.addr, "addr", DefaultAddr, "listen `address`: host:port, [ipv6]:port, :port, tcp:host:port, or unix:/path/sock (any address with a '/' is a Unix socket); ignored when systemd passes listening sockets")
	set.StringVar(&o.hostKey, "host-key", defaultHostKey, "host key `file` (ed25519, OpenSSH format); created if missing")
	set.StringVar(&o.authorizedKeys, "authorized-keys", defaultAuthorizedKeys, "`file` of the client keys allowed to log in (OpenSSH authorized_keys format, no options)")
	set.DurationVar(&o.grace, "login-grace-time", DefaultLoginGraceTime, "deadline for a login: everything from connecting until the shell starts")
	set.TextVar(&o.maxStartups, "max-startups", admission.DefaultMaxStartups(), "random early drop of unauthenticated connections, `start:rate:full` (or one number n for n:100:n)")
	set.Var(&o.perSourceMax, "per-source-max-startups", "most unauthenticated connections from one source, `n` or none")
	set.TextVar(&o.netBlock, "per-source-net-block-size", admission.NetBlockSize{V4: admission.DefaultNetBlock4, V6: admission.DefaultNetBlock6}, "prefix lengths `v4:v6` that make one source")
	set.TextVar(&o.penalties, "per-source-penalties", admission.DefaultPenalties(), "refuse sources for a while after failed logins: `off` or keyword:duration items (authfail, noauth, grace-exceeded, max, min; max-sources:n)")
	set.Var(&o.exempt, "per-source-penalty-exempt-list", "comma-separated `addresses` and CIDR prefixes never penalized")
	set.Var(&o.maxSessions, "max-sessions", "most sessions at once, `n` or none")
	set.DurationVar(&o.stopGrace, "stop-grace", DefaultStopGrace, "on SIGTERM, how long sessions have to end before their shells are killed")
	set.BoolVar(&o.noBootstrap, "no-bootstrap", false, "do not create the authorized keys file with your own rlogin key when it does not exist")
	set.TextVar(&o.logLevel, "log-level", slog.LevelInfo, "least `level` logged: debug, info, warn or error")
	set.StringVar(&o.logFormat, "log-format", "text", "log line `format`: text or json")
	set.StringVar(&o.logFile, "log-file", "", "append the log to `file` instead of standard error (reopened on SIGHUP)")
	set.BoolVar(&o.verbose, "v", false, "log debugging details (-log-level debug)")
	addClassicFlags(set, &o.classic)
	addSystemFlags(set, &o.sys)
	return set
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
	if err := set.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stderr, usageText)
			set.SetOutput(stderr)
			set.PrintDefaults()
			return nil, err
		}
		return nil, usageErrorf("daemon: %w (rlogind -h lists the flags)", err)
	}
	if set.NArg() > 0 {
		return nil, usageErrorf("daemon: unexpected argument %q (rlogind -h lists the flags)", set.Arg(0))
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
		return nil, usageErrorf("daemon: %w", err)
	default:
		if err := applyConfig(set, path, data); err != nil {
			return nil, &UsageError{Err: err}
		}
		o.configLoaded = path
	}
	if err := set.Parse(args); err != nil { // the command line wins
		return nil, usageErrorf("daemon: %w", err)
	}
	o.config = path
	if o.verbose {
		o.logLevel = slog.LevelDebug
	}
	switch {
	case o.grace <= 0:
		return nil, usageErrorf("daemon: login-grace-time %v: must be positive", o.grace)
	case o.stopGrace <= 0:
		return nil, usageErrorf("daemon: stop-grace %v: must be positive", o.stopGrace)
	case o.logFormat != "text" && o.logFormat != "json":
		return nil, usageErrorf("daemon: log-format %q: want text or json", o.logFormat)
	}
	o.resolvePaths(home, os.Geteuid() == 0) // System mode when root (system.go)
	if o.logFile != "" {
		o.logFile = expandHome(o.logFile, home)
	}
	return &o, nil
}

// readConfigFile reads the configuration file at path. The file must be a regular file owned
// by root or by the user running rlogind and not writable by group or others: it says which
// keys let whom in.
func readConfigFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("configuration file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("configuration file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("configuration file %s is not a regular file", path)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Uid != 0 && int(st.Uid) != os.Geteuid() {
		return nil, fmt.Errorf("configuration file %s: owned by uid %d, want root or %d", path, st.Uid, os.Geteuid())
	}
	if fi.Mode().Perm()&0o022 != 0 {
		return nil, fmt.Errorf("configuration file %s: mode %04o is writable by group or others", path, fi.Mode().Perm())
	}
	data, err := io.ReadAll(io.LimitReader(f, maxConfigSize+1))
	if err != nil {
		return nil, fmt.Errorf("configuration file: %w", err)
	}
	if len(data) > maxConfigSize {
		return nil, fmt.Errorf("configuration file %s is larger than %d bytes", path, maxConfigSize)
	}
	return data, nil
}

// configLine is one setting of a configuration file.
type configLine struct {
	num            int // 1-based
	keyword, value string
}

// parseConfig splits a configuration file into its settings. Its format is sshd_config's: one
// "keyword value" per line (keyword and value separated by spaces, tabs or one '='), blank
// lines and lines starting with '#' ignored, a value optionally in double quotes.
func parseConfig(data []byte) ([]configLine, error) {
	var lines []configLine
	for num := 1; len(data) > 0; num++ {
		var line []byte
		line, data, _ = bytes.Cut(data, []byte("\n"))
		s := strings.TrimSpace(string(line))
		if s == "" || s[0] == '#' {
			continue
		}
		i := strings.IndexAny(s, " \t=")
		if i == 0 {
			return nil, fmt.Errorf("line %d: a value without a keyword", num)
		}
		if i < 0 {
			return nil, fmt.Errorf("line %d: keyword %s without a value", num, quoteKeyword(s))
		}
		key, rest := s[:i], strings.TrimLeft(s[i:], " \t")
		if s[i] != '=' {
			rest = strings.TrimPrefix(rest, "=")
		} else {
			rest = rest[1:]
		}
		val := strings.TrimSpace(rest)
		if len(val) >= 2 && val[0] == '"' && val[len(val)-1] == '"' {
			val = val[1 : len(val)-1]
		}
		if val == "" {
			return nil, fmt.Errorf("line %d: keyword %s without a value", num, quoteKeyword(key))
		}
		for _, c := range []byte(val) {
			if c < 0x20 && c != '\t' || c == 0x7f {
				return nil, fmt.Errorf("line %d: control character in the value of %s", num, quoteKeyword(key))
			}
		}
		lines = append(lines, configLine{num: num, keyword: key, value: val})
	}
	return lines, nil
}

// quoteKeyword shows a keyword from the file safely in a message.
func quoteKeyword(k string) string {
	if len(k) > 64 {
		k = k[:64] + "..."
	}
	return strconv.Quote(k)
}

// normalizeKeyword makes a keyword or flag name comparable: lower case, without '-' and '_',
// so that "LoginGraceTime", "login-grace-time" and "login_grace_time" are one keyword.
func normalizeKeyword(k string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == '-' || r == '_':
			return -1
		case 'A' <= r && r <= 'Z':
			return r + 'a' - 'A'
		}
		return r
	}, k)
}

// applyConfig sets the flags of set from the configuration file data (read from path, for
// messages). Unknown keywords, keywords given twice and bad values are errors.
func applyConfig(set *flag.FlagSet, path string, data []byte) error {
	lines, err := parseConfig(data)
	if err != nil {
		return fmt.Errorf("daemon: %s: %w", path, err)
	}
	byKey := make(map[string]*flag.Flag)
	set.VisitAll(func(f *flag.Flag) {
		if !commandLineOnly[f.Name] {
			byKey[normalizeKeyword(f.Name)] = f
		}
	})
	seen := make(map[string]int)
	for _, l := range lines {
		f := byKey[normalizeKeyword(l.keyword)]
		if f == nil {
			return fmt.Errorf("daemon: %s: line %d: unknown keyword %s", path, l.num, quoteKeyword(l.keyword))
		}
		if prev, dup := seen[f.Name]; dup {
			return fmt.Errorf("daemon: %s: line %d: %s already set on line %d", path, l.num, f.Name, prev)
		}
		seen[f.Name] = l.num
		val := l.value
		if b, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() {
			switch strings.ToLower(val) {
			case "yes", "true", "on", "1":
				val = "true"
			case "no", "false", "off", "0":
				val = "false"
			default:
				return fmt.Errorf("daemon: %s: line %d: %s: want yes or no", path, l.num, f.Name)
			}
		}
		if err := set.Set(f.Name, val); err != nil {
			return fmt.Errorf("daemon: %s: line %d: %s: %w", path, l.num, f.Name, err)
		}
	}
	return nil
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
