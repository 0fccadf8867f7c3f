package client

import (
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/rlogin-go/rlogin/internal/rawio"
	"golang.org/x/sys/unix"
)

// errInputStopped is what a stopped fdReader's Read returns.
var errInputStopped = errors.New("client: input stopped")

// fdReader reads a file descriptor (a terminal, pipe or file) in a way another goroutine can
// interrupt: Read waits in poll(2) for the descriptor and for a wake-up pipe, then reads what is
// there. So the goroutine reading standard input ends when the session does, without closing or
// changing the caller's descriptor (no O_NONBLOCK on a terminal shared with the login shell).
type fdReader struct {
	fd       int
	wake     [2]int // pipe: stop writes to wake[1]
	stopOnce sync.Once
}

func newFdReader(fd int) (*fdReader, error) {
	r := &fdReader{fd: fd}
	if err := unix.Pipe2(r.wake[:], unix.O_CLOEXEC|unix.O_NONBLOCK); err != nil {
		return nil, fmt.Errorf("client: pipe: %w", err)
	}
	return r, nil
}

// Read reads up to len(p) bytes once the descriptor is readable. It returns io.EOF at the end of
// input (or a hung-up terminal) and errInputStopped after stop.
func (r *fdReader) Read(p []byte) (int, error) {
	fds := []unix.PollFd{
		{Fd: int32(r.fd), Events: unix.POLLIN},
		{Fd: int32(r.wake[0]), Events: unix.POLLIN},
	}
	for {
		fds[0].Revents, fds[1].Revents = 0, 0
		_, err := unix.Poll(fds, -1)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("client: poll: %w", err)
		}
		if fds[1].Revents != 0 {
			return 0, errInputStopped
		}
		if fds[0].Revents&unix.POLLNVAL != 0 {
			return 0, io.EOF // no standard input at all
		}
		if fds[0].Revents == 0 {
			continue
		}
		n, err := unix.Read(r.fd, p)
		if err == unix.EINTR || err == unix.EAGAIN {
			continue
		}
		return inputRead(n, err)
	}
}

// inputRead is the result of a Read of standard input after read(2) returned n, err.
func inputRead(n int, err error) (int, error) {
	switch {
	case err == unix.EIO:
		return 0, io.EOF // the terminal hung up
	case err != nil:
		return 0, fmt.Errorf("client: read: %w", err)
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}

// stop makes a Read in progress, and every later one, return errInputStopped.
func (r *fdReader) stop() {
	r.stopOnce.Do(func() {
		_, _ = unix.Write(r.wake[1], []byte{0}) // the pipe is empty: this cannot block or fail
	})
}

// close releases the wake-up pipe; call it once no Read is running.
func (r *fdReader) close() {
	_ = unix.Close(r.wake[0])
	_ = unix.Close(r.wake[1])
}

// pollReader reads a terminal without a thread of its own: the goroutine waits in Go's poller,
// like the one reading the connection, so a keystroke wakes one thread, which then also
// sends it. It reads a second, non-blocking open file description of the terminal (the
// caller's stays blocking: the login shell shares it).
type pollReader struct {
	tty int // the terminal, non-blocking
	w   *rawio.Watch
}

// newPollReader opens the terminal behind fd again; it fails when fd is not a terminal.
func newPollReader(fd int) (*pollReader, error) {
	tty, err := reopenTerminal(fd, unix.O_RDONLY)
	if err != nil {
		return nil, err
	}
	w, err := rawio.NewWatch(tty, unix.EPOLLIN, rawio.WatchAlways)
	if err != nil {
		_ = unix.Close(tty)
		return nil, err
	}
	return &pollReader{tty: tty, w: w}, nil
}

// Read is fdReader's Read, waiting in Go's poller.
func (r *pollReader) Read(p []byte) (int, error) {
	var n int
	var rerr error
	err := r.w.Do(func() bool {
		n, rerr = rawio.Read(r.tty, p)
		return rerr != unix.EAGAIN // else wait until the terminal has input
	})
	if err != nil {
		return 0, errInputStopped // stop, or the descriptor is gone
	}
	return inputRead(n, rerr)
}

// stop makes a Read in progress, and every later one, return errInputStopped.
func (r *pollReader) stop() { r.w.Stop() }

// close releases the descriptors; call it once no Read is running.
func (r *pollReader) close() {
	_ = r.w.Close()
	_ = unix.Close(r.tty)
}
