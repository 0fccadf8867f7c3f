package session

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// randomData returns n reproducible random bytes with the RFC 1282 window marker FF FF 73 73,
// and a frame header, planted in it.
func randomData(n int, seed uint64) []byte {
	rng := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	for i := 0; i+12 < n; i += n / 7 {
		copy(b[i:], "\xff\xffss\x00\x18\x00\x50\x04\x00\x00\x01")
	}
	return b
}

// splitConn returns each Read in pieces of 1 to 7 bytes, so every parser sees input split anywhere.
type splitConn struct {
	net.Conn
	mu  sync.Mutex
	rng *rand.Rand
}

func (c *splitConn) Read(b []byte) (int, error) {
	c.mu.Lock()
	n := 1 + c.rng.IntN(7)
	c.mu.Unlock()
	return c.Conn.Read(b[:min(n, len(b))])
}

func splitPair(t testing.TB) (net.Conn, net.Conn) {
	c, s := tcpPair(t)
	return &splitConn{Conn: c, rng: rand.New(rand.NewPCG(1, 2))}, &splitConn{Conn: s, rng: rand.New(rand.NewPCG(3, 4))}
}

// writeChunks writes data to w in random-sized writes, then closes w.
func writeChunks(w io.WriteCloser, data []byte, seed uint64) error {
	rng := rand.New(rand.NewPCG(seed, 2))
	for len(data) > 0 {
		n := min(len(data), 1+rng.IntN(96<<10))
		if _, err := w.Write(data[:n]); err != nil {
			return err
		}
		data = data[n:]
	}
	return w.Close()
}

// TestEcho sends 1 MB of random binary data each way through an echoing terminal: every byte
// value, FF FF 73 73 included, passes unchanged. The terminal buffers at most 16 KiB, like a pty,
// so input and output must flow at the same time.
func TestEcho(t *testing.T) {
	for _, tc := range []struct {
		name string
		pair func(testing.TB) (net.Conn, net.Conn)
		size int
	}{
		{"tcp", tcpPair, 1 << 20},
		{"pipe", pipePair, 1 << 20},
		{"split", splitPair, 128 << 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, s := tc.pair(t)
			term := newFakeTerminal(t) // cat: exits 0 on SendEOF
			term.echo = true
			term.limit = 16 << 10
			ts := startSession(t, c, s, term, nil)

			data := randomData(tc.size, 1)
			wrote := make(chan error, 1)
			go func() { wrote <- writeChunks(ts.stdin, data, 1) }()
			srv, err := ts.wait()
			if werr := <-wrote; werr != nil {
				t.Errorf("writing input: %v", werr)
			}
			if err != nil {
				t.Errorf("Wait: %v", err)
			}
			if srv.err != nil || srv.state == nil || !srv.state.Success() {
				t.Errorf("Serve: %v, %v", srv.state, srv.err)
			}
			if got := ts.stdout.Bytes(); !bytes.Equal(got, data) {
				t.Errorf("output differs from input: %d bytes, want %d; first difference at %d", len(got), len(data), firstDiff(got, data))
			}
			term.locked(func() {
				if term.eofs != 1 || term.hangups != 0 {
					t.Errorf("SendEOF called %d times, Hangup %d times; want 1, 0", term.eofs, term.hangups)
				}
			})
		})
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// TestExitStatus checks that the shell's real exit status or signal reaches the client.
func TestExitStatus(t *testing.T) {
	for _, tc := range []struct {
		name   string
		args   []string
		want   *ExitError // nil: Wait returns nil
		code   int
		errStr string
	}{
		{"status 0", []string{"true"}, nil, 0, ""},
		{"status 7", []string{"sh", "-c", "exit 7"}, &ExitError{Status: 7}, 7, "session: remote shell exited with status 7"},
		{"SIGINT", []string{"sh", "-c", "kill -INT $$"}, &ExitError{Signal: "INT"}, 130, "session: remote shell killed by signal INT"},
		{"SIGKILL", []string{"sh", "-c", "kill -KILL $$"}, &ExitError{Signal: "KILL"}, 137, "session: remote shell killed by signal KILL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, s := tcpPair(t)
			term := newFakeTerminal(t, tc.args...)
			term.out = []byte("bye\r\n")
			ts := startSession(t, c, s, term, nil)
			srv, err := ts.wait()
			if srv.err != nil {
				t.Errorf("Serve: %v", srv.err)
			}
			if got := string(ts.stdout.Bytes()); got != "bye\r\n" {
				t.Errorf("output %q, want %q", got, "bye\r\n")
			}
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Wait: %v, want nil", err)
				}
				return
			}
			var exit *ExitError
			if !errors.As(err, &exit) {
				t.Fatalf("Wait: %v, want an *ExitError", err)
			}
			if *exit != *tc.want || exit.ExitCode() != tc.code || exit.Error() != tc.errStr {
				t.Errorf("Wait: %+v (code %d, %q), want %+v (code %d, %q)", *exit, exit.ExitCode(), exit.Error(), *tc.want, tc.code, tc.errStr)
			}
			if got := exitStatus(srv.state); got != *tc.want {
				t.Errorf("Serve's state %v, want %+v", srv.state, *tc.want)
			}
		})
	}
}

// TestResize checks that window changes reach Terminal.Resize, and the initial size the request.
func TestResize(t *testing.T) {
	c, s := tcpPair(t)
	term := newFakeTerminal(t)
	ts := startSession(t, c, s, term, nil)
	sizes := []WindowSize{{Rows: 50, Cols: 132, XPixel: 1320, YPixel: 1000}, {Rows: 1, Cols: 2}, {}}
	for _, w := range sizes {
		if err := ts.client.Resize(w); err != nil {
			t.Fatal(err)
		}
	}
	term.waitFor(t, "three resizes", func() bool { return len(term.resizes) == 3 })
	term.locked(func() {
		for i, w := range sizes {
			if term.resizes[i] != w {
				t.Errorf("resize %d: %+v, want %+v", i, term.resizes[i], w)
			}
		}
	})
	if err := ts.stdin.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := ts.wait(); err != nil {
		t.Fatal(err)
	}
	if err := ts.client.Resize(WindowSize{}); err == nil {
		t.Error("Resize after the end succeeded")
	}
}

