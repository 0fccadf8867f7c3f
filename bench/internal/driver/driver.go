// Package driver logs in to rlogind or sshd from inside the benchmark process, many sessions at
// once, without a client process or a local pty per session: rlogin sessions through packages
// transport and session (what cmd/rlogin uses), ssh sessions through golang.org/x/crypto/ssh. The
// scale benchmark uses it to hold a thousand sessions open.
//
// Typical usage:
//
//	s, err := driver.DialRlogin(ctx, "127.0.0.1:5513", key, hostKey, "alice")
//	...
//	defer s.Close()
//	err = s.Expect("RDY42", 10*time.Second) // after s.Send("echo RDY$((40+2))\n")
package driver

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/rlogin-go/rlogin/session"
	"github.com/rlogin-go/rlogin/transport"
)

// ErrTimeout is returned by a wait that reached its deadline.
var ErrTimeout = errors.New("driver: timed out")

// Session is a logged-in remote shell on a pty.
type Session interface {
	// Send types s.
	Send(s string) error
	// Expect waits until the output contains marker and consumes it and what came before.
	Expect(marker string, timeout time.Duration) error
	// Echo types c and returns the time until it came back.
	Echo(c byte, timeout time.Duration) (time.Duration, error)
	// Wait waits for the session to end (after the shell exits).
	Wait(timeout time.Duration) error
	// Close ends the session.
	Close() error
}

// output collects a session's output and lets a waiter see each write.
type output struct {
	mu      sync.Mutex
	buf     []byte
	changed chan struct{} // closed at the next Write; nil when nobody waits
}

func (o *output) Write(p []byte) (int, error) {
	o.mu.Lock()
	o.buf = append(o.buf, p...)
	if len(o.buf) > 64<<10 { // an idle benchmark session writes little; keep a bounded tail
		o.buf = append(o.buf[:0], o.buf[len(o.buf)-4<<10:]...)
	}
	if o.changed != nil {
		close(o.changed)
		o.changed = nil
	}
	o.mu.Unlock()
	return len(p), nil
}

// wait waits until found reports a match in the output (which it may consume), or the deadline.
func (o *output) wait(deadline time.Time, found func(buf []byte) ([]byte, bool)) error {
	for {
		o.mu.Lock()
		rest, ok := found(o.buf)
		if ok {
			o.buf = append(o.buf[:0], rest...)
			o.mu.Unlock()
			return nil
		}
		if o.changed == nil {
			o.changed = make(chan struct{})
		}
		changed := o.changed
		o.mu.Unlock()
		d := time.Until(deadline)
		if d <= 0 {
			return ErrTimeout
		}
		t := time.NewTimer(d)
		select {
		case <-changed:
			t.Stop()
		case <-t.C:
		}
	}
}

func (o *output) expect(marker string, timeout time.Duration) error {
	m := []byte(marker)
	err := o.wait(time.Now().Add(timeout), func(buf []byte) ([]byte, bool) {
		if i := bytes.Index(buf, m); i >= 0 {
			return buf[i+len(m):], true
		}
		return nil, false
	})
	if err != nil {
		o.mu.Lock()
		tail := string(o.buf[max(0, len(o.buf)-200):])
		o.mu.Unlock()
		return fmt.Errorf("driver: waiting for %q: %w; last output: %q", marker, err, tail)
	}
	return nil
}

// echo writes c with send and waits for it in the output.
func (o *output) echo(c byte, send func([]byte) error, timeout time.Duration) (time.Duration, error) {
	o.mu.Lock()
	o.buf = o.buf[:0]
	o.mu.Unlock()
	start := time.Now()
	if err := send([]byte{c}); err != nil {
		return 0, err
	}
	err := o.wait(start.Add(timeout), func(buf []byte) ([]byte, bool) {
		if i := bytes.IndexByte(buf, c); i >= 0 {
			return buf[i+1:], true
		}
		return nil, false
	})
	if err != nil {
		return 0, fmt.Errorf("driver: waiting for the echo of %q: %w", c, err)
	}
	return time.Since(start), nil
}

// Rlogin is a session with rlogind.
type Rlogin struct {
	c    *session.Client
	in   io.WriteCloser
	out  output
	done chan error // Wait's result, once
	once sync.Once
	err  error
}

// DialRlogin logs in to rlogind at addr as user with key, requiring the host key hostKey, on a
// 24x80 pty with TERM=xterm.
func DialRlogin(ctx context.Context, addr string, key ed25519.PrivateKey, hostKey ed25519.PublicKey, user string) (*Rlogin, error) {
	conn, err := transport.DialMailbox(ctx, addr, "login")
	if err != nil {
		return nil, fmt.Errorf("driver: %w", err)
	}
	sc, err := transport.Client(ctx, conn, &transport.SecureConfig{
		Key: key,
		VerifyPeer: func(pub ed25519.PublicKey) error {
			if !pub.Equal(hostKey) {
				return errors.New("driver: unexpected host key")
			}
			return nil
		},
	})
	if err != nil {
		return nil, fmt.Errorf("driver: %w", err)
	}
	s := &Rlogin{done: make(chan error, 1)}
	s.c = session.NewClient(sc, session.Request{User: user, Term: "xterm", Window: session.WindowSize{Rows: 24, Cols: 80}})
	s.c.Stdout = &s.out
	// As cmd/rlogin does by default, offer resume, so that the server keeps what a resumable
	// session keeps and the figures are those of the sessions users get; a lost connection
	// ends the session here all the same.
	s.c.Reconnect = func(context.Context, int, error) (net.Conn, error) {
		return nil, errors.New("driver: benchmarks do not reconnect")
	}
	if s.in, err = s.c.StdinPipe(); err != nil {
		_ = s.c.Close()
		return nil, fmt.Errorf("driver: %w", err)
	}
	if err := s.c.Start(ctx); err != nil {
		return nil, fmt.Errorf("driver: %w", err)
	}
	go func() { s.done <- s.c.Wait() }()
	return s, nil
}

