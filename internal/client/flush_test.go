package client

import (
	"testing"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"
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
	fd := int(slave.Fd()) // blocking from here on, as rlogin's standard output
	if _, err := term.MakeRaw(fd); err != nil {
		t.Fatal(err)
	}
	// Fill the pty through a non-blocking descriptor until it takes nothing more.
	nb, err := reopenTerminal(fd, unix.O_WRONLY)
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 4096)
	for {
		if _, err := unix.Write(nb, chunk); err == unix.EAGAIN {
			break
		} else if err != nil {
			t.Fatal(err)
		}
	}
	_ = unix.Close(nb)

	wrote := make(chan error, 1)
	go func() {
		_, err := unix.Write(fd, chunk) // the pty is full and nobody reads: this waits for room
		wrote <- err
	}()
	defer func() {
		slave.Close()
		master.Close() // ends a write still waiting (EIO)
	}()
	waitForGoroutine(t, "[syscall", "golang.org/x/sys/unix.Write") // in write(2): the pty is full
	flushOutput(fd)
	select {
	case err := <-wrote:
		if err != nil {
			t.Fatalf("write after the flush: %v", err)
		}
	case <-time.After(testTimeout):
		t.Fatal("the writer still waits after flushOutput emptied the terminal")
	}
}
