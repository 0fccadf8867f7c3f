// Package rawio reads and writes non-blocking descriptors with raw system calls, which skip
// the Go scheduler's system-call bookkeeping.
//
//	// A net.Conn whose Read and Write are raw system calls; the conn itself if it cannot be.
//	var c net.Conn = tcpConn
//	if rc, ok := rawio.NewConn(tcpConn); ok {
//		c = rc
//	}
//
//	// A goroutine that waits in Go's poller for input on a descriptor the poller does not hold.
//	w, err := rawio.NewWatch(fd, unix.EPOLLIN, rawio.WatchWhileWaiting)
//	...
//	err = w.Do(func() bool {
//		n, rerr = rawio.Read(fd, buf)
//		return rerr != unix.EAGAIN // else wait until there is input
//	})
//
// Every system call made through package syscall or x/sys/unix tells the scheduler that the
// thread may block. The first one after the process was idle wakes the runtime's monitor
// thread (sysmon), which then polls every 20 µs until the process is idle again, and one that
// runs longer than a poll interval may see its scheduler slot handed to another thread. A
// session's hot path (a keystroke in, its echo out) is a few short reads and writes on
// non-blocking descriptors that return at once, so none of that bookkeeping is needed, and
// it is what made an echoed keystroke cost each process five context switches instead of
// the two or three of a C program (docs/benchmarks.md).
//
// A Watch waits for some events of a descriptor that Go's poller does not manage, or should
// not: the poller wakes the process at every change of a descriptor it holds, and a busy
// terminal or pty changes all the time.
//
// # Why no raw call here can stall the process
//
// A raw system call does not tell the scheduler: its goroutine keeps its scheduler slot and
// counts as running. The garbage collector's stop-the-world pauses wait for every running
// goroutine to stop, and one in a system call stops only when the call returns (the
// preemption signal interrupts the call, and the kernel restarts it). A raw call that slept
// waiting for input or for room would hold every goroutine of the process until it returned.
// So raw calls are made only where the kernel does not sleep waiting for anyone:
//
//   - The raw calls are read(2) and write(2), in Read and Write (which ReadWait,
//     WriteWait and Conn use), on non-blocking descriptors: where a blocking call would sleep
//     for data or room, the kernel returns EAGAIN at once. What remains is copying the bytes,
//     and locks held only by another call on the same object that does not sleep either: a
//     terminal's read and write locks are only tried under O_NONBLOCK, never waited for, and a
//     read of a pty master that finds nothing first lets the pty's own buffer work finish
//     moving queued bytes, a copy.
//   - And two that never wait for data or room at all: Termios's ioctl(TCGETS), a copy of a
//     terminal's settings under a lock that a change of the settings holds only while it
//     copies them in (tcsetattr's wait for output to drain comes before it takes the lock);
//     and a Watch's epoll_ctl(2), which adds or removes one entry of its own epoll instance
//     under that instance's lock, held by the kernel only for such short updates and scans,
//     never across a wait.
//   - O_NONBLOCK means that for sockets, pipes and FIFOs, and for character devices whose
//     driver honours it (terminals and pty masters do; /dev/null never waits). For regular
//     files, block devices and directories it means nothing: a read may wait for the disk.
//     NewConn and NewWatch check their descriptor once and refuse one that is blocking or of
//     such a kind (ErrMayBlock). Read and Write, the hot path, rely on their caller to pass a
//     descriptor that NewWatch accepted; in race-enabled builds, as the tests run, they check
//     it at each call too.
//   - The flag belongs to the open file description, which duplicates share, so whoever makes
//     the descriptor keeps its description private (a pty master, a terminal opened once
//     more, a net.Conn's socket), and nobody clears the flag afterwards (NewConn describes
//     the one way a net.Conn's flag does change).
//   - The package makes no wait of its own: a Watch's epoll instance sits in Go's poller,
//     which waits for it (epoll_wait) with the scheduler's knowledge, as it waits for sockets.
//     epoll_create1 goes through x/sys/unix's ordinary system call (once per Watch); the
//     epoll_ctl of each wait is raw (above), as it comes with every keystroke a pty echoes.
package rawio

