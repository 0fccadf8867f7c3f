//go:build linux

package pty

// MasterFD returns p's master descriptor, for tests that look it up in /proc.
func MasterFD(p *PTY) int {
	var master int
	_ = control(p.raw, func(fd int) error { master = fd; return nil })
	return master
}
