package pipes

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rlogin-go/rlogin/internal/sessioncgroup"
	"github.com/rlogin-go/rlogin/pty"
)

// DrainTimeout bounds the wait for the end of the output once the command has exited: a
// background job that keeps its output pipes open, and writes nothing for this long, does not
// hold the session (OpenSSH's sshd waits for it forever).
const DrainTimeout = 2 * time.Second

// pipeSize is the buffer the output pipes get (F_SETPIPE_SZ; the default is 64 KiB): a bulk
// copy then moves in bigger reads.
const pipeSize = 1 << 20

// endKillWait bounds the wait for the processes End killed to be gone.
const endKillWait = time.Second

// Command is a command running on pipes. All methods may be called from any goroutine; the
// output, error output and input are each read or written by one goroutine at a time.
type Command struct {
	cmd    *exec.Cmd
	pid    int
	stdin  *os.File // the write end of the command's standard input
	stdout *os.File // the read end of its standard output
	stderr *os.File // the read end of its standard error
	cg     *sessioncgroup.Cgroup

	exited atomic.Bool // Wait has reaped the command: reads wait at most DrainTimeout

	sigMu    sync.Mutex // orders signals against the reap
	reaped   bool       // guarded by sigMu: the command is being or has been reaped
	hungUpAt time.Time  // guarded by sigMu: when Hangup signalled; zero before
	hangup   sync.Once

	waitOnce sync.Once
	state    *os.ProcessState
	waitErr  error

	closeOnce sync.Once
	endOnce   sync.Once
	endErr    error
}

// Start starts cmd on three new pipes, as the leader of a new session without a controlling
// terminal, in a new cgroup of its own where the caller may make one (see pty.StartContained).
// cmd.Stdin, cmd.Stdout and cmd.Stderr must be nil; cmd.SysProcAttr's credentials are kept, its
// Setsid, Setctty, Setpgid, Noctty and cgroup fields are overridden. The caller must call Wait,
// then Close and End.
func Start(cmd *exec.Cmd) (*Command, error) {
	if cmd.Stdin != nil || cmd.Stdout != nil || cmd.Stderr != nil {
		return nil, errors.New("pipes: start: cmd.Stdin, cmd.Stdout and cmd.Stderr must be nil")
	}
	var ends [6]*os.File // child's stdin, our stdin; our stdout, child's; our stderr, child's
	closeAll := func() {
		for _, f := range ends {
			if f != nil {
				_ = f.Close() // best effort
			}
		}
	}
	for i := 0; i < 6; i += 2 {
		r, w, err := os.Pipe()
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("pipes: start: %w", err)
		}
		ends[i], ends[i+1] = r, w
	}
	for _, f := range []*os.File{ends[1], ends[2], ends[4]} {
		growPipe(f)
	}
	var attr syscall.SysProcAttr
	if cmd.SysProcAttr != nil {
		attr = *cmd.SysProcAttr
	}
	attr.Setsid, attr.Setctty, attr.Setpgid, attr.Noctty, attr.Foreground = true, false, false, false, false
	cg, err := sessioncgroup.New()
	if err != nil {
		cg = nil // no cgroup here: the session it leads
	}
	attr.UseCgroupFD, attr.CgroupFD = cg != nil, 0
	if cg != nil {
		attr.CgroupFD = cg.FD()
	}
	cmd.SysProcAttr = &attr
	cmd.Stdin, cmd.Stdout, cmd.Stderr = ends[0], ends[3], ends[5]
	err = cmd.Start()
	for _, i := range []int{0, 3, 5} {
		_ = ends[i].Close() // the child has its own copies
		ends[i] = nil
	}
	if err != nil {
		closeAll()
		if cg != nil {
			_ = cg.Remove() // best effort: nothing was started in it
		}
		return nil, fmt.Errorf("pipes: start: %w", err)
	}
	return &Command{cmd: cmd, pid: cmd.Process.Pid, stdin: ends[1], stdout: ends[2], stderr: ends[4], cg: cg}, nil
}

// Pid returns the command's process id, which is also its session and process group id.
func (c *Command) Pid() int { return c.pid }

// ReadOutput reads the command's standard output. It never reports a flush (a pipe has no
// line discipline). It returns io.EOF when the output is over: every process has closed it, or
// the command was reaped (Wait) and nothing came for DrainTimeout.
func (c *Command) ReadOutput(b []byte) (int, bool, error) {
	n, err := c.read(c.stdout, b)
	return n, false, err
}

