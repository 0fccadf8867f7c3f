//go:build linux

package pty_test

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/sys/unix"

	"github.com/rlogin-go/rlogin/pty"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// watchdog is how long one child may run before the test gives up on it.
const watchdog = 30 * time.Second

var size = pty.Size{Rows: 24, Cols: 80}

// child is a command running on a pty under a watchdog.
type child struct {
	t    *testing.T
	p    *pty.PTY
	a    *pty.Attached // if not nil, the terminal the test reads, writes and waits through (startAttached)
	cmd  *exec.Cmd
	once sync.Once
	stop func()
}

// terminal is what a test reads and writes: a PTY, or an Attached copy of its master.
type terminal interface {
	ReadOutput(b []byte) (n int, flushed bool, err error)
	Write(b []byte) (int, error)
	Close() error
	Hangup()
	Kill()
}

func (c *child) term() terminal {
	if c.a != nil {
		return c.a
	}
	return c.p
}

// startChild starts argv on a pty. If the child outlives the watchdog, the test
// fails and the pty is closed and the child killed, which unblocks any reader.
// The caller must call c.finish (startChild registers it with t.Cleanup too).
func startChild(t *testing.T, sz pty.Size, argv ...string) *child {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "LC_ALL=C", "TERM=dumb"}
	p, err := pty.Start(cmd, sz)
	if err != nil {
		t.Fatalf("Start(%q): %v", argv, err)
	}
	c := &child{t: t, p: p, cmd: cmd}
	fired := make(chan struct{})
	timer := time.AfterFunc(watchdog, func() {
		defer close(fired)
		t.Errorf("watchdog: %q still running after %v; closing the pty and killing its process group", argv, watchdog)
		_ = p.Close()
		// Kill the whole group: a blocked read on the master ends only when every
		// process holding the slave is gone. The test has not reaped the child yet
		// (it is still reading), so the group id is still the child's.
		_ = unix.Kill(-p.Pid(), unix.SIGKILL)
		_ = cmd.Process.Kill()
	})
	c.stop = func() {
		if !timer.Stop() {
			<-fired
		}
	}
	t.Cleanup(c.finish)
	return c
}

// finish stops the watchdog, closes the pty (and its attached copy) and reaps the child,
// killing it if it does not exit after the hangup that closing the master causes.
func (c *child) finish() {
	c.once.Do(func() {
		c.stop()
		if c.a != nil {
			if err := c.a.Close(); err != nil {
				c.t.Errorf("Close of the attached copy: %v", err)
			}
		}
		if err := c.p.Close(); err != nil {
			c.t.Errorf("Close: %v", err)
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			_, _ = c.p.Wait()
		}()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			c.t.Errorf("pid %d did not exit after Close; killing it", c.p.Pid())
			_ = c.cmd.Process.Kill()
			<-done
		}
	})
}

// readAll reads output until ReadOutput fails; the failure must be io.EOF.
func (c *child) readAll() (out string, flushes int) {
	c.t.Helper()
	var sb strings.Builder
	buf := make([]byte, 32<<10)
	for {
		n, flushed, err := c.term().ReadOutput(buf)
		sb.Write(buf[:n])
		if flushed {
			flushes++
		}
		if err == io.EOF {
			return sb.String(), flushes
		}
		if err != nil {
			c.t.Fatalf("ReadOutput after %q: %v", sb.String(), err)
		}
	}
}

// readUntil reads output until it contains want and returns all of it.
func (c *child) readUntil(want string) string {
	c.t.Helper()
	var sb strings.Builder
	buf := make([]byte, 32<<10)
	for !strings.Contains(sb.String(), want) {
		n, _, err := c.term().ReadOutput(buf)
		sb.Write(buf[:n])
		if err != nil {
			c.t.Fatalf("ReadOutput waiting for %q, got %q: %v", want, sb.String(), err)
		}
	}
	return sb.String()
}

func (c *child) write(s string) {
	c.t.Helper()
	if n, err := c.term().Write([]byte(s)); n != len(s) || err != nil {
		c.t.Fatalf("Write(%q) = %d, %v", s, n, err)
	}
}

