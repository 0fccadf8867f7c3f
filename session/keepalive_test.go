package session

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"
)

// Short intervals, so that the tests see many PINGs, and a timeout of twelve of them (600 ms), so
// that a stall of this process, where both ends run, is not taken for a dead peer: a -race run on
// a loaded machine stalls for 100 ms and more, which ended sessions under a 120 ms timeout.
var fastKeepalive = Keepalive{Interval: 50 * time.Millisecond, CountMax: 12}

// TestKeepaliveFrames: PING and PONG carry exactly a u32 cookie, and only with the capability.
func TestKeepaliveFrames(t *testing.T) {
	allowed := withKeepalive(isClientFrame)
	for _, typ := range []frameType{framePing, framePong} {
		b := appendCookie(nil, typ, 0xdeadbeef)
		if want := []byte{byte(typ), 0, 0, 4, 0xde, 0xad, 0xbe, 0xef}; string(b) != string(want) {
			t.Errorf("%v: % x, want % x", typ, b, want)
		}
		m, _, err := decodeFrame(typ, b[headerLen:], allowed)
		if err != nil || m.cookie != 0xdeadbeef {
			t.Errorf("%v decodes to %d, %v", typ, m.cookie, err)
		}
		if enc, err := appendMessage(nil, &m); err != nil || string(enc) != string(b) {
			t.Errorf("%v re-encodes to % x, %v", typ, enc, err)
		}
		for _, p := range [][]byte{nil, {1, 2, 3}, {1, 2, 3, 4, 5}} {
			if _, _, err := decodeFrame(typ, p, allowed); !errors.Is(err, ErrProtocol) {
				t.Errorf("%v with %d bytes: %v, want a protocol error", typ, len(p), err)
			}
		}
		if _, _, err := decodeFrame(typ, b[headerLen:], isClientFrame); err == nil {
			t.Errorf("%v accepted without the capability", typ)
		}
	}
}

// TestKeepaliveTimeout: the defaults, CountMax's default, and off.
func TestKeepaliveTimeout(t *testing.T) {
	for _, tc := range []struct {
		k    Keepalive
		want time.Duration
	}{
		{Keepalive{}, 45 * time.Second},
		{Keepalive{Interval: time.Second}, 3 * time.Second},
		{Keepalive{Interval: time.Second, CountMax: 5}, 5 * time.Second},
		{Keepalive{CountMax: 2}, 30 * time.Second},
		{Keepalive{Interval: -1}, 0},
	} {
		if got := tc.k.Timeout(); got != tc.want {
			t.Errorf("%+v: Timeout %v, want %v", tc.k, got, tc.want)
		}
	}
	if p := newProber(Keepalive{Interval: -1}, nil, nil); p != nil {
		t.Error("a negative Interval probes")
	}
}

// TestProberOnePing: with CountMax 1, a PING still goes before the verdict, and the verdict
// never comes before the timeout.
func TestProberOnePing(t *testing.T) {
	pings := make(chan uint32, 4)
	dead := make(chan *NoAnswerError, 1)
	// The PING is due after half the interval. A tick a whole spacing late counts as a stopped
	// process and restarts the silence (tick), which a second late tick would make a second
	// PING: 200 ms spacings, which no loaded machine's timers miss by as much twice.
	const interval = 400 * time.Millisecond
	start := time.Now()
	p := newProber(Keepalive{Interval: interval, CountMax: 1},
		func(c uint32) bool { pings <- c; return true }, func(e *NoAnswerError) { dead <- e })
	defer p.stop()
	select {
	case e := <-dead:
		if time.Since(start) < interval || e.Silence != interval {
			t.Errorf("verdict %v after %v", e, time.Since(start))
		}
	case <-time.After(testTimeout):
		t.Fatal("no verdict")
	}
	if len(pings) != 1 {
		t.Errorf("%d PINGs before the verdict, want 1", len(pings))
	}
	if err := p.pong(2); err == nil {
		t.Error("a PONG for a PING never sent was taken")
	}
	if err := p.pong(1); err != nil {
		t.Errorf("PONG 1: %v", err)
	}
	if err := p.pong(1); err == nil {
		t.Error("a second PONG 1 was taken")
	}
}

// keepaliveServer runs a ServerConn with k that supports keepalive, for a raw client that logs
// in offering caps; it returns the raw client after the ACCEPT.
func keepaliveServer(t *testing.T, term *fakeTerminal, k Keepalive, caps []string) (*rawPeer, chan served) {
	t.Helper()
	req := bob
	req.Capabilities = caps
	p, res, m := serveRaw(t, term, req, []string{capFlow2, capKeepalive}, func(s *ServerConn) { s.Keepalive = k })
	if m.typ != frameAccept || fmt.Sprint(m.caps) != fmt.Sprint(caps) {
		t.Fatalf("answer %v %q, want ACCEPT %q", m.typ, m.caps, caps)
	}
	return p, res
}

