//go:build !unix

package session

import (
	"strconv"
	"syscall"
)

// signalName returns sig's name without "SIG", or its number for a signal without a name. Only
// the signals whose numbers are the same on every POSIX system have names here.
func signalName(sig syscall.Signal) string {
	switch sig {
	case 1:
		return "HUP"
	case 2:
		return "INT"
	case 3:
		return "QUIT"
	case 4:
		return "ILL"
	case 5:
		return "TRAP"
	case 6:
		return "ABRT"
	case 8:
		return "FPE"
	case 9:
		return "KILL"
	case 11:
		return "SEGV"
	case 13:
		return "PIPE"
	case 14:
		return "ALRM"
	case 15:
		return "TERM"
	}
	return strconv.Itoa(int(sig))
}

// signalNumber returns the number of a signal name from signalName, or 0.
func signalNumber(name string) int {
	if n, err := strconv.Atoi(name); err == nil && n > 0 && n < 128 {
		return n
	}
	for sig := syscall.Signal(1); sig < 16; sig++ {
		if signalName(sig) == name {
			return int(sig)
		}
	}
	return 0
}
