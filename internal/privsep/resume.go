package privsep

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// The messages of resume and reattach (capability resume, docs/privsep-messages.md). A
// connection that asks to resume or reattach a session, or to list its user's sessions, is
// authenticated by its monitor exactly as a login is; then, instead of a session, its monitor
// answers a list (SESSIONS) or hands its net child one end of a socketpair (RELAY) whose other
// end reaches the session's net child (ATTACH) through the listener. No monitor reads the
// session's bytes or its resume secret: the net children carry them over the socketpair.

// SessionIDLen is the length of a session's id (session.SessionID).
const SessionIDLen = 16

// The bounds of the resume messages.
const (
	// MaxListed bounds the sessions a SESSIONS message lists (the newest: the monitor keeps
	// those).
	MaxListed = 100
	// MaxWhatLen bounds what a listed session runs (its terminal type, or a command, cut).
	MaxWhatLen = 256
	// MaxCauseLen bounds DETACHED's cause.
	MaxCauseLen = 256
)

// Resume is the client's RESUME (or its reattach, with Reattach: no secret): the session the
// client wants, by id. The net child sends it before LOGIN; the session's secret stays in the
// net children (it goes over the socketpair of RELAY with the rest of the request).
type Resume struct {
	ID       [SessionIDLen]byte
	Reattach bool
}

// List is the client's LIST: the connection asks for its user's sessions instead of a login.
// The net child sends it before LOGIN.
type List struct{}

// Resumable tells the monitor that the session accepted capability resume, with ID: the
// monitor registers it with the listener, so that a new connection of its user can find it.
type Resumable struct{ ID [SessionIDLen]byte }

// Detached tells the monitor that the session lost its connection and goes on detached; Cause
// says why (text, for the log).
type Detached struct{ Cause string }

// Attached answers an ATTACH: whether the session took the new connection (Accepted; else it
// refused it, as for a wrong secret or a session that is ending), and how many bytes of
// output it skipped (those dropped while detached).
type Attached struct {
	Accepted bool
	Skipped  uint64
}

// Sessions answers a LIST: the user's sessions that a connection may resume or take over.
type Sessions struct{ List []SessionEntry }

// A SessionEntry is one session of a SESSIONS message (what the protocol's SESSIONS frame
// shows the user).
type SessionEntry struct {
	ID       [SessionIDLen]byte
	Attached bool
	Started  uint64 // Unix seconds, not 0
	Detached uint64 // Unix seconds; 0 exactly when Attached
	Peer     string // text, at most 64 bytes: the address of its client, or "" (a Unix socket)
	What     string // text, at most MaxWhatLen bytes: its terminal type, or its command
	PID      uint32 // its shell's process id, not 0
}

// Relay carries one end of a connected Unix stream socket: the RESUME goes on through it to the
// session (the net child writes the request there, then relays the session's bytes both ways
// between the client and the socket until either ends).
type Relay struct{}

// Attach carries one end of a connected Unix stream socket over which a new connection, of the
// session's own user, asks to resume it (Reattach: to take it over without the secret). Peer
// is that connection's address (text, for the log and the old client's CLOSE reason), "" for
// a Unix socket.
type Attach struct {
	Reattach bool
	Peer     string
}

func (*Resume) Type() Type    { return TypeResume }
func (*List) Type() Type      { return TypeList }
func (*Resumable) Type() Type { return TypeResumable }
func (*Detached) Type() Type  { return TypeDetached }
func (*Attached) Type() Type  { return TypeAttached }
func (*Sessions) Type() Type  { return TypeSessions }
func (*Relay) Type() Type     { return TypeRelay }
func (*Attach) Type() Type    { return TypeAttach }

func (*Resume) files() int    { return 0 }
func (*List) files() int      { return 0 }
func (*Resumable) files() int { return 0 }
func (*Detached) files() int  { return 0 }
func (*Attached) files() int  { return 0 }
func (*Sessions) files() int  { return 0 }
func (*Relay) files() int     { return 1 }
func (*Attach) files() int    { return 1 }

