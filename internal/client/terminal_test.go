package client

import (
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	creack "github.com/creack/pty"
	"golang.org/x/sys/unix"
)

func TestRawTerminal(t *testing.T) {
	tt := openTerminal(t)
	before := tt.termios()
	fd := int(tt.slave.Fd())
	rt := newRawTerminal(fd)
	if rt.usedRaw() {
		t.Fatal("usedRaw before enter")
	}
	if err := rt.enter(); err != nil {
		t.Fatal(err)
	}
	if !isRaw(tt.termios()) || !rt.usedRaw() {
		t.Fatalf("not raw after enter: %+v", tt.termios())
	}
	if err := rt.enter(); err != nil { // again: no change, the saved state stays the first one
		t.Fatal(err)
	}
	rt.leave() // a suspend
	if got := tt.termios(); got != before {
		t.Fatalf("leave did not give the state back:\nbefore %+v\nafter  %+v", before, got)
	}
	if err := rt.enter(); err != nil { // the resume
		t.Fatal(err)
	}
	rt.restore()
	if got := tt.termios(); got != before {
		t.Fatalf("restore did not give the state back:\nbefore %+v\nafter  %+v", before, got)
	}
	// After restore nothing enters raw mode again, and more restores change nothing.
	if err := rt.enter(); err != nil {
		t.Fatal(err)
	}
	rt.restore()
	if got := tt.termios(); got != before {
		t.Fatalf("enter after restore changed the terminal: %+v", got)
	}
}

// TestRawTerminalRestoreOnPanic checks restoreOnPanic, which the session's goroutines defer: a
// panic restores the terminal, then goes on.
func TestRawTerminalRestoreOnPanic(t *testing.T) {
	tt := openTerminal(t)
	before := tt.termios()
	rt := newRawTerminal(int(tt.slave.Fd()))
	r := &runner{tty: rt}
	func() {
		defer func() {
			if p := recover(); p == nil || p != "boom" {
				t.Fatalf("recovered %v, want the re-panic", p)
			}
		}()
		func() {
			defer r.restoreOnPanic()
			if err := rt.enter(); err != nil {
				t.Fatal(err)
			}
			panic("boom")
		}()
	}()
	if got := tt.termios(); got != before {
		t.Fatalf("terminal not restored after a panic:\nbefore %+v\nafter  %+v", before, got)
	}
}

func TestWindowSize(t *testing.T) {
	tt := openTerminal(t)
	fd := int(tt.slave.Fd())
	if got := windowSize([]int{fd}); got.Rows != 24 || got.Cols != 80 {
		t.Fatalf("window %+v, want 24x80", got)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	// Not a terminal first: the next one counts; none: 24x80.
	if err := unix.IoctlSetWinsize(fd, unix.TIOCSWINSZ, &unix.Winsize{Row: 50, Col: 132}); err != nil {
		t.Fatal(err)
	}
	if got := windowSize([]int{int(r.Fd()), fd}); got.Rows != 50 || got.Cols != 132 {
		t.Fatalf("window %+v, want 50x132", got)
	}
	if got := windowSize([]int{int(r.Fd())}); got.Rows != 24 || got.Cols != 80 {
		t.Fatalf("window %+v, want the 24x80 default", got)
	}
	if _, ok := ttyFd(r); ok {
		t.Fatal("a pipe is not a terminal")
	}
	if _, ok := ttyFd(strings.NewReader("")); ok {
		t.Fatal("a strings.Reader is not a terminal")
	}
	if fd2, ok := ttyFd(tt.slave); !ok || fd2 != fd {
		t.Fatal("the pty slave is a terminal")
	}
}

func TestFdReader(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	fr, err := newFdReader(int(r.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	defer fr.close()

	if _, err := w.WriteString("typed"); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 100)
	n, err := fr.Read(buf)
	if err != nil || string(buf[:n]) != "typed" {
		t.Fatalf("Read = %q, %v", buf[:n], err)
	}

	checkStop(t, fr)
}

// checkStop checks that stop interrupts a Read of r that waits for input, and every later one.
func checkStop(t *testing.T, r stoppableReader) {
	t.Helper()
	buf := make([]byte, 100)
	done := make(chan error, 1)
	go func() {
		_, err := r.Read(buf)
		done <- err
	}()
	time.Sleep(10 * time.Millisecond) // usually waiting by now; either way the result is the same
	r.stop()
	r.stop()
	select {
	case err := <-done:
		if !errors.Is(err, errInputStopped) {
			t.Fatalf("Read after stop = %v", err)
		}
	case <-time.After(testTimeout):
		t.Fatal("stop did not interrupt Read")
	}
	if _, err := r.Read(buf); !errors.Is(err, errInputStopped) {
		t.Fatalf("second Read after stop = %v", err)
	}
}

func TestFdReaderEOF(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	fr, err := newFdReader(int(r.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	defer fr.close()
	if _, err := w.WriteString("last"); err != nil {
		t.Fatal(err)
	}
	w.Close()
	data, err := io.ReadAll(fr)
	if err != nil || string(data) != "last" {
		t.Fatalf("ReadAll = %q, %v", data, err)
	}
}

func TestPollReader(t *testing.T) {
	master, slave, err := creack.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer slave.Close()
	defer master.Close()
	pr, err := newPollReader(int(slave.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	defer pr.close()

	if _, err := master.WriteString("typed\n"); err != nil { // canonical mode: a line
		t.Fatal(err)
	}
	buf := make([]byte, 100)
	n, err := pr.Read(buf)
	if err != nil || string(buf[:n]) != "typed\n" {
		t.Fatalf("Read = %q, %v", buf[:n], err)
	}

	// Output drained from the terminal while a Read waits does not end the Read; input does.
	got := make(chan string, 1)
	go func() {
		n, err := pr.Read(buf)
		if err != nil {
			got <- err.Error()
			return
		}
		got <- string(buf[:n])
	}()
	if _, err := slave.WriteString("output\n"); err != nil {
		t.Fatal(err)
	}
	var shown []byte // the echo of "typed", then the output
	for !strings.Contains(string(shown), "output") {
		out := make([]byte, 100)
		n, err := master.Read(out) // the output is there already: no wait
		if err != nil {
			t.Fatalf("master read after %q: %v", shown, err)
		}
		shown = append(shown, out[:n]...)
	}
	if _, err := master.WriteString("more\n"); err != nil {
		t.Fatal(err)
	}
	select {
	case s := <-got:
		if s != "more\n" {
			t.Fatalf("Read = %q, want the input line", s)
		}
	case <-time.After(testTimeout):
		t.Fatal("Read did not return the input")
	}

	checkStop(t, pr)
}

func TestPollReaderHangup(t *testing.T) {
	master, slave, err := creack.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer slave.Close()
	pr, err := newPollReader(int(slave.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	defer pr.close()
	master.Close() // the terminal hangs up
	done := make(chan error, 1)
	go func() {
		_, err := pr.Read(make([]byte, 10))
		done <- err
	}()
	select {
	case err := <-done:
		if err != io.EOF {
			t.Fatalf("Read of a hung-up terminal = %v, want io.EOF", err)
		}
	case <-time.After(testTimeout):
		pr.stop()
		t.Fatal("Read of a hung-up terminal did not return")
	}
}

func TestPollReaderNeedsATerminal(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if pr, err := newPollReader(int(r.Fd())); err == nil {
		pr.close()
		t.Fatal("newPollReader took a pipe")
	}
}
