//go:build linux

package pty_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/rlogin-go/rlogin/internal/termtest"
	"github.com/rlogin-go/rlogin/pty"
	"github.com/rlogin-go/rlogin/session"
)

// serverRole, in the environment, makes TestAttachedInAnotherProcess the server's process.
const serverRole = "RLOGIN_PTY_TEST_ATTACHED_SERVER"

// The server process's descriptors (cmd.ExtraFiles): the socket the master comes on, the pipe
// it asks for process operations on, the pipe the wait status comes on, the session's conn.
const (
	serverCtl = 3 + iota
	serverOps
	serverStatus
	serverConn
)

// TestAttachedInAnotherProcess: the master works in another process. This test's binary runs
// again as the server (the unprivileged process of a daemon with privilege separation): it gets
// the master over a unix socket with SCM_RIGHTS, serves the session to a client in this process,
// and asks this process, the monitor, for the hangup (one byte on a pipe) and the exit status
// (the wait status on another).
func TestAttachedInAnotherProcess(t *testing.T) {
	if os.Getenv(serverRole) != "" {
		serveReceivedMaster(t)
		return
	}
	t.Run("exit status", func(t *testing.T) {
		m := startServerProcess(t, `stty -echo; echo READY; read x; echo "got $x"; exit 3`)
		m.expect(`READY\r\n`)
		m.send("hello\n")
		m.expect(`got hello\r\n`)
		wantExitError(t, m.client.Wait(), 3, "")
		if served := m.served(); served != "state=<nil> err=<nil>" {
			t.Errorf("the server process's Serve returned %s, want a nil state and no error", served)
		}
		m.c.wantExit(3)
	})
	t.Run("client gone", func(t *testing.T) {
		m := startServerProcess(t, `echo READY; exec sleep 1000`)
		m.expect(`READY\r\n`)
		if err := m.client.Close(); err != nil {
			t.Fatal(err)
		}
		if served := m.served(); !strings.Contains(served, "connection lost") {
			t.Errorf("the server process's Serve returned %s, want a lost connection", served)
		}
		m.c.wantSignal(unix.SIGHUP) // the hangup came over the pipe
	})
}

// serverProcess is the monitor's view of a session served by another process: the shell on its
// pty, the server process, and a client of the session.
type serverProcess struct {
	*attachedSession
	cmd      *exec.Cmd
	output   *termtest.Buffer // the server process's stdout and stderr
	exited   chan error       // cmd.Wait's result, once
	monitors sync.WaitGroup   // the goroutines serving the process operations
}

// startServerProcess starts script on a pty and this test's binary as the server of its session,
// hands it the master, and starts a client of the session in this process.
func startServerProcess(t *testing.T, script string) *serverProcess {
	t.Helper()
	c := startChild(t, size, "sh", "-c", script)
	ctlHere, ctlThere := socketPair(t, unix.SOCK_SEQPACKET)
	opsHere, opsThere, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	statusThere, statusHere, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	connHere, connThere := socketPair(t, unix.SOCK_STREAM)
	ctx, cancel := context.WithTimeout(context.Background(), watchdog)
	t.Cleanup(cancel)
	m := &serverProcess{output: new(termtest.Buffer), exited: make(chan error, 1)}
	m.cmd = exec.CommandContext(ctx, os.Args[0], "-test.run=^TestAttachedInAnotherProcess$", "-test.count=1")
	m.cmd.Env = append(os.Environ(), serverRole+"=1")
	m.cmd.ExtraFiles = []*os.File{ctlThere, opsThere, statusThere, connThere}
	m.cmd.Stdout, m.cmd.Stderr = m.output, m.output
	m.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	err = m.cmd.Start()
	for _, f := range m.cmd.ExtraFiles {
		_ = f.Close() // the server process's now
	}
	if err != nil {
		t.Fatal(err)
	}
	go func() { m.exited <- m.cmd.Wait() }()
	t.Cleanup(func() {
		err := <-m.exited // the context kills it at worst
		m.exited <- err
		_ = opsHere.Close()
		_ = statusHere.Close()
		m.monitors.Wait()
	})

	master, err := c.p.DupMaster()
	if err != nil {
		t.Fatal(err)
	}
	err = unix.Sendmsg(int(ctlHere.Fd()), []byte("master"), unix.UnixRights(int(master.Fd())), nil, 0)
	_ = master.Close() // the server process has its own
	_ = ctlHere.Close()
	if err != nil {
		t.Fatal(err)
	}
	m.monitors.Add(2)
	go m.serveOps(opsHere, c.p)
	go m.sendStatus(statusHere, c.p)

	m.attachedSession = &attachedSession{t: t, c: c, out: new(termtest.Buffer)}
	m.client = session.NewClient(fileConn(t, connHere), session.Request{User: "bob", Term: "dumb", Window: size})
	m.client.Stdout = m.out
	if m.stdin, err = m.client.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.client.Close() })
	if err := m.client.Start(ctx); err != nil {
		t.Fatalf("Start: %v; the server process said %q", err, m.output.String())
	}
	return m
}