// wait reaps the child and returns its wait status; for an attached terminal, the status its
// WaitStatus reports, and its Wait must give no state.
func (c *child) wait() syscall.WaitStatus {
	c.t.Helper()
	if c.a != nil {
		ws, err := c.a.WaitStatus()
		if err != nil {
			c.t.Fatalf("WaitStatus: %v", err)
		}
		if st, err := c.a.Wait(); st != nil || err != nil {
			c.t.Errorf("Wait: %v, %v; want a nil state and no error", st, err)
		}
		return ws
	}
	state, err := c.p.Wait()
	if err != nil {
		c.t.Fatalf("Wait: %v", err)
	}
	return state.Sys().(syscall.WaitStatus)
}

func (c *child) wantExit(code int) {
	c.t.Helper()
	if ws := c.wait(); !ws.Exited() || ws.ExitStatus() != code {
		c.t.Errorf("wait status %v, want exit %d", ws, code)
	}
}

func (c *child) wantSignal(sig syscall.Signal) {
	c.t.Helper()
	if ws := c.wait(); !ws.Signaled() || ws.Signal() != sig {
		c.t.Errorf("wait status %v, want death by %v", ws, sig)
	}
}

func TestOutput(t *testing.T) {
	c := startChild(t, size, "echo", "hi")
	if out, _ := c.readAll(); out != "hi\r\n" {
		t.Errorf("output %q, want %q", out, "hi\r\n")
	}
	c.wantExit(0)
	c.finish()
}

func TestInputReachesCat(t *testing.T) {
	c := startChild(t, size, "cat")
	c.write("hello\n")
	// The line discipline echoes the line, then cat copies it.
	c.readUntil("hello\r\nhello\r\n")
	if err := c.p.SendEOF(); err != nil {
		t.Fatal(err)
	}
	c.readAll()
	c.wantExit(0)
}

func TestSendEOF(t *testing.T) {
	t.Run("cat", func(t *testing.T) {
		c := startChild(t, size, "cat")
		if err := c.p.SendEOF(); err != nil {
			t.Fatal(err)
		}
		c.readAll()
		c.wantExit(0)
	})
	t.Run("VEOF changed by the child", func(t *testing.T) {
		// SendEOF must use the terminal's current VEOF, here ^B.
		c := startChild(t, size, "sh", "-c", "stty eof ^B && echo ready && cat && echo cat-done")
		c.readUntil("ready")
		if err := c.p.SendEOF(); err != nil {
			t.Fatal(err)
		}
		if out, _ := c.readAll(); !strings.Contains(out, "cat-done") {
			t.Errorf("output %q lacks cat-done", out)
		}
		c.wantExit(0)
	})
	t.Run("VEOF disabled", func(t *testing.T) {
		c := startChild(t, size, "sh", "-c", "stty eof undef && echo ready && exec sleep 1000")
		c.readUntil("ready")
		if err := c.p.SendEOF(); err == nil {
			t.Error("SendEOF succeeded with VEOF disabled")
		}
	})
}

func TestSize(t *testing.T) {
	c := startChild(t, pty.Size{Rows: 33, Cols: 111, XPixel: 800, YPixel: 600}, "stty", "size")
	if out, _ := c.readAll(); out != "33 111\r\n" {
		t.Errorf("initial size: stty printed %q, want %q", out, "33 111\r\n")
	}
	c.wantExit(0)
}

func TestResize(t *testing.T) {
	c := startChild(t, size, "sh", "-c", "echo ready; read x; stty size")
	c.readUntil("ready")
	if err := c.p.Resize(pty.Size{Rows: 30, Cols: 100}); err != nil {
		t.Fatal(err)
	}
	c.write("\n")
	if out, _ := c.readAll(); !strings.Contains(out, "30 100\r\n") {
		t.Errorf("output %q lacks the new size 30 100", out)
	}
	c.wantExit(0)
}

func TestResizeSendsSIGWINCH(t *testing.T) {
	c := startChild(t, size, "sh", "-c",
		`trap 'stty size; exit 0' WINCH; echo ready; while :; do sleep 0.05; done`)
	c.readUntil("ready")
	if err := c.p.Resize(pty.Size{Rows: 40, Cols: 120}); err != nil {
		t.Fatal(err)
	}
	if out, _ := c.readAll(); !strings.Contains(out, "40 120\r\n") {
		t.Errorf("output %q lacks the size printed by the WINCH trap", out)
	}
	c.wantExit(0)
}

