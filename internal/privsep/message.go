package privsep

import (
	"bytes"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/asn1"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"syscall"
	"unicode"
	"unicode/utf8"

	"github.com/rlogin-go/rlogin/session"
	"github.com/rlogin-go/rlogin/session/classic"
	"github.com/rlogin-go/rlogin/transport"
	"golang.org/x/sys/unix"
)

// A Type is the first byte of a message: what it is. Requests (net child to monitor) are
// 0x01-0x7f, replies (monitor to net child) 0x81-0xff, so a message sent the wrong way is refused
// by its type alone.
type Type byte

// The message types (docs/privsep-messages.md).
const (
	TypeSign      Type = 0x01 // net -> monitor: sign with the host key
	TypeLogin     Type = 0x02 // net -> monitor: the client's login request
	TypeAnswer    Type = 0x03 // net -> monitor: the user's answer to the last prompt
	TypeHangup    Type = 0x04 // net -> monitor: hang up the shell (the client is gone)
	TypeKill      Type = 0x05 // net -> monitor: kill the session now
	TypeCommand   Type = 0x06 // net -> monitor: the client's command, before LOGIN
	TypeSignal    Type = 0x07 // net -> monitor: a signal for a command without a terminal
	TypeProof     Type = 0x08 // net -> monitor: the client's signature over the CHALLENGE's nonce
	TypeResume    Type = 0x09 // net -> monitor: the client resumes or reattaches a session, before LOGIN
	TypeList      Type = 0x0a // net -> monitor: the client lists its sessions, before LOGIN
	TypeResumable Type = 0x0b // net -> monitor: the session may be resumed; its id
	TypeDetached  Type = 0x0c // net -> monitor: the session lost its connection and goes on
	TypeAttached  Type = 0x0d // net -> monitor: the answer to ATTACH
	TypeSignature Type = 0x81 // monitor -> net: the host key's signature
	TypePrompt    Type = 0x82 // monitor -> net: ask the user (a password prompt)
	TypeInfo      Type = 0x83 // monitor -> net: tell the user (PAM info or error, motd)
	TypeAccept    Type = 0x84 // monitor -> net: logged in; carries the pty master
	TypeRefuse    Type = 0x85 // monitor -> net: not logged in; the reason
	TypeExited    Type = 0x86 // monitor -> net: the shell has exited
	TypePipes     Type = 0x87 // monitor -> net: logged in; carries a command's three pipes
	TypeChallenge Type = 0x88 // monitor -> net: a nonce for the client to sign with its key
	TypeSessions  Type = 0x89 // monitor -> net: the answer to LIST
	TypeRelay     Type = 0x8a // monitor -> net: the RESUME goes on; carries a socket to relay over
	TypeAttach    Type = 0x8b // monitor -> net: a new connection for the session; carries its socket
)

func (t Type) String() string {
	switch t {
	case TypeSign:
		return "SIGN"
	case TypeLogin:
		return "LOGIN"
	case TypeAnswer:
		return "ANSWER"
	case TypeHangup:
		return "HANGUP"
	case TypeKill:
		return "KILL"
	case TypeCommand:
		return "COMMAND"
	case TypeSignal:
		return "SIGNAL"
	case TypeSignature:
		return "SIGNATURE"
	case TypePrompt:
		return "PROMPT"
	case TypeInfo:
		return "INFO"
	case TypeAccept:
		return "ACCEPT"
	case TypeRefuse:
		return "REFUSE"
	case TypeExited:
		return "EXITED"
	case TypePipes:
		return "PIPES"
	case TypeProof:
		return "PROOF"
	case TypeChallenge:
		return "CHALLENGE"
	case TypeResume:
		return "RESUME"
	case TypeList:
		return "LIST"
	case TypeResumable:
		return "RESUMABLE"
	case TypeDetached:
		return "DETACHED"
	case TypeAttached:
		return "ATTACHED"
	case TypeSessions:
		return "SESSIONS"
	case TypeRelay:
		return "RELAY"
	case TypeAttach:
		return "ATTACH"
	}
	return fmt.Sprintf("type 0x%02x", byte(t))
}