// TestEOF checks that the end of input reaches Terminal.SendEOF after all input, for each way a
// client can give input.
func TestEOF(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, c *Client)
		write bool // write "hello\n" to the StdinPipe and close it
	}{
		{"StdinPipe", nil, true},
		{"Stdin reader", func(t *testing.T, c *Client) { c.Stdin = strings.NewReader("hello\n") }, false},
		{"Stdin file", func(t *testing.T, c *Client) {
			r, w, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { r.Close() })
			_, _ = w.WriteString("hello\n")
			w.Close()
			c.Stdin = r
		}, false},
		{"StdinPipe closed before Start", func(t *testing.T, c *Client) {
			w, err := c.StdinPipe()
			if err != nil {
				t.Fatal(err)
			}
			if _, err := w.Write([]byte("x")); err == nil {
				t.Error("Write before Start succeeded")
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, s := tcpPair(t)
			term := newFakeTerminal(t)
			var setup func(*Client)
			if tc.setup != nil {
				setup = func(c *Client) { tc.setup(t, c) }
			}
			ts := startSession(t, c, s, term, setup)
			want := "hello\n"
			if tc.write {
				if _, err := io.WriteString(ts.stdin, want); err != nil {
					t.Fatal(err)
				}
				if err := ts.stdin.Close(); err != nil {
					t.Fatal(err)
				}
				if _, err := ts.stdin.Write([]byte("x")); err == nil {
					t.Error("Write after Close succeeded")
				}
			} else if tc.name == "StdinPipe closed before Start" {
				want = ""
			}
			term.waitFor(t, "SendEOF", func() bool {
				if term.eofs > 0 && string(term.input) != want {
					t.Errorf("input at SendEOF: %q, want %q", term.input, want)
				}
				return term.eofs > 0
			})
			if _, err := ts.wait(); err != nil {
				t.Fatal(err)
			}
			term.locked(func() {
				if term.eofs != 1 {
					t.Errorf("SendEOF called %d times", term.eofs)
				}
			})
		})
	}
}

// waitUntil polls cond until it holds, or fails the test after testTimeout.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// waitClient waits until cond (called under c.mu) holds.
func waitClient(t *testing.T, c *Client, what string, cond func() bool) {
	t.Helper()
	waitUntil(t, what, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return cond()
	})
}

// stepWriter is a Stdout whose Writes wait for permits, like a terminal that is busy.
type stepWriter struct {
	*syncBuffer
	permits  chan struct{}
	open     atomic.Bool
	arrivals atomic.Int64 // Writes that came to the gate
}

func (w *stepWriter) Write(p []byte) (int, error) {
	if !w.open.Load() {
		w.arrivals.Add(1)
		<-w.permits
	}
	return w.syncBuffer.Write(p)
}

// TestFlush floods output while the client's terminal is stuck, then sends Ctrl-C; the terminal
// flushes, and the client drops the output in flight: its Stdout sees a small part of the flood,
// then OnFlush, then the prompt.
func TestFlush(t *testing.T) {
	const prompt = "^C\r\n$ "
	c, s := tcpPair(t)
	term := newFakeTerminal(t)
	term.flood = true
	term.onInput = func(f *fakeTerminal, p []byte) {
		if bytes.IndexByte(p, 3) >= 0 { // ISIG: the line discipline flushes the output queue
			f.flood = false
			f.out = append(f.out[:0], prompt...)
			f.flushNext = true
			f.cond.Broadcast()
		}
	}
	out := &stepWriter{syncBuffer: newSyncBuffer(), permits: make(chan struct{}, 1)}
	var flushMu sync.Mutex
	var flushes []int // Stdout length at each OnFlush
	flushCount := func() int {
		flushMu.Lock()
		defer flushMu.Unlock()
		return len(flushes)
	}
	ts := startSession(t, c, s, term, func(c *Client) {
		c.Stdout = out
		c.OnFlush = func() {
			flushMu.Lock()
			flushes = append(flushes, out.Len())
			flushMu.Unlock()
		}
	})

	// The client's writer holds a chunk, its queue is full, the server has a window of output in
	// flight and its pending output is full: it no longer reads the terminal.
	term.waitFor(t, "the flood to fill the window", func() bool { return term.produced >= window+maxDataFrame })
	waitUntil(t, "the first Write", func() bool { return out.arrivals.Load() == 1 })
	if _, err := ts.stdin.Write([]byte{3}); err != nil {
		t.Fatal(err)
	}
	term.waitFor(t, "Ctrl-C", func() bool { return !term.flood })
	// The terminal takes chunks until the client grants credit, which lets the server read the
	// terminal again and see the flush.
	for credited := 0; credited == 0; {
		n := out.arrivals.Load()
		out.permits <- struct{}{}
		waitUntil(t, "the next Write", func() bool { return out.arrivals.Load() == n+1 })
		written := out.Len()
		ts.client.mu.Lock()
		credited = written - ts.client.consumed
		ts.client.mu.Unlock()
	}
	// The FLUSH frame is handled: the writer has it pending (blocked in the Write of the next
	// chunk), or, when the flush left its queue empty, it has already taken it and called OnFlush.
	waitClient(t, ts.client, "the FLUSH frame", func() bool { return ts.client.flushed || flushCount() > 0 })
	out.open.Store(true)
	out.permits <- struct{}{}
	out.waitFor(t, "the prompt", func() bool { return bytes.HasSuffix(out.buf.Bytes(), []byte(prompt)) })

	got := out.Bytes()
	stale := len(got) - len(prompt)
	var produced int
	term.locked(func() { produced = term.produced })
	t.Logf("produced %d bytes, the client wrote %d of them", produced, stale)
	if strings.Trim(string(got[:stale]), "x") != "" {
		t.Errorf("output is not flood then prompt: %q", got)
	}
	// OnFlush comes once, before the prompt. Output the server read from the terminal while it
	// was writing the Ctrl-C may count as read after that input, which FLUSH's keep asks the
	// client to keep (docs/protocol.md §7.2): at most one read, one DATA frame, after OnFlush.
	flushMu.Lock()
	kept := 0
	if len(flushes) != 1 || flushes[0] > stale || stale-flushes[0] > maxDataFrame {
		t.Errorf("OnFlush calls at output lengths %v, want one at %d, or at most %d bytes before it", flushes, stale, maxDataFrame)
	} else {
		kept = stale - flushes[0]
	}
	flushMu.Unlock()
	// Before the flush the client writes less than a credit batch and two chunks; it drops at
	// least half a window.
	if stale-kept >= creditBatch+2*maxDataFrame || produced-stale < window/2 {
		t.Errorf("the client wrote %d bytes (%d of them kept) of the %d flooded: the flush dropped too little", stale, kept, produced)
	}
	if err := ts.stdin.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := ts.wait(); err != nil {
		t.Fatal(err)
	}
}

