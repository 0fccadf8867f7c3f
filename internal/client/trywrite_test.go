package client

import (
	"bytes"
	"os"
	"testing"
	"time"

	"github.com/creack/pty"
	"golang.org/x/term"
)

// TestOutputTryWrite: on a terminal, TryWrite writes what the terminal takes and returns at once
// when it is full; what it wrote counts for atLineStart; without a terminal it takes nothing.
func TestOutputTryWrite(t *testing.T) {
	master, slave, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer master.Close()
	defer slave.Close()
	if _, err := term.MakeRaw(int(slave.Fd())); err != nil {
		t.Fatal(err)
	}
	o := &outputWriter{w: slave}
	o.openNonblocking(int(slave.Fd()))
	defer o.closeNonblocking()
	if o.nbfd == 0 {
		t.Fatal("openNonblocking did not open the terminal")
	}

	if n, err := o.TryWrite([]byte("hi\r\n")); n != 4 || err != nil {
		t.Fatalf("TryWrite = %d, %v; want 4, nil", n, err)
	}
	got := make([]byte, 4)
	_ = master.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := master.Read(got); err != nil || string(got) != "hi\r\n" {
		t.Fatalf("the terminal got %q, %v", got, err)
	}
	if !o.atLineStart() {
		t.Error("atLineStart after \"hi\\r\\n\" is false")
	}

	// Nobody reads the master now: the terminal fills up, and TryWrite must not wait.
	big := bytes.Repeat([]byte("x"), 1<<20)
	start := time.Now()
	n, err := o.TryWrite(big)
	if err != nil || n <= 0 || n >= len(big) {
		t.Fatalf("TryWrite on a terminal nobody reads = %d, %v; want some of %d bytes", n, err, len(big))
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("TryWrite took %v; it must not wait", d)
	}
	if o.atLineStart() {
		t.Error("atLineStart after x's is true")
	}

	f, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	plain := &outputWriter{w: f}
	plain.openNonblocking(int(f.Fd()))
	defer plain.closeNonblocking()
	if n, err := plain.TryWrite([]byte("x")); n != 0 || err != nil {
		t.Errorf("TryWrite to a file = %d, %v; want 0, nil (everything goes through Write)", n, err)
	}
}
