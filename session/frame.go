package session

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
)

// Protocol constants; docs/protocol.md is the specification.
const (
	version = 1 // the protocol version this package speaks

	headerLen  = 4         // frame header: type (1 byte), payload length (3 bytes, big-endian)
	maxPayload = 128 << 10 // largest payload a parser accepts

	window      = 256 << 10  // credit window: DATA bytes a sender may have outstanding, each way
	creditBatch = window / 4 // receivers grant credit in batches of at least this many bytes
	maxWindow   = 16 << 20   // the largest output window a client may grow to (capability flow2)

	// capFlow2 is the capability of window growth and SYNC (docs/protocol.md, section 7.3).
	capFlow2 = "flow2"
	// capKeepalive is the capability of PING and PONG (docs/protocol.md, section 7.4).
	capKeepalive = "keepalive"
	// capFlushKeys is the capability of FLUSHKEYS (docs/protocol.md, section 7.5).
	capFlushKeys = "flushkeys"

	maxCaps       = 32   // capabilities in a list
	maxCapName    = 64   // bytes of a capability name
	maxReason     = 1024 // bytes of a REFUSE or CLOSE reason
	maxSignalName = 32   // bytes of a signal name in EXIT
	maxRefusal    = 1023 // bytes of the text in a version refusal line, without its LF
	maxFlushKeys  = 3    // bytes of a FLUSHKEYS payload: VINTR, VQUIT, VSUSP

	// maxLogin is the largest LOGIN payload (68046 bytes): every field at its bound. A server
	// reads no longer frame before the login request.
	maxLogin = 2 + MaxUserLen + 2 + MaxTermLen + 8 + 1 + MaxLocaleVars*(2+MaxLocaleVarLen) + 1 + maxCaps*(1+maxCapName)
)

// Implementation limits (not protocol): how this package cuts its own data.
const (
	maxDataFrame = 64 << 10 // payload of the DATA frames this package sends
	readChunk    = 32 << 10 // buffer for one Terminal.ReadOutput or Stdin read
)

// A frameType is the first byte of a frame header. Types with bit 0x80 set are optional: a receiver
// skips those it does not know. An unknown mandatory type (0x00-0x7f) is a protocol error.
type frameType byte

const (
	frameLogin  frameType = 0x01 // client: the login request
	frameAccept frameType = 0x02 // server: login accepted, with the accepted capabilities
	frameRefuse frameType = 0x03 // server: login refused, with a reason
	frameData   frameType = 0x04 // both: terminal bytes (keystrokes or output)
	frameWindow frameType = 0x05 // client: window size changed
	frameEOF    frameType = 0x06 // client: end of input
	frameCredit frameType = 0x07 // both: that many DATA bytes were consumed; send more
	frameFlush  frameType = 0x08 // server: the remote pty discarded output; drop what is queued but the last bytes
	frameExit   frameType = 0x09 // server: the shell's exit status; the last frame
	frameClose  frameType = 0x0a // server: the session ends for another reason
	frameSync   frameType = 0x0b // client (flow2): answer with SYNCED once the input before this is in
	frameSynced frameType = 0x0c // server (flow2): the answer to a SYNC
	framePing   frameType = 0x10 // both (keepalive): answer with PONG; the cookie is echoed
	framePong   frameType = 0x11 // both (keepalive): the answer to a PING
	frameQuiet  frameType = 0x14 // client (keepalive): stopped for a while; no verdict until the next frame

	frameFlushKeys frameType = 0x1d // server (flushkeys): the characters that, typed now, make the terminal flush

	frameOptional frameType = 0x80 // the bit that makes a type optional
)

// The frames of capability exec (docs/protocol.md, section 6.2).
const (
	frameCommand frameType = 0x0d // client: the command to run, right after LOGIN
	frameStderr  frameType = 0x0e // server: the command's error output
	frameSignal  frameType = 0x0f // client: a signal for a command without a terminal
)

