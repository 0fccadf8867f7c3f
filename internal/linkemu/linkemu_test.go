package linkemu

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/net/nettest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// watchdog is how long any I/O of a test may wait before it fails instead of hanging.
const watchdog = 30 * time.Second

// upstream is a listener the proxy forwards to.
func upstream(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	return ln
}

// proxy starts l's proxy to up, closed at the end of the test.
func proxy(t *testing.T, l *Link, up net.Listener) *Proxy {
	t.Helper()
	p, err := l.Listen("127.0.0.1:0", up.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Error(err)
		}
	})
	return p
}

// dial connects to p, with the watchdog's deadline.
func dial(t *testing.T, p *Proxy) *net.TCPConn {
	t.Helper()
	c, err := net.Dial("tcp", p.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(watchdog))
	t.Cleanup(func() { _ = c.Close() })
	return c.(*net.TCPConn)
}

// accept takes the proxy's connection from up, with the watchdog's deadline.
func accept(t *testing.T, up net.Listener) *net.TCPConn {
	t.Helper()
	_ = up.(*net.TCPListener).SetDeadline(time.Now().Add(watchdog))
	c, err := up.Accept()
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(watchdog))
	t.Cleanup(func() { _ = c.Close() })
	return c.(*net.TCPConn)
}

// through returns both ends of a new connection through l: the client's and the server's.
func through(t *testing.T, l *Link) (client, server *net.TCPConn) {
	t.Helper()
	up := upstream(t)
	p := proxy(t, l, up)
	client = dial(t, p)
	return client, accept(t, up)
}

func mustWrite(t *testing.T, c net.Conn, b []byte) {
	t.Helper()
	if _, err := c.Write(b); err != nil {
		t.Fatal(err)
	}
}

func mustRead(t *testing.T, c net.Conn, want []byte) {
	t.Helper()
	got := make([]byte, len(want))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("read %q, want %q", got, want)
	}
}

// roundTrip sends a byte from a to b and back, and returns how long that took.
func roundTrip(t *testing.T, a, b net.Conn) time.Duration {
	t.Helper()
	start := time.Now()
	mustWrite(t, a, []byte{'p'})
	mustRead(t, b, []byte{'p'})
	mustWrite(t, b, []byte{'q'})
	mustRead(t, a, []byte{'q'})
	return time.Since(start)
}

func TestDelayIsALowerBound(t *testing.T) {
	for _, p := range []Profile{
		{Delay: 30 * time.Millisecond},
		{Delay: 30 * time.Millisecond, Jitter: 10 * time.Millisecond},
		{Delay: 30 * time.Millisecond, Rate: 10e6},
	} {
		t.Run(p.String(), func(t *testing.T) {
			client, server := through(t, New(p))
			for range 5 {
				start := time.Now()
				mustWrite(t, client, []byte("one way"))
				mustRead(t, server, []byte("one way"))
				if d := time.Since(start); d < p.Delay {
					t.Errorf("one way took %v, want at least %v", d, p.Delay)
				}
				if rtt := roundTrip(t, client, server); rtt < 2*p.Delay {
					t.Errorf("round trip took %v, want at least %v", rtt, 2*p.Delay)
				}
			}
		})
	}
}

func TestSetProfileWhileRunning(t *testing.T) {
	l := New(Profile{})
	client, server := through(t, l)
	roundTrip(t, client, server)
	l.SetProfile(Profile{Delay: 40 * time.Millisecond})
	if rtt := roundTrip(t, client, server); rtt < 80*time.Millisecond {
		t.Errorf("round trip after SetProfile took %v, want at least 80ms", rtt)
	}
	if got := l.Profile(); got.Delay != 40*time.Millisecond {
		t.Errorf("Profile() = %v", got)
	}
}

