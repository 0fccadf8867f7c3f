package admission

import (
	"bufio"
	"errors"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// watchdog bounds every wait on a socket in these tests.
const watchdog = 10 * time.Second

// listen returns a Limiter's listener on loopback and a dialer to it.
func listen(t *testing.T, lim Limits, now func() time.Time) (*Limiter, net.Listener, func() net.Conn) {
	t.Helper()
	l, err := NewLimiterWith(lim, nil, func(int) int { return 0 }, now)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ll := l.Listener(raw)
	t.Cleanup(func() { _ = ll.Close() })
	dial := func() net.Conn {
		t.Helper()
		c, err := net.DialTimeout("tcp", raw.Addr().String(), watchdog)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	return l, ll, dial
}

func accept(t *testing.T, l net.Listener) *Conn {
	t.Helper()
	c, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	ac := ConnOf(c)
	if ac == nil {
		t.Fatalf("Accept returned %T, not a *Conn", c)
	}
	return ac
}

// TestGraceDeadlineClamp: until the conn enters a session, no deadline set on it reaches past
// its grace deadline (reads) or a moment after it (writes); no deadline at all means the grace
// deadline. In a session the deadlines are the caller's.
func TestGraceDeadlineClamp(t *testing.T) {
	_, l, dial := listen(t, Limits{LoginGraceTime: 200 * time.Millisecond}, nil)
	client := dial()
	ac := accept(t, l)
	defer ac.Close()
	if d := time.Until(ac.GraceDeadline()); d <= 0 || d > 200*time.Millisecond {
		t.Fatalf("grace deadline in %v, want within 200ms", d)
	}
	if ac.GraceTime() != 200*time.Millisecond {
		t.Errorf("GraceTime() = %v", ac.GraceTime())
	}
	if err := ac.SetDeadline(time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err := ac.Read(make([]byte, 1))
	if !errors.Is(err, os.ErrDeadlineExceeded) || time.Since(start) > watchdog {
		t.Fatalf("read past the grace deadline: %v after %v, want a timeout at the grace deadline", err, time.Since(start))
	}
	if got := ac.clampWrite(time.Time{}); !got.Equal(ac.GraceDeadline().Add(farewellAllowance)) {
		t.Errorf("write deadline %v, want the grace deadline plus %v", got, farewellAllowance)
	}

	ac.Authenticated()
	ac.StartSession()
	if err := ac.SetDeadline(time.Time{}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	if _, err := ac.Read(make([]byte, 1)); err != nil {
		t.Fatalf("read in a session, past the grace deadline: %v", err)
	}
}

// TestPenaltyOnClose: a conn closed without authenticating, or after Failed, penalizes its
// source; an authenticated one does not; none does once the server is shutting down.
func TestPenaltyOnClose(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	clock := func() time.Time { return now }
	refusedNext := func(t *testing.T, l net.Listener, dial func() net.Conn) bool {
		t.Helper()
		c := dial()
		done := make(chan struct{})
		go func() {
			defer close(done)
			if ac, err := l.Accept(); err == nil {
				_ = ac.Close() // admitted: the client reads EOF
			}
		}()
		_ = c.SetReadDeadline(time.Now().Add(watchdog))
		line, err := bufio.NewReader(c).ReadString('\n')
		refused := err == nil && line == "-"+dropPenalty+"\r\n"
		_ = l.Close() // ends the Accept above if it is still waiting
		<-done
		return refused
	}
	for _, tc := range []struct {
		name    string
		do      func(lim *Limiter, ac *Conn)
		refused bool
	}{
		{"no authentication", func(*Limiter, *Conn) {}, true},
		{"failed", func(_ *Limiter, ac *Conn) { ac.Authenticated(); ac.StartSession(); ac.Failed() }, true},
		{"authenticated", func(_ *Limiter, ac *Conn) { ac.Authenticated() }, false},
		{"shutting down", func(lim *Limiter, _ *Conn) { lim.ShuttingDown() }, false},
		// Below, only failed authentications are penalized (NoAuth 0): a client that hangs up
		// while its password is being checked is charged, one that never tried is not.
		{"attempt abandoned", func(_ *Limiter, ac *Conn) { ac.Attempting() }, true},
		{"attempt abandoned in a session", func(_ *Limiter, ac *Conn) { ac.Attempting(); ac.StartSession() }, true},
		{"attempt succeeded", func(_ *Limiter, ac *Conn) { ac.Attempting(); ac.Authenticated(); ac.StartSession() }, false},
		{"no attempt", func(*Limiter, *Conn) {}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := Penalties{AuthFail: time.Hour, NoAuth: time.Hour, Max: time.Hour}
			if strings.HasPrefix(tc.name, "attempt") || tc.name == "no attempt" {
				p.NoAuth = 0
			}
			lim, l, dial := listen(t, Limits{Penalties: &p}, clock)
			dial()
			ac := accept(t, l)
			if lim.Unauthenticated() != 1 {
				t.Errorf("%d unauthenticated, want 1", lim.Unauthenticated())
			}
			tc.do(lim, ac)
			_ = ac.Close()
			if lim.Unauthenticated() != 0 {
				t.Errorf("%d unauthenticated after close, want 0", lim.Unauthenticated())
			}
			if got := refusedNext(t, l, dial); got != tc.refused {
				t.Errorf("next connection refused: %v, want %v", got, tc.refused)
			}
		})
	}
}

// TestPerSourceCap: past PerSourceMaxStartups unauthenticated conns from one source, the next is
// dropped with its reason; one that entered a session frees its place.
func TestPerSourceCap(t *testing.T) {
	lim, l, dial := listen(t, Limits{PerSourceMaxStartups: 1}, nil)
	dial()
	ac := accept(t, l)
	defer ac.Close()
	c := dial()
	_ = c.SetReadDeadline(time.Now().Add(watchdog))
	accepted := make(chan *Conn, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			accepted <- nil
			return
		}
		accepted <- ConnOf(c)
	}()
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || line != "-"+dropPerSource+"\r\n" {
		t.Errorf("second conn from the source got %q, %v; want the per-source refusal", line, err)
	}
	ac.StartSession()
	dial()
	third := <-accepted
	if third == nil {
		t.Fatal("third conn not admitted after the first entered its session")
	}
	defer third.Close()
	if lim.Accepted() != 3 || lim.Unauthenticated() != 1 {
		t.Errorf("accepted %d, unauthenticated %d; want 3 and 1", lim.Accepted(), lim.Unauthenticated())
	}
}