func (t frameType) String() string {
	switch t {
	case frameLogin:
		return "LOGIN"
	case frameAccept:
		return "ACCEPT"
	case frameRefuse:
		return "REFUSE"
	case frameData:
		return "DATA"
	case frameWindow:
		return "WINDOW"
	case frameEOF:
		return "EOF"
	case frameCredit:
		return "CREDIT"
	case frameFlush:
		return "FLUSH"
	case frameExit:
		return "EXIT"
	case frameClose:
		return "CLOSE"
	case frameSync:
		return "SYNC"
	case frameSynced:
		return "SYNCED"
	case framePing:
		return "PING"
	case framePong:
		return "PONG"
	case frameQuiet:
		return "QUIET"
	case frameCommand:
		return "COMMAND"
	case frameStderr:
		return "STDERR"
	case frameSignal:
		return "SIGNAL"
	case frameChallenge:
		return "CHALLENGE"
	case frameProof:
		return "PROOF"
	case frameResumable:
		return "RESUMABLE"
	case frameResume:
		return "RESUME"
	case frameResumed:
		return "RESUMED"
	case frameList:
		return "LIST"
	case frameSessions:
		return "SESSIONS"
	case frameReceived:
		return "RECEIVED"
	case frameFlushKeys:
		return "FLUSHKEYS"
	}
	return fmt.Sprintf("type 0x%02x", byte(t))
}

// known reports whether this version defines t.
func (t frameType) known() bool {
	return t >= frameLogin && t <= frameSignal || t == framePing || t == framePong || t == frameQuiet ||
		t == frameChallenge || t == frameProof || t >= frameResumable && t <= frameFlushKeys
}

// Which frames a side may receive, by phase.
func isLoginFrame(t frameType) bool { return t == frameLogin }

func isAnswerFrame(t frameType) bool { return t == frameAccept || t == frameRefuse }

// isClientFrame reports whether a client may send t once the session runs.
func isClientFrame(t frameType) bool {
	return t == frameData || t == frameWindow || t == frameEOF || t == frameCredit
}

// isClientFrameFlow2 is isClientFrame once capability flow2 was accepted.
func isClientFrameFlow2(t frameType) bool { return isClientFrame(t) || t == frameSync }

// isServerFrame reports whether a server may send t once the session runs.
func isServerFrame(t frameType) bool {
	switch t {
	case frameData, frameCredit, frameFlush, frameExit, frameClose:
		return true
	}
	return false
}

// isServerFrameFlow2 is isServerFrame once capability flow2 was accepted.
func isServerFrameFlow2(t frameType) bool { return isServerFrame(t) || t == frameSynced }

// withFlushKeys adds FLUSHKEYS to allowed, for a client whose capability flushkeys was accepted.
func withFlushKeys(allowed func(frameType) bool) func(frameType) bool {
	return func(t frameType) bool { return t == frameFlushKeys || allowed(t) }
}

// ErrProtocol marks a peer that broke the protocol (docs/protocol.md), as opposed to a broken
// connection: the errors of ReadRequest, Serve, Start and Wait wrap it then, so
// errors.Is(err, ErrProtocol) tells the two apart.
var ErrProtocol = errors.New("protocol error")

func protocolErrorf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrProtocol, fmt.Sprintf(format, args...))
}

// A message is one decoded frame. Which field is meaningful depends on typ.
type message struct {
	typ    frameType
	data   []byte     // DATA, STDERR, CHALLENGE, PROOF, FLUSHKEYS; aliases the frameReader's buffer
	req    *Request   // LOGIN
	cmd    *Command   // COMMAND
	signal string     // SIGNAL
	caps   []string   // ACCEPT
	text   string     // REFUSE, CLOSE
	window WindowSize // WINDOW
	credit uint32     // CREDIT
	keep   uint32     // FLUSH
	exit   ExitError  // EXIT
	cookie uint32     // PING, PONG

	resume    *ResumeRequest // RESUME
	resumable *resumable     // RESUMABLE
	resumed   resumeOffsets  // RESUMED
	sessions  []SessionInfo  // SESSIONS
	received  uint64         // RECEIVED
}

// frameReader reads frames from a peer. It copes with input split anywhere: it only uses
// io.ReadFull on r.
type frameReader struct {
	r     io.Reader // a *bufio.Reader in practice
	limit int       // largest payload accepted, if not 0 (else maxPayload)
	hdr   [headerLen]byte
	buf   []byte
}

