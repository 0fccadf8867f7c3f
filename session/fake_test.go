package session

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"
)

// testTimeout is every test's watchdog: no wait in these tests may last longer.
const testTimeout = 30 * time.Second

// fakeTerminal is a Terminal backed by a real child process, so Wait returns real ProcessStates,
// and by an in-memory output queue, which behaves like a pty's: ReadOutput returns io.EOF once the
// child is reaped and the queue is empty.
type fakeTerminal struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser // the child's stdin: SendEOF closes it (so "cat" exits 0)

	mu        sync.Mutex
	cond      sync.Cond
	out       []byte // output not yet read
	limit     int    // in echo mode Write blocks while out holds limit bytes (0: no limit)
	echo      bool   // input becomes output
	blockIn   bool   // Write blocks until Hangup (a shell that reads no input)
	held      bool   // with blockIn: a background job holds the terminal, so only Close unblocks Write
	flood     bool   // when out is empty, ReadOutput returns 'x' bytes, counted in produced
	floodMax  int    // if not 0, the flood ends after this many bytes
	floodRead int    // if not 0, the flood's reads return at most this many bytes
	produced  int
	flushNext bool                            // the next ReadOutput reports a flush, then returns out
	predicts  bool                            // FlushesOutput predicts a flush for input with ^C
	flushLate chan struct{}                   // if set, once out is empty ReadOutput reports a flush after it is closed
	onInput   func(f *fakeTerminal, p []byte) // called with each Write, under mu
	input     []byte                          // what was written (when not echoing)
	resizes   []WindowSize
	eofs      int
	hangups   int
	kills     int
	closed    bool // Close was called: as on a pty, ReadOutput and Write fail with os.ErrClosed
	closedUp  bool // Close was called before the child was reaped
	blocked   int  // Writes waiting for the shell to read
	reaped    bool
	timedOut  bool

	waitOnce sync.Once
	state    *os.ProcessState
	waitErr  error
}

// newFakeTerminal starts args as the "shell". If args is empty the shell is "cat" reading a pipe,
// which exits 0 on SendEOF.
func newFakeTerminal(t testing.TB, args ...string) *fakeTerminal {
	t.Helper()
	f := &fakeTerminal{}
	f.cond.L = &f.mu
	if len(args) == 0 {
		args = []string{"cat"}
	}
	f.cmd = exec.Command(args[0], args[1:]...)
	if args[0] == "cat" {
		w, err := f.cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		f.stdin = w
	}
	if err := f.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = f.cmd.Process.Kill() // the test failed before the session reaped it
		_, _ = f.Wait()
	})
	return f
}

func (f *fakeTerminal) ReadOutput(b []byte) (int, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for {
		if f.closed {
			return 0, false, os.ErrClosed
		}
		if f.flushNext {
			f.flushNext = false
			n := copy(b, f.out)
			f.out = f.out[n:]
			f.cond.Broadcast()
			return n, true, nil
		}
		if len(f.out) > 0 {
			n := copy(b, f.out)
			f.out = f.out[n:]
			f.cond.Broadcast()
			return n, false, nil
		}
		if late := f.flushLate; late != nil { // Linux reporting a flush after the output that followed it
			f.mu.Unlock()
			<-late
			f.mu.Lock()
			f.flushLate = nil
			f.cond.Broadcast()
			return 0, true, nil
		}
		if f.flood {
			n := len(b)
			if f.floodRead > 0 {
				n = min(n, f.floodRead)
			}
			if f.floodMax > 0 {
				n = min(n, f.floodMax-f.produced)
				f.flood = f.produced+n < f.floodMax
			}
			for i := range n {
				b[i] = 'x'
			}
			f.produced += n
			f.cond.Broadcast()
			return n, false, nil
		}
		if f.reaped {
			return 0, false, io.EOF
		}
		f.cond.Wait()
	}
}

// FlushesOutput predicts a flush for input with ^C, if f.predicts is set (FlushPredictor).
func (f *fakeTerminal) FlushesOutput(p []byte) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.predicts && bytes.IndexByte(p, 3) >= 0
}

