package session

import (
	"os"
	"syscall"
)

// StatusWaiter is an optional Terminal method, for a shell that is not this process's child: a
// server with privilege separation serves the session over a terminal that the process that
// started the shell handed it, and that process reaps the shell (pty.Attached is such a
// Terminal). os.ProcessState holds only a process this one reaped, so such a Terminal's Wait
// returns a nil state, and WaitStatus tells how the shell ended: its wait status, as its parent
// saw it (for a state st, st.Sys().(syscall.WaitStatus)).
//
// Serve calls WaitStatus where it would call Wait, with Wait's rules, and sends the client the
// status; it then returns a nil *os.ProcessState, and the caller asks the Terminal how the shell
// ended.
type StatusWaiter interface {
	WaitStatus() (syscall.WaitStatus, error)
}

// waitTerminal waits for t's shell, with WaitStatus if t has it, else with Wait. It returns the
// state for Serve to return (nil for a StatusWaiter) and the status for EXIT (nil if unknown).
func waitTerminal(t Terminal) (*os.ProcessState, *ExitError, error) {
	if sw, ok := t.(StatusWaiter); ok {
		ws, err := sw.WaitStatus()
		if err != nil {
			return nil, nil, err
		}
		e := exitOf(ws)
		return nil, &e, nil
	}
	st, err := t.Wait()
	if st == nil {
		return nil, nil, err
	}
	e := exitStatus(st)
	return st, &e, err
}

// exitStatus converts a reaped process's state for an EXIT frame.
func exitStatus(st *os.ProcessState) ExitError {
	if ws, ok := st.Sys().(syscall.WaitStatus); ok {
		return exitOf(ws)
	}
	return ExitError{Status: statusByte(st.ExitCode())}
}

// exitOf converts a wait status for an EXIT frame.
func exitOf(ws syscall.WaitStatus) ExitError {
	if ws.Signaled() {
		return ExitError{Signal: signalName(ws.Signal()), CoreDumped: ws.CoreDump()}
	}
	return ExitError{Status: statusByte(ws.ExitStatus())}
}

// statusByte is code if EXIT can carry it, else 255.
func statusByte(code int) int {
	if code < 0 || code > 255 {
		return 255
	}
	return code
}
