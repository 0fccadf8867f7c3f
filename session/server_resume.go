package session

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
)

// readResumeRequest reads the RESUME or LIST frame that follows a LOGIN that offered attach
// (the caller checked that this server accepts it), into s.req.
func (s *ServerConn) readResumeRequest() error {
	if s.req.Command != nil {
		return protocolErrorf("COMMAND with capability %s", capAttach)
	}
	m, err := s.fr.readMessage(func(t frameType) bool { return t == frameResume || t == frameList })
	if err != nil {
		return err
	}
	if m.typ == frameList {
		s.req.List = true
	} else {
		s.req.Resume = m.resume
	}
	return nil
}

// ID returns the session's id: random, the same for the life of s, and what a RESUME names to
// continue the session once Serve runs it with Detach.Timeout set.
func (s *ServerConn) ID() SessionID {
	s.idOnce.Do(func() { _, _ = rand.Read(s.id[:]) }) // crypto/rand.Read never fails
	return s.id
}

// NewServerConnWithRequest returns the server side of a session over conn whose version and
// request were read elsewhere (by another process, which relays conn to the client): it is where
// ReadRequest would leave it, and req is what ReadRequest would have returned (UnmarshalRequest
// of what that process read). Nothing may have been written to the client yet: the version byte
// goes before the answer. The ServerConn owns conn.
func NewServerConnWithRequest(conn net.Conn, req *Request) *ServerConn {
	s := NewServerConn(conn)
	s.phase, s.req = phaseRequest, req
	return s
}

// NewServerConnChallenged is NewServerConnWithRequest for a conn whose client the other process
// sent a CHALLENGE (capability keyproof, ServerConn.Challenge) before it relayed the conn: the
// version byte went with the CHALLENGE, so the answer goes without it, as Challenge's own
// ServerConn would send it. The ServerConn owns conn; it cannot challenge again.
func NewServerConnChallenged(conn net.Conn, req *Request) *ServerConn {
	s := NewServerConnWithRequest(conn, req)
	s.challenged = true
	return s
}

// MarshalRequest encodes req (its Command, Resume and List included) for
// NewServerConnWithRequest in another process, in the frames of the protocol; it fails for a
// request outside the protocol's bounds.
func MarshalRequest(req *Request) ([]byte, error) {
	b, err := appendMessage(nil, &message{typ: frameLogin, req: req})
	if err == nil && req.Command != nil {
		b, err = appendCommand(b, req.Command)
	}
	if err == nil && req.Resume != nil {
		b, err = appendResume(b, req.Resume)
	}
	if err == nil && req.List {
		b = appendHeader(b, frameList, 0)
	}
	if err == nil && req.Resume != nil && req.List {
		err = errors.New("a request both resumes and lists")
	}
	if err != nil {
		return nil, fmt.Errorf("session: marshaling the request: %w", err)
	}
	return b, nil
}

// UnmarshalRequest decodes what MarshalRequest encoded, with the checks of ReadRequest.
func UnmarshalRequest(p []byte) (*Request, error) {
	fr := frameReader{r: bufio.NewReader(bytes.NewReader(p)), limit: maxLogin}
	// Every frame is decoded, none skipped: what MarshalRequest wrote, and nothing else.
	read := func(allowed func(frameType) bool) (message, error) {
		typ, p, err := fr.next()
		if err != nil {
			return message{}, err
		}
		m, skip, err := decodeFrame(typ, p, allowed)
		if skip {
			err = protocolErrorf("unexpected %v frame", typ)
		}
		return m, err
	}
	m, err := read(isLoginFrame)
	if err != nil {
		return nil, fmt.Errorf("session: unmarshaling the request: %w", err)
	}
	req := m.req
	for err == nil {
		m, err = read(func(t frameType) bool { return t == frameCommand || t == frameResume || t == frameList })
		switch {
		case err != nil:
		case m.typ == frameCommand && req.Command == nil && req.Resume == nil && !req.List:
			req.Command = m.cmd
		case m.typ == frameResume && req.Resume == nil && !req.List:
			req.Resume = m.resume
		case m.typ == frameList && req.Resume == nil && !req.List:
			req.List = true
		default:
			err = protocolErrorf("unexpected %v frame", m.typ)
		}
	}
	if !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("session: unmarshaling the request: %w", err)
	}
	return req, nil
}

// Attach hands next, whose ReadRequest returned a Request with Resume for the session s runs
// (the caller authenticated it as the session's user), to that session, which then serves it:
// next gets ACCEPT, RESUMED and RESUMABLE, then the output the client did not receive, and the
// session goes on over next. Attach checks the secret (in constant time) unless reattach is
// set (the caller allows a reattach only to the session's own user). If a connection is attached
// still, it gets CLOSE with closeReason (say "resumed from ADDR") and is closed. If the session
// ended or is ending, was not started with Detach.Timeout, or the secret is wrong, next gets
// REFUSE "no such session" and is closed, and Attach returns ErrNoSession. Attach returns once
// next is accepted or refused; s owns next from the call on.
func (s *ServerConn) Attach(next *ServerConn, reattach bool, closeReason string) error {
	return s.attach(next, reattach, closeReason)
}

// SendSessions answers a request whose List was set (ReadRequest) with list, in place of an
// ACCEPT, and closes the conn. Texts outside printable ASCII are made so, and cut to 128 bytes;
// at most 256 sessions are sent (the first).
func (s *ServerConn) SendSessions(list []SessionInfo) error {
	if s.phase != phaseRequest || !s.req.List {
		_ = s.Close()
		return errors.New("session: SendSessions needs a LIST request that nobody answered")
	}
	s.phase = phaseAnswered
	clean := make([]SessionInfo, 0, min(len(list), maxSessionsListed))
	for _, si := range list[:min(len(list), maxSessionsListed)] {
		clean = append(clean, sanitizeSessionInfo(si))
	}
	b, err := appendSessions(s.answerPrefix(), clean)
	if err != nil {
		_ = s.Close()
		return fmt.Errorf("session: %w", err)
	}
	if err := s.farewell(b); err != nil {
		return fmt.Errorf("session: sending the sessions: %w", err)
	}
	return nil
}

// acceptsResume reports whether Serve accepts capability resume: it is offered, this server
// supports it, Detach turns it on, and the session runs on a terminal.
func (s *ServerConn) acceptsResume() bool {
	return s.Detach.Timeout > 0 && !s.pipedCommand() && slices.Contains(s.capabilities, capResume) &&
		slices.Contains(s.req.Capabilities, capResume)
}

// attach is Attach.
func (s *ServerConn) attach(next *ServerConn, reattach bool, closeReason string) error {
	if next.phase != phaseRequest || next.req.Resume == nil {
		_ = next.Close()
		return errors.New("session: Attach needs a RESUME request that nobody answered")
	}
	ss := s.session()
	if ss == nil || next.req.Resume.ID != s.ID() {
		_ = next.Refuse(reasonNoSession)
		return ErrNoSession
	}
	return ss.attach(next, reattach, closeReason)
}
