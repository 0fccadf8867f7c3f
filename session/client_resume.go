package session

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"time"
)

// ListSessions asks the server on conn for the sessions of req.User that it may resume or
// reattach (capability attach): it logs in with req (its Command and Resume ignored), and
// returns the server's list. It closes conn. A refusal is a *RefusedError; a server that does
// not resume sessions (an older one) gives ErrResumeUnsupported. ctx bounds it, as it bounds
// Start. To log in with a key the server may ask to prove (capability keyproof), use a Client
// with a Signer and its ListSessions method.
func ListSessions(ctx context.Context, conn net.Conn, req Request) ([]SessionInfo, error) {
	return NewClient(conn, req).ListSessions(ctx)
}

// ListSessions is the package's ListSessions with the Client's conn, Request and Signer. The
// Client cannot be started after it.
func (c *Client) ListSessions(ctx context.Context) ([]SessionInfo, error) {
	return c.list(ctx)
}

// clientResume is a Client's state of capability resume. The fields are under the Client's mu.
type clientResume struct {
	on      bool // the server accepted resume: it sent RESUMABLE
	id      SessionID
	secret  [ResumeSecretSize]byte
	timeout time.Duration // the server's detach timeout

	outReceived uint64 // output DATA bytes received since the session started
	skipped     uint64 // output bytes skipped at the last resume (for Resumed)
}

// readResumeAnswer reads what follows an ACCEPT when resume is involved: RESUMED answering a
// RESUME, and RESUMABLE when the server accepted resume.
func (c *Client) readResumeAnswer(fr *frameReader, req *Request) error {
	if req.Resume != nil || req.List {
		if !slices.Contains(c.accepted, capAttach) {
			return ErrResumeUnsupported
		}
	}
	if req.Resume != nil {
		m, err := fr.readMessage(func(t frameType) bool { return t == frameResumed })
		if err != nil {
			return fmt.Errorf("session: reading the server's answer: %w", err)
		}
		if m.resumed.outFrom < req.Resume.received {
			return fmt.Errorf("session: %w: the server resumes output at %d, before %d", ErrProtocol, m.resumed.outFrom, req.Resume.received)
		}
		c.mu.Lock()
		c.res.outReceived = m.resumed.outFrom
		c.res.skipped = m.resumed.skipped
		c.mu.Unlock()
	}
	if !slices.Contains(c.accepted, capResume) {
		return nil
	}
	m, err := fr.readMessage(func(t frameType) bool { return t == frameResumable })
	if err != nil {
		return fmt.Errorf("session: reading the server's answer: %w", err)
	}
	c.mu.Lock()
	c.res.on = true
	c.res.id, c.res.secret = m.resumable.id, m.resumable.secret
	c.res.timeout = time.Duration(m.resumable.timeout) * time.Second
	c.mu.Unlock()
	return nil
}

// list is ListSessions.
func (c *Client) list(ctx context.Context) ([]SessionInfo, error) {
	c.mu.Lock()
	if c.started {
		c.mu.Unlock()
		return nil, errors.New("session: already started")
	}
	c.started = true
	c.Request.List, c.Request.Resume = true, nil
	c.mu.Unlock()
	defer func() { _ = c.closeConn() }()
	if _, err := c.loginUntil(ctx); err != nil {
		return nil, err
	}
	if c.sessions == nil { // an ACCEPT: it cannot come with attach accepted
		return nil, ErrResumeUnsupported
	}
	return c.sessions, nil
}

// Resumable reports whether the session can be resumed (the server accepted capability resume),
// with its id and the server's detach timeout: how long it waits for a resume.
func (c *Client) Resumable() (id SessionID, timeout time.Duration, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.res.id, c.res.timeout, c.res.on
}
