package systemlogin

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rlogin-go/rlogin/pty"
	"github.com/rlogin-go/rlogin/session"
)

// The password gate.
//
// In a password login the session is accepted before the client is authenticated: login(1)
// asks for the password on the terminal. login(1) does not stop after a wrong password, though:
// it says "Login incorrect" and asks for a user name again, so a client let through unchecked
// could log in as any user, root included, whatever PermitRootLogin says. The gate stands
// between the client and login(1) until the session has started: it passes keystrokes only
// while login(1) waits, with echo off, for a secret on the terminal (a password, a new password
// when the old one expired, a one-time code), one line at a time; it holds them while login(1)
// works; and it ends the login as soon as login(1) waits for anything else, such as a user name.
// So the user the client asked for, whom the daemon checked, is the only one who can log in.
//
// What login(1) is doing is read from /proc: it waits for a secret when it is blocked in read(2)
// on the session's terminal (/proc/PID/syscall), the terminal has ECHO off, no complete line is
// waiting in its input queue, and, if a line was passed before, login(1) has gone to sleep again
// since (its voluntary context switches went up): input written to a pty reaches the line
// discipline a moment later, from a kernel worker, so until login(1) has woken up the earlier
// line may still be on its way. Nothing but input changes that state, so a line written then is
// the answer to that prompt. The session has started when login(1) has handed the
// terminal to the user (chown(2): the owner becomes the user, and its ctime changes, which also
// tells a root login), which it does only after authentication, account checks and the PAM
// session.

// gateState is what the gate sees login(1) doing.
type gateState int

const (
	gateBusy    gateState = iota // working (checking a password, printing): hold the input
	gateSecret                   // waiting for a secret: pass one line
	gateAsks                     // waiting for something else (a user name): end the login
	gateOpen                     // the user's session has started: pass everything
	gateForeign                  // the terminal went to another user: end the session
	gateGone                     // login(1) exited (or the terminal is gone)
	gateTimeout                  // (not a probe's answer) the login grace time is over
)

// Poll intervals: while input is held the watcher probes login(1) every gatePoll; otherwise
// (to notice the start of the session, or a login(1) asking for a user name when nobody types)
// every gateWatch.
const (
	gatePoll  = 10 * time.Millisecond
	gateWatch = 50 * time.Millisecond
)

// maxHeld bounds the input the gate holds for login(1): past it, Write waits. A password, or a
// few commands typed ahead, fit; a client cannot make an unauthenticated session hold more.
const maxHeld = 4 << 10

// errGateClosed is Write's error once the login has ended or the session is over.
var errGateClosed = errors.New("systemlogin: password login ended")

// loginGate is the session.Terminal (and classic.Terminal) of a password login; see above.
// Write never waits for login(1): it queues the input (up to maxHeld), and the gate's watcher
// goroutine passes it on as login(1) allows, so window changes and the client's other messages
// are not held up behind it. The gate does not embed the *pty.PTY: every way in to the terminal
// must go through the gate, and a method promoted from the PTY (such as TryWrite, which
// session.Serve prefers to Write) would bypass it.
type loginGate struct {
	p   *pty.PTY
	log *slog.Logger
	pid int    // login(1)
	tty string // its terminal, "/dev/pts/N"
	uid int    // the user logging in

	startUID   uint32        // the terminal's owner when login(1) started
	startCtime unix.Timespec // and its ctime
	deadline   time.Time     // end of the login grace time
	onFail     func()        // called once if the login fails (not if the client leaves)
	onOpen     func()        // called once when the session starts (the user is authenticated)

	lastPass int64 // login(1)'s voluntary context switches when a line was last passed; -1: none (watcher only)

	afterFirstLook func() // tests: called by probe after its first look at the terminal

	mu     sync.Mutex
	room   sync.Cond // Write waits for room in held
	held   []byte    // input not passed to login(1) yet
	open   bool      // the session started and held is empty: input goes straight to the terminal
	closed bool      // the login ended or the session is over: input is dropped

	wake     chan struct{} // (1 slot) new input for the watcher
	done     chan struct{} // closed with closed
	doneOnce sync.Once
	watcher  sync.WaitGroup
}

