package client

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"
	"golang.org/x/term"

	"github.com/rlogin-go/rlogin/session"
)

// rawTerminalWriter returns the master of a pty in raw mode and an outputWriter on its slave, with its
// non-blocking descriptor open.
func rawTerminalWriter(t *testing.T) (master *os.File, o *outputWriter) {
	t.Helper()
	master, slave, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		master.Close()
		slave.Close()
	})
	if _, err := term.MakeRaw(int(slave.Fd())); err != nil {
		t.Fatal(err)
	}
	o = &outputWriter{w: slave}
	o.openNonblocking(int(slave.Fd()))
	return master, o
}

// TestOutputTryWrite: on a terminal, TryWrite writes what the terminal takes and returns at once
// when it is full; what it wrote counts for atLineStart; without a terminal it takes nothing.
func TestOutputTryWrite(t *testing.T) {
	master, o := rawTerminalWriter(t)
	defer o.closeNonblocking()
	if o.nbfd == 0 {
		t.Fatal("openNonblocking did not open the terminal")
	}

	if n, err := o.TryWrite([]byte("hi\r\n")); n != 4 || err != nil {
		t.Fatalf("TryWrite = %d, %v; want 4, nil", n, err)
	}
	got := make([]byte, 4)
	_ = master.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := master.Read(got); err != nil || string(got) != "hi\r\n" {
		t.Fatalf("the terminal got %q, %v", got, err)
	}
	if !o.atLineStart() {
		t.Error("atLineStart after \"hi\\r\\n\" is false")
	}

	// Nobody reads the master now: the terminal fills up, and TryWrite must not wait.
	big := bytes.Repeat([]byte("x"), 1<<20)
	start := time.Now()
	n, err := o.TryWrite(big)
	if err != nil || n <= 0 || n >= len(big) {
		t.Fatalf("TryWrite on a terminal nobody reads = %d, %v; want some of %d bytes", n, err, len(big))
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("TryWrite took %v; it must not wait", d)
	}
	if o.atLineStart() {
		t.Error("atLineStart after x's is true")
	}

	f, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	plain := &outputWriter{w: f}
	plain.openNonblocking(int(f.Fd()))
	defer plain.closeNonblocking()
	if n, err := plain.TryWrite([]byte("x")); n != 0 || err != nil {
		t.Errorf("TryWrite to a file = %d, %v; want 0, nil (everything goes through Write)", n, err)
	}
}

// TestOutputWriteWaitsForRoom: Write on a full terminal waits for room (in the poller) and
// delivers everything, in order, as the terminal is read; closeNonblocking ends a Write that
// waits on a terminal nobody reads.
func TestOutputWriteWaitsForRoom(t *testing.T) {
	master, o := rawTerminalWriter(t)
	if o.room == nil {
		t.Fatal("openNonblocking set up no wait for room")
	}

	big := make([]byte, 4<<20) // far more than the terminal holds
	for i := range big {
		big[i] = byte('a' + i%26)
	}
	wrote := make(chan error, 1)
	go func() {
		n, err := o.Write(big)
		if err == nil && n != len(big) {
			err = fmt.Errorf("wrote %d of %d bytes", n, len(big))
		}
		wrote <- err
	}()
	_ = master.SetReadDeadline(time.Now().Add(30 * time.Second)) // watchdog
	got := make([]byte, len(big))
	if _, err := io.ReadFull(master, got); err != nil {
		t.Fatalf("reading the terminal: %v", err)
	}
	if err := <-wrote; err != nil {
		t.Fatalf("Write: %v", err)
	}
	if !bytes.Equal(got, big) {
		t.Fatal("the terminal got other bytes than written")
	}
	// Nobody reads now: Write waits until closeNonblocking.
	go func() {
		_, err := o.Write(big)
		wrote <- err
	}()
	time.Sleep(50 * time.Millisecond) // usually waiting by now; either way Write must fail
	o.closeNonblocking()
	select {
	case err := <-wrote:
		if err == nil {
			t.Fatal("Write on a terminal nobody reads succeeded")
		}
	case <-time.After(testTimeout):
		t.Fatal("closeNonblocking did not end a waiting Write")
	}
}

