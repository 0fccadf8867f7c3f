package pty

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

	creack "github.com/creack/pty"
	"github.com/rlogin-go/rlogin/internal/rawio"
	"github.com/rlogin-go/rlogin/internal/sessioncgroup"
	"golang.org/x/sys/unix"
)

// PTY is a command running on a pseudo-terminal; the PTY holds the master side.
//
// All methods may be called from any goroutine. Calls to ReadOutput are
// serialized (one output pump is expected); the other methods may run
// concurrently with ReadOutput and with each other.
type PTY struct {
	ptyMaster // the terminal: ReadOutput, ReadPacket, Write, Resize, SendEOF, Close

	cmd       *exec.Cmd
	pid       int
	watchDone chan struct{} // closed when watchExit has returned

	cg  *sessioncgroup.Cgroup // the session's cgroup (StartContained), or nil: see members
	tty uint64                // the child's controlling terminal (tty_nr) at start; 0 if unknown

	sigMu    sync.Mutex         // orders Hangup against the reap
	reaped   bool               // guarded by sigMu: the child is being or has been reaped
	hungUp   map[process]string // guarded by sigMu: the processes Hangup signalled, with their command names; nil before
	hungUpAt time.Time          // guarded by sigMu: when Hangup signalled; zero before
	sids     map[int]bool       // guarded by sigMu: sessions seen holding the terminal (without a cgroup)
	peer     *os.File           // guarded by sigMu: the slave, held from Close until the reap (holdNumber)
	hangup   sync.Once
	holdOnce sync.Once

	endOnce sync.Once
	endErr  error

	waitOnce sync.Once
	state    *os.ProcessState
	waitErr  error
}

// Start starts cmd on a new pseudo-terminal of size sz and returns the PTY holding its master side.
//
// The command runs as a session leader (setsid) with the pty as its controlling terminal
// and as its standard input, output and error; cmd.Stdin, cmd.Stdout and cmd.Stderr must be nil.
// Other cmd.SysProcAttr fields (credentials, for instance) are kept; its Setsid, Setctty, Ctty,
// Setpgid, Foreground and Noctty fields are overridden. The window size is set and the master
// is put into packet mode (TIOCPKT) before the command starts. The master descriptor is
// close-on-exec, and the parent's copy of the slave is closed once the command has started.
//
// The child is reaped by Wait, which the caller must call.
func Start(cmd *exec.Cmd, sz Size) (*PTY, error) { return start(cmd, sz, nil) }

// StartContained is Start for a login session, whose every process End must be able to end: the
// child is started in a new cgroup (version 2) of its own where the caller may create one (root,
// or a systemd unit with Delegate=yes), so that everything it starts stays in it whatever it
// does. Elsewhere the PTY finds the session's processes as Start's does, by their session and
// controlling terminal. The caller must call End, after Wait, which removes the cgroup. Its
// cmd.SysProcAttr's UseCgroupFD and CgroupFD are overridden.
func StartContained(cmd *exec.Cmd, sz Size) (*PTY, error) {
	o, err := OpenContained(sz)
	if err != nil {
		return nil, err
	}
	return o.Start(cmd)
}

// start is Start, and StartContained with the cgroup cg (nil for none).
func start(cmd *exec.Cmd, sz Size, cg *sessioncgroup.Cgroup) (*PTY, error) {
	o, err := open(sz, cg)
	if err != nil {
		return nil, err
	}
	return o.Start(cmd)
}

// Opened is a new pseudo-terminal whose command is not started yet, for a caller that must know
// the terminal before it starts the command: a PAM login names it to the PAM stack
// (PAM_TTY) before it opens the session and starts the user's shell. OpenContained makes one;
// Start starts the command on it, or Close gives it up.
type Opened struct {
	master *os.File
	raw    syscall.RawConn
	output *rawio.Watch
	tty    *os.File
	cg     *sessioncgroup.Cgroup
}

// OpenContained opens a pseudo-terminal of size sz, its master in packet mode, and the cgroup of
// its session as StartContained does; Start then starts the command on it.
func OpenContained(sz Size) (*Opened, error) {
	cg, err := sessioncgroup.New()
	if err != nil {
		cg = nil // no cgroup here: the session and terminal it is
	}
	o, err := open(sz, cg)
	if err != nil && cg != nil {
		_ = cg.Remove() // best effort: nothing was started in it
	}
	return o, err
}