// interruptYes starts yes under a shell on a pty, waits until yes is writing and types ^C.
// The shell survives the ^C (its trap is a handler, so yes still gets the default SIGINT),
// prints "after-" and yes's exit status (130: death by SIGINT), then reads a line, prints
// "got-" and that line, and exits 0.
//
// Why a shell that stays until told to go: the kernel signals the foreground group before it
// flushes (isig), so if the session died of the ^C, its exit could race the flush, and after
// an exit ReadOutput and ReadPacket stop at the first read that finds nothing, before the
// flush is reported (seen once in 150 runs on a loaded machine). The shell's writes wait for
// the flush to end (the line discipline's termios lock, which isig holds for writing), so
// the flush is reported before "after-".
func interruptYes(t *testing.T) *child {
	t.Helper()
	c := startChild(t, size, "sh", "-c", `trap 'echo INT-TRAPPED' INT; yes; echo "after-$?"; read line; echo "got-$line"`)
	c.readUntil("y\r\ny\r\n") // yes is running; the pty's output buffer fills up
	c.write("\x03")           // ^C: SIGINT to the foreground group, pending output discarded
	return c
}

func TestInterruptFlushesOutput(t *testing.T) {
	c := interruptYes(t)
	var sb strings.Builder
	flushes := 0
	buf := make([]byte, 32<<10)
	for !strings.Contains(sb.String(), "after-130") {
		n, flushed, err := c.p.ReadOutput(buf)
		sb.Write(buf[:n])
		if flushed {
			flushes++
		}
		if err != nil {
			t.Fatalf("ReadOutput waiting for after-130: %v", err)
		}
	}
	c.write("bye\n")
	out, more := c.readAll()
	if flushes+more == 0 {
		t.Error("no ReadOutput reported flushed=true after ^C")
	}
	if !strings.Contains(out, "got-bye") {
		t.Errorf("the shell did not go on after ^C: %q", out)
	}
	c.wantExit(0)
}

// readPacketsUntil reads with ReadPacket until the output contains want, and returns the
// output and every status reported on the way, in order.
func (c *child) readPacketsUntil(want string) (string, []pty.Status) {
	c.t.Helper()
	var sb strings.Builder
	var st []pty.Status
	buf := make([]byte, 32<<10)
	for !strings.Contains(sb.String(), want) {
		n, s, err := c.p.ReadPacket(buf)
		if n > 0 && s != 0 {
			c.t.Fatalf("ReadPacket returned %d bytes and status %#x together", n, s)
		}
		sb.Write(buf[:n])
		if s != 0 {
			st = append(st, s)
		}
		if err != nil {
			c.t.Fatalf("ReadPacket waiting for %q, got %q: %v", want, sb.String(), err)
		}
	}
	return sb.String(), st
}

func TestReadPacketFlowControl(t *testing.T) {
	// Turning IXON off and on again makes the pty report NOSTOP then DOSTOP, which a classic
	// rlogind forwards so that the client switches its local ^S/^Q handling. The shell waits
	// for the test between the two: a status not read yet is replaced by the next one.
	c := startChild(t, size, "sh", "-c", "stty -ixon; echo off; read x; stty ixon; echo on; read x")
	out, st := c.readPacketsUntil("off\r\n")
	c.write("\n")
	out2, st2 := c.readPacketsUntil("on\r\n")
	out, st = out+out2, append(st, st2...)
	var saw []pty.Status
	for _, s := range st {
		if s&(pty.StatusNoStop|pty.StatusDoStop) != 0 {
			saw = append(saw, s&(pty.StatusNoStop|pty.StatusDoStop))
		}
	}
	want := []pty.Status{pty.StatusNoStop, pty.StatusDoStop}
	if fmt.Sprint(saw) != fmt.Sprint(want) {
		t.Errorf("flow-control statuses %v (all: %v), want %v; output %q", saw, st, want, out)
	}
	c.write("\n")
	c.readAll()
	c.wantExit(0)
}

