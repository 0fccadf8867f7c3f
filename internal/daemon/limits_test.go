package daemon

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/rlogin-go/rlogin/internal/admission"
	"github.com/rlogin-go/rlogin/internal/logintest"
	"github.com/rlogin-go/rlogin/session"
	"github.com/rlogin-go/rlogin/transport"
)

// fakeClock is an adjustable clock for the penalties.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Unix(2_000_000_000, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// dialFrom connects to addr from the loopback address src (all of 127/8 is loopback on Linux).
func dialFrom(t *testing.T, addr, src string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: shortTimeout}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial from %s: %v", src, err)
	}
	return c
}

// loginFrom logs in to ts from src with key as the daemon's user; it returns Start's error
// (or the mailbox refusal), and the remote once started.
func loginFrom(t *testing.T, ts *testServer, src string, key ed25519.PrivateKey) (*logintest.Remote, error) {
	t.Helper()
	return loginFromAs(t, ts, src, key, ts.srv.User())
}

// loginFromAs is loginFrom as user.
func loginFromAs(t *testing.T, ts *testServer, src string, key ed25519.PrivateKey, user string) (*logintest.Remote, error) {
	t.Helper()
	c := dialFrom(t, ts.addr, src)
	ctx, cancel := context.WithTimeout(context.Background(), shortTimeout)
	defer cancel()
	if err := transport.RequestMailbox(ctx, c, MailboxName); err != nil {
		_ = c.Close()
		return nil, err
	}
	sc, err := transport.Client(ctx, c, &transport.SecureConfig{
		Key: key,
		VerifyPeer: func(pub ed25519.PublicKey) error {
			if !pub.Equal(pubOf(ts.hostKey)) {
				return errors.New("not the test server's host key")
			}
			return nil
		},
	})
	if err != nil {
		return nil, err
	}
	return logintest.Start(t, sc, ts.request(user))
}

// expectDropped checks that the server closes c at once with the mailbox refusal reason.
func expectDropped(t *testing.T, c net.Conn, reason string) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(shortTimeout))
	data, err := io.ReadAll(c)
	if isTimeout(err) {
		t.Fatalf("connection not dropped (read %q)", data)
	}
	if want := "-" + reason + "\r\n"; string(data) != want {
		t.Fatalf("dropped connection said %q (%v), want %q", data, err, want)
	}
}

// waitUnauth waits until the server counts n unauthenticated conns.
func (ts *testServer) waitUnauth(t *testing.T, n int) {
	t.Helper()
	waitFor(t, fmt.Sprintf("%d unauthenticated connections", n), func() bool { return ts.srv.unauthenticated() == n })
}

// waitAccepted waits until the server has accepted (admitted or dropped) n raw conns.
func (ts *testServer) waitAccepted(t *testing.T, n uint64) {
	t.Helper()
	waitFor(t, fmt.Sprintf("%d connections accepted", n), func() bool {
		return ts.srv.lim.Accepted() == n
	})
}

func closeAll(cs []net.Conn) {
	for _, c := range cs {
		_ = c.Close()
	}
}

// TestMaxStartupsRandomEarlyDrop drives the random early drop with a chosen random number:
// with start:rate:full 2:50:4, a new conn is dropped when the draw is under 50% at 2
// unauthenticated conns, under 75% at 3, always at 4.
// The reasons a dropped client is given, as a mailbox refusal.
const (
	dropBusy      = "server busy: too many unauthenticated connections; try again later"
	dropPerSource = "too many unauthenticated connections from your address"
	dropPenalty   = "connections from your address are refused for a while after failed logins"
)