import (
	"io"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Read is read(2) on the non-blocking fd, retried on EINTR. It returns the errno as it is
// (unix.EAGAIN when nothing is there). fd must be a descriptor that NewWatch accepts: see the
// package doc.
func Read(fd int, p []byte) (int, error) { return rawCall(unix.SYS_READ, fd, p) }

// Write is write(2) on the non-blocking fd, retried on EINTR. It returns the errno as it is
// (unix.EAGAIN when nothing was taken). fd must be a descriptor that NewWatch accepts: see
// the package doc.
func Write(fd int, p []byte) (int, error) { return rawCall(unix.SYS_WRITE, fd, p) }

// rawCall makes the read or write system call trap on fd and p.
func rawCall(trap uintptr, fd int, p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if checkEachCall {
		if err := check(fd); err != nil {
			return 0, err
		}
	}
	for {
		// Raw: the scheduler is not told, which is safe only because fd is non-blocking and
		// of a kind that honours it (the package doc says why), so the call returns at once.
		n, _, e := unix.RawSyscall(trap, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
		if e == unix.EINTR {
			continue
		}
		if e != 0 {
			return 0, e
		}
		return int(n), nil
	}
}

// Termios returns the settings of the terminal fd (for a pty master, those of its slave), read
// with a raw ioctl(TCGETS): a session server reads them with each input it writes (does it
// flush?), and the ordinary system call woke the runtime's monitor thread on each keystroke
// after a pause, as the package doc says. fd may be blocking: TCGETS never waits for data.
func Termios(fd int) (*unix.Termios, error) {
	var t unix.Termios
	if err := TermiosInto(fd, &t); err != nil {
		return nil, err
	}
	return &t, nil
}

// TermiosInto is Termios into t, which a caller may reuse: it allocates nothing.
func TermiosInto(fd int, t *unix.Termios) error {
	// Raw: TCGETS copies the settings and returns (see the package doc).
	_, _, e := unix.RawSyscall(unix.SYS_IOCTL, uintptr(fd), unix.TCGETS, uintptr(unsafe.Pointer(t)))
	if e != 0 {
		return e
	}
	return nil
}

// ReadWait reads into p from rc's descriptor, which must be non-blocking (as the poller's
// are; see the package doc), waiting in Go's poller while nothing is there
// (so deadlines and Close interrupt it as they interrupt rc's owner's Read). It returns io.EOF
// when read(2) returns 0 for a non-empty p, a syscall.Errno for a failed read(2), or the
// poller's error (a deadline, a closed descriptor) as rc.Read returns it.
func ReadWait(rc syscall.RawConn, p []byte) (int, error) {
	var o op
	return o.readWait(rc, p)
}

// WriteWait writes all of p to rc's descriptor, which must be non-blocking (as the poller's
// are; see the package doc), waiting in Go's poller while it is full. It
// returns how much was written and, if that is less than len(p), why: a syscall.Errno for a
// failed write(2), or the poller's error as rc.Write returns it.
func WriteWait(rc syscall.RawConn, p []byte) (int, error) {
	var o op
	return o.writeWait(rc, p)
}

// An op is ReadWait's or WriteWait's state: the buffer, the result, and the callback for the
// poller, made once. A Conn keeps one per direction and reuses it, so that a keystroke's reads
// and writes allocate nothing: a callback closing over its call's variables is a new closure
// and new variables on the heap at each call (about five allocations per echoed keystroke in
// each process), and an allocation after a pause is a cold one (docs/benchmarks.md).
type op struct {
	p   []byte
	n   int
	err error // of read(2) or write(2)

	read, write func(fd uintptr) bool // o.tryRead and o.tryWrite, bound once
}

// readWait is ReadWait with o's state; o is not in use by another call.
func (o *op) readWait(rc syscall.RawConn, p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if o.read == nil {
		o.read = o.tryRead
	}
	o.p, o.n, o.err = p, 0, nil
	err := rc.Read(o.read)
	n, rerr := o.n, o.err
	o.p, o.err = nil, nil // keep neither the caller's buffer nor the error
	switch {
	case err != nil:
		return 0, err
	case rerr != nil:
		return 0, rerr
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}

func (o *op) tryRead(fd uintptr) bool {
	o.n, o.err = Read(int(fd), o.p)
	return o.err != unix.EAGAIN
}

// writeWait is WriteWait with o's state; o is not in use by another call.
func (o *op) writeWait(rc syscall.RawConn, p []byte) (int, error) {
	if o.write == nil {
		o.write = o.tryWrite
	}
	o.p, o.n, o.err = p, 0, nil
	err := rc.Write(o.write)
	n, werr := o.n, o.err
	o.p, o.err = nil, nil
	if err != nil {
		return n, err
	}
	return n, werr
}

func (o *op) tryWrite(fd uintptr) bool {
	for o.n < len(o.p) {
		m, err := Write(int(fd), o.p[o.n:])
		if err == unix.EAGAIN {
			return false
		}
		if err != nil {
			o.err = err
			return true
		}
		o.n += m
	}
	return true
}
