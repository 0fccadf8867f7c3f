package rawio

import (
	"errors"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rlogin-go/rlogin/internal/termtest"
)

const watchTimeout = 20 * time.Second

// nonblockingPipe returns a pipe whose ends are both non-blocking.
func nonblockingPipe(t *testing.T) (r, w int) {
	t.Helper()
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_NONBLOCK|unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = unix.Close(p[0]); _ = unix.Close(p[1]) })
	return p[0], p[1]
}

func newTestWatch(t *testing.T, fd int, events uint32, mode WatchMode) *Watch {
	t.Helper()
	w, err := NewWatch(fd, events, mode)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Close() })
	return w
}

// watched returns the events for which a Watch watches fd, and whether one watches fd at all. The
// tests' pipes are not in Go's poller, so any epoll instance that watches one is a Watch's.
func watched(t *testing.T, fd int) (uint32, bool) {
	t.Helper()
	ws := termtest.EpollWatches(t, fd)
	if len(ws) > 1 {
		t.Fatalf("%d epoll instances watch descriptor %d", len(ws), fd)
	}
	if len(ws) == 0 {
		return 0, false
	}
	return ws[0], true
}

// waitWatched waits until a Watch watches fd (a Do has started waiting), or fails the test.
func waitWatched(t *testing.T, fd int) uint32 {
	t.Helper()
	deadline := time.Now().Add(watchTimeout)
	for {
		if ev, ok := watched(t, fd); ok {
			return ev
		}
		if time.Now().After(deadline) {
			t.Fatal("the Watch did not start watching its descriptor")
		}
		time.Sleep(time.Millisecond)
	}
}

// An on-demand Watch watches its descriptor, for its events only, while Do waits, and not
// before or after: otherwise every signal of a busy descriptor would wake the process.
func TestWatchOnDemandWatchesOnlyWhileWaiting(t *testing.T) {
	r, wr := nonblockingPipe(t)
	w := newTestWatch(t, r, unix.EPOLLIN, WatchWhileWaiting)
	if ev, ok := watched(t, r); ok {
		t.Fatalf("before any Do, the Watch watches the pipe (events %#x)", ev)
	}

	var got []byte
	done := make(chan error, 1)
	go func() {
		buf := make([]byte, 16)
		done <- w.Do(func() bool {
			n, err := Read(r, buf)
			got = append(got, buf[:max(n, 0)]...)
			return err != unix.EAGAIN
		})
	}()
	ev := waitWatched(t, r)
	if ev&unix.EPOLLOUT != 0 || ev&unix.EPOLLIN == 0 {
		t.Errorf("while Do waits, the Watch watches events %#x, want EPOLLIN and not EPOLLOUT", ev)
	}
	if _, err := unix.Write(wr, []byte("x")); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Do: %v", err)
		}
	case <-time.After(watchTimeout):
		w.Stop()
		<-done
		t.Fatal("Do did not return when input arrived")
	}
	if string(got) != "x" {
		t.Errorf("Do's try read %q, want %q", got, "x")
	}
	if ev, ok := watched(t, r); ok {
		t.Errorf("after Do, the Watch still watches the pipe (events %#x)", ev)
	}
}

// A Watch that is not on demand watches its descriptor all along.
func TestWatchAlways(t *testing.T) {
	r, _ := nonblockingPipe(t)
	newTestWatch(t, r, unix.EPOLLIN, WatchAlways)
	if ev, ok := watched(t, r); !ok || ev&unix.EPOLLIN == 0 {
		t.Fatalf("the Watch watches events %#x (watching: %v), want EPOLLIN", ev, ok)
	}
}

// TestWatchReadyWhenAdded makes room appear between a failed try and the start of the
// wait, three times. The kernel queues an epoll entry found ready when armed and wakes waiters
// only if the entry is not queued yet; a first version kept a disabled entry and re-armed it,
// which left it queued after the first such wait, so the second wait was never woken and hung.
func TestWatchReadyWhenAdded(t *testing.T) {
	r, wr := nonblockingPipe(t)
	w := newTestWatch(t, wr, unix.EPOLLOUT, WatchWhileWaiting)
	fill := func() {
		chunk := make([]byte, 4096)
		for {
			if _, err := unix.Write(wr, chunk); err == unix.EAGAIN {
				return
			} else if err != nil {
				t.Fatal(err)
			}
		}
	}
	drain := func() {
		buf := make([]byte, 1<<16)
		for {
			if _, err := unix.Read(r, buf); err != nil {
				return
			}
		}
	}
	for round := 1; round <= 3; round++ {
		fill()
		tries := 0
		done := make(chan error, 1)
		go func() {
			done <- w.Do(func() bool {
				tries++
				if tries == 1 {
					drain() // room appears after the try saw none, before the wait starts
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
		case <-time.After(watchTimeout):
			w.Stop() // ends the wait, so that the goroutine does not outlive the test
			<-done
			t.Fatalf("round %d: the Watch found room already there and never woke", round)
		}
	}
}

// Stop and Close end a Do in progress and every later one, each with its error.
func TestWatchStopAndClose(t *testing.T) {
	for _, tc := range []struct {
		name string
		end  func(*Watch)
		want error
	}{
		{"Stop", (*Watch).Stop, os.ErrDeadlineExceeded},
		{"Close", func(w *Watch) { _ = w.Close() }, os.ErrClosed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, _ := nonblockingPipe(t)
			w := newTestWatch(t, r, unix.EPOLLIN, WatchWhileWaiting)
			done := make(chan error, 1)
			go func() {
				buf := make([]byte, 16)
				done <- w.Do(func() bool {
					_, err := Read(r, buf)
					return err != unix.EAGAIN
				})
			}()
			waitWatched(t, r) // waiting: nothing is written to the pipe
			tc.end(w)
			select {
			case err := <-done:
				if !errors.Is(err, tc.want) {
					t.Errorf("Do in progress: %v, want %v", err, tc.want)
				}
			case <-time.After(watchTimeout):
				t.Fatalf("%s did not end a Do in progress", tc.name)
			}
			if err := w.Do(func() bool { return false }); !errors.Is(err, tc.want) {
				t.Errorf("Do after %s: %v, want %v", tc.name, err, tc.want)
			}
		})
	}
}
