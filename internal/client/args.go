package client

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/rlogin-go/rlogin/internal/client/hostconfig"
	"github.com/rlogin-go/rlogin/session"
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

	// ConnectTimeout is -o ConnectTimeout=N: how long reaching the login service may take, and
	// separately the login request; 0 means DefaultConnectTimeout.
	ConnectTimeout time.Duration
	// ServerAliveInterval is -o ServerAliveInterval=N: after N seconds without a word from the
	// server, ask it for one; 0 means DefaultServerAliveInterval, negative (N=0) no probes.
	// ServerAliveCountMax is -o ServerAliveCountMax=N: the server is dead after N intervals of
	// silence; 0 means DefaultServerAliveCountMax.
	ServerAliveInterval time.Duration
	ServerAliveCountMax int
	// NoResume is -o Resume=no: when the connection is lost, the session ends (as before
	// resume existed) instead of rlogin reconnecting and resuming it.
	NoResume bool

	// Reattach is -R: take over one of the user's sessions on the host (one whose client is
	// gone, or named by ReattachID) instead of logging in anew. ReattachID is -R's session id,
	// the first hex digits of one as the list shows it; "" chooses the only detached session.
	Reattach   bool
	ReattachID string

	IdentityFile string // -i file: offer only this key ("" means the usual keys, see rlogin(1))
	PrintConfig  bool   // -G: print the settings for the host, after the configuration files, and exit
	NewKey       bool   // --new-key: create a key (-i's file, else ~/.rlogin/id_ed25519) with a passphrase, and exit

	// Command is the command after the host, its words joined with spaces as ssh joins them (the
	// remote shell splits it again); "" for a login.
	Command   string
	ForcePTY  bool // -t: run the command on a terminal
	NoPTY     bool // -T: never ask for a terminal
	NullStdin bool // -n: standard input from /dev/null
}

// given records which settings the command line gave, so that the configuration files set only
// the others.
type given struct {
	user, port, escape, connectTimeout       bool
	serverAliveInterval, serverAliveCountMax bool
	resume                                   bool
	noEscape                                 bool // -E
}

// UsageLine is the one line rlogin prints on a usage error.
const UsageLine = "usage: rlogin [-8EGKLcdnTt] [-e char] [-i file] [-l user] [-o option] [-p port] [-R [id]] [user@]host [command [arg ...]]"

