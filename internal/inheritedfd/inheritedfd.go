package inheritedfd

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"

	"golang.org/x/sys/unix"
)

// procSelfFD lists the process's open descriptors, one entry each.
const procSelfFD = "/proc/self/fd"

// Close closes every descriptor from 3 on that the process inherited at its start, except
// those in keep; descriptors 0, 1 and 2 are always kept. A descriptor counts as inherited when
// its close-on-exec flag is clear (see the package doc). Descriptors the process opened with
// the flag clear on purpose (syscall.Dup, unix.Dup2 and the like) count as inherited too: call
// Close before making any.
//
// Close finds the open descriptors in /proc/self/fd. Without /proc (a chroot, a sandbox) it
// cannot tell the inherited descriptors from the runtime's without asking every possible
// descriptor, so it marks every descriptor but keep close-on-exec (close_range(2) with
// CLOSE_RANGE_CLOEXEC): the inherited ones then stay open in the process but reach no program it
// starts. Where close_range is missing too (Linux before 5.11), it asks each descriptor up to
// the RLIMIT_NOFILE limit. It returns an error only when none of these works.
//
// sshd's closefrom closes everything from a number on (close_range(2) without flags); a Go
// program cannot: by the time its main runs, the runtime holds descriptors of its own among the
// inherited ones (the network poller's epoll and eventfd, the cgroup files Go 1.25 on watches
// for GOMAXPROCS), and closing them would break the process. So Close picks the inherited ones
// by their flag, which needs the list of open descriptors that only /proc gives cheaply.
func Close(keep ...int) error {
	if err := closeListed(procSelfFD, keep); err == nil {
		return nil
	}
	if err := markCloseOnExec(keep); err == nil {
		return nil
	}
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Errorf("inheritedfd: cannot find the open descriptors: %w", err)
	}
	closeUpTo(int(min(lim.Max, 1<<30)), keep)
	return nil
}

// Range returns the n descriptors from first on, such as the sockets systemd passes (from 3).
func Range(first, n int) []int {
	fds := make([]int, n)
	for i := range fds {
		fds[i] = first + i
	}
	return fds
}

// closeListed closes the inherited descriptors among those listed in dir (procSelfFD).
func closeListed(dir string, keep []int) error {
	ents, err := os.ReadDir(dir) // its own descriptor is close-on-exec and closed on return
	if err != nil {
		return err
	}
	for _, e := range ents {
		fd, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		closeIfInherited(fd, keep)
	}
	return nil
}

// closeUpTo closes the inherited descriptors below limit, asking each.
func closeUpTo(limit int, keep []int) {
	for fd := 3; fd < limit; fd++ {
		closeIfInherited(fd, keep)
	}
}

// closeIfInherited closes fd if it is inherited and not kept; a descriptor that is not open
// (any more) is left alone.
func closeIfInherited(fd int, keep []int) {
	if fd <= 2 || slices.Contains(keep, fd) {
		return
	}
	flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
	if err != nil || flags&unix.FD_CLOEXEC != 0 {
		return
	}
	_ = unix.Close(fd) // best effort: EINTR and EIO still release the descriptor on Linux
}

// errNoCloseRange reports a system without close_range(2)'s CLOSE_RANGE_CLOEXEC.
var errNoCloseRange = errors.New("close_range with CLOSE_RANGE_CLOEXEC is not supported")

// gaps returns the ranges [lo, hi] of descriptors from 3 on that are not in keep, the last
// one open-ended.
func gaps(keep []int) [][2]uint {
	ks := slices.Sorted(slices.Values(keep))
	var rs [][2]uint
	lo := uint(3)
	for _, k := range ks {
		if k < 0 || uint(k) < lo {
			continue
		}
		if uint(k) > lo {
			rs = append(rs, [2]uint{lo, uint(k) - 1})
		}
		lo = uint(k) + 1
	}
	return append(rs, [2]uint{lo, ^uint(0)})
}