func TestMaxStartupsRandomEarlyDrop(t *testing.T) {
	var draw atomic.Int64 // what randN returns
	var draws atomic.Int64
	ts := startServer(t, func(c *Config) {
		c.MaxStartups = admission.StartupLimit{Start: 2, Rate: 50, Full: 4}
		c.PerSourceMaxStartups = -1
		c.PerSourcePenalties = &admission.Penalties{}
		c.randN = func(n int) int {
			if n != 100 {
				panic("randN not asked for a percentage")
			}
			draws.Add(1)
			return int(draw.Load())
		}
	})
	var idle []net.Conn
	defer func() { closeAll(idle) }()
	hold := func(want int) {
		idle = append(idle, dialFrom(t, ts.addr, "127.0.0.1"))
		ts.waitUnauth(t, want)
	}
	// Below start: no draw at all.
	hold(1)
	hold(2)
	if n := draws.Load(); n != 0 {
		t.Fatalf("%d draws below start", n)
	}
	for _, step := range []struct {
		unauth, draw int
		dropped      bool
	}{
		{2, 49, true}, {2, 50, false}, // 50%
		{3, 74, true}, {3, 75, false}, // 75%
		{4, 99, true}, // full
	} {
		draw.Store(int64(step.draw))
		c := dialFrom(t, ts.addr, "127.0.0.1")
		if step.dropped {
			expectDropped(t, c, dropBusy)
			_ = c.Close()
			if got := ts.srv.unauthenticated(); got != step.unauth {
				t.Fatalf("unauthenticated = %d after a drop, want %d", got, step.unauth)
			}
			continue
		}
		idle = append(idle, c)
		ts.waitUnauth(t, step.unauth+1)
	}
	ts.waitLog(`msg="connection dropped" reason=max-startups.*max_startups=2:50:4`)
	// At full a real login is dropped too; with one idle conn gone (3 left, 75%), a draw of 99
	// lets it in.
	if _, err := loginFrom(t, ts, "127.0.0.1", ts.clientKey); err == nil {
		t.Fatal("login succeeded at full")
	} else if me := (*transport.MailboxError)(nil); !errors.As(err, &me) || me.Reason != dropBusy {
		t.Fatalf("login at full: %v, want the mailbox refusal %q", err, dropBusy)
	}
	_ = idle[0].Close()
	idle = idle[1:]
	ts.waitUnauth(t, 3)
	r, err := loginFrom(t, ts, "127.0.0.1", ts.clientKey)
	if err != nil {
		t.Fatalf("login at 3 unauthenticated with draw 99: %v", err)
	}
	r.ExitWith(0)
}

// TestPerSourceMaxStartups: one source's stalled conns fill only its own share.
func TestPerSourceMaxStartups(t *testing.T) {
	ts := startServer(t, func(c *Config) {
		c.PerSourceMaxStartups = 2
		c.PerSourcePenalties = &admission.Penalties{}
	})
	var idle []net.Conn
	defer func() { closeAll(idle) }()
	for i := range 2 {
		idle = append(idle, dialFrom(t, ts.addr, "127.0.0.2"))
		ts.waitUnauth(t, i+1)
	}
	c := dialFrom(t, ts.addr, "127.0.0.2")
	expectDropped(t, c, dropPerSource)
	_ = c.Close()
	ts.waitLog(`reason=per-source-max-startups.*source=127.0.0.2/32`)
	idle = append(idle, dialFrom(t, ts.addr, "127.0.0.3")) // another source still gets in
	ts.waitUnauth(t, 3)
	r, err := loginFrom(t, ts, "127.0.0.1", ts.clientKey)
	if err != nil {
		t.Fatalf("login from another source: %v", err)
	}
	r.ExitWith(4)
	// A conn that leaves frees its source's place.
	_ = idle[0].Close()
	ts.waitUnauth(t, 2)
	idle = append(idle[1:], dialFrom(t, ts.addr, "127.0.0.2"))
	ts.waitUnauth(t, 3)
}

