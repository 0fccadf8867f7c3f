package rlogind

import (
	"errors"
	"flag"
	"strconv"
	"time"

	"github.com/rlogin-go/rlogin/session"
)

// clientAlive is -client-alive-interval and -client-alive-count-max (and their configuration
// keywords): how sessions probe a silent client, as sshd's ClientAliveInterval and
// ClientAliveCountMax; an interval of 0 turns the probes off.
type clientAlive struct {
	interval aliveInterval
	count    aliveCount
}

// addClientAliveFlags adds the flags of a to set, with the defaults: 15 s, 3 times.
func addClientAliveFlags(set *flag.FlagSet, a *clientAlive) {
	a.interval = aliveInterval(session.DefaultKeepaliveInterval)
	a.count = session.DefaultKeepaliveCountMax
	set.Var(&a.interval, "client-alive-interval", "after this `duration` without a word from a client, ask it for one (capability keepalive), and again each time it passes; 0: never. TCP keepalive and TCP_USER_TIMEOUT take the same bound")
	set.Var(&a.count, "client-alive-count-max", "end a session, as a hang-up does, when its client has been silent for this `number` of -client-alive-interval")
}

// keepalive is a as the daemon takes it.
func (a *clientAlive) keepalive() session.Keepalive {
	if a.interval == 0 {
		return session.Keepalive{Interval: -1}
	}
	return session.Keepalive{Interval: time.Duration(a.interval), CountMax: int(a.count)}
}

// aliveInterval is -client-alive-interval: a duration of at least a second, or 0.
type aliveInterval time.Duration

func (v *aliveInterval) String() string { return time.Duration(*v).String() }

func (v *aliveInterval) Set(s string) error {
	d, err := time.ParseDuration(s)
	if err != nil {
		return errors.New("parse error")
	}
	if d < 0 {
		return errors.New("must not be negative")
	}
	*v = aliveInterval(d)
	return nil
}

// aliveCount is -client-alive-count-max: 1 to 1000.
type aliveCount int

func (v *aliveCount) String() string { return strconv.Itoa(int(*v)) }

func (v *aliveCount) Set(s string) error {
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 1000 {
		return errors.New("want a number from 1 to 1000")
	}
	*v = aliveCount(n)
	return nil
}
