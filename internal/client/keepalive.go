package client

import (
	"cmp"
	"fmt"
	"math"

	"github.com/rlogin-go/rlogin/session"
)

// keepalive is how rlogin probes a silent server, as the options say (-o ServerAliveInterval,
// -o ServerAliveCountMax, or the configuration files): with the defaults filled in, a negative
// Interval for none.
func (r *runner) keepalive() session.Keepalive {
	return session.Keepalive{
		Interval: cmp.Or(r.opts.ServerAliveInterval, session.DefaultKeepaliveInterval),
		CountMax: cmp.Or(r.opts.ServerAliveCountMax, session.DefaultKeepaliveCountMax),
	}
}

// noAnswerMessage is the one line for a server that stopped answering, in whole seconds, as the
// user set them ("no answer from web1 for 45 s: connection lost").
func noAnswerMessage(host string, e *session.NoAnswerError) string {
	secs := e.Silence.Seconds()
	if secs >= 1 {
		secs = math.Round(secs)
	}
	return fmt.Sprintf("no answer from %s for %v s: connection lost", host, secs)
}