func (f *fakeTerminal) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.onInput != nil {
		f.onInput(f, p)
	}
	for f.blockIn && !f.closed && (f.held || f.hangups == 0 && !f.reaped) {
		f.blocked++
		f.cond.Broadcast()
		f.cond.Wait()
		f.blocked--
	}
	if f.closed {
		return 0, os.ErrClosed
	}
	if !f.echo {
		f.input = append(f.input, p...)
		f.cond.Broadcast()
		return len(p), nil
	}
	written := 0
	for written < len(p) {
		for f.limit > 0 && len(f.out) >= f.limit && f.hangups == 0 && !f.reaped && !f.closed {
			f.cond.Wait()
		}
		if f.closed {
			return written, os.ErrClosed
		}
		if f.hangups > 0 || f.reaped {
			return written, syscall.EIO
		}
		k := len(p) - written
		if f.limit > 0 {
			k = min(k, f.limit-len(f.out))
		}
		f.out = append(f.out, p[written:written+k]...)
		written += k
		f.cond.Broadcast()
	}
	return written, nil
}

func (f *fakeTerminal) Resize(w WindowSize) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.resizes = append(f.resizes, w)
	f.cond.Broadcast()
	return nil
}

func (f *fakeTerminal) SendEOF() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.eofs++
	f.cond.Broadcast()
	if f.stdin != nil {
		return f.stdin.Close()
	}
	return nil
}

func (f *fakeTerminal) Hangup() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hangups++
	f.flood = false
	f.cond.Broadcast()
	if !f.reaped {
		_ = f.cmd.Process.Signal(syscall.SIGHUP)
	}
}

// Close is a pty master's close: pending and later reads and writes fail. The child, which has no
// terminal, is not hung up by it.
func (f *fakeTerminal) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	f.closedUp = f.closedUp || !f.reaped
	f.cond.Broadcast()
	return nil
}

func (f *fakeTerminal) Kill() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.kills++
	f.cond.Broadcast()
	if !f.reaped {
		_ = f.cmd.Process.Kill()
	}
}

func (f *fakeTerminal) Wait() (*os.ProcessState, error) {
	f.waitOnce.Do(func() {
		err := f.cmd.Wait()
		var exitErr *exec.ExitError
		if err != nil && !errors.As(err, &exitErr) {
			f.waitErr = err
		}
		f.mu.Lock()
		f.state = f.cmd.ProcessState
		f.reaped = true
		f.cond.Broadcast()
		f.mu.Unlock()
	})
	return f.state, f.waitErr
}

// waitFor waits until cond (called under f.mu) holds, or fails the test after testTimeout.
func (f *fakeTerminal) waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	timer := time.AfterFunc(testTimeout, func() {
		f.mu.Lock()
		f.timedOut = true
		f.cond.Broadcast()
		f.mu.Unlock()
	})
	defer timer.Stop()
	f.mu.Lock()
	defer f.mu.Unlock()
	for !cond() {
		if f.timedOut {
			t.Fatalf("timed out waiting for the terminal: %s", what)
		}
		f.cond.Wait()
	}
}

// locked runs fn under f.mu.
func (f *fakeTerminal) locked(fn func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn()
}

// syncBuffer is a Stdout that tests can watch. If gate is set, each Write waits for it to be
// closed (a terminal that does not read).
type syncBuffer struct {
	mu      sync.Mutex
	cond    sync.Cond
	buf     bytes.Buffer
	writes  int
	blocked bool // a Write waits at the gate
	gate    chan struct{}
}

func newSyncBuffer() *syncBuffer {
	b := &syncBuffer{}
	b.cond.L = &b.mu
	return b
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	gate := b.gate
	if gate != nil {
		b.blocked = true
		b.cond.Broadcast()
		b.mu.Unlock()
		<-gate
		b.mu.Lock()
		b.blocked = false
	}
	defer b.mu.Unlock()
	b.writes++
	b.buf.Write(p)
	b.cond.Broadcast()
	return len(p), nil
}

func (b *syncBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Clone(b.buf.Bytes())
}

func (b *syncBuffer) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Len()
}

// waitFor waits until cond (called under b.mu) holds, or fails the test.
func (b *syncBuffer) waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	timedOut := false
	timer := time.AfterFunc(testTimeout, func() {
		b.mu.Lock()
		timedOut = true
		b.cond.Broadcast()
		b.mu.Unlock()
	})
	defer timer.Stop()
	b.mu.Lock()
	defer b.mu.Unlock()
	for !cond() {
		if timedOut {
			t.Fatalf("timed out waiting for the output: %s (have %d bytes)", what, b.buf.Len())
		}
		b.cond.Wait()
	}
}