// newLoginGate starts gating the terminal of login(1) p, which runs on tty for a login as uid;
// a login whose session has not started by deadline (the login grace time) is ended. onFail,
// if not nil, is called once if the login fails; onOpen, if not nil, once when the session
// starts, before any input held for it is passed on. Call it right after login(1) started, before
// any input reaches it; stop it with close.
func newLoginGate(log *slog.Logger, p *pty.PTY, tty string, uid int, deadline time.Time, onFail, onOpen func()) (*loginGate, error) {
	var st unix.Stat_t
	if err := unix.Stat(tty, &st); err != nil {
		return nil, fmt.Errorf("systemlogin: password login: %w", &os.PathError{Op: "stat", Path: tty, Err: err})
	}
	g := &loginGate{
		p:          p,
		log:        log,
		pid:        p.Pid(),
		tty:        tty,
		uid:        uid,
		startUID:   st.Uid,
		startCtime: st.Ctim,
		deadline:   deadline,
		onFail:     onFail,
		onOpen:     onOpen,
		lastPass:   -1,
		wake:       make(chan struct{}, 1),
		done:       make(chan struct{}),
	}
	g.room.L = &g.mu
	g.watcher.Go(g.watch)
	return g, nil
}

// close stops the gate and waits for its watcher. It may be called more than once.
func (g *loginGate) close() {
	g.shut()
	g.watcher.Wait()
}

// shut marks the gate closed, drops the held input and wakes everyone; it reports whether this
// call closed it.
func (g *loginGate) shut() (first bool) {
	g.doneOnce.Do(func() {
		first = true
		g.mu.Lock()
		g.closed, g.held = true, nil
		g.room.Broadcast()
		g.mu.Unlock()
		close(g.done)
	})
	return first
}

// watch runs the gate until the session starts or the login ends: it probes login(1), passes it
// the held input a line at a time when it waits for a secret, and ends the login when it waits
// for anything else or the login grace time is over. It logs the outcome.
func (g *loginGate) watch() {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-g.done:
			return
		case <-g.wake:
		case <-t.C:
		}
		pr := g.probe()
		switch pr.state {
		case gateOpen:
			g.openUp()
			return
		case gateAsks, gateForeign:
			g.refuse(pr.state)
			return
		case gateGone:
			g.log.Warn("authentication failed", "reason", "login(1) ended before the session started")
			g.failed()
			g.shut()
			return
		}
		if time.Now().After(g.deadline) {
			g.refuse(gateTimeout)
			return
		}
		if pr.state == gateSecret {
			if step := g.nextStep(); step != nil {
				if wakesReader(&pr.tio, step[len(step)-1]) {
					g.lastPass = pr.switches // the next line waits until login(1) has read this one
				}
				_, _ = g.p.Write(step) // fails only if login(1) is gone, which the next probe sees
			}
		}
		interval := gateWatch
		g.mu.Lock()
		if len(g.held) > 0 {
			interval = gatePoll
		}
		g.mu.Unlock()
		t.Reset(interval)
	}
}

// nextStep takes the held input's first step (see lineLen), or returns nil if none is held.
func (g *loginGate) nextStep() []byte {
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.held) == 0 {
		return nil
	}
	n := lineLen(g.held)
	step := append([]byte(nil), g.held[:n]...)
	g.held = g.held[n:]
	g.room.Broadcast()
	return step
}

// openUp passes the held input on once the session has started, then lets all input through.
func (g *loginGate) openUp() {
	g.log.Info("authentication succeeded")
	if g.onOpen != nil {
		g.onOpen()
	}
	for {
		g.mu.Lock()
		if g.closed {
			g.mu.Unlock()
			return
		}
		take := g.held
		g.held = nil
		if len(take) == 0 {
			g.open = true
			g.room.Broadcast()
			g.mu.Unlock()
			return
		}
		g.room.Broadcast()
		g.mu.Unlock()
		_, _ = g.p.Write(take) // the shell reads it as typed ahead
	}
}

// refuse ends the login for st (gateAsks, gateForeign or gateTimeout): it hangs up login(1)
// and its session.
func (g *loginGate) refuse(st gateState) {
	if g.shut() {
		switch st {
		case gateForeign:
			g.log.Error("login refused: the terminal went to another user; session hung up")
		case gateTimeout:
			g.log.Warn("authentication failed", "reason", "login grace time exceeded; login ended")
		default:
			g.log.Warn("authentication failed",
				"reason", "login(1) asked for something other than a secret (a user name, after a wrong password?); login ended")
		}
		g.failed()
	}
	g.p.Hangup()
}

// failed reports the failed login to onFail (for the per-source penalties).
func (g *loginGate) failed() {
	if g.onFail != nil {
		g.onFail()
	}
}

