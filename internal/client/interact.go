package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rlogin-go/rlogin/session"
)

// inputBufferSize is how much typed or piped input one read takes; one read becomes one write to
// the session (one frame), so a keystroke leaves at once and a paste or a pipe moves in big chunks.
// A command's input (a bulk copy, as often as not) is read in bigger pieces, commandInputSize:
// fewer reads, each split into the protocol's largest frames.
const (
	inputBufferSize  = 32 << 10
	commandInputSize = 128 << 10
)

// remoteSession is what interact needs of a started session, secure or classic.
type remoteSession interface {
	Resize(session.WindowSize) error
	Wait() error // nil after a normal end
	Close() error
}

// suspender is a session whose keepalive must know that rlogin stops (~^Z): *session.Client.
type suspender interface {
	Suspend() error
	Continued()
}

// interact runs the started session: raw mode, the input pump and the signal handler, until the
// session ends; then it puts the terminal back and reports how the session ended.
func (r *runner) interact(ctx context.Context, stdinPipe io.WriteCloser) int {
	if r.inTTY && r.tty == nil && !r.pipedCommand() {
		r.tty = newRawTerminal(r.inFd)
	}
	defer r.restoreTerminal()
	defer r.restoreOnPanic()
	// The handlers go in before raw mode, so no signal can end rlogin with the terminal raw.
	signals := r.watchSignals(ctx)
	r.enterRawMode()
	input := r.startInput(stdinPipe)

	waitErr := r.sess.Wait()

	// The terminal goes back before the handlers go: from then on such a signal kills rlogin the
	// default way, and must find the terminal as rlogin found it.
	r.restoreTerminal()
	r.stopWatching(signals)
	input.stop()
	if r.rc != nil {
		r.rc.input.wg.Wait() // its writes fail now that the session has ended
	}
	code := r.ended(waitErr)
	if r.hangUpSIGHUP != nil { // set by the goroutines that ended above (hangUp)
		r.stopSignal(r.hangUpSIGHUP)
	}
	return code
}

// restoreOnPanic is deferred by every goroutine of a session, so that a panic, which ends the
// process, leaves the terminal as rlogin found it; it panics again with the same value.
func (r *runner) restoreOnPanic() {
	if p := recover(); p != nil {
		r.restoreTerminal()
		panic(p)
	}
}

// enterRawMode puts the terminal, if standard input is one, in raw mode, and then lets the remote
// output through if it was held until then.
func (r *runner) enterRawMode() {
	if r.tty != nil {
		if err := r.tty.enter(); err != nil {
			fmt.Fprintf(r.stderr, "rlogin: %s\n", plainText(err))
		}
	}
	if r.releaseOutput != nil {
		r.releaseOutput() // the terminal is raw now: the remote output may show
	}
}

// signalWatch is the signal handler of one session: its channels and its goroutine.
type signalWatch struct {
	term  chan os.Signal // SIGHUP, SIGINT, SIGQUIT, SIGTERM: they end the session
	other chan os.Signal // SIGWINCH, SIGPIPE
	done  chan struct{}  // closed by stopWatching
	wg    sync.WaitGroup
}

// catchSignals installs the handlers; a signal that comes waits in the channels until
// watchSignals starts carrying them out.
func (r *runner) catchSignals() *signalWatch {
	w := &signalWatch{term: make(chan os.Signal, 1), other: make(chan os.Signal, 4), done: make(chan struct{})}
	for _, sig := range []os.Signal{unix.SIGHUP, unix.SIGINT, unix.SIGQUIT, unix.SIGTERM} {
		if !signal.Ignored(sig) { // as netkit's setsignal: one ignored at start (nohup, &) stays so
			signal.Notify(w.term, sig)
		}
	}
	signal.Notify(w.other, unix.SIGPIPE)
	if (r.inTTY || r.outTTY) && !r.pipedCommand() {
		signal.Notify(w.other, unix.SIGWINCH)
	}
	return w
}

// uncatchSignals removes the handlers of a session that did not start, and lets a signal that
// came meanwhile end rlogin, as it would have without them.
func (r *runner) uncatchSignals(w *signalWatch) {
	r.stopSignal(w.term)
	r.stopSignal(w.other)
	select {
	case sig := <-w.term:
		signal.Reset(sig)
		_ = unix.Kill(unix.Getpid(), sig.(unix.Signal))
	default:
	}
}

// watchSignals starts the goroutine that carries out the handlers (handleSignals), installing
// them first unless the session's start did (r.caught); stopWatching removes them and waits for
// its goroutine.
func (r *runner) watchSignals(ctx context.Context) *signalWatch {
	w := r.caught
	r.caught = nil
	if w == nil {
		w = r.catchSignals()
	}
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		r.handleSignals(ctx, w.term, w.other, w.done)
	}()
	return w
}

