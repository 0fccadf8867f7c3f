package transport

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/rlogin-go/rlogin/transport/memnet"
	"go.uber.org/goleak"
	"golang.org/x/net/nettest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testCtx returns a context that bounds one test: a watchdog, so a stuck
// exchange fails the test instead of hanging it.
func testCtx(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// unixAddr returns a socket path in a fresh temporary directory.
func unixAddr(t testing.TB) string {
	t.Helper()
	return filepath.Join(t.TempDir(), "sock")
}

// skipWithoutIPv6 skips t if the host has no IPv6 loopback address (::1).
func skipWithoutIPv6(t testing.TB) {
	t.Helper()
	l, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		t.Skipf("host has no IPv6 loopback (::1): %v", err)
	}
	_ = l.Close()
}

// connPair accepts one conn from l while dial connects to it, and returns
// both. On error it closes l.
func connPair(l net.Listener, dial func(context.Context) (net.Conn, error)) (accepted, dialed net.Conn, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	type result struct {
		c   net.Conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		c, err := l.Accept()
		ch <- result{c, err}
	}()
	fail := func(err error) (net.Conn, net.Conn, error) {
		_ = l.Close()
		if r := <-ch; r.c != nil {
			_ = r.c.Close()
		}
		if dialed != nil {
			_ = dialed.Close()
		}
		return nil, nil, err
	}
	dialed, err = dial(ctx)
	if err != nil {
		return fail(err)
	}
	select {
	case r := <-ch:
		if r.err != nil {
			_ = dialed.Close()
			return nil, nil, r.err
		}
		return r.c, dialed, nil
	case <-ctx.Done():
		return fail(ctx.Err())
	}
}

// plainPipe makes pipes of conns from Listen(address) and Dial.
func plainPipe(address string) nettest.MakePipe {
	return func() (c1, c2 net.Conn, stop func(), err error) {
		l, err := Listen(context.Background(), address)
		if err != nil {
			return nil, nil, nil, err
		}
		c1, c2, err = connPair(l, func(ctx context.Context) (net.Conn, error) {
			return Dial(ctx, l.Addr().String())
		})
		if err != nil {
			return nil, nil, nil, err
		}
		stop = func() {
			_ = c1.Close()
			_ = c2.Close()
			_ = l.Close()
		}
		return c1, c2, stop, nil
	}
}

func TestConnTCP(t *testing.T) { nettest.TestConn(t, plainPipe("127.0.0.1:0")) }

func TestConnTCP6(t *testing.T) {
	skipWithoutIPv6(t)
	nettest.TestConn(t, plainPipe("[::1]:0"))
}

func TestConnUnix(t *testing.T) { nettest.TestConn(t, plainPipe("unix:"+unixAddr(t))) }

func TestSplitAddress(t *testing.T) {
	tests := []struct {
		address, network, addr string
	}{
		{"localhost:5513", "tcp", "localhost:5513"},
		{":5513", "tcp", ":5513"},
		{"[::1]:5513", "tcp", "[::1]:5513"},
		{"tcp:unix:5513", "tcp", "unix:5513"},
		{"tcp:[::1]:22", "tcp", "[::1]:22"},
		{"unix:/run/rlogind.sock", "unix", "/run/rlogind.sock"},
		{"unix:rel.sock", "unix", "rel.sock"},
		{"unix:@abstract", "unix", "@abstract"},
		{"/tmp/s", "unix", "/tmp/s"},
		{"./s", "unix", "./s"},
	}
	for _, tt := range tests {
		network, addr, err := splitAddress(tt.address)
		if err != nil || network != tt.network || addr != tt.addr {
			t.Errorf("splitAddress(%q) = %q, %q, %v; want %q, %q", tt.address, network, addr, err, tt.network, tt.addr)
		}
	}
	for _, bad := range []string{"", "unix:", "tcp:"} {
		if _, _, err := splitAddress(bad); err == nil {
			t.Errorf("splitAddress(%q) succeeded", bad)
		}
	}
}

// roundTrip checks that bytes written on a reach b.
func roundTrip(t *testing.T, a, b net.Conn) {
	t.Helper()
	_ = b.SetReadDeadline(time.Now().Add(10 * time.Second))
	defer b.SetReadDeadline(time.Time{})
	if _, err := a.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(b, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("read %q, %v; want ping", buf, err)
	}
}

// TestAddressForms: every address form reaches its listener, over the
// system's sockets and over a Network, which gets the forms mapped the same
// way.
func TestAddressForms(t *testing.T) {
	path := unixAddr(t)
	abstract := "unix:@rlogin-transport-test-" + strconv.Itoa(os.Getpid())
	tests := []struct{ listen, network, dial string }{
		{"127.0.0.1:0", "tcp", ""},
		{"tcp:127.0.0.1:0", "tcp", "tcp:"},
		{":0", "tcp", ""},
		{"unix:" + path, "unix", ""},
		{path, "unix", "unix:"},
		{abstract, "unix", "unix:"},
	}
	n := new(memnet.Network)
	for _, nw := range []struct {
		name string
		lc   ListenConfig
		d    Dialer
	}{{"system", ListenConfig{}, Dialer{}}, {"memnet", ListenConfig{Network: n}, Dialer{Network: n}}} {
		for _, tt := range tests {
			t.Run(nw.name+" "+tt.listen, func(t *testing.T) {
				checkAddressForm(t, &nw.lc, &nw.d, tt.listen, tt.network, tt.dial)
			})
		}
	}
}

