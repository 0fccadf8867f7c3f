package session

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rlogin-go/rlogin/internal/linkemu"
	"github.com/rlogin-go/rlogin/pty"
)

// delayedPair is tcpPair through a link emulator that delays each direction by oneWay.
func delayedPair(t *testing.T, oneWay time.Duration) (client, server net.Conn) {
	t.Helper()
	return tcpPairThrough(t, func(addr string) string {
		proxy, err := linkemu.New(linkemu.Profile{Delay: oneWay}).Listen("127.0.0.1:0", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = proxy.Close() })
		return proxy.Addr().String()
	})
}

// consume feeds the tuner n bytes consumed in 64 KiB credits, spread evenly over d from *now, with
// queued bytes waiting, and returns the credit it grants in all.
func consume(w *windowTuner, now *time.Time, n int, d time.Duration, queued int) int {
	granted := 0
	for done := 0; done < n; done += creditBatch {
		*now = now.Add(d * creditBatch / time.Duration(n))
		granted += creditBatch + w.adjust(creditBatch, queued, *now)
	}
	return granted
}

// TestWindowTuner: the output window doubles while a window's output is consumed within a round
// trip (the window limits the rate), up to its bound; it stays put when the rate is below half a
// window per round trip or before a round trip was measured; it halves, never below the base,
// while the writer falls behind. Every change is credit: granted in advance or withheld.
func TestWindowTuner(t *testing.T) {
	const rtt = 100 * time.Millisecond
	now := time.Unix(1000, 0)

	w := windowTuner{window: window}
	if consume(&w, &now, 4*window, 4*rtt, 0); w.window != window {
		t.Errorf("no round trip measured: window %d, want %d", w.window, window)
	}

	w = windowTuner{window: window, minRTT: rtt}
	consumed, granted := 0, 0
	for i := 0; w.window < maxClientWindow; i++ {
		if i > 10 {
			t.Fatalf("window %d after %d round trips, want %d", w.window, i, maxClientWindow)
		}
		// A window-limited link: one window per round trip, and the probe that shows no queue
		// after the growth.
		consumed += w.window
		granted += consume(&w, &now, w.window, rtt, 0)
		probe(&w, now, rtt)
	}
	consumed += w.window
	granted += consume(&w, &now, w.window, rtt, 0)
	if w.window != maxClientWindow {
		t.Errorf("window %d past the bound %d", w.window, maxClientWindow)
	}
	if granted-consumed != w.window-window {
		t.Errorf("granted %d for %d consumed: %d in advance, want the window's growth %d", granted, consumed, granted-consumed, w.window-window)
	}

	// A writer that falls behind: more than half the window queued. The window halves, by
	// credit withheld, and halves again while the queue stays, down to the base.
	consumed, granted, before := 0, 0, w.window
	consumed += maxClientWindow / 2
	granted += consume(&w, &now, maxClientWindow/2, 10*rtt, maxClientWindow)
	if w.window != before/2 {
		t.Errorf("window %d with the writer behind, want %d", w.window, before/2)
	}
	for range 20 {
		consumed += window
		granted += consume(&w, &now, window, 10*rtt, maxClientWindow)
	}
	if w.window != window {
		t.Errorf("window %d after the writer stayed behind, want the base %d", w.window, window)
	}
	if consumed-granted != before-window {
		t.Errorf("withheld %d, want the window's shrinkage %d", consumed-granted, before-window)
	}

	// A link slower than half the window per round trip: no growth.
	w = windowTuner{window: window, minRTT: rtt}
	if consume(&w, &now, 8*window, 8*2*rtt, 0); w.window != window {
		t.Errorf("rate of half a window per round trip: window %d, want %d", w.window, window)
	}
}

