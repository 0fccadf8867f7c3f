// Package usershell answers how the user's own login shell starts when rlogind runs as that
// user (user mode): which shell (the passwd database's, or /bin/sh), with which environment
// (HOME, USER, LOGNAME, SHELL, a fixed PATH, TERM and the accepted locale variables, nothing of
// the daemon's own), in the home directory, as a login shell ("-bash") on a new pty.
//
// Typical usage:
//
//	path, err := usershell.Lookup(usershell.PasswdPath, os.Getuid()) // the fallback on error
//	...
//	sh := usershell.Shell{User: "alice", Home: "/home/alice", Path: path}
//	cmd, p, err := usershell.Start(logger, sh, "xterm", []string{"LANG=C.UTF-8"}, pty.Size{Rows: 24, Cols: 80})
//	...
//	// serve p; cmd.Process is the shell, for a forced stop
//	p.Hangup()      // the session is over: the shell gets SIGHUP
//	_, _ = p.Wait() // once the shell has exited:
//	err = p.End(5 * time.Second) // its leftover jobs get SIGHUP, and SIGKILL 5s after the hangup
package usershell
