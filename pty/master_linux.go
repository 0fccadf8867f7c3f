package pty

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"syscall"
	"unsafe"

	"github.com/rlogin-go/rlogin/internal/rawio"
	"golang.org/x/sys/unix"
)

// ptyMaster is the master side of a pty in packet mode, with the terminal's half of a session:
// output, input, window size, close. PTY (a child this process started) and Attached (a child
// another process started) embed it, so both serve a session the same way on the same system calls.
//
// Calls to ReadOutput, ReadOutputNow and ReadPacket are serialized (one output pump is expected);
// the other methods may run concurrently with them and with each other.
type ptyMaster struct {
	master *os.File        // non-blocking, and not in Go's poller: see masterFile
	raw    syscall.RawConn // master's: every system call on the master goes through its Control
	output *rawio.Watch    // waits for output (on demand: only while ReadOutput waits)
	exited <-chan struct{} // closed once the child has exited (for PTY, by watchExit)

	writeMu sync.Mutex // one Write or SendEOF at a time, and TryWrite only between them

	roomMu sync.Mutex   // guards the two fields below; never held while waiting
	room   *rawio.Watch // waits for room for input; made by the first Write that must wait
	closed bool         // Close has been called: no new room watch

	readMu   sync.Mutex // one ReadOutput at a time; guards the fields below
	small    [2]byte    // packet buffer for callers passing a 1-byte b
	drained  int        // bytes read since the child exited
	finished bool       // io.EOF has been returned

	// countMu guards outputRead and each read(2) that adds to it, not the wait for output, so
	// that OutputMark (from another goroutine) pairs the count with the line discipline's.
	countMu    sync.Mutex
	outputRead int64 // output bytes ReadOutput, ReadOutputNow and ReadPacket have returned

	closeOnce sync.Once
	closeErr  error

	// The state of the calls each keystroke makes, reused so that they allocate nothing: a
	// closure over a call's own variables is a new closure and new heap variables at each
	// call, and each allocation after a pause is a cold one (see package rawio's op).
	rd     masterCall // readPacket's; under readMu
	wr     masterCall // writeNow's; under writeMu
	tiosMu sync.Mutex // flushKeys's, below
	tios   unix.Termios
	tiosOK bool
	tiosFn func(fd uintptr)
}

// masterCall is the state of one read or write of the master: the buffer, the result, and
// the callbacks, bound once.
type masterCall struct {
	b   []byte
	n   int
	err error
	fn  func(fd uintptr) // the system call, for raw.Control
	try func() bool      // readPacket's try for the output Watch
}

// maxDrainAfterExit bounds the output ReadOutput still returns once the child has
// exited. Everything the child itself wrote fits in the kernel's pty buffers
// (a few tens of KiB), so this never cuts the shell's last output; it only stops
// a background process that keeps writing to the terminal from holding the
// session open forever.
const maxDrainAfterExit = 1 << 20

