package session

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"time"
)

// The capabilities of resume and reattach (docs/protocol.md, section 6.4). A client offers
// capResume on a login it may resume later: the server that accepts it sends RESUMABLE. A client
// that resumes, reattaches or lists offers capAttach too, and sends RESUME or LIST right after
// the LOGIN; an older server does not accept capAttach, and fails on the frame.
const (
	capResume = "resume"
	capAttach = "attach"
)

// The frames of capabilities resume and attach (docs/protocol.md, section 6.4).
const (
	frameResumable frameType = 0x17 // server: after ACCEPT and RESUMED: the session's id, a secret, the detach timeout
	frameResume    frameType = 0x18 // client (attach): right after LOGIN: resume or reattach a session
	frameResumed   frameType = 0x19 // server: right after ACCEPT, answering RESUME: the offsets
	frameList      frameType = 0x1a // client (attach): right after LOGIN: list the user's sessions
	frameSessions  frameType = 0x1b // server: the answer to LIST, in place of ACCEPT; the last frame
	frameReceived  frameType = 0x1c // client (resume): the output bytes received; goes with each CREDIT
)

// ResumeSecretSize is the size of a resume secret.
const ResumeSecretSize = 32

// Bounds of the resume frames (docs/protocol.md, "Limits at a glance").
const (
	maxSessionsListed = 256 // sessions in a SESSIONS frame
	maxSessionText    = 128 // bytes of a SESSIONS entry's peer address or what it runs
	maxDetachTimeout  = 1<<32 - 1
)

// DefaultDetachBuffer is the output a detached session keeps when Detach.Buffer is 0: 1 MiB.
const DefaultDetachBuffer = 1 << 20

// SessionID names a session that may be resumed: random, fixed when the session starts.
type SessionID [16]byte

// String returns the id as 32 lowercase hex digits.
func (id SessionID) String() string { return hex.EncodeToString(id[:]) }

// Short returns the first 8 hex digits of the id: enough to tell a user's sessions apart, for
// lists and logs.
func (id SessionID) Short() string { return id.String()[:8] }

// ParseSessionID parses the 32 hex digits of String.
func ParseSessionID(s string) (SessionID, error) {
	var id SessionID
	if len(s) != 2*len(id) {
		return id, fmt.Errorf("session: a session id has %d hex digits, not %d", 2*len(id), len(s))
	}
	if _, err := hex.Decode(id[:], []byte(s)); err != nil {
		return id, fmt.Errorf("session: bad session id: %w", err)
	}
	return id, nil
}

// ResumeRequest asks to continue a running session instead of starting one (capability
// attach): Request.Resume. A Client sets it itself when it resumes after a lost connection; a
// caller sets it, without a Secret, to reattach (take over) a session of the same user, whose ID
// it found with ListSessions.
type ResumeRequest struct {
	ID SessionID
	// Secret is the one the server sent for the connection that was lost (ResumeSecretSize
	// bytes); nil for a reattach, which the server allows only to the session's own user.
	Secret []byte

	received uint64 // output bytes the client received; 0 for a reattach
}

// SessionInfo describes one of a user's sessions: what LIST answers.
type SessionInfo struct {
	ID       SessionID
	Attached bool      // a connection is attached to it now
	Started  time.Time // when it started (second precision on the wire)
	Detached time.Time // when its connection was lost; zero while attached
	Peer     string    // the address of its client (the last one), printable ASCII
	What     string    // what it runs: the terminal type, or the command, printable ASCII
	PID      int       // the shell's process id; 0 if unknown
}

// ErrResumeUnsupported is the error of Client.Start with a Request.Resume, and of ListSessions,
// against a server that does not resume sessions (an older one).
var ErrResumeUnsupported = errors.New("session: the server cannot resume or reattach sessions")

// ErrNoSession is ServerConn.Attach's error when the session cannot be resumed: it ended or is
// ending, or the secret is wrong. The client got REFUSE "no such session" then.
var ErrNoSession = errors.New("session: no such session")

// ReasonNoSession is the refusal of every RESUME that cannot be served, whatever the reason
// (also a daemon's own, before the session is found): it tells an attacker nothing.
const ReasonNoSession = "no such session"

const reasonNoSession = ReasonNoSession

