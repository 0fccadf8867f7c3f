package rawio

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	creack "github.com/creack/pty"
	"golang.org/x/sys/unix"
)

// openTest opens path with flags for the test's duration.
func openTest(t *testing.T, path string, flags int) int {
	t.Helper()
	fd, err := unix.Open(path, flags|unix.O_CLOEXEC, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = unix.Close(fd) })
	return fd
}

// NewWatch takes the descriptors a raw read or write returns at once from (non-blocking
// sockets, pipes and character devices such as a pty master) and refuses the others with
// ErrMayBlock: blocking ones, and kinds for which O_NONBLOCK means nothing.
func TestNewWatchRefusesWhatMayBlock(t *testing.T) {
	pipe := func(flags int) int {
		var p [2]int
		if err := unix.Pipe2(p[:], flags|unix.O_CLOEXEC); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = unix.Close(p[0]); _ = unix.Close(p[1]) })
		return p[0]
	}
	socket := func(flags int) int {
		fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|flags|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = unix.Close(fds[0]); _ = unix.Close(fds[1]) })
		return fds[0]
	}
	master := func() int {
		m, tty, err := creack.Open()
		if err != nil {
			t.Skipf("no pty: %v", err)
		}
		t.Cleanup(func() { _ = m.Close(); _ = tty.Close() })
		fd, err := unix.Dup(int(m.Fd()))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = unix.Close(fd) })
		if err := unix.SetNonblock(fd, true); err != nil { // the duplicate shares the flag
			t.Fatal(err)
		}
		return fd
	}
	file := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(file, []byte("data"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		fd   func() int
		ok   bool
	}{
		{"non-blocking pipe", func() int { return pipe(unix.O_NONBLOCK) }, true},
		{"non-blocking socket", func() int { return socket(unix.SOCK_NONBLOCK) }, true},
		{"non-blocking pty master", master, true},
		{"non-blocking /dev/null", func() int { return openTest(t, os.DevNull, unix.O_RDWR|unix.O_NONBLOCK) }, true},
		{"blocking pipe", func() int { return pipe(0) }, false},
		{"blocking socket", func() int { return socket(0) }, false},
		{"regular file, O_NONBLOCK", func() int { return openTest(t, file, unix.O_RDONLY|unix.O_NONBLOCK) }, false},
		{"directory, O_NONBLOCK", func() int { return openTest(t, t.TempDir(), unix.O_RDONLY|unix.O_NONBLOCK) }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w, err := NewWatch(tc.fd(), unix.EPOLLIN, WatchWhileWaiting)
			if w != nil {
				defer w.Close()
			}
			switch {
			case tc.ok && err != nil:
				t.Fatalf("NewWatch refused it: %v", err)
			case !tc.ok && !errors.Is(err, ErrMayBlock):
				t.Fatalf("NewWatch: %v; want an error matching ErrMayBlock", err)
			}
		})
	}
}

// In race-enabled builds (the tests'), Read and Write refuse a descriptor that may block
// instead of blocking with the scheduler slot held.
func TestReadWriteCheckInRaceBuilds(t *testing.T) {
	if !checkEachCall {
		t.Skip("Read and Write check their descriptor only in race-enabled builds")
	}
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil { // blocking
		t.Fatal(err)
	}
	defer unix.Close(p[0])
	defer unix.Close(p[1])
	if _, err := Read(p[0], make([]byte, 1)); !errors.Is(err, ErrMayBlock) {
		t.Errorf("Read of a blocking empty pipe: %v; want an error matching ErrMayBlock", err)
	}
	if _, err := Write(p[1], []byte("x")); !errors.Is(err, ErrMayBlock) {
		t.Errorf("Write to a blocking pipe: %v; want an error matching ErrMayBlock", err)
	}
}
