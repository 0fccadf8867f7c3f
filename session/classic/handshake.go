package classic

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/rlogin-go/rlogin/session"
)

// Limits on the handshake's fields. They are the session protocol's (session.MaxUserLen,
// session.MaxTermLen), which are also netkit in.rlogind's: user names of at most 32 bytes, a
// terminal field ("type/speed") of at most 256, each without its NUL.
const (
	maxTermField = session.MaxTermLen // the whole "type/speed" field
	maxSpeed     = 10                 // digits of the speed after '/'
)

// maxHandshake is the longest handshake a server accepts: the NUL and three bounded fields with
// their NULs.
const maxHandshake = 1 + (session.MaxUserLen + 1) + (session.MaxUserLen + 1) + (maxTermField + 1)

// Request is the handshake a classic client sends: "\x00" clientuser "\x00" serveruser "\x00"
// term "/" speed "\x00".
type Request struct {
	ClientUser string // the user name on the client's machine (for .rhosts trust)
	ServerUser string // the user to log in as
	Term       string // terminal type, as in TERM ("xterm"); may be empty
	Speed      string // terminal speed in decimal ("38400"); may be empty (no '/' is sent then)
}

// ErrNotClassic is returned by ReadRequest when the first byte is not NUL: the peer is not a
// classic rlogin client.
var ErrNotClassic = errors.New("classic: not a classic rlogin client (first byte is not NUL)")

// A HandshakeError is a malformed or unacceptable handshake. Reason is what the server tells the
// client; it is plain ASCII and says nothing the client did not send, except for its bounds.
type HandshakeError struct {
	Reason string
}

func (e *HandshakeError) Error() string { return "classic: bad handshake: " + e.Reason }

func handshakeErrorf(format string, args ...any) error {
	return &HandshakeError{Reason: fmt.Sprintf(format, args...)}
}

// AppendRequest appends the handshake for req to b. It checks req as a server would (see
// session.ValidUserName and session.ValidTerminalType) and fails without appending if it would be refused.
func AppendRequest(b []byte, req *Request) ([]byte, error) {
	if err := req.check(); err != nil {
		return b, err
	}
	b = append(b, 0)
	b = append(b, req.ClientUser...)
	b = append(b, 0)
	b = append(b, req.ServerUser...)
	b = append(b, 0)
	b = append(b, req.Term...)
	if req.Speed != "" {
		b = append(b, '/')
		b = append(b, req.Speed...)
	}
	return append(b, 0), nil
}

// check validates the fields of a parsed or to-be-sent request.
func (req *Request) check() error {
	if !session.ValidUserName(req.ClientUser) {
		return handshakeErrorf("invalid client user name")
	}
	if !session.ValidUserName(req.ServerUser) {
		return handshakeErrorf("invalid server user name")
	}
	if !validTerm(req.Term) {
		return handshakeErrorf("invalid terminal type")
	}
	if !validSpeed(req.Speed) {
		return handshakeErrorf("invalid terminal speed")
	}
	field := len(req.Term) // the "type/speed" field
	if req.Speed != "" {
		field += 1 + len(req.Speed)
	}
	if field > maxTermField {
		return handshakeErrorf("terminal type longer than %d bytes", maxTermField)
	}
	return nil
}

// validTerm accepts no terminal type or one that passes session.ValidTerminalType.
func validTerm(t string) bool { return t == "" || session.ValidTerminalType(t) }

// validSpeed accepts "" or 1 to maxSpeed decimal digits.
func validSpeed(s string) bool {
	if len(s) > maxSpeed {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// scanRequest parses a handshake at the start of b. While b is a valid but incomplete prefix it
// returns done false and no error; such a prefix is never longer than maxHandshake. On success n
// is the handshake's length: the bytes after it are the client's first data.
func scanRequest(b []byte) (req *Request, n int, done bool, err error) {
	if len(b) == 0 {
		return nil, 0, false, nil
	}
	if b[0] != 0 {
		return nil, 0, false, ErrNotClassic
	}
	var fields [3]string
	limits := [3]int{session.MaxUserLen, session.MaxUserLen, maxTermField}
	names := [3]string{"client user name", "server user name", "terminal type"}
	pos := 1
	for i := range fields {
		rest := b[pos:]
		end := -1
		for j, c := range rest {
			if c == 0 {
				end = j
				break
			}
			if j == limits[i] {
				break
			}
		}
		if end < 0 {
			if len(rest) > limits[i] {
				return nil, 0, false, handshakeErrorf("%s longer than %d bytes", names[i], limits[i])
			}
			return nil, 0, false, nil
		}
		fields[i] = string(rest[:end])
		pos += end + 1
	}
	req = &Request{ClientUser: fields[0], ServerUser: fields[1]}
	// "xterm/" has no speed: netkit in.rlogind cuts at the '/' and reads an empty speed as none,
	// so it is the same request as "xterm", which is how AppendRequest writes it back.
	req.Term, req.Speed, _ = strings.Cut(fields[2], "/")
	if err := req.check(); err != nil {
		return nil, 0, false, err
	}
	return req, pos, true, nil
}

// readRequest reads a handshake from r in chunks (not byte by byte), and returns it with the
// bytes read past it.
func readRequest(r io.Reader) (*Request, []byte, error) {
	buf := make([]byte, maxHandshake+64)
	n := 0
	for {
		m, rerr := r.Read(buf[n:])
		n += m
		req, used, done, err := scanRequest(buf[:n])
		if err != nil {
			return nil, nil, err
		}
		if done {
			return req, append([]byte(nil), buf[used:n]...), nil
		}
		if rerr != nil {
			if rerr == io.EOF {
				rerr = io.ErrUnexpectedEOF
			}
			return nil, nil, fmt.Errorf("classic: reading the handshake: %w", rerr)
		}
	}
}
