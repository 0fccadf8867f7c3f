package pty

import "syscall"

// Process is the process side of a command that another process started on a pty and waits
// for, as Attach needs it. In a daemon with privilege separation, an unprivileged process serves
// the session's terminal with Attach while the privileged process that started the command (and
// holds its PTY) does these operations for it, on request: Process's methods send the request
// and return, or wait for the answer.
//
// Its methods may be called from any goroutine, concurrently.
type Process interface {
	// Hangup hangs up the command's session (PTY.Hangup). It does nothing after the first call,
	// or once the command has been reaped.
	Hangup()

	// Kill kills the command with SIGKILL (PTY.Kill). It does nothing once the command has been
	// reaped.
	Kill()

	// Exited returns a channel that is closed once the command has exited (it may have been
	// reaped since): everything it wrote to the terminal is then in the pty's buffers, which
	// is what lets ReadOutput return all of it before io.EOF.
	Exited() <-chan struct{}

	// Wait waits for the command to exit and returns its wait status as its parent saw it
	// (for a PTY's state st, st.Sys().(syscall.WaitStatus)); once Exited is closed it returns
	// without waiting. It may be called more than once and returns the same result each time.
	// The error is non-nil only when the status cannot be known.
	Wait() (syscall.WaitStatus, error)
}