// request reports whether t is sent by the net child.
func (t Type) request() bool { return t < 0x80 }

// The bounds of the message set (docs/privsep-messages.md, "Limits").
const (
	// MaxMessageLen bounds one encoded message: the largest LOGIN (64 locale variables of
	// 1024 bytes and a client certificate of transport.MaxCertificateSize) fits, with room to
	// spare.
	MaxMessageLen = 96 << 10
	// MaxAnswerLen bounds an ANSWER: PAM's own bound on a response (PAM_MAX_RESP_SIZE).
	MaxAnswerLen = 512
	// MaxPromptLen bounds a PROMPT and a REFUSE reason (the session protocol's reason bound).
	MaxPromptLen = 1024
	// MaxInfoLen bounds one INFO; longer text (a long motd) goes in several.
	MaxInfoLen = 4096
	// MaxSignLen bounds the content of a SIGN: a certificate's to-be-signed part for the host
	// key is about 300 bytes, plus the host's OpenSSH certificate if it has one (at most
	// transport.MaxCertificateSize); a CertificateVerify content is 146 at most.
	MaxSignLen = transport.MaxCertificateSize + 1024
	// maxPeerLen bounds the text of a peer address ("[v6%zone]:port").
	maxPeerLen = 64
	// maxFiles is the most descriptors one message carries (PIPES: 3); a receiver makes room
	// for more so that it sees and refuses extra ones instead of the kernel dropping them.
	maxFiles = 3
)

// A Message is one of the message types of this package: *Sign, *Login, *Answer, *Hangup,
// *Kill, *Command, *SignalCommand, *Proof, *Resume, *List, *Resumable, *Detached, *Attached
// (requests, net child to monitor), *Signature, *Prompt, *Info, *Accept, *Refuse, *Exited,
// *Pipes, *Challenge, *Sessions, *Relay, *Attach (replies, monitor to net child).
type Message interface {
	Type() Type
	// check reports whether the message holds only what its fields may hold.
	check() error
	// appendFields appends the encoded fields (without the type byte) of a checked message.
	appendFields(b []byte) []byte
	// files is how many descriptors the message carries.
	files() int
}

// Sign asks the monitor to sign Content with the host key. Content is a TLS 1.3 server
// CertificateVerify content (RFC 8446 §4.4.3), or the to-be-signed part of a self-signed
// certificate for an ed25519 key (what transport.Server signs before each handshake).
type Sign struct{ Content []byte }

// Login is the client's login request, as the net child read it from the network.
type Login struct {
	Protocol Protocol
	User     string             // both: the account to log in to (session.ValidUserName)
	Term     string             // both: "" or a valid terminal type
	Window   session.WindowSize // secure only; zero for classic (its sizes come in band)
	Env      []string           // secure only: LANG and LC_* (session.ValidLocaleVar), each once
	// ClientKey is the key the client proved it holds in the TLS handshake (secure only,
	// required there).
	ClientKey ed25519.PublicKey
	// ClientCertificate is the OpenSSH certificate the client presented with ClientKey, in
	// the SSH wire format (ssh.Certificate.Marshal), or nil (secure only). The monitor checks
	// it itself: its signature, that it certifies ClientKey, and the policy.
	ClientCertificate []byte
	ClientUser        string // classic only (required there): the user name on the client's host
	Speed             string // classic only: "" or decimal digits
	// Peer is the client's address as the net child saw it; the zero AddrPort if it has none
	// (a Unix socket). The monitor holds the conn too and trusts getpeername(2), not this.
	Peer netip.AddrPort
	// KeyProof says that the client offered the session protocol's capability keyproof
	// (secure only): it answers a CHALLENGE with a signature by ClientKey, which the monitor
	// checks itself rather than trust the net child's word for ClientKey.
	KeyProof bool
}

// Protocol is the login protocol of a LOGIN.
type Protocol byte