func TestReadPacketFlush(t *testing.T) {
	c := interruptYes(t)
	_, st := c.readPacketsUntil("after-130")
	c.write("bye\n")
	out, st2 := c.readPacketsUntil("got-bye")
	st = append(st, st2...)
	buf := make([]byte, 32<<10)
	for { // ReadPacket's end of file, once the shell has exited
		n, s, err := c.p.ReadPacket(buf)
		if n > 0 && s != 0 {
			t.Fatalf("ReadPacket returned %d bytes and status %#x together", n, s)
		}
		if s != 0 {
			st = append(st, s)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	flushed := false
	for _, s := range st {
		flushed = flushed || s&pty.StatusFlushWrite != 0
	}
	if !flushed {
		t.Errorf("no StatusFlushWrite after ^C (statuses %v); output %q", st, out)
	}
	c.wantExit(0)
}

func TestHangup(t *testing.T) {
	eachTerminal(t, func(t *testing.T, start starter) {
		c := start(t, size, "sleep", "1000")
		c.term().Hangup()
		c.term().Hangup() // no second signal, no panic
		c.readAll()
		c.wantSignal(syscall.SIGHUP)
		c.term().Hangup() // after the reap: nothing is sent
	})
}

// jobInOwnGroup reads the line "job=PID" that the child prints and returns PID, which must
// be in a process group of its own.
func (c *child) jobInOwnGroup() int {
	c.t.Helper()
	out := c.readUntil("\n")
	var job int
	if _, err := fmt.Sscanf(out[strings.Index(out, "job="):], "job=%d", &job); err != nil {
		c.t.Fatalf("no job pid in %q: %v", out, err)
	}
	if pgid, err := unix.Getpgid(job); err != nil || pgid == c.p.Pid() {
		c.t.Fatalf("job %d is in process group %d (%v); the test needs it in its own group", job, pgid, err)
	}
	return job
}

// TestHangupReachesJobs checks that a hangup reaches the shell's jobs in other process groups
// even when the shell does not pass it on (dash, unlike bash, does not).
func TestHangupReachesJobs(t *testing.T) {
	c := startChild(t, size, "sh", "-c", `set -m; sleep 1000 & echo "job=$!"; wait`)
	job := c.jobInOwnGroup()
	c.p.Hangup()
	c.readAll()
	c.wantSignal(syscall.SIGHUP)
	waitGone(t, job)
}

// TestHangupReachesLateJob: a shell that catches SIGHUP may start a job after the hangup has
// swept the session (bash, which passes the hangup on to the jobs it knows, did so on a loaded
// machine); once the shell has exited, Wait hangs up that job too. The shell here starts it
// only when told, after Hangup has returned, and exits once the job runs sleep: a job still
// between fork and exec may take the SIGHUP in the shell's handler, which it still has, and
// then run sleep unaware (the sweep in Wait comes after the shell's exit, but a job forked
// just before it can still be there).
func TestHangupReachesLateJob(t *testing.T) {
	dir := t.TempDir()
	fifo, late := filepath.Join(dir, "go"), filepath.Join(dir, "late")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	c := startChild(t, size, "sh", "-c", fmt.Sprintf(
		`set -m; trap 'read x < %s; sleep 1000 & until grep -q sleep /proc/$!/comm; do :; done; cut -d" " -f1,5 /proc/$!/stat > %s; exit 0' HUP; echo ready; sleep 1000 & wait`,
		fifo, late))
	c.readUntil("ready")
	c.p.Hangup()
	tellFIFO(t, fifo, "go\n")
	c.readAll()
	c.wantExit(0) // the trap's exit: the shell handled the hangup
	var job, pgid int
	if b, err := os.ReadFile(late); err != nil {
		t.Fatal(err)
	} else if _, err := fmt.Sscanf(string(b), "%d %d", &job, &pgid); err != nil {
		t.Fatalf("late job's pid and group %q: %v", b, err)
	}
	if pgid == c.p.Pid() {
		t.Fatalf("late job %d is in the shell's process group; the test needs it in its own", job)
	}
	waitGone(t, job)
}

// TestHangupReachesJobThatExecs: a job that took the hangup's SIGHUP in a handler and then
// runs another program (as a job that bash has forked but not yet exec'd does) is hung up once
// more when the shell has exited: the program never saw the signal.
func TestHangupReachesJobThatExecs(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "go")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	c := startChild(t, size, "sh", "-c", fmt.Sprintf(
		`set -m; sh -c 'trap "read x < %s; exec sleep 1000" HUP; echo "job=$$"; sleep 1000 & wait' & wait`, fifo))
	job := c.jobInOwnGroup() // printed once the job's trap is set
	c.p.Hangup()             // the job's handler takes the SIGHUP and waits for the FIFO
	tellFIFO(t, fifo, "go\n")
	deadline := time.Now().Add(watchdog)
	for {
		comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", job))
		if err == nil && string(comm) == "sleep\n" {
			break // the job runs sleep now, which has not seen a SIGHUP
		}
		if err != nil || time.Now().After(deadline) {
			t.Fatalf("job %d does not run sleep: %q, %v", job, comm, err)
		}
		time.Sleep(time.Millisecond) // polling a condition with a deadline
	}
	c.readAll()
	c.wantSignal(syscall.SIGHUP)
	waitGone(t, job)
}

// tellFIFO writes s to the FIFO path once a reader has opened it, within the watchdog.
func tellFIFO(t *testing.T, path, s string) {
	t.Helper()
	deadline := time.Now().Add(watchdog)
	for {
		fd, err := unix.Open(path, unix.O_WRONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
		if err == nil {
			_, err = unix.Write(fd, []byte(s))
			_ = unix.Close(fd)
			if err != nil {
				t.Fatal(err)
			}
			return
		}
		if err != unix.ENXIO || time.Now().After(deadline) { // ENXIO: no reader yet
			t.Fatalf("writing to %s: %v", path, err)
		}
		time.Sleep(time.Millisecond) // polling a condition with a deadline
	}
}

// waitGone waits until process pid has exited (gone, or a zombie waiting for init), or kills
// it and fails the test.
func waitGone(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(watchdog)
	for {
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil || strings.Contains(string(stat), ") Z ") {
			return
		}
		if time.Now().After(deadline) {
			_ = unix.Kill(pid, unix.SIGKILL)
			t.Fatalf("process %d survived the hangup: %s", pid, stat)
		}
		time.Sleep(10 * time.Millisecond) // polling a condition with a deadline
	}
}

// TestKill checks that Kill ends a child that ignores the hangup, and does nothing once the child
// is reaped.
func TestKill(t *testing.T) {
	eachTerminal(t, func(t *testing.T, start starter) {
		c := start(t, size, "sh", "-c", "trap '' HUP; echo READY; exec sleep 1000")
		c.readUntil("READY")
		c.term().Hangup() // ignored
		c.term().Kill()
		c.readAll()
		c.wantSignal(syscall.SIGKILL)
		c.term().Kill() // after the reap: nothing is sent
	})
}

// TestCloseUnblocksReadOutput: Close ends a pending ReadOutput, and later reads and writes fail.
// A PTY's Close hangs up the line; an Attached copy's leaves the line to the PTY, which still
// holds the master, until the PTY hangs it up.
func TestCloseUnblocksReadOutput(t *testing.T) {
	eachTerminal(t, func(t *testing.T, start starter) {
		c := start(t, size, "sleep", "1000")
		errc := make(chan error, 1)
		go func() {
			_, _, err := c.term().ReadOutput(make([]byte, 32<<10))
			errc <- err
		}()
		if err := c.term().Close(); err != nil {
			t.Fatal(err)
		}
		if err := <-errc; !errors.Is(err, os.ErrClosed) {
			t.Errorf("ReadOutput after Close: %v, want an error matching os.ErrClosed", err)
		}
		if _, err := c.term().Write([]byte("x")); !errors.Is(err, os.ErrClosed) {
			t.Errorf("Write after Close: %v, want an error matching os.ErrClosed", err)
		}
		if err := c.term().Close(); err != nil {
			t.Errorf("second Close: %v", err)
		}
		if c.a != nil {
			// The line is not hung up: the PTY's master still gets the echo of its input.
			if _, err := c.p.Write([]byte("y")); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 512)
			if n, _, err := c.p.ReadOutput(buf); string(buf[:n]) != "y" || err != nil {
				t.Fatalf("the PTY's ReadOutput after the copy's Close: %q, %v; want the echo %q", buf[:n], err, "y")
			}
			c.p.Hangup()
		}
		// Closing the (last) master hangs up the slave; the session leader gets SIGHUP.
		c.wantSignal(syscall.SIGHUP)
	})
}

// TestLastOutputNeverLost: all the output written before the exit comes before io.EOF, on a PTY
// and on an Attached copy of its master (whose command another process waits for).
func TestLastOutputNeverLost(t *testing.T) {
	const runs = 200
	eachTerminal(t, func(t *testing.T, start starter) {
		for _, tc := range []struct {
			name, script string
		}{
			{"shell alone", "printf last"},
			// A background process survives the shell and keeps the slave open:
			// ReadOutput must still deliver everything and then io.EOF.
			{"background process holds the terminal", `trap "" HUP; sleep 60 & printf last`},
		} {
			t.Run(tc.name, func(t *testing.T) {
				for i := range runs {
					c := start(t, size, "sh", "-c", tc.script)
					out, _ := c.readAll()
					c.wantExit(0)
					// The group outlives its leader while the background sleep runs (it dies by itself
					// within a minute if the test is interrupted), so its id is not reused.
					_ = unix.Kill(-c.p.Pid(), unix.SIGKILL)
					c.finish()
					if out != "last" {
						t.Fatalf("run %d: output %q, want %q", i, out, "last")
					}
					if t.Failed() {
						t.FailNow() // the watchdog fired: don't wait for it 200 times
					}
				}
			})
		}
	})
}

func TestBulkOutput(t *testing.T) {
	const total = 300000
	for _, tc := range []struct {
		name, script string
	}{
		{"shell alone", fmt.Sprintf(`head -c %d /dev/zero | tr '\0' x`, total)},
		{"background process holds the terminal",
			fmt.Sprintf(`trap "" HUP; sleep 60 & head -c %d /dev/zero | tr '\0' x`, total)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for i := range 10 {
				c := startChild(t, size, "sh", "-c", tc.script)
				buf := make([]byte, 32<<10)
				got, reads, biggest := 0, 0, 0
				for {
					n, _, err := c.p.ReadOutput(buf)
					if strings.Trim(string(buf[:n]), "x") != "" {
						t.Fatalf("run %d: unexpected output %q", i, buf[:n])
					}
					got += n
					reads++
					biggest = max(biggest, n)
					if err == io.EOF {
						break
					}
					if err != nil {
						t.Fatal(err)
					}
				}
				c.wantExit(0)
				_ = unix.Kill(-c.p.Pid(), unix.SIGKILL)
				c.finish()
				if got != total {
					t.Fatalf("run %d: got %d bytes, want %d", i, got, total)
				}
				if biggest < 1024 {
					t.Errorf("run %d: %d reads, largest %d bytes: output is not read in big chunks", i, reads, biggest)
				}
				if t.Failed() {
					t.FailNow()
				}
			}
		})
	}
}

