package e2e

import (
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"
)

// A hang-up of rlogin's terminal (the window closed by mistake: issue 15) is a lost connection,
// not the end of input: the session stays detached with its shell, for rlogin -R.

// hangable is a copyOut for startTerminalWith whose pty the test can hang up: the copier reads
// the master through a duplicate in Go's poller, so that closing the duplicate ends its Read at
// once; a Read blocked in read(2) would keep the master open, and the terminal would not hang up.
type hangable struct {
	dup chan *os.File // the duplicate, once the copier has it (nil if it could not make one)
}

func newHangable() *hangable { return &hangable{dup: make(chan *os.File, 1)} }

func (h *hangable) copy(w io.Writer, r io.Reader) {
	master := r.(*os.File)
	fd, err := unix.FcntlInt(master.Fd(), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		h.dup <- nil
		copyOutput(w, r)
		return
	}
	_ = unix.SetNonblock(fd, true) // os.NewFile then reads it through the poller
	dup := os.NewFile(uintptr(fd), master.Name())
	h.dup <- dup
	_, _ = io.Copy(w, dup)
}

// hangUp closes every descriptor of tm's master, as a terminal emulator does when its window
// closes: the kernel hangs the terminal up (reads fail with EIO, SIGHUP to rlogin).
func (h *hangable) hangUp(t *testing.T, tm *terminal) {
	t.Helper()
	dup := <-h.dup
	if dup == nil {
		t.Fatal("no pollable duplicate of the pty's master")
	}
	_ = dup.Close()
	if err := tm.master.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestHangupKeepsSession: rlogin on a real pty, the shell's pid noted, the pty hung up: rlogin
// exits 255, rlogind detaches the session, rlogin -R lists it as detached with the same shell,
// which is still running, and a reattach finds it. The same with SIGHUP ignored (nohup), when
// only rlogin's read of the terminal tells it.
func TestHangupKeepsSession(t *testing.T) {
	rlogin := filepath.Join(binDir, "rlogin")
	for _, tc := range []struct {
		name   string
		prefix []string
	}{
		{"SIGHUP", []string{rlogin}},
		{"SIGHUP ignored", []string{"/bin/sh", "-c", `trap "" HUP; exec "$0" "$@"`, rlogin}},
	} {
		t.Run(tc.name, func(t *testing.T) { hangupKeepsSession(t, tc.prefix) })
	}
}

// hangupKeepsSession is TestHangupKeepsSession with rlogin started by the command prefix.
func hangupKeepsSession(t *testing.T, prefix []string) {
	s := userResumeServer(t)
	h := newHangable()
	args := append(append([]string{}, s.args...), "-p", s.d.port, "127.0.0.1")
	tm := startTerminalWith(t, pty.Winsize{Rows: 24, Cols: 80}, h.copy, clientEnv(s.d.home), prefix[0], append(prefix[1:len(prefix):len(prefix)], args...)...)
	tm.ready()
	tm.send("echo BEFORE PID=$$.\r")
	pid := tm.expect(`BEFORE PID=(\d+)\.`)[1]

	h.hangUp(t, tm)
	if code := tm.wait(); code != 255 {
		t.Errorf("rlogin exited %d after the hang-up, want 255", code)
	}
	s.logLine(t, `msg="session detached"`, 0)

	// rlogin -R without a terminal lists the sessions: this one detached, its shell the same.
	ctx, cancel := context.WithTimeout(context.Background(), shortTimeout)
	defer cancel()
	list := exec.CommandContext(ctx, filepath.Join(binDir, "rlogin"), append([]string{"-R"}, args...)...)
	list.Env = withRaceOptions(clientEnv(s.d.home))
	out, err := list.Output()
	if err != nil {
		t.Fatalf("rlogin -R: %v\n%s", err, out)
	}
	row := regexp.MustCompile(`(?m)^[0-9a-f]{8}  detached .* (\d+)  +\S+$`).FindSubmatch(out)
	if row == nil || string(row[1]) != pid {
		t.Fatalf("rlogin -R does not list the session detached with shell %s:\n%s", pid, out)
	}
	if !alive(pid) {
		t.Fatalf("the shell %s is gone after the hang-up", pid)
	}

	reattachSameShell(t, s, pid)
}

// reattachSameShell takes the detached session back with rlogin -R, checks that its shell is
// pid, and logs out.
func reattachSameShell(t *testing.T, s *resumeServer, pid string) {
	t.Helper()
	tm2 := s.rloginDirect(t, "-R")
	tm2.expect(`rlogin: reattaching session [0-9a-f]{8} on 127\.0\.0\.1 \(detached `)
	tm2.send("echo AFTER PID=$$.\r")
	if again := tm2.expect(`AFTER PID=(\d+)\.`)[1]; again != pid {
		t.Errorf("reattached to shell %s, not %s", again, pid)
	}
	tm2.send("exit\r")
	if code := tm2.wait(); code != 0 {
		t.Errorf("rlogin exited %d after exit, want 0", code)
	}
}
