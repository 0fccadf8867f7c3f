package client

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/rlogin-go/rlogin/keys"
	"github.com/rlogin-go/rlogin/session"
	"github.com/rlogin-go/rlogin/transport"
)

// connect dials and secures a connection, and calls use with it (which owns it from then on).
// When the user accepted a new host key but the attempt then failed (the server may have given
// up on a handshake while the question was on the screen), it tries once more: the key is
// accepted now, so nothing is asked again.
func (r *runner) connect(ctx context.Context, id *identity, dir rloginDir, use func(*transport.SecureConn) error) error {
	var accepted ed25519.PublicKey // by the user, in the first attempt
	for attempt := 1; ; attempt++ {
		check := r.newHostKeyCheck(dir, accepted)
		sc, err := r.secureConn(ctx, id, check)
		if err == nil {
			err = use(sc)
		}
		if err == nil {
			return nil
		}
		var refused *session.RefusedError
		if attempt == 1 && check.asked && ctx.Err() == nil &&
			!errors.As(err, &refused) && !errors.Is(err, ErrHostKeyVerification) {
			r.debugf("trying again after accepting the host key: %v", err)
			accepted = check.accepted
			continue
		}
		return err
	}
}

// newHostKeyCheck is the check of the server's key against known_hosts, asking on Config.Prompt
// about an unknown key unless it is accepted.
func (r *runner) newHostKeyCheck(dir rloginDir, accepted ed25519.PublicKey) *hostKeyCheck {
	check := &hostKeyCheck{
		known:       &keys.KnownHosts{Path: dir.path("known_hosts")},
		hostport:    net.JoinHostPort(r.opts.Host, strconv.Itoa(r.opts.Port)),
		displayPath: dir.shown("known_hosts"),
		prompt:      r.cfg.Prompt,
		stderr:      r.stderr,
		accepted:    accepted,
	}
	if check.prompt == nil {
		check.prompt = TTYPrompter{}
	}
	return check
}

// login logs in as user with the key id: connect, then the login request (with resume, a
// reattach of that session instead of a new one).
func (r *runner) login(ctx context.Context, id *identity, user string, dir rloginDir, resume *session.ResumeRequest) (*session.Client, io.WriteCloser, error) {
	var sess *session.Client
	var stdinPipe io.WriteCloser
	err := r.connect(ctx, id, dir, func(sc *transport.SecureConn) (err error) {
		sess, stdinPipe, err = r.startSession(ctx, sc, id, user, dir, resume)
		return err
	})
	return sess, stdinPipe, err
}

// startSession sends the login request over sc and waits for the answer.
func (r *runner) startSession(ctx context.Context, sc *transport.SecureConn, id *identity, user string, dir rloginDir, resume *session.ResumeRequest) (*session.Client, io.WriteCloser, error) {
	r.debugf("host key %s verified; logging in as %s", keys.Fingerprint(sc.PeerKey()), user)
	sess := r.newSession(sc, user)
	sess.Resume = resume
	sess.Signer = id.signer // the key the handshake proved, proved again to a server that asks (keyproof)
	stdinPipe, err := sess.StdinPipe()
	if err != nil {
		_ = sess.Close()
		return nil, nil, err // already "session: ...": another prefix would add nothing
	}
	if r.resumeWanted() {
		r.reconnectWith(sess, stdinPipe, id, dir, sc.PeerKey())
	}
	// The handlers go in before the session starts: its output, which may come at once, can
	// make whoever waits for it signal rlogin, and the signal must reach the remote command.
	caught := r.catchSignals()
	if err := startLogin(r.opts.Host, r.connectTimeout(), func() error { return sess.Start(ctx) }, sess.Close, secureRefusal); err != nil {
		r.uncatchSignals(caught)
		if errors.Is(err, session.ErrCommandsUnsupported) {
			return nil, nil, &connectError{msg: r.opts.Host + "'s rlogind does not run commands (too old): upgrade it, or log in without a command", err: err}
		}
		return nil, nil, err
	}
	r.debugf("logged in")
	r.caught = caught
	return sess, stdinPipe, nil
}

