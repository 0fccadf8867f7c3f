package session

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/rlogin-go/rlogin/pty"
)

// The bounds of a login request's fields (docs/protocol.md, "Limits at a glance"). They are the
// protocol's, and every other program of this module that checks these fields (the classic
// handshake, rlogind, rlogin) calls the validators below rather than keeping limits of its own.
const (
	MaxUserLen      = 32   // bytes of a user name
	MaxTermLen      = 256  // bytes of a terminal type
	MaxLocaleVars   = 64   // locale variables in a login request
	MaxLocaleVarLen = 1024 // bytes of one locale variable, "NAME=value"
)

// WindowSize is a terminal's size in characters and pixels (0 = unknown). It is pty.Size, so a
// window change goes from the wire to a pty without conversion.
type WindowSize = pty.Size

// Request is a login request. Its bounds (docs/protocol.md, "LOGIN"): User passes ValidUserName;
// Term is empty or passes ValidTerminalType; at most MaxLocaleVars entries in Env, each passing
// ValidLocaleVar, no name twice; at most 32 capabilities.
type Request struct {
	User   string     // the remote user name
	Term   string     // terminal type, as in TERM; "" if there is none; a Client sends "dumb" for one outside the bounds
	Window WindowSize // initial window size

	// Env holds "NAME=value" entries. Only LANG and LC_* are carried: a Client drops the other
	// entries, so Env may be the whole environment, and those outside the bounds, as LocaleEnv
	// does; a server accepts no others.
	Env []string

	// Capabilities lists the optional features the client offers. A Client fills it in itself
	// (flow2, and exec with a Command); a server ignores names it does not know.
	Capabilities []string

	// Command, if set, asks for a command in place of a login shell (capability exec). A Client
	// offers exec and sends it right after the request; a server reads it with the request (a
	// server that accepts exec only: an older one does not know it).
	Command *Command

	// Resume, if set, asks to continue a running session instead of starting one (capability
	// attach): a Client sends it right after the request; a server reads it with the request and
	// hands the connection to the session (ServerConn.Attach). A Client with a Command sends
	// neither the Command nor its capability then.
	Resume *ResumeRequest

	// List asks for a list of the user's sessions instead of a login (capability attach): the
	// server answers with ServerConn.SendSessions. ListSessions sets it.
	List bool
}

// ValidUserName reports whether name is a portable user name: 1 to MaxUserLen bytes of
// [A-Za-z0-9._-], not starting with '-', so that no name can pass for an option of login(1)
// (CVE-1999-0113's "-froot") and none holds a byte a shell, a log or a file name would read
// as something else. Both protocols (this one and the classic handshake) carry only such names.
func ValidUserName(name string) bool { return checkUser(name) == nil }

// ValidTerminalType reports whether term is a terminal type a shell may get as TERM: 1 to
// MaxTermLen bytes of printable ASCII without space or '/' (terminfo looks TERM up as a file
// name, so a '/' could name any file).
func ValidTerminalType(term string) bool { return term != "" && checkTerm(term) == nil }

// TerminalTypeOrDumb returns term if it is a valid terminal type, else "dumb": what a server
// sets TERM to.
func TerminalTypeOrDumb(term string) string {
	if ValidTerminalType(term) {
		return term
	}
	return "dumb"
}

// ValidLocaleVar reports whether kv is a locale variable a login request may carry: "NAME=value"
// of at most MaxLocaleVarLen bytes, where NAME is LANG, or LC_ followed by one or more of [A-Z_],
// and value is printable ASCII (locale names are ASCII: language_territory.codeset@modifier).
func ValidLocaleVar(kv string) bool { return checkEnv(kv) == nil }

// LocaleEnv returns the entries of env that a login request carries: those that pass
// ValidLocaleVar, each name once (the first, as getenv(3) finds it), at most MaxLocaleVars of
// them. It drops the rest rather than failing: one odd variable must not fail a login.
func LocaleEnv(env []string) []string {
	var out []string
	for _, e := range env {
		if len(out) == MaxLocaleVars {
			break
		}
		if checkEnv(e) != nil {
			continue
		}
		name := e[:len(envName(e))+1] // with the '='
		if !slices.ContainsFunc(out, func(f string) bool { return strings.HasPrefix(f, name) }) {
			out = append(out, e)
		}
	}
	return out
}

