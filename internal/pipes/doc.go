// Package pipes runs a command without a terminal, the way a remote-login server runs
// "rlogin host command": the command's standard input, output and error are three pipes, it
// has no controlling terminal, and it leads a session of its own (in a cgroup of its own where
// one can be made), so that a signal, a hangup or the end of the session reaches everything it
// started.
//
// Typical usage:
//
//	cmd := exec.Command("/bin/sh", "-c", "tar c .")
//	c, err := pipes.Start(cmd)
//	if err != nil {
//		return err
//	}
//	// serve c: c.ReadOutput, c.ReadErrorOutput, c.Write and c.SendEOF (closes its stdin);
//	// c.Signal(syscall.SIGINT) to pass a signal on, c.Hangup() when the connection drops.
//	state, err := c.Wait()
//	_ = c.Close()
//	err = c.End(5 * time.Second) // what the command left: SIGHUP, and SIGKILL 5 s later
//
// A *Command is a session.Terminal, with session.ErrorOutputReader and session.Signaler: a
// session server serves it as it serves a pty.
//
// Why pipes rather than socketpairs: both carry a stream; with pipes a command sees what it sees
// under sshd (fstat says FIFO), and a pipe's buffer can be grown (to 1 MiB here), which keeps a
// bulk copy from waking the reader per 64 KiB.
package pipes
