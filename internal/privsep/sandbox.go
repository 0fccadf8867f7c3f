package privsep

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"syscall"

	seccomp "github.com/elastic/go-seccomp-bpf"
	"github.com/elastic/go-seccomp-bpf/arch"
	"golang.org/x/sys/unix"
)

// ChannelFD is the descriptor of the net child's end of the Channel: the first of
// NetCommand's files.
const ChannelFD = 3

// NetChildMaxFiles is the net child's RLIMIT_NOFILE, soft and hard alike (so it cannot raise
// it): 0-2, the Channel, the connection, the pty master, the runtime's epoll and wake-up
// descriptors, with room to spare.
const NetChildMaxFiles = 32

// NetCommand returns the command that starts a net child: the program exe (a path, not looked
// up in $PATH: rlogind itself, from os.Executable, told its role by the arguments the caller
// sets in cmd.Args) as lease's dynamic uid, with
// the same gid and no supplementary groups, so no capabilities; in "/" with an empty
// environment; channel (the net child's end of Pair) as ChannelFD, then files; killed by
// SIGKILL when the thread that starts it exits (Pdeathsig: start it from a goroutine that is
// not locked to a thread it then ends, or the child dies with that thread); in a process
// group of its own (Setpgid), so that a signal meant for the listener's group (a ^C at a
// foreground rlogind, kill -- -PGID) reaches the net child only through its monitor, which owns
// its end. Standard input, output and error are /dev/null unless the caller sets them; a
// regular file as its standard error gets no writes past the child's RLIMIT_FSIZE of 0.
//
// The net child calls Confine first thing.
func NetCommand(exe string, lease *UIDLease, channel *os.File, files ...*os.File) *exec.Cmd {
	cmd := exec.Command(exe)
	cmd.Dir = "/"
	cmd.Env = []string{} // not nil: nothing of the monitor's environment
	cmd.ExtraFiles = append([]*os.File{channel}, files...)
	cmd.SysProcAttr = &syscall.SysProcAttr{
		// Groups empty, not nil: setgroups(0), so none of the monitor's (root's) groups stay.
		Credential: &syscall.Credential{Uid: lease.UID, Gid: lease.UID, Groups: []uint32{}},
		// Go sets it after the credentials change (which would clear it) and kills the
		// child at once if the monitor is already gone.
		Pdeathsig: syscall.SIGKILL,
		Setpgid:   true,
	}
	return cmd
}

