package admission

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Defaults of the pre-authentication limits.
const (
	DefaultPerSourceMaxStartups = 4
	DefaultNetBlock4            = 32
	DefaultNetBlock6            = 64
	DefaultPenaltyMaxSources    = 65536
)

// DefaultMaxStartups returns sshd's default random early drop of unauthenticated connections,
// 10:30:100: from 10 such connections on, a new one is dropped with a probability of 30%, rising
// linearly to 100% at 100.
func DefaultMaxStartups() StartupLimit { return StartupLimit{Start: 10, Rate: 30, Full: 100} }

// StartupLimit is sshd's MaxStartups "start:rate:full": while fewer than Start connections are
// unauthenticated, a new one is always accepted; from Start on it is dropped with a probability
// of Rate percent, rising linearly to 100% at Full; from Full on every new one is dropped.
type StartupLimit struct {
	Start, Rate, Full int
}

// ParseStartupLimit reads "start:rate:full" or a single number n, which means n:100:n (a hard
// cap, as in sshd_config).
func ParseStartupLimit(s string) (StartupLimit, error) {
	f := strings.Split(s, ":")
	nums := make([]int, len(f))
	for i, v := range f {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil {
			return StartupLimit{}, fmt.Errorf("admission: max-startups %q: want start:rate:full or a number", s)
		}
		nums[i] = n
	}
	var l StartupLimit
	switch len(nums) {
	case 1:
		l = StartupLimit{Start: nums[0], Rate: 100, Full: nums[0]}
	case 3:
		l = StartupLimit{Start: nums[0], Rate: nums[1], Full: nums[2]}
	default:
		return StartupLimit{}, fmt.Errorf("admission: max-startups %q: want start:rate:full or a number", s)
	}
	if err := l.Check(); err != nil {
		return StartupLimit{}, err
	}
	return l, nil
}

// Check reports whether l is a usable limit: 1 <= Start <= Full and 1 <= Rate <= 100.
func (l StartupLimit) Check() error {
	if l.Start < 1 || l.Full < l.Start || l.Rate < 1 || l.Rate > 100 {
		return fmt.Errorf("admission: max-startups %v: want 1 <= start <= full and 1 <= rate <= 100", l)
	}
	return nil
}

// String returns l as start:rate:full.
func (l StartupLimit) String() string { return fmt.Sprintf("%d:%d:%d", l.Start, l.Rate, l.Full) }

// dropPercent is the probability, in percent, that a new connection is dropped while n
// connections are unauthenticated.
func (l StartupLimit) dropPercent(n int) int {
	switch {
	case n >= l.Full:
		return 100
	case n < l.Start:
		return 0
	}
	return l.Rate + (100-l.Rate)*(n-l.Start)/(l.Full-l.Start)
}

// NetBlockSize is sshd's PerSourceNetBlockSize: the prefix lengths that group IPv4 and IPv6
// client addresses into one source for the per-source limits.
type NetBlockSize struct {
	V4, V6 int
}

// ParseNetBlockSize reads "v4" or "v4:v6" (sshd_config's PerSourceNetBlockSize).
func ParseNetBlockSize(s string) (NetBlockSize, error) {
	v4s, v6s, two := strings.Cut(s, ":")
	b := NetBlockSize{V6: DefaultNetBlock6}
	var err error
	if b.V4, err = strconv.Atoi(v4s); err != nil || b.V4 < 0 || b.V4 > 32 {
		return NetBlockSize{}, fmt.Errorf("admission: per-source-net-block-size %q: want 0-32[:0-128]", s)
	}
	if two {
		if b.V6, err = strconv.Atoi(v6s); err != nil || b.V6 < 0 || b.V6 > 128 {
			return NetBlockSize{}, fmt.Errorf("admission: per-source-net-block-size %q: want 0-32[:0-128]", s)
		}
	}
	return b, nil
}

// String returns b as v4:v6.
func (b NetBlockSize) String() string { return fmt.Sprintf("%d:%d", b.V4, b.V6) }

// Penalties is sshd's PerSourcePenalties: how long a source is refused after what it did. A
// penalty for a source that already has one adds to it, up to Max; a source is refused only
// while its penalty is more than Min. All of AuthFail, NoAuth and GraceExceeded zero turns
// penalties off.
type Penalties struct {
	AuthFail      time.Duration // a login refused (key not authorized, bad or unknown user name)
	NoAuth        time.Duration // a connection that ended before any login attempt
	GraceExceeded time.Duration // a connection closed at the login grace time
	Max           time.Duration // the most a source's penalty can accumulate to
	Min           time.Duration // a penalty is enforced only once it is longer than this
	MaxSources    int           // most sources with a penalty; past it the soonest to expire are forgotten
}

// DefaultPenalties returns sshd's default penalties:
// authfail:5s noauth:1s grace-exceeded:10s max:10m min:15s max-sources:65536, as sshd's.
func DefaultPenalties() Penalties {
	return Penalties{
		AuthFail:      5 * time.Second,
		NoAuth:        time.Second,
		GraceExceeded: 10 * time.Second,
		Max:           10 * time.Minute,
		Min:           15 * time.Second,
		MaxSources:    DefaultPenaltyMaxSources,
	}
}