// The protocols a LOGIN can carry.
const (
	ProtocolSecure  Protocol = 1 // the session protocol over TLS (docs/protocol.md)
	ProtocolClassic Protocol = 2 // BSD rlogin (RFC 1282)
)

// Answer is the user's answer to the last PROMPT: at most MaxAnswerLen bytes without NUL, CR
// or LF (a password need not be UTF-8).
type Answer struct{ Text string }

// Hangup asks the monitor to hang up the shell: the client has gone or closed the session.
type Hangup struct{}

// Kill asks the monitor to end the session at once.
type Kill struct{}

// Command is the command the client asked to run in place of a login shell (session.Command,
// capability exec). The net child sends it before LOGIN, so that the monitor has the whole
// request when it acts on LOGIN, which keeps LOGIN within MaxMessageLen.
type Command struct{ session.Command }

// SignalCommand asks the monitor to send Signal to a command without a terminal: the client's
// SIGNAL frame. Signal is one that session.ValidCommandSignal names.
type SignalCommand struct{ Signal syscall.Signal }

// Signature is the host key's ed25519 signature of the last SIGN.
type Signature struct{ Sig []byte }

// Prompt asks the user for a line: Text is shown, and the answer is echoed only if Echo (a
// password prompt has Echo false).
type Prompt struct {
	Text string
	Echo bool
}

// Info is text for the user: a PAM info or error message, the motd.
type Info struct{ Text string }

// Accept says the login is authorized and the session started; it carries the pty master.
type Accept struct{}

// Refuse says the login failed; the net child tells the client Reason and closes.
type Refuse struct{ Reason string }

// Challenge asks the net child to have the client sign Nonce (session.KeyProofNonceSize
// bytes) with its key; the net child answers with PROOF.
type Challenge struct{ Nonce []byte }

// Proof is the client's answer to the CHALLENGE: Sig, its ed25519 signature, unchecked (the
// monitor checks it with session.VerifyKeyProof).
type Proof struct{ Sig []byte }

// Pipes says the login is authorized and its command started without a terminal; it carries
// the three pipes of the command: the write end of its stdin, the read ends of its stdout and
// its stderr, in that order.
type Pipes struct{}

// Exited says the shell has exited: with Status if Signal is 0, else killed by Signal (a Linux
// signal number), with a core dump if CoreDumped.
type Exited struct {
	Status     int
	Signal     int
	CoreDumped bool
}

func (*Sign) Type() Type          { return TypeSign }
func (*Login) Type() Type         { return TypeLogin }
func (*Answer) Type() Type        { return TypeAnswer }
func (*Hangup) Type() Type        { return TypeHangup }
func (*Kill) Type() Type          { return TypeKill }
func (*Signature) Type() Type     { return TypeSignature }
func (*Prompt) Type() Type        { return TypePrompt }
func (*Info) Type() Type          { return TypeInfo }
func (*Accept) Type() Type        { return TypeAccept }
func (*Refuse) Type() Type        { return TypeRefuse }
func (*Exited) Type() Type        { return TypeExited }
func (*Command) Type() Type       { return TypeCommand }
func (*SignalCommand) Type() Type { return TypeSignal }
func (*Pipes) Type() Type         { return TypePipes }
func (*Challenge) Type() Type     { return TypeChallenge }
func (*Proof) Type() Type         { return TypeProof }

func (*Sign) files() int          { return 0 }
func (*Login) files() int         { return 0 }
func (*Answer) files() int        { return 0 }
func (*Hangup) files() int        { return 0 }
func (*Kill) files() int          { return 0 }
func (*Signature) files() int     { return 0 }
func (*Prompt) files() int        { return 0 }
func (*Info) files() int          { return 0 }
func (*Accept) files() int        { return 1 }
func (*Refuse) files() int        { return 0 }
func (*Exited) files() int        { return 0 }
func (*Command) files() int       { return 0 }
func (*SignalCommand) files() int { return 0 }
func (*Pipes) files() int         { return 3 }
func (*Challenge) files() int     { return 0 }
func (*Proof) files() int         { return 0 }

