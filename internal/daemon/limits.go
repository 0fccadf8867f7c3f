package daemon

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Defaults of the pre-authentication limits.
const (
	DefaultPerSourceMaxStartups = 4
	DefaultMaxSessions          = 512
	DefaultNetBlock4            = 32
	DefaultNetBlock6            = 64
	DefaultPenaltyMaxSources    = 65536
)

// DefaultMaxStartups is the random early drop of unauthenticated connections when
// Config.MaxStartups is zero: from 10 such connections on, a new one is dropped with a
// probability of 30%, rising linearly to 100% at 100.
var DefaultMaxStartups = StartupLimit{Start: 10, Rate: 30, Full: 100}

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
			return StartupLimit{}, fmt.Errorf("daemon: max-startups %q: want start:rate:full or a number", s)
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
		return StartupLimit{}, fmt.Errorf("daemon: max-startups %q: want start:rate:full or a number", s)
	}
	if err := l.check(); err != nil {
		return StartupLimit{}, err
	}
	return l, nil
}

func (l StartupLimit) check() error {
	if l.Start < 1 || l.Full < l.Start || l.Rate < 1 || l.Rate > 100 {
		return fmt.Errorf("daemon: max-startups %v: want 1 <= start <= full and 1 <= rate <= 100", l)
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
		return NetBlockSize{}, fmt.Errorf("daemon: per-source-net-block-size %q: want 0-32[:0-128]", s)
	}
	if two {
		if b.V6, err = strconv.Atoi(v6s); err != nil || b.V6 < 0 || b.V6 > 128 {
			return NetBlockSize{}, fmt.Errorf("daemon: per-source-net-block-size %q: want 0-32[:0-128]", s)
		}
	}
	return b, nil
}

// String returns b as v4:v6.
func (b NetBlockSize) String() string { return fmt.Sprintf("%d:%d", b.V4, b.V6) }

// source is a client's IP address and the network block it belongs to; the zero source (not
// ok) stands for clients without an IP address (Unix-domain sockets), to which no per-source
// rule applies.
type source struct {
	addr   netip.Addr
	prefix netip.Prefix
}

func (s source) ok() bool       { return s.prefix.IsValid() }
func (s source) String() string { return s.prefix.String() }

// sourceOf returns the block of addr's IP address (IPv4-mapped IPv6 addresses count as IPv4).
func sourceOf(addr net.Addr, bits NetBlockSize) source {
	ta, ok := addr.(*net.TCPAddr)
	if !ok {
		return source{}
	}
	ip, ok := netip.AddrFromSlice(ta.IP)
	if !ok {
		return source{}
	}
	ip = ip.Unmap()
	n := bits.V6
	if ip.Is4() {
		n = bits.V4
	}
	ip = ip.WithZone("")
	p, err := ip.Prefix(n)
	if err != nil {
		return source{}
	}
	return source{addr: ip, prefix: p}
}

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

// DefaultPenalties are the penalties when Config.PerSourcePenalties is nil:
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
			return Penalties{}, fmt.Errorf("daemon: per-source-penalties: %q: want keyword:value", item)
		}
		if key == "max-sources" {
			n, err := strconv.Atoi(val)
			if err != nil || n < 1 {
				return Penalties{}, fmt.Errorf("daemon: per-source-penalties: %q: want a positive number", item)
			}
			p.MaxSources = n
			continue
		}
		d, err := parseSeconds(val)
		if err != nil {
			return Penalties{}, fmt.Errorf("daemon: per-source-penalties: %q: %w", item, err)
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
			return Penalties{}, fmt.Errorf("daemon: per-source-penalties: unknown keyword %q", key)
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
				return nil, fmt.Errorf("daemon: address list: %q is not an IP address or prefix", item)
			}
			a = a.Unmap()
			list = append(list, netip.PrefixFrom(a, a.BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(item)
		if err != nil {
			return nil, fmt.Errorf("daemon: address list: %q is not an IP address or prefix", item)
		}
		if p.Masked() != p {
			return nil, fmt.Errorf("daemon: address list: %q has bits set past its length (%v?)", item, p.Masked())
		}
		list = append(list, p)
	}
	return list, nil
}

