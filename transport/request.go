package transport

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// A MailboxError is a server's answer to a mailbox request (or to HELP)
// that grants nothing: a TCPMUX refusal, "-" and a reason (Refused is true),
// or a line that is no TCPMUX reply at all (Refused is false), such as the
// banner of a server of another protocol on that port ("SSH-2.0-...").
type MailboxError struct {
	// Name is the requested name ("HELP" for ListMailboxes).
	Name string
	// Reply is the server's line as received, without its CRLF, at most
	// 512 bytes. It comes from the peer: escape it before showing it.
	Reply string
	// Refused reports a TCPMUX refusal: Reply starts with "-".
	Refused bool
	// Reason says why, safe to show: for a refusal the server's text after
	// "-", otherwise "not a TCPMUX reply: " and Reply quoted; bytes that
	// are not printable ASCII are escaped.
	Reason string
}

func newMailboxError(name, reply string) *MailboxError {
	e := &MailboxError{Name: name, Reply: reply, Refused: strings.HasPrefix(reply, "-")}
	if e.Refused {
		e.Reason = printable(reply[1:])
	} else {
		e.Reason = "not a TCPMUX reply: " + strconv.QuoteToASCII(reply)
	}
	return e
}

func (e *MailboxError) Error() string {
	if e.Refused {
		return fmt.Sprintf("transport: mailbox %q refused: %s", e.Name, e.Reason)
	}
	return fmt.Sprintf("transport: mailbox %q: %s", e.Name, e.Reason)
}

// DialMailbox dials address (see Dialer.Dial for its forms) and asks for
// the mailbox name, as RequestMailbox does; the returned Conn keeps the text
// of the server's "+" reply (ReplyText). A name that is not valid gives an
// error matching ErrInvalidName, without dialing; a server's answer other
// than "+" is a *MailboxError. On failure it closes the conn. ctx bounds
// the dial and the name exchange.
func (d *Dialer) DialMailbox(ctx context.Context, address, name string) (*Conn, error) {
	if err := checkRequestName(name); err != nil {
		return nil, err
	}
	c, err := d.Dial(ctx, address)
	if err != nil {
		return nil, err
	}
	text, err := requestMailbox(ctx, c, name)
	if err != nil {
		_ = c.Close()
		return nil, err
	}
	return &Conn{conn: c, reply: text}, nil
}

// DialMailboxEarly dials address (see Dialer.Dial for its forms) and sends
// the request for the mailbox name, as DialMailbox does, but returns without
// waiting for the server's reply: the conn's first Read (or WriteTo) reads
// it, and fails with a *MailboxError for an answer other than "+" (the conn
// is then of no more use: close it). What the caller writes meanwhile
// follows the request at once, so a TLS ClientHello written next travels in
// the same round trip as the name, and a login through a mailbox costs one
// round trip less. Use it when the next step is a write whose answer the
// caller reads anyway, such as Client's handshake (whose error then wraps the
// *MailboxError). A name that is not valid gives an error matching
// ErrInvalidName, without dialing.
//
// ctx bounds the dial, the request and the wait for the reply in the first
// Read, which fails with an error matching ctx's error when ctx is done
// first: keep ctx alive until that Read has returned.
func (d *Dialer) DialMailboxEarly(ctx context.Context, address, name string) (*Conn, error) {
	if err := checkRequestName(name); err != nil {
		return nil, err
	}
	c, err := d.Dial(ctx, address)
	if err != nil {
		return nil, err
	}
	err = withContext(ctx, c, func() error {
		_, err := io.WriteString(c, name+"\r\n")
		return err
	})
	if err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("transport: request mailbox %q: %w", name, err)
	}
	conn := &Conn{conn: c}
	conn.early.ctx = ctx
	conn.early.name = name
	conn.early.pending.Store(true)
	return conn, nil
}

// earlyReply is the state of a Conn of DialMailboxEarly whose reply is unread.
type earlyReply struct {
	pending atomic.Bool     // the reply is not read yet, or it failed
	mu      sync.Mutex      // serializes reading it
	ctx     context.Context // bounds the wait for it; nil once it is read
	name    string          // the requested name
	err     error           // the reply's error, returned by every Read
}