// encode returns m's encoding, after checking it as the receiver will.
func encode(m Message) ([]byte, error) {
	if err := m.check(); err != nil {
		return nil, fmt.Errorf("%v: %w", m.Type(), err)
	}
	b := m.appendFields([]byte{byte(m.Type())})
	if len(b) > MaxMessageLen {
		return nil, fmt.Errorf("%v of %d bytes exceeds the limit of %d", m.Type(), len(b), MaxMessageLen)
	}
	return b, nil
}

// decodeRequest decodes a message from the net child: it refuses replies, unknown types,
// fields out of their bounds and trailing bytes.
func decodeRequest(b []byte) (Message, error) {
	if len(b) == 0 || !Type(b[0]).request() {
		return nil, errUnexpected(b)
	}
	return decode(b)
}

// decodeReply decodes a message from the monitor, as strictly as decodeRequest.
func decodeReply(b []byte) (Message, error) {
	if len(b) == 0 || Type(b[0]).request() {
		return nil, errUnexpected(b)
	}
	return decode(b)
}

func errUnexpected(b []byte) error {
	if len(b) == 0 {
		return errors.New("empty message")
	}
	return fmt.Errorf("unexpected message %v", Type(b[0]))
}

func decode(b []byte) (Message, error) {
	if len(b) > MaxMessageLen {
		return nil, fmt.Errorf("message of %d bytes exceeds the limit of %d", len(b), MaxMessageLen)
	}
	t := Type(b[0])
	d := decoder{p: b[1:]}
	var m Message
	switch t {
	case TypeSign:
		m = &Sign{Content: d.bytes16("content", MaxSignLen)}
	case TypeLogin:
		m = d.login()
	case TypeAnswer:
		m = &Answer{Text: d.string16("answer", MaxAnswerLen)}
	case TypeHangup:
		m = &Hangup{}
	case TypeKill:
		m = &Kill{}
	case TypeSignature:
		m = &Signature{Sig: d.bytes16("signature", ed25519.SignatureSize)}
	case TypePrompt:
		p := &Prompt{Echo: d.bool("echo")}
		p.Text = d.string16("prompt", MaxPromptLen)
		m = p
	case TypeInfo:
		m = &Info{Text: d.string16("info", MaxInfoLen)}
	case TypeAccept:
		m = &Accept{}
	case TypeRefuse:
		m = &Refuse{Reason: d.string16("reason", MaxPromptLen)}
	case TypeExited:
		m = d.exited()
	case TypeCommand:
		c := &Command{}
		c.PTY = d.bool("pty")
		c.Line = d.string16("command", session.MaxCommandLen)
		m = c
	case TypeSignal:
		m = &SignalCommand{Signal: syscall.Signal(d.u8())}
	case TypePipes:
		m = &Pipes{}
	case TypeChallenge:
		m = &Challenge{Nonce: d.bytes16("nonce", session.KeyProofNonceSize)}
	case TypeProof:
		m = &Proof{Sig: d.bytes16("signature", ed25519.SignatureSize)}
	case TypeResume:
		m = d.resume()
	case TypeList:
		m = &List{}
	case TypeResumable:
		m = &Resumable{ID: d.id()}
	case TypeDetached:
		m = &Detached{Cause: d.string16("cause", MaxCauseLen)}
	case TypeAttached:
		m = d.attached()
	case TypeSessions:
		m = d.sessions()
	case TypeRelay:
		m = &Relay{}
	case TypeAttach:
		m = d.attach()
	default:
		return nil, fmt.Errorf("unknown message %v", t)
	}
	if d.err == nil && len(d.p) > 0 {
		d.err = fmt.Errorf("%d bytes after the fields", len(d.p))
	}
	if d.err == nil {
		d.err = m.check()
	}
	if d.err != nil {
		return nil, fmt.Errorf("bad %v: %w", t, d.err)
	}
	return m, nil
}

// The fields' checks: each says what a field may hold, for encode and decode alike.