// TestServerProbesSilentClient: the server PINGs a silent client, takes its PONGs as life, and
// once the client stops answering, ends the session as a lost connection, hanging up the shell,
// no sooner than the timeout after the client's last frame.
func TestServerProbesSilentClient(t *testing.T) {
	term := newFakeTerminal(t, "sleep", "3600")
	p, res := keepaliveServer(t, term, fastKeepalive, []string{capKeepalive})
	for want := uint32(1); want <= 3; want++ {
		m := p.read()
		if m.typ != framePing || m.cookie != want {
			t.Fatalf("got %v %d, want PING %d", m.typ, m.cookie, want)
		}
		p.write(appendCookie(nil, framePong, m.cookie))
	}
	// The client's own PING is answered with its cookie. It is the client's last frame: the
	// server hears nothing after this moment.
	lastSent := time.Now()
	p.write(appendCookie(nil, framePing, 77))
	for {
		m := p.read()
		if m.typ == framePong && m.cookie == 77 {
			break
		}
		if m.typ != framePing {
			t.Fatalf("got %v, want PONG 77", m.typ)
		}
	}
	// Silent from here on: the server PINGs, then gives up.
	srv := waitServed(t, res)
	var noAnswer *NoAnswerError
	if !errors.As(srv.err, &noAnswer) || noAnswer.Silence != fastKeepalive.Timeout() {
		t.Fatalf("Serve: %v, want a NoAnswerError of %v", srv.err, fastKeepalive.Timeout())
	}
	if d := time.Since(lastSent); d < fastKeepalive.Timeout() {
		t.Errorf("gave up %v after the last frame, before the timeout %v", d, fastKeepalive.Timeout())
	}
	checkHungUp(t, term, srv)
}

// TestClientProbesSilentServer: a client PINGs a silent server and gives up on it with a
// NoAnswerError, no sooner than the timeout after the server's last frame; the server's PING is
// answered.
func TestClientProbesSilentServer(t *testing.T) {
	c, s := tcpPair(t)
	srv := make(chan *rawPeer, 1)
	go func() {
		p := newRawPeer(t, s)
		if v, _ := p.br.ReadByte(); v != version {
			t.Errorf("client version %d", v)
		}
		m, err := p.fr.readMessage(isLoginFrame)
		if err != nil || fmt.Sprint(m.req.Capabilities) != fmt.Sprint([]string{capFlow2, capKeepalive}) {
			t.Errorf("LOGIN %+v, %v", m.req, err)
		}
		_, _ = s.Write(appendFrame([]byte{version}, frameAccept, appendCapabilities(nil, []string{capKeepalive})))
		srv <- p
	}()
	cl := NewClient(c, bob)
	cl.Keepalive = fastKeepalive
	if err := cl.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	p := <-srv
	if m := p.read(); m.typ != framePing || m.cookie != 1 {
		t.Fatalf("got %v %d, want PING 1", m.typ, m.cookie)
	}
	// An Interval after the ACCEPT at least: a client that counted the silence from the ACCEPT,
	// not from the server's last frame, gives up before the timeout after lastSent.
	lastSent := time.Now() // the server's last frame follows
	p.write(appendCookie(nil, framePing, 5))
	// More PINGs may come before the PONG (another Interval passed before the PING 5 was
	// written); they stay unanswered: the server is silent.
	pings := uint32(1)
	for {
		m := p.read()
		if m.typ == framePong && m.cookie == 5 {
			break
		}
		if m.typ != framePing || m.cookie != pings+1 {
			t.Fatalf("got %v %d, want PONG 5 or PING %d", m.typ, m.cookie, pings+1)
		}
		pings++
	}
	for range 2 { // the PING 5 began a new silence, which the client probes
		if m := p.read(); m.typ != framePing || m.cookie != pings+1 {
			t.Fatalf("got %v %d, want PING %d", m.typ, m.cookie, pings+1)
		}
		pings++
	}
	err := cl.Wait()
	var noAnswer *NoAnswerError
	if !errors.As(err, &noAnswer) || noAnswer.Silence != fastKeepalive.Timeout() {
		t.Fatalf("Wait: %v, want a NoAnswerError of %v", err, fastKeepalive.Timeout())
	}
	if d := time.Since(lastSent); d < fastKeepalive.Timeout() {
		t.Errorf("gave up %v after the last frame, before the timeout %v", d, fastKeepalive.Timeout())
	}
	if want := "session: connection lost: no answer from the peer for 600ms"; err.Error() != want {
		t.Errorf("Wait: %q, want %q", err, want)
	}
}

