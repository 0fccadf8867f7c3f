// Package sessioncgroup holds the processes of one login session in a cgroup (version 2) of its
// own, so that the session's end can reach every one of them: a process that ignores SIGHUP,
// leaves the terminal or forks twice stays in the cgroup, and cgroup.kill kills them all at once.
//
// Typical usage (a daemon, as root, starting a session):
//
//	cg, err := sessioncgroup.New()
//	if err != nil {
//		// no writable cgroup v2 here (errors.Is(err, sessioncgroup.ErrUnavailable)):
//		// find the session's processes another way
//	}
//	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: cg.FD()} // born in it
//	...
//	cg.Signal(unix.SIGHUP)                   // the session ends: hang them all up
//	if !cg.WaitEmpty(time.Now().Add(grace)) { // give them the grace time to go
//		_ = cg.Kill()                            // then SIGKILL whatever is left
//		cg.WaitEmpty(time.Now().Add(time.Second))
//	}
//	err = cg.Remove()
//
// The cgroup is made under the caller's own cgroup (/proc/self/cgroup) in the cgroup2 hierarchy
// (/proc/self/mountinfo), as "rlogin-session-PID-*" (PID: the caller's); New also removes the
// empty ones whose maker is gone (an rlogind killed with SIGKILL leaves them). That needs the right to create cgroups there:
// root on a machine without systemd, or a unit with Delegate=yes under systemd. A user-mode
// daemon usually has neither, and gets ErrUnavailable.
//
// Only a privileged agent (root, or the owner of a delegated parent) can move a process out of
// the cgroup; a process in it cannot leave on its own, whatever it does with sessions, process
// groups or terminals.
package sessioncgroup