// ReadOutputNow is ReadOutput that never waits: with no output pending it returns 0, false,
// nil at once (session.OutputNowReader). A session server then sends a bulk copy's output from
// the goroutine that read it, in big frames, without a hop to another goroutine per read.
func (c *Command) ReadOutputNow(b []byte) (int, bool, error) {
	rc, err := c.stdout.SyscallConn()
	if err != nil {
		return 0, false, err
	}
	var n int
	var rerr error
	if err := rc.Read(func(fd uintptr) bool {
		n, rerr = unix.Read(int(fd), b)
		return true // done, whatever came: never wait in the poller
	}); err != nil {
		return 0, false, err
	}
	switch {
	case rerr == unix.EAGAIN || rerr == unix.EINTR:
		return 0, false, nil
	case rerr != nil:
		return 0, false, fmt.Errorf("pipes: read: %w", rerr)
	case n == 0 && len(b) > 0:
		return 0, false, io.EOF
	}
	return n, false, nil
}

// ReadErrorOutput reads the command's standard error, with ReadOutput's rules.
func (c *Command) ReadErrorOutput(b []byte) (int, error) { return c.read(c.stderr, b) }

func (c *Command) read(f *os.File, b []byte) (int, error) {
	if c.exited.Load() {
		_ = f.SetReadDeadline(time.Now().Add(DrainTimeout))
	}
	n, err := f.Read(b)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return n, io.EOF
	}
	return n, err
}

// Write writes b to the command's standard input, waiting while the pipe is full. After
// SendEOF or Close it fails.
func (c *Command) Write(b []byte) (int, error) { return c.stdin.Write(b) }

// TryWrite writes what the command's standard input takes now, without waiting
// (session.TryWriter): 0 and a nil error when the pipe is full. A session server then writes a
// bulk copy's input from the goroutine that read it from the connection.
func (c *Command) TryWrite(b []byte) (int, error) {
	rc, err := c.stdin.SyscallConn()
	if err != nil {
		return 0, err
	}
	n := 0
	var werr error
	if err := rc.Write(func(fd uintptr) bool {
		for n < len(b) && werr == nil {
			var m int
			m, werr = unix.Write(int(fd), b[n:])
			if m > 0 {
				n += m
			}
		}
		return true // done, whatever was taken: never wait in the poller
	}); err != nil {
		return n, err
	}
	if werr == unix.EAGAIN || werr == unix.EINTR {
		werr = nil
	}
	if werr != nil {
		return n, fmt.Errorf("pipes: write: %w", werr)
	}
	return n, nil
}

// SendEOF closes the command's standard input: it reads end of file.
func (c *Command) SendEOF() error { return c.stdin.Close() }

// FlushesOutput reports false: a pipe has no line discipline, so no input (not even the bytes
// of ^C in binary data) discards output (session.FlushPredictor). A session server then never
// waits for a flush, nor reads in small pieces expecting one.
func (c *Command) FlushesOutput([]byte) bool { return false }

// Resize does nothing: there is no terminal.
func (c *Command) Resize(pty.Size) error { return nil }

// Signal sends sig to the command's process group (a command line's pipeline, say), unless the
// command has been reaped.
func (c *Command) Signal(sig syscall.Signal) error {
	c.sigMu.Lock()
	defer c.sigMu.Unlock()
	if c.reaped {
		return nil
	}
	if err := unix.Kill(-c.pid, sig); err != nil && err != unix.ESRCH {
		return fmt.Errorf("pipes: signal: %w", err)
	}
	return nil
}

// Hangup tells the command that the connection is gone, once, and only if it has not been
// reaped: SIGHUP (then SIGCONT, for stopped jobs) to its process group, and to its cgroup.
func (c *Command) Hangup() {
	c.hangup.Do(func() {
		c.sigMu.Lock()
		defer c.sigMu.Unlock()
		if c.reaped {
			return
		}
		c.hungUpAt = time.Now()
		_ = unix.Kill(-c.pid, unix.SIGHUP) // ESRCH: the group is gone already
		if c.cg != nil {
			c.cg.Signal(unix.SIGHUP)
		}
		_ = unix.Kill(-c.pid, unix.SIGCONT)
	})
}

// Kill kills the command (SIGKILL), unless it has been reaped.
func (c *Command) Kill() {
	c.sigMu.Lock()
	defer c.sigMu.Unlock()
	if !c.reaped {
		_ = c.cmd.Process.Kill()
	}
}

