package rawio

import (
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/net/nettest"
	"golang.org/x/sys/unix"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// pipe returns a connected pair of conns of network over loopback, both wrapped.
func pipe(network, addr string) nettest.MakePipe {
	return func() (c1, c2 net.Conn, stop func(), err error) {
		l, err := net.Listen(network, addr)
		if err != nil {
			return nil, nil, nil, err
		}
		defer l.Close()
		accepted := make(chan net.Conn, 1)
		go func() {
			c, err := l.Accept()
			if err != nil {
				c = nil
			}
			accepted <- c
		}()
		d, err := net.Dial(network, l.Addr().String())
		a := <-accepted
		if err != nil || a == nil {
			if d != nil {
				d.Close()
			}
			if a != nil {
				a.Close()
			}
			return nil, nil, nil, errors.New("no connection")
		}
		w1, ok1 := NewConn(d)
		w2, ok2 := NewConn(a)
		if !ok1 || !ok2 {
			return nil, nil, nil, errors.New("NewConn refused a socket")
		}
		return w1, w2, func() { w1.Close(); w2.Close() }, nil
	}
}

// The wrapped conns behave as net.Conns must: nettest checks reads and writes, deadlines,
// Close during I/O, and concurrent use.
func TestConnTCP(t *testing.T) { nettest.TestConn(t, pipe("tcp", "127.0.0.1:0")) }

func TestConnUnix(t *testing.T) {
	nettest.TestConn(t, pipe("unix", filepath.Join(t.TempDir(), "s")))
}

func TestNewConnNeedsADescriptor(t *testing.T) {
	a, b := net.Pipe() // no descriptor
	defer a.Close()
	defer b.Close()
	if _, ok := NewConn(a); ok {
		t.Fatal("NewConn wrapped a net.Pipe conn, which has no descriptor")
	}
}

func TestConnErrors(t *testing.T) {
	c1, c2, stop, err := pipe("tcp", "127.0.0.1:0")()
	if err != nil {
		t.Fatal(err)
	}
	defer stop()

	// A deadline: a timeout, as net reports it.
	_ = c1.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
	_, err = c1.Read(make([]byte, 1))
	var ne net.Error
	if !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("read past the deadline: %v; want a timeout", err)
	}
	_ = c1.SetReadDeadline(time.Time{})

	// The peer's close: io.EOF, exactly.
	c2.Close()
	if n, err := c1.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Errorf("read after the peer closed: %d, %v; want 0, io.EOF", n, err)
	}
	// A closed conn: net.ErrClosed in an *net.OpError.
	c1.Close()
	_, err = c1.Write([]byte("x"))
	var oe *net.OpError
	if !errors.Is(err, net.ErrClosed) || !errors.As(err, &oe) || oe.Op != "write" {
		t.Errorf("write on a closed conn: %v; want a write *net.OpError for net.ErrClosed", err)
	}
}

func TestConnResetIsSyscallError(t *testing.T) {
	c1, c2, stop, err := pipe("tcp", "127.0.0.1:0")()
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	// A close with linger 0 resets the connection.
	if err := c2.(*Conn).NetConn().(*net.TCPConn).SetLinger(0); err != nil {
		t.Fatal(err)
	}
	c2.Close()
	buf := make([]byte, 1)
	_ = c1.SetReadDeadline(time.Now().Add(5 * time.Second)) // watchdog
	_, err = c1.Read(buf)
	var se *os.SyscallError
	if !errors.Is(err, syscall.ECONNRESET) || !errors.As(err, &se) || se.Syscall != "read" {
		t.Errorf("read after a reset: %v; want read: ECONNRESET as an *os.SyscallError", err)
	}
}