func (s *Rlogin) Send(str string) error {
	_, err := io.WriteString(s.in, str)
	return err
}

func (s *Rlogin) Expect(marker string, timeout time.Duration) error {
	return s.out.expect(marker, timeout)
}

func (s *Rlogin) Echo(c byte, timeout time.Duration) (time.Duration, error) {
	return s.out.echo(c, func(b []byte) error { _, err := s.in.Write(b); return err }, timeout)
}

// Wait waits for the session to end; an exit status of the shell is not an error.
func (s *Rlogin) Wait(timeout time.Duration) error {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case err := <-s.done:
		s.once.Do(func() { s.err = err })
	case <-t.C:
		return fmt.Errorf("driver: the session did not end within %v", timeout)
	}
	var exit *session.ExitError
	if errors.As(s.err, &exit) {
		return nil
	}
	return s.err
}

// logoutTimeout bounds Close's wait for the shell to exit.
const logoutTimeout = 10 * time.Second

// Close ends the session and waits for its goroutines. The session is resumable, so the server
// would keep the shell of a closed connection for its detach timeout: Close logs out first, with
// end of input for whatever reads the terminal (a newline and ^D end a cat of the samples) and
// then for the shell (no signal: an interrupt may make the shell drop the input after it), and
// closes the connection once the session has ended, or after logoutTimeout.
func (s *Rlogin) Close() error {
	if s.Send("\n\x04") == nil && s.in.Close() == nil {
		_ = s.Wait(logoutTimeout) // the shell's status, or its failure to exit, is not Close's business
	}
	_ = s.c.Close()
	s.once.Do(func() { s.err = <-s.done })
	return nil
}

// SSH is a session with sshd.
type SSH struct {
	client *ssh.Client
	sess   *ssh.Session
	in     io.WriteCloser
	out    output
	done   chan error
	once   sync.Once
}

// DialSSH logs in to sshd at addr as user with signer, requiring hostKey, asks for a 24x80 pty
// with TERM=xterm and starts the login shell.
func DialSSH(ctx context.Context, addr string, signer ssh.Signer, hostKey ssh.PublicKey, user string) (*SSH, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("driver: %w", err)
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	cc, chans, reqs, err := ssh.NewClientConn(conn, addr, &ssh.ClientConfig{
		User:            user,
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: ssh.FixedHostKey(hostKey),
	})
	if err != nil {
		return nil, fmt.Errorf("driver: ssh handshake: %w", err)
	}
	_ = conn.SetDeadline(time.Time{})
	s := &SSH{client: ssh.NewClient(cc, chans, reqs), done: make(chan error, 1)}
	if s.sess, err = s.client.NewSession(); err != nil {
		s.client.Close()
		return nil, fmt.Errorf("driver: %w", err)
	}
	s.sess.Stdout, s.sess.Stderr = &s.out, &s.out
	if s.in, err = s.sess.StdinPipe(); err != nil {
		s.client.Close()
		return nil, fmt.Errorf("driver: %w", err)
	}
	if err := s.sess.RequestPty("xterm", 24, 80, ssh.TerminalModes{}); err != nil {
		s.client.Close()
		return nil, fmt.Errorf("driver: pty request: %w", err)
	}
	if err := s.sess.Shell(); err != nil {
		s.client.Close()
		return nil, fmt.Errorf("driver: shell: %w", err)
	}
	go func() { s.done <- s.sess.Wait() }()
	return s, nil
}

func (s *SSH) Send(str string) error {
	_, err := io.WriteString(s.in, str)
	return err
}

func (s *SSH) Expect(marker string, timeout time.Duration) error {
	return s.out.expect(marker, timeout)
}

func (s *SSH) Echo(c byte, timeout time.Duration) (time.Duration, error) {
	return s.out.echo(c, func(b []byte) error { _, err := s.in.Write(b); return err }, timeout)
}

func (s *SSH) Wait(timeout time.Duration) error {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-s.done:
		s.once.Do(func() {})
		return nil
	case <-t.C:
		return fmt.Errorf("driver: the session did not end within %v", timeout)
	}
}

// Close ends the session and the connection, and waits for the session's goroutine.
func (s *SSH) Close() error {
	err := s.client.Close()
	s.once.Do(func() { <-s.done })
	return err
}
