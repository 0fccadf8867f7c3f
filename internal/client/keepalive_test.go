package client

import (
	"testing"
	"time"

	"github.com/rlogin-go/rlogin/session"
)

// TestNoAnswerMessage: the line for a server that stopped answering, in seconds.
func TestNoAnswerMessage(t *testing.T) {
	for _, tc := range []struct {
		silence time.Duration
		want    string
	}{
		{45 * time.Second, "no answer from web1 for 45 s: connection lost"},
		{3 * time.Second, "no answer from web1 for 3 s: connection lost"},
		{600 * time.Millisecond, "no answer from web1 for 0.6 s: connection lost"},
	} {
		if got := noAnswerMessage("web1", &session.NoAnswerError{Silence: tc.silence}); got != tc.want {
			t.Errorf("%v: %q, want %q", tc.silence, got, tc.want)
		}
	}
}

// TestKeepaliveOptions: the defaults fill what the options leave out; N=0 stays off.
func TestKeepaliveOptions(t *testing.T) {
	for _, tc := range []struct {
		opts Options
		want session.Keepalive
	}{
		{Options{}, session.Keepalive{Interval: 15 * time.Second, CountMax: 3}},
		{Options{ServerAliveInterval: 5 * time.Second}, session.Keepalive{Interval: 5 * time.Second, CountMax: 3}},
		{Options{ServerAliveInterval: -1, ServerAliveCountMax: 2}, session.Keepalive{Interval: -1, CountMax: 2}},
	} {
		r := &runner{opts: tc.opts}
		if got := r.keepalive(); got != tc.want {
			t.Errorf("%+v: %+v, want %+v", tc.opts, got, tc.want)
		}
	}
}