// next reads one frame. The payload is valid until the next call. At a frame boundary a closed
// stream gives io.EOF; inside a frame, io.ErrUnexpectedEOF.
func (fr *frameReader) next() (frameType, []byte, error) {
	if _, err := io.ReadFull(fr.r, fr.hdr[:]); err != nil {
		return 0, nil, err
	}
	typ := frameType(fr.hdr[0])
	n := int(fr.hdr[1])<<16 | int(fr.hdr[2])<<8 | int(fr.hdr[3])
	limit := maxPayload
	if fr.limit > 0 {
		limit = fr.limit
	}
	if n > limit {
		return 0, nil, protocolErrorf("%v frame of %d bytes exceeds the limit of %d", typ, n, limit)
	}
	if cap(fr.buf) < n {
		fr.buf = make([]byte, max(n, min(2*cap(fr.buf), maxPayload)))
	}
	p := fr.buf[:n]
	if _, err := io.ReadFull(fr.r, p); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return 0, nil, err
	}
	return typ, p, nil
}

// readMessage reads and decodes the next frame that allowed accepts, skipping unknown optional
// frames. Any other frame is a protocol error.
func (fr *frameReader) readMessage(allowed func(frameType) bool) (message, error) {
	for {
		typ, p, err := fr.next()
		if err != nil {
			return message{}, err
		}
		m, skip, err := decodeFrame(typ, p, allowed)
		if !skip {
			return m, err
		}
	}
}

// decodeFrame decodes a frame's payload. skip is true for an unknown optional frame.
func decodeFrame(typ frameType, p []byte, allowed func(frameType) bool) (m message, skip bool, err error) {
	if !allowed(typ) {
		if typ&frameOptional != 0 {
			return message{}, true, nil // this version knows no optional frames
		}
		if typ.known() {
			return message{}, false, protocolErrorf("unexpected %v frame", typ)
		}
		return message{}, false, protocolErrorf("unknown frame %v", typ)
	}
	m.typ = typ
	switch typ {
	case frameData, frameStderr:
		m.data = p
	case frameFlushKeys:
		m.data = p
		if len(p) > maxFlushKeys {
			err = fmt.Errorf("%d characters exceed the limit of %d", len(p), maxFlushKeys)
		}
	case frameChallenge, frameProof:
		m.data, err = decodeKeyProof(typ, p)
	case frameCommand:
		m.cmd, err = decodeCommand(p)
	case frameSignal:
		m.signal, err = decodeSignal(p)
	case frameLogin:
		m.req, err = decodeRequest(p)
	case frameAccept:
		d := decoder{p: p}
		m.caps = d.capabilities()
		err = d.finish()
	case frameRefuse, frameClose:
		m.text, err = decodeReason(p)
	case frameWindow:
		d := decoder{p: p}
		m.window = d.window()
		err = d.finish()
	case frameResume:
		m.resume, err = decodeResume(p)
	case frameResumable:
		m.resumable, err = decodeResumable(p)
	case frameResumed:
		m.resumed, err = decodeResumed(p)
	case frameSessions:
		m.sessions, err = decodeSessions(p)
	case frameEOF, frameSync, frameSynced, frameQuiet, frameList:
		if len(p) != 0 {
			err = fmt.Errorf("%d bytes of payload", len(p))
		}
	case frameFlush:
		d := decoder{p: p}
		m.keep = d.u32()
		err = d.finish()
		if err == nil && m.keep > maxWindow {
			err = fmt.Errorf("keep of %d bytes exceeds the largest window", m.keep)
		}
	case frameReceived:
		d := decoder{p: p}
		m.received = d.u64()
		err = d.finish()
	case frameCredit:
		d := decoder{p: p}
		m.credit = d.u32()
		err = d.finish()
		if err == nil && m.credit == 0 {
			err = errors.New("credit of 0 bytes")
		}
	case frameExit:
		m.exit, err = decodeExit(p)
	case framePing, framePong:
		d := decoder{p: p}
		m.cookie = d.u32()
		err = d.finish()
	}
	if err != nil {
		return message{}, false, fmt.Errorf("%w: bad %v frame: %w", ErrProtocol, typ, err)
	}
	return m, false, nil
}

