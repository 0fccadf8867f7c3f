package session

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/rlogin-go/rlogin/internal/termtest"
	"github.com/rlogin-go/rlogin/pty"
)

// A *pty.PTY is a Terminal as it is, as rlogind serves it.
var _ Terminal = (*pty.PTY)(nil)

// The optional interfaces a pty gives Serve (Terminal's doc says which).
var (
	_ ExitNotifier    = (*pty.PTY)(nil)
	_ OutputNowReader = (*pty.PTY)(nil)
	_ TryWriter       = (*pty.PTY)(nil)
	_ FlushPredictor  = (*pty.PTY)(nil)
	_ FlushPredictor  = (*pty.Attached)(nil)
	_ FlushKeyer      = (*pty.PTY)(nil)
	_ FlushKeyer      = (*pty.Attached)(nil)
	_ OutputMarker    = (*pty.PTY)(nil)
	_ OutputMarker    = (*pty.Attached)(nil)
	_ StatusWaiter    = (*pty.Attached)(nil)
)

// startTestPTY starts cmd on a real pty of 24x80, closed by the test's cleanup; it skips the
// test where there are no ptys.
func startTestPTY(t *testing.T, cmd *exec.Cmd) *pty.PTY {
	t.Helper()
	p, err := pty.Start(cmd, pty.Size{Rows: 24, Cols: 80})
	if errors.Is(err, pty.ErrUnsupported) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// slowTerminal is a Stdout that takes time in proportion to the bytes written, like a terminal
// emulator drawing them, and remembers when a marker first appeared.
type slowTerminal struct {
	mu     sync.Mutex
	cond   sync.Cond
	rate   float64 // bytes per second
	buf    bytes.Buffer
	marker []byte
	seen   time.Time
	ended  bool // the session ended
	paused bool // Write waits until resume: the terminal is busy
}

// resume lets a paused terminal draw again.
func (s *slowTerminal) resume() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.paused = false
	s.cond.Broadcast()
}

func (s *slowTerminal) Write(p []byte) (int, error) {
	s.mu.Lock()
	for s.paused {
		s.cond.Wait()
	}
	s.mu.Unlock()
	time.Sleep(time.Duration(float64(len(p)) / s.rate * float64(time.Second)))
	s.mu.Lock()
	defer s.mu.Unlock()
	s.buf.Write(p)
	if s.seen.IsZero() && bytes.Contains(s.buf.Bytes()[max(0, s.buf.Len()-len(p)-len(s.marker)):], s.marker) {
		s.seen = time.Now()
	}
	s.cond.Broadcast()
	return len(p), nil
}