// TestOutputCloseWhileWriteWakes: closeNonblocking returns, and ends the Write, when a Write
// woken for room is about to try again. A review found that closing the room watch under o.mu
// deadlocked: the close waits for the woken Write, whose try waits for o.mu. The test lines the
// two up in that order, watching the goroutines' stacks, so that the old code hangs every time.
func TestOutputCloseWhileWriteWakes(t *testing.T) {
	master, o := rawTerminalWriter(t)
	wrote := make(chan error, 1)
	go func() {
		_, err := o.Write(bytes.Repeat([]byte("y"), 4<<20)) // far more than the terminal holds
		wrote <- err
	}()
	// The stacks name o's address: goroutines of another test cannot match.
	writing := fmt.Sprintf("outputWriter).WriteUntil(%p", o)
	waitForGoroutine(t, writing, "internal/poll.runtime_pollWait") // waiting for room

	o.mu.Lock()
	locked := true
	defer func() {
		if locked { // a failed wait below: let the goroutines go
			o.mu.Unlock()
		}
	}()
	closed := make(chan struct{})
	go func() {
		o.closeNonblocking()
		close(closed)
	}()
	// Queued (not spinning) for o.mu: an unlock hands it to the first goroutine in the queue.
	waitForGoroutine(t, fmt.Sprintf("outputWriter).closeNonblocking(%p", o), "runtime_SemacquireMutex")
	// Room: the Write wakes up and its try queues for o.mu, second in line.
	stopDrain := drain(t, master)
	waitForGoroutine(t, writing, "outputWriter).WriteUntil.func1", "runtime_SemacquireMutex")
	stopDrain()
	locked = false
	o.mu.Unlock() // closeNonblocking takes o.mu first: it queued first

	select {
	case <-closed:
	case <-time.After(testTimeout):
		t.Fatal("closeNonblocking hung while a Write woken for room waited for o.mu")
	}
	select {
	case err := <-wrote:
		// Usually os.ErrClosed from the try; the poller's "use of closed file" when the Write
		// got o.mu first after all and went back to waiting.
		if err == nil {
			t.Fatal("Write of 4 MiB succeeded though the terminal was closed before it fit")
		}
	case <-time.After(testTimeout):
		t.Fatal("Write still waiting after closeNonblocking")
	}
}

// drain reads what the terminal behind master shows, in small pieces, until the returned stop.
func drain(t *testing.T, master *os.File) (stop func()) {
	t.Helper()
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		buf := make([]byte, 64)
		for {
			select {
			case <-done:
				return
			default:
			}
			// Poll first: the master blocks (creack/pty's Open), so neither a deadline nor
			// Close ends a read(2) waiting for output that no longer comes.
			fds := []unix.PollFd{{Fd: int32(master.Fd()), Events: unix.POLLIN}}
			if n, _ := unix.Poll(fds, 20); n > 0 {
				_, _ = master.Read(buf)
			}
		}
	}()
	return func() {
		close(done)
		<-stopped
	}
}

// waitForGoroutine waits until some goroutine's stack holds all of frames: the test cannot
// otherwise tell that a goroutine has reached the point where it blocks.
func waitForGoroutine(t *testing.T, frames ...string) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		for g := range strings.SplitSeq(string(buf[:n]), "\n\n") {
			if containsAll(g, frames) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no goroutine with %q in its stack; goroutines:\n%s", frames, buf[:n])
		}
		runtime.Gosched()
	}
}

func containsAll(s string, subs []string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}

func TestOutputWriterLineStart(t *testing.T) {
	for _, tc := range []struct {
		writes []string
		want   bool
	}{
		{nil, true},
		{[]string{"$ "}, false},
		{[]string{"done\r\n"}, true},
		{[]string{"done\n"}, false}, // raw terminal: \n alone does not return the carriage
		{[]string{"x\r"}, true},
		{[]string{"x\r", "\n"}, true},
		{[]string{"x", "\r", "\n"}, true},
		{[]string{"x\r\n", "$"}, false},
		{[]string{"\n"}, false},
	} {
		o := &outputWriter{w: io.Discard}
		for _, s := range tc.writes {
			if _, err := o.Write([]byte(s)); err != nil {
				t.Fatal(err)
			}
		}
		if got := o.atLineStart(); got != tc.want {
			t.Errorf("after %q: atLineStart %v, want %v", tc.writes, got, tc.want)
		}
	}
}

// TestOutputTryWritePipeOrFile: a command's output into a pipe goes through TryWrite as into a
// terminal (what the pipe takes, at once; the caller's descriptor stays blocking); into a
// regular file, TryWrite writes it all.
func TestOutputTryWritePipeOrFile(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	o := &outputWriter{w: w}
	o.openPipeOrFile(int(w.Fd()))
	defer o.closeNonblocking()
	big := bytes.Repeat([]byte("p"), 4<<20) // more than a pipe holds
	n, err := o.TryWrite(big)
	if err != nil || n == 0 || n >= len(big) {
		t.Fatalf("TryWrite into a pipe: %d of %d, %v; want part of it, at once", n, len(big), err)
	}
	if flags, err := unix.FcntlInt(w.Fd(), unix.F_GETFL, 0); err != nil || flags&unix.O_NONBLOCK != 0 {
		t.Errorf("the caller's descriptor: flags %#x, %v; want it blocking", flags, err)
	}

	f, err := os.Create(t.TempDir() + "/out")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	o = &outputWriter{w: f}
	o.openPipeOrFile(int(f.Fd()))
	if n, err := o.TryWrite(big); n != len(big) || err != nil {
		t.Fatalf("TryWrite into a file: %d of %d, %v", n, len(big), err)
	}
}