// prepareMaster makes the master m ready for a session: the non-blocking copy that the PTY uses
// (masterFile), with the window size sz, in packet mode, and the Watch that ReadOutput waits on.
// It closes m, and on failure what it made.
func prepareMaster(m *os.File, sz Size) (*os.File, syscall.RawConn, *rawio.Watch, error) {
	master, err := masterFile(m)
	if err != nil {
		return nil, nil, nil, err
	}
	raw, output, err := packetMaster(master, func(fd int) error {
		ws := unix.Winsize{Row: sz.Rows, Col: sz.Cols, Xpixel: sz.XPixel, Ypixel: sz.YPixel}
		if err := unix.IoctlSetWinsize(fd, unix.TIOCSWINSZ, &ws); err != nil {
			return fmt.Errorf("set window size: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, nil, nil, fmt.Errorf("pty: start: %w", err)
	}
	return master, raw, output, nil
}

// packetMaster runs setup on the descriptor of master, a pty master out of Go's poller, puts it
// into packet mode, and returns its RawConn and the Watch that ReadOutput waits on. On failure
// it closes master.
func packetMaster(master *os.File, setup func(fd int) error) (syscall.RawConn, *rawio.Watch, error) {
	raw, err := master.SyscallConn()
	if err != nil {
		_ = master.Close() // best effort
		return nil, nil, err
	}
	var output *rawio.Watch
	err = control(raw, func(fd int) error {
		if err := setup(fd); err != nil {
			return err
		}
		if err := unix.IoctlSetPointerInt(fd, unix.TIOCPKT, 1); err != nil {
			return fmt.Errorf("set packet mode: %w", err)
		}
		// Status packets signal EPOLLIN too, and a hang-up always ends a wait.
		output, err = rawio.NewWatch(fd, unix.EPOLLIN, rawio.WatchWhileWaiting)
		return err
	})
	if err != nil {
		_ = master.Close() // best effort
		return nil, nil, err
	}
	return raw, output, nil
}

// masterFile returns a non-blocking copy of the master m that Go's poller does not
// manage, and closes m.
//
// creack/pty's Open calls m.Fd() for its ioctls, and Fd puts an *os.File into
// blocking mode for good: a Read then blocks a thread in read(2), and Close does not
// interrupt it (for an idle shell, never). The copy is non-blocking, and the PTY waits
// for it through rawio Watches, which a Close or the child's exit interrupt.
//
// Why not Go's poller: it registers the master for input and output, edge-triggered,
// for as long as it is open, and the master signals every chunk the shell writes.
// During a flood of output, while the output pump is busy reading and sending, each
// chunk woke the thread that waits in the poller for nothing (measured with two
// scheduling slots: 81K epoll_pwait calls in one benchmark round against 17K with one
// slot, and 5.3-5.8 against 4.2 CPU seconds per GB); a Watch watches the master only
// while ReadOutput waits. The file is made before O_NONBLOCK is set, which keeps it
// out of the poller; its Control still guards the descriptor against a concurrent
// Close. F_DUPFD_CLOEXEC keeps the master out of the child (os/exec does not close
// inherited descriptors).
func masterFile(m *os.File) (*os.File, error) {
	defer func() { _ = m.Close() }() // best effort; the copy is used from now on
	fd, err := unix.FcntlInt(m.Fd(), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("pty: dup master: %w", err)
	}
	master := os.NewFile(uintptr(fd), m.Name()) // blocking yet: not in the poller
	if err := unix.SetNonblock(fd, true); err != nil {
		_ = master.Close() // best effort
		return nil, fmt.Errorf("pty: set master non-blocking: %w", err)
	}
	return master, nil
}

// control runs f on the descriptor behind rc. The descriptor stays valid while f
// runs, even if Close is called meanwhile.
func control(rc syscall.RawConn, f func(fd int) error) error {
	var ferr error
	if err := rc.Control(func(fd uintptr) { ferr = f(int(fd)) }); err != nil {
		// Control fails only once the file is closed, with an internal error
		// ("use of closed file") that does not match os.ErrClosed: report that one.
		return os.ErrClosed
	}
	return ferr
}

// ReadOutput reads the child's output into b with one read(2); callers should pass
// a large buffer (32 KiB). The packet-mode status byte is removed, and status packets
// that concern only flow control are skipped. flushed reports that the line
// discipline discarded output that had not been read yet (TIOCPKT_FLUSHWRITE, after
// an interrupt character such as ^C); such a call returns no bytes, and the bytes
// later calls return were written after the flush.
//
// ReadOutput returns io.EOF when the slave side is closed (read(2) fails with EIO),
// and also once the child has exited and no output is pending any more, so that a
// background process that keeps the terminal open cannot keep the session alive.
// All output the child wrote before it exited is returned before io.EOF.
// After Close, ReadOutput (even one already blocked) returns an error matching os.ErrClosed.
func (p *ptyMaster) ReadOutput(b []byte) (n int, flushed bool, err error) {
	if len(b) == 0 {
		return 0, false, nil
	}
	for {
		n, st, err := p.ReadPacket(b)
		if n > 0 || err != nil {
			return n, false, err
		}
		if st&StatusFlushWrite != 0 {
			return 0, true, nil
		}
		// Another status change (flow control, input flush): nothing for the caller.
	}
}

// ReadPacket is ReadOutput for callers that want every packet-mode status change,
// as a classic rlogind does to forward flow-control changes to its client. Each
// call does one read(2) and returns either n > 0 bytes of output (status 0) or
// n == 0 and the status bits of one status packet (never 0): StatusFlushWrite,
// StatusNoStop, StatusDoStop and the others, possibly several at once. Its end of
// file and errors are ReadOutput's. ReadPacket and ReadOutput calls are serialized.
func (p *ptyMaster) ReadPacket(b []byte) (n int, status Status, err error) {
	p.readMu.Lock()
	defer p.readMu.Unlock()
	if len(b) == 0 {
		return 0, 0, nil
	}
	buf := b
	if len(b) == 1 {
		buf = p.small[:] // room for the status byte and one byte of data
	}
	for {
		if p.finished {
			return 0, 0, io.EOF
		}
		n, err := p.readPacket(buf)
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, syscall.EIO) {
				p.finished = true
				return 0, 0, io.EOF
			}
			return 0, 0, fmt.Errorf("pty: read output: %w", err)
		}
		if n == 0 {
			p.finished = true // read(2) returned 0: end of file
			return 0, 0, io.EOF
		}
		if buf[0] == unix.TIOCPKT_DATA {
			if n == 1 {
				continue // an empty data packet: nothing to report
			}
			return copy(b, buf[1:n]), 0, nil // copy handles the overlap when buf is b
		}
		return 0, Status(buf[0]), nil
	}
}

// readPacket does one read(2) of a packet-mode packet into buf: waiting for output
// while the child runs, without waiting once it has exited. It returns io.EOF when
// the child has exited and nothing is pending.
func (p *ptyMaster) readPacket(buf []byte) (int, error) {
	select {
	case <-p.exited:
		return p.readPending(buf)
	default:
	}
	r := &p.rd
	if r.fn == nil {
		r.fn = func(fd uintptr) { r.n, r.err = p.readCounted(int(fd), r.b) }
		r.try = func() bool {
			if p.raw.Control(r.fn) != nil {
				r.err = os.ErrClosed // as control reports it
			}
			return r.err != unix.EAGAIN
		}
	}
	r.b, r.n, r.err = buf, 0, nil
	err := p.output.Do(r.try)
	n, rerr := r.n, r.err
	r.b, r.err = nil, nil
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		// Only watchExit stops the watch, after closing p.exited.
		return p.readPending(buf)
	case err != nil:
		return 0, err // os.ErrClosed: Close closed the watch
	case rerr == nil && n == 0:
		return 0, io.EOF
	}
	return n, rerr
}