// penaltyKind is what a source is penalized for.
type penaltyKind int

const (
	penaltyNone penaltyKind = iota
	penaltyAuthFail
	penaltyNoAuth
	penaltyGraceExceeded
)

func (k penaltyKind) String() string {
	switch k {
	case penaltyAuthFail:
		return "failed authentication"
	case penaltyNoAuth:
		return "no authentication attempt"
	case penaltyGraceExceeded:
		return "login grace time exceeded"
	}
	return "none"
}

// penalty is the state of one penalized source.
type penalty struct {
	expiry time.Time
	active bool // the accumulated penalty went past Min: the source is refused until expiry
	reason penaltyKind
}

// penaltyTable tracks penalized sources. It is not safe for concurrent use: the Server guards
// it with its mutex.
type penaltyTable struct {
	cfg    Penalties
	exempt []netip.Prefix
	m      map[netip.Prefix]*penalty
}

func newPenaltyTable() *penaltyTable {
	return &penaltyTable{cfg: DefaultPenalties(), m: make(map[netip.Prefix]*penalty)}
}

// configure applies new settings; penalties already recorded keep their expiry.
func (t *penaltyTable) configure(cfg Penalties, exempt []netip.Prefix) {
	t.cfg, t.exempt = cfg, exempt
	if cfg.off() {
		clear(t.m)
	}
}

// exempted reports whether the client's own address is in the exemption list.
func (t *penaltyTable) exempted(src source) bool {
	for _, p := range t.exempt {
		if p.Contains(src.addr) {
			return true
		}
	}
	return false
}

// refused reports whether src is refused at now, and why.
func (t *penaltyTable) refused(src source, now time.Time) (penaltyKind, time.Duration, bool) {
	p := t.m[src.prefix]
	if p == nil {
		return penaltyNone, 0, false
	}
	if !now.Before(p.expiry) {
		delete(t.m, src.prefix)
		return penaltyNone, 0, false
	}
	if !p.active {
		return penaltyNone, 0, false
	}
	return p.reason, p.expiry.Sub(now), true
}

// add penalizes src for kind at now, as sshd's srclimit_penalise: a new penalty lasts its
// duration; one added to an unexpired penalty extends it, up to Max from now. It reports
// whether this made the penalty active, and for how long it then lasts.
func (t *penaltyTable) add(src source, kind penaltyKind, now time.Time) (activated bool, left time.Duration) {
	if !src.ok() || t.exempted(src) {
		return false, 0
	}
	var d time.Duration
	switch kind {
	case penaltyAuthFail:
		d = t.cfg.AuthFail
	case penaltyNoAuth:
		d = t.cfg.NoAuth
	case penaltyGraceExceeded:
		d = t.cfg.GraceExceeded
	}
	if d <= 0 {
		return false, 0
	}
	p := t.m[src.prefix]
	if p != nil && !now.Before(p.expiry) {
		delete(t.m, src.prefix)
		p = nil
	}
	if p == nil {
		t.makeRoom(now)
		p = &penalty{expiry: now}
		t.m[src.prefix] = p
	}
	p.expiry = p.expiry.Add(d)
	if p.expiry.Sub(now) > t.cfg.Max {
		p.expiry = now.Add(t.cfg.Max)
	}
	p.reason = kind
	if !p.active && p.expiry.Sub(now) > t.cfg.Min {
		p.active = true
		return true, p.expiry.Sub(now)
	}
	return false, 0
}

// makeRoom keeps the table under MaxSources before a new entry: it forgets the expired
// penalties, then, if still full, the ones that would expire soonest (sshd's "permissive"
// overflow mode).
func (t *penaltyTable) makeRoom(now time.Time) {
	max := t.cfg.MaxSources
	if max <= 0 {
		max = DefaultPenaltyMaxSources
	}
	if len(t.m) < max {
		return
	}
	for k, p := range t.m {
		if !now.Before(p.expiry) {
			delete(t.m, k)
		}
	}
	for len(t.m) >= max {
		var soonest netip.Prefix
		var at time.Time
		for k, p := range t.m {
			if at.IsZero() || p.expiry.Before(at) {
				soonest, at = k, p.expiry
			}
		}
		delete(t.m, soonest)
	}
}