// Detach configures resume on the server side (capability resume): how long a session whose
// connection was lost waits for its client to come back, and how much output it keeps meanwhile.
// The zero value resumes nothing: a lost connection ends the session, as without the capability.
type Detach struct {
	// Timeout is how long a detached session waits for a resume; then it ends as a lost
	// connection does (the shell gets Hangup). 0 turns resume off: the capability is not
	// accepted. It is sent to the client in whole seconds (at most 2^32-1).
	Timeout time.Duration

	// Buffer bounds the output kept while detached, in bytes; beyond it the oldest is dropped
	// and counted, and the resuming client is told how much it missed. 0 means
	// DefaultDetachBuffer.
	Buffer int

	// Detached, if set, is called when the session detaches, with the cause (the connection's
	// error, or a *NoAnswerError); Attached when Attach gave it a new connection, with the new
	// peer's address and the output bytes the client missed (a connection that was still
	// attached and was taken over does not count as detached). They are called from the
	// session's goroutines, and must not block for long or call the ServerConn.
	Detached func(cause error)
	Attached func(peer string, skipped uint64)
}

// resumeOffsets is the payload of RESUMED.
type resumeOffsets struct {
	inReceived uint64 // input bytes the server received: the client re-sends from there
	outFrom    uint64 // the output offset the server re-sends from
	skipped    uint64 // output bytes dropped before outFrom that the client did not receive
}

// resumable is the payload of RESUMABLE.
type resumable struct {
	id      SessionID
	secret  [ResumeSecretSize]byte
	timeout uint32 // seconds
}

func appendResumable(b []byte, r *resumable) []byte {
	b = appendHeader(b, frameResumable, len(r.id)+len(r.secret)+4)
	b = append(append(b, r.id[:]...), r.secret[:]...)
	return binary.BigEndian.AppendUint32(b, r.timeout)
}

func decodeResumable(p []byte) (*resumable, error) {
	d := decoder{p: p}
	r := &resumable{}
	copy(r.id[:], d.bytes(len(r.id)))
	copy(r.secret[:], d.bytes(len(r.secret)))
	r.timeout = d.u32()
	if err := d.finish(); err != nil {
		return nil, err
	}
	if r.timeout == 0 {
		return nil, errors.New("detach timeout of 0 seconds")
	}
	return r, nil
}

func appendResume(b []byte, r *ResumeRequest) ([]byte, error) {
	if len(r.Secret) != 0 && len(r.Secret) != ResumeSecretSize {
		return b, fmt.Errorf("resume secret of %d bytes, not 0 or %d", len(r.Secret), ResumeSecretSize)
	}
	b = appendHeader(b, frameResume, len(r.ID)+1+len(r.Secret)+8)
	b = append(b, r.ID[:]...)
	b = append(append(b, byte(len(r.Secret))), r.Secret...)
	return binary.BigEndian.AppendUint64(b, r.received), nil
}

func decodeResume(p []byte) (*ResumeRequest, error) {
	d := decoder{p: p}
	r := &ResumeRequest{}
	copy(r.ID[:], d.bytes(len(r.ID)))
	switch n := int(d.u8()); n {
	case 0:
	case ResumeSecretSize:
		r.Secret = bytes.Clone(d.bytes(n))
	default:
		d.fail("resume secret of %d bytes, not 0 or %d", n, ResumeSecretSize)
	}
	r.received = d.u64()
	if err := d.finish(); err != nil {
		return nil, err
	}
	return r, nil
}

// withReceived returns allowed with RECEIVED: a client sends it once resume was accepted.
func withReceived(allowed func(frameType) bool) func(frameType) bool {
	return func(t frameType) bool { return t == frameReceived || allowed(t) }
}

// appendReceived appends a RECEIVED frame: n output bytes received since the session started.
func appendReceived(b []byte, n uint64) []byte {
	return binary.BigEndian.AppendUint64(appendHeader(b, frameReceived, 8), n)
}

func appendResumed(b []byte, o resumeOffsets) []byte {
	b = appendHeader(b, frameResumed, 24)
	b = binary.BigEndian.AppendUint64(b, o.inReceived)
	b = binary.BigEndian.AppendUint64(b, o.outFrom)
	return binary.BigEndian.AppendUint64(b, o.skipped)
}

func decodeResumed(p []byte) (resumeOffsets, error) {
	d := decoder{p: p}
	o := resumeOffsets{inReceived: d.u64(), outFrom: d.u64(), skipped: d.u64()}
	if err := d.finish(); err != nil {
		return resumeOffsets{}, err
	}
	if o.skipped > o.outFrom {
		return resumeOffsets{}, fmt.Errorf("%d bytes skipped before offset %d", o.skipped, o.outFrom)
	}
	return o, nil
}

