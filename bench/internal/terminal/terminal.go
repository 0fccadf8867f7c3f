// Package terminal is the benchmark harness's terminal: a pty it owns, with a program (a remote
// login client, or a shell) running on the slave side as its controlling terminal. The harness
// types into the master and reads everything the program writes, as a terminal emulator would,
// but without drawing it.
//
// Every wait has a deadline. Reading is synchronous (poll(2) then read(2) on the master), with
// no goroutine in between, so a keystroke's echo is timed from the write to the read that
// brings it back.
//
// Typical usage:
//
//	t, err := terminal.Start(cmd, 24, 80)
//	...
//	defer t.Close()
//	if _, err := t.Expect("$ ", 10*time.Second); err != nil { ... }
//	t.Send("echo hi\r")
package terminal

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"
)

// ErrTimeout is returned by a wait that reached its deadline.
var ErrTimeout = errors.New("terminal: timed out")

// readSize is how much one read(2) of the master takes.
const readSize = 64 << 10

// Terminal is a pty the harness owns with a program running on it.
type Terminal struct {
	master *os.File
	fd     int // master's descriptor, non-blocking
	slave  *os.File
	cmd    *exec.Cmd
	exited chan struct{} // closed when cmd has been waited for
	err    error         // cmd.Wait's result, after exited

	buf  []byte // read but not yet consumed by Expect
	rbuf []byte
	tail []byte // the last bytes seen, for error messages
}

// Start runs cmd in a new pty of rows x cols as its controlling terminal (a new session), with
// standard input, output and error on the slave. cmd.SysProcAttr's Credential, if set, is kept,
// and the slave is given to that user.
func Start(cmd *exec.Cmd, rows, cols uint16) (*Terminal, error) {
	master, slave, err := pty.Open()
	if err != nil {
		return nil, fmt.Errorf("terminal: %w", err)
	}
	if err := pty.Setsize(master, &pty.Winsize{Rows: rows, Cols: cols}); err != nil {
		master.Close()
		slave.Close()
		return nil, fmt.Errorf("terminal: %w", err)
	}
	attr := &syscall.SysProcAttr{}
	if cmd.SysProcAttr != nil {
		*attr = *cmd.SysProcAttr
	}
	attr.Setsid, attr.Setctty, attr.Ctty = true, true, 0
	cmd.SysProcAttr = attr
	if c := attr.Credential; c != nil {
		_ = slave.Chown(int(c.Uid), int(c.Gid)) // as login(1) does; best effort
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	fd := int(master.Fd())
	if err := unix.SetNonblock(fd, true); err != nil {
		master.Close()
		slave.Close()
		return nil, fmt.Errorf("terminal: %w", err)
	}
	if err := cmd.Start(); err != nil {
		master.Close()
		slave.Close()
		return nil, fmt.Errorf("terminal: starting %s: %w", cmd.Path, err)
	}
	t := &Terminal{master: master, fd: fd, slave: slave, cmd: cmd, exited: make(chan struct{}), rbuf: make([]byte, readSize)}
	go func() {
		t.err = cmd.Wait()
		close(t.exited)
	}()
	return t, nil
}

// Pid is the program's process id.
func (t *Terminal) Pid() int { return t.cmd.Process.Pid }

// Send types s.
func (t *Terminal) Send(s string) error {
	for b := []byte(s); len(b) > 0; {
		n, err := unix.Write(t.fd, b)
		if err == unix.EAGAIN {
			if err := t.poll(unix.POLLOUT, time.Now().Add(10*time.Second)); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("terminal: typing: %w", err)
		}
		b = b[n:]
	}
	return nil
}

// poll waits until the master is ready for events or the deadline passes.
func (t *Terminal) poll(events int16, deadline time.Time) error {
	fds := []unix.PollFd{{Fd: int32(t.fd), Events: events}}
	for {
		ms := time.Until(deadline).Milliseconds()
		if ms <= 0 {
			return ErrTimeout
		}
		n, err := unix.Poll(fds, int(min(ms, 1000)))
		if err == unix.EINTR || (err == nil && n == 0) {
			continue
		}
		if err != nil {
			return fmt.Errorf("terminal: poll: %w", err)
		}
		return nil
	}
}

// read reads what the program wrote, waiting until the deadline for something. It returns the
// bytes (valid until the next read) or an error: ErrTimeout, or io.EOF-like EIO once the
// program and everything else on the slave side are gone.
func (t *Terminal) read(deadline time.Time) ([]byte, error) {
	for {
		n, err := unix.Read(t.fd, t.rbuf)
		if err == unix.EAGAIN {
			if err := t.poll(unix.POLLIN, deadline); err != nil {
				return nil, err
			}
			continue
		}
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("terminal: read: %w", err)
		}
		b := t.rbuf[:n]
		t.remember(b)
		return b, nil
	}
}

