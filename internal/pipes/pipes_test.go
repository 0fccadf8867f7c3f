package pipes

import (
	"errors"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// readAll reads one stream of c to its end, with the watchdog of the test's deadline.
func readAll(t *testing.T, read func([]byte) (int, error)) string {
	t.Helper()
	var out []byte
	buf := make([]byte, 4096)
	for {
		n, err := read(buf)
		out = append(out, buf[:n]...)
		if errors.Is(err, io.EOF) {
			return string(out)
		}
		if err != nil {
			t.Fatalf("read: %v", err)
		}
	}
}

func start(t *testing.T, line string) *Command {
	t.Helper()
	c, err := Start(exec.Command("/bin/sh", "-c", line))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Hangup()
		_, _ = c.Wait()
		_ = c.Close()
		_ = c.End(0)
	})
	return c
}

func stdout(c *Command) func([]byte) (int, error) {
	return func(b []byte) (int, error) { n, _, err := c.ReadOutput(b); return n, err }
}

// TestStreams: input in, output and error output apart, the exit status, and no terminal.
func TestStreams(t *testing.T) {
	c := start(t, `read line; echo "out $line"; echo err >&2; tty; exit 4`)
	if _, err := c.Write([]byte("hello\n")); err != nil {
		t.Fatal(err)
	}
	if err := c.SendEOF(); err != nil {
		t.Fatal(err)
	}
	errOut := make(chan string, 1)
	go func() { errOut <- readAll(t, c.ReadErrorOutput) }()
	out := readAll(t, stdout(c))
	if out != "out hello\nnot a tty\n" {
		t.Errorf("output %q", out)
	}
	if e := <-errOut; e != "err\n" {
		t.Errorf("error output %q", e)
	}
	st, err := c.Wait()
	if err != nil || st.ExitCode() != 4 {
		t.Errorf("Wait: %v, %v; want status 4", st, err)
	}
}

// TestSession: the command leads a session of its own, with no controlling terminal.
func TestSession(t *testing.T) {
	c := start(t, `ps -o sid= -o tty= -p $$`)
	out := strings.Fields(readAll(t, stdout(c)))
	if len(out) != 2 || out[0] != strconv.Itoa(c.Pid()) || out[1] != "?" {
		t.Errorf("ps says %q; want session %d and no terminal", out, c.Pid())
	}
}

// TestDrainTimeout: a background job that holds the output open does not hold the reads once
// the command has exited, for longer than DrainTimeout.
func TestDrainTimeout(t *testing.T) {
	c := start(t, `sleep 60 & exit 0`)
	if _, err := c.Wait(); err != nil {
		t.Fatal(err)
	}
	begin := time.Now()
	readAll(t, stdout(c))
	readAll(t, c.ReadErrorOutput)
	if d := time.Since(begin); d > 3*DrainTimeout {
		t.Errorf("the output ended %v after the exit", d)
	}
}

// TestSignal: a signal reaches the command's whole process group.
func TestSignal(t *testing.T) {
	c := start(t, `sleep 60 | sleep 60; echo survived`)
	waitGroupSize(t, c.Pid(), 3)
	if err := c.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	st, err := c.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if ws := st.Sys().(syscall.WaitStatus); !ws.Signaled() || ws.Signal() != syscall.SIGTERM {
		t.Errorf("the command ended with %v, want SIGTERM", st)
	}
	if err := c.Signal(syscall.SIGTERM); err != nil {
		t.Errorf("Signal after the reap: %v, want nothing done", err)
	}
}

// TestEnd: End kills the jobs the command left behind, also one that ignores SIGHUP.
func TestEnd(t *testing.T) {
	c := start(t, `trap '' HUP; sleep 60 </dev/null >/dev/null 2>&1 & echo $!`)
	pid, err := strconv.Atoi(strings.TrimSpace(readAll(t, stdout(c))))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Wait(); err != nil {
		t.Fatal(err)
	}
	if err := c.End(100 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if sessionOf(pid) == c.Pid() {
		t.Errorf("job %d is still running after End", pid)
	}
}

// waitGroupSize waits until process group pgid has n live processes.
func waitGroupSize(t *testing.T, pgid, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ents, _ := os.ReadDir("/proc")
		count := 0
		for _, e := range ents {
			if pid, err := strconv.Atoi(e.Name()); err == nil && sessionOf(pid) == pgid {
				count++
			}
		}
		if count >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("process group %d has %d processes, want %d", pgid, count, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestNowReadsAndWrites: ReadOutputNow and TryWrite never wait: nothing to read is 0 bytes, a
// full pipe takes what fits; the end of the output is io.EOF.
func TestNowReadsAndWrites(t *testing.T) {
	c := start(t, `read go; echo out; exec cat >/dev/null`)
	buf := make([]byte, 64)
	if n, flushed, err := c.ReadOutputNow(buf); n != 0 || flushed || err != nil {
		t.Fatalf("ReadOutputNow with nothing written: %d, %v, %v", n, flushed, err)
	}
	if n, err := c.TryWrite([]byte("go\n")); n != 3 || err != nil {
		t.Fatalf("TryWrite: %d, %v", n, err)
	}
	if got := readAll(t, func(b []byte) (int, error) {
		n, _, err := c.ReadOutput(b[:4]) // "out\n", then the blocking read of what follows
		if n == 4 {
			return n, io.EOF
		}
		return n, err
	}); got != "out\n" {
		t.Fatalf("output %q", got)
	}
	if c.FlushesOutput([]byte{3}) {
		t.Error("a pipe flushes on ^C")
	}
	if err := c.SendEOF(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Wait(); err != nil {
		t.Fatal(err)
	}
	for {
		_, _, err := c.ReadOutputNow(buf)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}