// Read and Write never wait: on an empty or full pipe they return EAGAIN.
func TestReadWriteDoNotWait(t *testing.T) {
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_NONBLOCK|unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(p[0])
	defer unix.Close(p[1])
	buf := make([]byte, 64<<10)
	if n, err := Read(p[0], buf); n != 0 || err != unix.EAGAIN {
		t.Fatalf("Read of an empty pipe: %d, %v; want 0, EAGAIN", n, err)
	}
	total := 0
	for {
		n, err := Write(p[1], buf)
		if err == unix.EAGAIN {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		total += n
	}
	if total == 0 {
		t.Fatal("Write took nothing from an empty pipe")
	}
	got := 0
	for got < total {
		n, err := Read(p[0], buf)
		if err != nil {
			t.Fatalf("Read after %d of %d bytes: %v", got, total, err)
		}
		got += n
	}
	if n, err := Read(p[0], nil); n != 0 || err != nil {
		t.Errorf("Read of nothing: %d, %v", n, err)
	}
}

// ReadWait and WriteWait wait in the poller: a deadline ends the wait, the writer's close is
// io.EOF, and a full pipe takes everything once the reader drains it.
func TestWaitingOnAFile(t *testing.T) {
	r, w, err := os.Pipe() // non-blocking, in the poller
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	rrc, _ := r.SyscallConn()
	wrc, _ := w.SyscallConn()

	_ = r.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
	if _, err := ReadWait(rrc, make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("ReadWait past the deadline: %v", err)
	}
	_ = r.SetReadDeadline(time.Now().Add(10 * time.Second)) // watchdog

	big := make([]byte, 1<<20) // more than a pipe holds
	for i := range big {
		big[i] = byte(i)
	}
	done := make(chan error, 1)
	go func() {
		_ = w.SetWriteDeadline(time.Now().Add(10 * time.Second)) // watchdog
		n, err := WriteWait(wrc, big)
		if err == nil && n != len(big) {
			err = errors.New("short write")
		}
		w.Close()
		done <- err
	}()
	got := make([]byte, 0, len(big))
	buf := make([]byte, 32<<10)
	for {
		n, err := ReadWait(rrc, buf)
		got = append(got, buf[:n]...)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("ReadWait after %d bytes: %v", len(got), err)
		}
	}
	if err := <-done; err != nil {
		t.Fatalf("WriteWait: %v", err)
	}
	if string(got) != string(big) {
		t.Fatalf("read %d bytes, not the %d written", len(got), len(big))
	}
}

// addrless is a conn whose wrapper reports no addresses, as some wrappers do.
type addrless struct{ net.Conn }

func (addrless) LocalAddr() net.Addr  { return nil }
func (addrless) RemoteAddr() net.Addr { return nil }

func (a addrless) SyscallConn() (syscall.RawConn, error) {
	return a.Conn.(syscall.Conn).SyscallConn()
}

// An error on a conn without addresses is still an *net.OpError, not a panic.
func TestConnErrorWithoutAddresses(t *testing.T) {
	c1, _, stop, err := pipe("tcp", "127.0.0.1:0")()
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	c, ok := NewConn(addrless{c1.(*Conn).NetConn()})
	if !ok {
		t.Fatal("NewConn did not wrap a TCP conn")
	}
	_ = c.SetReadDeadline(time.Now().Add(time.Millisecond))
	_, err = c.Read(make([]byte, 1))
	var oe *net.OpError
	if !errors.As(err, &oe) || !errors.Is(err, os.ErrDeadlineExceeded) || oe.Net != "" {
		t.Fatalf("read past the deadline on an address-less conn: %#v; want an *net.OpError for the timeout", err)
	}
}

// A conn whose descriptor became blocking (Fd on a file that shares its open file description)
// is refused: a raw read on it would block with its scheduler slot held.
func TestNewConnRefusesBlocking(t *testing.T) {
	c1, _, stop, err := pipe("tcp", "127.0.0.1:0")()
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	tc := c1.(*Conn).NetConn().(*net.TCPConn)
	if _, ok := NewConn(tc); !ok {
		t.Fatal("NewConn refused a non-blocking TCP conn")
	}
	f, err := tc.File() // a duplicate: the same open file description
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.Fd() // makes the description blocking, for the conn too
	if _, ok := NewConn(tc); ok {
		t.Fatal("NewConn wrapped a conn whose descriptor is blocking")
	}
}

// Termios reads what the ordinary ioctl reads, and a change made through the slave shows
// through the master; a descriptor that is no terminal is refused with ENOTTY.
func TestTermios(t *testing.T) {
	master, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Skipf("no pty: %v", err)
	}
	defer unix.Close(master)
	if err := unix.IoctlSetPointerInt(master, unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(master, unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	slave, err := unix.Open("/dev/pts/"+strconv.Itoa(n), unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(slave)
	st, err := unix.IoctlGetTermios(slave, unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	st.Lflag &^= unix.ISIG
	st.Cc[unix.VINTR] = 0x07
	if err := unix.IoctlSetTermios(slave, unix.TCSETS, st); err != nil {
		t.Fatal(err)
	}
	got, err := Termios(master)
	if err != nil {
		t.Fatal(err)
	}
	if got.Lflag&unix.ISIG != 0 || got.Cc[unix.VINTR] != 0x07 {
		t.Errorf("Termios(master): lflag %#x, VINTR %#x; want ISIG off and VINTR 0x07 as set on the slave", got.Lflag, got.Cc[unix.VINTR])
	}
	want, err := unix.IoctlGetTermios(master, unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	if *got != *want {
		t.Errorf("Termios(master) = %+v; the ordinary ioctl reads %+v", *got, *want)
	}

	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if _, err := Termios(int(r.Fd())); !errors.Is(err, unix.ENOTTY) {
		t.Errorf("Termios(pipe): %v; want ENOTTY", err)
	}
}