// open opens the pty of a command, with the cgroup cg (nil for none).
func open(sz Size, cg *sessioncgroup.Cgroup) (*Opened, error) {
	m, tty, err := creack.Open()
	if err != nil {
		return nil, fmt.Errorf("pty: open: %w", err)
	}
	master, raw, output, err := prepareMaster(m, sz)
	if err != nil {
		_ = tty.Close()
		return nil, err
	}
	return &Opened{master: master, raw: raw, output: output, tty: tty, cg: cg}, nil
}

// TTY returns the slave side, which the command gets as its terminal. Start closes it.
func (o *Opened) TTY() *os.File { return o.tty }

// Close gives up a pty whose command was never started: it closes both sides and removes the
// cgroup.
func (o *Opened) Close() error {
	_ = o.tty.Close()    // best effort
	_ = o.output.Close() // best effort
	err := o.master.Close()
	if o.cg != nil {
		_ = o.cg.Remove() // best effort: nothing was started in it
	}
	return err
}

// Start starts cmd on the pty, as Start and StartContained do (with OpenContained's cgroup), and
// returns the PTY holding its master side. On failure it closes the pty (Close). Call it once.
func (o *Opened) Start(cmd *exec.Cmd) (*PTY, error) {
	if cmd.Stdin != nil || cmd.Stdout != nil || cmd.Stderr != nil {
		_ = o.Close()
		return nil, errors.New("pty: start: cmd.Stdin, cmd.Stdout and cmd.Stderr must be nil")
	}
	cmd.SysProcAttr = sessionLeader(cmd.SysProcAttr)
	if o.cg != nil {
		// Cloned into the cgroup (clone3's CLONE_INTO_CGROUP): the child is in it before it
		// runs a single instruction, so no process of the session is ever outside it.
		cmd.SysProcAttr.UseCgroupFD = true
		cmd.SysProcAttr.CgroupFD = o.cg.FD()
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = o.tty, o.tty, o.tty
	err := cmd.Start()
	_ = o.tty.Close() // best effort; the child has its own copies
	if err != nil {
		_ = o.output.Close() // best effort
		_ = o.master.Close()
		if o.cg != nil {
			_ = o.cg.Remove() // best effort: nothing was started in it
		}
		return nil, fmt.Errorf("pty: start: %w", err)
	}
	exited := make(chan struct{})
	p := &PTY{
		ptyMaster: ptyMaster{master: o.master, raw: o.raw, output: o.output, exited: exited},
		cmd:       cmd,
		pid:       cmd.Process.Pid,
		watchDone: make(chan struct{}),
		cg:        o.cg,
		sids:      make(map[int]bool),
	}
	// The child has set its controlling terminal before exec, and Start returns after the exec.
	if st, ok := statOf(p.pid); ok {
		p.tty = st.tty
	}
	go p.watchExit(exited)
	return p, nil
}

// sessionLeader returns a copy of attr (which may be nil) that makes the child a session leader
// whose controlling terminal is its descriptor 0, the slave; the caller's other fields are kept.
func sessionLeader(attr *syscall.SysProcAttr) *syscall.SysProcAttr {
	var a syscall.SysProcAttr
	if attr != nil {
		a = *attr
	}
	a.Setsid = true   // a new session, so that the pty can become its controlling terminal
	a.Setctty = true  // TIOCSCTTY on ...
	a.Ctty = 0        // ... the child's descriptor 0, the slave
	a.Setpgid = false // setsid already made the child a process group leader
	a.Foreground = false
	a.Noctty = false
	return &a
}

// watchExit waits, without reaping, until the child has exited, then wakes up
// a ReadOutput waiting for output so that it drains what is left and
// returns io.EOF even if another process still holds the slave open.
// Not reaping keeps the child's pid, which is also its process group id,
// reserved until Wait (see Hangup).
func (p *PTY) watchExit(exited chan<- struct{}) {
	defer close(p.watchDone)
	for !waitExitPolled(p.pid) {
		var info unix.Siginfo
		err := unix.Waitid(unix.P_PID, p.pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if err != unix.EINTR {
			break // nil, or ECHILD if the child was reaped behind our back: gone either way
		}
	}
	close(exited)
	p.output.Stop()
}

// Close closes the master side of the terminal, as ptyMaster's Close does (the kernel hangs up
// the slave side), but keeps the terminal's number taken until the child is reaped (Wait): see
// holdNumber.
func (p *PTY) Close() error {
	p.holdNumber()
	return p.ptyMaster.Close()
}

// holdNumber opens the slave (TIOCGPTPEER, never by name) before the master closes, unless the
// child has been reaped, so that the terminal's number stays taken until Wait reaps the child.
// Why: util-linux's login(1) closes its descriptors of the terminal, hangs it up (vhangup) and
// opens it again by name (init_tty). If the master closed in between, nothing held the terminal,
// a new pty could take its number, and login(1) opened that other session's terminal and
// changed its owner: seen in CI, where an unprivileged rlogind's new pty became another user's
// ("pty: open: open /dev/pts/0: permission denied") while the root tests' sessions ended. With
// the number held, the name is gone once the master closes and such an open fails. Best
// effort: a kernel before 4.13 has no TIOCGPTPEER.
func (p *PTY) holdNumber() {
	p.holdOnce.Do(func() {
		p.sigMu.Lock() // against Wait's reap and release: a hold taken after them would leak
		defer p.sigMu.Unlock()
		if p.reaped {
			return
		}
		var fd uintptr
		var errno syscall.Errno
		err := p.raw.Control(func(m uintptr) {
			fd, _, errno = unix.Syscall(unix.SYS_IOCTL, m, unix.TIOCGPTPEER, uintptr(unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC))
		})
		if err != nil || errno != 0 {
			return // closed already, or an old kernel
		}
		p.peer = os.NewFile(fd, "pty slave (held)")
	})
}

// Exited returns a channel that is closed once the child has exited; Wait then reaps it
// without waiting. It saves a caller a goroutine blocked in Wait.
func (p *PTY) Exited() <-chan struct{} { return p.watchDone }

// Pid returns the child's process id, which is also its session and process group id.
func (p *PTY) Pid() int { return p.pid }

// Hangup hangs up the session, the first time it is called, and only if the child
// has not been reaped yet (Wait has not been called): SIGHUP goes to the child's
// process group and to every other process of its session (its jobs), each followed
// by SIGCONT so that stopped jobs see it, as when a terminal line drops. "The
// session" also takes in the sessions that hold the terminal (a login(1) runs the
// user's shell in a session of its own) and, for StartContained, every process in
// the session's cgroup.
func (p *PTY) Hangup() {
	// Why once: a session has several reasons to hang up (the connection dropped,
	// the daemon is stopping, the output pump failed) and may see more than one;
	// the shell must see a single hangup, as it would from a modem line, not a
	// second SIGHUP that interrupts its own hangup handling (saving history,
	// hanging up its jobs).
	// Why not after the reap: the group and session id is the child's pid, which the
	// system may give to an unrelated process once the child is reaped. watchExit does
	// not reap, and Wait marks the child reaped under sigMu before reaping it, so the
	// signals are sent while the pid is still ours (the child is running or a zombie).
	// Why the whole session: a shell passes its SIGHUP on to its jobs, but not
	// reliably (a job being started as the hangup arrives escapes it, seen with bash),
	// and a process left behind by a dropped connection is a leak. Wait sweeps the
	// session once more after the shell has exited, for jobs started meanwhile, and
	// End ends whatever is left.
	p.hangup.Do(func() {
		p.sigMu.Lock()
		defer p.sigMu.Unlock()
		if !p.reaped {
			_ = unix.Kill(-p.pid, unix.SIGHUP) // ESRCH: the group is gone already
			p.hungUp = make(map[process]string)
			p.hungUpAt = time.Now()
			p.sweep(false, p.hungUp, unix.SIGHUP, unix.SIGCONT)
			_ = unix.Kill(-p.pid, unix.SIGCONT)
		}
	})
}

// Kill kills the child with SIGKILL, unless it has been reaped (Wait has been
// called). A session server kills a shell that outlives its hangup and the close
// of its terminal, so that it cannot hold the session. Only the child is killed:
// the hangup has already gone to its jobs, and End ends those left. The signal goes
// through the child's os.Process, and Wait marks the child reaped (under the lock Kill
// takes) before reaping it, so a pid reused after the reap is never signalled.
func (p *PTY) Kill() {
	p.sigMu.Lock()
	defer p.sigMu.Unlock()
	if !p.reaped {
		_ = p.cmd.Process.Kill() // os.ErrProcessDone: it exited already
	}
}

// endKillWait bounds End's wait for the processes it killed with SIGKILL to be gone: they
// die at once unless stuck in the kernel (a hung network file system).
const endKillWait = 2 * time.Second

// End ends every process of the session that outlived the child, once the child has
// exited (End calls Wait first): they get SIGHUP and SIGCONT (those that Hangup
// signalled already and that still run the same program do not get a second one),
// and SIGKILL if they are still there grace after the hangup (after this call if
// Hangup was not called). It returns once they are all gone, or with an error if
// some of them could not be ended. For StartContained, it then removes the cgroup.
// Later calls return the first call's result.
//
// What End reaches: the processes of the child's session, of the sessions seen
// holding its terminal (the terminal's session when Hangup ran, for instance), and,
// until Close, those holding the terminal; a process that calls setsid(2) and gives up the
// terminal before that escapes. For StartContained with a cgroup, also everything
// the child started, directly or not, whatever it did (a process that ignores
// SIGHUP, leaves the session and the terminal, or forks twice): only a privileged
// agent can move a process out of the cgroup.
func (p *PTY) End(grace time.Duration) error {
	p.endOnce.Do(func() { p.endErr = p.end(grace) })
	return p.endErr
}

func (p *PTY) end(grace time.Duration) error {
	_, _ = p.Wait()
	p.sigMu.Lock()
	deadline := p.hungUpAt
	if deadline.IsZero() {
		deadline = time.Now()
	}
	deadline = deadline.Add(grace)
	if p.hungUp == nil {
		p.hungUp = make(map[process]string)
	}
	p.sweep(true, p.hungUp, unix.SIGHUP, unix.SIGCONT)
	p.sigMu.Unlock()

	gone := p.waitGone(deadline)
	if !gone {
		p.sigMu.Lock()
		if p.cg != nil {
			_ = p.cg.Kill() // an error: the next wait says what is left
		}
		p.sweep(true, nil, unix.SIGKILL) // without a cgroup; with one, what it did not reach
		p.sigMu.Unlock()
		gone = p.waitGone(time.Now().Add(endKillWait))
	}
	var err error
	if !gone {
		err = errors.New("pty: end: processes of the session are still running after SIGKILL")
	}
	if p.cg != nil && gone {
		if rerr := p.cg.Remove(); rerr != nil {
			err = fmt.Errorf("pty: end: %w", rerr)
		}
	}
	return err
}

// waitGone waits until no process of the session is left, or deadline has passed, and reports
// whether none is left.
func (p *PTY) waitGone(deadline time.Time) bool {
	if p.cg != nil && !p.cg.WaitEmpty(deadline) {
		return false
	}
	for {
		p.sigMu.Lock()
		n := p.sweep(true, nil)
		p.sigMu.Unlock()
		if n == 0 {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		// Nothing announces the end of a process of another parent (outside the cgroup):
		// look again shortly.
		time.Sleep(20 * time.Millisecond)
	}
}

// A process is a process's pid and start time (in clock ticks since boot): a pid that
// comes back with another start time is another process.
type process struct {
	pid   int
	start uint64
}

// sweep sends sigs, in order, to every process of the session (member) other than the child,
// that is not in done or has run another program since (its command name changed), and records
// it in done (nil: record nothing); the members of the child's group only if group is set, as
// the caller otherwise signals them as a group. It returns the number of processes it found,
// signalled or not. Each process is pinned with a pidfd and checked again after the pin, so a
// pid reused between the scan and the signal is never signalled. It runs under sigMu.
func (p *PTY) sweep(group bool, done map[process]string, sigs ...unix.Signal) int {
	var inCgroup map[int]bool
	if p.cg != nil {
		pids, _ := p.cg.Procs() // an error: the cgroup is gone, and its processes with it
		inCgroup = make(map[int]bool, len(pids))
		for _, pid := range pids {
			inCgroup[pid] = true
		}
	}
	// The terminal tells only while the master is open: once it is closed and the last process
	// lets go of the slave, a new pty may get the same number, and the processes holding it are
	// another session's. The sessions seen holding it before (p.sids) stay the session's.
	p.roomMu.Lock()
	ttyValid := !p.closed
	p.roomMu.Unlock()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	n := 0
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == p.pid {
			continue
		}
		st, ok := statOf(pid)
		if !ok || st.zombie || !p.member(pid, st, ttyValid, inCgroup) {
			continue // a zombie has exited: its parent (perhaps init, in its own time) reaps it
		}
		n++
		if st.pgid == p.pid && !group {
			continue
		}
		proc := process{pid, st.start}
		if done != nil {
			if comm, ok := done[proc]; ok && comm == st.comm {
				continue
			}
			done[proc] = st.comm
		}
		if len(sigs) == 0 {
			continue
		}
		fd, err := unix.PidfdOpen(pid, 0)
		if err != nil {
			continue // gone
		}
		if again, ok := statOf(pid); ok && again.start == st.start && p.member(pid, again, ttyValid, inCgroup) {
			for _, sig := range sigs {
				_ = unix.PidfdSendSignal(fd, sig, nil, 0)
			}
		}
		_ = unix.Close(fd)
	}
	return n
}

// member reports whether process pid, whose stat is st, belongs to the session: it is in the
// session's cgroup (listed in inCgroup, and still there), in the child's session, holds the
// child's terminal (looked at only if ttyValid), or is in a session seen holding it (which member records, under sigMu, for
// when the terminal has been hung up and its sessions have lost it). Both ways are used even
// with a cgroup: login(1)'s PAM session stack may have a privileged agent move the session into
// a cgroup of its own (pam_systemd: logind's session-N.scope). A session id stays reserved
// while any process of that session lives; only after they are all gone can the pid wrap around
// to a new session.
func (p *PTY) member(pid int, st procStat, ttyValid bool, inCgroup map[int]bool) bool {
	if ttyValid && p.tty != 0 && st.tty == p.tty {
		p.sids[st.sid] = true
		return true
	}
	if st.sid == p.pid || p.sids[st.sid] {
		return true
	}
	return inCgroup[pid] && p.cg.Holds(pid)
}

// A procStat holds the fields of /proc/PID/stat that sweep needs.
type procStat struct {
	comm      string // the command name, which changes when the process runs another program
	zombie    bool   // it has exited, and waits to be reaped
	sid, pgid int
	tty       uint64 // the controlling terminal's device number; 0 for none
	start     uint64 // clock ticks since boot
}

// statOf reads the command name, the session and process group ids, the controlling terminal
// and the start time of pid from /proc/PID/stat.
func statOf(pid int) (procStat, bool) {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procStat{}, false
	}
	// The command name is in parentheses and may hold anything; the fields after
	// it are: state ppid pgrp session tty_nr tpgid flags minflt cminflt majflt
	// cmajflt utime stime cutime cstime priority nice num_threads itrealvalue starttime ...
	i := bytes.LastIndexByte(stat, ')')
	j := bytes.IndexByte(stat, '(')
	if i < 0 || j < 0 || j > i {
		return procStat{}, false
	}
	f := strings.Fields(string(stat[i+1:]))
	if len(f) < 20 {
		return procStat{}, false
	}
	pgid, err1 := strconv.Atoi(f[2])
	sid, err2 := strconv.Atoi(f[3])
	tty, err3 := strconv.ParseInt(f[4], 10, 64) // signed in the kernel's format
	start, err4 := strconv.ParseUint(f[19], 10, 64)
	st := procStat{comm: string(stat[j+1 : i]), zombie: f[0] == "Z", sid: sid, pgid: pgid, tty: uint64(uint32(tty)), start: start}
	return st, err1 == nil && err2 == nil && err3 == nil && err4 == nil
}

// Wait waits for the child to exit, reaps it and returns its state. It may be called
// more than once and from several goroutines: the first call does the wait and every
// call returns the same result. A non-zero exit status or a death by signal is not
// an error; the error is non-nil only when the wait itself failed.
func (p *PTY) Wait() (*os.ProcessState, error) {
	p.waitOnce.Do(func() {
		<-p.watchDone // the child has exited; its pid stays reserved until the reap below
		p.sigMu.Lock()
		if p.hungUp != nil {
			// Hangup's SIGHUP misses a job that a shell catching it (bash) starts after the
			// sweep, and one that bash had forked but not yet turned into the job's program:
			// bash's handler, still in place, took the signal, and the program ran unaware
			// (e2e TestEscapeDisconnect on a loaded machine, 3-6 runs in 20: a `sleep` left
			// behind, signalled, with no SIGHUP pending). The shell starts nothing more now:
			// hang up what is left in the session, its group too, except what Hangup
			// signalled one by one and still runs the same program. (A process of the
			// shell's group that Hangup signalled as a group and that is still there gets a
			// second SIGHUP: rare, and a leak is worse.) A job forked just before the shell
			// exited can still be between fork and exec now and take this SIGHUP the same way:
			// that window remains (seen once in 80 e2e runs under load, with this sweep).
			p.sweep(true, p.hungUp, unix.SIGHUP, unix.SIGCONT)
		}
		p.reaped = true
		p.sigMu.Unlock()
		err := p.cmd.Wait()
		p.state = p.cmd.ProcessState
		p.sigMu.Lock()
		peer := p.peer // the child can open nothing now: the number may go (holdNumber)
		p.peer = nil
		p.sigMu.Unlock()
		if peer != nil {
			_ = peer.Close()
		}
		var exitErr *exec.ExitError
		if err != nil && !(errors.As(err, &exitErr) && p.state != nil) {
			p.waitErr = fmt.Errorf("pty: wait: %w", err)
		}
	})
	return p.state, p.waitErr
}
