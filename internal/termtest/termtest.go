// Package termtest is for tests only: it holds what the tests that watch a terminal or a log share.
// A Buffer collects output from one writer (an io.Copy from a pty master, a log) and announces each
// write, so that a test waits for what it expects with a deadline instead of sleeping; WaitFor polls
// any condition with a deadline.
//
// Typical usage:
//
//	var out termtest.Buffer
//	go func() { _, _ = io.Copy(&out, master) }()
//	mark := 0
//	if _, ok := out.Expect(&mark, regexp.MustCompile(`\$ $`), 20*time.Second); !ok {
//		t.Fatalf("no prompt; output:\n%q", out.String())
//	}
//	termtest.WaitFor(t, 20*time.Second, "the child to exit", func() bool { return exited(pid) })
package termtest

import (
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Buffer collects output for one writer and many readers, and announces changes. Its zero value is
// an empty buffer ready to use.
type Buffer struct {
	mu      sync.Mutex
	buf     []byte
	changed chan struct{} // closed at the next write; nil until someone asks for it
}

// Write appends p and wakes everyone waiting for a change. It never fails.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if b.changed != nil {
		close(b.changed)
		b.changed = nil
	}
	return len(p), nil
}

// Snapshot returns the data so far, which the caller must not modify, and a channel closed at the
// next write.
func (b *Buffer) Snapshot() ([]byte, <-chan struct{}) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.changed == nil {
		b.changed = make(chan struct{})
	}
	return b.buf[:len(b.buf):len(b.buf)], b.changed
}

// String returns the data so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}

// Expect waits up to timeout for re to match the data after *mark, moves *mark past the match and
// returns the submatches (an unmatched group is ""). ok is false if the timeout passed first; *mark
// is then unchanged.
func (b *Buffer) Expect(mark *int, re *regexp.Regexp, timeout time.Duration) (match []string, ok bool) {
	deadline := time.Now().Add(timeout)
	for {
		data, changed := b.Snapshot()
		if loc := re.FindSubmatchIndex(data[*mark:]); loc != nil {
			m := make([]string, len(loc)/2)
			for i := range m {
				if loc[2*i] >= 0 {
					m[i] = string(data[*mark+loc[2*i] : *mark+loc[2*i+1]])
				}
			}
			*mark += loc[1]
			return m, true
		}
		if !WaitChange(changed, deadline) {
			return nil, false
		}
	}
}

// WaitChange waits until changed (from Snapshot) is closed or the deadline passes; false means the
// deadline passed.
func WaitChange(changed <-chan struct{}, deadline time.Time) bool {
	d := time.Until(deadline)
	if d <= 0 {
		return false
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-changed:
		return true
	case <-timer.C:
		return false
	}
}

// pollInterval is how often WaitFor checks its condition.
const pollInterval = 10 * time.Millisecond

// WaitFor checks cond every few milliseconds until it holds, and fails the test with "timed out
// waiting for " what if it still does not after timeout. cond may itself fail the test.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(pollInterval)
	}
}

// EpollWatches returns the events for which each epoll instance of this process (Go's poller's
// included) watches descriptor fd, from /proc/self/fdinfo: none when nothing watches it.
func EpollWatches(t testing.TB, fd int) []uint32 {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	var found []uint32
	for _, e := range ents {
		if target, err := os.Readlink("/proc/self/fd/" + e.Name()); err != nil || target != "anon_inode:[eventpoll]" {
			continue // gone meanwhile, or not an epoll instance
		}
		info, err := os.ReadFile("/proc/self/fdinfo/" + e.Name())
		if err != nil {
			continue
		}
		for line := range strings.SplitSeq(string(info), "\n") {
			f := strings.Fields(line)
			if len(f) >= 4 && f[0] == "tfd:" && f[1] == strconv.Itoa(fd) && f[2] == "events:" {
				ev, err := strconv.ParseUint(f[3], 16, 32)
				if err != nil {
					t.Fatalf("fdinfo line %q: %v", line, err)
				}
				found = append(found, uint32(ev))
			}
		}
	}
	return found
}