// appendSessions appends a SESSIONS frame; the entries must pass checkSessionInfo.
func appendSessions(b []byte, list []SessionInfo) ([]byte, error) {
	if len(list) > maxSessionsListed {
		return b, fmt.Errorf("%d sessions exceed the limit of %d", len(list), maxSessionsListed)
	}
	start := len(b)
	b = appendHeader(b, frameSessions, 0)
	b = binary.BigEndian.AppendUint16(b, uint16(len(list)))
	for i := range list {
		si := &list[i]
		if err := checkSessionInfo(si); err != nil {
			return b[:start], err
		}
		b = append(b, si.ID[:]...)
		state := byte(0)
		if si.Attached {
			state = 1
		}
		b = append(b, state)
		b = binary.BigEndian.AppendUint64(b, unixSeconds(si.Started))
		b = binary.BigEndian.AppendUint64(b, unixSeconds(si.Detached))
		b = appendString16(b, si.Peer)
		b = appendString16(b, si.What)
		b = binary.BigEndian.AppendUint32(b, uint32(si.PID))
	}
	appendHeader(b[start:start], frameSessions, len(b)-start-headerLen)
	return b, nil
}

func decodeSessions(p []byte) ([]SessionInfo, error) {
	d := decoder{p: p}
	n := int(d.u16())
	if n > maxSessionsListed {
		d.fail("%d sessions exceed the limit of %d", n, maxSessionsListed)
	}
	list := []SessionInfo{}
	for i := 0; i < n && d.err == nil; i++ {
		var si SessionInfo
		copy(si.ID[:], d.bytes(len(si.ID)))
		switch st := d.u8(); st {
		case 0, 1:
			si.Attached = st == 1
		default:
			d.fail("session state %d is not 0 or 1", st)
		}
		si.Started = d.unixTime()
		si.Detached = d.unixTime()
		si.Peer = d.string16("peer address", maxSessionText)
		si.What = d.string16("what a session runs", maxSessionText)
		si.PID = int(d.u32())
		if d.err == nil {
			if err := checkSessionInfo(&si); err != nil {
				d.fail("%v", err)
			}
		}
		list = append(list, si)
	}
	if err := d.finish(); err != nil {
		return nil, err
	}
	return list, nil
}

// checkSessionInfo checks the bounds of a SESSIONS entry.
func checkSessionInfo(si *SessionInfo) error {
	for _, f := range []struct{ what, s string }{{"peer address", si.Peer}, {"what a session runs", si.What}} {
		if len(f.s) > maxSessionText {
			return fmt.Errorf("%s of %d bytes exceeds the limit of %d", f.what, len(f.s), maxSessionText)
		}
		if i := indexNotIn(f.s, "", 0x20, 0x7e); i >= 0 {
			return fmt.Errorf("%s has a forbidden byte 0x%02x", f.what, f.s[i])
		}
	}
	if si.PID < 0 || int64(si.PID) > 1<<32-1 {
		return fmt.Errorf("process id %d out of range", si.PID)
	}
	if si.Attached && !si.Detached.IsZero() {
		return errors.New("an attached session with a detach time")
	}
	return nil
}

// sanitizeSessionInfo makes si fit the bounds of SESSIONS: it replaces bytes outside printable
// ASCII with '?', cuts the texts, and a PID out of range to 0.
func sanitizeSessionInfo(si SessionInfo) SessionInfo {
	clean := func(s string) string {
		b := []byte(s[:min(len(s), maxSessionText)])
		for i, c := range b {
			if c < 0x20 || c > 0x7e {
				b[i] = '?'
			}
		}
		return string(b)
	}
	si.Peer, si.What = clean(si.Peer), clean(si.What)
	if si.PID < 0 || int64(si.PID) > 1<<32-1 {
		si.PID = 0
	}
	if si.Attached {
		si.Detached = time.Time{}
	}
	si.Started, si.Detached = fromUnixSeconds(unixSeconds(si.Started)), fromUnixSeconds(unixSeconds(si.Detached))
	return si
}

// unixSeconds is t in seconds since 1970, 0 for the zero time (or a time before 1970).
func unixSeconds(t time.Time) uint64 {
	if t.IsZero() || t.Unix() <= 0 || t.Unix() > maxUnixSeconds {
		return 0
	}
	return uint64(t.Unix())
}

// maxUnixSeconds bounds the times of SESSIONS: far beyond any real one, and in time.Time's range.
const maxUnixSeconds = 1 << 40

func fromUnixSeconds(s uint64) time.Time {
	if s == 0 || s > maxUnixSeconds {
		return time.Time{}
	}
	return time.Unix(int64(s), 0)
}

// unixTime reads a time in seconds since 1970; 0 is the zero time.
func (d *decoder) unixTime() time.Time {
	s := d.u64()
	if s > maxUnixSeconds {
		d.fail("time %d out of range", s)
	}
	return fromUnixSeconds(s)
}

func (d *decoder) u64() uint64 {
	if b := d.bytes(8); b != nil {
		return binary.BigEndian.Uint64(b)
	}
	return 0
}