// TestRateCap sends for about 2 s at a capped rate: the bytes that arrived can not have left the
// bottleneck faster than the rate, plus the delay, so the elapsed time is at least their
// serialization time (a lower bound on time, so a slow machine can not fail it).
func TestRateCap(t *testing.T) {
	const rate = 8e6 // 1 MB/s
	const size = 2 << 20
	p := Profile{Delay: 10 * time.Millisecond, Rate: rate}
	client, server := through(t, New(p))
	data := make([]byte, size)
	start := time.Now()
	errc := make(chan error, 1)
	go func() { _, err := client.Write(data); errc <- err }()
	if _, err := io.ReadFull(server, make([]byte, size)); err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(start)
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	floor := bitTime(size, rate) + p.Delay - timerSlack
	got := float64(size) * 8 / elapsed.Seconds()
	t.Logf("%d bytes in %v: %.2f Mbit/s, cap %.2f Mbit/s", size, elapsed, got/1e6, rate/1e6)
	if elapsed < floor {
		t.Errorf("%d bytes arrived in %v, faster than the cap allows (%v)", size, elapsed, floor)
	}
	// The other side: the cap is a cap, not a throttle far below it. Generous, as the machine
	// may be busy.
	if got < rate/4 {
		t.Errorf("throughput %.2f Mbit/s, want near the cap of %.2f Mbit/s", got/1e6, rate/1e6)
	}
}

// TestBounded writes into the link until the writes block: the link accepts no more than its
// queue bounds (plus the chunks in the hands of its loops, and what the rate drained meanwhile).
func TestBounded(t *testing.T) {
	for _, tc := range []struct {
		name  string
		p     Profile
		bound func(elapsed time.Duration) int
	}{
		{"bottleneck queue", Profile{Rate: 80e3, Queue: 16 << 10}, func(elapsed time.Duration) int {
			return 16<<10 + 2*chunkSize(Profile{Rate: 80e3}) + int(elapsed.Seconds()*80e3/8)
		}},
		{"delay line", Profile{Delay: time.Hour}, func(time.Duration) int { return MaxInFlight + readSize }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := New(tc.p)
			writer, src := net.Pipe() // synchronous: a write returns when the link has read it
			dst, reader := net.Pipe()
			joined := make(chan error, 1)
			go func() { joined <- l.Join(src, dst) }()
			go func() { _, _ = io.Copy(io.Discard, reader) }() // ends when Join closes dst
			start := time.Now()
			_ = writer.SetWriteDeadline(start.Add(time.Second))
			n, err := writer.Write(make([]byte, 2*MaxInFlight))
			elapsed := time.Since(start)
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("write: %d, %v; want a deadline error", n, err)
			}
			if b := tc.bound(elapsed); n > b {
				t.Errorf("the link took %d bytes in %v, more than its bound %d", n, elapsed, b)
			}
			l.Cut() // ends Join at once: a close would wait an hour behind the delay line
			select {
			case <-joined:
			case <-time.After(watchdog):
				t.Fatal("Join did not return after its peers closed")
			}
		})
	}
}

// TestByteExact sends random bytes both ways at once and compares checksums.
func TestByteExact(t *testing.T) {
	for _, p := range []Profile{
		{},
		{Delay: time.Millisecond, Jitter: 5 * time.Millisecond},
		{Delay: time.Millisecond, Jitter: time.Millisecond, Rate: 400e6, Queue: 64 << 10},
	} {
		t.Run(p.String(), func(t *testing.T) {
			client, server := through(t, New(p))
			const size = 4 << 20
			var wg sync.WaitGroup
			check := func(from, to *net.TCPConn) {
				defer wg.Done()
				data := make([]byte, size)
				_, _ = rand.Read(data)
				want := sha256.Sum256(data)
				errc := make(chan error, 1)
				go func() {
					_, err := from.Write(data)
					if err == nil {
						err = from.CloseWrite()
					}
					errc <- err
				}()
				h := sha256.New()
				n, err := io.Copy(h, to)
				if werr := <-errc; werr != nil {
					t.Error(werr)
				}
				if err != nil || n != size || !bytes.Equal(h.Sum(nil), want[:]) {
					t.Errorf("received %d bytes (err %v), checksum %x, want %d bytes, %x", n, err, h.Sum(nil), size, want)
				}
			}
			wg.Add(2)
			go check(client, server)
			go check(server, client)
			wg.Wait()
		})
	}
}