func (*Resume) check() error    { return nil }
func (*List) check() error      { return nil }
func (*Resumable) check() error { return nil }
func (*Relay) check() error     { return nil }

func (m *Detached) check() error { return checkText("cause", m.Cause, MaxCauseLen, false) }

func (m *Attached) check() error {
	if !m.Accepted && m.Skipped != 0 {
		return errors.New("skipped bytes of a refused attach")
	}
	return nil
}

func (m *Attach) check() error { return checkText("peer", m.Peer, maxPeerLen, false) }

func (m *Sessions) check() error {
	if len(m.List) > MaxListed {
		return fmt.Errorf("%d sessions exceed the limit of %d", len(m.List), MaxListed)
	}
	for i, e := range m.List {
		if err := e.check(); err != nil {
			return fmt.Errorf("session %d: %w", i, err)
		}
	}
	return nil
}

func (e *SessionEntry) check() error {
	switch {
	case e.Started == 0:
		return errors.New("no start time")
	case e.Attached != (e.Detached == 0):
		return fmt.Errorf("attached %v with a detach time of %d", e.Attached, e.Detached)
	case e.PID == 0:
		return errors.New("no process id")
	}
	if err := checkText("peer", e.Peer, maxPeerLen, false); err != nil {
		return err
	}
	return checkText("what", e.What, MaxWhatLen, false)
}

func (m *Resume) appendFields(b []byte) []byte {
	return append(append(b, m.ID[:]...), boolByte(m.Reattach))
}
func (*List) appendFields(b []byte) []byte        { return b }
func (m *Resumable) appendFields(b []byte) []byte { return append(b, m.ID[:]...) }
func (m *Detached) appendFields(b []byte) []byte  { return appendBytes16(b, []byte(m.Cause)) }
func (*Relay) appendFields(b []byte) []byte       { return b }

func (m *Attached) appendFields(b []byte) []byte {
	return binary.BigEndian.AppendUint64(append(b, boolByte(m.Accepted)), m.Skipped)
}

func (m *Attach) appendFields(b []byte) []byte {
	return appendBytes16(append(b, boolByte(m.Reattach)), []byte(m.Peer))
}

func (m *Sessions) appendFields(b []byte) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(len(m.List)))
	for _, e := range m.List {
		b = append(b, e.ID[:]...)
		b = append(b, boolByte(e.Attached))
		b = binary.BigEndian.AppendUint64(b, e.Started)
		b = binary.BigEndian.AppendUint64(b, e.Detached)
		b = appendBytes16(b, []byte(e.Peer))
		b = appendBytes16(b, []byte(e.What))
		b = binary.BigEndian.AppendUint32(b, e.PID)
	}
	return b
}

func (d *decoder) u32() uint32 {
	if b := d.take(4); b != nil {
		return binary.BigEndian.Uint32(b)
	}
	return 0
}

func (d *decoder) u64() uint64 {
	if b := d.take(8); b != nil {
		return binary.BigEndian.Uint64(b)
	}
	return 0
}

func (d *decoder) id() (id [SessionIDLen]byte) {
	copy(id[:], d.take(SessionIDLen))
	return id
}

func (d *decoder) resume() *Resume { return &Resume{ID: d.id(), Reattach: d.bool("reattach")} }

func (d *decoder) attached() *Attached {
	return &Attached{Accepted: d.bool("accepted"), Skipped: d.u64()}
}

func (d *decoder) attach() *Attach {
	return &Attach{Reattach: d.bool("reattach"), Peer: d.string16("peer", maxPeerLen)}
}

func (d *decoder) sessions() *Sessions {
	n := int(d.u16())
	if n > MaxListed {
		d.fail("%d sessions exceed the limit of %d", n, MaxListed)
	}
	m := &Sessions{}
	for i := 0; i < n && d.err == nil; i++ {
		e := SessionEntry{ID: d.id(), Attached: d.bool("attached"), Started: d.u64(), Detached: d.u64()}
		e.Peer = d.string16("peer", maxPeerLen)
		e.What = d.string16("what", MaxWhatLen)
		e.PID = d.u32()
		m.List = append(m.List, e)
	}
	return m
}