// validate checks the bounds of docs/protocol.md, "LOGIN".
func (r *Request) validate() error {
	if err := checkUser(r.User); err != nil {
		return err
	}
	if err := checkTerm(r.Term); err != nil {
		return err
	}
	if len(r.Env) > MaxLocaleVars {
		return fmt.Errorf("%d environment variables exceed the limit of %d", len(r.Env), MaxLocaleVars)
	}
	for i, e := range r.Env {
		if err := checkEnv(e); err != nil {
			return err
		}
		name := e[:len(envName(e))+1] // with the '='
		for _, f := range r.Env[:i] {
			if strings.HasPrefix(f, name) {
				return fmt.Errorf("environment variable %s appears twice", name[:len(name)-1])
			}
		}
	}
	return checkCapabilities(r.Capabilities)
}

// checkUser is ValidUserName with the reason, for a protocol error.
func checkUser(s string) error {
	switch {
	case s == "":
		return errors.New("empty user name")
	case len(s) > MaxUserLen:
		return fmt.Errorf("user name of %d bytes exceeds the limit of %d", len(s), MaxUserLen)
	case s[0] == '-':
		return fmt.Errorf("user name %s starts with '-'", quote(s))
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '.', c == '_', c == '-':
		default:
			return fmt.Errorf("user name %s has a forbidden byte 0x%02x", quote(s), c)
		}
	}
	return nil
}

// checkTerm is the protocol's rule for the term field, with the reason: empty (the client has no
// terminal type) or ValidTerminalType.
func checkTerm(s string) error {
	if len(s) > MaxTermLen {
		return fmt.Errorf("terminal type of %d bytes exceeds the limit of %d", len(s), MaxTermLen)
	}
	if i := indexNotIn(s, "/", 0x21, 0x7e); i >= 0 {
		return fmt.Errorf("terminal type %s has a forbidden byte 0x%02x", quote(s), s[i])
	}
	return nil
}

// checkEnv is ValidLocaleVar with the reason, for a protocol error.
func checkEnv(e string) error {
	if len(e) > MaxLocaleVarLen {
		return fmt.Errorf("environment variable of %d bytes exceeds the limit of %d", len(e), MaxLocaleVarLen)
	}
	name := envName(e)
	if name == "" || !isLocaleName(name) {
		return fmt.Errorf("environment variable %s is not LANG or LC_*", quote(e))
	}
	if i := indexNotIn(e[len(name)+1:], "", 0x20, 0x7e); i >= 0 {
		return fmt.Errorf("environment variable %s has a forbidden byte 0x%02x in its value", name, e[len(name)+1+i])
	}
	return nil
}

// envName returns the NAME of "NAME=value", or "" if e has no '='.
func envName(e string) string {
	name, _, ok := strings.Cut(e, "=")
	if !ok {
		return ""
	}
	return name
}

// isLocaleName reports whether name is LANG or LC_ followed by capitals or '_' (LC_ALL, LC_CTYPE).
func isLocaleName(name string) bool {
	if name == "LANG" {
		return true
	}
	rest, ok := strings.CutPrefix(name, "LC_")
	if !ok || rest == "" {
		return false
	}
	return strings.Trim(rest, "ABCDEFGHIJKLMNOPQRSTUVWXYZ_") == ""
}

// appendRequest appends a LOGIN payload.
func appendRequest(b []byte, r *Request) ([]byte, error) {
	if err := r.validate(); err != nil {
		return b, err
	}
	b = appendString16(b, r.User)
	b = appendString16(b, r.Term)
	for _, v := range [4]uint16{r.Window.Rows, r.Window.Cols, r.Window.XPixel, r.Window.YPixel} {
		b = binary.BigEndian.AppendUint16(b, v)
	}
	b = append(b, byte(len(r.Env)))
	for _, e := range r.Env {
		b = appendString16(b, e)
	}
	return appendCapabilities(b, r.Capabilities), nil
}

// decodeRequest decodes a LOGIN payload.
func decodeRequest(p []byte) (*Request, error) {
	d := decoder{p: p}
	r := &Request{
		User:   d.string16("user name", MaxUserLen),
		Term:   d.string16("terminal type", MaxTermLen),
		Window: d.window(),
	}
	n := int(d.u8())
	if n > MaxLocaleVars {
		d.fail("%d environment variables exceed the limit of %d", n, MaxLocaleVars)
	}
	for i := 0; i < n && d.err == nil; i++ {
		r.Env = append(r.Env, d.string16("environment variable", MaxLocaleVarLen))
	}
	r.Capabilities = d.capabilities()
	if err := d.finish(); err != nil {
		return nil, err
	}
	if err := r.validate(); err != nil {
		return nil, err
	}
	return r, nil
}