// secureConn dials the login mailbox and secures the connection, checking the server's key;
// a key the user accepted goes into known_hosts once the server has proved that it holds it.
//
// The TLS ClientHello follows the mailbox name without waiting for the server's "+": the name's
// round trip and the handshake's are one (docs/protocol.md, "Round trips"). The key id is
// loaded, if it is not yet, and its certificate made while that round trip is under way. The connect timeout
// bounds the dial and the wait for that "+", which the handshake's first read takes.
func (r *runner) secureConn(ctx context.Context, id *identity, check *hostKeyCheck) (*transport.SecureConn, error) {
	r.debugf("connecting to %s", check.hostport)
	dctx, cancel := context.WithTimeout(ctx, r.connectTimeout())
	defer cancel()
	alive := r.keepalive()
	// TCP notices a dead path within the same time, also when the server does not probe.
	d := transport.Dialer{KeepAlive: transport.KeepAlive{Interval: alive.Interval, Count: alive.CountMax}}
	// "tcp:": a host named "unix" or "tcp" is a host, not one of transport's address prefixes.
	conn, err := d.DialMailboxEarly(dctx, "tcp:"+check.hostport, "login")
	if err != nil {
		return nil, &connectError{msg: dialMessage(r.opts.Host, r.opts.Port, err), err: err}
	}
	r.debugf("connected to %s; securing the connection", conn.RemoteAddr())
	// The handshake takes in the wait for "+": it may last as long as the connect timeout allows.
	cfg := r.secureConfig(id, check)
	cfg.HandshakeTimeout = max(transport.DefaultHandshakeTimeout, r.connectTimeout())
	sc, err := transport.Client(ctx, conn, cfg)
	if err != nil {
		var mailbox *transport.MailboxError
		switch kerr := id.ensure(); {
		case kerr != nil:
			return nil, kerr // the key did not load (identity.go): its own words
		case check.err != nil:
			return nil, check.err
		case errors.As(err, &mailbox) || errors.Is(err, context.DeadlineExceeded) && connectTimedOut(dctx):
			// The server refused the mailbox, or did not answer in time.
			return nil, &connectError{msg: dialMessage(r.opts.Host, r.opts.Port, err), err: err}
		}
		return nil, &connectError{msg: fmt.Sprintf("secure connection to %s failed: %s", check.hostport, plainText(err)), err: err}
	}
	check.commit(sc.PeerKey())
	return sc, nil
}

// connectTimedOut reports whether the connect timeout of dctx has passed, even if dctx has not
// noticed yet: a conn's deadline set from it may fire a moment before its timer.
func connectTimedOut(dctx context.Context) bool {
	d, ok := dctx.Deadline()
	return dctx.Err() != nil || ok && !time.Now().Before(d)
}

// newSession is the login request for user over sc, with the terminal's type and size and the
// locale, writing the remote output to standard output.
func (r *runner) newSession(sc *transport.SecureConn, user string) *session.Client {
	sess := session.NewClient(sc, r.request(user))
	sess.Stdout = r.stdout
	sess.Stderr = r.stderr
	if !r.pipedCommand() {
		sess.Interrupts = r.interruptChars() // a command without a terminal has no ^C
	}
	sess.Keepalive = r.keepalive()
	switch {
	case r.outTTY:
		r.stdout.openNonblocking(r.outFd)
		fd := r.outFd
		sess.OnFlush = func() { flushOutput(fd) }
		sess.OnFlushKey = sess.OnFlush // capability flushkeys: the same discard, at the keystroke
	case r.outFd >= 0 && r.opts.Command != "":
		r.stdout.openPipeOrFile(r.outFd) // a command's bulk output
	}
	sess.Stdout = r.stdout.forSession()
	return sess
}

// request is the login request for user: the terminal's type and size, the locale, the command.
func (r *runner) request(user string) session.Request {
	req := session.Request{
		User:   user,
		Term:   r.getenv("TERM"),
		Window: r.windowSize(),
		Env:    r.localeEnv(),
	}
	if req.Term == "" {
		req.Term = "dumb"
	}
	r.commandRequest(&req)
	return req
}

// secureRefusal reports the server's reason when err is its refusal of the login.
func secureRefusal(err error) (string, bool) {
	var refused *session.RefusedError
	if errors.As(err, &refused) {
		return refused.Reason, true
	}
	return "", false
}

// connectTimeout bounds reaching the login service, and separately the login request: -o
// ConnectTimeout, else DefaultConnectTimeout.
func (r *runner) connectTimeout() time.Duration {
	if r.opts.ConnectTimeout > 0 {
		return r.opts.ConnectTimeout
	}
	return DefaultConnectTimeout
}

// startLogin runs a client's Start under timeout and turns its failure into a connectError: Start
// has no deadline of its own, and a server that accepts the connection and then says nothing must
// not hang rlogin. refusal reports the server's reason when err is a refusal.
func startLogin(host string, timeout time.Duration, start, closeSession func() error, refusal func(error) (string, bool)) error {
	var timedOut atomic.Bool
	timer := time.AfterFunc(timeout, func() {
		timedOut.Store(true)
		_ = closeSession()
	})
	err := start()
	timer.Stop()
	if err != nil {
		if reason, ok := refusal(err); ok {
			return &connectError{msg: fmt.Sprintf("%s refused the login: %s", host, reason), err: err}
		}
		if timedOut.Load() {
			return &connectError{msg: fmt.Sprintf("login to %s timed out", host), err: err}
		}
		return &connectError{msg: fmt.Sprintf("login to %s failed: %s", host, plainText(err)), err: err}
	}
	if timedOut.Load() { // the timer fired just as Start returned: the session is closed
		return &connectError{msg: fmt.Sprintf("login to %s timed out", host), err: context.DeadlineExceeded}
	}
	return nil
}
