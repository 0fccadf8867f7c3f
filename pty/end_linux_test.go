package pty_test

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rlogin-go/rlogin/pty"
	"golang.org/x/sys/unix"
)

// endGrace is the grace End gives the session's leftovers in these tests.
const endGrace = 300 * time.Millisecond

// startScript starts sh -c script on a pty, with StartContained or Start, under the
// watchdog: if the test is still running then, the session's processes are killed.
// The cleanup ends the session.
func startScript(t *testing.T, contained bool, script string) (*pty.PTY, *exec.Cmd) {
	t.Helper()
	cmd := exec.Command("/bin/sh", "-c", script)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "LC_ALL=C", "TERM=dumb"}
	start := pty.Start
	if contained {
		start = pty.StartContained
	}
	p, err := start(cmd, size)
	if err != nil {
		t.Fatal(err)
	}
	timer := time.AfterFunc(watchdog, func() {
		t.Errorf("watchdog: %q still running after %v; ending its session", script, watchdog)
		_ = p.Close()
		_ = cmd.Process.Kill()
	})
	t.Cleanup(func() {
		timer.Stop()
		_ = p.Close()
		p.Kill()
		if err := p.End(0); err != nil {
			t.Error(err)
		}
	})
	return p, cmd
}

// readToEOF returns all the output of p, until io.EOF.
func readToEOF(t *testing.T, p *pty.PTY) string {
	t.Helper()
	var sb strings.Builder
	buf := make([]byte, 4096)
	for {
		n, _, err := p.ReadOutput(buf)
		sb.Write(buf[:n])
		if errors.Is(err, io.EOF) {
			return sb.String()
		}
		if err != nil {
			t.Fatalf("ReadOutput: %v", err)
		}
	}
}

// pin returns a pidfd of pid, so that the test can tell whether that very process is gone.
func pin(t *testing.T, pid int) int {
	t.Helper()
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		t.Fatalf("pidfd of %d: %v", pid, err)
	}
	t.Cleanup(func() {
		_ = unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0) // a test that failed: no leftover
		_ = unix.Close(fd)
	})
	return fd
}

// alive reports whether the process behind pidfd fd still runs (a zombie has exited: not alive).
func alive(fd int) bool {
	var info unix.Siginfo
	err := unix.Waitid(unix.P_PIDFD, fd, &info, unix.WEXITED|unix.WNOHANG|unix.WNOWAIT, nil)
	if err == unix.ECHILD { // not our child: ask the process itself
		return unix.PidfdSendSignal(fd, 0, nil, 0) == nil && !zombie(fd)
	}
	return err == nil && info.Signo == 0
}

// zombie reports whether the process behind pidfd fd has exited and waits to be reaped.
func zombie(fd int) bool {
	b, err := os.ReadFile("/proc/self/fdinfo/" + strconv.Itoa(fd))
	if err != nil {
		return false
	}
	m := regexp.MustCompile(`Pid:\s*(-?\d+)`).FindSubmatch(b)
	if m == nil || string(m[1]) == "-1" {
		return true // -1: exited
	}
	stat, err := os.ReadFile("/proc/" + string(m[1]) + "/stat")
	return err != nil || strings.Contains(string(stat), ") Z ")
}

// TestEndKillsHangupProofJob: a job that ignores SIGHUP outlives its shell; End gives it the
// grace time after its SIGHUP, then kills it, with a cgroup or without.
func TestEndKillsHangupProofJob(t *testing.T) {
	for _, contained := range []bool{false, true} {
		t.Run("contained="+strconv.FormatBool(contained), func(t *testing.T) {
			p, _ := startScript(t, contained, `trap '' HUP; sleep 4041 & echo JOB $!.`)
			out := readToEOF(t, p)
			m := regexp.MustCompile(`JOB (\d+)\.`).FindStringSubmatch(out)
			if m == nil {
				t.Fatalf("no job: %q", out)
			}
			job, _ := strconv.Atoi(m[1])
			fd := pin(t, job)
			if _, err := p.Wait(); err != nil {
				t.Fatal(err)
			}
			if !alive(fd) {
				t.Fatalf("the job %d did not outlive its shell: nothing to test", job)
			}
			start := time.Now()
			if err := p.End(endGrace); err != nil {
				t.Fatalf("End: %v", err)
			}
			took := time.Since(start)
			if alive(fd) {
				t.Errorf("the job %d outlived End", job)
			}
			if took < endGrace || took > endGrace+5*time.Second {
				t.Errorf("End took %v, want the grace (%v) and a little more", took, endGrace)
			}
			if cg := pty.CgroupOf(p); cg != nil {
				if _, err := cg.Populated(); !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("the session's cgroup %s is still there after End (%v)", cg, err)
				}
			}
		})
	}
}