// TestLateFlush: Linux may report the flush of Ctrl-C after the output that followed it. The
// prompt the client already has is kept, and the local terminal is not flushed.
func TestLateFlush(t *testing.T) {
	const prompt = "^C\r\n$ "
	c, s := tcpPair(t)
	term := newFakeTerminal(t)
	late := make(chan struct{})
	term.onInput = func(f *fakeTerminal, p []byte) {
		if bytes.IndexByte(p, 3) >= 0 {
			f.out = append(f.out, prompt...)
			f.flushLate = late
			f.cond.Broadcast()
		}
	}
	flushes := 0
	ts := startSession(t, c, s, term, func(c *Client) { c.OnFlush = func() { flushes++ } })
	if _, err := ts.stdin.Write([]byte{3}); err != nil {
		t.Fatal(err)
	}
	ts.stdout.waitFor(t, "the prompt", func() bool { return ts.stdout.buf.String() == prompt })
	close(late)
	term.waitFor(t, "the late flush", func() bool { return term.flushLate == nil })
	term.locked(func() {
		term.out = append(term.out, "ls\r\n"...)
		term.cond.Broadcast()
	})
	ts.stdout.waitFor(t, "more output", func() bool { return ts.stdout.buf.Len() > len(prompt) })
	if err := ts.stdin.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := ts.wait(); err != nil {
		t.Fatal(err)
	}
	if got := ts.stdout.Bytes(); string(got) != prompt+"ls\r\n" || flushes != 0 {
		t.Errorf("output %q, OnFlush called %d times; want %q and 0", got, flushes, prompt+"ls\r\n")
	}
}

// TestFlushKeep: the client drops what is queued before a FLUSH except the bytes it says to keep,
// and calls OnFlush only if none of those were written yet.
func TestFlushKeep(t *testing.T) {
	for _, tc := range []struct {
		name    string
		frames  []message // after the first DATA, which the writer holds
		want    string
		onFlush int
	}{
		{"keep the prompt", []message{{typ: frameData, data: []byte("stale")}, {typ: frameData, data: []byte("$ ")}, {typ: frameFlush, keep: 2}}, "first$ ", 1},
		{"keep nothing", []message{{typ: frameData, data: []byte("stale")}, {typ: frameFlush}, {typ: frameData, data: []byte("$ ")}}, "first$ ", 1},
		{"kept bytes were written", []message{{typ: frameFlush, keep: 9}, {typ: frameData, data: []byte("$ ")}}, "first$ ", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, s := tcpPair(t)
			out := &stepWriter{syncBuffer: newSyncBuffer(), permits: make(chan struct{}, 1)}
			cl := NewClient(c, bob)
			cl.Stdout = out
			flushes := 0
			cl.OnFlush = func() { flushes++ }
			started := make(chan error, 1)
			go func() { started <- cl.Start(context.Background()) }()
			p := rawServer(t, s)
			if err := <-started; err != nil {
				t.Fatal(err)
			}
			p.send(message{typ: frameData, data: []byte("first")})
			waitUntil(t, "the first Write", func() bool { return out.arrivals.Load() == 1 })
			for _, m := range tc.frames {
				p.send(m)
			}
			p.send(message{typ: frameExit})
			waitClient(t, cl, "the EXIT", func() bool { return cl.readDone })
			out.open.Store(true)
			out.permits <- struct{}{}
			if err := cl.Wait(); err != nil {
				t.Fatal(err)
			}
			if got := string(out.Bytes()); got != tc.want || flushes != tc.onFlush {
				t.Errorf("output %q, OnFlush called %d times; want %q, %d", got, flushes, tc.want, tc.onFlush)
			}
		})
	}
}

// TestClientDrop: the client goes away; the server hangs up the shell and Serve returns.
func TestClientDrop(t *testing.T) {
	c, s := tcpPair(t)
	term := newFakeTerminal(t, "sleep", "3600")
	ts := startSession(t, c, s, term, nil)
	if err := ts.client.Close(); err != nil {
		t.Fatal(err)
	}
	srv, err := ts.wait()
	if !errors.Is(err, net.ErrClosed) {
		t.Errorf("Wait after Close: %v, want net.ErrClosed", err)
	}
	if srv.err == nil || !strings.Contains(srv.err.Error(), "connection lost") {
		t.Errorf("Serve: %v, want a lost connection", srv.err)
	}
	checkHungUp(t, term, srv)
}

