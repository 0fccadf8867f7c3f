package admission

import (
	"net/netip"
	"time"
)

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