// TestEndHangsUpFirst: End sends SIGHUP before SIGKILL, so a job that obeys it ends at once,
// long before the grace. The job is in a group of its own (set -m), so the shell's exit does
// not hang it up already. The job writes its pid to a file once its trap is set: End runs once
// that file is there.
func TestEndHangsUpFirst(t *testing.T) {
	for _, contained := range []bool{false, true} {
		t.Run("contained="+strconv.FormatBool(contained), func(t *testing.T) {
			dir := t.TempDir()
			ready := filepath.Join(dir, "ready")
			p, _ := startScript(t, contained, `set -m; sh -c 'trap "echo hup > `+filepath.Join(dir, "hup")+`; exit 0" HUP; echo $$ > `+ready+`.tmp; mv `+ready+`.tmp `+ready+`; while :; do sleep 1; done' &`)
			job, _ := strconv.Atoi(strings.TrimSpace(string(waitForFile(t, ready))))
			fd := pin(t, job)
			if _, err := p.Wait(); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			if err := p.End(watchdog); err != nil {
				t.Fatalf("End: %v", err)
			}
			if took := time.Since(start); took > watchdog/2 {
				t.Errorf("End took %v: the job got no SIGHUP", took)
			}
			if alive(fd) {
				t.Errorf("the job %d outlived End", job)
			}
			if b, _ := os.ReadFile(filepath.Join(dir, "hup")); string(b) != "hup\n" {
				t.Errorf("the job's SIGHUP trap did not run: %q", b)
			}
		})
	}
}

// waitForFile waits until the file at path exists and returns its contents; a script writes
// it elsewhere and renames it there, so that it appears whole.
func waitForFile(t *testing.T, path string) []byte {
	t.Helper()
	deadline := time.Now().Add(watchdog)
	for {
		b, err := os.ReadFile(path)
		if err == nil {
			return b
		}
		if !errors.Is(err, fs.ErrNotExist) || time.Now().After(deadline) {
			t.Fatalf("waiting for %s: %v", path, err)
		}
		time.Sleep(10 * time.Millisecond) // polling a condition with a deadline
	}
}

// TestEndReachesEscapedJob: with a cgroup, End also ends a job that left the session and the
// terminal (setsid -f, a double fork) and ignores SIGHUP; without one, that is the escape the
// package doc names.
func TestEndReachesEscapedJob(t *testing.T) {
	if _, err := exec.LookPath("setsid"); err != nil {
		t.Skip("no setsid(1)")
	}
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "pid")
	p, _ := startScript(t, true, `setsid -f sh -c 'trap "" HUP; echo $$ > `+pidFile+`.tmp; mv `+pidFile+`.tmp `+pidFile+`; exec sleep 4042' </dev/null >/dev/null 2>&1
while [ ! -e `+pidFile+` ]; do sleep 0.05; done`) // its exit would hang up a job not yet out of its group
	if pty.CgroupOf(p) == nil {
		t.Skip("no cgroup for the session here (not root, or no writable cgroup v2)")
	}
	readToEOF(t, p)
	if _, err := p.Wait(); err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(waitForFile(t, pidFile))))
	fd := pin(t, pid)
	if err := p.End(endGrace); err != nil {
		t.Fatalf("End: %v", err)
	}
	if alive(fd) {
		t.Errorf("the escaped job %d outlived End", pid)
	}
}
