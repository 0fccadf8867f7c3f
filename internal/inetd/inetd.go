// Package inetd is what a service started by inetd (or by systemd with Accept=yes and
// StandardInput=socket) needs: the connection on its standard input as a net.Conn, and its
// standard descriptors taken off that connection so that nothing but the protocol reaches the
// client.
//
// Typical usage:
//
//	conn, err := inetd.Conn(os.Stdin)
//	if err != nil {
//		return err // started by hand, or from a listening socket
//	}
//	defer conn.Close()
//	stderrIsConn := inetd.SameFile(os.Stdin, os.Stderr)
//	// ... open the log elsewhere (syslog) when stderrIsConn ...
//	if err := inetd.DetachStdio(stderrIsConn, -1); err != nil {
//		log.Warn("cannot detach standard input and output", "err", err)
//	}
//	serve(conn)
package inetd

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// Conn returns the connected socket f (inetd's standard input) as a net.Conn; it works on a
// duplicate of f's descriptor, so the caller may close f. The socket stays non-blocking.
func Conn(f *os.File) (net.Conn, error) {
	c, err := net.FileConn(f)
	if err != nil {
		return nil, fmt.Errorf("inetd: standard input is not a connected socket: %w", errnoOf(err))
	}
	var perr error
	if err = control(f, func(fd int) { _, perr = unix.Getpeername(fd) }); err == nil {
		err = perr
	}
	if err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("inetd: standard input is not a connected socket (a listening socket? use socket activation without -inetd): %w", errnoOf(err))
	}
	return c, nil
}

// errnoOf returns the system's reason under err ("socket operation on non-socket"), without
// the layers of context of package net that name descriptors and calls; err if it has none.
func errnoOf(err error) error {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno
	}
	return err
}

// SameFile reports whether f and w (if a file) are the same open file, such as one socket
// that inetd made both standard input and standard error.
func SameFile(f *os.File, w io.Writer) bool {
	g, ok := w.(*os.File)
	if !ok {
		return false
	}
	var a, b syscall.Stat_t
	var aerr, berr error
	if control(f, func(fd int) { aerr = syscall.Fstat(fd, &a) }) != nil || aerr != nil ||
		control(g, func(fd int) { berr = syscall.Fstat(fd, &b) }) != nil || berr != nil {
		return false
	}
	return a.Dev == b.Dev && a.Ino == b.Ino
}

// control calls fn with f's descriptor. Unlike f.Fd, it leaves the descriptor's mode alone: Fd
// makes it blocking, and the socket's open file description is shared with the connection
// made from it, whose raw reads must never block.
func control(f *os.File, fn func(fd int)) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	return rc.Control(func(fd uintptr) { fn(int(fd)) })
}

// DetachStdio points descriptors 0 and 1 (the connection, under inetd) at /dev/null, and
// descriptor 2 too when stderrIsConn: at stderrFD if it is not negative (a log file, so that
// a panic message lands there), else at /dev/null. From then on only the protocol writes to
// the connection, through the descriptor of Conn.
func DetachStdio(stderrIsConn bool, stderrFD int) error {
	null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("inetd: %w", err)
	}
	defer null.Close()
	nfd := int(null.Fd())
	fds := map[int]int{0: nfd, 1: nfd}
	if stderrIsConn {
		fds[2] = nfd
		if stderrFD >= 0 {
			fds[2] = stderrFD
		}
	}
	for to, from := range fds {
		if err := unix.Dup2(from, to); err != nil {
			return fmt.Errorf("inetd: dup2: %w", err)
		}
	}
	return nil
}
