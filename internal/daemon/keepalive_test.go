package daemon

import (
	"strings"
	"testing"
	"time"

	"github.com/rlogin-go/rlogin/session"
)

// TestClientAliveEnv: the net child reads back the ClientAlive the monitor passes, off included.
func TestClientAliveEnv(t *testing.T) {
	for _, k := range []session.Keepalive{{}, {Interval: 200 * time.Millisecond, CountMax: 3}, {Interval: -1}} {
		name, value, _ := strings.Cut(clientAliveEnv(k), "=")
		t.Setenv(name, value)
		got, err := clientAliveFromEnv()
		if err != nil || got != k {
			t.Errorf("%+v: read back %+v, %v", k, got, err)
		}
	}
	t.Setenv(netClientAliveEnv, "15s")
	if _, err := clientAliveFromEnv(); err == nil {
		t.Error("a malformed value was read")
	}
}
