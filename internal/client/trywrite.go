package client

import (
	"errors"
	"fmt"
	"os"
	"strconv"

	"github.com/rlogin-go/rlogin/internal/rawio"
	"golang.org/x/sys/unix"
)

// openNonblocking opens the terminal behind fd once more, non-blocking, so that TryWrite can
// write to it without waiting; the caller closes it with closeNonblocking. Without it (standard
// output is not a terminal, or the open fails) TryWrite takes nothing and every byte goes
// through Write.
func (o *outputWriter) openNonblocking(fd int) {
	nfd, err := reopenTerminal(fd, unix.O_WRONLY)
	if err != nil {
		return
	}
	room, err := rawio.NewWatch(nfd, unix.EPOLLOUT, rawio.WatchWhileWaiting)
	if err != nil {
		room = nil // Write then writes to the caller's descriptor, waiting in write(2)
	}
	o.mu.Lock()
	o.nbfd = nfd + 1
	o.room = room
	o.mu.Unlock()
}

// reopenTerminal opens the terminal behind fd once more, non-blocking, with mode (O_RDONLY or
// O_WRONLY): a new open file description, so that O_NONBLOCK does not reach the caller's
// descriptor, which the login shell shares. It fails unless fd is a terminal.
func reopenTerminal(fd, mode int) (int, error) {
	name, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(fd))
	if err != nil {
		return -1, fmt.Errorf("client: reopen terminal: %w", err)
	}
	nfd, err := unix.Open(name, mode|unix.O_NOCTTY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("client: reopen terminal: %w", err)
	}
	var a, b unix.Stat_t
	if unix.Fstat(fd, &a) != nil || unix.Fstat(nfd, &b) != nil || a.Rdev != b.Rdev || a.Mode&unix.S_IFMT != unix.S_IFCHR {
		_ = unix.Close(nfd)
		return -1, errors.New("client: reopen terminal: not the same terminal")
	}
	return nfd, nil
}

func (o *outputWriter) closeNonblocking() {
	o.mu.Lock()
	room := o.room
	if o.nbfd > 0 {
		_ = unix.Close(o.nbfd - 1)
		o.nbfd = 0 // a Write's next try finds the terminal closed
	}
	o.mu.Unlock()
	// Not under o.mu: closing the watch waits for a Write waiting on it, which takes o.mu.
	if room != nil {
		_ = room.Close() // a Write waiting for room fails, and every later one
	}
}

// TryWrite writes what the terminal takes now, without waiting; session.Client writes remote
// output through it first, so that output the terminal keeps up with needs no hop between
// goroutines. It returns n < len(p) and a nil error when the terminal's output buffer is full.
func (o *outputWriter) TryWrite(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.nbfd == 0 || len(p) == 0 {
		return 0, nil
	}
	return o.writeNowLocked(p)
}

// writeNowLocked writes what the terminal takes now through nbfd, which is open; under o.mu.
func (o *outputWriter) writeNowLocked(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		m, err := rawio.Write(o.nbfd-1, p[n:])
		if err == unix.EINTR {
			continue
		}
		if err == unix.EAGAIN {
			break
		}
		if err != nil {
			return n, fmt.Errorf("client: write: %w", err)
		}
		n += m
	}
	o.noteWritten(p[:n])
	return n, nil
}
