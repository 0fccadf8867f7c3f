package memnet

import (
	"context"
	"errors"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/net/nettest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testCtx bounds one test: a watchdog, so a stuck call fails the test.
func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// pair returns a dialed conn and the conn its listener accepted.
func pair(n *Network, network, address string) (dialed, accepted net.Conn, err error) {
	ctx := context.Background()
	l, err := n.Listen(ctx, network, address)
	if err != nil {
		return nil, nil, err
	}
	defer l.Close()
	dialed, err = n.Dial(ctx, network, l.Addr().String())
	if err != nil {
		return nil, nil, err
	}
	accepted, err = l.Accept() // queued already: does not wait
	if err != nil {
		_ = dialed.Close()
		return nil, nil, err
	}
	return dialed, accepted, nil
}

func makePipe(network, address string) nettest.MakePipe {
	return func() (c1, c2 net.Conn, stop func(), err error) {
		var n Network
		c1, c2, err = pair(&n, network, address)
		if err != nil {
			return nil, nil, nil, err
		}
		return c1, c2, func() { _ = c1.Close(); _ = c2.Close() }, nil
	}
}

func TestConnTCP(t *testing.T)  { nettest.TestConn(t, makePipe("tcp", "127.0.0.1:0")) }
func TestConnUnix(t *testing.T) { nettest.TestConn(t, makePipe("unix", "/run/test.sock")) }

func TestAddresses(t *testing.T) {
	ctx := testCtx(t)
	var n Network
	wild, err := n.Listen(ctx, "tcp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer wild.Close()
	_, port, err := net.SplitHostPort(wild.Addr().String())
	if err != nil || port == "0" {
		t.Fatalf("Addr %q of a listener on port 0: %v", wild.Addr(), err)
	}
	one, err := n.Listen(ctx, "tcp", "10.0.0.1:"+port)
	if err != nil {
		t.Fatal(err)
	}
	defer one.Close()
	if _, err := n.Listen(ctx, "tcp", ":"+port); !errors.Is(err, syscall.EADDRINUSE) {
		t.Errorf("second Listen on :%s: %v, want EADDRINUSE", port, err)
	}
	for _, tt := range []struct {
		address string
		want    net.Listener
	}{
		{":" + port, wild},
		{"192.0.2.7:" + port, wild},
		{"10.0.0.1:" + port, one},
	} {
		c, err := n.Dial(ctx, "tcp", tt.address)
		if err != nil {
			t.Fatalf("Dial(%q): %v", tt.address, err)
		}
		_ = c.Close()
		if c.RemoteAddr() != tt.want.Addr() {
			t.Errorf("Dial(%q) reached %v, want %v", tt.address, c.RemoteAddr(), tt.want.Addr())
		}
		a, err := tt.want.Accept()
		if err != nil {
			t.Fatal(err)
		}
		if a.RemoteAddr() != c.LocalAddr() {
			t.Errorf("accepted conn's peer %v, dialer's address %v", a.RemoteAddr(), c.LocalAddr())
		}
		_ = a.Close()
	}
	for _, tt := range []struct{ network, address string }{
		{"tcp", "127.0.0.1:1"},
		{"unix", "/nobody"},
	} {
		if _, err := n.Dial(ctx, tt.network, tt.address); !errors.Is(err, syscall.ECONNREFUSED) {
			t.Errorf("Dial(%s, %q): %v, want ECONNREFUSED", tt.network, tt.address, err)
		}
	}
	if _, err := n.Listen(ctx, "udp", ":1"); err == nil {
		t.Error("Listen on udp succeeded")
	}
	if _, err := n.Listen(ctx, "tcp", "nohost"); err == nil {
		t.Error("Listen on an address without a port succeeded")
	}
}

func TestListenerClose(t *testing.T) {
	ctx := testCtx(t)
	var n Network
	l, err := n.Listen(ctx, "unix", "sock")
	if err != nil {
		t.Fatal(err)
	}
	waiting, err := n.Dial(ctx, "unix", "sock")
	if err != nil {
		t.Fatal(err)
	}
	defer waiting.Close()
	accepted := make(chan error, 1)
	go func() {
		c, err := l.Accept() // the waiting conn
		if err == nil {
			_ = c.Close()
			_, err = l.Accept() // until Close
		}
		accepted <- err
	}()
	// The waiting conn's peer was accepted and closed: it reads EOF.
	_ = waiting.SetDeadline(time.Now().Add(10 * time.Second)) // watchdog
	if _, err := waiting.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("Read of a conn whose peer closed: %v, want io.EOF", err)
	}
	if _, err := waiting.Write([]byte("x")); !errors.Is(err, syscall.EPIPE) {
		t.Errorf("Write to a conn whose peer closed: %v, want EPIPE", err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-accepted; !errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept after Close: %v, want net.ErrClosed", err)
	}
	if err := l.Close(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("second Close: %v, want net.ErrClosed", err)
	}
	if _, err := n.Dial(ctx, "unix", "sock"); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("Dial after Close: %v, want ECONNREFUSED", err)
	}
	// The address is free again.
	l, err = n.Listen(ctx, "unix", "sock")
	if err != nil {
		t.Fatal(err)
	}
	// A conn never accepted is closed with the listener.
	never, err := n.Dial(ctx, "unix", "sock")
	if err != nil {
		t.Fatal(err)
	}
	defer never.Close()
	_ = l.Close()
	_ = never.SetDeadline(time.Now().Add(10 * time.Second)) // watchdog
	if _, err := never.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("Read of a conn never accepted after the listener's Close: %v, want io.EOF", err)
	}
}

func TestBacklogFull(t *testing.T) {
	ctx := testCtx(t)
	var n Network
	l, err := n.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for i := range backlog {
		c, err := n.Dial(ctx, "tcp", l.Addr().String())
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		defer c.Close()
	}
	if _, err := n.Dial(ctx, "tcp", l.Addr().String()); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("dial past the backlog: %v, want ECONNREFUSED", err)
	}
}

func TestCloseWrite(t *testing.T) {
	var n Network
	a, b, err := pair(&n, "tcp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	defer b.Close()
	_ = a.SetDeadline(time.Now().Add(10 * time.Second)) // watchdog
	_ = b.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(a, "request"); err != nil {
		t.Fatal(err)
	}
	if err := a.(*Conn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Write([]byte("x")); !errors.Is(err, syscall.EPIPE) {
		t.Errorf("Write after CloseWrite: %v, want EPIPE", err)
	}
	got, err := io.ReadAll(b)
	if err != nil || string(got) != "request" {
		t.Fatalf("peer read %q, %v; want the request, then EOF", got, err)
	}
	// The other direction still works.
	if _, err := io.WriteString(b, "reply"); err != nil {
		t.Fatal(err)
	}
	_ = b.Close()
	if got, err := io.ReadAll(a); err != nil || string(got) != "reply" {
		t.Errorf("read %q, %v; want the reply, then EOF", got, err)
	}
}

func TestContextChecked(t *testing.T) {
	var n Network
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := n.Listen(ctx, "tcp", ":0"); !errors.Is(err, context.Canceled) {
		t.Errorf("Listen with a cancelled ctx: %v", err)
	}
	if _, err := n.Dial(ctx, "tcp", ":1"); !errors.Is(err, context.Canceled) {
		t.Errorf("Dial with a cancelled ctx: %v", err)
	}
}