// Write passes b on: straight to the terminal once the session has started; before, into the
// held input for the watcher (waiting while maxHeld bytes are held). It fails once the login
// has ended.
func (g *loginGate) Write(b []byte) (int, error) {
	g.mu.Lock()
	for !g.open && !g.closed && len(g.held) >= maxHeld {
		g.room.Wait()
	}
	switch {
	case g.closed:
		g.mu.Unlock()
		return 0, errGateClosed
	case g.open:
		g.mu.Unlock()
		return g.p.Write(b)
	}
	g.held = append(g.held, b...)
	g.mu.Unlock()
	select {
	case g.wake <- struct{}{}:
	default:
	}
	return len(b), nil
}

// TryWrite is Write without waiting, for session.Serve's direct path: once the session has
// started it writes what the terminal takes now; before, it takes nothing (n == 0, a nil error:
// "the rest would have to wait"), so that all input goes through Write.
func (g *loginGate) TryWrite(b []byte) (int, error) {
	if g.isOpen() {
		return g.p.TryWrite(b)
	}
	return 0, nil
}

// isOpen reports whether the session has started and all held input is passed on.
func (g *loginGate) isOpen() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.open
}

// FlushesOutput is the PTY's once the session has started (session.FlushPredictor, and the
// classic server's equivalent): a ^C typed into the shell flushes its output, and the server
// keeps what follows the flush until the pty reports it. Before, input is held for the
// watcher, not written now: it predicts nothing.
func (g *loginGate) FlushesOutput(b []byte) bool { return g.isOpen() && g.p.FlushesOutput(b) }

// AppendFlushKeys is the PTY's once the session has started (session.FlushKeyer): the client
// then discards its own terminal's pending output when the user types one of them. Before, a ^C
// is held for login(1) like any input, and the client is told nothing.
func (g *loginGate) AppendFlushKeys(keys []byte) []byte {
	if g.isOpen() {
		return g.p.AppendFlushKeys(keys)
	}
	return keys
}

// OutputMark is the PTY's (session.OutputMarker): output is not gated, and Serve takes the mark
// only before input that FlushesOutput predicts to flush, which it does not before the session.
func (g *loginGate) OutputMark() (read, held int64, err error) { return g.p.OutputMark() }

// ReadOutput, ReadOutputNow, ReadPacket, Resize and Wait are the PTY's: output and window changes
// are not gated.
func (g *loginGate) ReadOutput(b []byte) (int, bool, error)       { return g.p.ReadOutput(b) }
func (g *loginGate) ReadOutputNow(b []byte) (int, bool, error)    { return g.p.ReadOutputNow(b) }
func (g *loginGate) ReadPacket(b []byte) (int, pty.Status, error) { return g.p.ReadPacket(b) }
func (g *loginGate) Resize(w session.WindowSize) error            { return g.p.Resize(w) }
func (g *loginGate) Wait() (*os.ProcessState, error)              { return g.p.Wait() }
func (g *loginGate) Exited() <-chan struct{}                      { return g.p.Exited() }

// SendEOF ends the login if the session has not started: the client has nothing more to say.
func (g *loginGate) SendEOF() error {
	if g.isOpen() {
		return g.p.SendEOF()
	}
	g.refuse(gateAsks)
	return errGateClosed
}

// Hangup stops the gate and hangs up the session.
func (g *loginGate) Hangup() {
	g.shut()
	g.p.Hangup()
}

// Close stops the gate (the held input is dropped) and closes the terminal.
func (g *loginGate) Close() error {
	g.shut()
	return g.p.Close()
}

// Kill kills login(1) (SIGKILL), as the PTY's Kill.
func (g *loginGate) Kill() { g.p.Kill() }

// lineLen returns the length of b's first step: up to and including its first control character
// (which may end a line, or be one: ^D, ^C...), or all of b.
func lineLen(b []byte) int {
	for i, c := range b {
		if c < ' ' || c == 0x7f {
			return i + 1
		}
	}
	return len(b)
}

// wakesReader reports whether the byte c, typed on a terminal with the settings tio, can end a
// reader's read(2): a line end or end-of-file in canonical mode, a signal character, any byte
// otherwise.
func wakesReader(tio *unix.Termios, c byte) bool {
	if tio.Lflag&unix.ICANON == 0 {
		return true
	}
	isCC := func(i int) bool { return tio.Cc[i] != 0 && tio.Cc[i] == c } // 0: disabled
	if tio.Lflag&unix.ISIG != 0 && (isCC(unix.VINTR) || isCC(unix.VQUIT) || isCC(unix.VSUSP)) {
		return true
	}
	switch {
	case c == '\n', isCC(unix.VEOF), isCC(unix.VEOL), isCC(unix.VEOL2):
		return true
	case c == '\r':
		return tio.Iflag&unix.IGNCR == 0 && tio.Iflag&unix.ICRNL != 0
	}
	return false
}