// TestKeepaliveQuietSession: a healthy session without a byte of data outlives many intervals
// and three timeouts on both ends, and then ends normally.
func TestKeepaliveQuietSession(t *testing.T) {
	c, s := delayedPair(t, 10*time.Millisecond)
	term := newFakeTerminal(t)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	srv := NewServerConn(s)
	srv.Keepalive = fastKeepalive
	res := make(chan served, 1)
	go func() {
		if _, err := srv.ReadRequest(); err != nil {
			res <- served{nil, err}
			return
		}
		st, err := srv.Serve(ctx, term)
		res <- served{st, err}
	}()
	cl := NewClient(c, bob)
	cl.Keepalive = fastKeepalive
	stdin, err := cl.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.Start(ctx); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	waited := make(chan error, 1)
	go func() { waited <- cl.Wait() }()
	// Three timeouts without data, and ten of the client's PINGs answered meanwhile (the server
	// PINGs too, when the client's PINGs leave it an Interval of silence). An end before that, on
	// either side, fails at once.
	live := 3 * fastKeepalive.Timeout()
	poll := time.NewTicker(5 * time.Millisecond)
	defer poll.Stop()
	for time.Since(start) < live || cl.alive.answered.Load() < 10 {
		select {
		case err := <-waited:
			t.Fatalf("Wait returned %v after %v of a quiet session (%d PINGs answered)", err, time.Since(start), cl.alive.answered.Load())
		case r := <-res:
			t.Fatalf("Serve returned %v after %v of a quiet session", r.err, time.Since(start))
		case <-ctx.Done():
			t.Fatalf("after %v, %d PINGs answered, want 10", time.Since(start), cl.alive.answered.Load())
		case <-poll.C:
		}
	}
	_ = stdin.Close() // the fake shell exits at the end of its input
	select {
	case err := <-waited:
		if err != nil {
			t.Fatalf("Wait: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("Wait did not return after the end of the input")
	}
	if r := waitServed(t, res); r.err != nil {
		t.Fatalf("Serve: %v", r.err)
	}
}

// TestKeepaliveOldPeers: with a peer that does not offer or accept the capability, nobody PINGs.
func TestKeepaliveOldPeers(t *testing.T) {
	t.Run("old client", func(t *testing.T) {
		term := newFakeTerminal(t, "sleep", "3600")
		p, _ := keepaliveServer(t, term, fastKeepalive, nil)
		p.quiet(fastKeepalive.Timeout()) // twelve PINGs' worth
	})
	t.Run("old server", func(t *testing.T) {
		c, s := tcpPair(t)
		cl := NewClient(c, bob)
		cl.Keepalive = fastKeepalive
		go func() { rawServer(t, s) }()
		if err := cl.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		p := newRawPeer(t, s)
		p.quiet(fastKeepalive.Timeout()) // twelve PINGs' worth
	})
}

// TestKeepaliveProtocolErrors: a PONG must answer the oldest unanswered PING.
func TestKeepaliveProtocolErrors(t *testing.T) {
	term := newFakeTerminal(t, "sleep", "3600")
	p, res := keepaliveServer(t, term, Keepalive{Interval: -1}, []string{capKeepalive})
	p.write(appendCookie(nil, framePong, 1))
	m := p.read()
	if want := "protocol error: PONG 1 does not answer the oldest unanswered PING"; m.typ != frameClose || m.text != want {
		t.Errorf("got %v %q, want CLOSE %q", m.typ, m.text, want)
	}
	if srv := waitServed(t, res); !errors.Is(srv.err, ErrProtocol) {
		t.Errorf("Serve: %v, want a protocol error", srv.err)
	}
}

// TestCloseStopsProber: Close stops the client's probes at once.
func TestCloseStopsProber(t *testing.T) {
	c, s := tcpPair(t)
	cl := NewClient(c, bob)
	cl.Keepalive = fastKeepalive
	go func() {
		p := newRawPeer(t, s)
		_, _ = p.br.ReadByte()
		_, _ = p.fr.readMessage(isLoginFrame)
		_, _ = s.Write(appendFrame([]byte{version}, frameAccept, appendCapabilities(nil, []string{capKeepalive})))
	}()
	if err := cl.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	_ = cl.Close()
	cl.alive.mu.Lock()
	stopped := cl.alive.stopped
	cl.alive.mu.Unlock()
	if !stopped {
		t.Error("the prober still runs after Close")
	}
	if err := cl.Wait(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Wait: %v, want net.ErrClosed", err)
	}
}

// TestTooManyPings: a client that sends PINGs and reads none of the PONGs may have at most
// maxPings unanswered (those the server could not send yet); beyond that it broke the protocol.
func TestTooManyPings(t *testing.T) {
	c, s := pipePair(t) // unbuffered: the server's writes wait for reads, which never come
	term := newFakeTerminal(t, "sleep", "3600")
	srv := NewServerConn(s)
	srv.Keepalive = Keepalive{Interval: -1}
	res := make(chan served, 1)
	go func() {
		if _, err := srv.ReadRequest(); err != nil {
			res <- served{nil, err}
			return
		}
		st, err := srv.Serve(context.Background(), term)
		res <- served{st, err}
	}()
	p := newRawPeer(t, c)
	req := bob
	req.Capabilities = []string{capKeepalive}
	p.login(req)
	if v := p.readByte(); v != version {
		t.Fatalf("server answered version %d", v)
	}
	if m := p.read(); m.typ != frameAccept {
		t.Fatalf("answer %v", m.typ)
	}
	var b []byte
	for i := range 3 * maxPings {
		b = appendCookie(b, framePing, uint32(i+1))
	}
	go func() { _, _ = c.Write(b) }() // returns when the server stops reading: at its verdict
	r := waitServed(t, res)
	if !errors.Is(r.err, ErrProtocol) || !strings.Contains(r.err.Error(), fmt.Sprintf("more than %d PINGs unanswered", maxPings)) {
		t.Errorf("Serve: %v, want a protocol error for the PINGs", r.err)
	}
}

// TestServerWaitsForQuietClient: after the client's QUIET (rlogin suspended), the server takes
// its silence for no verdict, however long, and sends at most 16 PINGs meanwhile; the next frame
// from the client ends the QUIET, and a silence after it is a verdict again.
func TestServerWaitsForQuietClient(t *testing.T) {
	term := newFakeTerminal(t, "sleep", "3600")
	p, res := keepaliveServer(t, term, fastKeepalive, []string{capKeepalive})
	p.write(appendHeader(nil, frameQuiet, 0))
	// Three times the timeout, and far more PINGs' worth (36) than 16.
	select {
	case srv := <-res:
		res <- srv // for the cleanup, which waits for it
		t.Fatalf("the session ended while the client was quiet: %v", srv.err)
	case <-time.After(3 * fastKeepalive.Timeout()):
	}
	// The client runs again. Its last frame: the server can hear it only after lastSent.
	lastSent := time.Now()
	p.write(appendCookie(nil, framePing, 1))
	pings := 0
	for {
		m := p.read()
		if m.typ == framePong && m.cookie == 1 {
			break
		}
		if m.typ != framePing || m.cookie != uint32(pings+1) {
			t.Fatalf("got %v %d, want PING %d or PONG 1", m.typ, m.cookie, pings+1)
		}
		pings++
	}
	if pings > maxPings {
		t.Errorf("%d PINGs unanswered, more than %d", pings, maxPings)
	}
	srv := waitServed(t, res) // silent again: the verdict comes
	var noAnswer *NoAnswerError
	if !errors.As(srv.err, &noAnswer) {
		t.Fatalf("Serve: %v, want a NoAnswerError", srv.err)
	}
	if d := time.Since(lastSent); d < fastKeepalive.Timeout() {
		t.Errorf("gave up %v after the last frame, before the timeout %v", d, fastKeepalive.Timeout())
	}
	checkHungUp(t, term, srv)
}

// TestProberLateTimer: a tick that runs a whole spacing late (this process was stopped) takes
// no verdict on the silence it could not hear, and PINGs first.
func TestProberLateTimer(t *testing.T) {
	pings := make(chan uint32, 4)
	dead := make(chan *NoAnswerError, 1)
	k := Keepalive{Interval: time.Hour, CountMax: 2} // its own timer never runs in this test
	p := newProber(k, func(c uint32) bool { pings <- c; return true }, func(e *NoAnswerError) { dead <- e })
	defer p.stop()
	// As if the process had been stopped for three hours since its start: the timer, due after
	// one hour, runs now, and nothing came for three hours.
	p.mu.Lock()
	p.start = p.start.Add(-3 * time.Hour)
	p.mu.Unlock()
	p.tick()
	select {
	case e := <-dead:
		t.Fatalf("verdict %v on a silence the prober could not hear", e)
	case c := <-pings:
		if c != 1 {
			t.Errorf("PING %d, want 1", c)
		}
	default:
		t.Fatal("no PING after the late tick")
	}
	// On time, the same silence is a verdict.
	q := newProber(k, func(uint32) bool { return true }, func(e *NoAnswerError) { dead <- e })
	defer q.stop()
	q.mu.Lock()
	q.start = q.start.Add(-3 * time.Hour)
	q.due = 3*time.Hour - time.Minute // due a minute ago: on time, for a spacing of an hour
	q.mu.Unlock()
	q.tick()
	select {
	case <-dead:
	default:
		t.Error("no verdict after three hours of silence heard on time")
	}
}