func checkHungUp(t *testing.T, term *fakeTerminal, srv served) {
	t.Helper()
	term.locked(func() {
		if term.hangups != 1 {
			t.Errorf("Hangup called %d times, want 1", term.hangups)
		}
	})
	if ws, ok := srv.state.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGHUP {
		t.Errorf("shell state %v, want killed by SIGHUP", srv.state)
	}
}

// TestServerDrop: the server's connection breaks; the client reports a lost connection and the
// server hangs up.
func TestServerDrop(t *testing.T) {
	c, s := tcpPair(t)
	term := newFakeTerminal(t, "sleep", "3600")
	ts := startSession(t, c, s, term, nil)
	_ = s.Close() // under the ServerConn
	srv, err := ts.wait()
	if err == nil || !strings.HasPrefix(err.Error(), "session: connection lost: ") {
		t.Errorf("Wait: %v, want a lost connection", err)
	}
	if srv.err == nil {
		t.Error("Serve returned no error")
	}
	checkHungUp(t, term, srv)
}

// TestStopping: cancelling Serve's context ends the session with CLOSE "service stopping".
func TestStopping(t *testing.T) {
	for _, tc := range []struct {
		name  string
		flood bool
	}{{"idle", false}, {"flooding", true}} {
		t.Run(tc.name, func(t *testing.T) {
			c, s := tcpPair(t)
			term := newFakeTerminal(t, "sleep", "3600")
			term.flood = tc.flood
			ts := startSession(t, c, s, term, nil)
			if tc.flood {
				ts.stdout.waitFor(t, "some output", func() bool { return ts.stdout.buf.Len() > window })
			}
			ts.cancel()
			srv, err := ts.wait()
			var closed *ClosedError
			if !errors.As(err, &closed) || closed.Reason != "service stopping" {
				t.Errorf("Wait: %v, want ClosedError(service stopping)", err)
			}
			if !errors.Is(srv.err, context.Canceled) {
				t.Errorf("Serve: %v, want context.Canceled", srv.err)
			}
			checkHungUp(t, term, srv)
		})
	}
}

// TestRefused: a refusal reaches the client as a RefusedError with the reason.
func TestRefused(t *testing.T) {
	for _, tc := range []struct {
		name    string
		pair    func(testing.TB) (net.Conn, net.Conn)
		reason  string
		want    string
		readReq bool
	}{
		{"after request", tcpPair, "user bob may not log in here", "user bob may not log in here", true},
		{"pipe", pipePair, "no", "no", true},
		{"controls cleaned", tcpPair, "bad\x1b[2Jterminal\n\u202e", "bad?[2Jterminal??", true},
		{"before request", tcpPair, "login timed out", "login timed out", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, s := tc.pair(t)
			srv := NewServerConn(s)
			done := make(chan error, 1)
			go func() {
				if tc.readReq {
					req, err := srv.ReadRequest()
					if err != nil {
						done <- err
						return
					}
					if req.User != "alice" || req.Term != "vt100" || req.Window != (WindowSize{Rows: 25, Cols: 80}) ||
						len(req.Env) != 2 || req.Env[0] != "LANG=C.UTF-8" || req.Env[1] != "LC_TIME=en_GB.UTF-8" {
						t.Errorf("request %+v", req)
					}
				}
				done <- srv.Refuse(tc.reason)
			}()
			cl := NewClient(c, Request{User: "alice", Term: "vt100", Window: WindowSize{Rows: 25, Cols: 80},
				Env: []string{"PATH=/bin", "LANG=C.UTF-8", "LC_TIME=en_GB.UTF-8", "HOME=/"}})
			err := cl.Start(context.Background())
			var refused *RefusedError
			if !errors.As(err, &refused) || refused.Reason != tc.want {
				t.Fatalf("Start: %v, want RefusedError(%q)", err, tc.want)
			}
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if err := cl.Wait(); err == nil {
				t.Error("Wait after a refusal succeeded")
			}
			if _, err := c.Write([]byte{0}); !errors.Is(err, net.ErrClosed) && !errors.Is(err, io.ErrClosedPipe) {
				t.Errorf("the client's conn is still open after the refusal: %v", err)
			}
		})
	}
}

// rawPeer speaks the protocol by hand, to test one side against any bytes.
type rawPeer struct {
	t    *testing.T
	conn net.Conn
	br   *bufio.Reader
	fr   frameReader
}

func newRawPeer(t *testing.T, conn net.Conn) *rawPeer {
	p := &rawPeer{t: t, conn: conn, br: bufio.NewReader(conn)}
	p.fr.r = p.br
	return p
}

func (p *rawPeer) write(b []byte) {
	p.t.Helper()
	if _, err := p.conn.Write(b); err != nil {
		p.t.Fatalf("raw write: %v", err)
	}
}

func (p *rawPeer) send(m message) {
	p.t.Helper()
	b, err := appendMessage(nil, &m)
	if err != nil {
		p.t.Fatal(err)
	}
	p.write(b)
}

// read reads one frame of any known type.
func (p *rawPeer) read() message {
	p.t.Helper()
	m, err := p.fr.readMessage(func(frameType) bool { return true })
	if err != nil {
		p.t.Fatalf("raw read: %v", err)
	}
	m.data = bytes.Clone(m.data)
	return m
}

// readByte reads the version byte.
func (p *rawPeer) readByte() byte {
	p.t.Helper()
	b, err := p.br.ReadByte()
	if err != nil {
		p.t.Fatalf("raw read: %v", err)
	}
	return b
}

// quiet checks that nothing arrives for a while.
func (p *rawPeer) quiet(d time.Duration) {
	p.t.Helper()
	_ = p.conn.SetReadDeadline(time.Now().Add(d))
	defer func() { _ = p.conn.SetReadDeadline(time.Now().Add(testTimeout)) }()
	if _, err := p.br.Peek(1); !errors.Is(err, os.ErrDeadlineExceeded) {
		p.t.Fatalf("expected nothing to arrive, got %v", err)
	}
}

