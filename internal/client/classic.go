package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/rlogin-go/rlogin/session"
	"github.com/rlogin-go/rlogin/session/classic"
)

// Privileged source ports, as rresvport(3) picks them: classic servers trust .rhosts only for
// connections from these (they prove the client runs as root on its host, for what that is
// worth).
const (
	privPortHigh = 1023
	privPortLow  = 512
)

// plaintextWarning is printed before every classic login.
const plaintextWarning = "rlogin: warning: classic rlogin (-c) is not encrypted: your password and the whole session " +
	"cross the network in plaintext, and the server's identity is not checked\n"

// runClassic is a run with -c: the classic protocol of RFC 1282 (package session/classic), from a
// privileged port if one can be bound, then the same terminal handling, escapes and signals as a
// secure session.
func (r *runner) runClassic(ctx context.Context) int {
	fmt.Fprint(r.stderr, plaintextWarning)
	local, err := r.localUser()
	if err != nil {
		return r.fail(err)
	}
	user := r.opts.User
	if user == "" {
		user = local
	}
	if r.inTTY {
		// Made now, so that the client's flow-control callback has it from the start.
		r.tty = newRawTerminal(r.inFd)
		r.tty.localFlow = !r.opts.EightBit
		r.tty.flowOn = true
	}
	sess, stdin, err := r.loginClassic(ctx, local, user)
	if err != nil {
		return r.fail(err)
	}
	r.sess = sess
	return r.interact(ctx, stdin)
}

// loginClassic dials and sends the handshake; it returns the started client.
func (r *runner) loginClassic(ctx context.Context, local, user string) (*classic.Client, io.WriteCloser, error) {
	req, err := r.classicRequest(local, user)
	if err != nil {
		return nil, nil, err
	}
	hostport := net.JoinHostPort(r.opts.Host, strconv.Itoa(r.opts.Port))
	r.debugf("connecting to %s (classic rlogin)", hostport)
	dctx, cancel := context.WithTimeout(ctx, r.connectTimeout())
	conn, err := r.dialClassic(dctx, hostport)
	cancel()
	if err != nil {
		return nil, nil, &connectError{msg: dialMessage(r.opts.Host, r.opts.Port, err), err: err}
	}
	r.debugf("connected from %s to %s; logging in as %s (local user %s)", conn.LocalAddr(), conn.RemoteAddr(), user, local)
	c := r.newClassicClient(conn, req)
	stdin, _ := c.StdinPipe()
	if err := startLogin(r.opts.Host, r.connectTimeout(), func() error { return c.Start(ctx) }, c.Close, classicRefusal); err != nil {
		// An SSH server greets first; the classic client takes the greeting's "S" for a refusal
		// (any byte but NUL) and the rest of the line for its reason.
		var refused *classic.RefusedError
		if errors.As(err, &refused) && isSSHBanner("S"+refused.Reason) {
			where := connectWhere(r.opts.Host, r.opts.Port)
			return nil, nil, &connectError{msg: sshMessage(where, r.opts.Port, true), err: err}
		}
		return nil, nil, err
	}
	r.debugf("the server accepted the connection")
	return c, stdin, nil
}

// classicRequest is the handshake that logs local in as user, checked before anything is sent.
func (r *runner) classicRequest(local, user string) (classic.Request, error) {
	req := classic.Request{ClientUser: local, ServerUser: user, Term: r.getenv("TERM"), Speed: r.terminalSpeed()}
	if !session.ValidUserName(local) {
		return req, &connectError{msg: fmt.Sprintf("your local user name %q cannot be sent in a classic rlogin handshake", local)}
	}
	if !session.ValidUserName(user) {
		return req, &connectError{msg: fmt.Sprintf("invalid remote user name %q (%s)", user, userNameRule())}
	}
	if _, err := classic.AppendRequest(nil, &req); err != nil {
		r.debugf("TERM %q cannot be sent; sending dumb", req.Term)
		req.Term = "dumb"
	}
	if req.Term == "" {
		req.Term = "dumb"
	}
	return req, nil
}