// readCounted does one read(2) of a packet from fd into buf and counts the output it returns
// (see OutputMark). A raw system call: see package rawio.
func (p *ptyMaster) readCounted(fd int, buf []byte) (int, error) {
	p.countMu.Lock()
	defer p.countMu.Unlock()
	n, err := rawio.Read(fd, buf)
	if err == nil && n > 1 && buf[0] == unix.TIOCPKT_DATA {
		p.outputRead += int64(n - 1) // the status byte is not output
	}
	return n, err
}

// OutputMark returns, taken together, the count of output bytes that ReadOutput, ReadOutputNow
// and ReadPacket have returned so far (read, since the pty was made) and of those ready to read
// in the line discipline's read buffer now (held): the read+held bytes of output are older than
// anything written to the terminal after this call.
//
// A session server takes it before it writes input that makes the terminal flush (^C): Linux's
// flush empties the buffers between the pty's two sides, but not the up to 4095 bytes that the
// master's line discipline holds already, which reads return after the flush's report. The
// output before the mark is stale, as the flushed output is.
func (p *ptyMaster) OutputMark() (read, held int64, err error) {
	p.countMu.Lock()
	defer p.countMu.Unlock()
	var inq int32
	err = control(p.raw, func(fd int) error {
		// Raw, as it runs per flushing keystroke: TIOCINQ copies a count and returns.
		_, _, e := unix.RawSyscall(unix.SYS_IOCTL, uintptr(fd), unix.TIOCINQ, uintptr(unsafe.Pointer(&inq)))
		if e != 0 {
			return e
		}
		return nil
	})
	if err != nil {
		return 0, 0, fmt.Errorf("pty: output mark: %w", err)
	}
	return p.outputRead, int64(inq), nil
}

