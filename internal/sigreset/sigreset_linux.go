package sigreset

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// reexecEnv marks the re-executed process, so that a mask that cannot be
// cleared leads to an error instead of an endless series of re-executions.
const reexecEnv = "RLOGIN_SIGRESET_REEXEC"

// Reset makes the signals that were ignored when the process started take their
// default action in the programs the process executes from now on, and makes their
// signal mask empty. For the process itself, formerly ignored signals stay without
// effect.
//
// If signals were blocked at start, Reset re-executes the program (/proc/self/exe,
// with the same arguments and environment) once, with an empty mask: the Go runtime
// gives each child it forks the signal mask its threads started with, so this is the
// only way to clear it. Reset then does not return; it returns an error if the
// re-execution fails or did not clear the mask.
//
// Ignored signals get a handler that drops them (installed with os/signal): a
// caught signal is reset to the default action by execve, an ignored one is not.
// Calling signal.Reset or signal.Ignore for such a signal later undoes this for it;
// signal.Notify and signal.Stop are fine. Signals 32 to 34, reserved by the C
// library and the Go runtime, are left alone.
func Reset() error {
	_, reexeced := os.LookupEnv(reexecEnv)
	if reexeced {
		if err := os.Unsetenv(reexecEnv); err != nil { // children must not see it
			return fmt.Errorf("sigreset: %w", err)
		}
	}
	blocked, err := blockedSignals()
	if err != nil {
		return fmt.Errorf("sigreset: %w", err)
	}
	if len(blocked) > 0 {
		if reexeced {
			return fmt.Errorf("sigreset: signals %v are still blocked after re-executing", blocked)
		}
		return reexec()
	}
	ignored, err := ignoredSignals()
	if err != nil {
		return fmt.Errorf("sigreset: %w", err)
	}
	if len(ignored) > 0 {
		// Nobody reads this channel: the first delivery fills it and later ones are
		// dropped (os/signal never blocks on a full channel), so for the daemon
		// itself these signals keep having no effect.
		signal.Notify(make(chan os.Signal, 1), ignored...)
	}
	return nil
}

// reexec executes /proc/self/exe from a thread whose signal mask is empty;
// execve keeps the mask of the calling thread. It returns only on failure.
func reexec() error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var empty, old unix.Sigset_t
	if err := unix.PthreadSigmask(unix.SIG_SETMASK, &empty, &old); err != nil {
		return fmt.Errorf("sigreset: clear signal mask: %w", err)
	}
	env := append(os.Environ(), reexecEnv+"=1")
	err := syscall.Exec("/proc/self/exe", os.Args, env)
	_ = unix.PthreadSigmask(unix.SIG_SETMASK, &old, nil) // best effort: back to the inherited mask
	return fmt.Errorf("sigreset: re-execute with an empty signal mask: %w", err)
}

// blockedSignals returns the signals blocked in this thread or in the main thread:
// the mask a child forked by the Go runtime would start with.
func blockedSignals() ([]os.Signal, error) {
	runtime.LockOSThread()
	var cur unix.Sigset_t
	err := unix.PthreadSigmask(unix.SIG_BLOCK, nil, &cur) // a nil set only reads the mask
	runtime.UnlockOSThread()
	if err != nil {
		return nil, fmt.Errorf("read signal mask: %w", err)
	}
	main, err := statusMask("SigBlk")
	if err != nil {
		return nil, err
	}
	var sigs []os.Signal
	for sig := 1; sig < 64+1; sig++ {
		bit := uint64(1) << (sig - 1)
		if cur.Val[0]&bit != 0 || main&bit != 0 { // Val[0] holds signals 1 to 64
			sigs = append(sigs, syscall.Signal(sig))
		}
	}
	return sigs, nil
}

// ignoredSignals returns the signals whose disposition is SIG_IGN, as the kernel
// reports it (the Go runtime keeps an inherited SIG_IGN for SIGHUP, SIGINT and the
// job-control signals, and signal.Ignored does not report the latter), together
// with those the runtime records as ignored.
func ignoredSignals() ([]os.Signal, error) {
	ign, err := statusMask("SigIgn")
	if err != nil {
		return nil, err
	}
	var sigs []os.Signal
	for sig := 1; sig < 64+1; sig++ {
		s := syscall.Signal(sig)
		switch {
		case s == unix.SIGKILL || s == unix.SIGSTOP || (sig >= 32 && sig <= 34):
			continue
		case ign&(uint64(1)<<(sig-1)) != 0 || signal.Ignored(s):
			sigs = append(sigs, s)
		}
	}
	return sigs, nil
}

// statusMask reads a signal set such as "SigBlk" or "SigIgn" from /proc/self/status
// (per-thread fields there are the main thread's).
func statusMask(field string) (uint64, error) {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	sc := bufio.NewScanner(bytes.NewReader(status))
	prefix := []byte(field + ":")
	for sc.Scan() {
		if rest, ok := bytes.CutPrefix(sc.Bytes(), prefix); ok {
			mask, err := strconv.ParseUint(string(bytes.TrimSpace(rest)), 16, 64)
			if err != nil {
				return 0, fmt.Errorf("/proc/self/status: %s: %w", field, err)
			}
			return mask, nil
		}
	}
	return 0, fmt.Errorf("/proc/self/status: no %s field", field)
}
