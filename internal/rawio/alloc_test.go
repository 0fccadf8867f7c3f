package rawio

import (
	"testing"

	"golang.org/x/sys/unix"
)

// A keystroke's reads and writes allocate nothing: Conn's Read and Write and a Watch's Do reuse
// their state (see op). Race-enabled builds check the descriptor at each call, which allocates.
func TestHotPathDoesNotAllocate(t *testing.T) {
	if checkEachCall {
		t.Skip("race-enabled builds check each call's descriptor")
	}
	c1, c2, stop, err := pipe("tcp", "127.0.0.1:0")()
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	key, buf := []byte{'k'}, make([]byte, 16)
	// Each run writes before it reads, so no Read waits: the counts stay those of the calls.
	if n := testing.AllocsPerRun(100, func() {
		if _, err := c1.Write(key); err != nil {
			t.Fatal(err)
		}
		if _, err := c2.Read(buf); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("Conn Write and Read: %v allocations, want 0", n)
	}

	r, w := nonblockingPipe(t)
	watch := newTestWatch(t, r, unix.EPOLLIN, WatchWhileWaiting)
	try := func() bool {
		_, err := Read(r, buf)
		return err != unix.EAGAIN
	}
	if n := testing.AllocsPerRun(100, func() {
		if _, err := Write(w, key); err != nil {
			t.Fatal(err)
		}
		if err := watch.Do(try); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("Watch.Do: %v allocations, want 0", n)
	}
}
