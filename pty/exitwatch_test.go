//go:build linux

package pty_test

import (
	"os"
	"strconv"
	"strings"
	"testing"
)

// threads is the number of threads of this process.
func threads(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "Threads:"); ok {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("no Threads in /proc/self/status")
	return 0
}

// TestWaitingHoldsNoThread: a PTY waits for its child's exit without holding a thread, so a
// server with many sessions does not run a thread per session.
func TestWaitingHoldsNoThread(t *testing.T) {
	const n = 40
	before := threads(t)
	children := make([]*child, n)
	for i := range children {
		children[i] = startChild(t, size, "sleep", "60")
	}
	if grown := threads(t) - before; grown >= n/2 {
		t.Errorf("%d children waited for with %d more threads; want far fewer than one each", n, grown)
	}
	for _, c := range children {
		c.finish()
	}
}