// probeResult is what probe saw.
type probeResult struct {
	state    gateState
	switches int64        // login(1)'s voluntary context switches, for gateSecret
	tio      unix.Termios // the terminal's settings, for gateSecret
}

// probe looks at login(1) and its terminal.
func (g *loginGate) probe() probeResult {
	if r, ok := g.probeTerminal(); ok {
		return r
	}
	if g.afterFirstLook != nil {
		g.afterFirstLook()
	}
	proc := "/proc/" + strconv.Itoa(g.pid)
	if processGone(proc) {
		return probeResult{state: gateGone}
	}
	busy := probeResult{state: gateBusy}
	before, ok := voluntarySwitches(proc)
	if !ok {
		return busy
	}
	fd, ok := blockedInRead(proc)
	if !ok {
		return busy
	}
	if target, err := os.Readlink(proc + "/fd/" + strconv.Itoa(fd)); err != nil || target != g.tty {
		return busy // reading something else (a PAM module's file or pipe)
	}
	tio, queued, err := terminalInput(g.tty)
	if err != nil {
		return probeResult{state: gateGone}
	}
	// Look at the terminal again now that the process is known to be blocked in this read
	// (the switch count below has not moved since): login(1) chowns the terminal before the
	// shell it starts blocks in a read with echo on, and the first look may have come before
	// the chown. Seen as "asks for a user name" on a loaded machine (TestGateTypeahead).
	if r, ok := g.probeTerminal(); ok {
		return r
	}
	if after, ok := voluntarySwitches(proc); !ok || after != before {
		return busy // it woke up meanwhile: look again
	}
	switch {
	case queued > 0:
		return busy // a line it has not read yet
	case tio.Lflag&unix.ECHO != 0:
		return probeResult{state: gateAsks}
	case before <= g.lastPass:
		return busy // not yet woken by the line passed last
	}
	return probeResult{state: gateSecret, switches: before, tio: *tio}
}

// probeTerminal reports the state that the terminal's owner and ctime show, if they show one:
// login(1) has chowned the terminal to the user (the session has started), or to someone
// else, or the terminal is gone.
func (g *loginGate) probeTerminal() (probeResult, bool) {
	var st unix.Stat_t
	if err := unix.Stat(g.tty, &st); err != nil {
		return probeResult{state: gateGone}, true
	}
	if st.Uid != g.startUID || st.Ctim != g.startCtime { // login(1) chowned the terminal
		switch {
		case int(st.Uid) == g.uid:
			return probeResult{state: gateOpen}, true
		case st.Uid != g.startUID:
			return probeResult{state: gateForeign}, true
		}
	}
	return probeResult{}, false
}

// voluntarySwitches returns the voluntary context switches of the process at proc: how many
// times it went to sleep.
func voluntarySwitches(proc string) (int64, bool) {
	b, err := os.ReadFile(proc + "/status")
	if err != nil {
		return 0, false
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "voluntary_ctxt_switches:"); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			return n, err == nil
		}
	}
	return 0, false
}

// processGone reports whether the process at proc ("/proc/PID") has exited.
func processGone(proc string) bool {
	stat, err := os.ReadFile(proc + "/stat")
	if err != nil {
		return true
	}
	i := strings.LastIndexByte(string(stat), ')')
	return i < 0 || i+2 >= len(stat) || stat[i+2] == 'Z' || stat[i+2] == 'X'
}

// blockedInRead reports whether the process at proc is blocked in read(2), and on which fd.
// /proc/PID/syscall reads "NR ARG0 ARG1 ..." (NR decimal, arguments hex) for a process blocked
// in a system call, "running" otherwise.
func blockedInRead(proc string) (fd int, ok bool) {
	b, err := os.ReadFile(proc + "/syscall")
	if err != nil {
		return 0, false
	}
	f := strings.Fields(string(b))
	if len(f) < 2 || f[0] != strconv.Itoa(unix.SYS_READ) {
		return 0, false
	}
	n, err := strconv.ParseUint(strings.TrimPrefix(f[1], "0x"), 16, 31)
	if err != nil {
		return 0, false
	}
	return int(n), true
}

// terminalInput returns the settings of the terminal at path, and how many bytes of input it
// has queued for a reader (complete lines only, in canonical mode).
func terminalInput(path string) (tio *unix.Termios, queued int, err error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NOCTTY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, 0, err
	}
	defer unix.Close(fd)
	if tio, err = unix.IoctlGetTermios(fd, unix.TCGETS); err != nil {
		return nil, 0, err
	}
	if queued, err = unix.IoctlGetInt(fd, unix.TIOCINQ); err != nil {
		return nil, 0, err
	}
	return tio, queued, nil
}
