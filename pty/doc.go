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
//	// p.Hangup() when the connection drops.
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
//
// Start wraps github.com/creack/pty. Only Linux is supported; elsewhere Start
// returns ErrUnsupported.
package pty

import "errors"

// Size is a terminal window size: Rows and Cols in character cells, X and Y in pixels
// (0 when unknown).
type Size struct {
	Rows, Cols, X, Y uint16
}

// ErrUnsupported is returned by Start on platforms this package does not support.
var ErrUnsupported = errors.New("pty: unsupported platform")
