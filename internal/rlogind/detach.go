package rlogind

import (
	"errors"
	"flag"
	"strconv"
	"strings"
	"time"

	"github.com/rlogin-go/rlogin/internal/daemon"
)

// detach is -detach-timeout and -detach-buffer (and their configuration keywords): how long a
// session whose connection was lost waits, detached, for its client to resume it, and how much
// of its output it keeps meanwhile.
type detach struct {
	timeout detachTimeout
	buffer  byteSize
}

// addDetachFlags adds the flags of d to set, with the defaults: an hour, 1 MiB.
func addDetachFlags(set *flag.FlagSet, d *detach) {
	d.timeout = detachTimeout(daemon.DefaultDetachTimeout)
	d.buffer = daemon.DefaultDetachBuffer
	set.Var(&d.timeout, "detach-timeout", "a terminal session whose connection is lost keeps running, detached, for this `duration`, for its client to resume it or a new rlogin -R to take it over; then it ends as a hang-up does. 0: no resume, the session ends at once")
	set.Var(&d.buffer, "detach-buffer", "`bytes` of output a detached session keeps for its client (K, KiB, M, MiB suffixes); beyond them the oldest is dropped, and the client is told how much")
}

// config is d as the daemon takes it: a negative timeout is off.
func (d *detach) config() (timeout time.Duration, buffer int) {
	if d.timeout == 0 {
		return -1, int(d.buffer)
	}
	return time.Duration(d.timeout), int(d.buffer)
}

// detachTimeout is -detach-timeout: a duration of at least a second, or 0.
type detachTimeout time.Duration

func (v *detachTimeout) String() string { return time.Duration(*v).String() }

func (v *detachTimeout) Set(s string) error {
	d, err := time.ParseDuration(s)
	switch {
	case err != nil:
		return errors.New("parse error")
	case d < 0:
		return errors.New("must not be negative")
	case d > 0 && d < time.Second:
		return errors.New("want at least 1s, or 0 for off")
	case d > maxDetachTimeout:
		return errors.New("want at most 720h (30 days)")
	}
	*v = detachTimeout(d)
	return nil
}

// maxDetachTimeout bounds -detach-timeout: a session nobody resumed in a month is abandoned, and
// a bound catches a typo of a unit.
const maxDetachTimeout = 30 * 24 * time.Hour

// byteSize is -detach-buffer: a number of bytes, with an optional binary suffix, from 1 KiB to
// 1 GiB.
type byteSize int

const (
	minDetachBuffer = 1 << 10
	maxDetachBuffer = 1 << 30
)

func (v *byteSize) String() string {
	switch n := int(*v); {
	case n >= 1<<20 && n%(1<<20) == 0:
		return strconv.Itoa(n>>20) + "MiB"
	case n >= 1<<10 && n%(1<<10) == 0:
		return strconv.Itoa(n>>10) + "KiB"
	default:
		return strconv.Itoa(n)
	}
}

func (v *byteSize) Set(s string) error {
	num, unit := s, 1
	for _, u := range []struct {
		suffix string
		size   int
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}} {
		if strings.HasSuffix(s, u.suffix) {
			num, unit = strings.TrimSuffix(s, u.suffix), u.size
			break
		}
	}
	n, err := strconv.Atoi(num)
	if err != nil || n < 0 || n > maxDetachBuffer/unit || n*unit < minDetachBuffer {
		return errors.New("want a size from 1KiB to 1GiB")
	}
	*v = byteSize(n * unit)
	return nil
}
