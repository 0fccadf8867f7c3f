package session

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"
	"golang.org/x/term"
)

// ptyWriter is a StoppableWriter on the slave of a real pty, written non-blocking as rlogin
// writes its terminal: a write that finds the pty full waits in poll(2) for room, or for Wake.
type ptyWriter struct {
	fd      int    // the slave, non-blocking
	wake    [2]int // pipe: Wake writes to wake[1]
	waiting atomic.Bool
}

// newPtyWriter opens a pty in raw mode; it returns its master's descriptor, non-blocking, which
// the test reads (or not), and a ptyWriter on its slave.
func newPtyWriter(t *testing.T) (int, *ptyWriter) {
	t.Helper()
	master, slave, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = master.Close()
		_ = slave.Close()
	})
	if _, err := term.MakeRaw(int(slave.Fd())); err != nil {
		t.Fatal(err)
	}
	w := &ptyWriter{fd: int(slave.Fd())}
	if err := unix.SetNonblock(w.fd, true); err != nil {
		t.Fatal(err)
	}
	mfd := int(master.Fd()) // once: each Fd call makes the descriptor blocking again
	if err := unix.SetNonblock(mfd, true); err != nil {
		t.Fatal(err)
	}
	if err := unix.Pipe2(w.wake[:], unix.O_CLOEXEC|unix.O_NONBLOCK); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = unix.Close(w.wake[0])
		_ = unix.Close(w.wake[1])
	})
	return mfd, w
}

func (w *ptyWriter) Write(p []byte) (int, error) { return w.WriteUntil(p, nil) }

func (w *ptyWriter) WriteUntil(p []byte, stop func() bool) (int, error) {
	n := 0
	for {
		if stop != nil && stop() {
			return n, nil
		}
		m, err := unix.Write(w.fd, p[n:])
		n += max(m, 0)
		switch {
		case n == len(p):
			return n, nil
		case err == unix.EAGAIN:
		case err == nil, err == unix.EINTR:
			continue
		default:
			return n, err
		}
		fds := []unix.PollFd{{Fd: int32(w.fd), Events: unix.POLLOUT}, {Fd: int32(w.wake[0]), Events: unix.POLLIN}}
		w.waiting.Store(true)
		_, err = unix.Poll(fds, int(testTimeout.Milliseconds())) // the watchdog
		w.waiting.Store(false)
		if err != nil && err != unix.EINTR {
			return n, err
		}
		_, _ = unix.Read(w.wake[0], make([]byte, 16))
	}
}

func (w *ptyWriter) Wake() { _, _ = unix.Write(w.wake[1], []byte{0}) }

// readAvailable reads what the pty's master holds now, until it would wait.
func readAvailable(t *testing.T, master int) []byte {
	t.Helper()
	var got []byte
	buf := make([]byte, 64<<10)
	for {
		n, err := unix.Read(master, buf)
		if err == unix.EAGAIN {
			return got
		}
		if err != nil {
			t.Fatalf("reading the pty: %v", err)
		}
		got = append(got, buf[:n]...)
	}
}

// readExactly reads n bytes from the pty's master, waiting for them.
func readExactly(t *testing.T, master int, n int) []byte {
	t.Helper()
	var got []byte
	waitUntil(t, fmt.Sprintf("%d bytes on the terminal", n), func() bool {
		got = append(got, readAvailable(t, master)...)
		return len(got) >= n
	})
	return got
}

// holdServer plays the server of a Client, frame by frame: it answers each SYNC at once, but
// those from an input with ^C or ^\ on, which wait for answerHeld.
type holdServer struct {
	p        *rawPeer
	wmu      sync.Mutex
	mu       sync.Mutex
	holding  bool              // input with ^C came: SYNCs wait
	held     int               // SYNCs not answered since
	onData   func(data []byte) // if set, called with each DATA from the client
	gotInput chan struct{}     // gets a value at each input that holds
	done     chan struct{}
}

// startHoldServer starts cl against a holdServer that accepts caps.
func startHoldServer(t *testing.T, cl *Client, s *rawPeer, caps []string) *holdServer {
	t.Helper()
	started := make(chan error, 1)
	go func() { started <- cl.Start(context.Background()) }()
	if v := s.readByte(); v != version {
		t.Fatalf("client sent version %d", v)
	}
	if m := s.read(); m.typ != frameLogin {
		t.Fatalf("client sent %v, want LOGIN", m.typ)
	}
	s.write([]byte{version})
	s.send(message{typ: frameAccept, caps: caps})
	if err := <-started; err != nil {
		t.Fatal(err)
	}
	h := &holdServer{p: s, gotInput: make(chan struct{}, 16), done: make(chan struct{})}
	go h.readClient()
	t.Cleanup(func() {
		_ = cl.Close()
		<-h.done
	})
	return h
}

// readClient reads the client's frames until its conn closes.
func (h *holdServer) readClient() {
	defer close(h.done)
	for {
		m, err := h.p.fr.readMessage(func(frameType) bool { return true })
		if err != nil {
			return
		}
		h.mu.Lock()
		if m.typ == frameData && h.onData != nil {
			h.onData(m.data)
		}
		switch {
		case m.typ == frameData && bytes.ContainsAny(m.data, "\x03\x1c"):
			h.holding = true
			h.gotInput <- struct{}{}
		case m.typ == frameSync && h.holding:
			h.held++
		case m.typ == frameSync:
			h.send(message{typ: frameSynced})
		}
		h.mu.Unlock()
	}
}

