package session

import (
	"bytes"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/rlogin-go/rlogin/internal/linkemu"
)

// serveResumableFlood runs a flooding terminal for a raw client that offers resume and flow2, and
// returns the peer past the ACCEPT and RESUMABLE, and a function that reads the server's tail
// length.
func serveResumableFlood(t *testing.T) (p *rawPeer, res chan served, tail func() int) {
	t.Helper()
	term := newFakeTerminal(t, "sleep", "3600")
	term.flood = true
	p, res, srv := serveResumable(t, term)
	tail = func() int {
		ss := srv.session()
		ss.mu.Lock()
		defer ss.mu.Unlock()
		return len(ss.res.tail) - ss.res.toff
	}
	return p, res, tail
}

// serveResumable serves term for a raw client that offers resume and flow2, and returns the
// peer past the ACCEPT and RESUMABLE, and the ServerConn.
func serveResumable(t *testing.T, term Terminal) (p *rawPeer, res chan served, srv *ServerConn) {
	t.Helper()
	req := bob
	req.Capabilities = []string{capFlow2, capResume}
	p, res, accept := serveRaw(t, term, req, []string{capFlow2, capResume}, func(s *ServerConn) {
		s.Detach = Detach{Timeout: time.Minute}
		srv = s
	})
	if accept.typ != frameAccept {
		t.Fatalf("answer %v, want ACCEPT", accept.typ)
	}
	if m := p.read(); m.typ != frameResumable {
		t.Fatalf("got %v after the ACCEPT, want RESUMABLE", m.typ)
	}
	return p, res, srv
}

// readData reads n bytes of DATA.
func readData(t *testing.T, p *rawPeer, n int) {
	t.Helper()
	for got := 0; got < n; {
		m := p.read()
		if m.typ != frameData {
			t.Fatalf("got %v, want DATA", m.typ)
		}
		got += len(m.data)
	}
}

// TestReceivedTrimsTail: a resumable session's server keeps the output it sent until RECEIVED
// says the client has it, not until CREDIT (which flow2 grants in advance): a grown window's
// output is kept whole, and RECEIVED drops it up to its offset.
func TestReceivedTrimsTail(t *testing.T) {
	p, _, tail := serveResumableFlood(t)
	readData(t, p, window-flushReserve)
	p.quiet(50 * time.Millisecond) // the window is full
	if got := tail(); got != window-flushReserve {
		t.Fatalf("tail %d bytes, want all that was sent: %d", got, window-flushReserve)
	}
	// Credit for all that was sent and 1 MiB in advance: nothing of the tail goes.
	const advance = 1 << 20
	p.send(message{typ: frameCredit, credit: window - flushReserve + advance})
	readData(t, p, window+advance-flushReserve)
	p.quiet(50 * time.Millisecond)
	sent := 2*(window-flushReserve) + advance
	if got := tail(); got != sent {
		t.Fatalf("tail %d bytes after a credit in advance, want all that was sent: %d", got, sent)
	}
	p.send(message{typ: frameReceived, received: uint64(sent - 1000)})
	waitUntil(t, "the tail trimmed", func() bool { return tail() == 1000 })
	p.send(message{typ: frameReceived, received: uint64(sent)})
	waitUntil(t, "the tail emptied", func() bool { return tail() == 0 })
}

// TestReceivedProtocolErrors: RECEIVED needs resume, names an offset between what the client
// said it received and what was sent, and credit may not let the output not received exceed the
// largest window.
func TestReceivedProtocolErrors(t *testing.T) {
	sent := window - flushReserve
	for _, tc := range []struct {
		name   string
		resume bool
		send   func(p *rawPeer)
		reason string
	}{
		{"without resume", false, func(p *rawPeer) { p.send(message{typ: frameReceived, received: 0}) }, "unexpected RECEIVED frame"},
		{"short", true, func(p *rawPeer) { p.write([]byte{byte(frameReceived), 0, 0, 4, 0, 0, 0, 0}) }, "bad RECEIVED frame: payload is too short"},
		{"beyond what was sent", true, func(p *rawPeer) {
			p.send(message{typ: frameReceived, received: uint64(sent + 1)})
		}, fmt.Sprintf("client received output up to %d, not within 0-%d", sent+1, sent)},
		{"backwards", true, func(p *rawPeer) {
			p.send(message{typ: frameReceived, received: 10})
			p.send(message{typ: frameReceived, received: 9})
		}, fmt.Sprintf("client received output up to 9, not within 10-%d", sent)},
		{"credit beyond the tail's bound", true, func(p *rawPeer) {
			// Allowed without resume: the server may send maxWindow-window more than received.
			p.send(message{typ: frameCredit, credit: maxWindow - window + 1})
		}, fmt.Sprintf("client granted credit beyond the largest window of %d bytes, counted from the output it received", maxWindow)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var p *rawPeer
			var res chan served
			if tc.resume {
				p, res, _ = serveResumableFlood(t)
				readData(t, p, sent)
				p.quiet(20 * time.Millisecond)
			} else {
				req := bob
				req.Capabilities = []string{capFlow2}
				p, res, _ = serveRaw(t, newFakeTerminal(t, "sleep", "3600"), req, []string{capFlow2})
			}
			tc.send(p)
			expectProtocolClose(t, p, res, tc.reason)
		})
	}
}

