package pty

import (
	"os"

	"golang.org/x/sys/unix"
)

// waitExitPolled waits, without reaping, until process pid has exited, through a pidfd in
// Go's network poller: the wait holds no thread (a blocking waitid(2) would hold one per
// child, which a daemon with a thousand sessions pays for in memory and in threads). It
// returns false, having waited for nothing, when the kernel has no pollable pidfds (before
// Linux 5.10); the caller then waits the blocking way.
func waitExitPolled(pid int) bool {
	fd, err := unix.PidfdOpen(pid, unix.PIDFD_NONBLOCK)
	if err != nil {
		return false // ESRCH cannot happen: the child is not reaped before this returns
	}
	f := os.NewFile(uintptr(fd), "pidfd") // non-blocking, so it joins the poller
	defer f.Close()
	rc, err := f.SyscallConn()
	if err != nil {
		return false
	}
	err = rc.Read(func(fd uintptr) bool {
		var info unix.Siginfo // Signo stays 0 unless a state change is reported
		err := unix.Waitid(unix.P_PIDFD, int(fd), &info, unix.WEXITED|unix.WNOWAIT|unix.WNOHANG, nil)
		switch {
		case err == unix.EINTR:
			return false // try again when the pidfd says so (or now, if it already does)
		case err != nil:
			return true // ECHILD: reaped behind our back, gone either way
		}
		return info.Signo != 0 // exited; else wait until the pidfd is readable: it then has
	})
	return err == nil
}
