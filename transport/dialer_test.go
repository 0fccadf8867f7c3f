package transport

import (
	"context"
	"errors"
	"net"
	"sync"
	"syscall"
	"testing"

	"github.com/rlogin-go/rlogin/transport/memnet"
)

// TestMemnetDialRefused: errors of a Network keep their cause and get one
// prefix.
func TestMemnetDialRefused(t *testing.T) {
	d := Dialer{Network: new(memnet.Network)}
	_, err := d.DialMailbox(testCtx(t), "127.0.0.1:5513", "login")
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("DialMailbox to nobody: %v, want ECONNREFUSED", err)
	}
	if want := "transport: dial tcp 127.0.0.1:5513: connection refused"; err.Error() != want {
		t.Errorf("message %q, want %q", err, want)
	}
}

// TestDialerOptions: LocalAddr and Control reach the system's sockets.
func TestDialerOptions(t *testing.T) {
	ctx := testCtx(t)
	var mu sync.Mutex
	var calls []string
	control := func(network, address string, _ syscall.RawConn) error {
		mu.Lock()
		defer mu.Unlock()
		calls = append(calls, network+" "+address)
		return nil
	}
	lc := ListenConfig{Control: control}
	l, err := lc.Listen(ctx, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	// 127.0.0.2 is loopback too on Linux: a source address no default picks.
	d := Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}, Control: control}
	accepted, dialed, err := connPair(l, func(ctx context.Context) (net.Conn, error) {
		return d.Dial(ctx, l.Addr().String())
	})
	if err != nil {
		t.Fatal(err)
	}
	defer accepted.Close()
	defer dialed.Close()
	if ip := accepted.RemoteAddr().(*net.TCPAddr).IP; !ip.Equal(net.IPv4(127, 0, 0, 2)) {
		t.Errorf("peer address %v, want the Dialer's LocalAddr 127.0.0.2", ip)
	}
	mu.Lock()
	defer mu.Unlock()
	if want := []string{"tcp4 127.0.0.1:0", "tcp4 " + l.Addr().String()}; len(calls) != 2 || calls[0] != want[0] || calls[1] != want[1] {
		t.Errorf("Control called with %q, want %q", calls, want)
	}
}

// TestNetworkWithSystemOptions: options of the system's sockets with a
// Network are an error, not ignored.
func TestNetworkWithSystemOptions(t *testing.T) {
	ctx := testCtx(t)
	n := new(memnet.Network)
	control := func(string, string, syscall.RawConn) error { return nil }
	if l, err := (&ListenConfig{Network: n, Control: control}).Listen(ctx, ":0"); !errors.Is(err, errSystemOnly) {
		if err == nil {
			_ = l.Close()
		}
		t.Errorf("Listen with a Network and Control: %v", err)
	}
	for _, d := range []*Dialer{
		{Network: n, Control: control},
		{Network: n, LocalAddr: &net.TCPAddr{}},
	} {
		if c, err := d.Dial(ctx, ":1"); !errors.Is(err, errSystemOnly) {
			if err == nil {
				_ = c.Close()
			}
			t.Errorf("Dial with a Network and %+v: %v", d, err)
		}
	}
}
