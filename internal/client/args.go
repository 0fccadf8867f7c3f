package client

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// DefaultPort is the port rlogin connects to when -p is not given (rlogind's default address is :5513).
const DefaultPort = 5513

// ClassicPort is the default port with -c: the classic rlogin service, "login" in /etc/services.
const ClassicPort = 513

// DefaultEscapeChar is the escape character when -e is not given.
const DefaultEscapeChar = '~'

// Options are what the command line asks for.
type Options struct {
	User       string // remote user name; "" means the local user name
	Host       string // host name or IP address literal (without brackets)
	Port       int
	EscapeChar byte
	NoEscape   bool // -E: no escape character at all
	Debug      bool // -d: progress messages on stderr
	Classic    bool // -c: the classic plaintext protocol of RFC 1282 (port 513 unless -p)
	EightBit   bool // -8: with -c, ignore the server's requests to switch local ^S/^Q flow control
}

// UsageLine is the one line rlogin prints on a usage error.
const UsageLine = "usage: rlogin [-8EKLcd] [-e char] [-l user] [-p port] [user@]host"

// usageText is what -h prints: the usage line, what the options do, the escapes and the exit status.
const usageText = UsageLine + `
  -8        8-bit clean (always); with -c also: leave ^S/^Q to the remote side
  -E        no escape character
  -K, -L    accepted and ignored (no Kerberos; no litout mode)
  -c        classic rlogin (RFC 1282) to an old rlogind or to rlogind -classic: NOT ENCRYPTED,
            the password and the whole session cross the network in plaintext; port 513 by
            default; from a port in 512-1023 when rlogin can bind one (as root)
  -d        debug messages on stderr
  -e char   escape character: a character, ^X, or \nnn in octal (default ~)
  -l user   remote user name (default: your local user name); also user@host
  -p port   port (default 5513, or 513 with -c)
Options may also follow the host: rlogin host -l user.
Escapes, at the start of a line only (not when standard input is not a terminal):
  ~. or ~^D disconnect, ~^Z suspend rlogin, ~~ send one ~, ~? list them.
Exit status: the remote shell's (with -c: 0 when the server closes); 128+n if it was killed by signal n;
0 after ~. (as netkit rlogin);
128+n if rlogin itself gets signal n (HUP, INT, QUIT, TERM); 255 for usage errors and when the
connection, host key check or login fails or the connection is lost.
`

// ErrHelp is returned by ParseArgs for -h and --help.
var ErrHelp = errors.New("client: help requested")

// UsageError is a command line ParseArgs cannot accept.
type UsageError struct {
	Msg string // what is wrong, for "rlogin: <Msg>"
}

func (e *UsageError) Error() string { return "client: " + e.Msg }

func usageErrorf(format string, args ...any) error {
	return &UsageError{Msg: fmt.Sprintf(format, args...)}
}

// ParseArgs parses rlogin's arguments (without the program name), as BSD and netkit rlogin do:
//
//	rlogin [-8EKLcd] [-e char] [-l user] [-p port] host
//	rlogin [options] user@host
//	rlogin host [options]
//
// Flags may be grouped (-8E) and option values attached (-lbob, -e^]). Options may come before or
// after the host, in any order; "--" ends the options. -l wins over user@host. -E wins over -e.
// The error is ErrHelp for -h or --help, or a *UsageError.
func ParseArgs(args []string) (Options, error) {
	o := Options{Port: DefaultPort, EscapeChar: DefaultEscapeChar}
	var operands []string
	var lUser string
	lGiven, pGiven := false, false
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			operands = append(operands, args[i+1:]...)
			break
		}
		if a == "--help" {
			return o, ErrHelp
		}
		if a == "--classic" {
			o.Classic = true
			continue
		}
		if len(a) < 2 || a[0] != '-' {
			operands = append(operands, a)
			continue
		}
		for j := 1; j < len(a); j++ {
			c := a[j]
			switch c {
			case '8':
				o.EightBit = true // 8-bit clean always; -8 matters only for -c's flow control
			case 'K', 'L':
				// No Kerberos; litout means nothing over these protocols.
			case 'c':
				o.Classic = true
			case 'E':
				o.NoEscape = true
			case 'd':
				o.Debug = true
			case 'h':
				return o, ErrHelp
			case 'e', 'l', 'p':
				val := a[j+1:]
				if val == "" {
					i++
					if i == len(args) {
						return o, usageErrorf("option requires an argument -- %c", c)
					}
					val = args[i]
				}
				switch c {
				case 'e':
					ch, err := ParseEscapeChar(val)
					if err != nil {
						return o, err
					}
					o.EscapeChar = ch
				case 'l':
					lUser, lGiven = val, true
				case 'p':
					p, err := strconv.Atoi(val)
					if err != nil || p < 1 || p > 65535 {
						return o, usageErrorf("bad port %q", val)
					}
					o.Port, pGiven = p, true
				}
				j = len(a) // the rest of a was the value
			default:
				return o, usageErrorf("unknown option -- %s", printableByte(c))
			}
		}
	}
	if o.Classic && !pGiven {
		o.Port = ClassicPort
	}
	switch len(operands) {
	case 0:
		return o, usageErrorf("no host given")
	case 1:
	default:
		return o, usageErrorf("unexpected argument %q after host %q", operands[1], operands[0])
	}
	host := operands[0]
	if at := strings.LastIndexByte(host, '@'); at >= 0 {
		if at == 0 {
			return o, usageErrorf("empty user name in %q", host)
		}
		o.User = host[:at]
		host = host[at+1:]
	}
	if lGiven {
		o.User = lUser
	}
	if lGiven && o.User == "" {
		return o, usageErrorf("empty user name")
	}
	if err := checkUser(o.User); err != nil {
		return o, err
	}
	if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
		host = host[1 : len(host)-1]
	}
	if err := checkHost(host); err != nil {
		return o, err
	}
	o.Host = host
	return o, nil
}

// ParseEscapeChar reads the value of -e as netkit's getescape does: one character taken as is
// (any byte, "\" included), or \nnn in octal; and also ^X notation (^] is 0x1d, ^? is DEL).
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
	return 0, usageErrorf("bad escape character %q: use one character, ^X or \\nnn", s)
}

// checkHost accepts host names and IPv4/IPv6 literals (with a %zone) and nothing else: the host
// ends up in known_hosts lines and messages, where spaces, commas, patterns or controls would
// mean something else.
func checkHost(h string) error {
	if h == "" {
		return usageErrorf("empty host name")
	}
	if h[0] == '-' {
		return usageErrorf("host name %q starts with '-'", h)
	}
	if len(h) > 255 {
		return usageErrorf("host name too long")
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '.', c == '-', c == '_', c == ':', c == '%':
		default:
			return usageErrorf("bad character %s in host name", printableByte(c))
		}
	}
	return nil
}

// checkUser refuses user names no system has; the server validates names too.
func checkUser(u string) error {
	if len(u) > 256 {
		return usageErrorf("user name too long")
	}
	for i := 0; i < len(u); i++ {
		if c := u[i]; c < 0x20 || c == 0x7f {
			return usageErrorf("bad character %s in user name", printableByte(c))
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