// TestWindowShrinksToTheLink: a probe that shows a standing queue shrinks the window, by
// credit withheld, to the last epoch's rate times the shortest round trip (with paceMargin, a
// credit batch of linkBatch and the server's flushReserve), even below the base, but not below minQueueWindow; the window grows again
// only once the probes show no queue, by a sixteenth an epoch until the rate is twice the
// link's; and it never shrinks while the output is held.
func TestWindowShrinksToTheLink(t *testing.T) {
	const (
		rtt  = 100 * time.Millisecond
		rate = 2_500_000 // bytes per second: a 20 Mbit/s link
	)
	at := func(n int) time.Duration { return time.Duration(n) * time.Second / rate }
	now := time.Unix(1000, 0)
	w := windowTuner{window: 4 << 20, minRTT: rtt}
	consume(&w, &now, 3<<20, at(3<<20), 0) // an epoch at the link's rate
	w.probed(rtt + 300*time.Millisecond)
	want := int(rate*(rtt+paceMargin).Seconds()) + linkBatch + flushReserve // tuned to the link: small batches
	consumed, granted, before := 0, 0, w.window
	for range 8 {
		consumed += 1 << 20
		granted += consume(&w, &now, 1<<20, at(1<<20), 0)
	}
	if w.window != want {
		t.Errorf("window %d after a probe showed 300 ms of queue, want %d (the link's %d B/s times %v, and a batch)", w.window, want, rate, rtt+paceMargin)
	}
	if consumed-granted != before-want {
		t.Errorf("withheld %d, want the window's shrinkage %d", consumed-granted, before-want)
	}
	if !w.takeProbe() {
		t.Error("no probe due while output flows")
	}
	if w.takeProbe() {
		t.Error("a second probe while one is under way")
	}

	// The window the link carries holds a queue of a batch and paceMargin: no growth.
	w.syncs = nil
	w.probed(rtt + at(want) - rtt)
	consume(&w, &now, 4*want, at(4*want), 0)
	if w.window != want {
		t.Errorf("window %d with the probes showing the window's own queue, want %d", w.window, want)
	}
	// No queue: the window may be the limit again, and grows, gently while the rate is the
	// link's of the shrink; it doubles again once the rate doubled that.
	w.probed(rtt)
	consume(&w, &now, want/2, at(want/2), 0) // an epoch
	if grown := want + want/16; w.window != grown {
		t.Errorf("window %d once the probes show no queue, want a sixteenth more, %d", w.window, grown)
	}
	before = w.window
	consume(&w, &now, before/2, at(before/8), 0) // gated: no probe sent after the growth came back
	if w.window != before {
		t.Errorf("window %d before a probe sent after its growth came back, want %d", w.window, before)
	}
	probe(&w, now, rtt)
	consume(&w, &now, before/2, at(before/8), 0) // an epoch at four times the rate
	if got := w.rate / rate; got < 3.99 || got > 4.01 {
		t.Fatalf("the epoch's rate is %.3f times the link's, want 4", got)
	}
	// Doubled, or at once to what that rate needs when that is more (as it is with paceMargin).
	if want := max(2*before, w.linkWindow(creditBatch)); w.window != want {
		t.Errorf("window %d once the rate doubled the link's, want %d (twice %d, or the rate's %d)", w.window, want, before, w.linkWindow(creditBatch))
	}

	// A slow link: not below minQueueWindow.
	w = windowTuner{window: window, minRTT: time.Millisecond}
	consume(&w, &now, 2*window, 2*time.Second, 0)
	w.probed(time.Second)
	consume(&w, &now, 4*window, 4*time.Second, 0)
	if w.window != minQueueWindow {
		t.Errorf("window %d on a slow queueing link, want the least, %d", w.window, minQueueWindow)
	}

	// While output is held (a SYNC after ^C), no probe shrinks the window.
	w = windowTuner{window: 4 << 20, minRTT: rtt}
	consume(&w, &now, 3<<20, at(3<<20), 0)
	w.syncSent(true, now)
	w.probed(rtt + 300*time.Millisecond)
	if w.debt != 0 {
		t.Errorf("debt %d while the output is held, want none", w.debt)
	}
}

// TestAdvanceCredit: with flow2 a server takes credit in advance, which grows the window it
// sends into, up to the largest window; beyond it, or without flow2, such credit is a protocol
// error.
func TestAdvanceCredit(t *testing.T) {
	term := newFakeTerminal(t, "sleep", "3600")
	term.flood = true
	req := bob
	req.Capabilities = []string{capFlow2}
	p, res, accept := serveRaw(t, term, req, []string{capFlow2})
	if accept.typ != frameAccept || strings.Join(accept.caps, ",") != capFlow2 {
		t.Fatalf("answer %v %q, want ACCEPT [flow2]", accept.typ, accept.caps)
	}
	const advance = 1 << 20
	p.send(message{typ: frameCredit, credit: advance})
	// The grown window, but for the part kept for the answer to an interrupt.
	const want = window + advance - flushReserve
	got := 0
	for got < want {
		m := p.read()
		if m.typ != frameData {
			t.Fatalf("got %v, want DATA", m.typ)
		}
		got += len(m.data)
	}
	if got != want {
		t.Fatalf("the server sent %d bytes, want the grown window of %d", got, want)
	}
	p.quiet(100 * time.Millisecond) // the window is full: the server waits for credit

	// The server may send flushReserve bytes more now, at most; credit that lets it send more
	// than the largest window is an error.
	p.send(message{typ: frameCredit, credit: maxWindow - flushReserve + 1})
	for {
		m := p.read()
		want := fmt.Sprintf("protocol error: client granted credit beyond the largest window of %d bytes", maxWindow)
		if m.typ != frameClose || m.text != want {
			t.Errorf("got %v %q, want CLOSE %q", m.typ, m.text, want)
		}
		break
	}
	if srv := waitServed(t, res); !errors.Is(srv.err, ErrProtocol) {
		t.Errorf("Serve: %v, want a protocol error", srv.err)
	}
}

