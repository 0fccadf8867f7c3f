//go:build !linux

package pty

import (
	"os"
	"syscall"
)

// Attached is the terminal of a session whose command another process started. This platform is
// not supported.
type Attached struct{ PTY }

// Attach closes master and returns ErrUnsupported.
func Attach(master *os.File, proc Process) (*Attached, error) {
	_ = master.Close()
	return nil, ErrUnsupported
}

// WaitStatus returns ErrUnsupported.
func (a *Attached) WaitStatus() (ws syscall.WaitStatus, err error) {
	return ws, ErrUnsupported
}

// DupMaster returns ErrUnsupported.
func (p *PTY) DupMaster() (*os.File, error) { return nil, ErrUnsupported }