func TestSmallBuffer(t *testing.T) {
	c := startChild(t, size, "printf", "abc")
	var out []byte
	b := make([]byte, 1)
	for {
		n, _, err := c.p.ReadOutput(b)
		out = append(out, b[:n]...)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if string(out) != "abc" {
		t.Errorf("output %q, want %q", out, "abc")
	}
	if n, _, err := c.p.ReadOutput(nil); n != 0 || err != nil {
		t.Errorf("ReadOutput(nil) = %d, %v", n, err)
	}
	c.wantExit(0)
}

func TestWaitConcurrent(t *testing.T) {
	c := startChild(t, size, "sh", "-c", "exit 7")
	var wg sync.WaitGroup
	states := make([]*os.ProcessState, 4)
	for i := range states {
		wg.Go(func() {
			s, err := c.p.Wait()
			if err != nil {
				t.Error(err)
			}
			states[i] = s
		})
	}
	wg.Wait()
	for _, s := range states {
		if s != states[0] || s.ExitCode() != 7 {
			t.Fatalf("states %v: want one state with exit code 7", states)
		}
	}
	if s, err := c.p.Wait(); s != states[0] || err != nil {
		t.Errorf("Wait again = %v, %v", s, err)
	}
}

func TestSessionAndControllingTerminal(t *testing.T) {
	// ps is not needed: /proc/self/stat has pid, pgrp, session and tty_nr,
	// and the child's descriptors must all be the slave (no master leaked in).
	c := startChild(t, size, "sh", "-c",
		`read pid comm state ppid pgrp sid tty rest </proc/self/stat; echo "pid=$pid pgrp=$pgrp sid=$sid tty=$tty"; ls -l /proc/$$/fd/`)
	out, _ := c.readAll()
	c.wantExit(0)
	pid := c.p.Pid()
	// $$ is the shell (the child); /proc/self/stat is read by the shell itself (read is a builtin).
	want := fmt.Sprintf("pid=%d pgrp=%d sid=%d ", pid, pid, pid)
	if !strings.Contains(out, want) {
		t.Errorf("output %q lacks %q", out, want)
	}
	if strings.Contains(out, "tty=0 ") {
		t.Errorf("child has no controlling terminal: %q", out)
	}
	if strings.Contains(out, "ptmx") {
		t.Errorf("the child inherited the pty master:\n%s", out)
	}
	for _, fd := range []string{" 0 -> /dev/pts/", " 1 -> /dev/pts/", " 2 -> /dev/pts/"} {
		if !strings.Contains(out, fd) {
			t.Errorf("child fd listing lacks %q:\n%s", fd, out)
		}
	}
}

func TestStartErrors(t *testing.T) {
	before := openFDs(t)
	_, err := pty.Start(exec.Command(filepath.Join(t.TempDir(), "no-such-program")), size)
	if err == nil {
		t.Error("Start of a missing program succeeded")
	}
	cmd := exec.Command("true")
	cmd.Stdout = io.Discard
	if _, err := pty.Start(cmd, size); err == nil {
		t.Error("Start with cmd.Stdout set succeeded")
	}
	if after := openFDs(t); len(after) != len(before) {
		t.Errorf("descriptors leaked by failed starts: before %v, after %v", before, after)
	}
}

func TestNoDescriptorLeakNoZombie(t *testing.T) {
	run := func() int {
		c := startChild(t, size, "sh", "-c", "echo x; sleep 0.01 & wait")
		c.readAll()
		c.wantExit(0)
		c.finish()
		return c.p.Pid()
	}
	run() // the runtime opens some descriptors (epoll) on first use
	before := openFDs(t)
	var pids []int
	for range 5 {
		pids = append(pids, run())
	}
	if after := openFDs(t); len(after) != len(before) {
		t.Errorf("descriptors leaked: before %v, after %v", before, after)
	}
	for _, pid := range pids {
		var info unix.Siginfo
		err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOHANG|unix.WNOWAIT, nil)
		if err != unix.ECHILD {
			t.Errorf("pid %d is still a child of the test (waitid: %v)", pid, err)
		}
		if stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil {
			if fields := strings.Fields(string(stat)); len(fields) > 3 && fields[3] == fmt.Sprint(os.Getpid()) {
				t.Errorf("pid %d still exists as our child: %s", pid, stat)
			}
		}
	}
}