func TestHalfClose(t *testing.T) {
	client, server := through(t, New(Profile{Delay: 20 * time.Millisecond}))
	mustWrite(t, client, []byte("request"))
	if err := client.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(server)
	if err != nil || string(got) != "request" {
		t.Fatalf("server read %q, %v; want the request, then EOF", got, err)
	}
	mustWrite(t, server, []byte("reply"))
	_ = server.Close()
	got, err = io.ReadAll(client)
	if err != nil || string(got) != "reply" {
		t.Fatalf("client read %q, %v; want the reply, then EOF", got, err)
	}
}

// wantReset checks that a read on c fails with an error other than a timeout or EOF.
func wantReset(t *testing.T, who string, c net.Conn) {
	t.Helper()
	n, err := c.Read(make([]byte, 1))
	var ne net.Error
	if err == nil || errors.Is(err, io.EOF) || (errors.As(err, &ne) && ne.Timeout()) {
		t.Errorf("%s: read %d, %v; want a reset", who, n, err)
	}
}

// talking returns a link with a short delay, its proxy and upstream, and both ends of a connection
// through it that has carried a round trip.
func talking(t *testing.T) (l *Link, up net.Listener, p *Proxy, client, server *net.TCPConn) {
	t.Helper()
	l = New(Profile{Delay: 5 * time.Millisecond})
	up = upstream(t)
	p = proxy(t, l, up)
	client = dial(t, p)
	server = accept(t, up)
	roundTrip(t, client, server)
	return l, up, p, client, server
}

func TestCut(t *testing.T) {
	l, up, p, client, server := talking(t)

	l.Cut()
	wantReset(t, "client", client)
	wantReset(t, "server", server)

	// A new connection is refused or reset (which one depends on whether the proxy's reset
	// comes before the client's connect returns).
	if c, err := net.Dial("tcp", p.Addr().String()); err == nil {
		_ = c.SetDeadline(time.Now().Add(watchdog))
		wantReset(t, "new client during the cut", c)
		_ = c.Close()
	}

	l.Restore()
	client = dial(t, p)
	server = accept(t, up)
	roundTrip(t, client, server)
}

// TestCutWhileHeld cuts the path while the proxy holds a connection it accepted during a
// blackhole: the connection is reset, and never reaches upstream.
func TestCutWhileHeld(t *testing.T) {
	l := New(Profile{})
	up := upstream(t)
	p := proxy(t, l, up)
	l.Blackhole()
	held := dial(t, p)
	mustWrite(t, held, []byte("held"))
	l.Cut()
	wantReset(t, "held client", held)
	l.Restore()
	client := dial(t, p)
	server := accept(t, up) // the first connection upstream sees is the new one
	mustWrite(t, client, []byte("new"))
	mustRead(t, server, []byte("new"))
}

func TestBlackhole(t *testing.T) {
	l, up, p, client, server := talking(t)

	l.Blackhole()
	mustWrite(t, client, []byte("lost?"))
	mustWrite(t, server, []byte("back?"))
	for _, c := range []net.Conn{client, server} {
		_ = c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		n, err := c.Read(make([]byte, 1))
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			t.Fatalf("read during blackhole: %d, %v; want a timeout", n, err)
		}
		_ = c.SetReadDeadline(time.Now().Add(watchdog))
	}
	// A new connection hangs: nothing reaches upstream.
	late := dial(t, p)
	mustWrite(t, late, []byte("late"))
	_ = up.(*net.TCPListener).SetDeadline(time.Now().Add(200 * time.Millisecond))
	if c, err := up.Accept(); err == nil {
		_ = c.Close()
		t.Fatal("upstream accepted a connection during the blackhole")
	}

	l.Restore()
	mustRead(t, server, []byte("lost?")) // held, then delivered, as TCP would retransmit them
	mustRead(t, client, []byte("back?"))
	roundTrip(t, client, server)
	lateServer := accept(t, up)
	mustRead(t, lateServer, []byte("late"))
	roundTrip(t, late, lateServer)
}