// TestOutputWakeStopsWrite: a WriteUntil that waits for room in a terminal nobody reads returns,
// with what it wrote, when its stop reports true and Wake is called; the next write waits for
// room again (Wake replaced the stopped wait) and the terminal gets every byte once, in order.
func TestOutputWakeStopsWrite(t *testing.T) {
	master, o := rawTerminalWriter(t)
	defer o.closeNonblocking()
	big := make([]byte, 1<<20) // far more than the terminal holds
	for i := range big {
		big[i] = byte('a' + i%26)
	}
	var stop atomic.Bool
	type result struct {
		n   int
		err error
	}
	wrote := make(chan result, 1)
	go func() {
		n, err := o.WriteUntil(big, stop.Load)
		wrote <- result{n, err}
	}()
	waitForGoroutine(t, fmt.Sprintf("outputWriter).WriteUntil(%p", o), "internal/poll.runtime_pollWait") // full
	stop.Store(true)
	o.Wake()
	var r result
	select {
	case r = <-wrote:
	case <-time.After(testTimeout):
		t.Fatal("Wake did not end the wait for room")
	}
	if r.err != nil || r.n <= 0 || r.n >= len(big) {
		t.Fatalf("WriteUntil stopped = %d, %v; want part of %d bytes and no error", r.n, r.err, len(big))
	}

	read := readShown(master, len(big))
	if n, err := o.Write(big[r.n:]); err != nil || n != len(big)-r.n {
		t.Fatalf("Write after the stop = %d, %v; want %d", n, err, len(big)-r.n)
	}
	if got := <-read; !bytes.Equal(got, big) {
		t.Fatalf("the terminal got %d bytes, want the %d written, in order", len(got), len(big))
	}
}

// readShown reads n bytes of what the terminal behind master shows, in a goroutine, and sends
// them (fewer if the watchdog ends the read).
func readShown(master *os.File, n int) <-chan []byte {
	read := make(chan []byte, 1)
	go func() {
		_ = master.SetReadDeadline(time.Now().Add(testTimeout)) // watchdog
		got := make([]byte, n)
		m, _ := io.ReadFull(master, got)
		read <- got[:m]
	}()
	return read
}

// TestOutputForSession: the session gets a StoppableWriter only when the terminal's writes wait in
// the poller, where a hold can stop them; a terminal written in blocking write(2) (no non-blocking
// descriptor: after su, the user may not reopen it) must not claim to stop, or a ^C would wait for
// a whole chunk that the terminal may never take.
func TestOutputForSession(t *testing.T) {
	_, o := rawTerminalWriter(t)
	defer o.closeNonblocking()
	if _, ok := o.forSession().(session.StoppableWriter); !ok {
		t.Error("a terminal reopened non-blocking: forSession is not a StoppableWriter")
	}

	master, slave, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer master.Close()
	defer slave.Close()
	blocking := &outputWriter{w: slave} // no openNonblocking: as when the reopen failed
	w := blocking.forSession()
	if _, ok := w.(session.StoppableWriter); ok {
		t.Fatal("a terminal written in write(2): forSession is a StoppableWriter")
	}
	if _, err := w.Write([]byte("ok\n")); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 16)
	_ = master.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := master.Read(got); err != nil || !strings.Contains(string(got[:n]), "ok") {
		t.Fatalf("the terminal got %q, %v", got[:n], err)
	}
}

// TestOutputStopsBetweenWrites: a chunk that the terminal takes write after write (its reader
// keeps up) stops within one write once stop reports true, not at the chunk's end: WriteUntil
// and TryWriteUntil call stop between the writes too. Here stop turns true after the first
// write; the rest, written after, reaches the terminal whole and in order.
func TestOutputStopsBetweenWrites(t *testing.T) {
	for _, tc := range []struct {
		name  string
		write func(o *outputWriter, p []byte, stop func() bool) (int, error)
	}{
		{"WriteUntil", (*outputWriter).WriteUntil},
		{"TryWriteUntil", (*outputWriter).TryWriteUntil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			master, o := rawTerminalWriter(t)
			defer o.closeNonblocking()
			big := make([]byte, 1<<20) // far more than one write to the terminal takes
			for i := range big {
				big[i] = byte('a' + i%26)
			}
			read := readShown(master, len(big))
			calls := 0
			n, err := tc.write(o, big, func() bool { calls++; return calls > 1 })
			if err != nil || n <= 0 || n >= len(big) || calls != 2 {
				t.Fatalf("stopped after %d bytes, %v, with %d calls of stop; want one write's part of %d bytes, no error, 2 calls", n, err, calls, len(big))
			}
			if m, err := o.Write(big[n:]); err != nil || m != len(big)-n {
				t.Fatalf("Write after the stop = %d, %v; want %d", m, err, len(big)-n)
			}
			if got := <-read; !bytes.Equal(got, big) {
				t.Fatalf("the terminal got %d bytes, want the %d written, in order", len(got), len(big))
			}
		})
	}
}