// TestFlushRealPTY floods a real pty, types Ctrl-C, and measures how soon the shell's answer
// shows on a terminal that draws 20 MB/s: the output in flight is dropped, not drawn.
func TestFlushRealPTY(t *testing.T) {
	cmd := exec.Command("sh", "-c", `trap 'echo; echo PROMPT; exit 3' INT; yes flood`)
	p := startTestPTY(t, cmd)
	// The terminal draws nothing until the Ctrl-C (paused): see below.
	out := &slowTerminal{rate: 20e6, marker: []byte("PROMPT"), paused: true}
	out.cond.L = &out.mu
	flushes := 0
	var stdin io.WriteCloser
	cl, res := startPTYSession(t, p, func(c *Client) {
		c.Stdout = out
		c.OnFlush = func() { flushes++ }
		stdin, _ = c.StdinPipe()
	})
	waited := make(chan error, 1)
	go func() {
		err := cl.Wait()
		out.mu.Lock()
		out.ended = true
		out.cond.Broadcast()
		out.mu.Unlock()
		waited <- err
	}()

	// Let the flood fill every buffer on the way, then interrupt it. The terminal draws nothing
	// until the client holds a backlog, so that there is one to drop however the machine
	// schedules `yes` (a loaded machine let the client drain everything: nothing to flush).
	// It draws nothing before either: while output is consumed, the client tunes its window,
	// and on a loaded machine a probe's slow round trip reads as a queue on the link and
	// shrinks the window (to 153 KiB in one CI run), below what half the base window needs.
	// With nothing consumed, no credit goes back, nothing is measured, and the window stays at
	// the base: the client holds all of it but the writer's one chunk.
	termtest.WaitFor(t, testTimeout, "a backlog at the client", func() bool {
		cl.mu.Lock()
		defer cl.mu.Unlock()
		return len(cl.q)-cl.qoff >= window/2 || cl.readDone
	})
	out.mu.Lock()
	before := out.buf.Len()
	out.mu.Unlock()
	start := time.Now()
	if _, err := stdin.Write([]byte{3}); err != nil {
		t.Fatal(err)
	}
	out.resume()
	out.waitFor(t, func() bool { return !out.seen.IsZero() || out.ended })
	out.mu.Lock()
	latency := out.seen.Sub(start)
	after := out.buf.Len() - before
	out.mu.Unlock()

	var err2 error
	select {
	case err2 = <-waited:
	case <-time.After(testTimeout):
		t.Fatal("timed out waiting for Wait")
	}
	if out.seen.IsZero() {
		t.Fatalf("the session ended (%v) without the prompt; output ends %q", err2, out.buf.Bytes()[max(0, out.buf.Len()-80):])
	}
	var exit *ExitError
	if !errors.As(err2, &exit) || exit.Status != 3 {
		t.Errorf("Wait: %v, want exit status 3", err2)
	}
	srv := waitServed(t, res)
	if srv.err != nil {
		t.Errorf("Serve: %v", srv.err)
	}
	t.Logf("Ctrl-C to prompt: %v; %d bytes drawn in between; OnFlush called %d times", latency, after, flushes)
	if flushes == 0 {
		t.Error("OnFlush was not called")
	}
	// Drawing a window of output at 20 MB/s takes 13 ms; without the flush the backlog would be
	// drawn first. Allow for a loaded machine.
	if after > window+2*maxDataFrame {
		t.Errorf("%d bytes were drawn after Ctrl-C: the flush dropped too little", after)
	}
	if latency > time.Second {
		t.Errorf("the prompt took %v after Ctrl-C", latency)
	}
}

func (s *slowTerminal) waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	timedOut := false
	timer := time.AfterFunc(testTimeout, func() {
		s.mu.Lock()
		timedOut = true
		s.cond.Broadcast()
		s.mu.Unlock()
	})
	defer timer.Stop()
	s.mu.Lock()
	defer s.mu.Unlock()
	for !cond() {
		if timedOut {
			t.Fatalf("timed out; output so far ends %q", s.buf.Bytes()[max(0, s.buf.Len()-80):])
		}
		s.cond.Wait()
	}
}

// startPTYSession is startSession for a real pty.
func startPTYSession(t *testing.T, p *pty.PTY, setup func(*Client)) (*Client, chan served) {
	t.Helper()
	c, s := tcpPair(t)
	return startPTYSessionOver(t, c, s, p, setup)
}

// startPTYSessionOver is startPTYSession over the conns c (the client's) and s, for any terminal.
func startPTYSessionOver(t *testing.T, c, s net.Conn, p Terminal, setup func(*Client)) (*Client, chan served) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	srv := NewServerConn(s)
	srv.RunsCommands = true
	res := make(chan served, 1)
	go func() {
		defer cancel()
		if _, err := srv.ReadRequest(); err != nil {
			_ = srv.Close()
			p.Hangup()
			st, _ := p.Wait()
			res <- served{st, err}
			return
		}
		st, err := srv.Serve(ctx, p)
		res <- served{st, err}
	}()
	t.Cleanup(func() {
		cancel()
		r := <-res
		res <- r
	})
	cl := NewClient(c, Request{User: "bob", Term: "xterm"})
	setup(cl)
	if err := cl.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cl.Close() })
	return cl, res
}