// TestPerSourcePenalties: a source is refused after what it did, for as long as its penalty
// lasts (a fake clock), while other sources log in; exempt addresses are never refused.
func TestPerSourcePenalties(t *testing.T) {
	for _, tc := range []struct {
		name    string
		src     string
		penalty admission.Penalties
		grace   time.Duration // 0: shortTimeout
		offend  func(t *testing.T, ts *testServer)
		reason  string
	}{
		{
			name:    "authfail",
			src:     "127.0.0.2",
			penalty: admission.Penalties{AuthFail: time.Hour},
			offend: func(t *testing.T, ts *testServer) {
				_, err := loginFrom(t, ts, "127.0.0.2", newKey(t))
				var re *session.RefusedError
				if !errors.As(err, &re) {
					t.Fatalf("login with an unlisted key: %v, want a refusal", err)
				}
			},
			reason: "failed authentication",
		},
		{
			name:    "noauth",
			src:     "127.0.0.3",
			penalty: admission.Penalties{NoAuth: time.Hour},
			offend: func(t *testing.T, ts *testServer) {
				_ = dialFrom(t, ts.addr, "127.0.0.3").Close()
			},
			reason: "no authentication attempt",
		},
		{
			name:    "grace-exceeded",
			src:     "127.0.0.4",
			penalty: admission.Penalties{GraceExceeded: time.Hour},
			grace:   time.Second,
			offend: func(t *testing.T, ts *testServer) {
				c := dialFrom(t, ts.addr, "127.0.0.4") // then silent
				defer c.Close()
				if _, ok, _ := waitClosed(c, shortTimeout); !ok {
					t.Fatal("stalled conn not closed at the grace time")
				}
			},
			reason: "login grace time exceeded",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clock := newFakeClock()
			ts := startServer(t, func(c *Config) {
				p := tc.penalty
				p.Max = 2 * time.Hour
				c.PerSourcePenalties = &p
				c.now = clock.Now
				if tc.grace > 0 {
					c.LoginGraceTime = tc.grace
				}
				c.PenaltyExempt = []netip.Prefix{netip.MustParsePrefix("127.0.0.9/32")}
			})
			tc.offend(t, ts)
			ts.waitLog(`msg="source penalized.*source=` + tc.src + `/32 reason="` + tc.reason + `" for=1h0m0s`)
			c := dialFrom(t, ts.addr, tc.src)
			expectDropped(t, c, dropPenalty)
			_ = c.Close()
			ts.waitLog(`reason=penalty.*source=` + tc.src + `/32 penalty="` + tc.reason)
			// Others are not affected.
			r, err := loginFrom(t, ts, "127.0.0.1", ts.clientKey)
			if err != nil {
				t.Fatalf("login from another source: %v", err)
			}
			r.ExitWith(0)
			// The penalty ends.
			clock.Advance(time.Hour)
			r, err = loginFrom(t, ts, tc.src, ts.clientKey)
			if err != nil {
				t.Fatalf("login after the penalty: %v", err)
			}
			r.ExitWith(0)
		})
	}
	t.Run("exempt", func(t *testing.T) {
		ts := startServer(t, func(c *Config) {
			c.PerSourcePenalties = &admission.Penalties{AuthFail: time.Hour, Max: time.Hour}
			c.PenaltyExempt = []netip.Prefix{netip.MustParsePrefix("127.0.0.8/30")} // .8 to .11
		})
		for range 3 {
			if _, err := loginFrom(t, ts, "127.0.0.9", newKey(t)); err == nil {
				t.Fatal("an unlisted key logged in")
			}
			// The conn has been accounted for (and would have been penalized) once it left.
			ts.waitUnauth(t, 0)
		}
		r, err := loginFrom(t, ts, "127.0.0.9", ts.clientKey)
		if err != nil {
			t.Fatalf("login from an exempt address after failures: %v", err)
		}
		r.ExitWith(0)
		if strings.Contains(ts.log.String(), "source penalized") {
			t.Fatal("an exempt address was penalized")
		}
	})
}

// TestDefaultPenaltiesNeedRepeatedFailures: with the defaults (authfail 5 s, min 15 s) a source
// is refused only after its fourth failure in a row.
func TestDefaultPenaltiesNeedRepeatedFailures(t *testing.T) {
	clock := newFakeClock()
	ts := startServer(t, func(c *Config) { c.now = clock.Now })
	for i := 1; i <= 4; i++ {
		if _, err := loginFrom(t, ts, "127.0.0.2", newKey(t)); err == nil {
			t.Fatal("an unlisted key logged in")
		}
		ts.waitUnauth(t, 0)
	}
	ts.waitLog(`msg="source penalized.*source=127.0.0.2/32 reason="failed authentication" for=20s`)
	c := dialFrom(t, ts.addr, "127.0.0.2")
	expectDropped(t, c, dropPenalty)
	_ = c.Close()
	clock.Advance(20 * time.Second)
	r, err := loginFrom(t, ts, "127.0.0.2", ts.clientKey)
	if err != nil {
		t.Fatalf("login after the penalty expired: %v", err)
	}
	r.ExitWith(0)
}

// TestMaxSessions: past MaxSessions a login is refused with a clear reason, and is not held
// against its source.
func TestMaxSessions(t *testing.T) {
	ts := startServer(t, func(c *Config) {
		c.MaxSessions = 1
		c.PerSourcePenalties = &admission.Penalties{AuthFail: time.Hour, NoAuth: time.Hour, Max: time.Hour}
	})
	first := ts.login(t)
	first.Ready()
	_, err := loginFrom(t, ts, "127.0.0.2", ts.clientKey)
	var re *session.RefusedError
	if !errors.As(err, &re) || re.Reason != reasonMaxSessions {
		t.Fatalf("second login: %v, want the refusal %q", err, reasonMaxSessions)
	}
	ts.waitLog(`login refused: too many sessions.*max_sessions=1`)
	first.ExitWith(0)
	ts.waitLog(`msg="session ended"`)
	r, err := loginFrom(t, ts, "127.0.0.2", ts.clientKey)
	if err != nil {
		t.Fatalf("login once the session ended: %v", err)
	}
	r.ExitWith(0)
	if strings.Contains(ts.log.String(), "source penalized") {
		t.Fatal("a refusal for MaxSessions penalized the source")
	}
}

