package termtest

import (
	"fmt"
	"regexp"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// TestExpectWaitsForWrites writes a line at a time from another goroutine: Expect sees each
// match once, in order, and moves the mark past it.
func TestExpectWaitsForWrites(t *testing.T) {
	var b Buffer
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range 50 {
			fmt.Fprintf(&b, "line %d\n", i)
		}
	}()
	defer wg.Wait()
	mark := 0
	re := regexp.MustCompile(`line (\d+)(x)?\n`)
	for i := range 50 {
		m, ok := b.Expect(&mark, re, 20*time.Second)
		if !ok {
			t.Fatalf("line %d: timed out; have %q", i, b.String())
		}
		if want := fmt.Sprint(i); m[1] != want || m[2] != "" {
			t.Fatalf("submatches %q, want line %s and no x", m, want)
		}
	}
	if mark != len(b.String()) {
		t.Errorf("mark %d, want %d", mark, len(b.String()))
	}
}

// TestExpectTimesOut: with nothing matching, Expect gives up after the timeout and leaves the mark.
func TestExpectTimesOut(t *testing.T) {
	var b Buffer
	_, _ = b.Write([]byte("abc"))
	mark := 1
	start := time.Now()
	if m, ok := b.Expect(&mark, regexp.MustCompile(`a`), 50*time.Millisecond); ok {
		t.Fatalf("matched %q before the mark", m)
	}
	if d := time.Since(start); d < 50*time.Millisecond {
		t.Errorf("gave up after %v, before the timeout", d)
	}
	if mark != 1 {
		t.Errorf("mark moved to %d", mark)
	}
}

// TestSnapshotAnnouncesWrite: the channel from Snapshot closes at the next write, and the data
// handed out cannot be changed by the writer appending.
func TestSnapshotAnnouncesWrite(t *testing.T) {
	var b Buffer
	_, _ = b.Write([]byte("ab"))
	data, changed := b.Snapshot()
	if WaitChange(changed, time.Now()) {
		t.Fatal("changed before any write")
	}
	_, _ = b.Write([]byte("c"))
	if !WaitChange(changed, time.Now().Add(20*time.Second)) {
		t.Fatal("the write was not announced")
	}
	if string(data) != "ab" || cap(data) != 2 {
		t.Errorf("snapshot %q (cap %d), want \"ab\" (cap 2)", data, cap(data))
	}
}

// TestWaitFor waits for a condition that becomes true on the third check.
func TestWaitFor(t *testing.T) {
	n := 0
	WaitFor(t, 20*time.Second, "the third check", func() bool { n++; return n == 3 })
	if n != 3 {
		t.Errorf("cond checked %d times, want 3", n)
	}
}

func ExampleBuffer_Expect() {
	var out Buffer
	fmt.Fprint(&out, "login: ") // usually an io.Copy from a pty master, in another goroutine
	mark := 0
	m, ok := out.Expect(&mark, regexp.MustCompile(`(\w+): $`), 20*time.Second)
	fmt.Println(m[1], ok, mark)
	// Output: login true 7
}