// openFDs lists this process's open descriptors with what they point to.
func openFDs(t *testing.T) []string {
	t.Helper()
	return openFDsOf(t, "self")
}

// openFDsOf lists the open descriptors of process proc ("self" or a pid) as "fd->target".
func openFDsOf(t *testing.T, proc string) []string {
	t.Helper()
	dir := filepath.Join("/proc", proc, "fd")
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var fds []string
	for _, e := range entries {
		target, _ := os.Readlink(filepath.Join(dir, e.Name()))
		fds = append(fds, e.Name()+"->"+target)
	}
	return fds
}

// TestFlushesOutput: the prediction follows the terminal's current settings, as the child left
// them: ^C, ^\ and ^Z flush with ISIG on and NOFLSH off; nothing does with signals off or NOFLSH
// on; a remapped interrupt character counts, ^C then does not. AppendFlushKeys names the same
// characters, without disabled ones and repeats, after what its slice held, and allocates
// nothing when the slice has room (a session server calls it per frame of output).
func TestFlushesOutput(t *testing.T) {
	for _, tc := range []struct {
		name  string
		stty  string // "" leaves the defaults
		flush []string
		keep  []string
		keys  string // FlushKeys
	}{
		{"defaults", "", []string{"\x03", "\x1c", "\x1a", "ls\x03"}, []string{"abc\r", "\x04", ""}, "\x03\x1c\x1a"},
		{"signals off", "-isig", nil, []string{"\x03", "\x1c", "\x1a"}, ""},
		{"noflsh", "noflsh", nil, []string{"\x03"}, ""},
		{"intr remapped", "intr ^B", []string{"\x02"}, []string{"\x03"}, "\x02\x1c\x1a"},
		{"intr undefined", "intr undef", []string{"\x1c"}, []string{"\x03"}, "\x1c\x1a"},
		{"repeated", "quit ^C susp ^C", []string{"\x03"}, []string{"\x1c", "\x1a"}, "\x03"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			script := "echo ready && exec sleep 1000"
			if tc.stty != "" {
				script = "stty " + tc.stty + " && " + script
			}
			c := startChild(t, size, "sh", "-c", script)
			c.readUntil("ready")
			for _, in := range tc.flush {
				if !c.p.FlushesOutput([]byte(in)) {
					t.Errorf("FlushesOutput(%q) = false, want true", in)
				}
			}
			for _, in := range tc.keep {
				if c.p.FlushesOutput([]byte(in)) {
					t.Errorf("FlushesOutput(%q) = true, want false", in)
				}
			}
			buf := append(make([]byte, 0, 4), 'x')
			if got := c.p.AppendFlushKeys(buf); string(got) != "x"+tc.keys {
				t.Errorf("AppendFlushKeys(%q) = %q, want %q", buf, got, "x"+tc.keys)
			}
			if n := testing.AllocsPerRun(10, func() { _ = appendFlushKeys(c.p, buf[:1]) }); n != 0 {
				t.Errorf("AppendFlushKeys through an interface: %v allocations, want 0", n)
			}
		})
	}
}