// login sends the version and a LOGIN.
func (p *rawPeer) login(req Request) {
	p.t.Helper()
	b, err := appendMessage([]byte{version}, &message{typ: frameLogin, req: &req})
	if err == nil && req.Command != nil {
		b, err = appendCommand(b, req.Command) // it follows the request at once
	}
	if err != nil {
		p.t.Fatal(err)
	}
	p.write(b)
}

// serveRaw runs a server with term for a raw client, which it returns logged in. setup, if
// given, adjusts the server before it starts.
func serveRaw(t *testing.T, term Terminal, req Request, caps []string, setup ...func(*ServerConn)) (*rawPeer, chan served, message) {
	t.Helper()
	c, s := tcpPair(t)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	srv := NewServerConn(s)
	srv.capabilities = caps
	for _, f := range setup {
		f(srv)
	}
	res := make(chan served, 1)
	go func() {
		defer cancel()
		if _, err := srv.ReadRequest(); err != nil {
			_ = srv.Close()
			term.Hangup()
			st, _ := term.Wait()
			res <- served{st, err}
			return
		}
		st, err := srv.Serve(ctx, term)
		res <- served{st, err}
	}()
	t.Cleanup(func() {
		cancel()
		_ = c.Close()
		r := <-res
		res <- r
	})
	p := newRawPeer(t, c)
	p.login(req)
	if v := p.readByte(); v != version {
		t.Fatalf("server answered version %d", v)
	}
	return p, res, p.read()
}

func waitServed(t *testing.T, res chan served) served {
	t.Helper()
	select {
	case r := <-res:
		res <- r
		return r
	case <-time.After(testTimeout):
		t.Fatal("timed out waiting for Serve")
	}
	panic("unreachable")
}

var bob = Request{User: "bob", Term: "xterm"}

// TestProtocolErrors: a client that breaks the protocol gets CLOSE with the reason, and the shell
// is hung up.
func TestProtocolErrors(t *testing.T) {
	for _, tc := range []struct {
		name    string
		send    func(p *rawPeer)
		reason  string
		blockIn bool
	}{
		{"unknown mandatory frame", func(p *rawPeer) { p.write([]byte{0x42, 0, 0, 1, 0}) }, "unknown frame type 0x42", false},
		{"frame type 0", func(p *rawPeer) { p.write([]byte{0, 0, 0, 0}) }, "unknown frame type 0x00", false},
		{"oversized frame", func(p *rawPeer) { p.write([]byte{byte(frameData), 0x02, 0x00, 0x01}) }, "DATA frame of 131073 bytes exceeds the limit of 131072", false},
		{"server frame", func(p *rawPeer) { p.send(message{typ: frameExit}) }, "unexpected EXIT frame", false},
		{"second login", func(p *rawPeer) { p.send(message{typ: frameLogin, req: &bob}) }, "unexpected LOGIN frame", false},
		{"short window", func(p *rawPeer) { p.write([]byte{byte(frameWindow), 0, 0, 2, 0, 24}) }, "bad WINDOW frame: payload is too short", false},
		{"EOF with payload", func(p *rawPeer) { p.write([]byte{byte(frameEOF), 0, 0, 1, 'x'}) }, "bad EOF frame: 1 bytes of payload", false},
		{"zero credit", func(p *rawPeer) { p.write([]byte{byte(frameCredit), 0, 0, 4, 0, 0, 0, 0}) }, "bad CREDIT frame: credit of 0 bytes", false},
		{"credit not due", func(p *rawPeer) { p.send(message{typ: frameCredit, credit: 1}) }, "client granted credit for 1 bytes, but only 0 were outstanding", false},
		{"data after EOF", func(p *rawPeer) {
			p.send(message{typ: frameEOF})
			p.send(message{typ: frameData, data: []byte("x")})
		}, "DATA after EOF", false},
		{"second EOF", func(p *rawPeer) {
			p.send(message{typ: frameEOF})
			p.send(message{typ: frameEOF})
		}, "second EOF", false},
		{"input beyond the window", func(p *rawPeer) {
			for range window / maxDataFrame {
				p.send(message{typ: frameData, data: make([]byte, maxDataFrame)})
			}
			p.send(message{typ: frameData, data: []byte("x")})
		}, "client sent more than the credit window of 262144 bytes", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			term := newFakeTerminal(t, "sleep", "3600")
			term.blockIn = tc.blockIn
			p, res, accept := serveRaw(t, term, bob, nil)
			if accept.typ != frameAccept || len(accept.caps) != 0 {
				t.Fatalf("answer %+v", accept)
			}
			// An unknown optional frame is skipped: the session goes on.
			p.write([]byte{0x80 | 0x42, 0, 0, 3, 1, 2, 3})
			tc.send(p)
			m := p.read()
			want := "protocol error: " + tc.reason
			if m.typ != frameClose || m.text != want {
				t.Errorf("got %v %q, want CLOSE %q", m.typ, m.text, want)
			}
			srv := waitServed(t, res)
			if !errors.Is(srv.err, ErrProtocol) {
				t.Errorf("Serve: %v, want a protocol error", srv.err)
			}
			checkHungUp(t, term, srv)
		})
	}
}

// TestVersionRefused: a version this server does not speak gets the fixed refusal form.
func TestVersionRefused(t *testing.T) {
	for _, v := range []byte{0, 2, 7, 255} {
		c, s := tcpPair(t)
		srv := NewServerConn(s)
		done := make(chan error, 1)
		go func() {
			_, err := srv.ReadRequest()
			done <- err
		}()
		if _, err := c.Write([]byte{v, 0xde, 0xad}); err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(c)
		if err != nil {
			t.Fatal(err)
		}
		want := "\x00unsupported protocol version " + strconv.Itoa(int(v)) + "; this server speaks 1\n"
		if string(got) != want {
			t.Errorf("version %d: answer %q, want %q", v, got, want)
		}
		_ = c.Close() // the server lingers until the client closes
		if err := <-done; err == nil {
			t.Errorf("version %d: ReadRequest succeeded", v)
		}
	}
}

