package daemon

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/rlogin-go/rlogin/session"
	"github.com/rlogin-go/rlogin/transport"
)

// netClientAliveEnv passes Config.ClientAlive to the net child, which serves the session and
// so probes the client: "interval-nanoseconds:count".
const netClientAliveEnv = "RLOGIND_NET_CLIENT_ALIVE"

// tcpKeepAlive is the TCP keepalive and user timeout that go with k: the same bound, so that a
// client without capability keepalive is given up on in the same time; none of rlogind's own
// (the system's) when k's probes are off.
func tcpKeepAlive(k session.Keepalive) transport.KeepAlive {
	return transport.KeepAlive{Interval: k.Interval, Count: k.CountMax}
}

// clientAliveEnv is the net child's environment entry for k.
func clientAliveEnv(k session.Keepalive) string {
	return fmt.Sprintf("%s=%d:%d", netClientAliveEnv, int64(k.Interval), k.CountMax)
}

// clientAliveFromEnv reads the net child's netClientAliveEnv; missing, it is the default.
func clientAliveFromEnv() (session.Keepalive, error) {
	v := os.Getenv(netClientAliveEnv)
	if v == "" {
		return session.Keepalive{}, nil
	}
	interval, count, ok := strings.Cut(v, ":")
	ns, err1 := strconv.ParseInt(interval, 10, 64)
	n, err2 := strconv.Atoi(count)
	if !ok || err1 != nil || err2 != nil {
		return session.Keepalive{}, fmt.Errorf("net child: bad %s %q", netClientAliveEnv, v)
	}
	return session.Keepalive{Interval: time.Duration(ns), CountMax: n}, nil
}
