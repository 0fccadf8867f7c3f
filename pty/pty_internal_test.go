//go:build linux

package pty

import (
	"errors"
	"os"
	"os/exec"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestMasterIsPollable checks the design ReadOutput relies on: the master is
// non-blocking and in the netpoller (read deadlines fire), and close-on-exec.
func TestMasterIsPollable(t *testing.T) {
	p, err := Start(exec.Command("sleep", "1000"), Size{Rows: 24, Cols: 80})
	if err != nil {
		t.Fatal(err)
	}
	watchdog := time.AfterFunc(30*time.Second, func() {
		t.Error("watchdog: test still running after 30s; closing the pty and killing the child")
		_ = p.Close()
		_ = unix.Kill(-p.Pid(), unix.SIGKILL) // not reaped yet: Wait comes last
	})
	defer func() {
		watchdog.Stop()
		p.Hangup()
		_ = p.Close()
		if _, err := p.Wait(); err != nil {
			t.Error(err)
		}
	}()

	var fdFlags, flFlags int
	err = control(p.raw, func(fd int) error {
		var err error
		if fdFlags, err = unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != nil {
			return err
		}
		flFlags, err = unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if fdFlags&unix.FD_CLOEXEC == 0 {
		t.Error("master is not close-on-exec")
	}
	if flFlags&unix.O_NONBLOCK == 0 {
		t.Error("master is not non-blocking")
	}

	if err := p.master.SetReadDeadline(time.Now().Add(20 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if _, err := p.master.Read(make([]byte, 16)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("Read with a deadline and nothing to read: %v, want os.ErrDeadlineExceeded", err)
	}
	if err := p.master.SetReadDeadline(time.Time{}); err != nil {
		t.Fatal(err)
	}
}
