// Package hostconfig reads rlogin's configuration files, ~/.rlogin/config and
// /etc/rlogin/rlogin_config, in ssh_config(5)'s syntax for the subset that applies to rlogin, and
// says what they set for one host. It also holds the rules for the values it reads (host names,
// escape characters), which rlogin's command line shares.
//
// Typical usage:
//
//	user, err := hostconfig.Load(filepath.Join(home, ".rlogin", "config"))
//	...
//	system, err := hostconfig.Load("/etc/rlogin/rlogin_config")
//	...
//	var s hostconfig.Settings
//	err = s.Apply("web1", hostconfig.Tokens{Home: home, LocalUser: "alice"}, user, system)
//	// s.HostName, s.User, s.Port... are set where a file sets them; the first value obtained wins.
//
// The syntax, as ssh_config's: one "Keyword arguments" (or "Keyword=arguments") per line,
// keywords in any case, arguments in double quotes when they hold spaces, '#' starts a comment
// (at the start of a line, or of a word). "Host pattern..." and "Match ..." start a block that applies when the host matches;
// lines before the first block apply to every host. Patterns take '*' and '?', and a leading '!'
// negates one. A keyword rlogin does not know is an error naming the file and line, as in ssh;
// so is any malformed line, and a file then sets nothing at all.
package hostconfig

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/rlogin-go/rlogin/session"
)

// Limits on what is read: a configuration file is written by hand, and these are far above any
// real one.
const (
	MaxFileSize = 1 << 20 // bytes
	MaxLineLen  = 4096    // bytes
)

// MaxConnectTimeout bounds ConnectTimeout: a day is already more than anyone waits for a
// connection, and the bound keeps the seconds far from overflowing a time.Duration.
const MaxConnectTimeout = 24 * time.Hour

// Settings are what the files set for one host. A zero field is one no file set.
type Settings struct {
	HostName        string        // the host to connect to; %h in it is the name given
	User            string        // the remote user name
	Port            int           // 1-65535
	IdentityFile    string        // the key file to offer, with ~ and %-tokens expanded
	CertificateFile string        // a certificate to present beside the key, expanded likewise
	EscapeChar      EscapeChar    // set when EscapeChar.Set
	ConnectTimeout  time.Duration // whole seconds, 1s to MaxConnectTimeout

	// ServerAliveInterval is the silence of the server after which rlogin asks it for a sign of
	// life: whole seconds, 1s to MaxConnectTimeout, or negative for 0 in the file (no probes).
	ServerAliveInterval time.Duration
	// ServerAliveCountMax is how many intervals of silence make the server dead: 1 to
	// MaxServerAliveCountMax.
	ServerAliveCountMax int

	// Resume is whether rlogin reconnects by itself and resumes the session when the
	// connection is lost ("Resume yes", the default, or "no").
	Resume YesNo
}

// YesNo is a setting that is "yes" or "no": Set when a file sets it.
type YesNo struct {
	Set bool
	Yes bool
}

// MaxServerAliveCountMax bounds ServerAliveCountMax; with MaxConnectTimeout as the interval, the
// product still fits a time.Duration.
const MaxServerAliveCountMax = 1000

// EscapeChar is an EscapeChar setting: a character, or none.
type EscapeChar struct {
	Set  bool
	None bool // "none": no escape character at all
	Char byte
}

// Tokens are what ~ and the %-tokens of IdentityFile and CertificateFile stand for: ~ and %d the
// home directory, %u the local user name, %h the host name (HostName's value, else the host
// given), %% a '%'.
type Tokens struct {
	Home      string
	LocalUser string
}

// File is a parsed configuration file. Its methods may be called from several goroutines.
type File struct {
	path  string
	lines []line // in file order: block starts and settings
}

// line is one meaningful line of a file.
type line struct {
	where   string   // "path:n", for errors
	keyword string   // lower case
	args    []string // unquoted
	match   matcher  // for "host" and "match" lines
}

// Load reads and parses the file at path. A file that does not exist sets nothing (a File with
// no lines, and no error), as ssh takes a missing ~/.ssh/config. A file that may not be opened
// gives an error matching fs.ErrPermission.
func Load(path string) (*File, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return &File{path: path}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("hostconfig: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("hostconfig: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("hostconfig: %s is not a regular file", path)
	}
	// As ssh's "Bad owner or permissions": whoever may write it chooses your hosts and keys.
	if perm := fi.Mode().Perm(); perm&0o022 != 0 {
		return nil, fmt.Errorf("hostconfig: %s: bad permissions %04o: others may write it (chmod go-w it)", path, perm)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Geteuid() && st.Uid != 0 {
		return nil, fmt.Errorf("hostconfig: %s: bad owner: uid %d, neither you nor root", path, st.Uid)
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("hostconfig: reading %s: %w", path, err)
	}
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("hostconfig: %s: larger than %d bytes", path, MaxFileSize)
	}
	return Parse(path, data)
}

