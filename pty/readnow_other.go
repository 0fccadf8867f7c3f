//go:build !linux

package pty

// ReadOutputNow returns ErrUnsupported.
func (p *PTY) ReadOutputNow(b []byte) (int, bool, error) { return 0, false, ErrUnsupported }