// Confine confines the calling process, a net child, for the rest of its life. Call it first
// thing, before reading anything from the network:
//
//   - PR_SET_DUMPABLE 0 (for the whole process): no core dumps, and /proc/PID of it stays
//     root's, so nothing of its uid can read its memory or descriptors;
//   - PR_SET_NO_NEW_PRIVS on every thread: no exec can gain privileges;
//   - rlimits: RLIMIT_NOFILE NetChildMaxFiles, RLIMIT_FSIZE 0 (no file grows; SIGXFSZ, which
//     Go ignores, makes such writes fail with EFBIG), RLIMIT_CORE 0. Not RLIMIT_NPROC: it
//     counts every thread of the uid, and Go's runtime starts threads as it needs them;
//   - working directory "/";
//   - a seccomp filter on every thread (SECCOMP_FILTER_FLAG_TSYNC), see below.
//
// The filter is a deny list with EPERM: exec (execve, execveat), new processes (fork, vfork,
// clone without CLONE_THREAD; clone3 fails with ENOSYS so that libc and Go fall back to
// clone for threads), tracing (ptrace, process_vm_readv/writev, pidfd_getfd, kcmp), new
// sockets (socket: the net child has its connection and its Channel), mounts and namespaces,
// changes of credentials (the setuid family, setgroups, capset), PR_SET_DUMPABLE, the
// kernel's administration (kexec, bpf, modules, reboot, swap, keyrings, perf, clocks,
// hostname, io_uring, userfaultfd, ...) and changes to the file system (mkdir, unlink,
// rename, link, chmod, chown, truncate, mknod, xattrs, utimes, and an open that would create a
// file: O_CREAT, O_TMPFILE; openat2, whose flags a filter cannot see, fails with ENOSYS, so
// that callers fall back to openat). Every other system call of
// the native ABI is allowed; system calls of another ABI (i386's int 0x80 on amd64) and
// numbers newer than the filter library's table (Linux 6.8) fail with EPERM: a deny list
// that let those through could be passed by the i386 execve.
//
// A deny list, not an allow list: Go's runtime, crypto/tls and the session's I/O use a set
// of system calls that changes from one Go release to the next, and an allow list that
// missed one would break logins in ways no test here sees; what the net child must never do
// is short and stable.
func Confine() error {
	// One thread for the calls that act on the calling thread only, so that the
	// no_new_privs the seccomp filter needs is on the thread that loads it.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		return fmt.Errorf("privsep: confine: dumpable: %w", os.NewSyscallError("prctl", err))
	}
	// Every thread at once where the runtime can (not in a binary linked with cgo: ENOTSUP).
	// Otherwise this thread now, and the filter's TSYNC below sets no_new_privs on every other
	// thread as it gives it the filter (kernel/seccomp.c, seccomp_sync_threads).
	if _, _, e := syscall.AllThreadsSyscall(syscall.SYS_PRCTL, unix.PR_SET_NO_NEW_PRIVS, 1, 0); e != 0 {
		if e != syscall.ENOTSUP {
			return fmt.Errorf("privsep: confine: no_new_privs: %w", os.NewSyscallError("prctl", e))
		}
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return fmt.Errorf("privsep: confine: no_new_privs: %w", os.NewSyscallError("prctl", err))
		}
	}
	for _, l := range []struct {
		name     string
		resource int
		max      uint64
	}{
		{"RLIMIT_NOFILE", unix.RLIMIT_NOFILE, NetChildMaxFiles},
		{"RLIMIT_FSIZE", unix.RLIMIT_FSIZE, 0},
		{"RLIMIT_CORE", unix.RLIMIT_CORE, 0},
	} {
		if err := unix.Setrlimit(l.resource, &unix.Rlimit{Cur: l.max, Max: l.max}); err != nil {
			return fmt.Errorf("privsep: confine: %s: %w", l.name, os.NewSyscallError("setrlimit", err))
		}
	}
	if err := os.Chdir("/"); err != nil {
		return fmt.Errorf("privsep: confine: %w", err)
	}
	policies, err := netChildPolicies()
	if err != nil {
		return fmt.Errorf("privsep: confine: %w", err)
	}
	for _, p := range policies {
		err := seccomp.LoadFilter(seccomp.Filter{NoNewPrivs: true, Flag: seccomp.FilterFlagTSync, Policy: p})
		if err != nil {
			return fmt.Errorf("privsep: confine: %w", err)
		}
	}
	return nil
}

// deniedSyscalls are the system calls a net child never needs and that would let a net child
// that is taken over do harm: they fail with EPERM. Names the running architecture does not
// have are left out.
func deniedSyscalls() []string {
	return []string{
		// exec and new processes (clone is allowed for threads only, below)
		"execve", "execveat", "fork", "vfork",
		// tracing and reading other processes
		"ptrace", "process_vm_readv", "process_vm_writev", "pidfd_getfd", "kcmp",
		// new sockets: the net child has its connection and its Channel (as OpenSSH's sandbox)
		"socket",
		// mounts and namespaces
		"mount", "umount", "umount2", "pivot_root", "chroot", "unshare", "setns", "open_tree",
		"move_mount", "fsopen", "fsconfig", "fsmount", "fspick", "mount_setattr",
		// credentials
		"setuid", "setgid", "setreuid", "setregid", "setresuid", "setresgid", "setfsuid",
		"setfsgid", "setgroups", "capset",
		// the kernel's administration
		"kexec_load", "kexec_file_load", "bpf", "init_module", "finit_module", "delete_module",
		"create_module", "reboot", "swapon", "swapoff", "keyctl", "add_key", "request_key",
		"perf_event_open", "userfaultfd", "acct", "quotactl", "quotactl_fd", "syslog",
		"settimeofday", "clock_settime", "clock_adjtime", "adjtimex", "sethostname",
		"setdomainname", "iopl", "ioperm", "lookup_dcookie", "uselib", "personality", "vhangup",
		"open_by_handle_at", "name_to_handle_at", "io_uring_setup", "io_uring_enter",
		"io_uring_register", "fanotify_init", "nfsservctl",
		// changes to the file system
		"creat", "mknod", "mknodat", "mkdir", "mkdirat", "rmdir", "unlink", "unlinkat", "rename",
		"renameat", "renameat2", "link", "linkat", "symlink", "symlinkat", "chmod", "fchmod",
		"fchmodat", "fchmodat2", "chown", "fchown", "lchown", "fchownat", "truncate", "ftruncate",
		"utime", "utimes", "utimensat", "futimesat", "setxattr", "lsetxattr", "fsetxattr",
		"removexattr", "lremovexattr", "fremovexattr",
	}
}

