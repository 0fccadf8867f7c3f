package session

import (
	"bytes"
	"errors"
	"net"
	"testing"
	"time"
)

// TestResumeExitBlackholed: a shell that prints and exits while the path is silently dead
// writes its last output and EXIT into the kernel's buffers, where they are lost with the conn.
// The session must not end then: EXIT counts as delivered only once the client closes after it,
// so the session detaches, and after the path is back the client gets every byte and the exit
// status. Whether the server notices the dead path by its keepalive or by the client not
// closing after EXIT.
func TestResumeExitBlackholed(t *testing.T) {
	for _, tc := range []struct {
		name   string
		server Keepalive
	}{
		{"server keepalive", probing},
		{"no server keepalive", Keepalive{Interval: -1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			term := newFakeTerminal(t, "sleep", "3600")
			rig := newResumeRig(t, term, Detach{Timeout: time.Minute}, func(s *ServerConn) { s.Keepalive = tc.server })
			link := rig.throughLink(t)

			gate := make(chan struct{})
			rc := startResumeClient(t, rig, gate, func(rc *resumeClient) { rc.Keepalive = probing })
			want := produce(term, "a", 0, 100)
			rc.stdout.waitFor(t, "the output before the blackhole", func() bool { return rc.stdout.buf.Len() == len(want) })
			link.Blackhole()
			want = append(want, produce(term, "b", 0, 100)...)
			_ = term.cmd.Process.Kill()
			term.waitFor(t, "the shell's end", func() bool { return term.reaped && len(term.out) == 0 })
			rc.waitKeepaliveVerdict(t)
			rig.waitDetached(t) // after the EXIT was written
			select {
			case srv := <-rig.served:
				t.Fatalf("the session ended while the path was dead: %v", srv.err)
			default:
			}
			link.Restore()
			close(gate)
			var exit *ExitError
			if err := rc.wait(t); !errors.As(err, &exit) || exit.Signal != "KILL" {
				t.Errorf("Wait: %v, want killed", err)
			}
			if got := rc.stdout.Bytes(); !bytes.Equal(got, want) {
				t.Errorf("output differs at byte %d of %d", firstDiff(got, want), len(want))
			}
			if srv := waitServed(t, rig.served); srv.err != nil {
				t.Errorf("Serve: %v", srv.err)
			}
		})
	}
}

// heldWriteConn holds every Write until release is closed.
type heldWriteConn struct {
	net.Conn
	release <-chan struct{}
}

func (c *heldWriteConn) Write(p []byte) (int, error) {
	<-c.release
	return c.Conn.Write(p)
}

// holdAnswers makes the server hold every Write to the conns it accepts from now on until the
// returned channel is closed: the answer to a resume waits, and its client in the login.
func (r *resumeRig) holdAnswers() chan struct{} {
	release := make(chan struct{})
	r.mu.Lock()
	r.wrap = func(c net.Conn) net.Conn { return &heldWriteConn{Conn: c, release: release} }
	r.mu.Unlock()
	return release
}

// waitAnswering waits until an Attach answers a resume (which holdAnswers may hold).
func (r *resumeRig) waitAnswering(t *testing.T) {
	t.Helper()
	waitUntil(t, "the resume answered", func() bool {
		ss := r.srv.session()
		ss.mu.Lock()
		defer ss.mu.Unlock()
		return ss.res.attaching
	})
}

// TestResumeExpiryDuringAnswer: a detach timeout that passes while a resume is being answered
// does not end the session under it (the client would get ACCEPT, RESUMED and RESUMABLE, then
// lose the conn): the attach came first and wins, and the session goes on over its conn.
func TestResumeExpiryDuringAnswer(t *testing.T) {
	term := newFakeTerminal(t, "sleep", "3600")
	rig := newResumeRig(t, term, Detach{Timeout: time.Second})
	rc := startResumeClient(t, rig, make(chan struct{})) // its own resume never comes
	id, _, _ := rc.Resumable()
	rc.mu.Lock()
	secret := rc.res.secret
	rc.mu.Unlock()
	release := rig.holdAnswers()
	rig.cutServer()
	rig.waitDetached(t)

	conn, err := rig.dial()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	p := newRawPeer(t, conn)
	req := bob
	req.Capabilities = []string{capResume, capAttach}
	p.login(req)
	p.send(message{typ: frameResume, resume: &ResumeRequest{ID: id, Secret: secret[:]}})
	s := rig.srv.session()
	waitUntil(t, "the detach timeout during the answer", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.res.expiredMeanwhile
	})
	close(release)
	if v := p.readByte(); v != version {
		t.Fatalf("version %d", v)
	}
	for _, typ := range []frameType{frameAccept, frameResumed, frameResumable} {
		if m := p.read(); m.typ != typ {
			t.Fatalf("answer %v, want %v", m.typ, typ)
		}
	}
	want := produce(term, "after", 0, 3)
	var got []byte
	for len(got) < len(want) {
		m := p.read()
		if m.typ != frameData {
			t.Fatalf("frame %v after the resume, want DATA", m.typ)
		}
		got = append(got, m.data...)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("output %q, want %q", got, want)
	}
	select {
	case srv := <-rig.served:
		t.Fatalf("the session ended: %v", srv.err)
	default:
	}
	if attaches := rig.waitAttaches(t, 1); len(attaches) != 1 || attaches[0] != nil {
		t.Errorf("Attach: %v, want success", attaches)
	}
}