// raiseFDLimit makes sure the process may open n descriptors.
func raiseFDLimit(t *testing.T, n uint64) {
	t.Helper()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	if lim.Cur >= n {
		return
	}
	if lim.Max < n {
		t.Skipf("RLIMIT_NOFILE hard limit %d < %d", lim.Max, n)
	}
	old := lim
	lim.Cur = n
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Skipf("cannot raise RLIMIT_NOFILE to %d: %v", n, err)
	}
	t.Cleanup(func() { _ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &old) })
}

// TestLoginWhileThousandIdleConnections: a real login from 127.0.0.1 succeeds while 1000 idle
// unauthenticated connections are held open from other sources.
func TestLoginWhileThousandIdleConnections(t *testing.T) {
	const idleConns = 1000
	raiseFDLimit(t, 2*idleConns+500)
	// With the default limits, the flood comes from two addresses: each keeps its
	// per-source share open (the daemon closes the rest at once), well under MaxStartups'
	// start, so the login from a third address always gets in.
	t.Run("default limits", func(t *testing.T) {
		ts := startServer(t, func(c *Config) { c.LoginGraceTime = 10 * time.Minute })
		idle := openIdle(t, ts, idleConns, []string{"127.0.0.2", "127.0.0.3"})
		defer closeAll(idle)
		ts.waitAccepted(t, idleConns)
		ts.waitUnauth(t, 2*admission.DefaultPerSourceMaxStartups)
		r, err := loginFrom(t, ts, "127.0.0.1", ts.clientKey)
		if err != nil {
			t.Fatalf("login with %d idle connections open: %v", idleConns, err)
		}
		r.Ready()
		r.ExitWith(0)
		if n := ts.srv.unauthenticated(); n != 2*admission.DefaultPerSourceMaxStartups {
			t.Errorf("%d unauthenticated connections after the login, want %d", n, 2*admission.DefaultPerSourceMaxStartups)
		}
	})
	// With limits raised, the daemon itself holds all 1000 idle connections (each in its
	// mailbox name exchange) and still serves the login.
	t.Run("all held by the daemon", func(t *testing.T) {
		ts := startServer(t, func(c *Config) {
			c.LoginGraceTime = 10 * time.Minute
			c.MaxStartups = admission.StartupLimit{Start: 2 * idleConns, Rate: 30, Full: 3 * idleConns}
			c.PerSourceMaxStartups = -1
		})
		var srcs []string
		for i := range 10 {
			srcs = append(srcs, fmt.Sprintf("127.0.1.%d", i+1))
		}
		idle := openIdle(t, ts, idleConns, srcs)
		defer closeAll(idle)
		ts.waitUnauth(t, idleConns)
		r, err := loginFrom(t, ts, "127.0.0.1", ts.clientKey)
		if err != nil {
			t.Fatalf("login with %d idle connections held by the daemon: %v", idleConns, err)
		}
		r.Ready()
		r.ExitWith(0)
		if n := ts.srv.unauthenticated(); n != idleConns {
			t.Errorf("%d unauthenticated connections after the login, want %d", n, idleConns)
		}
		// They are still open: each answers a mailbox name.
		for _, c := range idle[:3] {
			if _, err := io.WriteString(c, "HELP\r\n"); err != nil {
				t.Fatal(err)
			}
			_ = c.SetReadDeadline(time.Now().Add(shortTimeout))
			line, err := bufio.NewReader(c).ReadString('\n')
			if err != nil || line != MailboxName+"\r\n" {
				t.Fatalf("an idle conn answered HELP with %q, %v", line, err)
			}
		}
	})
}

// openIdle opens n connections to ts, spread over the source addresses srcs, and sends nothing
// on them.
func openIdle(t *testing.T, ts *testServer, n int, srcs []string) []net.Conn {
	t.Helper()
	conns := make([]net.Conn, 0, n)
	for i := range n {
		conns = append(conns, dialFrom(t, ts.addr, srcs[i%len(srcs)]))
	}
	return conns
}