// netChildPolicies are Confine's seccomp filters for the running architecture: the deny
// list, then one filter for each system call whose arguments decide. (go-seccomp-bpf v1.6.0
// does not load the system call's number again after it looked at an argument, so a rule
// with argument conditions works only as the last one of its filter: a number compared after
// it would be compared with the argument. A filter of its own per such call keeps every rule
// sound; the kernel applies the most restrictive answer of all the filters, and caches the
// calls every filter allows whatever the arguments.)
func netChildPolicies() ([]seccomp.Policy, error) {
	info, err := arch.GetInfo("")
	if err != nil {
		return nil, err
	}
	has := func(name string) bool { _, ok := info.SyscallNames[name]; return ok }
	known := func(names ...string) []string {
		return slices.DeleteFunc(names, func(n string) bool { return !has(n) })
	}
	all := make([]string, 0, len(info.SyscallNames))
	for name := range info.SyscallNames {
		all = append(all, name)
	}
	slices.Sort(all) // one filter for one binary, whatever the map's order
	policies := []seccomp.Policy{{
		// Reached by other ABIs (the library's filter jumps there for a foreign
		// architecture) and by numbers not in its table.
		DefaultAction: seccomp.ActionErrno,
		Syscalls: []seccomp.SyscallGroup{
			{Action: seccomp.ActionErrno, Names: known(deniedSyscalls()...)}, // EPERM
			{
				// ENOSYS, so that callers fall back: glibc's pthread_create (in a cgo binary)
				// to clone, Go's os.Root to openat, whose flags a filter can see.
				Action: seccomp.ActionErrno | seccomp.Action(unix.ENOSYS),
				Names:  known("clone3", "openat2"),
			},
			{Action: seccomp.ActionAllow, Names: all},
		},
	}}
	argRule := func(name string, conds ...seccomp.ArgumentConditions) {
		if !has(name) {
			return
		}
		rule := seccomp.SyscallGroup{Action: seccomp.ActionErrno} // EPERM
		for _, c := range conds {
			rule.NamesWithCondtions = append(rule.NamesWithCondtions, seccomp.NameWithConditions{Name: name, Conditions: c})
		}
		policies = append(policies, seccomp.Policy{DefaultAction: seccomp.ActionAllow, Syscalls: []seccomp.SyscallGroup{rule}})
	}
	bits := func(arg uint32, v uint64) seccomp.ArgumentConditions {
		return seccomp.ArgumentConditions{{Argument: arg, Operation: seccomp.BitsSet, Value: v}}
	}
	// A process, not a thread: Go's runtime and libc's threads set CLONE_THREAD. (The flags
	// are the first argument on every architecture.)
	argRule("clone", seccomp.ArgumentConditions{{Argument: 0, Operation: seccomp.BitsNotSet, Value: unix.CLONE_THREAD}})
	argRule("prctl", seccomp.ArgumentConditions{{Argument: 0, Operation: seccomp.Equal, Value: unix.PR_SET_DUMPABLE}})
	// An open that makes a file: O_CREAT or O_TMPFILE.
	tmpfile := uint64(unix.O_TMPFILE &^ unix.O_DIRECTORY)
	argRule("open", bits(1, unix.O_CREAT), bits(1, tmpfile))
	argRule("openat", bits(2, unix.O_CREAT), bits(2, tmpfile))
	return policies, nil
}
