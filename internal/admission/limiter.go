package admission

import (
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// DefaultLoginGraceTime is the login grace time when Limits.LoginGraceTime is zero.
const DefaultLoginGraceTime = 60 * time.Second

// Reasons sent to clients whose connection is dropped at accept, as a mailbox refusal
// ("-reason" CRLF, RFC 1078), which rlogin shows.
const (
	dropBusy      = "server busy: too many unauthenticated connections; try again later"
	dropPerSource = "too many unauthenticated connections from your address"
	dropPenalty   = "connections from your address are refused for a while after failed logins"
)

// farewellAllowance lets the server write the reason it ends a login (REFUSE "login timed out")
// a little past the grace deadline. Reads stay bounded by the deadline itself, so a peer cannot
// use it to hold the conn: only the server's last write may take that long.
const farewellAllowance = 2 * time.Second

// Limits are the admission rules. Zero fields mean their defaults, as in sshd_config.
type Limits struct {
	// LoginGraceTime bounds everything from accept until the connection enters a session.
	// 0 means DefaultLoginGraceTime.
	LoginGraceTime time.Duration
	// MaxStartups is the random early drop of unauthenticated connections. Zero means
	// DefaultMaxStartups().
	MaxStartups StartupLimit
	// PerSourceMaxStartups caps the unauthenticated connections of one source. 0 means
	// DefaultPerSourceMaxStartups; negative means no cap.
	PerSourceMaxStartups int
	// NetBlockSize groups client addresses into sources. Zero means 32:64.
	NetBlockSize NetBlockSize
	// Penalties refuses sources for a while after failed logins; nil means DefaultPenalties().
	Penalties *Penalties
	// PenaltyExempt lists addresses never penalized.
	PenaltyExempt []netip.Prefix
}

// WithDefaults returns l with its zero fields filled in, or an error if a field is out of range.
func (l Limits) WithDefaults() (Limits, error) {
	if l.LoginGraceTime <= 0 {
		l.LoginGraceTime = DefaultLoginGraceTime
	}
	if l.MaxStartups == (StartupLimit{}) {
		l.MaxStartups = DefaultMaxStartups()
	}
	if err := l.MaxStartups.Check(); err != nil {
		return l, err
	}
	if l.PerSourceMaxStartups == 0 {
		l.PerSourceMaxStartups = DefaultPerSourceMaxStartups
	}
	if l.NetBlockSize == (NetBlockSize{}) {
		l.NetBlockSize = NetBlockSize{V4: DefaultNetBlock4, V6: DefaultNetBlock6}
	}
	if b := l.NetBlockSize; b.V4 < 0 || b.V4 > 32 || b.V6 < 0 || b.V6 > 128 {
		return l, fmt.Errorf("admission: per-source net block size %v out of range", b)
	}
	p := DefaultPenalties()
	if l.Penalties != nil {
		p = *l.Penalties
	}
	if p.MaxSources <= 0 {
		p.MaxSources = DefaultPenaltyMaxSources
	}
	l.Penalties = &p
	return l, nil
}

// A Limiter admits the connections of one or more listeners (see Listener) under one set of
// Limits, and keeps the counts and penalties they share. Its methods may be called from several
// goroutines at once.
type Limiter struct {
	randN func(n int) int  // the random early drop's dice
	now   func() time.Time // the penalties' clock
	ids   atomic.Uint64    // connection ids

	mu        sync.Mutex
	limits    Limits
	log       *slog.Logger
	stopping  bool                 // no penalties for conns cut short by a shutdown
	accepted  uint64               // raw conns accepted, admitted or not
	unauth    int                  // admitted conns not (yet) in a session
	perSource map[netip.Prefix]int // unauth by source
	penalties *penaltyTable
	drops     map[string]int // conns dropped since the last log line, by reason
	lastDrop  time.Time      // when a drop was last logged
}

// NewLimiter returns a Limiter applying lim (see Limits.WithDefaults), which logs dropped
// connections and penalties to log (nil: no log).
func NewLimiter(lim Limits, log *slog.Logger) (*Limiter, error) {
	return NewLimiterWith(lim, log, nil, nil)
}

// NewLimiterWith is NewLimiter with its dice and clock replaced, for tests: randN(n) returns a
// number in [0, n) (nil: math/rand/v2.IntN); now is the clock of the penalties (nil: time.Now).
func NewLimiterWith(lim Limits, log *slog.Logger, randN func(int) int, now func() time.Time) (*Limiter, error) {
	if randN == nil {
		randN = rand.IntN
	}
	if now == nil {
		now = time.Now
	}
	l := &Limiter{
		randN:     randN,
		now:       now,
		perSource: make(map[netip.Prefix]int),
		penalties: newPenaltyTable(),
		drops:     make(map[string]int),
	}
	if err := l.Configure(lim, log); err != nil {
		return nil, err
	}
	return l, nil
}

// Configure applies new limits and a new logger (nil: no log) from now on: the connections
// admitted already keep their grace deadline, and penalties already given keep their expiry.
// On error nothing changes.
func (l *Limiter) Configure(lim Limits, log *slog.Logger) error {
	lim, err := lim.WithDefaults()
	if err != nil {
		return err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.limits, l.log = lim, log
	l.penalties.configure(*lim.Penalties, lim.PenaltyExempt)
	return nil
}

// ShuttingDown tells l that the server is stopping: connections that close from now on without
// logging in are not held against their source.
func (l *Limiter) ShuttingDown() {
	l.mu.Lock()
	l.stopping = true
	l.mu.Unlock()
}

// Unauthenticated returns the number of admitted connections not in a session.
func (l *Limiter) Unauthenticated() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.unauth
}

// Accepted returns the number of connections accepted so far, admitted or not.
func (l *Limiter) Accepted() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.accepted
}

