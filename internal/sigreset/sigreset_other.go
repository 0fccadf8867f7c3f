//go:build !linux

package sigreset

import (
	"os"
	"os/signal"
	"syscall"
)

// Reset makes the signals that were ignored when the process started take their
// default action in the programs the process executes from now on; for the process
// itself they stay without effect. On this platform the signal mask is not checked.
func Reset() error {
	var ignored []os.Signal
	for sig := 1; sig < 32; sig++ {
		s := syscall.Signal(sig)
		if s != syscall.SIGKILL && s != syscall.SIGSTOP && signal.Ignored(s) {
			ignored = append(ignored, s)
		}
	}
	if len(ignored) > 0 {
		signal.Notify(make(chan os.Signal, 1), ignored...)
	}
	return nil
}
