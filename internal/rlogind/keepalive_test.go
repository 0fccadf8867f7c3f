package rlogind

import (
	"io"
	"strings"
	"testing"
	"time"

	"github.com/rlogin-go/rlogin/session"
)

// TestClientAliveOptions: the defaults, the flags and keywords, 0 for off, and bad values.
func TestClientAliveOptions(t *testing.T) {
	home := t.TempDir()
	conf := writeConfig(t, home, "ClientAliveInterval 30s\nclient-alive-count-max 4\n")
	for _, tc := range []struct {
		args []string
		want session.Keepalive
	}{
		{nil, session.Keepalive{Interval: 15 * time.Second, CountMax: 3}},
		{[]string{"-client-alive-interval", "200ms", "-client-alive-count-max", "2"}, session.Keepalive{Interval: 200 * time.Millisecond, CountMax: 2}},
		{[]string{"-client-alive-interval", "0"}, session.Keepalive{Interval: -1}},
		{[]string{"-config", conf}, session.Keepalive{Interval: 30 * time.Second, CountMax: 4}},
	} {
		o, err := loadOptions(tc.args, io.Discard, home, "none")
		if err != nil {
			t.Fatalf("%q: %v", tc.args, err)
		}
		if got := o.serverConfig(nil, home, nil).ClientAlive; got != tc.want {
			t.Errorf("%q: ClientAlive %+v, want %+v", tc.args, got, tc.want)
		}
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-client-alive-interval", "-1s"}, "must not be negative"},
		{[]string{"-client-alive-interval", "soon"}, "parse error"},
		{[]string{"-client-alive-count-max", "0"}, "want a number from 1 to 1000"},
	} {
		if _, err := loadOptions(tc.args, io.Discard, home, "none"); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want an error with %q", tc.args, err, tc.want)
		}
	}
}
