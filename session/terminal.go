package session

import (
	"os"
)

// Terminal is the shell's side of a session: a pty in packet mode and the shell on it. *pty.PTY
// satisfies it, and the optional interfaces below but StatusWaiter; *pty.Attached also
// StatusWaiter. Serve calls ReadOutput from one goroutine, Write and SendEOF
// from a second (in the order the client sent them), Resize from a third, Wait from a fourth, and
// Hangup, Close and Kill from Serve's own goroutine, concurrently.
//
// Serve looks for optional interfaces by type assertion, each a saving, never needed:
// ExitNotifier (Serve's own goroutine calls Wait once the shell has exited, so no goroutine
// waits in Wait), OutputNowReader (a flood of output leaves in big writes while an idle session
// keeps a small buffer), TryWriter (a keystroke reaches the shell from the goroutine that
// read it, without a hop to a second one), FlushPredictor (an interrupted flood's output is
// held no longer than needed; with OutputMarker, none of the output the terminal held at ^C is
// sent after the flush) and FlushKeyer (a client discards its own terminal's output at ^C).
//
// Another, StatusWaiter, is for a shell that another process reaps (a server with privilege
// separation): Serve calls its WaitStatus in place of Wait, for the exit status the client gets.
type Terminal interface {
	// ReadOutput reads the shell's output. flushed reports that the terminal discarded pending
	// output before these bytes (n may be 0 then). It returns io.EOF when the output is over:
	// nothing holds the terminal any more, or the shell was reaped by Wait and no output is
	// pending.
	ReadOutput(b []byte) (n int, flushed bool, err error)
	Write(b []byte) (int, error) // input for the shell
	Resize(WindowSize) error
	SendEOF() error                  // the end of input: the terminal's EOF character
	Wait() (*os.ProcessState, error) // waits for the shell to exit and reaps it (see StatusWaiter)

	// Hangup tells the shell the line is gone (SIGHUP to its process group). Serve calls it at most
	// once, not after Wait returned, but possibly while Wait is returning: it must do nothing once
	// the shell is reaped.
	Hangup()

	// Close closes the terminal, as closing a pty's master does: a pending or later ReadOutput or
	// Write fails at once, pending input is dropped, and the line is hung up for good. Serve calls
	// it when the shell is reaped and its output over (input may still wait for a terminal that a
	// background job holds), and when the shell outlives a Hangup by 2 seconds. It may be called
	// more than once.
	Close() error

	// Kill kills the shell (SIGKILL). Serve calls it when the shell outlives the Close by 2
	// seconds; like Hangup, it must do nothing once the shell is reaped.
	Kill()
}

// ExitNotifier is an optional Terminal method. Exited returns a channel that is closed once the
// shell has exited; Wait then returns without waiting. Serve calls it once, from its own
// goroutine, and calls Wait from there when the channel is closed.
type ExitNotifier interface {
	Exited() <-chan struct{}
}

// OutputNowReader is an optional Terminal method. ReadOutputNow is ReadOutput that never waits:
// when no output is pending it returns 0, false, nil at once. Serve calls it from the goroutine
// that calls ReadOutput, after a read that filled more than half of a small buffer, to collect
// the rest of a flood into one write to the client.
type OutputNowReader interface {
	ReadOutputNow(b []byte) (n int, flushed bool, err error)
}

// FlushPredictor is an optional Terminal method. FlushesOutput reports whether input b, just
// written, makes the terminal discard its pending output: b holds one of the terminal's signal
// characters (VINTR, VQUIT, VSUSP) while ISIG is set and NOFLSH is not. Serve calls it after
// writing input, from the goroutine that wrote it, when the client asked to be told once its
// input is in (capability flow2, docs/protocol.md): it then waits for the flush's report before
// answering (at most a second). Without it, Serve expects a flush after ^C, ^\ and ^Z, and waits
// no more than 50 ms for the report, which a program that reads those bytes as keys (signals
// off) pays in the delay of its output after them.
type FlushPredictor interface {
	FlushesOutput(b []byte) bool
}

// OutputMarker is an optional Terminal method, with OutputNowReader. OutputMark returns, taken
// together, the count of output bytes that ReadOutput and ReadOutputNow have returned so far
// (read, counted from any start: Serve takes the difference from the count when it starts, so
// reads before Serve do not matter) and the count of output bytes the terminal holds now, ready
// to read at once (held): output older than any input written after the call. Serve calls it,
// from the goroutine that writes input, right before it writes input that FlushesOutput predicts
// to flush: the terminal's flush may leave output it held already (Linux's leaves up to 4 KiB),
// and Serve drops that as stale rather than send it after the FLUSH.
type OutputMarker interface {
	OutputMark() (read, held int64, err error)
}

// FlushKeyer is an optional Terminal method. AppendFlushKeys appends to keys the characters
// that, typed now, make the terminal discard its pending output (FlushPredictor's), and returns
// the extended slice: VINTR, VQUIT and VSUSP while ISIG is set and NOFLSH is not, without
// disabled ones and repeats; at most 3, none when it cannot tell. Serve calls it, with its lock
// held, before each DATA frame to a client that accepted capability flushkeys (docs/protocol.md,
// section 7.5), and again a short time after, so it must be quick (one system call) and should
// not allocate (keys has room for 3): the client discards its own terminal's output at such a
// keystroke.
type FlushKeyer interface {
	AppendFlushKeys(keys []byte) []byte
}

// TryWriter is an optional method of a Terminal (and of a Client's Stdout). TryWrite writes what
// fits without waiting and returns n < len(b) with a nil error when the rest would have to wait.
// Serve calls it from the goroutine that reads the client's frames, never while a Write runs,
// and leaves the rest to Write in another goroutine: that goroutine must never block on a shell
// that reads no input, as it also reads the client's CREDIT frames.
type TryWriter interface {
	TryWrite(b []byte) (int, error)
}
