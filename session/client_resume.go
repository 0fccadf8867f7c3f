package session

import (
	"bytes"
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
	ackSent     uint64 // outReceived as last sent in a RECEIVED
	skipped     uint64 // output bytes skipped at the last resume (for Resumed)
	inReceived  uint64 // the server's count of input received, from the last RESUMED

	inSent uint64 // input DATA bytes sent since the session started
	inTail []byte // input sent, not yet credited: inTail[inToff:] ends at inSent
	inToff int

	window  WindowSize // the last size sent, sent again after a resume
	eofSent bool       // the end of input was sent: sent again after a resume

	gen       int   // counts the conns: a credit computed for an older one is not sent
	creditGen int   // the gen of the credit takeCreditLocked returned last
	lost      error // why the conn was closed, if the client closed it (the keepalive's verdict)
	connDone  bool  // closeConn was called: no conn may replace the current one

	ctx    context.Context // Reconnect's; cancelled by Close and Wait
	cancel context.CancelFunc
}

// keepInput counts p as sent, and keeps it until the server credits it if the session is
// resumable.
func (r *clientResume) keepInput(p []byte) {
	r.inSent += uint64(len(p))
	if !r.on {
		return
	}
	switch {
	case r.inToff == len(r.inTail) && len(p) < terminalRead && cap(r.inTail) > creditBatch:
		r.inTail, r.inToff = nil, 0 // the paste is over: an idle session keeps a small buffer
	case r.inToff > 0 && len(r.inTail)+len(p) > cap(r.inTail):
		// What was credited makes room, rather than a bigger buffer.
		r.inTail = r.inTail[:copy(r.inTail, r.inTail[r.inToff:])]
		r.inToff = 0
	}
	r.inTail = append(r.inTail, p...)
}

// inCredited drops n input bytes the server credited from the tail.
func (r *clientResume) inCredited(n int) {
	r.inToff = min(r.inToff+n, len(r.inTail))
	if r.inToff == len(r.inTail) {
		r.inTail, r.inToff = r.inTail[:0], 0 // kept for the paste, if one goes on (see keepInput)
	}
}

// resumableLocked reports whether a lost conn is resumed rather than the end.
func (c *Client) resumableLocked() bool { return c.res.on && c.Reconnect != nil && !c.closed }

// mayResume reports whether a lost conn is resumed, and not the end of the session.
func (c *Client) mayResume() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.resumableLocked() && !c.ended && !c.res.connDone
}

// resume gets the session back after the conn failed with cause: it calls Reconnect until a
// conn resumes the session, and returns that conn's frame reader. It fails with the loss (the
// user gave up, or the detach timeout passed) or with what ends the session (a refusal).
func (c *Client) resume(cause error) (*frameReader, error) {
	c.mu.Lock()
	if c.res.lost != nil {
		cause, c.res.lost = c.res.lost, nil
	}
	old, alive, timeout := c.conn, c.alive, c.res.timeout
	c.alive = nil
	c.mu.Unlock()
	_ = old.Close()
	alive.stop()
	loss := cause
	if _, ok := cause.(*NoAnswerError); !ok {
		loss = fmt.Errorf("session: connection lost: %w", cause)
	}
	ctx, cancel := context.WithTimeout(c.res.ctx, timeout)
	defer cancel()
	for attempt := 1; ; attempt++ {
		conn, err := c.Reconnect(ctx, attempt, cause)
		if err != nil || ctx.Err() != nil {
			if conn != nil {
				_ = conn.Close()
			}
			return nil, loss
		}
		// A path that takes the conn and carries nothing must not hold the whole timeout.
		actx, acancel := context.WithTimeout(ctx, c.resumeAttemptTimeout())
		fr, err := c.resumeOn(actx, conn)
		acancel()
		var refused *RefusedError
		switch {
		case err == nil:
			if c.Resumed != nil {
				c.mu.Lock()
				skipped := c.res.skipped
				c.mu.Unlock()
				c.Resumed(skipped) // free to call the Client's methods: no lock is held
			}
			return fr, nil
		case errors.As(err, &refused), errors.Is(err, ErrProtocol), errors.Is(err, ErrResumeUnsupported):
			return nil, err
		}
		cause = err
	}
}

