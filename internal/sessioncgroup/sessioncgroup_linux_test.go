//go:build linux

package sessioncgroup

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// watchdog bounds every wait of these tests.
const watchdog = 20 * time.Second

// newOrSkip makes a cgroup, or skips the test where this process may not.
func newOrSkip(t *testing.T) *Cgroup {
	t.Helper()
	cg, err := New()
	if errors.Is(err, ErrUnavailable) {
		t.Skipf("no cgroup here (as root with a writable cgroup v2, CI has one): %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cg.Kill()
		cg.WaitEmpty(time.Now().Add(watchdog))
		_ = cg.Remove()
	})
	return cg
}

// startIn starts sh -c script cloned into cg, and reaps it in the cleanup.
func startIn(t *testing.T, cg *Cgroup, script string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("/bin/sh", "-c", script)
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: cg.FD()}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return cmd
}

// TestCgroupHoldsWhatItsProcessesStart: a child cloned into the cgroup is in it, so is what it
// forks; Kill ends them all, even one that ignores SIGHUP and SIGTERM, and the cgroup can then be
// removed.
func TestCgroupHoldsWhatItsProcessesStart(t *testing.T) {
	cg := newOrSkip(t)
	cmd := startIn(t, cg, `trap '' HUP TERM; sleep 4043 & wait`)
	if !cg.Holds(cmd.Process.Pid) {
		t.Errorf("the child %d is not in %s", cmd.Process.Pid, cg)
	}
	deadline := time.Now().Add(watchdog)
	for {
		pids, err := cg.Procs()
		if err != nil {
			t.Fatal(err)
		}
		if len(pids) == 2 && slices.Contains(pids, cmd.Process.Pid) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the cgroup holds %v, want the child %d and its job", pids, cmd.Process.Pid)
		}
		time.Sleep(10 * time.Millisecond) // polling a condition with a deadline
	}
	if populated, err := cg.Populated(); err != nil || !populated {
		t.Fatalf("Populated = %v, %v; want true", populated, err)
	}
	cg.Signal(unix.SIGTERM)
	if cg.WaitEmpty(time.Now().Add(200 * time.Millisecond)) {
		t.Fatal("the cgroup emptied on SIGTERM, which its processes ignore")
	}
	if err := cg.Kill(); err != nil {
		t.Fatal(err)
	}
	if !cg.WaitEmpty(time.Now().Add(watchdog)) {
		t.Fatal("the cgroup is not empty after Kill")
	}
	_ = cmd.Wait()
	if err := cg.Remove(); err != nil {
		t.Fatal(err)
	}
	if err := cg.Remove(); err != nil {
		t.Errorf("a second Remove: %v", err)
	}
}

// TestSignalOnlyMembers: Signal reaches the cgroup's processes and nothing else.
func TestSignalOnlyMembers(t *testing.T) {
	cg := newOrSkip(t)
	outside := exec.Command("sleep", "4044")
	if err := outside.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = outside.Process.Kill()
		_ = outside.Wait()
	}()
	inside := startIn(t, cg, "exec sleep 4045")
	cg.Signal(unix.SIGHUP)
	if err := inside.Wait(); err == nil {
		t.Errorf("the process in the cgroup survived SIGHUP")
	}
	if cg.Holds(outside.Process.Pid) {
		t.Errorf("%s holds a process started outside it", cg)
	}
	if err := outside.Process.Signal(syscall.Signal(0)); err != nil {
		t.Errorf("the process outside the cgroup was signalled: %v", err)
	}
}

func TestUnescape(t *testing.T) {
	for in, want := range map[string]string{`/a\040b`: "/a b", `/plain`: "/plain", `/x\`: `/x\`, `\134`: `\`} {
		if got := unescape(in); got != want {
			t.Errorf("unescape(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestNewRemovesStale: New removes the empty cgroups of a maker that is gone (an rlogind killed
// with SIGKILL), and leaves a live maker's alone.
func TestNewRemovesStale(t *testing.T) {
	cg := newOrSkip(t)
	parent := filepath.Dir(cg.dir)
	gone := exec.Command("true")
	if err := gone.Run(); err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(parent, namePrefix+strconv.Itoa(gone.Process.Pid)+"-test")
	live := filepath.Join(parent, namePrefix+strconv.Itoa(os.Getpid())+"-test")
	for _, dir := range []string{stale, live} {
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = unix.Rmdir(dir) })
	}
	again, err := New()
	if err != nil {
		t.Fatal(err)
	}
	if err := again.Remove(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the stale cgroup %s is still there (%v)", stale, err)
	}
	if _, err := os.Stat(live); err != nil {
		t.Errorf("the live maker's cgroup %s was removed: %v", live, err)
	}
}
