//go:build linux && (386 || arm)

package userfile

import "golang.org/x/sys/unix"

// sysSetgroups is setgroups(2) with 32-bit group ids: SYS_SETGROUPS takes 16-bit ones here.
const sysSetgroups = unix.SYS_SETGROUPS32