// TestAnswers: the client's handling of every kind of answer a server may give, or garbage.
func TestAnswers(t *testing.T) {
	accept := func(caps ...string) []byte {
		b, _ := appendMessage([]byte{version}, &message{typ: frameAccept, caps: caps})
		return b
	}
	for _, tc := range []struct {
		name   string
		answer []byte
		offer  []string
		want   string // the error; "" for success
	}{
		{"accept", accept(), nil, ""},
		{"accept offered", accept("x-resume"), []string{"exec", "x-resume"}, ""},
		{"accept not offered", accept("x-resume"), nil, `session: protocol error: server accepted capability "x-resume", which was not offered`},
		{"version refusal", []byte("\x00unsupported protocol version 1; this server speaks 2\n"), nil, "session: login refused: unsupported protocol version 1; this server speaks 2"},
		{"version refusal cut", []byte("\x00unsupported"), nil, "session: reading the server's refusal: unexpected EOF"},
		{"version refusal with ESC", []byte("\x00bad\x1b[2J\n"), nil, "session: reading the server's refusal: protocol error: byte 0x1b in the refusal line"},
		{"ssh server", []byte("SSH-2.0-OpenSSH_9.2\r\n"), nil, "session: server answered protocol version 83 to version 1 (is it a session server?)"},
		{"classic rlogind", []byte{1, 'r', 'l', 'o', 'g', 'i', 'n', 'd'}, nil, "session: reading the server's answer: protocol error: type 0x72 frame of 7106407 bytes exceeds the limit of 131072"},
		{"nothing", nil, nil, "session: server closed the connection without answering"},
		{"data first", append([]byte{version}, appendFrame(nil, frameData, []byte("hi"))...), nil, "session: reading the server's answer: protocol error: unexpected DATA frame"},
		{"cut frame", accept("x-resume")[:5], []string{"x-resume"}, "session: reading the server's answer: unexpected EOF"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, s := tcpPair(t)
			go func() {
				p := newRawPeer(t, s)
				_, _ = p.br.ReadByte()
				_, _, _ = p.fr.next() // the login request
				_, _ = s.Write(tc.answer)
				_ = s.(*net.TCPConn).CloseWrite()
				_, _ = io.Copy(io.Discard, s)
			}()
			cl := NewClient(c, bob)
			cl.capabilities = tc.offer
			err := cl.Start(context.Background())
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Start: %v", err)
				}
				_ = cl.Close()
				_ = cl.Wait()
				return
			}
			if err == nil || err.Error() != tc.want {
				t.Fatalf("Start: %v\nwant %s", err, tc.want)
			}
		})
	}
}

// TestCapabilities: the server accepts the offered capabilities it supports, ignoring the others.
func TestCapabilities(t *testing.T) {
	term := newFakeTerminal(t, "sleep", "3600")
	req := bob
	req.Capabilities = []string{"x-future", "x-resume", "forward"}
	_, _, accept := serveRaw(t, term, req, []string{"exec", "forward", "x-resume"})
	if accept.typ != frameAccept || strings.Join(accept.caps, ",") != "x-resume,forward" {
		t.Errorf("answer %v %q, want ACCEPT [x-resume forward]", accept.typ, accept.caps)
	}

	// A Client offers its own capabilities, whatever the Request says, and keeps what was accepted.
	c, s := tcpPair(t)
	term2 := newFakeTerminal(t)
	ts := startSession(t, c, s, term2, func(c *Client) {
		c.Request.Capabilities = []string{"ignored"}
		c.capabilities = []string{"x-resume", "x-other"}
	})
	if len(ts.client.accepted) != 0 {
		t.Errorf("accepted %q", ts.client.accepted)
	}
	_ = ts.stdin.Close()
	if _, err := ts.wait(); err != nil {
		t.Fatal(err)
	}
}

