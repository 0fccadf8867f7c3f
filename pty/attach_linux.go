package pty

import (
	"fmt"
	"os"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// Attached is the terminal of a session whose command another process started on a pty and
// waits for: the pty's master, received from that process, and the Process that reaches the
// command. Its ReadOutput, ReadOutputNow, ReadPacket, Write, TryWrite, Resize and SendEOF are
// PTY's, with the same system calls and the same rules; Hangup, Kill, Exited and Wait go to the
// Process. What a PTY does for the whole session (End, its cgroup) stays with the process that
// started the command.
//
// All methods may be called from any goroutine, with PTY's rules.
type Attached struct {
	ptyMaster // the terminal; its exited channel is the Process's

	proc      Process
	stop      sync.Once
	closing   chan struct{} // closed by Close: watchExit returns
	watchDone chan struct{} // closed when watchExit has returned
}

// Attach returns the terminal of a session whose command another process started: master is
// the master side of the command's pty, received from that process (sent with SCM_RIGHTS, from
// PTY.DupMaster for instance), and proc does the command's process operations.
//
// Attach owns master: it keeps a copy of its own, out of Go's poller as Start's master is, and
// closes master, also on error. It puts the master into packet mode and non-blocking mode, which
// are settings of the open file description that every copy of the master shares, so the other
// holders must not clear them (a PTY's master is so already); the window size is left as it is.
//
// The output ends as a PTY's does: ReadOutput returns io.EOF when nothing holds the terminal any
// more, or once proc's Exited channel is closed and no output is pending, having returned all
// the output the command wrote before it exited (and at most 1 MiB more, which a background job
// may write meanwhile). The caller must call Close.
func Attach(master *os.File, proc Process) (*Attached, error) {
	m, err := unpolledCopy(master)
	_ = master.Close() // best effort; the copy is used from now on
	if err != nil {
		return nil, fmt.Errorf("pty: attach: %w", err)
	}
	raw, output, err := packetMaster(m, func(fd int) error {
		// A pty master has a number; a slave, or any other terminal, does not.
		if _, err := unix.IoctlGetUint32(fd, unix.TIOCGPTN); err != nil {
			return fmt.Errorf("not a pty master: %w", err)
		}
		return unix.SetNonblock(fd, true)
	})
	if err != nil {
		return nil, fmt.Errorf("pty: attach: %w", err)
	}
	a := &Attached{
		ptyMaster: ptyMaster{master: m, raw: raw, output: output, exited: proc.Exited()},
		proc:      proc,
		closing:   make(chan struct{}),
		watchDone: make(chan struct{}),
	}
	go a.watchExit()
	return a, nil
}

// unpolledCopy returns a copy of the descriptor behind f, close-on-exec, in an *os.File that Go's
// poller does not manage (see masterFile), whatever the descriptor's O_NONBLOCK flag.
//
// os.NewFile puts a non-blocking descriptor into the poller, and the flag belongs to the open
// file description, which the copies share: clearing it for a moment would make every other
// holder's copy blocking too, the other process's included. So the *os.File is made for a
// blocking placeholder (a pipe's end), and dup3 puts the copy in its place, which closes the
// placeholder atomically: the *os.File, which nothing uses yet, never sees the difference.
func unpolledCopy(f *os.File) (*os.File, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, err
	}
	var pipe [2]int
	if err := unix.Pipe2(pipe[:], unix.O_CLOEXEC); err != nil {
		return nil, fmt.Errorf("placeholder: %w", err)
	}
	_ = unix.Close(pipe[1])
	c := os.NewFile(uintptr(pipe[0]), f.Name()) // blocking: not in the poller
	var derr error
	if err := rc.Control(func(fd uintptr) { derr = unix.Dup3(int(fd), pipe[0], unix.O_CLOEXEC) }); err != nil {
		derr = os.ErrClosed // f is closed: see control
	}
	if derr != nil {
		_ = c.Close()
		return nil, fmt.Errorf("dup: %w", derr)
	}
	return c, nil
}

// watchExit wakes up a ReadOutput waiting for output once the command has exited, as a PTY's
// watchExit does, so that it drains what is left and returns io.EOF even if a background job
// still holds the terminal. It returns then, or at Close.
func (a *Attached) watchExit() {
	defer close(a.watchDone)
	select {
	case <-a.exited:
		a.output.Stop()
	case <-a.closing:
	}
}

// Exited returns the Process's Exited channel: it is closed once the command has exited, and
// Wait then returns without waiting.
func (a *Attached) Exited() <-chan struct{} { return a.exited }

// Hangup hangs up the command's session: the Process's Hangup.
func (a *Attached) Hangup() { a.proc.Hangup() }

// Kill kills the command: the Process's Kill.
func (a *Attached) Kill() { a.proc.Kill() }

// WaitStatus waits for the command to exit and returns its wait status: the Process's Wait.
// A session server sends it to its client (session.StatusWaiter).
func (a *Attached) WaitStatus() (syscall.WaitStatus, error) {
	ws, err := a.proc.Wait()
	if err != nil {
		return ws, fmt.Errorf("pty: wait: %w", err)
	}
	return ws, nil
}

// Wait is WaitStatus for callers that want a PTY's Wait: it waits for the command to exit, but
// its state is nil, as os.ProcessState holds only a process that this one reaped; WaitStatus
// tells how the command ended. The error is WaitStatus's.
func (a *Attached) Wait() (*os.ProcessState, error) {
	_, err := a.WaitStatus()
	return nil, err
}

// Close closes this process's copy of the master: a pending ReadOutput or Write returns an
// error matching os.ErrClosed, as on a PTY. Unlike a PTY's Close, it does not hang up the line:
// the kernel does that when the last copy of the master is closed, and the process that started
// the command keeps one until it ends the session (a command that ignores the hangup is then
// ended by Kill). Close is idempotent: later calls return the first call's result.
func (a *Attached) Close() error {
	a.stop.Do(func() { close(a.closing) })
	<-a.watchDone // before the watch it stops is closed
	return a.ptyMaster.Close()
}

// DupMaster returns a new descriptor of the master side, close-on-exec, for another process that
// serves the session's terminal with Attach (sent with SCM_RIGHTS, for instance). The caller owns
// it and closes it once sent. The copy shares the master's open file description, non-blocking
// and in packet mode, which its holders must keep so (Attach does); it is not in Go's poller, so
// holding it costs nothing. The PTY keeps its master and every process operation; a line whose
// master has several copies is hung up when the last one is closed.
func (p *PTY) DupMaster() (*os.File, error) {
	f, err := unpolledCopy(p.master)
	if err != nil {
		return nil, fmt.Errorf("pty: dup master: %w", err)
	}
	return f, nil
}
