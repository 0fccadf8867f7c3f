package client

import (
	"fmt"
	"io"
	"os"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/rlogin-go/rlogin/internal/rawio"
	"github.com/rlogin-go/rlogin/session"
)

// outputWriter writes the remote output to the user's standard output, and local messages (the
// escape help) in turn with it, and remembers whether the cursor is at the start of a line, so a
// closing message starts there. It is a session.StoppableWriter: the chunk of output under way
// stops when a hold after ^C begins.
type outputWriter struct {
	mu    sync.Mutex
	w     io.Writer
	wrote bool
	last  [2]byte      // the last two bytes written
	nbfd  int          // 1 + a non-blocking descriptor of the terminal for TryWrite; 0 if none
	room  *rawio.Watch // waits for room in the terminal behind nbfd; nil if none

	direct bool // w is a regular file: TryWrite writes all of p to it

	// Not under mu, which a write holds: Wake must not wait for one.
	wakeMu  sync.Mutex
	waiting *rawio.Watch // the Watch that a WriteUntil uses now
	stopped *rawio.Watch // a Watch that Wake stopped, for good: WriteUntil replaces it
}

var (
	_ session.StoppableWriter    = (*outputWriter)(nil)
	_ session.StoppableTryWriter = (*outputWriter)(nil)
)

// Write writes p to the terminal. With the non-blocking descriptor it waits for room in Go's
// poller rather than in write(2): a thread blocked in a system call makes the runtime hand its
// scheduling slot around, which under a flood of output cost about a sixth of rlogin's CPU.
func (o *outputWriter) Write(p []byte) (int, error) { return o.WriteUntil(p, nil) }

// WriteUntil is Write, but it returns early, with what it wrote, when stop (if not nil) reports
// true: session.Client stops the chunk under way so when a hold after ^C begins. stop is called
// before each try to write, so after each wait for room, and Wake ends a wait to call it.
func (o *outputWriter) WriteUntil(p []byte, stop func() bool) (int, error) {
	o.mu.Lock()
	if o.room == nil {
		defer o.mu.Unlock()
		return o.writeLocked(o.w, p)
	}
	o.mu.Unlock()
	n := 0
	for {
		o.mu.Lock()
		room := o.room
		o.mu.Unlock()
		if room == nil { // a new Watch could not be made: wait in write(2)
			o.mu.Lock()
			defer o.mu.Unlock()
			m, err := o.writeLocked(o.w, p[n:])
			return n + max(m, 0), err
		}
		o.wakeMu.Lock()
		o.waiting = room
		o.wakeMu.Unlock()
		halted := false
		var werr error
		err := room.Do(func() bool {
			if stop != nil && stop() {
				halted = true
				return true
			}
			o.mu.Lock()
			defer o.mu.Unlock()
			if o.nbfd == 0 {
				werr = os.ErrClosed
				return true
			}
			m, stopped, err := o.writeNowLocked(p[n:], stop)
			n += m
			werr = err
			halted = stopped
			return n == len(p) || err != nil || stopped
		})
		o.wakeMu.Lock()
		o.waiting = nil
		woken := o.stopped == room
		o.stopped = nil
		o.wakeMu.Unlock()
		finished := halted || werr != nil || n == len(p)
		if woken { // err is the Watch's Stop, not a failure
			rerr := o.renewWatch(room)
			switch {
			case finished:
				return n, werr
			case rerr != nil:
				return n, rerr
			}
			continue // stop is called before the next try
		}
		if err == nil {
			err = werr
		}
		return n, err
	}
}

// Wake makes a WriteUntil that waits for room call its stop at once. A Wake that finds no
// WriteUntil under way does nothing: the caller changes what stop reports before it calls Wake,
// and WriteUntil calls stop before it waits.
func (o *outputWriter) Wake() {
	o.wakeMu.Lock()
	defer o.wakeMu.Unlock()
	if o.waiting != nil {
		// A Watch has no way to end one wait only: Stop ends every later one too, so the
		// WriteUntil that waited replaces it (a hold is one per interrupt typed).
		o.waiting.Stop()
		o.stopped, o.waiting = o.waiting, nil
	}
}

// renewWatch replaces old, a Watch that Wake stopped, by a new one for the same descriptor. It
// fails with os.ErrClosed when closeNonblocking closed old meanwhile.
func (o *outputWriter) renewWatch(old *rawio.Watch) error {
	o.mu.Lock()
	if o.room != old {
		o.mu.Unlock()
		return os.ErrClosed
	}
	room, err := rawio.NewWatch(o.nbfd-1, unix.EPOLLOUT, rawio.WatchWhileWaiting)
	if err != nil {
		room = nil // WriteUntil then waits in write(2)
	}
	o.room = room
	o.mu.Unlock()
	_ = old.Close() // best effort: a stopped Watch waits for nothing
	return nil
}

// writeLocal writes a local message (the escape help) to w, usually stderr on the same terminal,
// in turn with the remote output.
func (o *outputWriter) writeLocal(w io.Writer, s string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	_, _ = o.writeLocked(w, []byte(s)) // best effort: a message for the user
}

func (o *outputWriter) writeLocked(w io.Writer, p []byte) (int, error) {
	n, err := w.Write(p)
	o.noteWritten(p[:max(n, 0)])
	return n, err
}