// TestBadRequests: requests outside the bounds are refused by the client before sending, and by
// the server (with a REFUSE saying why) when a client sends them anyway.
func TestBadRequests(t *testing.T) {
	long := strings.Repeat("a", 33)
	many := make([]string, 65)
	for i := range many {
		many[i] = "LC_X" + strings.Repeat("Y", i) + "=C"
	}
	manyCaps := make([]string, 33)
	for i := range manyCaps {
		manyCaps[i] = "c" + strconv.Itoa(i)
	}
	for _, tc := range []struct {
		name string
		req  Request
		want string
	}{
		{"empty user", Request{User: ""}, "empty user name"},
		{"long user", Request{User: long}, "user name of 33 bytes exceeds the limit of 32"},
		{"option user", Request{User: "-froot"}, `user name "-froot" starts with '-'`},
		{"space in user", Request{User: "f root"}, `user name "f root" has a forbidden byte 0x20`},
		{"NUL in user", Request{User: "bob\x00"}, `user name "bob\x00" has a forbidden byte 0x00`},
		{"newline in user", Request{User: "bob\n"}, `user name "bob\n" has a forbidden byte 0x0a`},
		{"UTF-8 user", Request{User: "bøb"}, `user name "bøb" has a forbidden byte 0xc3`},
		{"long term", Request{User: "bob", Term: strings.Repeat("x", 257)}, "terminal type of 257 bytes exceeds the limit of 256"},
		{"slash in term", Request{User: "bob", Term: "../../tmp/x"}, `terminal type "../../tmp/x" has a forbidden byte 0x2f`},
		{"ESC in term", Request{User: "bob", Term: "x\x1b[31m"}, `terminal type "x\x1b[31m" has a forbidden byte 0x1b`},
		{"other env", Request{User: "bob", Env: []string{"LD_PRELOAD=/tmp/x.so"}}, `environment variable "LD_PRELOAD=/tmp/x.so" is not LANG or LC_*`},
		{"env without =", Request{User: "bob", Env: []string{"LANG"}}, `environment variable "LANG" is not LANG or LC_*`},
		{"lower-case LC", Request{User: "bob", Env: []string{"LC_all=C"}}, `environment variable "LC_all=C" is not LANG or LC_*`},
		{"ESC in env", Request{User: "bob", Env: []string{"LANG=\x1b]0;x\a"}}, "environment variable LANG has a forbidden byte 0x1b in its value"},
		{"long env", Request{User: "bob", Env: []string{"LANG=" + strings.Repeat("x", 1020)}}, "environment variable of 1025 bytes exceeds the limit of 1024"},
		{"many env", Request{User: "bob", Env: many}, "65 environment variables exceed the limit of 64"},
		{"twice env", Request{User: "bob", Env: []string{"LANG=C", "LANG=POSIX"}}, "environment variable LANG appears twice"},
		{"many caps", Request{User: "bob", Capabilities: manyCaps}, "33 capabilities exceed the limit of 32"},
		{"empty cap", Request{User: "bob", Capabilities: []string{""}}, "capability name of 0 bytes is not 1 to 64 bytes"},
		{"long cap", Request{User: "bob", Capabilities: []string{strings.Repeat("c", 65)}}, "capability name of 65 bytes is not 1 to 64 bytes"},
		{"space in cap", Request{User: "bob", Capabilities: []string{"a b"}}, `capability name "a b" has a forbidden byte 0x20`},
		{"twice cap", Request{User: "bob", Capabilities: []string{"a", "a"}}, `capability "a" appears twice`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.req.validate(); err == nil || err.Error() != tc.want {
				t.Errorf("validate: %v\nwant %s", err, tc.want)
			}
			// The client refuses to send it (a bad environment or terminal type it repairs:
			// TestClientRepairsRequest).
			c, s := pipePair(t)
			cl := NewClient(c, tc.req)
			cl.capabilities = tc.req.Capabilities
			if checkUser(tc.req.User) != nil || checkCapabilities(tc.req.Capabilities) != nil {
				err := cl.Start(context.Background())
				if err == nil || !strings.HasPrefix(err.Error(), "session: bad login request: ") {
					t.Errorf("Start: %v, want a bad request", err)
				}
			}
			_ = s.Close()
			_ = cl.Close()

			// The server refuses it, saying why.
			c, s = tcpPair(t)
			srv := NewServerConn(s)
			done := make(chan error, 1)
			go func() {
				_, err := srv.ReadRequest()
				done <- err
			}()
			p := newRawPeer(t, c)
			var payload []byte
			payload = appendString16(payload, tc.req.User)
			payload = appendString16(payload, tc.req.Term)
			payload = append(payload, make([]byte, 8)...)
			payload = append(payload, byte(len(tc.req.Env)))
			for _, e := range tc.req.Env {
				payload = appendString16(payload, e)
			}
			payload = appendCapabilities(payload, tc.req.Capabilities)
			p.write(appendFrame([]byte{version}, frameLogin, payload))
			if v := p.readByte(); v != version {
				t.Fatalf("answer version %d", v)
			}
			m := p.read()
			if m.typ != frameRefuse || m.text != "protocol error: bad LOGIN frame: "+tc.want {
				t.Errorf("answer %v %q", m.typ, m.text)
			}
			_ = c.Close() // the server lingers until the client closes
			if err := <-done; !errors.Is(err, ErrProtocol) {
				t.Errorf("ReadRequest: %v", err)
			}
		})
	}
}

// TestServerWindow: the server never has more than the credit window of output unacknowledged,
// and coalesces the output that piled up into big frames.
func TestServerWindow(t *testing.T) {
	term := newFakeTerminal(t, "sleep", "3600")
	term.flood = true
	p, res, _ := serveRaw(t, term, bob, nil)
	total := 0
	for total < window {
		m := p.read()
		if m.typ != frameData || len(m.data) > maxDataFrame {
			t.Fatalf("got %v of %d bytes", m.typ, len(m.data))
		}
		total += len(m.data)
	}
	if total != window {
		t.Fatalf("server sent %d bytes, more than the window", total)
	}
	term.waitFor(t, "the server's pending output to fill", func() bool { return term.produced >= window+maxDataFrame })
	p.quiet(100 * time.Millisecond)

	p.send(message{typ: frameCredit, credit: creditBatch})
	if m := p.read(); m.typ != frameData || len(m.data) != creditBatch {
		t.Fatalf("after a credit of %d: %v of %d bytes, want one frame of all of it", creditBatch, m.typ, len(m.data))
	}
	p.quiet(100 * time.Millisecond)
	p.send(message{typ: frameCredit, credit: 10})
	if m := p.read(); m.typ != frameData || len(m.data) != 10 {
		t.Fatalf("after a credit of 10: %v of %d bytes", m.typ, len(m.data))
	}
	_ = p.conn.Close()
	waitServed(t, res)
}

// rawServer accepts a client's login by hand and returns the raw peer.
func rawServer(t *testing.T, s net.Conn) *rawPeer {
	p := newRawPeer(t, s)
	if v := p.readByte(); v != version {
		t.Errorf("client version %d", v)
	}
	if m := p.read(); m.typ != frameLogin {
		t.Errorf("client sent %v", m.typ)
	}
	p.write(appendFrame([]byte{version}, frameAccept, []byte{0}))
	return p
}

// countConn counts Writes.
type countConn struct {
	net.Conn
	writes atomic.Int64
}

func (c *countConn) Write(b []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(b)
}