func (t *Terminal) remember(b []byte) {
	const keep = 400
	t.tail = append(t.tail, b[max(0, len(b)-keep):]...)
	if len(t.tail) > keep {
		t.tail = t.tail[len(t.tail)-keep:]
	}
}

// Tail is the last few hundred bytes the program wrote, for error messages.
func (t *Terminal) Tail() string { return string(t.tail) }

// Expect reads until the output contains marker, and consumes the output up to and including it.
// It returns how many bytes it read, counting those it had read before but not consumed. It keeps
// only a marker's length of unmatched output, so it can wait through any amount of output.
func (t *Terminal) Expect(marker string, timeout time.Duration) (int64, error) {
	deadline := time.Now().Add(timeout)
	m := []byte(marker)
	total := int64(len(t.buf))
	for {
		if i := bytes.Index(t.buf, m); i >= 0 {
			t.buf = append(t.buf[:0], t.buf[i+len(m):]...)
			return total, nil
		}
		if keep := len(m) - 1; len(t.buf) > keep {
			t.buf = append(t.buf[:0], t.buf[len(t.buf)-keep:]...)
		}
		b, err := t.read(deadline)
		if err != nil {
			return total, fmt.Errorf("terminal: waiting for %q: %w; last output: %q", marker, err, t.Tail())
		}
		total += int64(len(b))
		t.buf = append(t.buf, b...)
	}
}

// Capture is Expect that also returns what it read: the output up to and including marker
// (those bytes Expect had read before but not consumed first), all of which it consumes.
func (t *Terminal) Capture(marker string, timeout time.Duration) ([]byte, error) {
	deadline := time.Now().Add(timeout)
	m := []byte(marker)
	got := append([]byte(nil), t.buf...)
	t.buf = t.buf[:0]
	for from := 0; ; {
		if i := bytes.Index(got[from:], m); i >= 0 {
			end := from + i + len(m)
			t.buf = append(t.buf, got[end:]...)
			return got[:end], nil
		}
		from = max(0, len(got)-len(m)+1)
		b, err := t.read(deadline)
		if err != nil {
			return got, fmt.Errorf("terminal: waiting for %q: %w; last output: %q", marker, err, t.Tail())
		}
		got = append(got, b...)
	}
}

// Skip reads and drops at least n bytes of output, those Expect left unconsumed first, and
// consumes all it read.
func (t *Terminal) Skip(n int64, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	n -= int64(len(t.buf))
	t.buf = t.buf[:0]
	for n > 0 {
		b, err := t.read(deadline)
		if err != nil {
			return fmt.Errorf("terminal: skipping output, %d bytes to go: %w; last output: %q", n, err, t.Tail())
		}
		n -= int64(len(b))
	}
	return nil
}

// Drain reads and drops output until none arrives for quiet, or timeout passes.
func (t *Terminal) Drain(quiet, timeout time.Duration) {
	t.buf = t.buf[:0]
	end := time.Now().Add(timeout)
	for time.Now().Before(end) {
		if _, err := t.read(earliest(time.Now().Add(quiet), end)); err != nil {
			return
		}
	}
}

// Echo types the byte c and waits for it to come back, with nothing else in between: it returns
// the time from the write to the read that brought c back. Output read before c is dropped.
func (t *Terminal) Echo(c byte, timeout time.Duration) (time.Duration, error) {
	t.buf = t.buf[:0]
	deadline := time.Now().Add(timeout)
	one := []byte{c}
	start := time.Now()
	if _, err := unix.Write(t.fd, one); err != nil {
		return 0, fmt.Errorf("terminal: typing: %w", err)
	}
	for {
		b, err := t.read(deadline)
		if err != nil {
			return 0, fmt.Errorf("terminal: waiting for the echo of %q: %w; last output: %q", c, err, t.Tail())
		}
		if i := bytes.IndexByte(b, c); i >= 0 {
			d := time.Since(start)
			t.buf = append(t.buf, b[i+1:]...)
			return d, nil
		}
	}
}

// Wait waits until the program has exited, reading (and dropping) its output meanwhile, and
// returns its exit error.
func (t *Terminal) Wait(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		select {
		case <-t.exited:
			return t.err
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("terminal: %s did not exit within %v; last output: %q", t.cmd.Path, timeout, t.Tail())
		}
		_, err := t.read(earliest(time.Now().Add(20*time.Millisecond), deadline))
		if err != nil && !errors.Is(err, ErrTimeout) {
			// EIO: nothing holds the slave but us; the program is exiting.
			select {
			case <-t.exited:
				return t.err
			case <-time.After(time.Until(deadline)):
				return fmt.Errorf("terminal: %s did not exit within %v", t.cmd.Path, timeout)
			}
		}
	}
}

// Close kills the program if it still runs, waits for it, and closes the pty.
func (t *Terminal) Close() error {
	select {
	case <-t.exited:
	default:
		_ = t.cmd.Process.Kill()
		<-t.exited
	}
	err := t.slave.Close()
	return errors.Join(err, t.master.Close())
}

func earliest(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