func (m *Sign) check() error {
	if len(m.Content) > MaxSignLen {
		return fmt.Errorf("content of %d bytes exceeds the limit of %d", len(m.Content), MaxSignLen)
	}
	if isCertificateVerify(m.Content) {
		return nil
	}
	if _, err := selfSignedTBSKey(m.Content); err != nil {
		return fmt.Errorf("content is neither a TLS 1.3 server CertificateVerify nor a self-signed ed25519 certificate: %w", err)
	}
	return nil
}

func (m *Login) check() error {
	if err := checkPeer(m.Peer); err != nil {
		return err
	}
	switch m.Protocol {
	case ProtocolSecure:
		if m.ClientUser != "" || m.Speed != "" {
			return errors.New("secure login with classic fields")
		}
		if len(m.ClientKey) != ed25519.PublicKeySize {
			return fmt.Errorf("client key of %d bytes, want %d", len(m.ClientKey), ed25519.PublicKeySize)
		}
		if len(m.ClientCertificate) > transport.MaxCertificateSize {
			return fmt.Errorf("client certificate of %d bytes exceeds %d", len(m.ClientCertificate), transport.MaxCertificateSize)
		}
		if !session.ValidUserName(m.User) {
			return fmt.Errorf("invalid user name %q", m.User)
		}
		if m.Term != "" && !session.ValidTerminalType(m.Term) {
			return fmt.Errorf("invalid terminal type %q", m.Term)
		}
		return checkEnv(m.Env)
	case ProtocolClassic:
		if len(m.ClientKey) != 0 || len(m.ClientCertificate) != 0 || len(m.Env) != 0 || m.Window != (session.WindowSize{}) || m.KeyProof {
			return errors.New("classic login with secure fields")
		}
		// The classic handshake's own rules, where they live.
		_, err := classic.AppendRequest(nil, &classic.Request{ClientUser: m.ClientUser, ServerUser: m.User, Term: m.Term, Speed: m.Speed})
		return err
	default:
		return fmt.Errorf("unknown protocol %d", m.Protocol)
	}
}

// checkEnv is the LOGIN frame's rule for locale variables (docs/protocol.md §5.1).
func checkEnv(env []string) error {
	if len(env) > session.MaxLocaleVars {
		return fmt.Errorf("%d environment variables exceed the limit of %d", len(env), session.MaxLocaleVars)
	}
	for i, e := range env {
		if !session.ValidLocaleVar(e) {
			return fmt.Errorf("invalid environment variable %q", e)
		}
		name := e[:strings.IndexByte(e, '=')+1]
		if slices.ContainsFunc(env[:i], func(f string) bool { return strings.HasPrefix(f, name) }) {
			return fmt.Errorf("environment variable %s appears twice", name[:len(name)-1])
		}
	}
	return nil
}

// checkPeer accepts the zero AddrPort or a valid one whose text is at most maxPeerLen bytes.
func checkPeer(p netip.AddrPort) error {
	if p == (netip.AddrPort{}) {
		return nil
	}
	if !p.IsValid() || len(p.String()) > maxPeerLen {
		return fmt.Errorf("invalid peer address %v", p)
	}
	return nil
}

func (m *Answer) check() error {
	if len(m.Text) > MaxAnswerLen {
		return fmt.Errorf("answer of %d bytes exceeds the limit of %d", len(m.Text), MaxAnswerLen)
	}
	if i := strings.IndexAny(m.Text, "\x00\r\n"); i >= 0 {
		return fmt.Errorf("answer has a forbidden byte 0x%02x", m.Text[i])
	}
	return nil
}

// check is the session protocol's rule for a COMMAND frame (docs/protocol.md, "COMMAND"):
// session keeps its checker unexported, so it is restated here.
func (m *Command) check() error {
	switch {
	case m.Line == "":
		return errors.New("empty command")
	case len(m.Line) > session.MaxCommandLen:
		return fmt.Errorf("command of %d bytes exceeds the limit of %d", len(m.Line), session.MaxCommandLen)
	case strings.IndexByte(m.Line, 0) >= 0:
		return errors.New("command holds a NUL byte")
	}
	return nil
}