// Listener returns a listener whose Accept returns the connections of inner that l admits, as
// *Conn; it closes the others at once, after a one-line mailbox refusal ("-reason" CRLF) that
// tells the client why. Closing it closes inner.
func (l *Limiter) Listener(inner net.Listener) net.Listener {
	return &listener{Listener: inner, lim: l}
}

type listener struct {
	net.Listener
	lim *Limiter
}

func (l *listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ac, reason := l.lim.admit(c)
		if ac != nil {
			return ac, nil
		}
		// A fresh socket's send buffer is empty: this write does not block. The deadline
		// only guards against the unexpected.
		_ = c.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
		_, _ = c.Write([]byte("-" + reason + "\r\n"))
		_ = c.Close()
	}
}

// admit decides on a raw conn just accepted: it returns the conn to serve, or the reason it
// must be dropped.
func (l *Limiter) admit(c net.Conn) (*Conn, string) {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	lim := l.limits
	src := sourceOf(c.RemoteAddr(), lim.NetBlockSize)
	l.accepted++
	if src.ok() {
		if kind, left, refused := l.penalties.refused(src, l.now()); refused {
			l.logDrop("penalty", c, "source", src.String(), "penalty", kind.String(), "left", left.Round(time.Second))
			return nil, dropPenalty
		}
		if max := lim.PerSourceMaxStartups; max > 0 && l.perSource[src.prefix] >= max {
			l.logDrop("per-source-max-startups", c, "source", src.String(), "per_source_max_startups", max)
			return nil, dropPerSource
		}
	}
	if p := lim.MaxStartups.dropPercent(l.unauth); p >= 100 || (p > 0 && l.randN(100) < p) {
		l.logDrop("max-startups", c, "max_startups", lim.MaxStartups.String(), "unauthenticated", l.unauth)
		return nil, dropBusy
	}
	l.unauth++
	if src.ok() {
		l.perSource[src.prefix]++
	}
	return &Conn{
		Conn:     c,
		lim:      l,
		id:       l.ids.Add(1),
		src:      src,
		accepted: now,
		deadline: now.Add(lim.LoginGraceTime),
		grace:    lim.LoginGraceTime,
	}, ""
}