// stopWatching removes the handlers that watchSignals installed and waits for its goroutine.
func (r *runner) stopWatching(w *signalWatch) {
	r.stopSignal(w.term)
	r.stopSignal(w.other)
	close(w.done)
	w.wg.Wait()
}

// inputPump is the goroutine that copies standard input to the session (pumpInput), and the
// reader it can be stopped through.
type inputPump struct {
	reader stoppableReader // nil when standard input is read as it is
	done   chan struct{}   // closed when the goroutine has returned
}

// startInput starts the goroutine that copies standard input to stdinPipe, with the escapes.
func (r *runner) startInput(stdinPipe io.WriteCloser) *inputPump {
	p := &inputPump{done: make(chan struct{})}
	in := r.stdin
	if r.inFd >= 0 {
		if p.reader = r.inputReader(); p.reader != nil {
			in = p.reader
		}
	}
	go func() {
		defer close(p.done)
		r.pumpInput(in, stdinPipe, newEscaper(r.opts.EscapeChar, !r.opts.NoEscape))
	}()
	return p
}

// stop ends the pump and waits for it. Without a stoppable reader, the pump ends at the end of
// standard input or when the session is gone (Run's documented limit for such readers).
func (p *inputPump) stop() {
	if p.reader == nil {
		<-p.done
		return
	}
	p.reader.stop()
	<-p.done
	p.reader.close()
}

// stoppableReader reads standard input until stop; close releases it once no Read runs.
type stoppableReader interface {
	io.Reader
	stop()
	close()
}

// inputReader returns the reader of standard input that the session can stop: a terminal
// through Go's poller, anything else through poll(2) in a thread of its own; nil if neither
// can be set up (then standard input is read as it is).
func (r *runner) inputReader() stoppableReader {
	if r.inTTY {
		pr, err := newPollReader(r.inFd)
		if err == nil {
			return pr
		}
		r.debugf("reading the terminal through poll(2): %v", err)
	}
	fr, err := newFdReader(r.inFd)
	if err != nil {
		r.debugf("reading standard input directly: %v", err)
		return nil
	}
	return fr
}

// restoreTerminal gives the terminal back as rlogin found it; only the first call does anything.
func (r *runner) restoreTerminal() {
	if r.tty != nil {
		r.tty.restore()
	}
}

// handleSignals is the goroutine that turns signals into actions while the session runs.
func (r *runner) handleSignals(ctx context.Context, termC chan os.Signal, otherC <-chan os.Signal, done <-chan struct{}) {
	defer r.restoreOnPanic()
	ctxDone := ctx.Done()
	termRecv := (<-chan os.Signal)(termC)
	for {
		select {
		case <-done:
			return
		case s := <-otherC:
			if s == unix.SIGWINCH {
				_ = r.sess.Resize(r.windowSize()) // fails only once the session is ending
			}
			// SIGPIPE: the write that caused it fails with EPIPE, which ends the session.
		case s := <-termRecv:
			if r.passSignal(s) {
				continue
			}
			// Put the terminal back first, then end the session; Run returns 128+n (255 for a
			// hang-up that leaves the session detached). A second such signal finds no handler
			// and kills rlogin the default way.
			r.restoreTerminal()
			r.stopSignal(termC)
			termRecv = nil
			if s == unix.SIGHUP && r.hangUp() {
				continue
			}
			if sig, ok := s.(syscall.Signal); ok {
				r.signaled.Store(int32(sig))
			}
			_ = r.sess.Close()
		case <-ctxDone:
			ctxDone = nil
			r.canceled.Store(true)
			_ = r.sess.Close()
		}
	}
}

// pumpInput is the goroutine that copies standard input to the session: one read, escapes taken
// out, one write. At the end of input it half-closes the session's input.
func (r *runner) pumpInput(in io.Reader, w io.WriteCloser, esc *escaper) {
	defer r.restoreOnPanic()
	size := inputBufferSize
	if r.opts.Command != "" {
		size = commandInputSize
	}
	buf := make([]byte, size)
	var out []byte
	// Converted once: each conversion of an interface to another looks the pair up in the
	// runtime's table, cold after a pause (its cache per call site fills only after about a
	// thousand conversions, many minutes of typing).
	var fw io.Writer = w
	for {
		n, err := in.Read(buf)
		if n > 0 && !r.forward(buf[:n], fw, esc, &out) {
			return
		}
		if err != nil {
			if errors.Is(err, errInputStopped) || r.inTTY && r.hangUp() {
				return
			}
			r.debugf("end of input (%v): closing the session's input", err)
			_ = w.Close()
			return
		}
	}
}