// Parse parses a configuration file's content; path names it in errors. The first malformed
// line is the error, and then no File is returned.
func Parse(path string, data []byte) (*File, error) {
	f := &File{path: path}
	for n, text := range strings.Split(string(data), "\n") {
		where := fmt.Sprintf("%s:%d", path, n+1)
		l, err := parseLine(text)
		if err != nil {
			return nil, fmt.Errorf("hostconfig: %s: %w", where, err)
		}
		if l.keyword == "" {
			continue
		}
		l.where = where
		f.lines = append(f.lines, l)
	}
	return f, nil
}

// keywords are the keywords rlogin knows, with how many arguments each takes (-1: one or more).
var keywords = map[string]int{
	"host":            -1,
	"match":           -1,
	"hostname":        1,
	"user":            1,
	"port":            1,
	"identityfile":    1,
	"certificatefile": 1,
	"escapechar":      1,
	"connecttimeout":  1,

	"serveraliveinterval": 1,
	"serveralivecountmax": 1,
	"resume":              1,
}

// parseLine parses one line; a blank or comment line has an empty keyword.
func parseLine(text string) (line, error) {
	text = strings.TrimSuffix(text, "\r")
	if len(text) > MaxLineLen {
		return line{}, fmt.Errorf("line longer than %d bytes", MaxLineLen)
	}
	if !utf8.ValidString(text) {
		return line{}, errors.New("not valid UTF-8")
	}
	for _, r := range text {
		if r != '\t' && (r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0)) {
			return line{}, fmt.Errorf("control character %q", r)
		}
	}
	text = strings.TrimLeft(text, " \t")
	if text == "" || text[0] == '#' {
		return line{}, nil
	}
	// The keyword ends at white space or '=' ("Port=22", "Port = 22", "Port 22").
	end := strings.IndexAny(text, " \t=")
	if end < 0 {
		end = len(text)
	}
	kw := strings.ToLower(text[:end])
	rest := strings.TrimLeft(text[end:], " \t")
	if strings.HasPrefix(rest, "=") {
		rest = rest[1:]
	}
	nargs, ok := keywords[kw]
	if !ok {
		return line{}, fmt.Errorf("unknown keyword %q (rlogin knows Host, Match, HostName, User, Port, IdentityFile, CertificateFile, EscapeChar, ConnectTimeout, ServerAliveInterval, ServerAliveCountMax, Resume)", text[:end])
	}
	args, err := splitArgs(rest)
	if err != nil {
		return line{}, fmt.Errorf("%s: %w", text[:end], err)
	}
	switch {
	case len(args) == 0:
		return line{}, fmt.Errorf("%s: missing argument", text[:end])
	case nargs > 0 && len(args) > nargs:
		return line{}, fmt.Errorf("%s: garbage at end of line: %q", text[:end], args[nargs])
	}
	l := line{keyword: kw, args: args}
	switch kw {
	case "host":
		l.match, err = hostMatcher(args)
	case "match":
		l.match, err = matchMatcher(args)
	default:
		err = checkValue(kw, args[0])
	}
	if err != nil {
		return line{}, fmt.Errorf("%s: %w", text[:end], err)
	}
	return l, nil
}

// splitArgs splits the arguments of a line at white space; double quotes group, and an argument
// starting with '#' starts a comment, as ssh's argv_split does (no escapes inside quotes).
func splitArgs(s string) ([]string, error) {
	var args []string
	for {
		s = strings.TrimLeft(s, " \t")
		if s == "" || s[0] == '#' { // a comment to the end of the line, as in ssh's argv_split
			return args, nil
		}
		if s[0] == '"' {
			end := strings.IndexByte(s[1:], '"')
			if end < 0 {
				return nil, errors.New("unterminated quote")
			}
			args = append(args, s[1:1+end])
			s = s[2+end:]
			if s != "" && s[0] != ' ' && s[0] != '\t' {
				return nil, errors.New("text right after a closing quote")
			}
			continue
		}
		end := strings.IndexAny(s, " \t")
		if end < 0 {
			end = len(s)
		}
		if strings.Contains(s[:end], `"`) {
			return nil, errors.New("quote inside an argument")
		}
		args = append(args, s[:end])
		s = s[end:]
	}
}