func TestJoin(t *testing.T) {
	// Two loopback connections: the link joins the inner ends.
	pairOf := func() (outer, inner *net.TCPConn) {
		up := upstream(t)
		c, err := net.Dial("tcp", up.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetDeadline(time.Now().Add(watchdog))
		t.Cleanup(func() { _ = c.Close() })
		return c.(*net.TCPConn), accept(t, up)
	}
	t.Run("clean end", func(t *testing.T) {
		l := New(Profile{Delay: 5 * time.Millisecond})
		a, ai := pairOf()
		b, bi := pairOf()
		joined := make(chan error, 1)
		go func() { joined <- l.Join(ai, bi) }()
		roundTrip(t, a, b)
		_ = a.CloseWrite()
		_ = b.CloseWrite()
		if got, err := io.ReadAll(a); err != nil || len(got) != 0 {
			t.Errorf("a read %q, %v", got, err)
		}
		if err := <-joined; err != nil {
			t.Errorf("Join = %v, want nil", err)
		}
	})
	t.Run("cut", func(t *testing.T) {
		l := New(Profile{})
		a, ai := pairOf()
		b, bi := pairOf()
		joined := make(chan error, 1)
		go func() { joined <- l.Join(ai, bi) }()
		roundTrip(t, a, b)
		l.Cut()
		if err := <-joined; !errors.Is(err, ErrCut) {
			t.Errorf("Join = %v, want ErrCut", err)
		}
		wantReset(t, "a", a)
		c, ci := pairOf()
		d, di := pairOf()
		if err := l.Join(ci, di); !errors.Is(err, ErrCut) {
			t.Errorf("Join during a cut = %v, want ErrCut", err)
		}
		wantReset(t, "c", c)
		wantReset(t, "d", d)
	})
}

func TestProxyCloseResets(t *testing.T) {
	l := New(Profile{})
	up := upstream(t)
	p, err := l.Listen("127.0.0.1:0", up.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	client := dial(t, p)
	server := accept(t, up)
	roundTrip(t, client, server)
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	wantReset(t, "client", client)
	wantReset(t, "server", server)
}

// TestConn runs x/net's conformance suite on connections through the link.
func TestConn(t *testing.T) {
	l := New(Profile{})
	up := upstream(t)
	p := proxy(t, l, up)
	nettest.TestConn(t, func() (c1, c2 net.Conn, stop func(), err error) {
		c, err := net.Dial("tcp", p.Addr().String())
		if err != nil {
			return nil, nil, nil, err
		}
		s, err := up.Accept()
		if err != nil {
			_ = c.Close()
			return nil, nil, nil, err
		}
		return c, s, func() { _ = c.Close(); _ = s.Close() }, nil
	})
}

func TestParseRate(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
	}{
		{"20mbit", 20e6}, {"20Mbit/s", 20e6}, {"1.5mbit", 1.5e6}, {"500kbit", 500e3},
		{"1gbit", 1e9}, {"1000", 1000}, {"0", 0},
	} {
		got, err := ParseRate(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseRate(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "fast", "-1mbit", "20mbyte", "64kbps"} {
		if _, err := ParseRate(bad); err == nil {
			t.Errorf("ParseRate(%q) succeeded", bad)
		}
	}
	if got := FormatRate(20e6); got != "20Mbit/s" {
		t.Errorf("FormatRate(20e6) = %q", got)
	}
}
