package session

import (
	"context"
	"net"
	"runtime"
	"slices"
	"testing"
	"time"
)

// TestDetachedSessionMemory measures the heap a detached idle session holds on the server (its
// Terminal here is a small fake, not counted: a pty's buffers are the kernel's), and bounds it.
func TestDetachedSessionMemory(t *testing.T) {
	overTCPAndTLS(t, testDetachedSessionMemory)
}

func testDetachedSessionMemory(t *testing.T, secure bool) {
	const sessions = 20
	heap := func() uint64 {
		runtime.GC()
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	terms := make([]*fakeTerminal, sessions)
	for i := range terms {
		terms[i] = newFakeTerminal(t, "sleep", "3600")
	}
	rigs := make([]*resumeRig, sessions)
	for i := range rigs {
		rigs[i] = newResumeRigOver(t, secure, nowTerminal{terms[i]}, Detach{Timeout: time.Hour})
	}
	before := heap() // the listeners and fake terminals are not the sessions'
	var conns []net.Conn
	for i := range rigs {
		conn, err := rigs[i].dial()
		if err != nil {
			t.Fatal(err)
		}
		p := newRawPeer(t, conn)
		req := bob
		req.Capabilities = []string{capFlow2, capKeepalive, capResume}
		p.login(req)
		p.readByte()
		if m := p.read(); m.typ != frameAccept {
			t.Fatalf("answer %v", m.typ)
		}
		if m := p.read(); m.typ != frameResumable {
			t.Fatalf("answer %v, want RESUMABLE", m.typ)
		}
		prompt := produce(terms[i], "$ ", 0, 1)
		for got := 0; got < len(prompt); {
			got += len(p.read().data)
		}
		conns = append(conns, conn)
	}
	attached := (int64(heap()) - int64(before)) / sessions
	for i, conn := range conns {
		_ = conn.Close()
		rigs[i].waitDetached(t)
	}
	conns = nil
	per := (int64(heap()) - int64(before)) / sessions
	t.Logf("heap per idle session: %d bytes attached (both ends of the conn), %d bytes detached (%d sessions; the goroutines' stacks apart)", attached, per, sessions)
	if per > 32<<10 {
		t.Errorf("a detached idle session holds %d bytes of heap", per)
	}
	runtime.KeepAlive(rigs)
}

// TestResumeLatency measures the time from a new conn (secured, for TLS) to the first byte of
// output that waited for the resume, on loopback.
func TestResumeLatency(t *testing.T) {
	overTCPAndTLS(t, testResumeLatency)
}

func testResumeLatency(t *testing.T, secure bool) {
	term := newFakeTerminal(t, "sleep", "3600")
	rig := newResumeRigOver(t, secure, term, Detach{Timeout: time.Minute})
	gate := make(chan struct{})
	dialed := make(chan time.Time, 1)
	rc := startResumeClient(t, rig, nil, func(rc *resumeClient) {
		dial := rc.Reconnect
		rc.Reconnect = func(ctx context.Context, attempt int, cause error) (net.Conn, error) {
			select {
			case <-gate:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			c, err := dial(ctx, attempt, cause)
			select {
			case dialed <- time.Now():
			case <-ctx.Done():
			}
			return c, err
		}
	})
	var times []time.Duration
	have := 0
	for i := range 20 {
		rig.cutServer()
		rig.waitDetached(t)
		have += len(produce(term, "x", i, i+1))
		term.waitFor(t, "the terminal read", func() bool { return len(term.out) == 0 })
		select {
		case gate <- struct{}{}:
		case <-time.After(testTimeout):
			t.Fatal("Reconnect was not called")
		}
		start := receive(t, dialed, "the new conn")
		rc.stdout.waitFor(t, "the output", func() bool { return rc.stdout.buf.Len() >= have })
		times = append(times, time.Since(start))
	}
	slices.Sort(times)
	t.Logf("new conn to the first resumed byte on loopback: median %v, max %v (%d resumes)", times[len(times)/2], times[len(times)-1], len(times))
}

// nowTerminal is a fakeTerminal that reads without waiting too, as a pty does: the session
// keeps a small read buffer then.
type nowTerminal struct{ *fakeTerminal }

func (n nowTerminal) ReadOutputNow(b []byte) (int, bool, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	k := copy(b, n.out)
	n.out = n.out[k:]
	return k, false, nil
}
