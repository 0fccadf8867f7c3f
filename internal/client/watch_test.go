package client

import (
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestWatchArmedWhenAlreadyReady makes room appear between a failed try and the arming of a
// one-shot watch, twice. The kernel queues an epoll entry found ready when armed and wakes
// waiters only if the entry is not queued yet; a first version disarmed the entry without
// taking it off that queue, so the second wait was never woken and hung.
func TestWatchArmedWhenAlreadyReady(t *testing.T) {
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_NONBLOCK|unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = unix.Close(p[0]); _ = unix.Close(p[1]) })
	w, err := newWatch(p[1], unix.EPOLLOUT, true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.close)

	fill := func() {
		chunk := make([]byte, 4096)
		for {
			if _, err := unix.Write(p[1], chunk); err == unix.EAGAIN {
				return
			} else if err != nil {
				t.Fatal(err)
			}
		}
	}
	drain := func() {
		buf := make([]byte, 1<<16)
		for {
			if _, err := unix.Read(p[0], buf); err != nil {
				return
			}
		}
	}
	for round := 1; round <= 3; round++ {
		fill()
		tries := 0
		done := make(chan error, 1)
		go func() {
			done <- w.do(func() bool {
				tries++
				if tries == 1 {
					drain() // room appears after the try saw none, before the watch is armed
					return false
				}
				return true
			})
		}()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
		case <-time.After(testTimeout):
			w.stop() // ends the wait, so that the goroutine does not outlive the test
			<-done
			t.Fatalf("round %d: the watch was armed with room already there and never woke", round)
		}
	}
}
