package rawio

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// A Watch lets a goroutine wait in Go's poller for some events of a descriptor only. It
// makes no wait of its own: Do waits in the poller, which knows the scheduler.
//
// Go's poller registers every descriptor for input and output alike, edge-triggered, and a
// terminal signals a change of either on every read or write of its other side: a terminal
// signals output room each time its reader takes some and input at each keystroke, and a
// pty master signals each chunk its shell writes. Each signal wakes a thread waiting in the
// poller, whether or not a goroutine waits for that descriptor. A Watch waits instead on an
// epoll instance of its own that watches the descriptor for the chosen events only, and,
// depending on its WatchMode, only around the waits; only that instance is in Go's poller.
type Watch struct {
	ep     *os.File // the epoll instance, non-blocking, in Go's poller
	rc     syscall.RawConn
	fd     int
	events uint32
	mode   WatchMode

	// The state of a Do, reused so that a wait allocates nothing (see op); mu holds it for one
	// Do at a time, as the epoll instance's read lock in the poller would while Do waits.
	mu      sync.Mutex
	try     func() bool
	added   bool                  // WatchWhileWaiting: this Do added the entry and deletes it
	ctlErr  error                 // of adding it
	attempt func(ep uintptr) bool // w.tryOnce, bound once
	remove  func(ep uintptr)      // w.removeEntry, bound once
}

// A WatchMode says when a Watch watches its descriptor.
type WatchMode int

const (
	// WatchAlways watches the descriptor from NewWatch on: for events that come only when
	// the reader wants them (keystrokes).
	WatchAlways WatchMode = iota
	// WatchWhileWaiting watches the descriptor only while Do waits: for events that come
	// while nobody waits for them (a terminal nearly always has output room, and signals
	// it each time its reader takes some; a pty master signals each chunk of a flood while
	// its reader is busy sending the last). Each wait costs two epoll_ctl calls.
	WatchWhileWaiting
)

// NewWatch returns a Watch for events (unix.EPOLLIN, unix.EPOLLOUT) on the non-blocking fd,
// which the caller keeps open while the Watch is in use. Errors and hang-ups of fd always
// end a wait. It refuses, with an error matching ErrMayBlock, a descriptor that Read and
// Write could block on (see the package doc): the caller's try reads or writes fd with them.
func NewWatch(fd int, events uint32, mode WatchMode) (*Watch, error) {
	if err := check(fd); err != nil {
		return nil, err
	}
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("rawio: epoll: %w", err)
	}
	if mode == WatchAlways {
		ev := unix.EpollEvent{Events: events, Fd: int32(fd)}
		if err := unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
			_ = unix.Close(ep)
			return nil, fmt.Errorf("rawio: epoll: %w", err)
		}
	}
	if err := unix.SetNonblock(ep, true); err != nil {
		_ = unix.Close(ep)
		return nil, fmt.Errorf("rawio: epoll: %w", err)
	}
	f := os.NewFile(uintptr(ep), "epoll") // non-blocking: in Go's poller
	rc, err := f.SyscallConn()
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("rawio: epoll: %w", err)
	}
	w := &Watch{ep: f, rc: rc, fd: fd, events: events, mode: mode}
	w.attempt, w.remove = w.tryOnce, w.removeEntry
	return w, nil
}

// Do calls try until it reports done, waiting between calls until the watched events occur
// (or seem to: try must cope with finding nothing). After Stop, Do fails with an error
// matching os.ErrDeadlineExceeded, and after Close with os.ErrClosed; a wait in progress
// ends with that error too.
func (w *Watch) Do(try func() (done bool)) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.try, w.added, w.ctlErr = try, false, nil
	defer func() { w.try, w.ctlErr = nil, nil }() // keep neither the caller's func nor the error
	err := w.rc.Read(w.attempt)
	if w.added {
		// Best effort: it fails only once the Watch or the watched descriptor is closed, which
		// removes the entry anyway.
		_ = w.rc.Control(w.remove)
	}
	switch {
	case err == nil && w.ctlErr != nil:
		return fmt.Errorf("rawio: epoll: %w", w.ctlErr)
	case err == nil, errors.Is(err, os.ErrDeadlineExceeded):
		return err
	}
	// The poller's only other failure, with an internal error ("use of closed file") that
	// does not match os.ErrClosed: report that one.
	return os.ErrClosed
}

// tryOnce is Do's callback for the poller: the caller's try, then, if it must wait, the entry
// that a WatchWhileWaiting watch adds for the wait.
func (w *Watch) tryOnce(ep uintptr) bool {
	if w.try() {
		return true
	}
	if w.mode == WatchWhileWaiting && !w.added {
		// Adding checks the descriptor at once: an event since try is not missed. Adding,
		// not re-arming an entry kept disabled: the kernel queues an entry found ready and
		// wakes the poller only if it was not queued yet, and nothing here ever takes an
		// entry off that queue (no epoll_wait on this instance), so a disabled entry would
		// miss exactly that wake-up (TestWatchReadyWhenAdded).
		ev := unix.EpollEvent{Events: w.events, Fd: int32(w.fd)}
		if w.ctlErr = epollCtl(int(ep), unix.EPOLL_CTL_ADD, w.fd, &ev); w.ctlErr != nil {
			return true
		}
		w.added = true
	}
	return false
}

// removeEntry deletes the entry that tryOnce added.
func (w *Watch) removeEntry(ep uintptr) { _ = epollCtl(int(ep), unix.EPOLL_CTL_DEL, w.fd, nil) }

// epollCtl is epoll_ctl(2) as a raw system call: a WatchWhileWaiting watch makes two per wait,
// one per keystroke on a pty, and the first ordinary system call after a pause wakes the
// runtime's monitor thread (see the package doc for why a raw one is safe here).
func epollCtl(ep, op, fd int, ev *unix.EpollEvent) error {
	_, _, e := unix.RawSyscall6(unix.SYS_EPOLL_CTL, uintptr(ep), uintptr(op), uintptr(fd), uintptr(unsafe.Pointer(ev)), 0, 0)
	if e != 0 {
		return e
	}
	return nil
}

// Stop makes a Do in progress, and every later one, fail with os.ErrDeadlineExceeded. It
// may be called from any goroutine, more than once.
func (w *Watch) Stop() { _ = w.ep.SetReadDeadline(time.Unix(1, 0)) }

// Close releases the epoll instance; a Do in progress, and every later one, fails with
// os.ErrClosed. Close waits for a Do in progress to return, so the caller must not hold
// anything that Do's try waits for.
func (w *Watch) Close() error {
	if err := w.ep.Close(); err != nil {
		return fmt.Errorf("rawio: close epoll: %w", err)
	}
	return nil
}