// TestFlow2ProtocolErrors: SYNC needs flow2, and a client may leave at most maxSyncs of them
// unanswered.
func TestFlow2ProtocolErrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		caps   []string
		send   func(p *rawPeer)
		reason string
	}{
		{"SYNC without flow2", nil, func(p *rawPeer) { p.send(message{typ: frameSync}) }, "unexpected SYNC frame"},
		{"SYNC with payload", []string{capFlow2}, func(p *rawPeer) { p.write([]byte{byte(frameSync), 0, 0, 1, 0}) }, "bad SYNC frame: 1 bytes of payload"},
		{"too many SYNCs", []string{capFlow2}, func(p *rawPeer) {
			// ^C makes the server wait for the flush the terminal predicts (it reports none,
			// so for predictedFlushWait) before it answers: the SYNCs pile up meanwhile.
			b := appendFrame(nil, frameData, []byte{3})
			for range maxSyncs + 1 {
				b = appendHeader(b, frameSync, 0)
			}
			p.write(b)
		}, fmt.Sprintf("more than %d SYNCs unanswered", maxSyncs)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			term := newFakeTerminal(t, "sleep", "3600")
			term.predicts = true
			req := bob
			req.Capabilities = tc.caps
			p, res, _ := serveRaw(t, term, req, tc.caps)
			tc.send(p)
			expectProtocolClose(t, p, res, tc.reason)
		})
	}
}

// expectProtocolClose checks that the server closes p with a protocol error for reason (after
// any output it sent before), and that Serve returns it.
func expectProtocolClose(t *testing.T, p *rawPeer, res chan served, reason string) {
	t.Helper()
	m := p.read()
	for m.typ == frameData {
		m = p.read()
	}
	want := "protocol error: " + reason
	if m.typ != frameClose || m.text != want {
		t.Errorf("got %v %q, want CLOSE %q", m.typ, m.text, want)
	}
	if srv := waitServed(t, res); !errors.Is(srv.err, ErrProtocol) {
		t.Errorf("Serve: %v, want a protocol error", srv.err)
	}
}

// TestWindowGrowsOverDelay: over a 100 ms round trip, a flood makes the client grow the window
// past the base, and the output arrives whole; the same in a resumable session, whose server
// keeps no more output than the window (RECEIVED trims it).
func TestWindowGrowsOverDelay(t *testing.T) {
	t.Run("plain", func(t *testing.T) { testWindowGrowsOverDelay(t, false) })
	t.Run("resumable", func(t *testing.T) { testWindowGrowsOverDelay(t, true) })
}

// floodSetup returns startSessionWith's server and client setup of a session that is resumable
// (the client's Reconnect gives up at once) or not.
func floodSetup(resumable bool) (func(*ServerConn), func(*Client)) {
	if !resumable {
		return nil, nil
	}
	return func(sc *ServerConn) { sc.Detach = Detach{Timeout: time.Minute} }, func(c *Client) {
		c.Reconnect = func(context.Context, int, error) (net.Conn, error) { return nil, errors.New("no reconnect") }
	}
}

