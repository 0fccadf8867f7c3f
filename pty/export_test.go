//go:build linux

package pty

import "github.com/rlogin-go/rlogin/internal/sessioncgroup"

// MasterFD returns p's master descriptor, for tests that look it up in /proc.
func MasterFD(p *PTY) int {
	var master int
	_ = control(p.raw, func(fd int) error { master = fd; return nil })
	return master
}

// CgroupOf returns p's session cgroup (StartContained), or nil.
func CgroupOf(p *PTY) *sessioncgroup.Cgroup { return p.cg }