func (m *SignalCommand) check() error {
	if !session.ValidCommandSignal(strings.TrimPrefix(unix.SignalName(m.Signal), "SIG")) {
		return fmt.Errorf("signal %d is not one a client may send", int(m.Signal))
	}
	return nil
}

func (*Pipes) check() error { return nil }

func (m *Challenge) check() error {
	if len(m.Nonce) != session.KeyProofNonceSize {
		return fmt.Errorf("nonce of %d bytes, want %d", len(m.Nonce), session.KeyProofNonceSize)
	}
	return nil
}

func (m *Proof) check() error {
	if len(m.Sig) != ed25519.SignatureSize {
		return fmt.Errorf("signature of %d bytes, want %d", len(m.Sig), ed25519.SignatureSize)
	}
	return nil
}

func (*Hangup) check() error { return nil }
func (*Kill) check() error   { return nil }
func (*Accept) check() error { return nil }

func (m *Signature) check() error {
	if len(m.Sig) != ed25519.SignatureSize {
		return fmt.Errorf("signature of %d bytes, want %d", len(m.Sig), ed25519.SignatureSize)
	}
	return nil
}

func (m *Prompt) check() error { return checkText("prompt", m.Text, MaxPromptLen, true) }
func (m *Info) check() error   { return checkText("info", m.Text, MaxInfoLen, true) }

// check is the session protocol's rule for a REFUSE reason (docs/protocol.md §5.3), so the net
// child can pass it on as it is.
func (m *Refuse) check() error { return checkText("reason", m.Reason, MaxPromptLen, false) }

func (m *Exited) check() error {
	switch {
	case m.Signal == 0 && (m.Status < 0 || m.Status > 255 || m.CoreDumped):
		return fmt.Errorf("exit status %d (core dumped %v)", m.Status, m.CoreDumped)
	case m.Signal != 0 && (m.Signal < 1 || m.Signal > 64 || m.Status != 0):
		return fmt.Errorf("signal %d with status %d", m.Signal, m.Status)
	}
	return nil
}

// checkText accepts valid UTF-8 of at most limit bytes without control characters (C0, DEL,
// C1), Unicode format characters (bidi overrides and the like) or U+2028/U+2029; multiline
// text may hold LF and tab. Text a user reads cannot drive their terminal or disguise itself.
func checkText(what, s string, limit int, multiline bool) error {
	if len(s) > limit {
		return fmt.Errorf("%s of %d bytes exceeds the limit of %d", what, len(s), limit)
	}
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		ok := r >= 0x20 && r != 0x7f && !(r >= 0x80 && r < 0xa0) && !unicode.Is(unicode.Cf, r) &&
			r != '\u2028' && r != '\u2029' || multiline && (r == '\n' || r == '\t')
		if r == utf8.RuneError && size == 1 || !ok {
			return fmt.Errorf("%s has a forbidden character at byte %d", what, i)
		}
		i += size
	}
	return nil
}

// The encodings: fixed-size integers big-endian; str16 is a u16 length and the bytes.

func (m *Sign) appendFields(b []byte) []byte      { return appendBytes16(b, m.Content) }
func (m *Answer) appendFields(b []byte) []byte    { return appendBytes16(b, []byte(m.Text)) }
func (*Hangup) appendFields(b []byte) []byte      { return b }
func (*Kill) appendFields(b []byte) []byte        { return b }
func (m *Signature) appendFields(b []byte) []byte { return appendBytes16(b, m.Sig) }
func (m *Info) appendFields(b []byte) []byte      { return appendBytes16(b, []byte(m.Text)) }
func (*Accept) appendFields(b []byte) []byte      { return b }
func (m *Refuse) appendFields(b []byte) []byte    { return appendBytes16(b, []byte(m.Reason)) }
func (*Pipes) appendFields(b []byte) []byte       { return b }
func (m *Challenge) appendFields(b []byte) []byte { return appendBytes16(b, m.Nonce) }
func (m *Proof) appendFields(b []byte) []byte     { return appendBytes16(b, m.Sig) }

