package session

import "fmt"

// ExitError reports a remote shell that did not exit with status 0.
type ExitError struct {
	Status     int    // exit status, if Signal is ""
	Signal     string // the signal that killed the shell, without "SIG" ("INT"); "" if it exited
	CoreDumped bool   // the killed shell dumped core
}

func (e *ExitError) Error() string {
	if e.Signal == "" {
		return fmt.Sprintf("session: remote shell exited with status %d", e.Status)
	}
	s := "session: remote shell killed by signal " + e.Signal
	if e.CoreDumped {
		s += " (core dumped)"
	}
	return s
}

// ExitCode returns the status a local shell would report: Status, or 128 plus the signal's number
// (255 for a signal this system does not know).
func (e *ExitError) ExitCode() int {
	if e.Signal == "" {
		return e.Status
	}
	if n := signalNumber(e.Signal); n > 0 {
		return 128 + n
	}
	return 255
}

// RefusedError reports a login the server refused, with its reason. Reason comes from the peer:
// the protocol lets it hold no control or format characters (docs/protocol.md, "REFUSE"), but a
// program that shows it on a terminal should still filter it as any untrusted text.
type RefusedError struct {
	Reason string
}

func (e *RefusedError) Error() string { return "session: login refused: " + e.Reason }

// ClosedError reports a session the server ended for a reason other than the shell's exit (it is
// stopping, a protocol error, ...). Reason comes from the peer, with the bounds of RefusedError's.
type ClosedError struct {
	Reason string
}

func (e *ClosedError) Error() string { return "session: closed by server: " + e.Reason }

// waitResult is what Client.Wait returns for an EXIT frame.
func waitResult(e ExitError) error {
	if e.Signal == "" && e.Status == 0 {
		return nil
	}
	return &e
}