// readEarlyReply reads the server's reply to DialMailboxEarly's request, once; every later call
// returns the same error, if there was one.
func (c *Conn) readEarlyReply() error {
	e := &c.early
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.pending.Load() || e.err != nil {
		return e.err
	}
	var (
		line string
		ok   bool
	)
	err := withContext(e.ctx, c.conn, func() (err error) {
		line, ok, err = readReply(c.conn)
		return err
	})
	e.ctx = nil // the caller's, which it may cancel now
	switch {
	case err != nil:
		e.err = fmt.Errorf("transport: request mailbox %q: %w", e.name, err)
	case !ok || line[0] == '-':
		e.err = newMailboxError(e.name, line)
	default:
		c.mu.Lock()
		c.reply = line[1:]
		c.mu.Unlock()
		e.pending.Store(false)
	}
	return e.err
}

// DialMailbox dials address and asks for the mailbox name with the zero
// Dialer: over the system's sockets (see Dialer.DialMailbox).
func DialMailbox(ctx context.Context, address, name string) (*Conn, error) {
	var d Dialer
	return d.DialMailbox(ctx, address, name)
}

func checkRequestName(name string) error {
	if !ValidMailboxName(name) || strings.EqualFold(name, "help") {
		return fmt.Errorf("transport: request %q: %w", name, ErrInvalidName)
	}
	return nil
}

// RequestMailbox runs the client half of the name exchange on conn: it
// sends name and CRLF and reads the reply. A name that is not valid gives an
// error matching ErrInvalidName; a reply other than "+" is a *MailboxError,
// returned as soon as its first wrong byte arrives. It reads no byte past
// the reply, so whatever the mailbox's owner sends next stays in conn. ctx
// bounds the exchange; RequestMailbox clears the conn's deadline when it
// returns. It does not close conn. (DialMailbox also keeps the text of the
// server's "+" reply.)
func RequestMailbox(ctx context.Context, conn net.Conn, name string) error {
	if err := checkRequestName(name); err != nil {
		return err
	}
	_, err := requestMailbox(ctx, conn, name)
	return err
}

// requestMailbox runs the name exchange on conn and returns the text after
// "+" of the server's reply.
func requestMailbox(ctx context.Context, conn net.Conn, name string) (string, error) {
	var (
		line string
		ok   bool
	)
	err := withContext(ctx, conn, func() error {
		if _, err := io.WriteString(conn, name+"\r\n"); err != nil {
			return err
		}
		var err error
		line, ok, err = readReply(conn)
		return err
	})
	switch {
	case err != nil:
		return "", fmt.Errorf("transport: request mailbox %q: %w", name, err)
	case !ok || line[0] == '-':
		return "", newMailboxError(name, line)
	}
	return line[1:], nil
}

// readReply reads the server's answer to a mailbox request, a line of "+"
// or "-", text and CRLF (RFC 1078), and returns it without its CRLF, ok
// true. Of such a line it reads no byte more: each read asks for no more
// than the shortest possible rest of the line, so "+" CRLF takes one read.
//
// A line that cannot be a reply is returned as read, ok false, as soon as
// its first wrong byte arrives, so a garbled "+" CRLF never waits for bytes
// that will not come: a first byte other than "+" or "-", a CR or LF other
// than the final CRLF, or more than maxReplyLen bytes. After a wrong first
// byte the conn is of no more use, and the rest of the line is read in big
// reads, so that a banner of another protocol ("SSH-2.0-...") comes whole;
// if r has a read deadline, those reads wait bannerGrace at most. err is a
// read's error before the line was known.
func readReply(r io.Reader) (line string, ok bool, err error) {
	buf := make([]byte, maxReplyLen)
	n := 0
	for {
		want := 2 // the shortest rest of a line: CRLF
		switch {
		case n == 0:
			want = 3 // "+" CRLF
		case buf[n-1] == '\r':
			want = 1
		}
		want = min(want, len(buf)-n)
		m, rerr := r.Read(buf[n : n+want])
		n += m
		done, bad := scanReply(buf[:n])
		switch {
		case done:
			return string(buf[:n-2]), true, nil
		case bad && rerr == nil && buf[0] != '+' && buf[0] != '-':
			return readRestOfLine(r, buf, n), false, nil
		case bad:
			return string(trimEOL(buf[:n])), false, nil
		case rerr != nil:
			if rerr == io.EOF {
				rerr = io.ErrUnexpectedEOF
			}
			return "", false, rerr
		case n == len(buf):
			return string(buf), false, nil // too long
		}
	}
}

// scanReply checks b, the bytes of a reply read so far: done when b is a
// whole reply line, bad when b cannot start one.
func scanReply(b []byte) (done, bad bool) {
	if len(b) == 0 {
		return false, false
	}
	if b[0] != '+' && b[0] != '-' {
		return false, true
	}
	for i := 1; i < len(b); i++ {
		switch {
		case b[i] == '\r' && i+1 < len(b) && b[i+1] != '\n':
			return false, true
		case b[i] == '\n':
			return b[i-1] == '\r' && i == len(b)-1, b[i-1] != '\r' || i != len(b)-1
		}
	}
	return false, false
}

