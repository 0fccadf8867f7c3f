//go:build linux

package pty_test

import (
	"errors"
	"io"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rlogin-go/rlogin/pty"
)

// monitor is the process side of a PTY as a Process, served the way a privileged monitor
// serves the process that holds the terminal: one goroutine takes the requests and, once the
// command has exited, reaps it and only then publishes its status.
type monitor struct {
	p      *pty.PTY
	ops    chan func(*pty.PTY) // requests: Hangup, Kill
	exited chan struct{}       // closed once the command is reaped and status is set
	status syscall.WaitStatus
	err    error
	quit   chan struct{} // closed by the test's cleanup
	done   chan struct{} // closed when serve has returned
}

// startMonitor serves p's process operations until the test ends.
func startMonitor(t *testing.T, p *pty.PTY) *monitor {
	m := &monitor{p: p, ops: make(chan func(*pty.PTY)), exited: make(chan struct{}), quit: make(chan struct{}), done: make(chan struct{})}
	go m.serve()
	t.Cleanup(func() {
		close(m.quit)
		<-m.done
	})
	return m
}

func (m *monitor) serve() {
	defer close(m.done)
	exited := m.p.Exited()
	for {
		select {
		case op := <-m.ops:
			op(m.p)
		case <-exited:
			exited = nil
			st, err := m.p.Wait()
			if err == nil {
				m.status = st.Sys().(syscall.WaitStatus)
			}
			m.err = err
			close(m.exited)
		case <-m.quit:
			return
		}
	}
}

func (m *monitor) do(op func(*pty.PTY)) {
	select {
	case m.ops <- op:
	case <-m.quit:
	}
}

func (m *monitor) Hangup()                 { m.do((*pty.PTY).Hangup) }
func (m *monitor) Kill()                   { m.do((*pty.PTY).Kill) }
func (m *monitor) Exited() <-chan struct{} { return m.exited }

func (m *monitor) Wait() (syscall.WaitStatus, error) {
	<-m.exited
	return m.status, m.err
}

// startAttached is startChild for the terminal another process would serve: p's master, dup'ed
// and attached, with a monitor for the process side. The copy is wrapped the way a receiver of
// SCM_RIGHTS wraps it, with os.NewFile, which puts it into Go's poller.
func startAttached(t *testing.T, sz pty.Size, argv ...string) *child {
	t.Helper()
	c := startChild(t, sz, argv...)
	m := startMonitor(t, c.p)
	a, err := pty.Attach(received(t, c.p), m)
	if err != nil {
		t.Fatal(err)
	}
	c.a = a // finish closes it
	return c
}

// A starter starts a child: startChild, or startAttached.
type starter func(t *testing.T, sz pty.Size, argv ...string) *child

// eachTerminal runs test on a PTY (start is startChild) and on an Attached copy of its master
// (startAttached): what the test asserts holds for both.
func eachTerminal(t *testing.T, test func(t *testing.T, start starter)) {
	for _, start := range []struct {
		name  string
		start starter
	}{{"pty", startChild}, {"attached", startAttached}} {
		t.Run(start.name, func(t *testing.T) { test(t, start.start) })
	}
}

// received returns a copy of p's master as a process that received it would hold it.
func received(t *testing.T, p *pty.PTY) *os.File {
	t.Helper()
	f, err := p.DupMaster()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fd, err := unix.FcntlInt(f.Fd(), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	return os.NewFile(uintptr(fd), "received master")
}

func TestAttachedOutputInputAndStatus(t *testing.T) {
	c := startAttached(t, size, "sh", "-c", `stty -echo; echo READY; read x; echo "got $x"; exit 3`)
	c.readUntil("READY")
	c.write("hello\n")
	if out, _ := c.readAll(); out != "got hello\r\n" {
		t.Errorf("output %q, want %q", out, "got hello\r\n")
	}
	c.wantExit(3)
	select {
	case <-c.a.Exited():
	default:
		t.Error("Exited is not closed after WaitStatus")
	}
}

// TestDrainBound: a background job that floods the terminal after the command exited cannot
// keep the output open, on a PTY and on an Attached copy.
func TestDrainBound(t *testing.T) {
	eachTerminal(t, func(t *testing.T, start starter) {
		c := start(t, size, "sh", "-c", `trap "" HUP; yes flood & read x; exit 0`)
		// The group outlives the shell while the job runs, so its id is not reused.
		t.Cleanup(func() { _ = unix.Kill(-c.p.Pid(), unix.SIGKILL) })
		c.readUntil("flood")
		c.write("\n") // the shell exits; the job floods on
		// Read slower than the job writes, so that output is nearly always pending: then only
		// the bound ends the output (the watchdog fails the test if nothing does).
		buf := make([]byte, 32<<10)
		n := 0
		for {
			m, _, err := c.term().ReadOutput(buf)
			n += m
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("ReadOutput after %d bytes: %v", n, err)
			}
			time.Sleep(time.Millisecond)
		}
		// 1 MiB after the exit, and what came before the exit was seen: a few reads, at most
		// a few hundred on a loaded machine.
		if n > 8<<20 {
			t.Errorf("%d bytes after the shell's exit was asked for: the bound did not end the output", n)
		}
		c.wantExit(0)
	})
}

// TestAttachedResize: the window size set through the copy is the terminal's.
func TestAttachedResize(t *testing.T) {
	c := startAttached(t, size, "cat")
	want := pty.Size{Rows: 33, Cols: 111}
	if err := c.a.Resize(want); err != nil {
		t.Fatal(err)
	}
	ws, err := unix.IoctlGetWinsize(pty.MasterFD(c.p), unix.TIOCGWINSZ)
	if err != nil {
		t.Fatal(err)
	}
	if ws.Row != want.Rows || ws.Col != want.Cols {
		t.Errorf("window %dx%d, want %dx%d", ws.Row, ws.Col, want.Rows, want.Cols)
	}
}

// TestAttachRefusesOtherFiles: only a pty master can be attached; the file is closed either way.
func TestAttachRefusesOtherFiles(t *testing.T) {
	c := startChild(t, size, "cat")
	m := startMonitor(t, c.p)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	slaveName, err := os.Readlink("/proc/" + strconv.Itoa(c.p.Pid()) + "/fd/0")
	if err != nil {
		t.Fatal(err)
	}
	slave, err := os.OpenFile(slaveName, os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []*os.File{w, slave} {
		if a, err := pty.Attach(f, m); err == nil {
			_ = a.Close()
			t.Errorf("Attach(%s) succeeded", f.Name())
		} else if !strings.HasPrefix(err.Error(), "pty: attach: ") {
			t.Errorf("Attach(%s): %v, want a pty: attach: error", f.Name(), err)
		}
		if err := f.Close(); !errors.Is(err, os.ErrClosed) {
			t.Errorf("Attach left %s open (Close: %v)", f.Name(), err)
		}
	}
}

// TestDupMasterAfterClose: a closed PTY has no master to pass on.
func TestDupMasterAfterClose(t *testing.T) {
	c := startChild(t, size, "cat")
	c.finish()
	if f, err := c.p.DupMaster(); !errors.Is(err, os.ErrClosed) {
		if f != nil {
			_ = f.Close()
		}
		t.Errorf("DupMaster after Close: %v, want an error matching os.ErrClosed", err)
	}
}
