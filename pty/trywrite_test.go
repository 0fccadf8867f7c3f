//go:build linux

package pty_test

import (
	"strings"
	"testing"
	"time"
)

func TestTryWriteTakesWhatFits(t *testing.T) {
	c := startChild(t, size, "cat")
	b := []byte("hello\n")
	if n, err := c.p.TryWrite(b); n != len(b) || err != nil {
		t.Fatalf("TryWrite(%q) = %d, %v; want %d, nil", b, n, err, len(b))
	}
	if out := c.readUntil("hello\r\nhello\r\n"); !strings.HasSuffix(out, "hello\r\nhello\r\n") {
		t.Errorf("output %q: want the echo and cat's copy", out)
	}
}

func TestTryWriteNeverWaits(t *testing.T) {
	// A program that reads no input: the terminal's buffers fill up and then TryWrite must
	// return what it took, at once, instead of waiting as Write would.
	c := startChild(t, size, "sh", "-c", "stty raw -echo && echo ready && exec sleep 60")
	c.readUntil("ready")
	big := make([]byte, 4<<20)
	for i := range big {
		big[i] = 'x'
	}
	start := time.Now()
	n, err := c.p.TryWrite(big)
	if err != nil {
		t.Fatalf("TryWrite: %v", err)
	}
	if n <= 0 || n >= len(big) {
		t.Fatalf("TryWrite took %d of %d bytes; want some, not all", n, len(big))
	}
	// The terminal may have moved a little between its buffers since; whatever it takes, the
	// call returns at once.
	if _, err := c.p.TryWrite(big); err != nil {
		t.Errorf("TryWrite on a full terminal: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("TryWrite took %v; it must not wait", d)
	}
}

func TestTryWriteAfterClose(t *testing.T) {
	c := startChild(t, size, "cat")
	c.finish()
	if _, err := c.p.TryWrite([]byte("x")); err == nil {
		t.Error("TryWrite after Close succeeded")
	}
}