func (m *Command) appendFields(b []byte) []byte {
	return appendBytes16(append(b, boolByte(m.PTY)), []byte(m.Line))
}

func (m *SignalCommand) appendFields(b []byte) []byte { return append(b, byte(m.Signal)) }

func (m *Prompt) appendFields(b []byte) []byte {
	return appendBytes16(append(b, boolByte(m.Echo)), []byte(m.Text))
}

func (m *Login) appendFields(b []byte) []byte {
	b = append(b, byte(m.Protocol))
	b = appendBytes16(b, []byte(m.User))
	b = appendBytes16(b, []byte(m.Term))
	for _, v := range [4]uint16{m.Window.Rows, m.Window.Cols, m.Window.XPixel, m.Window.YPixel} {
		b = binary.BigEndian.AppendUint16(b, v)
	}
	b = append(b, byte(len(m.Env)))
	for _, e := range m.Env {
		b = appendBytes16(b, []byte(e))
	}
	b = appendBytes16(b, m.ClientKey)
	b = appendBytes16(b, m.ClientCertificate)
	b = appendBytes16(b, []byte(m.ClientUser))
	b = appendBytes16(b, []byte(m.Speed))
	peer := ""
	if m.Peer.IsValid() {
		peer = m.Peer.String()
	}
	return append(appendBytes16(b, []byte(peer)), boolByte(m.KeyProof))
}

// appendFields of EXITED: kind (0 exited, 1 killed), status or signal number, flags (bit 0:
// core dumped).
func (m *Exited) appendFields(b []byte) []byte {
	if m.Signal == 0 {
		return append(b, 0, byte(m.Status), 0)
	}
	return append(b, 1, byte(m.Signal), boolByte(m.CoreDumped))
}

func appendBytes16(b, s []byte) []byte {
	return append(binary.BigEndian.AppendUint16(b, uint16(len(s))), s...)
}

func boolByte(v bool) byte {
	if v {
		return 1
	}
	return 0
}

// A decoder reads fields; the first error sticks and later reads return zero values.
type decoder struct {
	p   []byte
	err error
}

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf(format, args...)
	}
}

func (d *decoder) take(n int) []byte {
	if d.err != nil {
		return nil
	}
	if len(d.p) < n {
		d.fail("message is too short")
		return nil
	}
	b := d.p[:n:n]
	d.p = d.p[n:]
	return b
}

func (d *decoder) u8() byte {
	if b := d.take(1); b != nil {
		return b[0]
	}
	return 0
}

func (d *decoder) u16() uint16 {
	if b := d.take(2); b != nil {
		return binary.BigEndian.Uint16(b)
	}
	return 0
}

// bool reads a byte that must be 0 or 1, so that every message has one encoding.
func (d *decoder) bool(what string) bool {
	v := d.u8()
	if v > 1 {
		d.fail("%s byte %d, want 0 or 1", what, v)
	}
	return v == 1
}

// bytes16 reads a u16 length of at most limit and that many bytes; nil if there are none.
func (d *decoder) bytes16(what string, limit int) []byte {
	n := int(d.u16())
	if n > limit {
		d.fail("%s of %d bytes exceeds the limit of %d", what, n, limit)
	}
	b := d.take(n)
	if len(b) == 0 {
		return nil
	}
	return bytes.Clone(b)
}

func (d *decoder) string16(what string, limit int) string { return string(d.bytes16(what, limit)) }