// serveOps does the process operations the server process asks for, until it closes the pipe.
func (m *serverProcess) serveOps(ops *os.File, p *pty.PTY) {
	defer m.monitors.Done()
	b := make([]byte, 1)
	for {
		if _, err := ops.Read(b); err != nil {
			return
		}
		switch b[0] {
		case 'H':
			p.Hangup()
		case 'K':
			p.Kill()
		}
	}
}

// sendStatus tells the server process the shell's wait status once it is reaped.
func (m *serverProcess) sendStatus(status *os.File, p *pty.PTY) {
	defer m.monitors.Done()
	<-p.Exited()
	st, err := p.Wait()
	if err == nil {
		_ = binary.Write(status, binary.LittleEndian, uint32(st.Sys().(syscall.WaitStatus)))
	}
	_ = status.Close() // without a status: the server process learns that it is unknown
}

// served returns what the server process's Serve returned, once it has exited; the process must
// have passed its own checks.
func (m *serverProcess) served() string {
	m.t.Helper()
	err := <-m.exited
	m.exited <- err
	out := m.output.String()
	if err != nil {
		m.t.Fatalf("the server process: %v; it said %q", err, out)
	}
	_, served, ok := strings.Cut(out, "Serve returned ")
	if !ok {
		m.t.Fatalf("the server process did not say what Serve returned: %q", out)
	}
	served, _, _ = strings.Cut(served, "\n")
	return served
}

// serveReceivedMaster is the server process: it serves the session on the master it receives.
func serveReceivedMaster(t *testing.T) {
	ctl := os.NewFile(serverCtl, "ctl")
	defer ctl.Close()
	buf, oob := make([]byte, 16), make([]byte, unix.CmsgSpace(4))
	_, oobn, _, _, err := unix.Recvmsg(int(ctl.Fd()), buf, oob, unix.MSG_CMSG_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		t.Fatalf("control messages %v, %v; want one", msgs, err)
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		t.Fatalf("rights %v, %v; want one descriptor", fds, err)
	}
	master := os.NewFile(uintptr(fds[0]), "master") // as a receiver makes it: in Go's poller

	proc := newPipeProcess(os.NewFile(serverOps, "ops"), os.NewFile(serverStatus, "status"))
	defer proc.close()
	a, err := pty.Attach(master, proc)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	ctx, cancel := context.WithTimeout(context.Background(), watchdog)
	defer cancel()
	srv := session.NewServerConn(fileConn(t, os.NewFile(serverConn, "conn")))
	if _, err := srv.ReadRequest(); err != nil {
		_ = srv.Close()
		t.Fatal(err)
	}
	st, err := srv.Serve(ctx, a)
	fmt.Printf("Serve returned state=%v err=%v\n", st, err)
}

// pipeProcess is a Process whose operations are asked for with a byte on a pipe, and whose wait
// status comes on another: a monitor's messages, reduced to what the test needs.
type pipeProcess struct {
	ops    *os.File
	hangup sync.Once
	exited chan struct{} // closed by readStatus once status and err are set
	status syscall.WaitStatus
	err    error
}

func newPipeProcess(ops, status *os.File) *pipeProcess {
	p := &pipeProcess{ops: ops, exited: make(chan struct{})}
	go p.readStatus(status)
	return p
}

func (p *pipeProcess) readStatus(status *os.File) {
	defer close(p.exited)
	defer status.Close()
	var b [4]byte
	if _, err := io.ReadFull(status, b[:]); err != nil {
		p.err = fmt.Errorf("no wait status from the monitor: %w", err)
		return
	}
	p.status = syscall.WaitStatus(binary.LittleEndian.Uint32(b[:]))
}

// close closes the request pipe and waits for readStatus, which ends when the monitor sends the
// status or closes its end.
func (p *pipeProcess) close() {
	_ = p.ops.Close()
	<-p.exited
}

func (p *pipeProcess) Hangup()                 { p.hangup.Do(func() { _, _ = p.ops.Write([]byte{'H'}) }) }
func (p *pipeProcess) Kill()                   { _, _ = p.ops.Write([]byte{'K'}) }
func (p *pipeProcess) Exited() <-chan struct{} { return p.exited }

func (p *pipeProcess) Wait() (syscall.WaitStatus, error) {
	<-p.exited
	return p.status, p.err
}