// resumeAttemptTimeout bounds one resume's login: the keepalive's timeout (a path that carries
// nothing for that long is dead), or its default when the probes are off, and at least
// minResumeAttempt, for a busy server.
func (c *Client) resumeAttemptTimeout() time.Duration {
	d := c.Keepalive.Timeout()
	if d == 0 {
		d = Keepalive{}.Timeout()
	}
	return max(d, minResumeAttempt)
}

// minResumeAttempt is the shortest bound of a resume's login: a loaded machine took more than
// the 300 ms of a test's keepalive, and every try failed.
const minResumeAttempt = 10 * time.Second

// resumeOn resumes the session over conn: it logs in with RESUME (and the current window size),
// starts flow control afresh, and sends the input the server did not get and the end of input
// if it was sent. Writers wait meanwhile.
func (c *Client) resumeOn(ctx context.Context, conn net.Conn) (*frameReader, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.mu.Lock()
	if c.res.connDone || c.closed {
		c.mu.Unlock()
		_ = conn.Close()
		return nil, fmt.Errorf("session: %w", net.ErrClosed)
	}
	c.conn = conn
	req := c.Request
	req.Window = c.res.window // the server sets the terminal's size to it
	req.Resume = &ResumeRequest{ID: c.res.id, Secret: bytes.Clone(c.res.secret[:]), received: c.res.outReceived}
	c.mu.Unlock()

	br, err := c.loginUntil(ctx, conn, req)
	if err != nil {
		_ = conn.Close()
		return nil, err
	}
	c.mu.Lock()
	tailStart := c.res.inSent - uint64(len(c.res.inTail)-c.res.inToff)
	if c.res.inReceived < tailStart || c.res.inReceived > c.res.inSent {
		c.mu.Unlock()
		_ = conn.Close()
		return nil, fmt.Errorf("session: %w: the server received input up to %d, not within %d-%d", ErrProtocol, c.res.inReceived, tailStart, c.res.inSent)
	}
	c.res.inCredited(int(c.res.inReceived - tailStart))
	resend := c.res.inTail[c.res.inToff:]
	// Flow control starts afresh, as after an ACCEPT: output received and not yet credited is
	// not credited to this conn. The conns are counted here, not before the login: a credit
	// that the writer took during the login (for output of the old conn), or input that took
	// the old conn's credit then, is of the old conn too, and waits for wmu to go out.
	c.res.gen++
	c.credit = window - len(resend)
	c.consumed -= c.unacked
	c.unacked = 0
	c.flow2 = slices.Contains(c.accepted, capFlow2)
	c.keepalive = slices.Contains(c.accepted, capKeepalive)
	c.flushKeysOn, c.flushKeys = slices.Contains(c.accepted, capFlushKeys), nil // none announced on this conn yet
	if c.tune.holds > 0 {
		c.outCond.Signal() // no SYNC is answered any more: the held output goes
	}
	c.tune.syncs, c.tune.holds, c.tune.debt, c.tune.window = nil, 0, 0, window
	b := c.wbuf[:0]
	for p := resend; len(p) > 0; p = p[min(len(p), maxDataFrame):] {
		b = appendFrame(b, frameData, p[:min(len(p), maxDataFrame)])
	}
	if c.res.eofSent {
		b = appendHeader(b, frameEOF, 0)
	}
	if c.keepalive {
		c.alive = newProber(c.Keepalive, c.sendPing, c.noAnswer)
	}
	c.inCond.Broadcast()
	c.mu.Unlock()
	c.wbuf = b
	if _, err := conn.Write(b); err != nil {
		_ = conn.Close()
		return nil, err
	}
	return &frameReader{r: br}, nil
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
		c.res.inReceived = m.resumed.inReceived
		if !c.res.on { // a reattach: this client sent nothing yet
			c.res.inSent = m.resumed.inReceived
		}
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
	if _, err := c.loginUntil(ctx, c.conn, c.Request); err != nil {
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

// appendReceivedDueLocked appends a RECEIVED to b if the server accepted resume and output came
// since the last one; the caller holds c.mu and sends b. A RECEIVED rides with every CREDIT, and
// with each PING and PONG: credit comes only per batch of output consumed, and the server keeps
// what it sent until a RECEIVED, so without them an idle session's server would keep the output
// of its last burst (up to a credit batch) for as long as the session idles.
func (c *Client) appendReceivedDueLocked(b []byte) []byte {
	if !c.res.on || c.res.outReceived == c.res.ackSent {
		return b
	}
	c.res.ackSent = c.res.outReceived
	return appendReceived(b, c.res.outReceived)
}