// checkValue checks the value of a setting, as far as it can be checked before tokens expand.
func checkValue(kw, v string) error {
	switch kw {
	case "hostname":
		return ValidHost(strings.ReplaceAll(v, "%h", "h"))
	case "user":
		if !session.ValidUserName(v) {
			return fmt.Errorf("invalid user name %q", v)
		}
	case "port":
		if _, err := parsePort(v); err != nil {
			return err
		}
	case "identityfile", "certificatefile":
		_, err := expand(v, Tokens{Home: "/"}, "h")
		return err
	case "escapechar":
		if _, err := parseEscape(v); err != nil {
			return err
		}
	case "connecttimeout":
		if _, err := ParseConnectTimeout(v); err != nil {
			return err
		}
	case "serveraliveinterval":
		_, err := ParseServerAliveInterval(v)
		return err
	case "serveralivecountmax":
		_, err := ParseServerAliveCountMax(v)
		return err
	case "resume":
		_, err := ParseYesNo("Resume", v)
		return err
	}
	return nil
}

// Apply sets the fields of s that are still unset from the files, in order (the first value
// obtained wins, as in ssh_config: so pass the user's file before the system's, and set s's
// fields from the command line first). host is the name given on the command line. The error
// names the file and line of a value that is bad once its tokens are expanded.
func (s *Settings) Apply(host string, tok Tokens, files ...*File) error {
	for _, f := range files {
		if f == nil {
			continue
		}
		active := true // lines before the first Host or Match apply to every host
		for _, l := range f.lines {
			if l.match != nil {
				target := host
				if s.HostName != "" {
					target = s.HostName // Match host sees HostName once set, as ssh's does
				}
				active = l.match.matches(host, target)
				continue
			}
			if !active {
				continue
			}
			if err := s.set(l, host, tok); err != nil {
				return fmt.Errorf("hostconfig: %s: %w", l.where, err)
			}
		}
	}
	return nil
}

// set sets one setting unless it is set already.
func (s *Settings) set(l line, host string, tok Tokens) error {
	v := l.args[0]
	switch l.keyword {
	case "hostname":
		if s.HostName == "" {
			h := strings.ReplaceAll(v, "%h", host)
			if err := ValidHost(h); err != nil {
				return err
			}
			s.HostName = h
		}
	case "user":
		if s.User == "" {
			s.User = v
		}
	case "port":
		if s.Port == 0 {
			s.Port, _ = parsePort(v) // checked when parsed
		}
	case "identityfile", "certificatefile":
		dst := &s.IdentityFile
		if l.keyword == "certificatefile" {
			dst = &s.CertificateFile
		}
		if *dst == "" {
			h := host
			if s.HostName != "" {
				h = s.HostName
			}
			p, err := expand(v, tok, h)
			if err != nil {
				return err
			}
			*dst = p
		}
	case "escapechar":
		if !s.EscapeChar.Set {
			s.EscapeChar, _ = parseEscape(v) // checked when parsed
		}
	case "connecttimeout":
		if s.ConnectTimeout == 0 {
			s.ConnectTimeout, _ = ParseConnectTimeout(v) // checked when parsed
		}
	case "serveraliveinterval":
		if s.ServerAliveInterval == 0 {
			s.ServerAliveInterval, _ = ParseServerAliveInterval(v) // checked when parsed
		}
	case "serveralivecountmax":
		if s.ServerAliveCountMax == 0 {
			s.ServerAliveCountMax, _ = ParseServerAliveCountMax(v) // checked when parsed
		}
	case "resume":
		if !s.Resume.Set {
			yes, _ := ParseYesNo("Resume", v) // checked when parsed
			s.Resume = YesNo{Set: true, Yes: yes}
		}
	}
	return nil
}

// expand expands a leading ~ and the %-tokens of a file name (see Tokens).
func expand(v string, tok Tokens, host string) (string, error) {
	if v == "~" || strings.HasPrefix(v, "~/") {
		if tok.Home == "" {
			return "", errors.New("~ but no home directory")
		}
		v = tok.Home + v[1:]
	} else if strings.HasPrefix(v, "~") {
		return "", fmt.Errorf("%q: only ~/ is understood, not ~user", v)
	}
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		if v[i] != '%' {
			b.WriteByte(v[i])
			continue
		}
		if i+1 == len(v) {
			return "", fmt.Errorf("%q: '%%' at the end", v)
		}
		i++
		switch v[i] {
		case '%':
			b.WriteByte('%')
		case 'd':
			b.WriteString(tok.Home)
		case 'u':
			b.WriteString(tok.LocalUser)
		case 'h':
			b.WriteString(host)
		default:
			return "", fmt.Errorf("%q: unknown token %%%c (rlogin knows %%d, %%u, %%h and %%%%)", v, v[i])
		}
	}
	return b.String(), nil
}