// TestResumeAfterGrowth: a cut in the middle of a flood over a 100 ms round trip, once the
// window grew past the base: the output arrives whole, every byte once and in order, none
// skipped, though the client had granted credit for output it had not received.
func TestResumeAfterGrowth(t *testing.T) {
	term := newFakeTerminal(t, "sleep", "3600")
	rig := newResumeRig(t, term, Detach{Timeout: time.Minute, Buffer: 32 << 20})
	proxy, err := linkemu.New(linkemu.Profile{Delay: 50 * time.Millisecond}).Listen("127.0.0.1:0", rig.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = proxy.Close() })
	rig.addr = proxy.Addr().String()
	rc := startResumeClient(t, rig, nil)

	var want []byte
	for i := range 600_000 { // 6 MB of numbered lines
		want = fmt.Appendf(want, "o%07d\n", i)
	}
	term.locked(func() {
		term.out = append(term.out, want...)
		term.cond.Broadcast()
	})
	grown := func() bool {
		rc.Client.mu.Lock()
		defer rc.Client.mu.Unlock()
		return rc.tune.window > window
	}
	rc.stdout.waitFor(t, "a grown window", func() bool { return rc.stdout.buf.Len() >= 1<<20 && grown() })
	rig.cutServer()
	waitUntil(t, "the whole flood, or the session's end", func() bool {
		ended, _ := rc.ending()
		return rc.stdout.Len() >= len(want) || ended
	})
	if ended, err := rc.ending(); ended {
		t.Fatalf("the session ended with %d bytes of %d: %v", rc.stdout.Len(), len(want), err)
	}
	if got := rc.stdout.Bytes(); !bytes.Equal(got, want) {
		t.Fatalf("output differs at byte %d of %d (have %d)", firstDiff(got, want), len(want), len(got))
	}
	waitUntil(t, "the resume", func() bool { return len(rc.resumes()) == 1 })
	if got := rc.resumes(); !slices.Equal(got, []uint64{0}) {
		t.Errorf("skipped %v, want [0]", got)
	}
}

// TestResumeCreditDuringLogin: output of the lost conn that the client writes while its resume
// waits for the server's answer is credited to neither conn: the new conn's window starts at the
// base on both sides, and a flood after the resume arrives whole, the server never sending more
// than the client's window. (A credit taken during the login went over the new conn, and the
// server sent that much beyond the client's window, a protocol error: on a loaded machine a
// client writes its queue late, and TestResumeAfterGrowth could end so.)
func TestResumeCreditDuringLogin(t *testing.T) {
	term := newFakeTerminal(t, "sleep", "3600")
	rig := newResumeRig(t, term, Detach{Timeout: time.Minute})
	rc := startResumeClient(t, rig, nil)
	holdWrites := func() chan struct{} {
		g := make(chan struct{})
		rc.stdout.mu.Lock()
		rc.stdout.gate = g
		rc.stdout.mu.Unlock()
		return g
	}
	releaseWrites := func(g chan struct{}) {
		rc.stdout.mu.Lock()
		defer rc.stdout.mu.Unlock()
		if rc.stdout.gate == g {
			rc.stdout.gate = nil
			close(g)
		}
	}
	gate := holdWrites()                      // the writer waits: the output stays in the client's queue
	t.Cleanup(func() { releaseWrites(gate) }) // before the client's Close waits for the writer
	before := produce(term, "a", 0, 20_000)   // 140 000 bytes: more than a credit batch, within the window
	waitClient(t, rc.Client, "the output received", func() bool { return rc.res.outReceived == uint64(len(before)) })

	// The resume's answer waits until the writer took credit for output of the lost conn.
	release := rig.holdAnswers()
	rig.cutServer()
	rig.waitAnswering(t)
	releaseWrites(gate)
	waitClient(t, rc.Client, "a credit for output of the lost conn", func() bool { return rc.unacked < len(before) && !rc.writing })
	// The writer waits again once the credit is sent (if it is): the new conn's output stays
	// queued, and the client grants no credit for it.
	gate = holdWrites()
	close(release)
	waitUntil(t, "the resume", func() bool { return len(rc.resumes()) == 1 })

	after := produce(term, "b", 0, 100_000) // 700 000 bytes: more than the window
	want := append(before, after...)
	waitUntil(t, "the server's window full and all it sent received, or the session's end", func() bool {
		ss := rig.srv.session()
		ss.mu.Lock()
		full, sent := ss.unacked >= ss.outputWindowLocked(), ss.res.outSent
		ss.mu.Unlock()
		rc.Client.mu.Lock()
		defer rc.Client.mu.Unlock()
		return full && rc.res.outReceived == sent || rc.ended
	})
	if ended, err := rc.ending(); ended {
		t.Fatalf("the session ended: %v", err)
	}
	releaseWrites(gate)
	rc.stdout.waitFor(t, "the whole output", func() bool { return rc.stdout.buf.Len() >= len(want) })
	if got := rc.stdout.Bytes(); !bytes.Equal(got, want) {
		t.Fatalf("output differs at byte %d of %d (have %d)", firstDiff(got, want), len(want), len(got))
	}
	if got := rc.resumes(); !slices.Equal(got, []uint64{0}) {
		t.Errorf("skipped %v, want [0]", got)
	}
}