// noteWritten remembers the end of what was written, for atLineStart; under o.mu.
func (o *outputWriter) noteWritten(p []byte) {
	if n := len(p); n > 0 {
		o.wrote = true
		if n >= 2 {
			o.last = [2]byte{p[n-2], p[n-1]}
		} else {
			o.last = [2]byte{o.last[1], p[0]}
		}
	}
}

// atLineStart reports whether nothing was written or the output ends at column 0 of a raw
// terminal: with "\r" or "\r\n".
func (o *outputWriter) atLineStart() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return !o.wrote || o.last[1] == '\r' || o.last == [2]byte{'\r', '\n'}
}

// openNonblocking opens the terminal behind fd once more, non-blocking, so that TryWrite can
// write to it without waiting; the caller closes it with closeNonblocking. Without it (standard
// output is not a terminal, or the open fails) TryWrite takes nothing and every byte goes
// through Write.
func (o *outputWriter) openNonblocking(fd int) {
	nfd, err := reopenTerminal(fd, unix.O_WRONLY)
	if err != nil {
		return
	}
	o.useNonblocking(nfd)
}

// outputPipeSize is the buffer openPipeOrFile asks for a pipe on standard output.
const outputPipeSize = 1 << 20

// openPipeOrFile is openNonblocking for standard output that is not a terminal (a command's
// output into a pipe or a file): a pipe is opened once more, non-blocking, as a terminal is; a
// regular file is written directly by TryWrite (a disk takes what it is given). Either way the
// output of a bulk copy goes from the goroutine that reads the connection straight to fd,
// without a queue and a second goroutine, whenever the reader keeps up.
func (o *outputWriter) openPipeOrFile(fd int) {
	var st unix.Stat_t
	if unix.Fstat(fd, &st) != nil {
		return
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		o.mu.Lock()
		o.direct = true
		o.mu.Unlock()
	case unix.S_IFIFO:
		if nfd, err := reopenPipe(fd, &st); err == nil {
			// A bigger pipe takes more of each frame at once (best effort: the user's pipe
			// quota may refuse), so less of the output waits in the session's queue.
			_, _ = unix.FcntlInt(uintptr(nfd), unix.F_SETPIPE_SZ, outputPipeSize)
			o.useNonblocking(nfd)
		}
	}
}

// useNonblocking makes nfd, a non-blocking descriptor of standard output, the one TryWrite and
// Write use.
func (o *outputWriter) useNonblocking(nfd int) {
	room, err := rawio.NewWatch(nfd, unix.EPOLLOUT, rawio.WatchWhileWaiting)
	if err != nil {
		room = nil // Write then writes to the caller's descriptor, waiting in write(2)
	}
	o.mu.Lock()
	o.nbfd = nfd + 1
	o.room = room
	o.mu.Unlock()
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
// Standard output that is a pipe is treated as a terminal is; a regular file takes all of p.
func (o *outputWriter) TryWrite(p []byte) (int, error) {
	return o.TryWriteUntil(p, nil)
}

// TryWriteUntil is TryWrite, but it stops, with what it wrote, once stop reports true: it
// calls stop, unless nil, before each write (session.StoppableTryWriter).
func (o *outputWriter) TryWriteUntil(p []byte, stop func() bool) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.direct {
		return o.writeLocked(o.w, p)
	}
	if o.nbfd == 0 || len(p) == 0 || stop != nil && stop() {
		return 0, nil
	}
	n, _, err := o.writeNowLocked(p, stop)
	return n, err
}

// writeNowLocked writes what the terminal takes now through nbfd, which is open; under o.mu.
// The caller has called stop (if not nil) before the first write; writeNowLocked calls it
// before each further one, and reports whether it stopped there. A terminal that reads as fast
// as it is written takes one write after the other: without that, a chunk of 64 KiB went on
// into it after the user's ^C (seen: 45 KB of stale output in the WAN benchmark with
// GOMAXPROCS=2).
func (o *outputWriter) writeNowLocked(p []byte, stop func() bool) (n int, stopped bool, err error) {
	for n < len(p) {
		if n > 0 && stop != nil && stop() {
			stopped = true
			break
		}
		m, err := rawio.Write(o.nbfd-1, p[n:])
		if err == unix.EINTR {
			continue
		}
		if err == unix.EAGAIN {
			break
		}
		if err != nil {
			o.noteWritten(p[:n])
			return n, false, fmt.Errorf("client: write: %w", err)
		}
		n += m
	}
	o.noteWritten(p[:n])
	return n, stopped, nil
}

// forSession is o as session.Client's Stdout: o itself when its writes wait for room in the
// poller, where a hold can stop them (session.StoppableWriter); else (no non-blocking descriptor
// of the terminal could be opened, as after su(1), whose terminal the user may not open by name)
// a writer without WriteUntil and Wake: its writes wait in write(2), which nothing stops, so the
// session writes small chunks while a hold may come and sends a ^C without waiting for them.
func (o *outputWriter) forSession() io.Writer {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.room != nil {
		return o
	}
	return blockingOutput{o}
}

// blockingOutput is an outputWriter whose writes cannot be stopped (see forSession).
type blockingOutput struct{ o *outputWriter }

func (b blockingOutput) Write(p []byte) (int, error)    { return b.o.Write(p) }
func (b blockingOutput) TryWrite(p []byte) (int, error) { return b.o.TryWrite(p) }