// newClassicClient is the classic session over conn, its output held until interact has put the
// terminal in raw mode, and the server's flow-control requests applied to the terminal.
func (r *runner) newClassicClient(conn net.Conn, req classic.Request) *classic.Client {
	c := classic.NewClient(conn, req)
	// A password prompt shown before raw mode would let the password echo locally if the user
	// typed it at once.
	held := &heldWriter{w: r.stdout, ready: make(chan struct{})}
	var release sync.Once
	r.releaseOutput = func() { release.Do(func() { close(held.ready) }) }
	c.Stdout = held
	c.Window = r.windowSize()
	if r.outTTY {
		fd := r.outFd
		c.OnFlush = func() { flushOutput(fd) }
	}
	if tty := r.tty; tty != nil && !r.opts.EightBit {
		c.OnFlowControl = func(on bool) {
			r.debugf("server: local ^S/^Q flow control on: %v", on)
			tty.setLocalFlow(on)
		}
	}
	return c
}

// classicRefusal reports the server's reason when err is its refusal of the login.
func classicRefusal(err error) (string, bool) {
	var refused *classic.RefusedError
	if errors.As(err, &refused) {
		return refused.Reason, true
	}
	return "", false
}

// heldWriter passes writes to w once ready is closed.
type heldWriter struct {
	w     io.Writer
	ready chan struct{}
}

func (h *heldWriter) Write(p []byte) (int, error) {
	<-h.ready
	return h.w.Write(p)
}

// dialClassic connects to hostport from a privileged port (1023 down to 512, the first free one),
// as rresvport(3) does, so that the server may apply .rhosts trust. If rlogin may not bind such a
// port (it is not root) or none is free, it says so on stderr and connects from an ordinary port:
// the server then asks for a password, or refuses the connection.
func (r *runner) dialClassic(ctx context.Context, hostport string) (net.Conn, error) {
	reason := ""
ports:
	for port := privPortHigh; port >= privPortLow; port-- {
		d := net.Dialer{LocalAddr: &net.TCPAddr{Port: port}, Control: reuseAddr}
		c, err := d.DialContext(ctx, "tcp", hostport)
		switch {
		case err == nil:
			return c, nil
		case errors.Is(err, syscall.EADDRINUSE), errors.Is(err, syscall.EADDRNOTAVAIL):
			continue // taken, or that exact connection is still in TIME_WAIT: the next one
		case errors.Is(err, syscall.EACCES), errors.Is(err, syscall.EPERM):
			reason = "rlogin is not running as root"
			break ports
		default:
			return nil, err
		}
	}
	if reason == "" {
		reason = "none is free"
	}
	fmt.Fprintf(r.stderr, "rlogin: cannot bind a privileged source port (%d-%d): %s; connecting from an "+
		"ordinary port, so the server cannot use .rhosts trust (it asks for a password, or refuses)\n",
		privPortLow, privPortHigh, reason)
	var d net.Dialer
	return d.DialContext(ctx, "tcp", hostport)
}

// reuseAddr sets SO_REUSEADDR, so a privileged port whose last connection is in TIME_WAIT can be
// bound again (connect still fails for the very same connection, and the next port is tried).
func reuseAddr(network, address string, c syscall.RawConn) error {
	var serr error
	if err := c.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
	}); err != nil {
		return err
	}
	return serr
}

// terminalSpeed is the output speed of the user's terminal in bits per second, for the
// handshake's "term/speed"; 38400 when there is no terminal.
func (r *runner) terminalSpeed() string {
	fd := r.inFd
	if !r.inTTY {
		if !r.outTTY {
			return "38400"
		}
		fd = r.outFd
	}
	tio, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return "38400"
	}
	if s, ok := baudRate(tio.Cflag & unix.CBAUD); ok {
		return strconv.Itoa(s)
	}
	return "38400"
}

// baudRate maps a termios speed code to bits per second.
func baudRate(code uint32) (int, bool) {
	switch code {
	case unix.B1200:
		return 1200, true
	case unix.B2400:
		return 2400, true
	case unix.B4800:
		return 4800, true
	case unix.B9600:
		return 9600, true
	case unix.B19200:
		return 19200, true
	case unix.B38400:
		return 38400, true
	case unix.B57600:
		return 57600, true
	case unix.B115200:
		return 115200, true
	case unix.B230400:
		return 230400, true
	case unix.B460800:
		return 460800, true
	case unix.B921600:
		return 921600, true
	}
	return 0, false
}
