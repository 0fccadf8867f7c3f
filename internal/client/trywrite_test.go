package client

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"testing"
	"time"

	"github.com/creack/pty"
	"golang.org/x/term"
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