// tcpPair returns the two ends of a loopback TCP connection, with the watchdog as deadline.
func tcpPair(t testing.TB) (client, server net.Conn) {
	t.Helper()
	return tcpPairThrough(t, func(addr string) string { return addr })
}

// tcpPairThrough is tcpPair with the client dialing through(the server's address).
func tcpPairThrough(t testing.TB, through func(addr string) string) (client, server net.Conn) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	type accepted struct {
		c   net.Conn
		err error
	}
	ch := make(chan accepted, 1)
	go func() {
		c, err := l.Accept()
		ch <- accepted{c, err}
	}()
	client, err = net.Dial("tcp", through(l.Addr().String()))
	a := <-ch
	if err != nil || a.err != nil {
		t.Fatal(err, a.err)
	}
	return watchdog(t, client), watchdog(t, a.c)
}

// pipePair returns the two ends of a net.Pipe, with the watchdog as deadline.
func pipePair(t testing.TB) (client, server net.Conn) {
	c, s := net.Pipe()
	return watchdog(t, c), watchdog(t, s)
}

func watchdog(t testing.TB, c net.Conn) net.Conn {
	_ = c.SetDeadline(time.Now().Add(testTimeout))
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// served is what Serve returned.
type served struct {
	state *os.ProcessState
	err   error
}

// testSession is a client and a server running a session over a conn pair.
type testSession struct {
	t      testing.TB
	client *Client
	server *ServerConn
	term   *fakeTerminal
	stdout *syncBuffer
	stdin  io.WriteCloser
	cancel context.CancelFunc
	served chan served
	waited chan error
}

// startSession runs a server with term and a client with a StdinPipe over the conns, and waits
// for Start. setup, if not nil, adjusts the client before Start.
func startSession(t testing.TB, clientConn, serverConn net.Conn, term *fakeTerminal, setup func(*Client)) *testSession {
	t.Helper()
	return startSessionWith(t, clientConn, serverConn, term, nil, setup)
}

// startSessionWith is startSession with configure, if not nil, adjusting the server first.
func startSessionWith(t testing.TB, clientConn, serverConn net.Conn, term *fakeTerminal, configure func(*ServerConn), setup func(*Client)) *testSession {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	s := &testSession{
		t: t, term: term, stdout: newSyncBuffer(), cancel: cancel,
		served: make(chan served, 1), waited: make(chan error, 1),
		server: NewServerConn(serverConn),
	}
	if configure != nil {
		configure(s.server)
	}
	go func() {
		if _, err := s.server.ReadRequest(); err != nil {
			_ = s.server.Close()
			term.Hangup()
			st, _ := term.Wait()
			s.served <- served{st, err}
			return
		}
		st, err := s.server.Serve(ctx, term)
		s.served <- served{st, err}
	}()
	s.client = NewClient(clientConn, Request{User: "bob", Term: "xterm-256color", Window: WindowSize{Rows: 24, Cols: 80}})
	s.client.Stdout = s.stdout
	if setup != nil {
		setup(s.client)
	}
	if s.client.Stdin == nil && s.client.pipe == nil {
		var err error
		if s.stdin, err = s.client.StdinPipe(); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		cancel()
		_ = s.client.Close()
		<-s.served // Serve always returns: the watchdog deadlines end it at worst
	})
	if err := s.client.Start(context.Background()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	go func() { s.waited <- s.client.Wait() }()
	return s
}

// wait returns what Serve and Client.Wait returned.
func (s *testSession) wait() (served, error) {
	s.t.Helper()
	timer := time.NewTimer(testTimeout)
	defer timer.Stop()
	var err error
	select {
	case err = <-s.waited:
	case <-timer.C:
		s.t.Fatal("timed out waiting for Client.Wait")
	}
	select {
	case r := <-s.served:
		s.served <- r // for the cleanup
		return r, err
	case <-timer.C:
		s.t.Fatal("timed out waiting for Serve")
	}
	panic("unreachable")
}
