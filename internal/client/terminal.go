package client

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"

	"golang.org/x/sys/unix"
	"golang.org/x/term"

	"github.com/rlogin-go/rlogin/session"
)

// ttyFd returns the file descriptor behind v and whether it is a terminal.
func ttyFd(v any) (int, bool) {
	f, ok := v.(interface{ Fd() uintptr })
	if !ok {
		return -1, false
	}
	fd := int(f.Fd())
	return fd, term.IsTerminal(fd)
}

// rawTerminal puts a terminal in raw mode and gives it back as it found it. restore is final and
// runs once, whichever way out calls it first (logout, lost connection, signal, panic); a
// suspend leaves raw mode for a while and enters it again.
type rawTerminal struct {
	fd   int
	once sync.Once

	mu     sync.Mutex
	saved  *term.State // the state before the first enter
	raw    bool        // raw mode is on now
	wasRaw bool        // raw mode was ever on
	final  bool        // restore ran: never enter raw mode again

	// Local ^S/^Q flow control in raw mode, for classic rlogin (-c without -8), as netkit rlogin
	// does it: on (if the terminal had it) until the server says the remote side reads ^S/^Q.
	localFlow bool // manage it at all; set before the first enter
	flowOn    bool // the server's last word: on (0x20) or off (0x10)
	origIXON  bool // the terminal had IXON before the first enter
}

func newRawTerminal(fd int) *rawTerminal { return &rawTerminal{fd: fd} }

// enter puts the terminal in raw mode (no echo, no signals from keys, no output processing).
func (t *rawTerminal) enter() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.final || t.raw {
		return nil
	}
	if t.saved == nil && t.localFlow {
		if tio, err := unix.IoctlGetTermios(t.fd, unix.TCGETS); err == nil {
			t.origIXON = tio.Iflag&unix.IXON != 0
		}
	}
	st, err := term.MakeRaw(t.fd)
	if err != nil {
		return fmt.Errorf("client: raw mode: %w", err)
	}
	if t.saved == nil {
		t.saved = st
	}
	t.raw, t.wasRaw = true, true
	t.applyFlowLocked()
	return nil
}

// setLocalFlow turns local ^S/^Q flow control on or off (the classic server's 0x20 and 0x10);
// it only ever turns it on if the terminal had it before rlogin started.
func (t *rawTerminal) setLocalFlow(on bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.flowOn = on
	t.applyFlowLocked()
}

func (t *rawTerminal) applyFlowLocked() {
	if !t.localFlow || !t.raw || t.final {
		return
	}
	tio, err := unix.IoctlGetTermios(t.fd, unix.TCGETS)
	if err != nil {
		return
	}
	if t.flowOn && t.origIXON {
		tio.Iflag |= unix.IXON
	} else {
		tio.Iflag &^= unix.IXON
	}
	_ = unix.IoctlSetTermios(t.fd, unix.TCSETS, tio) // best effort: flow control is a convenience
}

// leave puts the terminal back as it was before enter, for a while (a suspend).
func (t *rawTerminal) leave() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.leaveLocked()
}

func (t *rawTerminal) leaveLocked() {
	if t.raw {
		_ = term.Restore(t.fd, t.saved) // best effort: nothing better to do on a terminal that is gone
		t.raw = false
	}
}

// restore puts the terminal back as it was, for good. Safe to call any number of times, from any
// goroutine.
func (t *rawTerminal) restore() {
	t.once.Do(func() {
		t.mu.Lock()
		defer t.mu.Unlock()
		t.final = true
		t.leaveLocked()
	})
}

// usedRaw reports whether raw mode was ever on.
func (t *rawTerminal) usedRaw() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.wasRaw
}

// windowSize reads the window size of the first terminal among fds, or 24x80 if none has one.
func windowSize(fds []int) session.WindowSize {
	for _, fd := range fds {
		ws, err := unix.IoctlGetWinsize(fd, unix.TIOCGWINSZ)
		if err == nil && ws.Row > 0 && ws.Col > 0 {
			return session.WindowSize{Rows: ws.Row, Cols: ws.Col, XPixel: ws.Xpixel, YPixel: ws.Ypixel}
		}
	}
	return session.WindowSize{Rows: 24, Cols: 80}
}

// flushOutput discards what the terminal has not yet shown (tcflush TCOFLUSH), after the remote side
// discarded its own pending output (Ctrl-C during a flood).
func flushOutput(fd int) {
	_ = unix.IoctlSetInt(fd, unix.TCFLSH, unix.TCOFLUSH) // best effort
	// Linux frees a pty's buffered output on TCOFLUSH but does not wake a writer waiting for
	// room in it (pty_flush_buffer): our output writer, still writing what came before the flush,
	// then waits for a wake-up that only a read of the other side brings, and the other side has
	// nothing left to read. Seen as a client stuck in write(2) after Ctrl-C during a flood, with
	// its terminal empty (e2e TestClassicOurRloginToOurRlogind under -race, about 1 run in 12).
	// Setting the same settings again wakes the terminal's writers (n_tty_set_termios).
	if tio, err := unix.IoctlGetTermios(fd, unix.TCGETS); err == nil {
		_ = unix.IoctlSetTermios(fd, unix.TCSETS, tio) // best effort
	}
}

// reopenTerminal opens the terminal behind fd once more, non-blocking, with mode (O_RDONLY or
// O_WRONLY): a new open file description, so that O_NONBLOCK does not reach the caller's
// descriptor, which the login shell shares. It fails unless fd is a terminal.
func reopenTerminal(fd, mode int) (int, error) {
	name, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(fd))
	if err != nil {
		return -1, fmt.Errorf("client: reopen terminal: %w", err)
	}
	nfd, err := unix.Open(name, mode|unix.O_NOCTTY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("client: reopen terminal: %w", err)
	}
	var a, b unix.Stat_t
	if unix.Fstat(fd, &a) != nil || unix.Fstat(nfd, &b) != nil || a.Rdev != b.Rdev || a.Mode&unix.S_IFMT != unix.S_IFCHR {
		_ = unix.Close(nfd)
		return -1, errors.New("client: reopen terminal: not the same terminal")
	}
	return nfd, nil
}

// reopenPipe opens the pipe behind fd (whose status is st) once more for writing, non-blocking,
// as reopenTerminal does a terminal: a new open file description, so that O_NONBLOCK does not
// reach the caller's descriptor, which other processes (a shell pipeline) may share.
func reopenPipe(fd int, st *unix.Stat_t) (int, error) {
	nfd, err := unix.Open("/proc/self/fd/"+strconv.Itoa(fd), unix.O_WRONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("client: reopen pipe: %w", err)
	}
	var b unix.Stat_t
	if unix.Fstat(nfd, &b) != nil || b.Dev != st.Dev || b.Ino != st.Ino {
		_ = unix.Close(nfd)
		return -1, errors.New("client: reopen pipe: not the same pipe")
	}
	return nfd, nil
}
