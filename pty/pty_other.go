//go:build !linux

package pty

import (
	"os"
	"os/exec"
	"time"
)

// PTY is a command running on a pseudo-terminal. This platform is not supported.
type PTY struct{}

// Start returns ErrUnsupported on this platform.
func Start(cmd *exec.Cmd, sz Size) (*PTY, error) { return nil, ErrUnsupported }

// StartContained returns ErrUnsupported.
func StartContained(cmd *exec.Cmd, sz Size) (*PTY, error) { return nil, ErrUnsupported }

// Opened is a pseudo-terminal whose command is not started yet. This platform is not supported.
type Opened struct{}

// OpenContained returns ErrUnsupported.
func OpenContained(sz Size) (*Opened, error) { return nil, ErrUnsupported }

// TTY returns nil.
func (o *Opened) TTY() *os.File { return nil }

// Start returns ErrUnsupported.
func (o *Opened) Start(cmd *exec.Cmd) (*PTY, error) { return nil, ErrUnsupported }

// Close returns nil.
func (o *Opened) Close() error { return nil }

// End returns ErrUnsupported.
func (p *PTY) End(grace time.Duration) error { return ErrUnsupported }

// ReadOutput returns ErrUnsupported.
func (p *PTY) ReadOutput(b []byte) (int, bool, error) { return 0, false, ErrUnsupported }

// ReadPacket returns ErrUnsupported.
func (p *PTY) ReadPacket(b []byte) (int, Status, error) { return 0, 0, ErrUnsupported }

// Write returns ErrUnsupported.
func (p *PTY) Write(b []byte) (int, error) { return 0, ErrUnsupported }

// TryWrite returns ErrUnsupported.
func (p *PTY) TryWrite(b []byte) (int, error) { return 0, ErrUnsupported }

// Resize returns ErrUnsupported.
func (p *PTY) Resize(sz Size) error { return ErrUnsupported }

// FlushesOutput reports false.
func (p *PTY) FlushesOutput(b []byte) bool { return false }

// AppendFlushKeys appends none.
func (p *PTY) AppendFlushKeys(keys []byte) []byte { return keys }

// SendEOF returns ErrUnsupported.
func (p *PTY) SendEOF() error { return ErrUnsupported }

// Hangup does nothing.
func (p *PTY) Hangup() {}

// Kill does nothing.
func (p *PTY) Kill() {}

// Wait returns ErrUnsupported.
func (p *PTY) Wait() (*os.ProcessState, error) { return nil, ErrUnsupported }

// Close returns nil.
func (p *PTY) Close() error { return nil }

// Pid returns -1.
func (p *PTY) Pid() int { return -1 }

// Exited is closed at once: there is no child.
func (p *PTY) Exited() <-chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}
