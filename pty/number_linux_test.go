package pty_test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// ttysOf counts the descriptors of process proc ("self" or a pid) that are /dev/pts/n, whether
// the name is still there or not.
func ttysOf(t *testing.T, proc string, n int) int {
	t.Helper()
	name := "/dev/pts/" + strconv.Itoa(n)
	count := 0
	for _, fd := range openFDsOf(t, proc) {
		_, target, _ := strings.Cut(fd, "->")
		if target == name || strings.HasPrefix(target, name+" ") {
			count++
		}
	}
	return count
}

// TestCloseKeepsTheNumberUntilTheReap plays util-linux's login(1), which closes its
// descriptors of the terminal, hangs it up and opens it again by name: a master closed
// meanwhile must not free the terminal's number for a new pty while the child lives (login(1)
// would open, and chown, another session's terminal), and the hold must go with the reap.
func TestCloseKeepsTheNumberUntilTheReap(t *testing.T) {
	p, _ := startScript(t, false, "exec 0<&- 1>&- 2>&- sleep 60")
	m, err := p.DupMaster()
	if err != nil {
		t.Fatal(err)
	}
	num, err := unix.IoctlGetUint32(int(m.Fd()), unix.TIOCGPTN)
	_ = m.Close()
	if err != nil {
		t.Fatal(err)
	}
	n := int(num)
	deadline := time.Now().Add(watchdog)
	for ttysOf(t, strconv.Itoa(p.Pid()), n) != 0 { // sh has closed them and become sleep
		if time.Now().After(deadline) {
			t.Fatalf("the child still holds /dev/pts/%d after %v", n, watchdog)
		}
		time.Sleep(10 * time.Millisecond) // polling a condition with a deadline
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if got := ttysOf(t, "self", n); got != 1 {
		t.Fatalf("after Close, with the child running, this process holds %d descriptors of /dev/pts/%d, want 1", got, n)
	}

	// New ptys take the lowest free numbers: none may take n while the child lives.
	for i := 0; i <= n+64; i++ {
		fd, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		k, err := unix.IoctlGetUint32(fd, unix.TIOCGPTN)
		t.Cleanup(func() { _ = unix.Close(fd) })
		if err != nil {
			t.Fatal(err)
		}
		if int(k) == n {
			t.Fatalf("a new pty took number %d from a closed PTY whose child still runs", n)
		}
		if int(k) > n {
			break
		}
	}

	p.Kill()
	if _, err := p.Wait(); err != nil {
		t.Fatal(err)
	}
	if got := ttysOf(t, "self", n); got != 0 {
		t.Fatalf("after the reap this process still holds %d descriptors of /dev/pts/%d", got, n)
	}
}