// appendFlushKeys calls AppendFlushKeys through an interface, as a session server does; not
// inlined, so that the compiler cannot see the concrete type (and keep a result on the stack).
//
//go:noinline
func appendFlushKeys(fk interface{ AppendFlushKeys([]byte) []byte }, keys []byte) []byte {
	return fk.AppendFlushKeys(keys)
}

// TestOutputMark: the output before a mark taken right before ^C is older than the ^C: after the
// flush's report, reads still return what the master's line discipline held at the mark (the
// flush does not empty it), all of it the flood's, and the echoed ^C and the trap's output come
// after the mark.
func TestOutputMark(t *testing.T) {
	c := startChild(t, size, "sh", "-c", `trap 'echo; echo AFTER-INT; exit 0' INT; yes`)
	read := int64(len(c.readUntil("y\r\ny\r\n")))
	// The flood fills the buffers while nothing reads: the line discipline's (4 KiB) too.
	var mark int64
	deadline := time.Now().Add(watchdog)
	for {
		r, held, err := c.p.OutputMark()
		mark = r + held
		if err != nil {
			t.Fatal(err)
		}
		if mark-read >= 2<<10 || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Millisecond) // the flood runs meanwhile
	}
	if mark-read < 2<<10 {
		t.Fatalf("the line discipline holds %d bytes of the flood, want 2 KiB or more", mark-read)
	}
	c.write("\x03")
	var sb strings.Builder
	afterFlush := -1 // output bytes read when the flush was reported
	buf := make([]byte, 32<<10)
	for !strings.Contains(sb.String(), "AFTER-INT") {
		n, flushed, err := c.p.ReadOutput(buf)
		if flushed && afterFlush < 0 {
			afterFlush = sb.Len()
		}
		sb.Write(buf[:n])
		if err != nil {
			t.Fatalf("ReadOutput waiting for AFTER-INT: %v", err)
		}
	}
	out := sb.String()
	stale := int(mark - read) // the output before the mark, in out
	t.Logf("%d bytes held at the mark, %d of them read after the flush's report", stale, stale-min(stale, max(afterFlush, 0)))
	if afterFlush < 0 {
		t.Error("no flush reported after ^C")
	}
	if strings.Trim(out[:stale], "y\r\n") != "" {
		t.Errorf("the output before the mark is not all the flood's: %q", out[:stale])
	}
	if !strings.Contains(out[stale:], "^C") || !strings.Contains(out[stale:], "AFTER-INT") {
		t.Errorf("the output after the mark lacks the echoed ^C or the trap's output: %q", out[stale:])
	}
	c.wantExit(0)
}