// logDrop logs a dropped conn: the first, then at most one line a second with the number
// dropped since, by reason, so that a flood of connections does not become a flood of log
// lines. l.mu is held.
func (l *Limiter) logDrop(reason string, c net.Conn, attrs ...any) {
	l.drops[reason]++
	now := time.Now()
	if now.Sub(l.lastDrop) < time.Second {
		return
	}
	l.lastDrop = now
	var counts []any
	for r, n := range l.drops {
		counts = append(counts, slog.Int(r, n))
	}
	clear(l.drops)
	attrs = append([]any{"reason", reason, "remote", c.RemoteAddr().String()}, attrs...)
	attrs = append(attrs, slog.Group("dropped", counts...))
	l.log.Warn("connection dropped", attrs...)
}

// leaveStartup takes c out of the unauthenticated counts. l.mu is held.
func (l *Limiter) leaveStartup(c *Conn) {
	l.unauth--
	if c.src.ok() {
		if n := l.perSource[c.src.prefix] - 1; n > 0 {
			l.perSource[c.src.prefix] = n
		} else {
			delete(l.perSource, c.src.prefix)
		}
	}
}

// closed accounts for c's close: a conn that never entered a session leaves the
// unauthenticated counts, and penalizes its source unless it authenticated or the server is
// stopping; so does a conn whose login was reported failed (Failed), session or not.
func (l *Limiter) closed(c *Conn) {
	now := time.Now()
	l.mu.Lock()
	inSession := c.inSession.Load()
	if !inSession {
		l.leaveStartup(c)
	}
	kind := penaltyNone
	switch {
	case l.stopping:
	case c.failed: // also after a session: a password login(1) refused
		kind = penaltyAuthFail
	case c.attempted && !c.authOK:
		// An attempt whose verdict the client did not wait for is a failure: a password
		// guesser that hangs up before login(1)'s fail delay is charged like one that waits.
		kind = penaltyAuthFail
	case c.authOK || inSession:
	case !now.Before(c.deadline):
		kind = penaltyGraceExceeded
	default:
		kind = penaltyNoAuth
	}
	var activated bool
	var left time.Duration
	if kind != penaltyNone {
		activated, left = l.penalties.add(c.src, kind, l.now())
	}
	delivered, log := c.delivered, l.log
	l.mu.Unlock()

	if !delivered && !inSession {
		// The conn never reached a login flow, which logs the others.
		attrs := []any{"conn", c.id, "remote", c.RemoteAddr().String(), "duration", now.Sub(c.accepted).Round(time.Millisecond)}
		if kind == penaltyGraceExceeded {
			log.Info("connection closed before the login: login grace time exceeded", attrs...)
		} else {
			log.Info("connection closed before the login", attrs...)
		}
	}
	if activated {
		log.Warn("source penalized: its new connections are refused", "source", c.src.String(),
			"reason", kind.String(), "for", left.Round(time.Second))
	}
}

// A Conn is an admitted connection: counted as unauthenticated from accept until it enters a
// session (StartSession) or closes, and until then unable to take a deadline later than its
// login grace deadline, whoever sets it (the mailbox exchange, the TLS handshake, the login).
// Closing it accounts for it: a Conn closed without having authenticated, or after Failed,
// penalizes its source. The login flow reports its progress with Delivered, Authenticated,
// Failed and StartSession.
type Conn struct {
	net.Conn
	lim      *Limiter
	id       uint64
	src      source
	accepted time.Time
	deadline time.Time     // accepted + the login grace time
	grace    time.Duration // the login grace time at accept
	once     sync.Once

	inSession atomic.Bool // counted as a session: no more deadline clamp (read without lim.mu: SetDeadline is on the hot path)

	// Guarded by lim.mu.
	delivered bool // reached a login flow
	authOK    bool // authenticated
	failed    bool // a login attempt was refused
	attempted bool // an authentication attempt started whose verdict is pending
}

// ID returns the connection's number, unique in its Limiter, for the log.
func (c *Conn) ID() uint64 { return c.id }

// GraceDeadline returns the end of the connection's login grace time, counted from accept.
func (c *Conn) GraceDeadline() time.Time { return c.deadline }

// GraceTime returns the login grace time the connection was admitted with.
func (c *Conn) GraceTime() time.Duration { return c.grace }

// Delivered records that the connection reached a login flow, which logs its end from then on.
func (c *Conn) Delivered() { c.set(func() { c.delivered = true }) }