func (p Penalties) off() bool { return p.AuthFail <= 0 && p.NoAuth <= 0 && p.GraceExceeded <= 0 }

// ParsePenalties reads sshd_config's PerSourcePenalties syntax: "off", or keyword:value items
// separated by spaces or commas that change the defaults: authfail, noauth, grace-exceeded, max
// and min take durations (Go syntax such as 90s or 1h30m, or a number of seconds),
// max-sources a number. "" means the defaults.
func ParsePenalties(s string) (Penalties, error) {
	p := DefaultPenalties()
	if strings.TrimSpace(s) == "off" {
		return Penalties{Max: p.Max, Min: p.Min, MaxSources: p.MaxSources}, nil
	}
	for item := range strings.FieldsFuncSeq(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' }) {
		key, val, ok := strings.Cut(item, ":")
		if !ok {
			return Penalties{}, fmt.Errorf("admission: per-source-penalties: %q: want keyword:value", item)
		}
		if key == "max-sources" {
			n, err := strconv.Atoi(val)
			if err != nil || n < 1 {
				return Penalties{}, fmt.Errorf("admission: per-source-penalties: %q: want a positive number", item)
			}
			p.MaxSources = n
			continue
		}
		d, err := parseSeconds(val)
		if err != nil {
			return Penalties{}, fmt.Errorf("admission: per-source-penalties: %q: %w", item, err)
		}
		switch key {
		case "authfail":
			p.AuthFail = d
		case "noauth":
			p.NoAuth = d
		case "grace-exceeded":
			p.GraceExceeded = d
		case "max":
			p.Max = d
		case "min":
			p.Min = d
		default:
			return Penalties{}, fmt.Errorf("admission: per-source-penalties: unknown keyword %q", key)
		}
	}
	return p, nil
}

// String returns p in ParsePenalties's syntax.
func (p Penalties) String() string {
	if p.off() {
		return "off"
	}
	return fmt.Sprintf("authfail:%v noauth:%v grace-exceeded:%v max:%v min:%v max-sources:%d",
		p.AuthFail, p.NoAuth, p.GraceExceeded, p.Max, p.Min, p.MaxSources)
}

// parseSeconds reads a non-negative duration: Go syntax, or a bare number of seconds.
func parseSeconds(s string) (time.Duration, error) {
	if n, err := strconv.Atoi(s); err == nil && n >= 0 {
		return time.Duration(n) * time.Second, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("bad duration %q", s)
	}
	return d, nil
}

// ParsePrefixList reads a comma-separated list of IP addresses and CIDR prefixes
// ("192.0.2.1,2001:db8::/32"); a prefix must not have bits set past its length. "" or "none"
// is the empty list.
func ParsePrefixList(s string) ([]netip.Prefix, error) {
	if s = strings.TrimSpace(s); s == "" || s == "none" {
		return nil, nil
	}
	var list []netip.Prefix
	for item := range strings.SplitSeq(s, ",") {
		item = strings.TrimSpace(item)
		if !strings.Contains(item, "/") {
			a, err := netip.ParseAddr(item)
			if err != nil {
				return nil, fmt.Errorf("admission: address list: %q is not an IP address or prefix", item)
			}
			a = a.Unmap()
			list = append(list, netip.PrefixFrom(a, a.BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(item)
		if err != nil {
			return nil, fmt.Errorf("admission: address list: %q is not an IP address or prefix", item)
		}
		if p.Masked() != p {
			return nil, fmt.Errorf("admission: address list: %q has bits set past its length (%v?)", item, p.Masked())
		}
		list = append(list, p)
	}
	return list, nil
}

// Text forms, for flags and configuration keywords (flag.TextVar).

// MarshalText returns l as start:rate:full.
func (l StartupLimit) MarshalText() ([]byte, error) { return []byte(l.String()), nil }

// UnmarshalText reads l as ParseStartupLimit does.
func (l *StartupLimit) UnmarshalText(b []byte) error {
	v, err := ParseStartupLimit(string(b))
	if err != nil {
		return err
	}
	*l = v
	return nil
}

// MarshalText returns b as v4:v6.
func (b NetBlockSize) MarshalText() ([]byte, error) { return []byte(b.String()), nil }

// UnmarshalText reads b as ParseNetBlockSize does.
func (b *NetBlockSize) UnmarshalText(t []byte) error {
	v, err := ParseNetBlockSize(string(t))
	if err != nil {
		return err
	}
	*b = v
	return nil
}

// MarshalText returns p in ParsePenalties's syntax.
func (p Penalties) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// UnmarshalText reads p as ParsePenalties does.
func (p *Penalties) UnmarshalText(b []byte) error {
	v, err := ParsePenalties(string(b))
	if err != nil {
		return err
	}
	*p = v
	return nil
}