// usageText is what -h prints: the usage line, what the options do, the escapes and the exit status.
const usageText = UsageLine + `
       rlogin --new-key [-i file]
  -8        8-bit clean (always); with -c also: leave ^S/^Q to the remote side
  -E        no escape character
  -K, -L    accepted and ignored (no Kerberos; no litout mode)
  -c        classic rlogin (RFC 1282) to an old rlogind or to rlogind -classic: NOT ENCRYPTED,
            the password and the whole session cross the network in plaintext; port 513 by
            default; from a port in 512-1023 when rlogin can bind one (as root)
  -d        debug messages on stderr
  -e char   escape character: a character, ^X, or \nnn in octal (default ~)
  -G        print the settings for host (after ~/.rlogin/config) and exit, as ssh -G
  -h        this help, on standard output
  -i file   offer only the key in file (default: ssh-agent's first ed25519 key, then
            ~/.ssh/id_ed25519, then ~/.rlogin/id_ed25519, each if it exists)
  -l user   remote user name (default: your local user name); also user@host
  -n        standard input from /dev/null (for a command run in the background)
  -o ConnectTimeout=N
            give up after N seconds reaching the host, and again waiting for the login to be
            accepted (default 20)
  -o ServerAliveInterval=N, -o ServerAliveCountMax=M
            ask a silent server for a sign of life after N seconds, and give the connection up
            as lost after N*M seconds of silence (default 15 and 3: 45 s; N=0: never)
  -o Resume=no
            when the connection is lost, end (status 255) instead of reconnecting and resuming
            the session (the default, where the server keeps sessions: ~. gives up)
  -p port   port (default 5513, or 513 with -c)
  -R [id]   reattach: list your sessions on host and take over the one whose client is gone,
            or the one id names (the first digits of its id, as listed; its client, if still
            connected, is disconnected); with several, the list says how to choose; when
            standard input is not a terminal, only list them
  -T        no terminal for the command (the default with a command)
  -t        run the command on a terminal (for interactive programs: rlogin -t host top)
  --new-key make a new key (~/.rlogin/id_ed25519, or -i's file), asking for its passphrase
Settings per host: ~/.rlogin/config, then /etc/rlogin/rlogin_config (ssh_config syntax: Host,
Match, HostName, User, Port, IdentityFile, EscapeChar, ConnectTimeout, ServerAliveInterval,
ServerAliveCountMax, Resume); the command line wins.
Options may also follow the host: rlogin host -l user. The first argument after the host that
is not an option (or what follows "--") starts a command, run by the remote user's shell instead
of a login, its words joined with spaces: rlogin host tar c dir > dir.tar. Without -t it has no
terminal: its output and error output arrive apart, the end of standard input is its end of
input, and SIGINT, SIGTERM and SIGHUP to rlogin are passed on to it; when what reads its
output goes away, rlogin exits with 141.
Escapes, at the start of a line only (not when standard input is not a terminal, nor for a
command without a terminal):
  ~. or ~^D disconnect, ~^Z suspend rlogin, ~~ send one ~, ~? list them.
Exit status: the remote shell's or command's (with -c: 0 when the server closes); 128+n if it was killed by signal n;
0 after ~. (as netkit rlogin) and for -h;
128+n if rlogin itself gets signal n (HUP, INT, QUIT, TERM); 255 for usage errors and when the
connection, host key check or login fails, the connection is lost and not resumed, the terminal
hangs up (or SIGHUP comes) while the server keeps the session (left detached for -R), or -R finds
no single session to take over.
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
//	rlogin [-8EKLcd] [-e char] [-l user] [-o option] [-p port] host
//	rlogin [options] user@host
//	rlogin host [options]
//
//	rlogin [options] host [options] [--] command [arg ...]
//
// Flags may be grouped (-8E) and option values attached (-lbob, -e^]). Options may come before or
// after the host, in any order; "--" ends the options. After the host, the first argument that is
// not an option starts the command, as in ssh: the rest are its arguments, options or not
// ("rlogin host ls -l"). -l wins over user@host. -E wins over -e.
// -o takes ssh's form, Name=value (or "Name value"); rlogin knows ConnectTimeout=N,
// ServerAliveInterval=N (seconds), ServerAliveCountMax=N and Resume=yes|no.
// -R takes an optional session id: "rlogin -R host" reattaches without one, "rlogin -R id host"
// with one (the next argument is -R's when it is not an option and a host follows it).
// The error is ErrHelp for -h or --help, or a *UsageError.
func ParseArgs(args []string) (Options, error) {
	o, _, err := parseArgs(args)
	return o, err
}

// parseArgs is ParseArgs, also saying which settings the command line gave.
func parseArgs(args []string) (Options, given, error) {
	p := argParser{o: Options{Port: DefaultPort, EscapeChar: DefaultEscapeChar}}
	if err := p.readArgs(args); err != nil {
		return p.o, p.given, err
	}
	if p.o.Classic && !p.given.port {
		p.o.Port = ClassicPort
	}
	if p.o.NewKey {
		if len(p.operands) > 0 {
			return p.o, p.given, usageErrorf("--new-key takes no host (the key file is -i's)")
		}
		return p.o, p.given, nil
	}
	if err := p.setDestination(); err != nil {
		return p.o, p.given, err
	}
	p.given.user = p.o.User != ""
	return p.o, p.given, nil
}

// argParser is ParseArgs's state: the options so far, the operands, and what is decided only
// once every argument has been read.
type argParser struct {
	o        Options
	operands []string // arguments that are not options: the host, and mistakes
	lUser    string   // -l's value
	lGiven   bool     // -l was given (it wins over user@host, wherever each stands)
	given    given    // what the command line set (-p also decides -c's default port)
}

// readArgs reads every argument: options into p.o, the rest into p.operands.
func (p *argParser) readArgs(args []string) error {
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			p.operands = append(p.operands, args[i+1:]...)
			return nil
		case len(p.operands) == 1 && (len(a) < 2 || a[0] != '-'):
			p.operands = append(p.operands, args[i:]...) // the command, with its options
			return nil
		case a == "--help":
			return ErrHelp
		case a == "--classic":
			p.o.Classic = true
		case a == "--new-key":
			p.o.NewKey = true
		case len(a) < 2 || a[0] != '-':
			p.operands = append(p.operands, a)
		default:
			next, err := p.readFlags(args, i)
			if err != nil {
				return err
			}
			i = next
		}
	}
	return nil
}

// readFlags reads the group of one-letter flags args[i] ("-8E", "-lbob", "-l" then "bob") and
// returns the index of the last argument it used.
func (p *argParser) readFlags(args []string, i int) (int, error) {
	a := args[i]
	for j := 1; j < len(a); j++ {
		c := a[j]
		switch c {
		case '8':
			p.o.EightBit = true // 8-bit clean always; -8 matters only for -c's flow control
		case 'K', 'L':
			// No Kerberos; litout means nothing over these protocols.
		case 'c':
			p.o.Classic = true
		case 'E':
			p.o.NoEscape, p.given.escape, p.given.noEscape = true, true, true
		case 'G':
			p.o.PrintConfig = true
		case 'd':
			p.o.Debug = true
		case 'n':
			p.o.NullStdin = true
		case 't':
			p.o.ForcePTY = true
		case 'T':
			p.o.NoPTY = true
		case 'h':
			return i, ErrHelp
		case 'R':
			p.o.Reattach = true
			// The id is optional: attached, or the next argument unless it is an option;
			// setDestination gives it back as the host when no other operand follows.
			val := a[j+1:]
			if val == "" && i+1 < len(args) && !strings.HasPrefix(args[i+1], "-") {
				i++
				val = args[i]
			}
			p.o.ReattachID = val
			return i, nil
		case 'e', 'i', 'l', 'o', 'p':
			val := a[j+1:] // the rest of a is the value, or else the next argument is
			if val == "" {
				i++
				if i == len(args) {
					return i, usageErrorf("option requires an argument -- %c", c)
				}
				val = args[i]
			}
			return i, p.setValue(c, val)
		default:
			return i, usageErrorf("unknown option -- %s", printableByte(c))
		}
	}
	return i, nil
}

// setValue sets the option c (e, i, l, o or p) to val.
func (p *argParser) setValue(c byte, val string) error {
	switch c {
	case 'e':
		ch, err := ParseEscapeChar(val)
		if err != nil {
			return err
		}
		p.o.EscapeChar, p.given.escape = ch, true
	case 'i':
		if val == "" {
			return usageErrorf("empty key file name")
		}
		p.o.IdentityFile = val
	case 'l':
		p.lUser, p.lGiven = val, true
	case 'o':
		return p.setOption(val)
	case 'p':
		port, err := strconv.Atoi(val)
		if err != nil || port < 1 || port > 65535 {
			return usageErrorf("bad port %q", val)
		}
		p.o.Port, p.given.port = port, true
	}
	return nil
}

// setOption reads one -o option, in ssh's forms Name=value and "Name value"; names are
// case-insensitive, as ssh's and the configuration file's are.
func (p *argParser) setOption(opt string) error {
	name, val, ok := strings.Cut(opt, "=")
	if !ok {
		name, val, _ = strings.Cut(strings.TrimSpace(opt), " ")
	}
	name, val = strings.TrimSpace(name), strings.TrimSpace(val)
	var err error
	switch strings.ToLower(name) {
	case "connecttimeout":
		p.o.ConnectTimeout, err = hostconfig.ParseConnectTimeout(val)
		p.given.connectTimeout = true
	case "serveraliveinterval":
		p.o.ServerAliveInterval, err = hostconfig.ParseServerAliveInterval(val)
		p.given.serverAliveInterval = true
	case "serveralivecountmax":
		p.o.ServerAliveCountMax, err = hostconfig.ParseServerAliveCountMax(val)
		p.given.serverAliveCountMax = true
	case "resume":
		var yes bool
		yes, err = hostconfig.ParseYesNo("Resume", val)
		p.o.NoResume, p.given.resume = !yes, true
	default:
		return usageErrorf("unknown option %q for -o (rlogin knows ConnectTimeout, ServerAliveInterval, ServerAliveCountMax and Resume)", name)
	}
	if err != nil {
		return &UsageError{Msg: err.Error()}
	}
	return nil
}

// setDestination takes the one operand, [user@]host, into p.o.User and p.o.Host, with -l
// winning over the user part, and checks both.
func (p *argParser) setDestination() error {
	if p.o.Reattach && len(p.operands) == 0 && p.o.ReattachID != "" {
		// "rlogin -R host": what -R took is the host.
		p.operands, p.o.ReattachID = []string{p.o.ReattachID}, ""
	}
	if len(p.operands) == 0 {
		return usageErrorf("no host given")
	}
	if err := p.checkReattach(); err != nil {
		return err
	}
	if err := p.setCommand(p.operands[1:]); err != nil {
		return err
	}
	host := p.operands[0]
	if at := strings.LastIndexByte(host, '@'); at >= 0 {
		if at == 0 {
			return usageErrorf("empty user name in %q", host)
		}
		p.o.User = host[:at]
		host = host[at+1:]
	}
	if p.lGiven {
		if p.lUser == "" {
			return usageErrorf("empty user name")
		}
		p.o.User = p.lUser
	}
	if err := checkUser(p.o.User); err != nil {
		return err
	}
	if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
		host = host[1 : len(host)-1]
	}
	if err := checkHost(host); err != nil {
		return err
	}
	p.o.Host = host
	return nil
}

// checkReattach checks -R against the rest of the command line.
func (p *argParser) checkReattach() error {
	switch {
	case !p.o.Reattach:
		return nil
	case p.o.Classic:
		return usageErrorf("-R and -c contradict each other: classic rlogin keeps no sessions")
	case len(p.operands) > 1:
		return usageErrorf("-R takes no command: it reattaches a session")
	case p.o.ReattachID != "" && !validIDPrefix(p.o.ReattachID):
		return usageErrorf("bad session id %q for -R: give the first hex digits of one, as rlogin -R host lists them", p.o.ReattachID)
	}
	return nil
}

// validIDPrefix reports whether s can start a session id as rlogin shows them: 1 to 32 hex digits.
func validIDPrefix(s string) bool {
	if len(s) == 0 || len(s) > 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !strings.ContainsRune("0123456789abcdefABCDEF", rune(s[i])) {
			return false
		}
	}
	return true
}

// setCommand takes the words after the host as the command, joined with spaces as ssh joins
// them, and checks -t and -T against it.
func (p *argParser) setCommand(words []string) error {
	p.o.Command = strings.Join(words, " ")
	switch {
	case p.o.ForcePTY && p.o.NoPTY:
		return usageErrorf("-t and -T contradict each other")
	case p.o.Classic && len(words) > 0:
		return usageErrorf("-c runs no command: classic rlogin has none (rsh was another protocol)")
	case p.o.Command == "" && len(words) > 0:
		return usageErrorf("empty command")
	case p.o.Command == "" && (p.o.NoPTY || p.o.ForcePTY):
		return usageErrorf("-t and -T need a command (a login always has a terminal)")
	case len(p.o.Command) > session.MaxCommandLen:
		return usageErrorf("command of %d bytes exceeds the limit of %d", len(p.o.Command), session.MaxCommandLen)
	case strings.IndexByte(p.o.Command, 0) >= 0:
		return usageErrorf("command holds a NUL byte")
	}
	return nil
}

// ParseEscapeChar reads the value of -e as netkit's getescape does: one character taken as is
// (any byte, "\" included), or \nnn in octal; and also ^X notation (^] is 0x1d, ^? is DEL).
func ParseEscapeChar(s string) (byte, error) {
	c, err := hostconfig.ParseEscapeChar(s)
	if err != nil {
		return 0, &UsageError{Msg: plainText(err)}
	}
	return c, nil
}

// checkHost accepts host names and IPv4/IPv6 literals (with a %zone) and nothing else
// (hostconfig.ValidHost, the configuration file's rule too).
func checkHost(h string) error {
	if err := hostconfig.ValidHost(h); err != nil {
		return &UsageError{Msg: err.Error()}
	}
	return nil
}

// checkUser refuses a user name that no rlogind would take (session.ValidUserName), before
// anything is sent; "" stands for the local user name, checked when it is used.
func checkUser(u string) error {
	if u == "" || session.ValidUserName(u) {
		return nil
	}
	return usageErrorf("invalid user name %q: %s", u, userNameRule())
}

// userNameRule says what session.ValidUserName accepts, for messages.
func userNameRule() string {
	return fmt.Sprintf("letters, digits, '.', '_', '-', not starting with '-', at most %d bytes", session.MaxUserLen)
}

// printableByte shows c safely in a message.
func printableByte(c byte) string {
	if c < 0x20 || c >= 0x7f {
		return fmt.Sprintf("%q", string([]byte{c}))
	}
	return string(rune(c))
}