// send sends m; it is written whole, between other frames.
func (h *holdServer) send(m message) {
	b, err := appendMessage(nil, &m)
	if err != nil {
		panic(err) // the tests' messages encode
	}
	h.wmu.Lock()
	defer h.wmu.Unlock()
	_, _ = h.p.conn.Write(b) // a broken conn shows in the client
}

// answerHeld answers the SYNCs that waited, once the one after the ^C came.
func (h *holdServer) answerHeld(t *testing.T) {
	t.Helper()
	waitUntil(t, "the SYNC after ^C", func() bool {
		h.mu.Lock()
		defer h.mu.Unlock()
		return h.held > 0
	})
	h.mu.Lock()
	defer h.mu.Unlock()
	for ; h.held > 0; h.held-- {
		h.send(message{typ: frameSynced})
	}
	h.holding = false
}

// floodBytes is n bytes of numbered lines, so that any byte out of place shows.
func floodBytes(n int) []byte {
	var b bytes.Buffer
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, "%07d\n", i)
	}
	return b.Bytes()[:n]
}

// TestWriteStopsAtHold: a chunk of output under way, waiting for room in a real pty whose master
// the test does not read, stops when the user types ^C (the hold begins): what the terminal
// took is all that was written, and the rest of the chunk stays queued, in order, where the
// FLUSH drops it or the SYNCED releases it. Without a hold (a server without flow2), the FLUSH
// itself stops the chunk and drops its rest.
func TestWriteStopsAtHold(t *testing.T) {
	for _, tc := range []struct {
		name  string
		caps  []string
		flush bool
	}{
		{"held, flushed", []string{capFlow2}, true},
		{"held, not flushed", []string{capFlow2}, false},
		{"flushed without a hold", nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			master, w := newPtyWriter(t)
			c, s := tcpPair(t)
			cl := NewClient(c, Request{User: "bob", Term: "xterm"})
			cl.Stdout = w
			cl.Interrupts = []byte{3}
			flushes := new(atomic.Int32)
			cl.OnFlush = func() { flushes.Add(1) }
			stdin, err := cl.StdinPipe()
			if err != nil {
				t.Fatal(err)
			}
			srv := startHoldServer(t, cl, newRawPeer(t, s), tc.caps)

			// Less than a window (no credit needed), far more than the pty holds.
			flood := floodBytes(192 << 10)
			for p := flood; len(p) > 0; p = p[min(len(p), 16<<10):] {
				srv.send(message{typ: frameData, data: p[:min(len(p), 16<<10)]})
			}
			waitClient(t, cl, "the flood received, and a chunk waiting for room", func() bool {
				return cl.res.outReceived == uint64(len(flood)) && cl.chunking && w.waiting.Load()
			})

			if tc.caps != nil {
				if _, err := stdin.Write([]byte{3}); err != nil {
					t.Fatal(err)
				}
				<-srv.gotInput
			} else {
				srv.send(message{typ: frameFlush})
			}
			waitClient(t, cl, "the chunk stopped", func() bool { return !cl.chunking && !cl.writing })
			shown := readAvailable(t, master)
			if !bytes.HasPrefix(flood, shown) || len(shown) == len(flood) {
				t.Fatalf("the terminal shows %d bytes, want a beginning of the flood's %d", len(shown), len(flood))
			}
			cl.mu.Lock()
			queued := bytes.Clone(cl.q[cl.qoff:])
			cl.mu.Unlock()
			if tc.caps != nil && !bytes.Equal(queued, flood[len(shown):]) {
				t.Fatalf("%d bytes shown and %d queued after ^C, want the rest of the flood (%d) queued", len(shown), len(queued), len(flood)-len(shown))
			}

			if tc.flush && tc.caps != nil {
				srv.send(message{typ: frameFlush})
			}
			if tc.caps != nil {
				srv.answerHeld(t)
			}
			srv.send(message{typ: frameData, data: []byte("PROMPT\n")})
			want := []byte("PROMPT\n")
			if !tc.flush {
				want = append(bytes.Clone(flood[len(shown):]), want...)
			}
			if got := readExactly(t, master, len(want)); !bytes.Equal(got, want) {
				t.Errorf("after the hold the terminal got %d bytes ending %q, want %d ending %q", len(got), got[max(0, len(got)-40):], len(want), want[max(0, len(want)-40):])
			}
			if got := flushes.Load(); tc.flush && got != 1 {
				t.Errorf("OnFlush called %d times, want 1", got)
			}
			srv.send(message{typ: frameExit})
			if err := cl.Wait(); err != nil && !errors.Is(err, os.ErrClosed) {
				t.Errorf("Wait: %v", err)
			}
		})
	}
}

// TestCloseStopsWrite: Close ends a chunk of output that waits for room in a terminal nobody
// reads, so that Wait returns.
func TestCloseStopsWrite(t *testing.T) {
	_, w := newPtyWriter(t)
	c, s := tcpPair(t)
	cl := NewClient(c, Request{User: "bob", Term: "xterm"})
	cl.Stdout = w
	srv := startHoldServer(t, cl, newRawPeer(t, s), nil)
	srv.send(message{typ: frameData, data: floodBytes(128 << 10)})
	waitClient(t, cl, "a chunk waiting for room", func() bool { return cl.chunking && w.waiting.Load() })
	waited := make(chan error, 1)
	go func() { waited <- cl.Wait() }()
	if err := cl.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-waited:
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("Wait after Close: %v, want net.ErrClosed", err)
		}
	case <-time.After(testTimeout):
		t.Fatal("Wait still waits for the chunk under way after Close")
	}
}