// Wait waits for the command to exit, reaps it and returns its state; every call returns the
// first one's result. A non-zero status is not an error. From then on reads of the output wait
// at most DrainTimeout for more.
func (c *Command) Wait() (*os.ProcessState, error) {
	c.waitOnce.Do(func() {
		// Wait without reaping first, so that signals to the group (whose id is the command's
		// pid) stop before the pid can be given to another process.
		for {
			var info unix.Siginfo
			err := unix.Waitid(unix.P_PID, c.pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
			if err != unix.EINTR {
				break
			}
		}
		c.sigMu.Lock()
		c.reaped = true
		c.sigMu.Unlock()
		err := c.cmd.Wait()
		c.state = c.cmd.ProcessState
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			c.waitErr = fmt.Errorf("pipes: wait: %w", err)
		}
		c.exited.Store(true)
		now := time.Now().Add(DrainTimeout)
		_ = c.stdout.SetReadDeadline(now) // a read under way is bounded too
		_ = c.stderr.SetReadDeadline(now)
	})
	return c.state, c.waitErr
}

// Close closes this side of the three pipes: pending and later reads and writes fail at once.
// It may be called more than once.
func (c *Command) Close() error {
	c.closeOnce.Do(func() {
		_ = c.stdin.Close() // closed already after SendEOF
		_ = c.stdout.Close()
		_ = c.stderr.Close()
	})
	return nil
}

// End ends what the command left behind once it has exited (jobs in its session or cgroup):
// SIGHUP and SIGCONT now, SIGKILL to what is left grace after the hangup (or after now if there
// was none); then it removes the cgroup. It waits for the command first. Every call returns the
// first one's result.
func (c *Command) End(grace time.Duration) error {
	c.endOnce.Do(func() { c.endErr = c.end(grace) })
	return c.endErr
}

func (c *Command) end(grace time.Duration) error {
	_, _ = c.Wait()
	c.sigMu.Lock()
	deadline := c.hungUpAt
	c.sigMu.Unlock()
	if deadline.IsZero() {
		deadline = time.Now()
	}
	deadline = deadline.Add(grace)
	c.signalLeft(unix.SIGHUP)
	c.signalLeft(unix.SIGCONT)
	if !c.waitGone(deadline) {
		if c.cg != nil {
			_ = c.cg.Kill() // an error: the next wait says what is left
		}
		c.signalLeft(unix.SIGKILL)
		if !c.waitGone(time.Now().Add(endKillWait)) {
			return errors.New("pipes: end: processes of the session are still running after SIGKILL")
		}
	}
	if c.cg != nil {
		if err := c.cg.Remove(); err != nil {
			return fmt.Errorf("pipes: end: %w", err)
		}
	}
	return nil
}

// signalLeft sends sig to what is left of the command's session: its cgroup's processes, and
// the processes of its session (for a system without the cgroup).
func (c *Command) signalLeft(sig unix.Signal) {
	if c.cg != nil {
		c.cg.Signal(sig)
	}
	for _, pid := range c.sessionProcs() {
		fd, err := unix.PidfdOpen(pid, 0)
		if err != nil {
			continue // gone
		}
		if sessionOf(pid) == c.pid { // still the one found, now pinned by fd
			_ = unix.PidfdSendSignal(fd, sig, nil, 0)
		}
		_ = unix.Close(fd)
	}
}

// waitGone waits until nothing of the session is left, or deadline; it reports whether
// nothing is left.
func (c *Command) waitGone(deadline time.Time) bool {
	for {
		left := len(c.sessionProcs()) > 0
		if c.cg != nil && !left {
			if populated, err := c.cg.Populated(); err == nil && populated {
				left = true
			}
		}
		if !left {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// sessionProcs returns the processes of the session the command leads, but zombies (they are
// gone, waiting for their parent).
func (c *Command) sessionProcs() []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == c.pid {
			continue // the leader is reaped: a process with its pid is another one
		}
		if sessionOf(pid) == c.pid {
			pids = append(pids, pid)
		}
	}
	return pids
}

// sessionOf returns the session id of a live process, or 0 (gone, or a zombie).
func sessionOf(pid int) int {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// The command name is in parentheses and may hold anything; after it come: state ppid
	// pgrp session ...
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(stat[i+1:]))
	if len(f) < 4 || f[0] == "Z" {
		return 0
	}
	sid, err := strconv.Atoi(f[3])
	if err != nil {
		return 0
	}
	return sid
}

// growPipe gives f's pipe a pipeSize buffer, if the user's limit allows (best effort). Not
// with f.Fd(), which would make f blocking, out of Go's poller: read deadlines would not work.
func growPipe(f *os.File) {
	if rc, err := f.SyscallConn(); err == nil {
		_ = rc.Control(func(fd uintptr) { _, _ = unix.FcntlInt(fd, unix.F_SETPIPE_SZ, pipeSize) })
	}
}