// TestStdinPipe: each Write leaves at once as one frame in one conn Write; without credit, Write
// waits.
func TestStdinPipe(t *testing.T) {
	c, s := tcpPair(t)
	cc := &countConn{Conn: c}
	cl := NewClient(cc, bob)
	stdin, err := cl.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cl.StdinPipe(); err == nil {
		t.Error("second StdinPipe succeeded")
	}
	started := make(chan error, 1)
	go func() { started <- cl.Start(context.Background()) }()
	p := rawServer(t, s)
	if err := <-started; err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cl.Close()
		_ = cl.Wait()
	})

	for _, key := range []string{"a", "\x03", "\x1b[A", "\xff\xffss"} {
		before := cc.writes.Load()
		if n, err := stdin.Write([]byte(key)); n != len(key) || err != nil {
			t.Fatal(n, err)
		}
		if w := cc.writes.Load() - before; w != 1 {
			t.Errorf("Write(%q) made %d conn writes, want 1", key, w)
		}
		if m := p.read(); m.typ != frameData || string(m.data) != key {
			t.Errorf("Write(%q) sent %v %q", key, m.typ, m.data)
		}
	}

	// A big write is cut into frames, and stops when the window is used up.
	used := 1 + 1 + 3 + 4
	wrote := make(chan int, 1)
	go func() {
		n, _ := stdin.Write(make([]byte, window)) // 9 bytes more than the credit left
		wrote <- n
	}()
	got := 0
	for got < window-used {
		m := p.read()
		if m.typ != frameData || len(m.data) > maxDataFrame {
			t.Fatalf("%v of %d bytes", m.typ, len(m.data))
		}
		got += len(m.data)
	}
	p.quiet(100 * time.Millisecond)
	p.send(message{typ: frameCredit, credit: uint32(used)})
	if m := p.read(); m.typ != frameData || len(m.data) != used {
		t.Fatalf("after credit: %v of %d bytes, want %d", m.typ, len(m.data), used)
	}
	if n := <-wrote; n != window {
		t.Errorf("Write returned %d", n)
	}
	if err := stdin.Close(); err != nil {
		t.Fatal(err)
	}
	if m := p.read(); m.typ != frameEOF {
		t.Errorf("Close sent %v", m.typ)
	}
}

// TestClientWindow: a server that sends more than the window breaks the protocol.
func TestClientWindow(t *testing.T) {
	c, s := tcpPair(t)
	out := &stepWriter{syncBuffer: newSyncBuffer(), permits: make(chan struct{})}
	cl := NewClient(c, bob)
	cl.Stdout = out
	started := make(chan error, 1)
	go func() { started <- cl.Start(context.Background()) }()
	p := rawServer(t, s)
	if err := <-started; err != nil {
		t.Fatal(err)
	}
	for range window / maxDataFrame {
		p.send(message{typ: frameData, data: make([]byte, maxDataFrame)})
	}
	p.send(message{typ: frameData, data: []byte("x")})
	waitClient(t, cl, "the protocol error", func() bool { return cl.ended })
	close(out.permits)
	err := cl.Wait()
	if err == nil || err.Error() != "session: protocol error: server sent more than the credit window of 262144 bytes" {
		t.Errorf("Wait: %v", err)
	}
}

// TestStartErrors: misuse of the API.
func TestStartErrors(t *testing.T) {
	c, s := pipePair(t)
	cl := NewClient(c, bob)
	if err := cl.Wait(); err == nil {
		t.Error("Wait before Start succeeded")
	}
	if err := cl.Resize(WindowSize{}); err == nil {
		t.Error("Resize before Start succeeded")
	}
	if err := cl.Close(); err != nil {
		t.Error(err)
	}
	if err := cl.Start(context.Background()); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Start after Close: %v", err)
	}
	if err := cl.Start(context.Background()); err == nil {
		t.Error("second Start succeeded")
	}
	cl2 := NewClient(s, bob)
	cl2.Stdin = strings.NewReader("")
	if _, err := cl2.StdinPipe(); err == nil {
		t.Error("StdinPipe with Stdin set succeeded")
	}
	_ = cl2.Close()

	_, s2 := pipePair(t)
	srv := NewServerConn(s2)
	term := newFakeTerminal(t, "sleep", "3600")
	if _, err := srv.Serve(context.Background(), term); err == nil {
		t.Error("Serve without ReadRequest succeeded")
	}
	term.locked(func() {
		if !term.reaped {
			t.Error("Serve did not wait for the shell")
		}
	})
}

// TestStartContext: a server that never answers cannot hold Start past its context, and the conn
// is closed then.
func TestStartContext(t *testing.T) {
	c, s := tcpPair(t)
	cl := NewClient(c, bob)
	ctx, cancel := context.WithCancel(context.Background())
	started := make(chan error, 1)
	go func() { started <- cl.Start(ctx) }()
	p := newRawPeer(t, s)
	if v := p.readByte(); v != version {
		t.Fatalf("client version %d", v)
	}
	if m := p.read(); m.typ != frameLogin {
		t.Fatalf("client sent %v", m.typ)
	}
	cancel()
	if err := <-started; !errors.Is(err, context.Canceled) {
		t.Fatalf("Start after cancel: %v, want context.Canceled", err)
	}
	if _, err := p.br.ReadByte(); !errors.Is(err, io.EOF) {
		t.Errorf("the server's read after the cancelled Start: %v, want EOF", err)
	}
	if err := cl.Wait(); err == nil {
		t.Error("Wait after a failed Start succeeded")
	}
}

// TestRunContext: Run's context ends a running session: Run closes it and returns.
func TestRunContext(t *testing.T) {
	c, s := tcpPair(t)
	cl := NewClient(c, bob)
	cl.Stdin = strings.NewReader("x") // sent once Start has returned
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- cl.Run(ctx) }()
	p := newRawPeer(t, s)
	p.readByte()
	p.read()
	p.write(appendFrame([]byte{version}, frameAccept, []byte{0}))
	if m := p.read(); m.typ != frameData {
		t.Fatalf("client sent %v, want its input", m.typ)
	}
	cancel()
	if err := <-ran; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Run after cancel: %v, want net.ErrClosed", err)
	}
}
