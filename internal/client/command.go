package client

import (
	"errors"
	"os"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/rlogin-go/rlogin/session"
)

// pipedCommand reports whether rlogin runs a command without a terminal: no raw mode, no
// escapes, its error output apart, and signals passed on.
func (r *runner) pipedCommand() bool { return r.opts.Command != "" && !r.opts.ForcePTY }

// commandRequest puts the command, if there is one, in req. Without a terminal it sends no
// terminal type or window size: the command gets neither.
func (r *runner) commandRequest(req *session.Request) {
	if r.opts.Command == "" {
		return
	}
	req.Command = &session.Command{Line: r.opts.Command, PTY: r.opts.ForcePTY}
	if !req.Command.PTY {
		req.Term, req.Window = "", session.WindowSize{}
	}
}

// passedSignal returns the name of sig if rlogin passes it on to a command without a terminal
// instead of ending ("" if not): what a user or a script sends to stop or reload the command.
// SIGQUIT still ends rlogin, a way out when the command ignores the others.
func passedSignal(sig os.Signal) string {
	switch sig {
	case unix.SIGINT:
		return "INT"
	case unix.SIGTERM:
		return "TERM"
	case unix.SIGHUP:
		return "HUP"
	}
	return ""
}

// passSignal passes sig on to the remote command, if the session runs one without a terminal
// and passedSignal names sig; it reports whether it did.
func (r *runner) passSignal(sig os.Signal) bool {
	name := passedSignal(sig)
	sg, canSignal := r.sess.(interface{ Signal(string) error })
	if name == "" || !canSignal || !r.pipedCommand() {
		return false
	}
	if err := sg.Signal(name); err != nil {
		r.debugf("passing SIG%s on: %v", name, err)
	} else {
		r.debugf("SIG%s passed on to the command", name)
	}
	return true
}

// outputClosed reports, for a command, a session that ended because what reads rlogin's output
// went away (EPIPE: `rlogin host cat log | head`): rlogin then exits quietly with the status of a
// process killed by SIGPIPE, 141, as the command itself would in a local pipeline.
func (r *runner) outputClosed(waitErr error) (int, bool) {
	if r.opts.Command == "" || !errors.Is(waitErr, syscall.EPIPE) {
		return 0, false
	}
	return 128 + int(syscall.SIGPIPE), true
}