// TestResumeInputDuringLogin: input written while a resume waits for the server's answer, with
// credit of the lost conn, counts against the new conn's credit: the client sends no more than
// the window the server allows.
func TestResumeInputDuringLogin(t *testing.T) {
	term := newFakeTerminal(t, "sleep", "3600")
	term.locked(func() { term.blockIn = true }) // the shell reads no input: no credit comes back
	rig := newResumeRig(t, term, Detach{Timeout: time.Minute})
	rc := startResumeClient(t, rig, nil)
	input := func(n int) []byte { return bytes.Repeat([]byte{'i'}, n) }
	const first = 100_000
	if _, err := rc.stdin.Write(input(first)); err != nil {
		t.Fatal(err)
	}
	received := func() int64 {
		ss := rig.srv.session()
		ss.mu.Lock()
		defer ss.mu.Unlock()
		return ss.inTotal
	}
	waitUntil(t, "the input received", func() bool { return received() == first })

	release := rig.holdAnswers()
	rig.cutServer()
	rig.waitAnswering(t)
	during := make(chan error, 1)
	go func() {
		_, err := rc.stdin.Write(input(maxDataFrame))
		during <- err
	}()
	waitClient(t, rc.Client, "input sent with the lost conn's credit", func() bool { return rc.credit == window-first-maxDataFrame })
	close(release)
	if err := receive(t, during, "the input written during the login"); err != nil {
		t.Fatal(err)
	}

	// As much input as the client's credit allows, and more: the new conn's window fills, and
	// no further.
	rest := make(chan error, 1)
	go func() {
		_, err := rc.stdin.Write(input(window))
		rest <- err
	}()
	t.Cleanup(func() {
		_ = rc.Close() // ends the Write that waits for credit
		<-rest
	})
	waitUntil(t, "the client out of credit and all it sent received, or the session's end", func() bool {
		got := received()
		rc.Client.mu.Lock()
		defer rc.Client.mu.Unlock()
		return rc.credit == 0 && uint64(got) == rc.res.inSent || rc.ended
	})
	if ended, err := rc.ending(); ended {
		t.Fatalf("the session ended: %v", err)
	}
	if got := received(); got != first+window {
		t.Errorf("the server received %d input bytes, want %d: the first and the new conn's window", got, first+window)
	}
}

// TestReceivedReleasesIdleTail: once the client has received all the output and nothing waits
// to be sent, the server drops the tail's array: an idle resumable session keeps no buffer of
// its last burst's size.
func TestReceivedReleasesIdleTail(t *testing.T) {
	term := newFakeTerminal(t, "sleep", "3600")
	p, _, srv := serveResumable(t, term)
	tailCap := func() (n, c int) {
		ss := srv.session()
		ss.mu.Lock()
		defer ss.mu.Unlock()
		return len(ss.res.tail) - ss.res.toff, cap(ss.res.tail)
	}
	burst := produce(term, "line ", 0, 4000) // 44 000 bytes, within the window
	readData(t, p, len(burst))
	if n, c := tailCap(); n != len(burst) || c < len(burst) {
		t.Fatalf("tail %d bytes (array of %d) before RECEIVED, want all %d sent", n, c, len(burst))
	}
	p.send(message{typ: frameReceived, received: uint64(len(burst))})
	waitUntil(t, "the tail's array dropped", func() bool { n, c := tailCap(); return n == 0 && c == 0 })
	// The next output is kept again, in a small array.
	echo := produce(term, "x", 0, 1)
	readData(t, p, len(echo))
	if n, c := tailCap(); n != len(echo) || c > idleBuffer {
		t.Fatalf("tail %d bytes (array of %d) after an echo, want %d in at most %d", n, c, len(echo), idleBuffer)
	}
}

// TestReceivedWhileIdle: output of less than a credit batch is acknowledged by the RECEIVED that
// rides with the keepalive's PING or PONG once the session idles, so the server drops it from its
// tail instead of keeping it for as long as the session idles.
func TestReceivedWhileIdle(t *testing.T) {
	term := newFakeTerminal(t, "sleep", "3600")
	rig := newResumeRig(t, term, Detach{Timeout: time.Minute}, func(s *ServerConn) { s.Keepalive = fastKeepalive })
	rc := startResumeClient(t, rig, nil, func(rc *resumeClient) { rc.Keepalive = fastKeepalive })
	out := produce(term, "prompt ", 0, 3) // well under a credit batch
	rc.stdout.waitFor(t, "the output", func() bool { return bytes.Contains(rc.stdout.buf.Bytes(), out) })
	tail := func() int {
		ss := rig.srv.session()
		ss.mu.Lock()
		defer ss.mu.Unlock()
		return len(ss.res.tail) - ss.res.toff
	}
	waitUntil(t, "the server's tail emptied by a RECEIVED while idle", func() bool { return tail() == 0 })
}