// readPending reads output that is already pending, once the child has exited.
//
// The child's writes completed before it exited, so its output is in the pty's
// buffers by now. On Linux a read that finds the line discipline empty first waits
// for the pty's buffer work to move any queued bytes in (tty_buffer_flush_work in
// n_tty_read) and only then fails with EAGAIN, so EAGAIN here means that nothing the
// child wrote is left.
func (p *ptyMaster) readPending(buf []byte) (int, error) {
	if p.drained >= maxDrainAfterExit {
		return 0, io.EOF
	}
	var n int
	err := control(p.raw, func(fd int) error {
		var err error
		n, err = p.readCounted(fd, buf)
		return err
	})
	if err == unix.EAGAIN {
		return 0, io.EOF
	}
	if err != nil {
		return 0, err
	}
	p.drained += n
	return n, nil
}

// Write writes b, the user's input, to the terminal, waiting while the terminal's
// input buffer is full.
func (p *ptyMaster) Write(b []byte) (int, error) {
	p.writeMu.Lock()
	defer p.writeMu.Unlock()
	n, err := p.writeAll(b)
	if err != nil {
		return n, fmt.Errorf("pty: write: %w", err)
	}
	return n, nil
}

// writeAll writes all of b, waiting for room; under writeMu.
func (p *ptyMaster) writeAll(b []byte) (int, error) {
	n, err := p.writeNow(b)
	if err != nil || n == len(b) {
		return n, err
	}
	room, err := p.roomWatch()
	if err != nil {
		return n, err
	}
	werr := room.Do(func() bool {
		var m int
		m, err = p.writeNow(b[n:])
		n += m
		return err != nil || n == len(b)
	})
	if werr != nil {
		return n, werr // os.ErrClosed: Close closed the watch
	}
	return n, err
}

// roomWatch returns the watch for room in the terminal's input buffer, made the first
// time: input rarely fills the buffer, and a watch costs a descriptor.
func (p *ptyMaster) roomWatch() (*rawio.Watch, error) {
	p.roomMu.Lock()
	defer p.roomMu.Unlock()
	if p.closed {
		return nil, os.ErrClosed
	}
	if p.room == nil {
		err := control(p.raw, func(fd int) error {
			var err error
			p.room, err = rawio.NewWatch(fd, unix.EPOLLOUT, rawio.WatchWhileWaiting)
			return err
		})
		if err != nil {
			return nil, err
		}
	}
	return p.room, nil
}

// writeNow writes as much of b as the terminal takes now, without waiting.
func (p *ptyMaster) writeNow(b []byte) (int, error) {
	w := &p.wr
	if w.fn == nil {
		w.fn = func(fd uintptr) {
			for w.n < len(w.b) {
				m, err := rawio.Write(int(fd), w.b[w.n:])
				if err == unix.EAGAIN {
					return
				}
				if err != nil {
					w.err = err
					return
				}
				w.n += m
			}
		}
	}
	w.b, w.n, w.err = b, 0, nil
	if p.raw.Control(w.fn) != nil {
		w.err = os.ErrClosed // as control reports it
	}
	n, err := w.n, w.err
	w.b, w.err = nil, nil
	return n, err
}

// TryWrite writes as much of b as the terminal takes now, without waiting: it
// returns n < len(b) and a nil error when the terminal's input buffer is full
// (its program reads no input), and takes nothing while a Write or SendEOF is in
// progress, whose input goes first. A session server writes keystrokes this way from
// the goroutine that reads its connection, so that a keystroke reaches the
// terminal without a hop to another goroutine, and hands only what is left to a
// writer that may wait.
func (p *ptyMaster) TryWrite(b []byte) (int, error) {
	if !p.writeMu.TryLock() {
		return 0, nil // a Write is in progress, perhaps waiting for room
	}
	defer p.writeMu.Unlock()
	n, err := p.writeNow(b)
	if err != nil {
		return n, fmt.Errorf("pty: write: %w", err)
	}
	return n, nil
}

// Resize sets the terminal's window size; the kernel sends SIGWINCH to the
// terminal's foreground process group when the size changes.
func (p *ptyMaster) Resize(sz Size) error {
	err := control(p.raw, func(fd int) error {
		ws := unix.Winsize{Row: sz.Rows, Col: sz.Cols, Xpixel: sz.XPixel, Ypixel: sz.YPixel}
		return unix.IoctlSetWinsize(fd, unix.TIOCSWINSZ, &ws)
	})
	if err != nil {
		return fmt.Errorf("pty: resize: %w", err)
	}
	return nil
}