// bannerGrace bounds the wait for the rest of a line that is not a reply: a
// server that greets first (an sshd) sends its banner in one write, which
// has arrived by then.
const bannerGrace = 100 * time.Millisecond

// readRestOfLine reads into buf, which holds n bytes, until a LF, a full
// buf, an error or bannerGrace from now, and returns the first line without
// its line end.
func readRestOfLine(r io.Reader, buf []byte, n int) string {
	if d, ok := r.(interface{ SetReadDeadline(time.Time) error }); ok && bytes.IndexByte(buf[:n], '\n') < 0 {
		_ = d.SetReadDeadline(time.Now().Add(bannerGrace)) // withContext clears it
	}
	for n < len(buf) && bytes.IndexByte(buf[:n], '\n') < 0 {
		m, err := r.Read(buf[n:])
		n += m
		if err != nil {
			break
		}
	}
	line := buf[:n]
	if i := bytes.IndexByte(line, '\n'); i >= 0 {
		line = line[:i+1]
	}
	return string(trimEOL(line))
}

// trimEOL cuts a final LF, CRLF or CR off b.
func trimEOL(b []byte) []byte {
	b = bytes.TrimSuffix(b, []byte("\n"))
	return bytes.TrimSuffix(b, []byte("\r"))
}

// printable escapes bytes of s that are not printable ASCII, so a peer's
// text cannot drive a terminal.
func printable(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= ' ' && c < 0x7f {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, `\x%02x`, c)
		}
	}
	return b.String()
}

// ListMailboxes asks the Mux at address (see Dialer.Dial for its forms)
// for the names of its mailboxes (HELP). An answer that is not a list of
// names, such as a "-" refusal, is a *MailboxError.
func (d *Dialer) ListMailboxes(ctx context.Context, address string) ([]string, error) {
	c, err := d.Dial(ctx, address)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return listMailboxes(ctx, c)
}

// ListMailboxes asks the Mux at address for the names of its mailboxes
// with the zero Dialer: over the system's sockets (see
// Dialer.ListMailboxes).
func ListMailboxes(ctx context.Context, address string) ([]string, error) {
	var d Dialer
	return d.ListMailboxes(ctx, address)
}

// listMailboxes runs HELP on c.
func listMailboxes(ctx context.Context, c net.Conn) ([]string, error) {
	var data []byte
	err := withContext(ctx, c, func() error {
		if _, err := io.WriteString(c, "HELP\r\n"); err != nil {
			return err
		}
		var err error
		data, err = io.ReadAll(io.LimitReader(c, maxHelpLen+1))
		if err == nil && len(data) > maxHelpLen {
			err = fmt.Errorf("listing longer than %d bytes", maxHelpLen)
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("transport: list mailboxes: %w", err)
	}
	return parseHelp(data)
}

// parseHelp parses a HELP listing: one name per line. A line that is not a
// mailbox name, such as a "-" refusal, makes the listing a *MailboxError.
func parseHelp(data []byte) ([]string, error) {
	var names []string
	for line := range strings.Lines(string(data)) {
		name := strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
		if name == "" {
			continue
		}
		if !ValidMailboxName(name) {
			return nil, newMailboxError("HELP", name[:min(len(name), maxReplyLen)])
		}
		names = append(names, name)
	}
	return names, nil
}

// withContext runs f, which does I/O on c, so that ctx's deadline and
// cancellation interrupt it; afterwards c has no deadline.
func withContext(ctx context.Context, c net.Conn, f func() error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d, ok := ctx.Deadline(); ok {
		if err := c.SetDeadline(d); err != nil {
			return err
		}
	}
	interrupted := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		_ = c.SetDeadline(time.Unix(1, 0)) // in the past: pending I/O fails
		close(interrupted)
	})
	err := f()
	if !stop() {
		<-interrupted
		return ctx.Err()
	}
	if err != nil {
		if cerr := ctx.Err(); cerr != nil {
			return cerr
		}
		// c may see ctx's deadline pass a moment before ctx does.
		if d, ok := ctx.Deadline(); ok && errors.Is(err, os.ErrDeadlineExceeded) && !time.Now().Before(d) {
			return context.DeadlineExceeded
		}
	}
	if derr := c.SetDeadline(time.Time{}); err == nil && derr != nil {
		err = derr
	}
	return err
}