// Authenticated records that the login was authorized: closing the connection will not
// penalize its source (unless Failed comes later).
func (c *Conn) Authenticated() { c.set(func() { c.authOK = true }) }

// Attempting records that an authentication attempt started whose verdict comes later (a
// password that login(1) checks): unless Authenticated follows, closing the connection counts
// as a failed attempt (the authfail penalty), however it ends: the client hanging up, the
// grace time, an error.
func (c *Conn) Attempting() { c.set(func() { c.attempted = true }) }

// Failed records that a login attempt was refused (a key not authorized, a bad or unknown user
// name, a wrong password): the source gets the authfail penalty when the connection closes,
// even if a session had started.
func (c *Conn) Failed() { c.set(func() { c.failed = true }) }

// StartSession takes the connection out of the unauthenticated counts and lifts its grace
// deadline clamp; it may be called more than once.
func (c *Conn) StartSession() {
	c.lim.mu.Lock()
	defer c.lim.mu.Unlock()
	if !c.inSession.Load() {
		c.inSession.Store(true)
		c.lim.leaveStartup(c)
	}
}

func (c *Conn) set(f func()) {
	c.lim.mu.Lock()
	f()
	c.lim.mu.Unlock()
}

// Close closes the connection and accounts for it (once).
func (c *Conn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.lim.closed(c) })
	return err
}

// clamp bounds t by the login grace deadline while c is not in a session (zero t: no deadline
// asked for, the grace deadline applies).
func (c *Conn) clamp(t time.Time) time.Time {
	if c.inSession.Load() || (!t.IsZero() && t.Before(c.deadline)) {
		return t
	}
	return c.deadline
}

// clampWrite bounds a write deadline by the grace deadline plus farewellAllowance.
func (c *Conn) clampWrite(t time.Time) time.Time {
	limit := c.deadline.Add(farewellAllowance)
	if c.inSession.Load() || (!t.IsZero() && t.Before(limit)) {
		return t
	}
	return limit
}

// SetDeadline sets the read and write deadlines, each bounded while not in a session: reads by
// the grace deadline, writes by a moment after it (so the server can say why it ends a login).
func (c *Conn) SetDeadline(t time.Time) error {
	if err := c.Conn.SetReadDeadline(c.clamp(t)); err != nil {
		return err
	}
	return c.Conn.SetWriteDeadline(c.clampWrite(t))
}

// SetReadDeadline sets the read deadline, bounded as SetDeadline's.
func (c *Conn) SetReadDeadline(t time.Time) error { return c.Conn.SetReadDeadline(c.clamp(t)) }

// SetWriteDeadline sets the write deadline, bounded as SetDeadline's.
func (c *Conn) SetWriteDeadline(t time.Time) error {
	return c.Conn.SetWriteDeadline(c.clampWrite(t))
}

// CloseWrite half-closes the connection (TCP or Unix).
func (c *Conn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return fmt.Errorf("admission: CloseWrite: %w", errors.ErrUnsupported)
}

// NetConn returns the raw connection, so that users of wrappers can reach the socket (classic
// rlogin's urgent data needs it).
func (c *Conn) NetConn() net.Conn { return c.Conn }

// SyscallConn exposes the socket: Conn changes no Read or Write, so a TLS session over it may
// read and write the descriptor directly.
func (c *Conn) SyscallConn() (syscall.RawConn, error) {
	sc, ok := c.Conn.(syscall.Conn)
	if !ok {
		return nil, fmt.Errorf("admission: %T has no descriptor: %w", c.Conn, errors.ErrUnsupported)
	}
	return sc.SyscallConn()
}

// ConnOf returns the Conn that c is, or that c wraps one level down (through a NetConn method,
// as the conns of a transport.Mux listener have), or nil. A server calls it once per connection,
// where it takes the connection from its mailbox, and passes the result on.
func ConnOf(c net.Conn) *Conn {
	if ac, ok := c.(*Conn); ok {
		return ac
	}
	if w, ok := c.(interface{ NetConn() net.Conn }); ok {
		ac, _ := w.NetConn().(*Conn)
		return ac
	}
	return nil
}
