package daemon

import (
	"bytes"
	"os/exec"
	"testing"
	"time"

	"github.com/rlogin-go/rlogin/internal/privsep"
	"github.com/rlogin-go/rlogin/pty"
	"github.com/rlogin-go/rlogin/session"
)

// A PAM conversation login's terminal takes the stale mark at ^C as a key login's pty does.
var _ session.OutputMarker = (*loginTerminal)(nil)

// TestLoginTerminalOutputMark: the output mark of a PAM conversation login counts the prompt's
// text and then the pty's output in one count, as ReadOutput returned them (Serve takes its start
// during the prompt), and what waits to be read, the prompt's text or the real pty's.
func TestLoginTerminalOutputMark(t *testing.T) {
	monEnd, netEnd, err := privsep.Pair()
	if err != nil {
		t.Fatal(err)
	}
	mon, err := privsep.NewFileChannel(monEnd, privsep.MonitorSide)
	if err != nil {
		t.Fatal(err)
	}
	defer mon.Close()
	nc, err := privsep.NewFileChannel(netEnd, privsep.NetSide)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	// The session's shell: output, then more output once it reads a line, which the test leaves
	// in the pty to be counted as held.
	sh, err := pty.Start(exec.Command("sh", "-c", "printf hello; read x; printf %0100d 0; read y"), pty.Size{Rows: 24, Cols: 80})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		sh.Kill()
		_, _ = sh.Wait()
		_ = sh.Close()
	}()

	const prompt = "Password: "
	lt := newLoginTerminal(nc, &privsep.Prompt{Text: prompt}, func() {}, nil)
	// The watchdog: a read that waits too long fails once the terminal is closed.
	watchdog := time.AfterFunc(shortTimeout, func() { _ = lt.Close() })
	defer watchdog.Stop()
	defer func() { _ = lt.Close() }()
	read := func(n int) []byte {
		t.Helper()
		var got []byte
		b := make([]byte, 256)
		for len(got) < n {
			k, _, err := lt.ReadOutput(b[:n-len(got)])
			if err != nil {
				t.Fatalf("ReadOutput after %q: %v", got, err)
			}
			got = append(got, b[:k]...)
		}
		return got
	}
	mark := func(wantRead, wantHeld int64) {
		t.Helper()
		r, h, err := lt.OutputMark()
		if err != nil || r != wantRead || h != wantHeld {
			t.Fatalf("OutputMark = %d, %d, %v; want %d read, %d held", r, h, err, wantRead, wantHeld)
		}
	}

	waitFor(t, "the prompt", func() bool { _, h, _ := lt.OutputMark(); return h == int64(len(prompt)) })
	mark(0, int64(len(prompt)))
	if got := read(len(prompt)); string(got) != prompt {
		t.Fatalf("prompt %q, want %q", got, prompt)
	}
	mark(int64(len(prompt)), 0)
	if _, err := lt.Write([]byte("secret\r")); err != nil {
		t.Fatal(err)
	}
	_ = mon.SetReadDeadline(time.Now().Add(shortTimeout))
	if msg, _, err := mon.Receive(); err != nil || *msg.(*privsep.Answer) != (privsep.Answer{Text: "secret"}) {
		t.Fatalf("the monitor received %#v, %v; want the answer", msg, err)
	}
	master, err := sh.DupMaster()
	if err != nil {
		t.Fatal(err)
	}
	if err := mon.Send(&privsep.Accept{}, master); err != nil {
		t.Fatal(err)
	}
	_ = master.Close()
	defer func() { _ = mon.Send(&privsep.Exited{Signal: 9}) }() // the remote shell's watch ends at EXITED

	// The CR LF after the answer, then the shell's output: one count.
	start := int64(len(prompt))
	if got := read(len("\r\nhello")); string(got) != "\r\nhello" {
		t.Fatalf("after the answer: %q, want the answer's CR LF and the shell's output", got)
	}
	mark(start+7, 0)
	// Input now goes to the shell: its echo (4 bytes) and its 100 bytes wait in the pty.
	if _, err := lt.Write([]byte("go\n")); err != nil {
		t.Fatal(err)
	}
	const more = 4 + 100
	waitFor(t, "the shell's output held in the pty", func() bool { _, h, _ := lt.OutputMark(); return h == more })
	mark(start+7, more)
	if got := read(more); !bytes.HasPrefix(got, []byte("go\r\n")) {
		t.Fatalf("the echo and the output: %q", got)
	}
	mark(start+7+more, 0)
}