// hangUp handles a hang-up of rlogin's terminal (its read failed, or SIGHUP came) when the server
// keeps the session without its client: like a lost connection, it drops the connection without
// the end of input, which the server would give the shell as ^D (logging it out), so that the
// session stays detached for rlogin -R. It reports false when the server would not keep the
// session (no resume: an old server, -o Resume=no, -c): then the hang-up ends it as before.
func (r *runner) hangUp() bool {
	if !r.resumable() {
		return false
	}
	if !r.hungUp.Swap(true) {
		r.debugf("the terminal hung up: leaving the session detached")
		// The kernel's SIGHUP for this hang-up may come after rlogin read EIO, and then after
		// interact removed the handlers: Linux wakes the terminal's readers before it signals
		// the session leader (pty_close, then tty_vhangup), and on a loaded machine rlogin got
		// that far first and was killed by the SIGHUP instead of exiting 255 (TestHangupDetaches,
		// 3 runs in 30). So SIGHUP stays caught, and dropped, until interact returns. Not by
		// signal.Ignore: the runtime forwards a signal that comes while it switches one to
		// ignored to the default action, and the SIGHUP comes just then (also seen).
		if !signal.Ignored(unix.SIGHUP) { // nohup: it stays ignored
			r.hangUpSIGHUP = make(chan os.Signal, 1)
			signal.Notify(r.hangUpSIGHUP, unix.SIGHUP)
		}
	}
	_ = r.sess.Close()
	return true
}

// resumable reports whether the server keeps this session when its connection goes: then
// closing the connection leaves the session detached, for rlogin -R.
func (r *runner) resumable() bool {
	rs, ok := r.sess.(interface {
		Resumable() (session.SessionID, time.Duration, bool)
	})
	if !ok {
		return false
	}
	_, _, on := rs.Resumable()
	return on
}

// forward sends p to the session, carrying out the escapes in it. It reports false when the pump
// should stop (the user disconnected or the session is gone).
func (r *runner) forward(p []byte, w io.Writer, esc *escaper, out *[]byte) bool {
	if !esc.enabled {
		// No escape to watch for while reconnecting: the input waits in the session's Write
		// (which keeps what the server has not got), however much of it there is.
		_, err := w.Write(p)
		return err == nil
	}
	for len(p) > 0 {
		var cmd escapeCmd
		var n int
		*out, cmd, n = esc.scan((*out)[:0], p)
		p = p[n:]
		if len(*out) > 0 && !r.held(*out) {
			if _, err := w.Write(*out); err != nil {
				return false
			}
		}
		switch cmd {
		case escDisconnect:
			r.disconnected.Store(true)
			_ = r.sess.Close()
			return false
		case escSuspend:
			r.suspend()
		case escHelp:
			r.leaveStatus()
			r.stdout.writeLocal(r.stderr, escapeHelp(r.opts.EscapeChar))
			r.repaintStatus()
		}
	}
	return true
}

// suspend stops rlogin as ~^Z asks: terminal back to normal, SIGTSTP to itself; once continued,
// raw mode again and the window size, which may have changed meanwhile.
func (r *runner) suspend() {
	r.leaveStatus()
	r.stdout.writeLocal(r.stderr, escapeName(r.opts.EscapeChar)+"^Z [suspend rlogin]\r\n")
	r.tty.leave()
	// A secure session tells the server first, so that its keepalive waits for us however
	// long we are stopped (a classic one has no keepalive).
	sc, hasKeepalive := r.sess.(suspender)
	if hasKeepalive {
		_ = sc.Suspend() // a failure shows in Wait
	}
	if err := stopSelf(); err != nil {
		r.debugf("suspend: %v", err)
	}
	if hasKeepalive {
		sc.Continued()
	}
	if err := r.tty.enter(); err != nil {
		r.debugf("%v", err)
	}
	_ = r.sess.Resize(r.windowSize())
	r.repaintStatus()
}

// leaveStatus moves below the status line, if rlogin is reconnecting, for a local message.
func (r *runner) leaveStatus() {
	if r.rc != nil {
		r.rc.status.leave()
	}
}

// repaintStatus draws the status line again below a local message, if rlogin is reconnecting.
func (r *runner) repaintStatus() {
	if r.rc != nil {
		r.rc.status.repaint()
	}
}

// stopSelf stops rlogin with SIGTSTP, for which it has no handler, and returns once it has been
// continued (at once if its process group is orphaned: the kernel then discards the stop). The
// signal goes to the calling thread, so the stop takes effect before the call returns: with kill(2)
// another thread could go on, and enter raw mode again, before the whole process stops.
func stopSelf() error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := unix.Tgkill(unix.Getpid(), unix.Gettid(), unix.SIGTSTP); err != nil {
		return fmt.Errorf("client: stopping: %w", err)
	}
	return nil
}