// appendHeader appends a frame header for a payload of n bytes (n <= maxPayload).
func appendHeader(b []byte, typ frameType, n int) []byte {
	return append(b, byte(typ), byte(n>>16), byte(n>>8), byte(n))
}

// appendFrame appends a frame with payload p.
func appendFrame(b []byte, typ frameType, p []byte) []byte {
	return append(appendHeader(b, typ, len(p)), p...)
}

// appendCredit appends a CREDIT frame for n bytes.
func appendCredit(b []byte, n int) []byte {
	return binary.BigEndian.AppendUint32(appendHeader(b, frameCredit, 4), uint32(n))
}

// appendFlush appends a FLUSH frame that keeps the last keep bytes sent before it.
func appendFlush(b []byte, keep int) []byte {
	return binary.BigEndian.AppendUint32(appendHeader(b, frameFlush, 4), uint32(keep))
}

// appendWindow appends a WINDOW frame.
func appendWindow(b []byte, w WindowSize) []byte {
	b = appendHeader(b, frameWindow, 8)
	for _, v := range [4]uint16{w.Rows, w.Cols, w.XPixel, w.YPixel} {
		b = binary.BigEndian.AppendUint16(b, v)
	}
	return b
}

// appendMessage appends m as a frame; it fails if m breaks a bound, so what it writes always
// decodes to m.
func appendMessage(b []byte, m *message) ([]byte, error) {
	start := len(b)
	b = appendHeader(b, m.typ, 0)
	var err error
	switch m.typ {
	case frameData, frameStderr:
		b = append(b, m.data...)
	case frameFlushKeys:
		if len(m.data) > maxFlushKeys {
			err = fmt.Errorf("FLUSHKEYS of %d characters exceeds the limit of %d", len(m.data), maxFlushKeys)
		} else {
			b = append(b, m.data...)
		}
	case frameChallenge, frameProof:
		if _, err = decodeKeyProof(m.typ, m.data); err == nil {
			b = append(b, m.data...)
		}
	case frameCommand:
		b, err = appendCommand(b[:start], m.cmd)
	case frameSignal:
		if _, err = decodeSignal([]byte(m.signal)); err == nil {
			b = append(b, m.signal...)
		}
	case frameLogin:
		b, err = appendRequest(b, m.req)
	case frameAccept:
		if err = checkCapabilities(m.caps); err == nil {
			b = appendCapabilities(b, m.caps)
		}
	case frameRefuse, frameClose:
		if err = checkReason(m.text); err == nil {
			b = append(b, m.text...)
		}
	case frameWindow:
		b = appendWindow(b[:start], m.window)
	case frameEOF, frameSync, frameSynced, frameQuiet, frameList:
	case frameResume:
		if m.resume == nil {
			err = errors.New("RESUME without a request")
		} else {
			b, err = appendResume(b[:start], m.resume)
		}
	case frameResumable:
		if m.resumable == nil || m.resumable.timeout == 0 {
			err = errors.New("RESUMABLE without a detach timeout")
		} else {
			b = appendResumable(b[:start], m.resumable)
		}
	case frameResumed:
		b = appendResumed(b[:start], m.resumed)
	case frameReceived:
		b = appendReceived(b[:start], m.received)
	case frameSessions:
		b, err = appendSessions(b[:start], m.sessions)
	case frameFlush:
		if m.keep > maxWindow {
			err = fmt.Errorf("FLUSH keeping %d bytes", m.keep)
		}
		b = binary.BigEndian.AppendUint32(b, m.keep)
	case frameCredit:
		if m.credit == 0 {
			err = errors.New("CREDIT of 0 bytes")
		}
		b = binary.BigEndian.AppendUint32(b, m.credit)
	case frameExit:
		b, err = appendExit(b, &m.exit)
	case framePing, framePong:
		b = binary.BigEndian.AppendUint32(b, m.cookie)
	default:
		err = fmt.Errorf("cannot encode a %v frame", m.typ)
	}
	if err != nil {
		return b[:start], err
	}
	n := len(b) - start - headerLen
	if n > maxPayload {
		return b[:start], fmt.Errorf("%v frame of %d bytes exceeds the limit of %d", m.typ, n, maxPayload)
	}
	appendHeader(b[start:start], m.typ, n)
	return b, nil
}

