// Package pty runs a command on a new pseudo-terminal, the way a remote-login
// daemon needs it: the command is a session leader whose controlling terminal is
// the pty, the master side is in packet mode so that output discarded by the
// line discipline (the user typed ^C) can be reported to the client, and the end
// of the session is detected even when a background process keeps the terminal open.
//
// Typical usage:
//
//	cmd := exec.Command("/bin/sh", "-l")
//	p, err := pty.Start(cmd, pty.Size{Rows: 24, Cols: 80})
//	if err != nil {
//		return err
//	}
//	defer p.Close()
//	// Input side, from another goroutine: p.Write(keys), p.Resize(sz), p.SendEOF();
//	// p.Hangup() when the connection drops; p.Close() (hangs the line up for good)
//	// and p.Kill() for a shell that outlives the hangup.
//	buf := make([]byte, 32<<10)
//	for {
//		n, flushed, err := p.ReadOutput(buf)
//		if flushed {
//			// tell the client to drop the output it has queued
//		}
//		if n > 0 {
//			// send buf[:n] to the client
//		}
//		if err != nil {
//			break // io.EOF: the shell is gone
//		}
//	}
//	state, err := p.Wait()
//	err = p.End(5 * time.Second) // what the shell left: SIGHUP, and SIGKILL 5 s after the hangup
//
// For a login session, StartContained starts the command in a cgroup of its own where the
// caller may create one, so that End reaches every process the session started, even one that
// left the session and the terminal; elsewhere End finds them by session and terminal.
// OpenContained is StartContained in two steps, for a caller that must name the terminal before
// the command starts (a PAM login sets PAM_TTY before it opens the session):
//
//	o, err := pty.OpenContained(sz)
//	// ... o.TTY() is the slave: its name for PAM, utmp ...
//	p, err := o.Start(cmd) // or o.Close() if the command is not started after all
//
// A server with privilege separation serves the terminal in a process other than the one that
// started the command: the starter passes on a copy of the master (DupMaster; with SCM_RIGHTS,
// say), and the server attaches it with Attach, giving it a Process that asks the starter for
// the hangup, the kill and the exit status:
//
//	t, err := pty.Attach(master, proc) // proc: the starter's side, reached by messages
//	// t reads, writes and resizes as a PTY does; t.WaitStatus() is the command's wait status.
//
// Start wraps github.com/creack/pty. Only Linux is supported; elsewhere Start
// returns ErrUnsupported.
package pty

import "errors"

// Size is a terminal window size: Rows and Cols in character cells, XPixel and YPixel in pixels
// (0 when unknown), as in struct winsize. session.WindowSize is this type.
type Size struct {
	Rows, Cols, XPixel, YPixel uint16
}

// Status holds the status bits of a packet-mode status packet (see tty_ioctl(4),
// TIOCPKT), as ReadPacket returns them. Several may be set at once.
type Status byte

// The packet-mode status bits; their values are Linux's and BSD's TIOCPKT_* and
// also the control bytes a classic rlogind sends its client as urgent data.
const (
	StatusFlushRead  Status = 0x01 // the terminal's input queue was flushed
	StatusFlushWrite Status = 0x02 // the output queue was flushed (after ^C): drop pending output
	StatusStop       Status = 0x04 // output was stopped (^S)
	StatusStart      Status = 0x08 // output was restarted (^Q)
	StatusNoStop     Status = 0x10 // flow control with ^S/^Q is off: the application reads them
	StatusDoStop     Status = 0x20 // ^S/^Q are the stop/start characters and flow control is on (IXON)
)

// ErrUnsupported is returned by Start on platforms this package does not support.
var ErrUnsupported = errors.New("pty: unsupported platform")
