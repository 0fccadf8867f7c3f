//go:build linux

package pty

// AttachedFD returns a's copy of the master descriptor, for tests that look it up in /proc.
func AttachedFD(a *Attached) int {
	var master int
	_ = control(a.raw, func(fd int) error { master = fd; return nil })
	return master
}