func testWindowGrowsOverDelay(t *testing.T, resumable bool) {
	c, s := delayedPair(t, 50*time.Millisecond)
	term := newFakeTerminal(t, "sleep", "3600")
	term.flood = true
	term.floodMax = 8 << 20
	configure, setup := floodSetup(resumable)
	ts := startSessionWith(t, c, s, term, configure, setup)
	maxTail := 0
	ts.stdout.waitFor(t, "the flood", func() bool {
		if ss := ts.server.session(); ss != nil {
			ss.mu.Lock()
			maxTail = max(maxTail, len(ss.res.tail)-ss.res.toff)
			ss.mu.Unlock()
		}
		return ts.stdout.buf.Len() >= term.floodMax
	})
	ts.client.mu.Lock()
	grown := ts.client.tune.window
	rtt := ts.client.tune.minRTT
	ts.client.mu.Unlock()
	if !ts.client.flow2 {
		t.Fatal("flow2 was not accepted")
	}
	if _, _, ok := ts.client.Resumable(); ok != resumable {
		t.Fatalf("resumable %v, want %v", ok, resumable)
	}
	if maxTail > maxClientWindow {
		t.Errorf("the server kept a tail of %d bytes, more than the largest window %d", maxTail, maxClientWindow)
	}
	t.Logf("largest tail seen %d", maxTail)
	if rtt < 100*time.Millisecond {
		t.Errorf("measured round trip %v, want at least the link's 100ms", rtt)
	}
	if grown <= window {
		t.Errorf("window %d after an 8 MB flood at 100 ms, want more than the base %d", grown, window)
	}
	t.Logf("round trip %v, window %d", rtt, grown)
	if got := ts.stdout.Bytes(); len(got) != term.floodMax || bytes.Count(got, []byte("x")) != len(got) {
		t.Errorf("got %d bytes of output, want the flood's %d", len(got), term.floodMax)
	}
	_ = ts.stdin.Close()
	ts.term.Hangup()
	_, _ = ts.wait()
}

// predictingPTY is a *pty.PTY that predicts flushes from its terminal's settings, read through the
// shell's standard input (the pty's slave).
type predictingPTY struct {
	*pty.PTY
	slave *os.File
}

func newPredictingPTY(p *pty.PTY) (*predictingPTY, error) {
	slave, err := os.OpenFile(fmt.Sprintf("/proc/%d/fd/0", p.Pid()), os.O_RDONLY|unix.O_NOCTTY|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	return &predictingPTY{PTY: p, slave: slave}, nil
}

func (p *predictingPTY) FlushesOutput(b []byte) bool {
	ts, err := unix.IoctlGetTermios(int(p.slave.Fd()), unix.TCGETS)
	if err != nil || ts.Lflag&unix.ISIG == 0 || ts.Lflag&unix.NOFLSH != 0 {
		return false
	}
	for _, c := range []byte{ts.Cc[unix.VINTR], ts.Cc[unix.VQUIT], ts.Cc[unix.VSUSP]} {
		if c != 0 && bytes.IndexByte(b, c) >= 0 {
			return true
		}
	}
	return false
}

// ptyOverDelay runs script in sh on a real pty, served over a link of the given one-way delay to
// a client that holds output after ^C; it returns the client's input, its output and the
// output's length at the first OnFlush (-1 before). With predict, the terminal predicts flushes
// from its settings; without, the server guesses them.
func ptyOverDelay(t *testing.T, oneWay time.Duration, script string, predict bool) (*Client, io.WriteCloser, *syncBuffer, *atomic.Int64, chan served) {
	t.Helper()
	p := startTestPTY(t, exec.Command("sh", "-c", script))
	var term Terminal = p
	if predict {
		pp, err := newPredictingPTY(p)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = pp.slave.Close() })
		term = pp
	}
	c, s := delayedPair(t, oneWay)
	out := newSyncBuffer()
	flushLen := new(atomic.Int64)
	flushLen.Store(-1)
	var stdin io.WriteCloser
	cl, res := startPTYSessionOver(t, c, s, term, func(c *Client) {
		c.Stdout = out
		c.Interrupts = []byte{3}
		c.OnFlush = func() { flushLen.CompareAndSwap(-1, int64(out.Len())) }
		stdin, _ = c.StdinPipe()
	})
	return cl, stdin, out, flushLen, res
}

