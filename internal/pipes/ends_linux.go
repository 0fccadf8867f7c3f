package pipes

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rlogin-go/rlogin/pty"
)

// Ends is this side of a command's three pipes: the write end of its standard input and the
// read ends of its standard output and error, with the rules a session server serves them by.
// A Command has its Ends; a process that serves a command another process started and reaps
// (the pipes came over a Unix socket) makes them with NewEnds, and calls Drain once it learns
// the command has exited. Its methods are a session.Terminal's, less the process operations.
type Ends struct {
	stdin  *os.File // the write end of the command's standard input
	stdout *os.File // the read end of its standard output
	stderr *os.File // the read end of its standard error

	exited    atomic.Bool // the command has exited: reads wait at most DrainTimeout
	closeOnce sync.Once
}

// NewEnds returns the Ends of a command's pipes: stdin open for writing, stdout and stderr for
// reading. It takes the files over (Close closes them).
func NewEnds(stdin, stdout, stderr *os.File) *Ends {
	return &Ends{stdin: stdin, stdout: stdout, stderr: stderr}
}

// Files returns the three pipes, stdin, stdout and stderr, to pass on to another process; they
// stay the Ends' (Close closes them).
func (c *Ends) Files() (stdin, stdout, stderr *os.File) { return c.stdin, c.stdout, c.stderr }

// Drain says the command has exited: from now on reads of its output wait at most
// DrainTimeout for more (a background job that keeps the pipes open does not hold them).
func (c *Ends) Drain() {
	c.exited.Store(true)
	now := time.Now().Add(DrainTimeout)
	_ = c.stdout.SetReadDeadline(now) // a read under way is bounded too
	_ = c.stderr.SetReadDeadline(now)
}

// ReadOutput reads the command's standard output. It never reports a flush (a pipe has no
// line discipline). It returns io.EOF when the output is over: every process has closed it, or
// the command was reaped (Wait) and nothing came for DrainTimeout.
func (c *Ends) ReadOutput(b []byte) (int, bool, error) {
	n, err := c.read(c.stdout, b)
	return n, false, err
}

// ReadOutputNow is ReadOutput that never waits: with no output pending it returns 0, false,
// nil at once (session.OutputNowReader). A session server then sends a bulk copy's output from
// the goroutine that read it, in big frames, without a hop to another goroutine per read.
func (c *Ends) ReadOutputNow(b []byte) (int, bool, error) {
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
func (c *Ends) ReadErrorOutput(b []byte) (int, error) { return c.read(c.stderr, b) }

func (c *Ends) read(f *os.File, b []byte) (int, error) {
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
func (c *Ends) Write(b []byte) (int, error) { return c.stdin.Write(b) }

// TryWrite writes what the command's standard input takes now, without waiting
// (session.TryWriter): 0 and a nil error when the pipe is full. A session server then writes a
// bulk copy's input from the goroutine that read it from the connection.
func (c *Ends) TryWrite(b []byte) (int, error) {
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
func (c *Ends) SendEOF() error { return c.stdin.Close() }

// FlushesOutput reports false: a pipe has no line discipline, so no input (not even the bytes
// of ^C in binary data) discards output (session.FlushPredictor). A session server then never
// waits for a flush, nor reads in small pieces expecting one.
func (c *Ends) FlushesOutput([]byte) bool { return false }

// Resize does nothing: there is no terminal.
func (c *Ends) Resize(pty.Size) error { return nil }

// Close closes this side of the three pipes: pending and later reads and writes fail at once.
// It may be called more than once.
func (c *Ends) Close() error {
	c.closeOnce.Do(func() {
		_ = c.stdin.Close() // closed already after SendEOF
		_ = c.stdout.Close()
		_ = c.stderr.Close()
	})
	return nil
}
