// Package rawio reads and writes non-blocking descriptors with raw system calls, which skip
// the Go scheduler's system-call bookkeeping.
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
// Use this package only on non-blocking descriptors: a raw system call that blocks holds its
// thread's scheduler slot, and stops the garbage collector, until it returns. The descriptors
// of net.Conns and of os.Files that Go's poller manages are always non-blocking.
//
// A Watch waits for some events of a descriptor that Go's poller does not manage, or should
// not: the poller wakes the process at every change of a descriptor it holds, and a busy
// terminal or pty changes all the time.
package rawio

import (
	"io"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Read is read(2) on the non-blocking fd, retried on EINTR. It returns the errno as it is
// (unix.EAGAIN when nothing is there).
func Read(fd int, p []byte) (int, error) { return rawCall(unix.SYS_READ, fd, p) }

// Write is write(2) on the non-blocking fd, retried on EINTR. It returns the errno as it is
// (unix.EAGAIN when nothing was taken).
func Write(fd int, p []byte) (int, error) { return rawCall(unix.SYS_WRITE, fd, p) }

// rawCall makes the read or write system call trap on fd and p.
func rawCall(trap uintptr, fd int, p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for {
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

// ReadWait reads into p from rc's descriptor, waiting in Go's poller while nothing is there
// (so deadlines and Close interrupt it as they interrupt rc's owner's Read). It returns io.EOF
// when read(2) returns 0 for a non-empty p, a syscall.Errno for a failed read(2), or the
// poller's error (a deadline, a closed descriptor) as rc.Read returns it.
func ReadWait(rc syscall.RawConn, p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	var n int
	var rerr error
	err := rc.Read(func(fd uintptr) bool {
		n, rerr = Read(int(fd), p)
		return rerr != unix.EAGAIN
	})
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

// WriteWait writes all of p to rc's descriptor, waiting in Go's poller while it is full. It
// returns how much was written and, if that is less than len(p), why: a syscall.Errno for a
// failed write(2), or the poller's error as rc.Write returns it.
func WriteWait(rc syscall.RawConn, p []byte) (int, error) {
	var n int
	var werr error
	err := rc.Write(func(fd uintptr) bool {
		for n < len(p) {
			m, err := Write(int(fd), p[n:])
			if err == unix.EAGAIN {
				return false
			}
			if err != nil {
				werr = err
				return true
			}
			n += m
		}
		return true
	})
	if err != nil {
		return n, err
	}
	return n, werr
}
