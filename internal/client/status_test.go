package client

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/rlogin-go/rlogin/session"
)

// TestStatusLineRedrawn: on a terminal the status line starts on a line of its own, each update
// redraws it in place (never a new line), cut to the width, and its end leaves one line.
func TestStatusLineRedrawn(t *testing.T) {
	var term bytes.Buffer
	out := &outputWriter{w: &term}
	_, _ = out.Write([]byte("$ ls")) // the remote output left the cursor mid-line
	s := &statusLine{out: out, w: &term, tty: true, width: func() int { return 20 }}
	s.show("rlogin: lost; try 1", true)
	s.show("rlogin: lost; try 2, and a long tail", false)
	s.end("rlogin: reconnected")
	want := "$ ls" + "\r\n" +
		"\rrlogin: lost; try 1\x1b[K" +
		"\rrlogin: lost; try 2\x1b[K" +
		"\rrlogin: reconnected\x1b[K\r\n"
	if got := term.String(); got != want {
		t.Errorf("terminal got\n%q\nwant\n%q", got, want)
	}
	if !out.atLineStart() {
		t.Error("after the status line ended, the output is not at the start of a line")
	}

	// A local message (~?'s) goes below the line, which is drawn again below it.
	term.Reset()
	s.show("rlogin: lost", true)
	s.leave()
	out.writeLocal(&term, "help\r\n")
	s.repaint()
	if got, want := term.String(), "\rrlogin: lost\x1b[K\r\nhelp\r\n\rrlogin: lost\x1b[K"; got != want {
		t.Errorf("a message while the line shows: got %q, want %q", got, want)
	}

	term.Reset()
	s.end("") // erased: the next message starts where it was
	if got, want := term.String(), "\r\x1b[K\r"; got != want {
		t.Errorf("erased line: got %q, want %q", got, want)
	}
	if !out.atLineStart() {
		t.Error("after the status line was erased, the output is not at the start of a line")
	}
}

// TestStatusLinePlain: when standard error is not a terminal, only the important lines are
// printed, whole, one per line, without control sequences.
func TestStatusLinePlain(t *testing.T) {
	var log bytes.Buffer
	s := &statusLine{out: &outputWriter{w: &bytes.Buffer{}}, w: &log, width: func() int { return 20 }}
	s.show("rlogin: connection lost; reconnecting", true)
	s.show("rlogin: try 2 failed", false)
	s.repaint()
	s.end("rlogin: reconnected")
	want := "rlogin: connection lost; reconnecting\nrlogin: reconnected\n"
	if got := log.String(); got != want {
		t.Errorf("log got\n%q\nwant\n%q", got, want)
	}
}

// TestReconnectDelay: at once, then every 0.5 s for the first two minutes of the outage, then
// growing by a quarter of the time beyond them up to 10 s, each within the jitter, never more
// than 10 s.
func TestReconnectDelay(t *testing.T) {
	for _, tc := range []struct {
		n      int
		outage time.Duration
		base   time.Duration
	}{
		{1, 0, 0}, {1, time.Hour, 0},
		{2, 0, 500 * time.Millisecond}, {3, 5 * time.Second, 500 * time.Millisecond},
		{200, 119 * time.Second, 500 * time.Millisecond},
		{300, 2*time.Minute + time.Second, 500 * time.Millisecond},
		{300, 2*time.Minute + 8*time.Second, 2 * time.Second},
		{300, 2*time.Minute + 40*time.Second, 10 * time.Second},
		{1000, 3 * time.Hour, 10 * time.Second},
	} {
		lo, hi := reconnectDelay(tc.n, tc.outage, 0), reconnectDelay(tc.n, tc.outage, 0.999999)
		wantLo := time.Duration(float64(tc.base) * (1 - retryJitter))
		wantHi := min(time.Duration(float64(tc.base)*(1+retryJitter)), maxRetryDelay)
		if lo != wantLo || hi < wantHi-time.Millisecond || hi > wantHi {
			t.Errorf("try %d after %v: delay %v to %v, want %v to %v", tc.n, tc.outage, lo, hi, wantLo, wantHi)
		}
	}
}

func TestWholeUnits(t *testing.T) {
	for d, want := range map[time.Duration]string{
		time.Hour: "1 h", 3 * time.Hour: "3 h", 90 * time.Minute: "90 min", 2 * time.Minute: "2 min",
		90 * time.Second: "90 s", 2 * time.Second: "2 s", 500 * time.Millisecond: "1 s",
	} {
		if got := wholeUnits(d); got != want {
			t.Errorf("wholeUnits(%v) = %q, want %q", d, got, want)
		}
	}
}

// TestLossText: why the connection was lost, in a few words.
func TestLossText(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{&session.NoAnswerError{Silence: 2 * time.Second}, "no answer for 2 s"},
		{fmt.Errorf("session: connection lost: %w", io.EOF), "closed"},
		{fmt.Errorf("session: connection lost: %w", syscall.ECONNRESET), "connection reset by peer"},
		{fmt.Errorf("session: connection lost: %w", &net.OpError{Op: "read", Net: "tcp",
			Err: &os.SyscallError{Syscall: "read", Err: syscall.ECONNRESET}}), "connection reset by peer"},
		{fmt.Errorf("session: connection lost: %w", errors.New("tls: bad record MAC")), "tls: bad record MAC"},
	} {
		if got := lossText(tc.err); got != tc.want {
			t.Errorf("lossText(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}