// TestInterruptOverDelay: a flood interrupted by ^C across a 200 ms round trip: the client holds
// the output from the ^C until the server has reported the terminal's flush, and drops what was
// flushed. Nothing of the flood that was on its way reaches Stdout after the ^C (but the one Write
// under way then, at most holdChunk bytes), where without the hold a round trip's worth of it
// would (here about a megabyte), and at most 16 KiB come before the prompt, with what the terminal
// itself lets through after its flush (the flooding program's last write before SIGINT stops it).
// The prompt comes a round trip after the ^C, also when the window was full.
func TestInterruptOverDelay(t *testing.T) {
	const rtt = 200 * time.Millisecond
	cl, stdin, out, flushLen, res := ptyOverDelay(t, rtt/2,
		`trap 'echo; echo PROMPT; exit 3' INT; yes flood`, true)
	// Let the flood fill the window, then interrupt it: between two Writes, so that the test
	// knows what was written before the ^C (the next Write, blocked at the gate meanwhile, was
	// under way when the ^C was typed).
	out.waitFor(t, "the flood", func() bool { return out.buf.Len() >= 4*window })
	gate := make(chan struct{})
	out.mu.Lock()
	out.gate = gate
	out.mu.Unlock()
	out.waitFor(t, "a Write at the gate", func() bool { return out.blocked })
	// The whole window is in: the server waits for credit, which the hold keeps back.
	waitClient(t, cl, "a full window", func() bool { return cl.unacked >= cl.tune.window-flushReserve })
	mark := out.Len()
	start := time.Now()
	if _, err := stdin.Write([]byte{3}); err != nil {
		t.Fatal(err)
	}
	out.mu.Lock()
	out.gate = nil
	out.mu.Unlock()
	close(gate)
	after := -1
	out.waitFor(t, "the prompt", func() bool {
		after = bytes.Index(out.buf.Bytes()[mark:], []byte("PROMPT"))
		return after >= 0
	})
	took := time.Since(start)
	atFlush := int(flushLen.Load()) - mark
	t.Logf("%d bytes written after ^C before the flush arrived, %d before the prompt", atFlush, after)
	if flushLen.Load() < 0 {
		t.Fatal("OnFlush was not called")
	}
	if atFlush > holdChunk {
		t.Errorf("%d bytes written after ^C before the flush arrived, want at most the Write under way (%d)", atFlush, holdChunk)
	}
	if after > 16<<10 {
		t.Errorf("%d bytes written after ^C before the prompt, want at most 16 KiB", after)
	}
	// The prompt comes a round trip after the ^C, although the window was full: the server
	// keeps a reserve of it for the answer to an interrupt. The bound is a count of round trips.
	if rounds := int(took / rtt); rounds > 1 {
		t.Errorf("the prompt came %v after ^C: %d round trips of %v, want 1", took, rounds, rtt)
	}
	var exit *ExitError
	if err := cl.Wait(); !errors.As(err, &exit) || exit.Status != 3 {
		t.Errorf("Wait: %v, want exit status 3", err)
	}
	if srv := waitServed(t, res); srv.err != nil {
		t.Errorf("Serve: %v", srv.err)
	}
}

// TestInterruptLosesNothing: programs that take ^C themselves lose no output to the hold: one
// that reads it as a key (signals off), whether the terminal predicts that no flush comes or the
// server guesses one, and one that catches SIGINT and then writes.
func TestInterruptLosesNothing(t *testing.T) {
	const rawKey = `stty raw -echo; echo READY; dd bs=1 count=1 2>/dev/null | od -An -c; seq 1 3000; echo DONE`
	for _, tc := range []struct {
		name, script string
		predict      bool
	}{
		{"raw key", rawKey, true},
		{"raw key, guessed", rawKey, false},
		{"caught", `trap 'echo CAUGHT; seq 1 3000; echo DONE; exit 0' INT; echo READY; while :; do sleep 1; done`, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cl, stdin, out, _, res := ptyOverDelay(t, 50*time.Millisecond, tc.script, tc.predict)
			out.waitFor(t, "READY", func() bool { return bytes.Contains(out.buf.Bytes(), []byte("READY")) })
			mark := out.Len()
			if _, err := stdin.Write([]byte{3}); err != nil {
				t.Fatal(err)
			}
			if err := cl.Wait(); err != nil {
				t.Errorf("Wait: %v", err)
			}
			if srv := waitServed(t, res); srv.err != nil {
				t.Errorf("Serve: %v", srv.err)
			}
			got := strings.ReplaceAll(string(out.Bytes()[mark:]), "\r\n", "\n")
			var want strings.Builder
			for i := 1; i <= 3000; i++ {
				fmt.Fprintf(&want, "%d\n", i)
			}
			want.WriteString("DONE\n")
			if !strings.HasSuffix(got, want.String()) {
				t.Errorf("output after ^C ends %q, want all of seq 1 3000 and DONE", got[max(0, len(got)-200):])
			}
		})
	}
}
