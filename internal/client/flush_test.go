package client

import (
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/creack/pty"
	"golang.org/x/term"
)

// TestFlushOutputWakesWriter: a writer that waits for room in a pty goes on once flushOutput
// has emptied the pty's buffers, although nobody reads the other side. Linux does not wake it
// on TCOFLUSH; without the wake-up the client hung after Ctrl-C during a flood.
func TestFlushOutputWakesWriter(t *testing.T) {
	master, slave, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer master.Close()
	defer slave.Close()
	fd := int(slave.Fd())
	if _, err := term.MakeRaw(fd); err != nil {
		t.Fatal(err)
	}

	var chunks atomic.Int64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		chunk := make([]byte, 4096)
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := slave.Write(chunk); err != nil {
				return
			}
			chunks.Add(1)
		}
	}()
	defer func() {
		close(stop)
		master.Close() // a writer still waiting for room fails now
		slave.Close()
		<-done
	}()

	// Nobody reads the master: the writer fills the pty and then waits for room.
	waitForWriteBlocked(t)
	before := chunks.Load()
	flushOutput(fd)
	deadline := time.Now().Add(testTimeout)
	for chunks.Load() == before {
		if time.Now().After(deadline) {
			t.Fatalf("the writer still waits after flushOutput emptied the terminal (%d chunks written)", before)
		}
		time.Sleep(time.Millisecond) // polling a condition with a deadline
	}
}

// waitForWriteBlocked waits until a goroutine waits inside os.(*File).Write (in the poller or in
// write(2)), or fails the test.
func waitForWriteBlocked(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		for g := range strings.SplitSeq(string(buf[:n]), "\n\n") {
			if strings.Contains(g, "os.(*File).Write") && (strings.Contains(g, "[IO wait") || strings.Contains(g, "[syscall")) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no goroutine waits in os.(*File).Write; goroutines:\n%s", buf[:n])
		}
		time.Sleep(time.Millisecond)
	}
}
