package client

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"syscall"
	"time"

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
	w   *watch
}

// newPollReader opens the terminal behind fd again; it fails when fd is not a terminal.
func newPollReader(fd int) (*pollReader, error) {
	tty, err := reopenTerminal(fd, unix.O_RDONLY)
	if err != nil {
		return nil, err
	}
	w, err := newWatch(tty, unix.EPOLLIN, false)
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
	err := r.w.do(func() bool {
		n, rerr = rawio.Read(r.tty, p)
		return rerr != unix.EAGAIN // else wait until the terminal has input
	})
	if err != nil {
		return 0, errInputStopped // stop, or the descriptor is gone
	}
	return inputRead(n, rerr)
}

// stop makes a Read in progress, and every later one, return errInputStopped.
func (r *pollReader) stop() { r.w.stop() }

// close releases the descriptors; call it once no Read is running.
func (r *pollReader) close() {
	r.w.close()
	_ = unix.Close(r.tty)
}

// A watch lets a goroutine wait in Go's poller for some events of a descriptor only. Go's
// poller registers every descriptor for input and output alike, and a terminal signals output
// room each time its reader takes some and input at each keystroke: waiting for one of them
// directly would wake the process for the other (measured: 8 wake-ups per keystroke when the
// keyboard was read that way). A watch waits instead on an epoll instance that watches fd for
// events only; epoll passes on nothing else.
//
// A watch for output room watches fd only while a goroutine waits (onDemand): a terminal has
// room nearly always, and every read of its other side would otherwise signal it.
type watch struct {
	ep       *os.File // the epoll instance, non-blocking, in Go's poller
	rc       syscall.RawConn
	fd       int
	events   uint32
	onDemand bool
}

func newWatch(fd int, events uint32, onDemand bool) (*watch, error) {
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("client: epoll: %w", err)
	}
	if !onDemand {
		ev := unix.EpollEvent{Events: events, Fd: int32(fd)}
		if err := unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
			_ = unix.Close(ep)
			return nil, fmt.Errorf("client: epoll: %w", err)
		}
	}
	if err := unix.SetNonblock(ep, true); err != nil {
		_ = unix.Close(ep)
		return nil, fmt.Errorf("client: epoll: %w", err)
	}
	f := os.NewFile(uintptr(ep), "epoll") // non-blocking: in Go's poller
	rc, err := f.SyscallConn()
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("client: epoll: %w", err)
	}
	return &watch{ep: f, rc: rc, fd: fd, events: events, onDemand: onDemand}, nil
}

// do calls try until it reports done, waiting between calls until the watched events occur.
// It fails after stop or close.
func (w *watch) do(try func() (done bool)) error {
	added := false
	var ctlErr error
	err := w.rc.Read(func(ep uintptr) bool {
		if try() {
			return true
		}
		if w.onDemand && !added {
			// Adding checks the descriptor at once: room made since try is not missed. Adding,
			// not re-arming an entry kept disabled: the kernel queues an entry found ready and
			// wakes the poller only if it was not queued yet, and nothing here ever takes an
			// entry off that queue (no epoll_wait on this instance), so a kept entry would miss
			// exactly that wake-up (TestWatchArmedWhenAlreadyReady).
			ev := unix.EpollEvent{Events: w.events, Fd: int32(w.fd)}
			if ctlErr = unix.EpollCtl(int(ep), unix.EPOLL_CTL_ADD, w.fd, &ev); ctlErr != nil {
				return true
			}
			added = true
		}
		return false
	})
	if added {
		// Best effort: it fails only once the watch or the watched descriptor is closed, which
		// removes the entry anyway.
		_ = w.rc.Control(func(ep uintptr) { _ = unix.EpollCtl(int(ep), unix.EPOLL_CTL_DEL, w.fd, nil) })
	}
	if err == nil && ctlErr != nil {
		err = fmt.Errorf("client: epoll: %w", ctlErr)
	}
	return err
}

// stop makes a do in progress, and every later one, fail.
func (w *watch) stop() { _ = w.ep.SetReadDeadline(time.Unix(1, 0)) }

func (w *watch) close() { _ = w.ep.Close() }