// SendEOF writes the terminal's end-of-file character (VEOF in the terminal's
// current settings, usually ^D), so that a program reading a line in canonical
// mode sees end of file. It fails if VEOF is disabled.
func (p *ptyMaster) SendEOF() error {
	var veof byte
	err := control(p.raw, func(fd int) error {
		t, err := unix.IoctlGetTermios(fd, unix.TCGETS) // the master reports the slave's termios
		if err != nil {
			return err
		}
		veof = t.Cc[unix.VEOF]
		return nil
	})
	if err != nil {
		return fmt.Errorf("pty: send EOF: %w", err)
	}
	if veof == 0 { // _POSIX_VDISABLE
		return errors.New("pty: send EOF: the terminal's VEOF character is disabled")
	}
	p.writeMu.Lock()
	defer p.writeMu.Unlock()
	if _, err := p.writeAll([]byte{veof}); err != nil {
		return fmt.Errorf("pty: send EOF: %w", err)
	}
	return nil
}

// FlushesOutput reports whether input b, just written, makes the line discipline discard the
// output not read yet: b holds one of the terminal's signal characters (VINTR, VQUIT, VSUSP, in
// its current settings) while ISIG is set and NOFLSH is not, as for ^C at a shell. A session
// server asks it to know whether to wait for the flush before it answers the client (package
// session's FlushPredictor); a program that reads ^C as a key (signals off) flushes nothing. It
// reports false when the settings cannot be read.
func (p *ptyMaster) FlushesOutput(b []byte) bool {
	var keys [3]byte
	for _, c := range p.AppendFlushKeys(keys[:0]) {
		if bytes.IndexByte(b, c) >= 0 {
			return true
		}
	}
	return false
}

// AppendFlushKeys appends to keys the characters that, typed now, make the line discipline
// discard the output not read yet (FlushesOutput), and returns the extended slice: the
// terminal's VINTR, VQUIT and VSUSP while ISIG is set and NOFLSH is not, without disabled ones
// and repeats, in that order (at most 3); none when the settings cannot be read. A session
// server announces them to a client before the output produced under these settings (package
// session's FlushKeyer), so that the client can discard its own terminal's output at the
// keystroke, as the line discipline does. It runs per frame of output: one TCGETS, a raw
// system call, and nothing allocated when keys has room for 3 more.
func (p *ptyMaster) AppendFlushKeys(keys []byte) []byte {
	p.tiosMu.Lock()
	defer p.tiosMu.Unlock()
	if p.tiosFn == nil {
		p.tiosFn = func(fd uintptr) {
			// The master reports the slave's termios.
			p.tiosOK = rawio.TermiosInto(int(fd), &p.tios) == nil
		}
	}
	p.tiosOK = false
	_ = p.raw.Control(p.tiosFn) // a failure leaves tiosOK false
	t := &p.tios
	if !p.tiosOK || t.Lflag&unix.ISIG == 0 || t.Lflag&unix.NOFLSH != 0 {
		return keys
	}
	for _, c := range [...]byte{t.Cc[unix.VINTR], t.Cc[unix.VQUIT], t.Cc[unix.VSUSP]} {
		if c != 0 && bytes.IndexByte(keys, c) < 0 { // 0: _POSIX_VDISABLE
			keys = append(keys, c)
		}
	}
	return keys
}

// Close closes the master side of the terminal. A pending ReadOutput or Write
// returns an error matching os.ErrClosed. The kernel then hangs up the slave side:
// the child's session gets SIGHUP. Close does not reap the child; call Wait.
// Close is idempotent: later calls return the first call's result.
func (p *ptyMaster) Close() error {
	p.closeOnce.Do(func() {
		p.roomMu.Lock()
		p.closed = true
		room := p.room
		p.roomMu.Unlock()
		// The watches first, which ends a ReadOutput or Write waiting on them (closing a
		// watch waits for that), and not under roomMu, which nothing waits under.
		if room != nil {
			_ = room.Close()
		}
		_ = p.output.Close()
		if err := p.master.Close(); err != nil {
			p.closeErr = fmt.Errorf("pty: close: %w", err)
		}
	})
	return p.closeErr
}