func (d *decoder) login() *Login {
	m := &Login{Protocol: Protocol(d.u8())}
	m.User = d.string16("user name", session.MaxUserLen)
	m.Term = d.string16("terminal type", session.MaxTermLen)
	m.Window = session.WindowSize{Rows: d.u16(), Cols: d.u16(), XPixel: d.u16(), YPixel: d.u16()}
	n := int(d.u8())
	if n > session.MaxLocaleVars {
		d.fail("%d environment variables exceed the limit of %d", n, session.MaxLocaleVars)
	}
	for i := 0; i < n && d.err == nil; i++ {
		m.Env = append(m.Env, d.string16("environment variable", session.MaxLocaleVarLen))
	}
	m.ClientKey = d.bytes16("client key", ed25519.PublicKeySize)
	m.ClientCertificate = d.bytes16("client certificate", transport.MaxCertificateSize)
	m.ClientUser = d.string16("client user name", session.MaxUserLen)
	m.Speed = d.string16("speed", session.MaxTermLen)
	if peer := d.string16("peer address", maxPeerLen); peer != "" && d.err == nil {
		p, err := netip.ParseAddrPort(peer)
		if err != nil || p.String() != peer {
			d.fail("peer address %q is not in its canonical form", peer)
		}
		m.Peer = p
	}
	m.KeyProof = d.bool("key proof")
	return m
}

func (d *decoder) exited() *Exited {
	kind, v, flags := d.u8(), d.u8(), d.u8()
	switch {
	case d.err != nil:
	case kind == 0 && flags == 0:
		return &Exited{Status: int(v)}
	case kind == 1 && v != 0 && flags <= 1:
		return &Exited{Signal: int(v), CoreDumped: flags == 1}
	default:
		d.fail("exit kind %d with flags %d", kind, flags)
	}
	return &Exited{}
}

// TLS 1.3's CertificateVerify content, signed by the server (RFC 8446 §4.4.3): 64 spaces, the
// context string, a zero byte, then the transcript hash (SHA-256 or SHA-384).
const (
	certificateVerifyContext = "TLS 1.3, server CertificateVerify"
	certificateVerifyPrefix  = 64 + len(certificateVerifyContext) + 1
)

// isCertificateVerify reports whether b is a TLS 1.3 server CertificateVerify content.
func isCertificateVerify(b []byte) bool {
	if n := len(b) - certificateVerifyPrefix; n != 32 && n != 48 {
		return false
	}
	return bytes.Equal(b[:64], bytes.Repeat([]byte{' '}, 64)) &&
		string(b[64:64+len(certificateVerifyContext)]) == certificateVerifyContext &&
		b[certificateVerifyPrefix-1] == 0
}

// selfSignedTBSKey parses b as the to-be-signed part of an X.509 certificate and returns its
// key, if it is an ed25519 certificate signed with ed25519 whose issuer is its subject and
// that is no certificate authority: what transport makes for its key at each handshake.
func selfSignedTBSKey(b []byte) (ed25519.PublicKey, error) {
	var tbs asn1.RawValue
	if rest, err := asn1.Unmarshal(b, &tbs); err != nil || len(rest) > 0 || tbs.Tag != asn1.TagSequence {
		return nil, errors.New("not one DER SEQUENCE")
	}
	// A whole certificate around it, with an empty signature, lets x509 parse the fields; the
	// signature is what the monitor is asked for, so nothing checks it here.
	cert, err := asn1.Marshal(struct {
		TBS       asn1.RawValue
		Algorithm struct{ OID asn1.ObjectIdentifier }
		Signature asn1.BitString
	}{TBS: asn1.RawValue{FullBytes: b}, Algorithm: struct{ OID asn1.ObjectIdentifier }{oidEd25519()},
		Signature: asn1.BitString{Bytes: make([]byte, ed25519.SignatureSize), BitLength: 8 * ed25519.SignatureSize}})
	if err != nil {
		return nil, err
	}
	c, err := x509.ParseCertificate(cert)
	if err != nil {
		return nil, err
	}
	key, ok := c.PublicKey.(ed25519.PublicKey)
	switch {
	case !ok || c.SignatureAlgorithm != x509.PureEd25519:
		return nil, errors.New("not an ed25519 certificate")
	case !bytes.Equal(c.RawIssuer, c.RawSubject):
		return nil, errors.New("issuer is not the subject")
	case c.IsCA:
		return nil, errors.New("a certificate authority")
	}
	return key, nil
}

// oidEd25519 is id-Ed25519 (RFC 8410).
func oidEd25519() asn1.ObjectIdentifier { return asn1.ObjectIdentifier{1, 3, 101, 112} }
