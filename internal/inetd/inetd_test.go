package inetd

import (
	"errors"
	"net"
	"os"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// socketPair returns the two ends of a connected socket as files, the first as inetd would
// hand it over.
func socketPair(t *testing.T) (server, client *os.File) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	server, client = os.NewFile(uintptr(fds[0]), "server"), os.NewFile(uintptr(fds[1]), "client")
	t.Cleanup(func() {
		_ = server.Close()
		_ = client.Close()
	})
	return server, client
}

// TestConnStaysNonblocking: taking the connection from standard input leaves its socket
// non-blocking. The conn shares the socket's open file description with the file, and a review
// of a hang found the checks made it blocking (os.File.Fd does), under the session's raw reads.
func TestConnStaysNonblocking(t *testing.T) {
	f, _ := socketPair(t)
	c, err := Conn(f)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if SameFile(f, os.Stderr) {
		t.Fatal("SameFile: the socket is not standard error")
	}
	rc, err := c.(syscall.Conn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var flags int
	var ferr error
	if err := rc.Control(func(fd uintptr) { flags, ferr = unix.FcntlInt(fd, unix.F_GETFL, 0) }); err != nil || ferr != nil {
		t.Fatal(err, ferr)
	}
	if flags&unix.O_NONBLOCK == 0 {
		t.Fatal("the connection's socket is blocking after Conn and SameFile")
	}
}

func TestConnNotASocket(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if _, err := Conn(r); !errors.Is(err, syscall.ENOTSOCK) {
		t.Fatalf("Conn of a pipe: %v, want ENOTSOCK", err)
	} else if want := "inetd: standard input is not a connected socket: socket operation on non-socket"; err.Error() != want {
		t.Errorf("Conn of a pipe: %q, want %q", err, want)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	f, err := l.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := Conn(f); err == nil {
		t.Fatal("Conn of a listening socket succeeded")
	}
}

func TestSameFile(t *testing.T) {
	f, client := socketPair(t)
	if !SameFile(f, f) || SameFile(f, client) || SameFile(f, nil) {
		t.Fatal("SameFile does not tell the ends apart")
	}
}
