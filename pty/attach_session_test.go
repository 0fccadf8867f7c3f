//go:build linux

package pty_test

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/rlogin-go/rlogin/internal/termtest"
	"github.com/rlogin-go/rlogin/pty"
	"github.com/rlogin-go/rlogin/session"
	"github.com/rlogin-go/rlogin/session/classic"
)

// An Attached is a session's Terminal, with every optional interface: the server that runs the
// protocol over a master it received uses them all. It is a classic session's Terminal too.
var (
	_ classic.Terminal        = (*pty.Attached)(nil)
	_ session.Terminal        = (*pty.Attached)(nil)
	_ session.ExitNotifier    = (*pty.Attached)(nil)
	_ session.OutputNowReader = (*pty.Attached)(nil)
	_ session.TryWriter       = (*pty.Attached)(nil)
	_ session.StatusWaiter    = (*pty.Attached)(nil)
)

// socketPair returns the two ends of a connected unix socket of type typ.
func socketPair(t *testing.T, typ int) (a, b *os.File) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, typ|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	return os.NewFile(uintptr(fds[0]), "socket"), os.NewFile(uintptr(fds[1]), "socket")
}

// fileConn returns f as a net.Conn and closes f.
func fileConn(t *testing.T, f *os.File) net.Conn {
	t.Helper()
	defer f.Close()
	c, err := net.FileConn(f)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// served is what Serve returned.
type served struct {
	state *os.ProcessState
	err   error
}

// flushCounter is a Terminal that counts the flushes its ReadOutput reports: an Attached, whose
// other methods, the optional ones included, it keeps.
type flushCounter struct {
	*pty.Attached
	flushes atomic.Int32
}

func (f *flushCounter) ReadOutput(b []byte) (int, bool, error) {
	n, flushed, err := f.Attached.ReadOutput(b)
	if flushed {
		f.flushes.Add(1)
	}
	return n, flushed, err
}

func (f *flushCounter) ReadOutputNow(b []byte) (int, bool, error) {
	n, flushed, err := f.Attached.ReadOutputNow(b)
	if flushed {
		f.flushes.Add(1)
	}
	return n, flushed, err
}

// attachedSession is a session served over an attached terminal, as the unprivileged process of
// a daemon with privilege separation serves it, and its client.
type attachedSession struct {
	t      *testing.T
	c      *child
	client *session.Client
	stdin  io.WriteCloser
	out    *termtest.Buffer
	mark   int
	served chan served
}

// serveAttached runs script on a pty, attaches a copy of its master, and serves it with a
// session.ServerConn over a unix socket pair to a started session.Client. setup, if not nil,
// adjusts the client before Start.
func serveAttached(t *testing.T, term func(*pty.Attached) session.Terminal, script string, setup func(*session.Client)) *attachedSession {
	t.Helper()
	c := startAttached(t, size, "sh", "-c", script)
	cf, sf := socketPair(t, unix.SOCK_STREAM)
	cconn, sconn := fileConn(t, cf), fileConn(t, sf)
	ctx, cancel := context.WithTimeout(context.Background(), watchdog)
	s := &attachedSession{t: t, c: c, out: new(termtest.Buffer), served: make(chan served, 1)}
	srv := session.NewServerConn(sconn)
	var tm session.Terminal = c.a
	if term != nil {
		tm = term(c.a)
	}
	go func() {
		if _, err := srv.ReadRequest(); err != nil {
			_ = srv.Close()
			s.served <- served{nil, err}
			return
		}
		st, err := srv.Serve(ctx, tm)
		s.served <- served{st, err}
	}()
	t.Cleanup(func() {
		cancel()
		_ = s.client.Close()
		r := <-s.served // Serve always returns: ctx is its watchdog
		s.served <- r
	})
	s.client = session.NewClient(cconn, session.Request{User: "bob", Term: "dumb", Window: size})
	s.client.Stdout = s.out
	var err error
	if s.stdin, err = s.client.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if setup != nil {
		setup(s.client)
	}
	if err := s.client.Start(ctx); err != nil {
		t.Fatalf("Start: %v", err)
	}
	return s
}

// expect waits for re in the client's output after what earlier calls matched.
func (s *attachedSession) expect(re string) {
	s.t.Helper()
	if _, ok := s.out.Expect(&s.mark, regexp.MustCompile(re), watchdog); !ok {
		s.t.Fatalf("no %q in the client's output %q", re, s.out.String())
	}
}

func (s *attachedSession) send(in string) {
	s.t.Helper()
	if _, err := s.stdin.Write([]byte(in)); err != nil {
		s.t.Fatalf("sending %q: %v", in, err)
	}
}

// wait returns what Serve and Client.Wait returned.
func (s *attachedSession) wait() (served, error) {
	s.t.Helper()
	err := s.client.Wait() // the Client's conn is closed at Serve's watchdog at worst
	r := <-s.served
	s.served <- r
	return r, err
}

// wantExit checks that the client got the exit code code (nil for 0, else an ExitError with
// the signal's name sig if a signal killed the shell), and that Serve ended normally, with no
// state of its own.
func (s *attachedSession) wantExit(code int, sig string) {
	s.t.Helper()
	srv, err := s.wait()
	wantExitError(s.t, err, code, sig)
	if srv.state != nil || srv.err != nil {
		s.t.Errorf("Serve: %v, %v; want a nil state (the monitor has it) and no error", srv.state, srv.err)
	}
}

// wantExitError checks that err, what Client.Wait returned, is the exit code code: nil for 0,
// else an ExitError, with the signal's name sig if a signal killed the shell.
func wantExitError(t *testing.T, err error, code int, sig string) {
	t.Helper()
	var exit *session.ExitError
	switch {
	case code == 0 && err != nil:
		t.Errorf("Client.Wait: %v, want nil", err)
	case code != 0 && (!errors.As(err, &exit) || exit.ExitCode() != code || exit.Signal != sig):
		t.Errorf("Client.Wait: %v, want exit code %d (signal %q)", err, code, sig)
	}
}

// TestAttachedSessionExitStatus: output, input and the exit status reach the client through a
// terminal whose shell another process (here, goroutine) waits for.
func TestAttachedSessionExitStatus(t *testing.T) {
	s := serveAttached(t, nil, `stty -echo; echo READY; read x; echo "got $x"; exit 3`, nil)
	s.expect(`READY\r\n`)
	s.send("hello\n")
	s.expect(`got hello\r\n`)
	s.wantExit(3, "")
	s.c.wantExit(3) // the attached terminal's WaitStatus tells the caller too
}

// TestAttachedSessionKilled: a shell killed by SIGKILL gives the client 137.
func TestAttachedSessionKilled(t *testing.T) {
	s := serveAttached(t, nil, `echo READY; read x; kill -KILL $$`, nil)
	s.expect(`READY\r\n`)
	s.send("\n")
	s.wantExit(137, "KILL")
}

// TestAttachedSessionResize: the client's window changes reach the terminal through the copy.
func TestAttachedSessionResize(t *testing.T) {
	s := serveAttached(t, nil, `echo READY; read x; exit 0`, nil)
	s.expect(`READY\r\n`)
	want := session.WindowSize{Rows: 41, Cols: 101}
	if err := s.client.Resize(want); err != nil {
		t.Fatal(err)
	}
	termtest.WaitFor(t, watchdog, "the new window size on the pty", func() bool {
		ws, err := unix.IoctlGetWinsize(pty.MasterFD(s.c.p), unix.TIOCGWINSZ)
		return err == nil && ws.Row == want.Rows && ws.Col == want.Cols
	})
	s.send("\n")
	s.wantExit(0, "")
}

// TestAttachedSessionFlush: ^C in a flood of output is reported as a flush through the copy, and
// the shell's answer comes back.
func TestAttachedSessionFlush(t *testing.T) {
	var fc *flushCounter
	flushes := 0
	s := serveAttached(t, func(a *pty.Attached) session.Terminal {
		fc = &flushCounter{Attached: a}
		return fc
	}, `trap 'echo; echo PROMPT; exit 3' INT; yes flood`, func(c *session.Client) {
		c.OnFlush = func() { flushes++ }
	})
	s.expect(`flood\r\n`)
	s.send("\x03")
	s.expect(`PROMPT\r\n`)
	s.wantExit(3, "")
	if n := fc.flushes.Load(); n == 0 {
		t.Error("the attached terminal reported no flush after ^C")
	}
	t.Logf("flushes: %d at the server, %d at the client", fc.flushes.Load(), flushes)
}

// TestAttachedSessionClientGone: when the client goes, the shell is hung up through the Process.
func TestAttachedSessionClientGone(t *testing.T) {
	s := serveAttached(t, nil, `echo READY; exec sleep 1000`, nil)
	s.expect(`READY\r\n`)
	if err := s.client.Close(); err != nil {
		t.Fatal(err)
	}
	srv, _ := s.wait()
	if srv.state != nil || srv.err == nil || !strings.Contains(srv.err.Error(), "connection lost") {
		t.Errorf("Serve: %v, %v; want a nil state and a lost connection", srv.state, srv.err)
	}
	s.c.wantSignal(unix.SIGHUP)
}
