//go:build linux

package pty_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rlogin-go/rlogin/internal/termtest"
	"github.com/rlogin-go/rlogin/pty"
)

// waitWatchedFor waits until exactly one epoll instance watches fd, and for events, or
// fails the test.
func waitWatchedFor(t *testing.T, fd int, events uint32) {
	t.Helper()
	deadline := time.Now().Add(watchdog)
	for {
		w := termtest.EpollWatches(t, fd)
		if len(w) == 1 && w[0]&events != 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("descriptor %d: watched for %#x, want one watch for %#x", fd, w, events)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestMasterWatchedOnlyWhileReading checks the design ReadOutput relies on: the master is
// non-blocking and close-on-exec, and no epoll instance watches it (not Go's poller
// either) except one that watches for output only while a ReadOutput waits, so that a
// flood of output does not wake the process for each chunk while the reader is busy. The
// same holds for an Attached copy, though the file it was made from was in Go's poller.
func TestMasterWatchedOnlyWhileReading(t *testing.T) {
	eachTerminal(t, func(t *testing.T, start starter) {
		c := start(t, size, "cat")
		master := pty.MasterFD(c.p)
		if c.a != nil {
			master = pty.AttachedFD(c.a)
		}
		testWatchedOnlyWhileReading(t, c, master)
	})
}

func testWatchedOnlyWhileReading(t *testing.T, c *child, master int) {
	fdFlags, err := unix.FcntlInt(uintptr(master), unix.F_GETFD, 0)
	if err != nil {
		t.Fatal(err)
	}
	flFlags, err := unix.FcntlInt(uintptr(master), unix.F_GETFL, 0)
	if err != nil {
		t.Fatal(err)
	}
	if fdFlags&unix.FD_CLOEXEC == 0 {
		t.Error("master is not close-on-exec")
	}
	if flFlags&unix.O_NONBLOCK == 0 {
		t.Error("master is not non-blocking")
	}
	if w := termtest.EpollWatches(t, master); len(w) != 0 {
		t.Fatalf("before any ReadOutput, epoll instances watch the master for %#x", w)
	}

	got := make(chan string, 1)
	go func() {
		buf := make([]byte, 32<<10)
		n, _, err := c.term().ReadOutput(buf)
		if err != nil {
			got <- err.Error()
			return
		}
		got <- string(buf[:n])
	}()
	waitWatchedFor(t, master, unix.EPOLLIN)
	if w := termtest.EpollWatches(t, master); w[0]&(unix.EPOLLOUT|unix.EPOLLET) != 0 {
		t.Errorf("while ReadOutput waits, the master is watched for %#x: want input only, level-triggered", w[0])
	}
	c.write("x")
	if out := <-got; out != "x" {
		t.Fatalf("ReadOutput: %q, want the echo %q", out, "x")
	}
	if w := termtest.EpollWatches(t, master); len(w) != 0 {
		t.Errorf("after ReadOutput, epoll instances still watch the master for %#x", w)
	}
}

// TestWriteWaitsForRoom: a Write larger than the terminal's buffers waits until its program
// reads, then finishes, with every byte in order.
func TestWriteWaitsForRoom(t *testing.T) {
	dir := t.TempDir()
	fifo, out := filepath.Join(dir, "go"), filepath.Join(dir, "out")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	big := make([]byte, 1<<20) // far more than a terminal holds
	for i := range big {
		big[i] = byte('a' + i%26)
	}
	// Raw mode passes every byte on as it is; the program reads nothing until the test
	// writes a line to the FIFO.
	c := startChild(t, size, "sh", "-c", fmt.Sprintf(
		"stty raw -echo && echo ready && read x < %s && exec head -c %d > %s", fifo, len(big), out))
	c.readUntil("ready")

	wrote := make(chan error, 1)
	go func() {
		n, err := c.p.Write(big)
		if err == nil && n != len(big) {
			err = fmt.Errorf("wrote %d of %d bytes", n, len(big))
		}
		wrote <- err
	}()
	waitWatchedFor(t, pty.MasterFD(c.p), unix.EPOLLOUT) // the Write waits for room
	if n, err := c.p.TryWrite([]byte("y")); n != 0 || err != nil {
		t.Errorf("TryWrite during a waiting Write: %d, %v; want 0, nil (the Write's input goes first)", n, err)
	}
	if err := os.WriteFile(fifo, []byte("go\n"), 0); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-wrote:
		if err != nil {
			t.Fatalf("Write: %v", err)
		}
	case <-time.After(watchdog):
		t.Fatal("Write did not finish once the program read")
	}
	c.wantExit(0)
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, big) {
		t.Fatalf("the program read %d bytes, not the %d written in order", len(got), len(big))
	}
}

// TestCloseEndsWaitingWrite: Close ends a Write that waits for room, with os.ErrClosed.
func TestCloseEndsWaitingWrite(t *testing.T) {
	c := startChild(t, size, "sh", "-c", "stty raw -echo && echo ready && exec sleep 1000")
	c.readUntil("ready")
	wrote := make(chan error, 1)
	go func() {
		_, err := c.p.Write(make([]byte, 1<<20))
		wrote <- err
	}()
	waitWatchedFor(t, pty.MasterFD(c.p), unix.EPOLLOUT)
	if err := c.p.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-wrote:
		if !errors.Is(err, os.ErrClosed) {
			t.Errorf("Write after Close: %v, want an error matching os.ErrClosed", err)
		}
	case <-time.After(watchdog):
		t.Fatal("Close did not end a Write waiting for room")
	}
	if _, err := c.p.Write([]byte("x")); !errors.Is(err, os.ErrClosed) {
		t.Errorf("Write after Close: %v, want an error matching os.ErrClosed", err)
	}
}