// parsePort reads a port number.
func parsePort(v string) (int, error) {
	port, err := strconv.Atoi(v)
	if err != nil || port < 1 || port > 65535 {
		return 0, fmt.Errorf("bad port %q", v)
	}
	return port, nil
}

// ParseConnectTimeout reads a ConnectTimeout: whole seconds, 1 to MaxConnectTimeout.
func ParseConnectTimeout(v string) (time.Duration, error) {
	secs, err := strconv.Atoi(v)
	if err != nil || secs < 1 || time.Duration(secs)*time.Second > MaxConnectTimeout {
		return 0, fmt.Errorf("bad ConnectTimeout %q: give a number of seconds, 1 to %d", v, int(MaxConnectTimeout/time.Second))
	}
	return time.Duration(secs) * time.Second, nil
}

// ParseServerAliveInterval reads a ServerAliveInterval: whole seconds, 0 to MaxConnectTimeout;
// 0 (no probes) reads as a negative Duration, so that a zero Duration stays "not set".
func ParseServerAliveInterval(v string) (time.Duration, error) {
	secs, err := strconv.Atoi(v)
	if err != nil || secs < 0 || time.Duration(secs)*time.Second > MaxConnectTimeout {
		return 0, fmt.Errorf("bad ServerAliveInterval %q: give a number of seconds, 0 (off) to %d", v, int(MaxConnectTimeout/time.Second))
	}
	if secs == 0 {
		return -1, nil
	}
	return time.Duration(secs) * time.Second, nil
}

// ParseServerAliveCountMax reads a ServerAliveCountMax: 1 to MaxServerAliveCountMax.
func ParseServerAliveCountMax(v string) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > MaxServerAliveCountMax {
		return 0, fmt.Errorf("bad ServerAliveCountMax %q: give a number, 1 to %d", v, MaxServerAliveCountMax)
	}
	return n, nil
}

// ParseYesNo reads the value of the yes-or-no setting named name: "yes" or "no", in any case
// (as ssh_config's).
func ParseYesNo(name, v string) (bool, error) {
	switch strings.ToLower(v) {
	case "yes":
		return true, nil
	case "no":
		return false, nil
	}
	return false, fmt.Errorf("bad %s %q: give yes or no", name, v)
}

// parseEscape reads an EscapeChar: "none", or a character as ParseEscapeChar reads it.
func parseEscape(v string) (EscapeChar, error) {
	if v == "none" {
		return EscapeChar{Set: true, None: true}, nil
	}
	c, err := ParseEscapeChar(v)
	if err != nil {
		return EscapeChar{}, err
	}
	return EscapeChar{Set: true, Char: c}, nil
}

// ParseEscapeChar reads an escape character as netkit rlogin's -e does: one character taken as
// is (any byte, "\" included), or \nnn in octal; and also ssh's ^X notation (^] is 0x1d, ^? is
// DEL).
func ParseEscapeChar(s string) (byte, error) {
	switch {
	case len(s) == 1:
		return s[0], nil
	case len(s) == 2 && s[0] == '^':
		c := s[1]
		switch {
		case c == '?':
			return 0x7f, nil
		case c >= 'a' && c <= 'z':
			return c - 'a' + 1, nil
		case c >= '@' && c <= '_':
			return c - '@', nil
		}
	case len(s) >= 2 && len(s) <= 4 && s[0] == '\\':
		v, err := strconv.ParseUint(s[1:], 8, 8)
		if err == nil {
			return byte(v), nil
		}
	}
	return 0, fmt.Errorf("bad escape character %q: use one character, ^X or \\nnn", s)
}

// ValidHost accepts host names and IPv4/IPv6 literals (with a %zone) and nothing else: the host
// ends up in known_hosts lines and messages, where spaces, commas, patterns or controls would
// mean something else.
func ValidHost(h string) error {
	if h == "" {
		return errors.New("empty host name")
	}
	if h[0] == '-' {
		return fmt.Errorf("host name %q starts with '-'", h)
	}
	if len(h) > 255 {
		return errors.New("host name too long")
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '.', c == '-', c == '_', c == ':', c == '%':
		default:
			return fmt.Errorf("bad character %s in host name", printableByte(c))
		}
	}
	return nil
}

// printableByte shows c safely in a message.
func printableByte(c byte) string {
	if c < 0x20 || c >= 0x7f {
		return fmt.Sprintf("%q", string([]byte{c}))
	}
	return string(rune(c))
}
