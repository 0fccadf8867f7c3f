// Package userfile opens and reads the small files a user controls (authorized_keys, .rhosts)
// for a daemon that may run as root, so that what the user puts there cannot make the daemon
// read with root's rights, block, or wait past its login grace time.
//
// Typical usage (one Reader per daemon, one Load per login, under the login's deadline):
//
//	var files userfile.Reader // the zero value is ready: DefaultMaxPerUser reads per user
//	auth, err := userfile.Load(ctx, &files, uid, func() (*keys.Authorized, error) {
//		return keys.LoadAuthorized(path, uid, home) // which opens path with userfile.Open
//	})
//
// Open refuses, after opening without blocking (O_NONBLOCK, so a FIFO cannot hold the open),
// anything that is not a regular file on a disk-backed file system: FIFOs, sockets, devices,
// directories, and every file of procfs, sysfs, debugfs and the other pseudo file systems, whose
// files fstat as regular (/proc/kmsg is a regular file of size 0 whose read blocks until the
// kernel logs something). The file systems accepted are listed in diskFileSystems; FUSE is not
// among them, as any user may mount one (fusermount is set-uid) whose reads never return.
//
// Load runs its function with the user's file-system credentials when the daemon is root: on a
// goroutine locked to its OS thread, it sets the thread's supplementary groups, fsgid and fsuid
// to the user's (Linux keeps these per thread; the set-uid, kill and signal rights of the thread
// and the credentials of every other thread stay root's), and restores them before unlocking the
// thread. If restoring fails the thread is never unlocked, so it ends with its goroutine and no
// other goroutine ever runs with the user's credentials; threads the Go runtime starts meanwhile
// are cloned from its clean template thread, not from the locked one. We chose this over a child
// process running as the user (a re-exec of the daemon per login, which tests and the one-binary
// build cannot easily give) because a file read needs nothing but the file-system credentials.
// It does not cover what the function does on other goroutines (it must not start any that touch
// files), nor other kinds of access control (SELinux, AppArmor) that look at the real or
// effective uid.
//
// Load returns when its function does or when ctx is done, whichever comes first. A function that
// never returns (a hung network file system) keeps its goroutine, owned by the Reader: it is
// counted against the user until it returns, and a user with MaxPerUser of them outstanding gets
// ErrBusy at once, so one user's files can tie up at most MaxPerUser goroutines and threads, and
// never a connection past its deadline.
package userfile
