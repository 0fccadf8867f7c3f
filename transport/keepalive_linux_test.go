package transport

import (
	"context"
	"net"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// tcpOptions reads the keepalive options of the TCP socket under c.
func tcpOptions(t *testing.T, c net.Conn) map[string]int {
	t.Helper()
	tc := tcpConnOf(c)
	if tc == nil {
		t.Fatalf("no TCP conn under %T", c)
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	err = rc.Control(func(fd uintptr) {
		for name, opt := range map[string][2]int{
			"SO_KEEPALIVE":     {unix.SOL_SOCKET, unix.SO_KEEPALIVE},
			"TCP_KEEPIDLE":     {unix.IPPROTO_TCP, unix.TCP_KEEPIDLE},
			"TCP_KEEPINTVL":    {unix.IPPROTO_TCP, unix.TCP_KEEPINTVL},
			"TCP_KEEPCNT":      {unix.IPPROTO_TCP, unix.TCP_KEEPCNT},
			"TCP_USER_TIMEOUT": {unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT},
		} {
			v, err := unix.GetsockoptInt(int(fd), opt[0], opt[1])
			if err != nil {
				t.Errorf("%s: %v", name, err)
			}
			got[name] = v
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func checkOptions(t *testing.T, side string, c net.Conn, idle, count int) {
	t.Helper()
	want := map[string]int{"SO_KEEPALIVE": 1, "TCP_KEEPIDLE": idle, "TCP_KEEPINTVL": idle, "TCP_KEEPCNT": count,
		"TCP_USER_TIMEOUT": idle * count * 1000}
	got := tcpOptions(t, c)
	for name, v := range want {
		if got[name] != v {
			t.Errorf("%s: %s = %d, want %d", side, name, got[name], v)
		}
	}
}

// TestKeepAliveDefaults: the conns a Dialer makes and a Mux accepts notice a dead peer within
// 45 seconds: keepalive 15 s x 3, and unacknowledged data for at most 45 s.
func TestKeepAliveDefaults(t *testing.T) {
	accepted, dialed := mailboxConns(t, "login")
	checkOptions(t, "accepted", accepted, 15, 3)
	checkOptions(t, "dialed", dialed, 15, 3)
}

// TestKeepAliveConfigured: the Dialer's and the Mux's KeepAlive set the options; a negative
// Interval leaves the socket as net makes it (keepalive on, no user timeout).
func TestKeepAliveConfigured(t *testing.T) {
	m, addr := startMux(t, "127.0.0.1:0", func(m *Mux) { m.KeepAlive = KeepAlive{Interval: 2 * time.Second, Count: 5} })
	box := announce(t, m, "login")
	d := Dialer{KeepAlive: KeepAlive{Interval: -1}}
	c1, c2, err := connPair(box, func(ctx context.Context) (net.Conn, error) { return d.DialMailbox(ctx, addr, "login") })
	if err != nil {
		t.Fatal(err)
	}
	defer c1.Close()
	defer c2.Close()
	checkOptions(t, "accepted", c1, 2, 5)
	if got := tcpOptions(t, c2); got["TCP_USER_TIMEOUT"] != 0 || got["SO_KEEPALIVE"] != 1 {
		t.Errorf("dialed with a negative Interval: %v, want net's keepalive and no user timeout", got)
	}
}

// TestKeepAliveOtherConns: conns without a TCP socket are left alone.
func TestKeepAliveOtherConns(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if err := (KeepAlive{}).Set(a); err != nil {
		t.Errorf("net.Pipe: %v", err)
	}
}