// decoder reads fields from a payload; the first error sticks.
type decoder struct {
	p   []byte
	err error
}

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf(format, args...)
	}
}

func (d *decoder) bytes(n int) []byte {
	if d.err != nil {
		return nil
	}
	if len(d.p) < n {
		d.fail("payload is too short")
		return nil
	}
	b := d.p[:n]
	d.p = d.p[n:]
	return b
}

func (d *decoder) u8() byte {
	if b := d.bytes(1); b != nil {
		return b[0]
	}
	return 0
}

func (d *decoder) u16() uint16 {
	if b := d.bytes(2); b != nil {
		return binary.BigEndian.Uint16(b)
	}
	return 0
}

func (d *decoder) u32() uint32 {
	if b := d.bytes(4); b != nil {
		return binary.BigEndian.Uint32(b)
	}
	return 0
}

// string16 reads a string with a 2-byte length of at most limit.
func (d *decoder) string16(what string, limit int) string {
	n := int(d.u16())
	if n > limit {
		d.fail("%s of %d bytes exceeds the limit of %d", what, n, limit)
	}
	return string(d.bytes(n))
}

func (d *decoder) window() WindowSize {
	return WindowSize{Rows: d.u16(), Cols: d.u16(), XPixel: d.u16(), YPixel: d.u16()}
}

// capabilities reads a capability list: a count byte, then names with a length byte each.
func (d *decoder) capabilities() []string {
	n := int(d.u8())
	if n > maxCaps {
		d.fail("%d capabilities exceed the limit of %d", n, maxCaps)
	}
	var caps []string
	for i := 0; i < n && d.err == nil; i++ {
		caps = append(caps, string(d.bytes(int(d.u8()))))
	}
	if d.err == nil {
		if err := checkCapabilities(caps); err != nil {
			d.fail("%v", err)
		}
	}
	return caps
}

// finish reports the first error, or trailing bytes.
func (d *decoder) finish() error {
	if d.err == nil && len(d.p) != 0 {
		d.fail("%d unexpected bytes at the end of the payload", len(d.p))
	}
	return d.err
}

func appendString16(b []byte, s string) []byte {
	return append(binary.BigEndian.AppendUint16(b, uint16(len(s))), s...)
}

func appendCapabilities(b []byte, caps []string) []byte {
	b = append(b, byte(len(caps)))
	for _, c := range caps {
		b = append(append(b, byte(len(c))), c...)
	}
	return b
}

// checkCapabilities: at most 32 distinct names of 1 to 64 bytes of printable ASCII without space.
func checkCapabilities(caps []string) error {
	if len(caps) > maxCaps {
		return fmt.Errorf("%d capabilities exceed the limit of %d", len(caps), maxCaps)
	}
	for i, c := range caps {
		if c == "" || len(c) > maxCapName {
			return fmt.Errorf("capability name of %d bytes is not 1 to %d bytes", len(c), maxCapName)
		}
		if j := indexNotIn(c, "", 0x21, 0x7e); j >= 0 {
			return fmt.Errorf("capability name %s has a forbidden byte 0x%02x", quote(c), c[j])
		}
		if slices.Contains(caps[:i], c) {
			return fmt.Errorf("capability %s appears twice", quote(c))
		}
	}
	return nil
}

// indexNotIn returns the index of the first byte of s outside lo..hi or in except, or -1.
func indexNotIn(s, except string, lo, hi byte) int {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < lo || c > hi {
			return i
		}
		for j := 0; j < len(except); j++ {
			if c == except[j] {
				return i
			}
		}
	}
	return -1
}

// quote shows a peer's string in an error: Go-quoted, so control bytes are escaped, and cut short.
func quote(s string) string {
	const limit = 40
	if len(s) > limit {
		return strconv.Quote(s[:limit]) + "..."
	}
	return strconv.Quote(s)
}
