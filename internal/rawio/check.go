package rawio

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// ErrMayBlock is the error of NewWatch (and, in race-enabled builds, of Read and Write) for a
// descriptor that a raw system call could block on: see the package doc.
var ErrMayBlock = errors.New("rawio: descriptor may block")

// check returns nil if no read(2) or write(2) on fd can sleep waiting for data or room: fd
// has O_NONBLOCK set and is of a kind whose driver honours it (a socket, a pipe or FIFO, a
// character device such as a terminal or pty master). It returns an error matching
// ErrMayBlock otherwise: for regular files, block devices and directories O_NONBLOCK means
// nothing, and a read may wait for the disk.
func check(fd int) error {
	flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
	if err != nil {
		return fmt.Errorf("rawio: descriptor %d: %w", fd, err)
	}
	if flags&unix.O_NONBLOCK == 0 {
		return fmt.Errorf("%w: descriptor %d is blocking (O_NONBLOCK is not set)", ErrMayBlock, fd)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fmt.Errorf("rawio: descriptor %d: %w", fd, err)
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFSOCK, unix.S_IFIFO, unix.S_IFCHR:
		return nil
	}
	return fmt.Errorf("%w: descriptor %d is not a socket, pipe or character device (file mode %#o)", ErrMayBlock, fd, st.Mode&unix.S_IFMT)
}
