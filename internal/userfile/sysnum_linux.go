//go:build linux && !386 && !arm

package userfile

import "golang.org/x/sys/unix"

// sysSetgroups is setgroups(2) with 32-bit group ids.
const sysSetgroups = unix.SYS_SETGROUPS