// checkAddressForm listens on listen with lc, dials the listener's address
// prefixed with dial with d, and checks that bytes go both ways.
func checkAddressForm(t *testing.T, lc *ListenConfig, d *Dialer, listen, network, dial string) {
	t.Helper()
	l, err := lc.Listen(testCtx(t), listen)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if got := l.Addr().Network(); got != network {
		t.Errorf("listener's network %q, want %q", got, network)
	}
	c1, c2, err := connPair(l, func(ctx context.Context) (net.Conn, error) {
		return d.Dial(ctx, dial+l.Addr().String())
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c1.Close()
	defer c2.Close()
	roundTrip(t, c1, c2)
	roundTrip(t, c2, c1)
}

func TestIPv6Loopback(t *testing.T) {
	skipWithoutIPv6(t)
	ctx := testCtx(t)
	l, err := Listen(ctx, "[::1]:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	c1, c2, err := connPair(l, func(ctx context.Context) (net.Conn, error) {
		return Dial(ctx, l.Addr().String())
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c1.Close()
	defer c2.Close()
	if ip := c2.RemoteAddr().(*net.TCPAddr).IP; !ip.Equal(net.IPv6loopback) {
		t.Errorf("remote address %v, want ::1", ip)
	}
	roundTrip(t, c2, c1)
}

func TestCloseUnblocksAccept(t *testing.T) {
	for _, address := range []string{"127.0.0.1:0", unixAddr(t)} {
		l, err := Listen(testCtx(t), address)
		if err != nil {
			t.Fatal(err)
		}
		errc := make(chan error, 1)
		go func() {
			c, err := l.Accept()
			if err == nil {
				_ = c.Close()
			}
			errc <- err
		}()
		_ = l.Close()
		select {
		case err := <-errc:
			if !errors.Is(err, net.ErrClosed) {
				t.Errorf("%s: Accept after Close: %v, want net.ErrClosed", address, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: Close did not unblock Accept", address)
		}
	}
}

func TestUnixRemovesSocketOnClose(t *testing.T) {
	path := unixAddr(t)
	l, err := Listen(testCtx(t), path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(path); err != nil {
		t.Fatalf("socket file missing while listening: %v", err)
	}
	_ = l.Close()
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket file after Close: %v, want it removed", err)
	}
}

func TestUnixReplacesStaleSocket(t *testing.T) {
	ctx := testCtx(t)
	path := unixAddr(t)
	// A socket file nobody listens on, as left by a process that died.
	stale, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	stale.SetUnlinkOnClose(false)
	_ = stale.Close()
	if _, err := os.Lstat(path); err != nil {
		t.Fatalf("stale socket file: %v", err)
	}

	l, err := Listen(ctx, path)
	if err != nil {
		t.Fatalf("Listen over a stale socket: %v", err)
	}
	defer l.Close()
	c1, c2, err := connPair(l, func(ctx context.Context) (net.Conn, error) { return Dial(ctx, path) })
	if err != nil {
		t.Fatal(err)
	}
	defer c1.Close()
	defer c2.Close()
	roundTrip(t, c2, c1)
}

func TestUnixKeepsLiveSocket(t *testing.T) {
	ctx := testCtx(t)
	path := unixAddr(t)
	l, err := Listen(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	// The probe Listen makes is accepted by l; drain it so it is closed.
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		c, err := l.Accept()
		if err == nil {
			_ = c.Close()
		}
	}()
	if l2, err := Listen(ctx, path); err == nil {
		_ = l2.Close()
		t.Fatal("second Listen on a live socket succeeded")
	} else if !errors.Is(err, syscall.EADDRINUSE) {
		t.Errorf("second Listen: %v, want EADDRINUSE", err)
	}
	<-drained
	c1, c2, err := connPair(l, func(ctx context.Context) (net.Conn, error) { return Dial(ctx, path) })
	if err != nil {
		t.Fatalf("first listener broken: %v", err)
	}
	defer c1.Close()
	defer c2.Close()
	roundTrip(t, c2, c1)
}

func TestUnixKeepsNonSocketFile(t *testing.T) {
	path := unixAddr(t)
	if err := os.WriteFile(path, []byte("precious"), 0o600); err != nil {
		t.Fatal(err)
	}
	if l, err := Listen(testCtx(t), path); err == nil {
		_ = l.Close()
		t.Fatal("Listen on a regular file succeeded")
	}
	if data, err := os.ReadFile(path); err != nil || string(data) != "precious" {
		t.Errorf("regular file after Listen: %q, %v", data, err)
	}
}
