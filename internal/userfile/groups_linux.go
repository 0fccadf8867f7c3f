package userfile

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// setThreadGroups sets the supplementary groups of the calling thread only: the raw system
// call, as syscall.Setgroups and unix.Setgroups change every thread of the process.
func setThreadGroups(groups []int) error {
	gids := make([]uint32, len(groups))
	for i, g := range groups {
		gids[i] = uint32(g)
	}
	var p unsafe.Pointer
	if len(gids) > 0 {
		p = unsafe.Pointer(&gids[0])
	}
	if _, _, errno := unix.RawSyscall(sysSetgroups, uintptr(len(gids)), uintptr(p), 0); errno != 0 {
		return errno
	}
	return nil
}
