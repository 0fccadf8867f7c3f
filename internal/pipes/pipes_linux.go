package pipes

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rlogin-go/rlogin/internal/sessioncgroup"
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
	cmd   *exec.Cmd
	pid   int
	*Ends // this side of its pipes
	cg    *sessioncgroup.Cgroup

	sigMu    sync.Mutex // orders signals against the reap
	reaped   bool       // guarded by sigMu: the command is being or has been reaped
	hungUpAt time.Time  // guarded by sigMu: when Hangup signalled; zero before
	hangup   sync.Once

	waitOnce sync.Once
	state    *os.ProcessState
	waitErr  error

	endOnce sync.Once
	endErr  error
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
	return &Command{cmd: cmd, pid: cmd.Process.Pid, Ends: NewEnds(ends[1], ends[2], ends[4]), cg: cg}, nil
}

// Pid returns the command's process id, which is also its session and process group id.
func (c *Command) Pid() int { return c.pid }

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
		c.Drain()
	})
	return c.state, c.waitErr
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
