package session

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rlogin-go/rlogin/internal/linkemu"
	"github.com/rlogin-go/rlogin/transport"
)

// resumeRig runs one resumable session on a loopback listener: the first conn starts it, every
// later one that asks to resume is attached to it. The client's conns are kept, to be cut.
type resumeRig struct {
	t      *testing.T
	l      net.Listener
	term   Terminal
	srv    *ServerConn
	served chan served
	done   chan struct{} // the accept loop ended
	cancel context.CancelFunc

	addr string // where clients dial: the listener, or a link's proxy in front of it

	keys [2]ed25519.PrivateKey // the server's and the client's, if secure

	mu       sync.Mutex
	secure   bool                    // each conn is secured as rlogin and rlogind do (TLS); cutServer cuts the TCP conn under it
	conns    []net.Conn              // the server's ends, newest last
	attaches []error                 // what each Attach returned
	wrap     func(net.Conn) net.Conn // if set, wraps each conn accepted from then on
	detached chan error              // Detach.Detached's causes
}

func newResumeRig(t *testing.T, term Terminal, detach Detach, setup ...func(*ServerConn)) *resumeRig {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	r := &resumeRig{t: t, l: l, term: term, served: make(chan served, 1), done: make(chan struct{}), cancel: cancel,
		detached: make(chan error, 100), addr: l.Addr().String()}
	for i := range r.keys {
		_, r.keys[i], _ = ed25519.GenerateKey(rand.Reader)
	}
	detach.Detached = func(cause error) { r.detached <- cause }
	go r.accept(ctx, detach, setup)
	t.Cleanup(func() {
		_ = l.Close()
		<-r.done
		cancel()
		waitServed(t, r.served)
	})
	return r
}

// newResumeRigOver is newResumeRig with each conn secured (TLS) if secure, for the tests run
// over both (overTCPAndTLS).
func newResumeRigOver(t *testing.T, secure bool, term Terminal, detach Detach) *resumeRig {
	t.Helper()
	r := newResumeRig(t, term, detach)
	r.mu.Lock() // the accept loop runs already; no conn is dialed yet
	r.secure = secure
	r.mu.Unlock()
	return r
}

// overTCPAndTLS runs test twice, as the subtests TCP and TLS: with the rig's conns plain, then
// secured as rlogin and rlogind secure them.
func overTCPAndTLS(t *testing.T, test func(t *testing.T, secure bool)) {
	t.Run("TCP", func(t *testing.T) { test(t, false) })
	t.Run("TLS", func(t *testing.T) { test(t, true) })
}

func (r *resumeRig) accept(ctx context.Context, detach Detach, setup []func(*ServerConn)) {
	defer close(r.done)
	first := true
	for {
		conn, err := r.l.Accept()
		if err != nil {
			if first {
				r.served <- served{nil, err}
			}
			return
		}
		conn = watchdog(r.t, conn)
		r.mu.Lock()
		r.conns = append(r.conns, conn)
		secure := r.secure
		if r.wrap != nil {
			conn = r.wrap(conn)
		}
		r.mu.Unlock()
		if secure {
			sc, err := transport.Server(ctx, conn, &transport.SecureConfig{Key: r.keys[0]})
			if err != nil {
				continue
			}
			conn = sc
		}
		s := NewServerConn(conn)
		req, err := s.ReadRequest()
		switch {
		case err != nil:
			_ = s.Close()
		case first:
			first = false
			r.srv = s
			s.Detach = detach
			for _, f := range setup {
				f(s)
			}
			go func() {
				st, err := s.Serve(ctx, r.term)
				r.served <- served{st, err}
			}()
		case req.Resume != nil:
			err := r.srv.Attach(s, req.Resume.Secret == nil, "resumed from "+conn.RemoteAddr().String())
			r.mu.Lock()
			r.attaches = append(r.attaches, err)
			r.mu.Unlock()
		default:
			_ = s.Refuse("one session only")
		}
	}
}

func (r *resumeRig) dial() (net.Conn, error) {
	c, err := net.Dial("tcp", r.addr)
	if err != nil {
		return nil, err
	}
	c = watchdog(r.t, c)
	r.mu.Lock()
	secure := r.secure
	r.mu.Unlock()
	if !secure {
		return c, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	return transport.Client(ctx, c, &transport.SecureConfig{Key: r.keys[1]})
}

// waitAttaches waits until n Attach calls returned, and returns what each returned: Attach
// answers the client before it returns, so a client that has the answer may still be ahead of
// the record.
func (r *resumeRig) waitAttaches(t *testing.T, n int) []error {
	t.Helper()
	var attaches []error
	waitUntil(t, fmt.Sprintf("%d Attach calls", n), func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		attaches = slices.Clone(r.attaches)
		return len(attaches) >= n
	})
	return attaches
}

// cutServer closes the server's end of the newest conn (the path breaks; both ends notice).
func (r *resumeRig) cutServer() {
	r.mu.Lock()
	c := r.conns[len(r.conns)-1]
	r.mu.Unlock()
	_ = c.Close()
}

// receive receives from ch, or fails the test after testTimeout.
func receive[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(testTimeout):
		t.Fatalf("timed out waiting for %s", what)
	}
	panic("unreachable")
}

// produce appends lines to the terminal's output, as a shell printing them.
func produce(term *fakeTerminal, prefix string, from, to int) []byte {
	var all []byte
	for i := from; i < to; i++ {
		line := fmt.Appendf(nil, "%s%05d\n", prefix, i)
		all = append(all, line...)
		term.locked(func() {
			term.out = append(term.out, line...)
			term.cond.Broadcast()
		})
	}
	return all
}

// TestResumeCuts: numbered lines both ways survive cuts of the connection, every byte exactly
// once and in order, with input in flight; the secret changes per connection.
func TestResumeCuts(t *testing.T) { overTCPAndTLS(t, testResumeCuts) }

func testResumeCuts(t *testing.T, secure bool) {
	term := newFakeTerminal(t, "sleep", "3600")
	rig := newResumeRigOver(t, secure, term, Detach{Timeout: time.Minute})
	conn, err := rig.dial()
	if err != nil {
		t.Fatal(err)
	}
	stdout := newSyncBuffer()
	c := NewClient(conn, Request{User: "bob", Term: "xterm", Window: WindowSize{Rows: 24, Cols: 80}})
	c.Stdout = stdout
	var resumes []uint64
	var rmu sync.Mutex
	c.Resumed = func(skipped uint64) {
		rmu.Lock()
		resumes = append(resumes, skipped)
		rmu.Unlock()
	}
	c.Reconnect = func(ctx context.Context, attempt int, cause error) (net.Conn, error) { return rig.dial() }
	stdin, err := c.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	waited := make(chan error, 1)
	go func() { waited <- c.Wait() }()
	_, _, ok := c.Resumable()
	if !ok {
		t.Fatal("the session is not resumable")
	}

	var wantOut []byte
	var wantIn bytes.Buffer
	var secrets [][ResumeSecretSize]byte
	const rounds, perRound = 6, 300
	for round := range rounds {
		waitUntil(t, "the resume", func() bool {
			rmu.Lock()
			defer rmu.Unlock()
			return len(resumes) == round
		})
		c.mu.Lock()
		secrets = append(secrets, c.res.secret)
		c.mu.Unlock()
		// Input in flight: written while output flows, before and across the cut.
		inDone := make(chan error, 1)
		go func() {
			var err error
			for i := range perRound {
				if _, err = fmt.Fprintf(stdin, "i%d-%05d\n", round, i); err != nil {
					break
				}
			}
			inDone <- err
		}()
		for i := range perRound {
			fmt.Fprintf(&wantIn, "i%d-%05d\n", round, i)
		}
		wantOut = append(wantOut, produce(term, fmt.Sprintf("o%d-", round), 0, perRound)...)
		stdout.waitFor(t, "a third of the round's output", func() bool { return len(stdout.buf.Bytes()) > len(wantOut)-2*perRound*9/3 })
		rig.cutServer()
		if err := receive(t, inDone, "the end of the input"); err != nil {
			t.Fatal(err)
		}
		stdout.waitFor(t, "the round's output", func() bool { return stdout.buf.Len() >= len(wantOut) })
		term.waitFor(t, "the round's input", func() bool { return len(term.input) >= wantIn.Len() })
	}
	if got := stdout.Bytes(); !bytes.Equal(got, wantOut) {
		t.Fatalf("output differs at byte %d of %d (have %d)", firstDiff(got, wantOut), len(wantOut), len(got))
	}
	var gotIn []byte
	term.locked(func() { gotIn = bytes.Clone(term.input) })
	if !bytes.Equal(gotIn, wantIn.Bytes()) {
		t.Fatalf("input differs at byte %d of %d (have %d)", firstDiff(gotIn, wantIn.Bytes()), wantIn.Len(), len(gotIn))
	}
	waitUntil(t, "the last resume", func() bool {
		rmu.Lock()
		defer rmu.Unlock()
		return len(resumes) == rounds
	})
	rmu.Lock()
	if len(resumes) != rounds {
		t.Errorf("%d resumes, want %d", len(resumes), rounds)
	}
	for _, s := range resumes {
		if s != 0 {
			t.Errorf("%d bytes skipped", s)
		}
	}
	rmu.Unlock()
	for i := range secrets {
		for j := range i {
			if secrets[i] == secrets[j] {
				t.Errorf("connections %d and %d had the same secret", i, j)
			}
		}
	}
	for i, err := range rig.waitAttaches(t, rounds) {
		if err != nil {
			t.Errorf("Attach %d: %v", i, err)
		}
	}
	// The window size was sent again after each resume.
	term.waitFor(t, "the window sizes", func() bool { return len(term.resizes) == rounds && term.resizes[0] == WindowSize{Rows: 24, Cols: 80} })

	_ = stdin.Close()
	term.waitFor(t, "the end of input", func() bool { return term.eofs == 1 })
	term.Hangup()
	select {
	case err := <-waited:
		var exit *ExitError
		if !errors.As(err, &exit) {
			t.Errorf("Wait: %v", err)
		}
	case <-time.After(testTimeout):
		t.Fatal("Wait did not return")
	}
}

// resumeClient is a Client of rig's session whose Reconnect reports its cause on causes (the
// first few calls'), then waits for gate (if not nil) before it dials; it counts its resumes.
type resumeClient struct {
	*Client
	stdout  *syncBuffer
	stdin   io.WriteCloser
	waited  chan error
	causes  chan error
	mu      sync.Mutex
	resumed []uint64
	dials   int
}

// probing is the keepalive of the tests of a path that goes silent: its verdict comes in
// about a third of a second.
var probing = Keepalive{Interval: 100 * time.Millisecond, CountMax: 3}

// waitKeepaliveVerdict waits for the first call of Reconnect, and checks that the keepalive's
// verdict caused it: the client noticed a silent path by its probes.
func (rc *resumeClient) waitKeepaliveVerdict(t *testing.T) {
	t.Helper()
	var noAnswer *NoAnswerError
	if cause := receive(t, rc.causes, "the client's notice of the dead path"); !errors.As(cause, &noAnswer) {
		t.Errorf("Reconnect's cause %v, want the keepalive's verdict", cause)
	}
}

func startResumeClient(t *testing.T, rig *resumeRig, gate chan struct{}, setup ...func(*resumeClient)) *resumeClient {
	t.Helper()
	conn, err := rig.dial()
	if err != nil {
		t.Fatal(err)
	}
	rc := &resumeClient{Client: NewClient(conn, Request{User: "bob", Term: "xterm", Window: WindowSize{Rows: 24, Cols: 80}}),
		stdout: newSyncBuffer(), waited: make(chan error, 1), causes: make(chan error, 10)}
	rc.Stdout = rc.stdout
	rc.Resumed = func(skipped uint64) {
		rc.mu.Lock()
		rc.resumed = append(rc.resumed, skipped)
		rc.mu.Unlock()
	}
	rc.Reconnect = func(ctx context.Context, attempt int, cause error) (net.Conn, error) {
		select {
		case rc.causes <- cause:
		default: // a later try: the tests look at the first
		}
		if gate != nil {
			select {
			case <-gate:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		rc.mu.Lock()
		rc.dials++
		rc.mu.Unlock()
		return rig.dial()
	}
	if rc.stdin, err = rc.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	for _, f := range setup {
		f(rc)
	}
	if err := rc.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	go func() { rc.waited <- rc.Wait() }()
	t.Cleanup(func() {
		_ = rc.Close()
		<-rc.waited
		rc.waited <- nil
	})
	return rc
}

func (rc *resumeClient) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-rc.waited:
		rc.waited <- err
		return err
	case <-time.After(testTimeout):
		t.Fatal("Wait did not return")
	}
	panic("unreachable")
}

// ending reports whether the session ended, and what Wait returns then.
func (rc *resumeClient) ending() (ended bool, result error) {
	rc.Client.mu.Lock()
	defer rc.Client.mu.Unlock()
	return rc.ended, rc.result
}

func (rc *resumeClient) resumes() []uint64 {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return slices.Clone(rc.resumed)
}

func (r *resumeRig) waitDetached(t *testing.T) error {
	t.Helper()
	select {
	case err := <-r.detached:
		return err
	case <-time.After(testTimeout):
		t.Fatal("the session did not detach")
	}
	panic("unreachable")
}

// TestResumeSkipped: output beyond the detach buffer is dropped, the oldest first, and the
// client is told exactly how much it missed.
func TestResumeSkipped(t *testing.T) {
	term := newFakeTerminal(t, "sleep", "3600")
	rig := newResumeRig(t, term, Detach{Timeout: time.Minute, Buffer: 1000})
	gate := make(chan struct{})
	rc := startResumeClient(t, rig, gate)
	before := produce(term, "a", 0, 300)
	rc.stdout.waitFor(t, "the output before the cut", func() bool { return rc.stdout.buf.Len() == len(before) })
	rig.cutServer()
	rig.waitDetached(t)
	during := produce(term, "b", 0, 600)
	term.waitFor(t, "the terminal read while detached", func() bool { return len(term.out) == 0 })
	close(gate)
	want := append(slices.Clone(before), during[len(during)-1000:]...)
	rc.stdout.waitFor(t, "the output after the resume", func() bool { return rc.stdout.buf.Len() >= len(want) })
	if got := rc.stdout.Bytes(); !bytes.Equal(got, want) {
		t.Errorf("output differs at byte %d of %d", firstDiff(got, want), len(want))
	}
	if got := rc.resumes(); !slices.Equal(got, []uint64{uint64(len(during) - 1000)}) {
		t.Errorf("skipped %v, want [%d]", got, len(during)-1000)
	}
}

// TestResumeRefused: a wrong secret, another id and an ended session get the same refusal.
func TestResumeRefused(t *testing.T) {
	term := newFakeTerminal(t, "sleep", "3600")
	rig := newResumeRig(t, term, Detach{Timeout: time.Minute})
	rc := startResumeClient(t, rig, nil)
	id, _, _ := rc.Resumable()
	try := func(r *ResumeRequest) string {
		t.Helper()
		conn, err := rig.dial()
		if err != nil {
			t.Fatal(err)
		}
		p := newRawPeer(t, conn)
		req := bob
		req.Capabilities = []string{capResume, capAttach}
		p.login(req)
		p.send(message{typ: frameResume, resume: r})
		if v := p.readByte(); v != version {
			t.Fatalf("version %d", v)
		}
		m := p.read()
		if m.typ != frameRefuse {
			t.Fatalf("answer %v, want REFUSE", m.typ)
		}
		return m.text
	}
	for _, r := range []*ResumeRequest{
		{ID: id, Secret: make([]byte, ResumeSecretSize)},
		{ID: SessionID{1}, Secret: make([]byte, ResumeSecretSize)},
		{ID: SessionID{1}},
	} {
		if got := try(r); got != reasonNoSession {
			t.Errorf("refusal %q, want %q", got, reasonNoSession)
		}
	}
	rc.mu.Lock()
	secret := rc.res.secret
	rc.mu.Unlock()
	term.Hangup() // the session ends
	waitServed(t, rig.served)
	if got := try(&ResumeRequest{ID: id, Secret: secret[:]}); got != reasonNoSession {
		t.Errorf("refusal of an ended session %q, want %q", got, reasonNoSession)
	}
	for _, err := range rig.waitAttaches(t, 4) {
		if !errors.Is(err, ErrNoSession) {
			t.Errorf("Attach: %v, want ErrNoSession", err)
		}
	}
}

// TestResumeTimeout: a detached session ends after the timeout, with its shell; the client's
// resume is refused then, and Wait says so.
func TestResumeTimeout(t *testing.T) {
	term := newFakeTerminal(t, "sleep", "3600")
	rig := newResumeRig(t, term, Detach{Timeout: 200 * time.Millisecond})
	gate := make(chan struct{})
	rc := startResumeClient(t, rig, gate)
	rig.cutServer()
	rig.waitDetached(t)
	srv := waitServed(t, rig.served)
	if srv.err == nil || !strings.Contains(srv.err.Error(), "expired") {
		t.Errorf("Serve: %v, want expired", srv.err)
	}
	checkHungUp(t, term, srv)
	close(gate)
	var refused *RefusedError
	if err := rc.wait(t); !errors.As(err, &refused) || refused.Reason != reasonNoSession {
		t.Errorf("Wait: %v, want the refusal", err)
	}
}

// TestResumeStopping: cancelling Serve's context ends a detached session, with its shell.
func TestResumeStopping(t *testing.T) {
	term := newFakeTerminal(t, "sleep", "3600")
	rig := newResumeRig(t, term, Detach{Timeout: time.Hour})
	startResumeClient(t, rig, make(chan struct{}))
	rig.cutServer()
	rig.waitDetached(t)
	rig.cancel()
	srv := waitServed(t, rig.served)
	if srv.err == nil || !strings.Contains(srv.err.Error(), "service stopping") {
		t.Errorf("Serve: %v, want service stopping", srv.err)
	}
	checkHungUp(t, term, srv)
}

// TestResumeExitWhileDetached: output and the exit status of a shell that ended while detached
// reach the client after the resume.
func TestResumeExitWhileDetached(t *testing.T) {
	term := newFakeTerminal(t, "sleep", "3600")
	rig := newResumeRig(t, term, Detach{Timeout: time.Minute})
	gate := make(chan struct{})
	rc := startResumeClient(t, rig, gate)
	rig.cutServer()
	rig.waitDetached(t)
	want := produce(term, "last", 0, 10)
	_ = term.cmd.Process.Kill()
	term.waitFor(t, "the shell's end", func() bool { return term.reaped && len(term.out) == 0 })
	close(gate)
	var exit *ExitError
	if err := rc.wait(t); !errors.As(err, &exit) || exit.Signal != "KILL" {
		t.Errorf("Wait: %v, want killed", err)
	}
	if got := rc.stdout.Bytes(); !bytes.Equal(got, want) {
		t.Errorf("output %q, want %q", got, want)
	}
	if srv := waitServed(t, rig.served); srv.err != nil {
		t.Errorf("Serve: %v", srv.err)
	}
}

// TestReattach: a new client takes a session over with its id alone (the caller authorized
// it): the old client gets CLOSE with the reason, the new one the output kept.
func TestReattach(t *testing.T) {
	term := newFakeTerminal(t, "sleep", "3600")
	rig := newResumeRig(t, term, Detach{Timeout: time.Minute})
	old := startResumeClient(t, rig, make(chan struct{}))
	id, _, _ := old.Resumable()
	first := produce(term, "a", 0, 10)
	old.stdout.waitFor(t, "the first output", func() bool { return old.stdout.buf.Len() == len(first) })

	conn, err := rig.dial()
	if err != nil {
		t.Fatal(err)
	}
	stdout := newSyncBuffer()
	c := NewClient(conn, Request{User: "bob", Term: "xterm", Resume: &ResumeRequest{ID: id}})
	c.Stdout = stdout
	if err := c.Start(context.Background()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	waited := make(chan error, 1)
	go func() { waited <- c.Wait() }()
	var closed *ClosedError
	if err := old.wait(t); !errors.As(err, &closed) || !strings.HasPrefix(closed.Reason, "resumed from 127.0.0.1:") {
		t.Errorf("the old client's Wait: %v, want CLOSE", err)
	}
	if _, _, ok := c.Resumable(); !ok {
		t.Error("the reattached session is not resumable")
	}
	// The output the old client did not credit is sent again, then the new.
	second := produce(term, "b", 0, 10)
	want := append(slices.Clone(first), second...)
	stdout.waitFor(t, "the output", func() bool { return stdout.buf.Len() >= len(want) })
	if got := stdout.Bytes(); !bytes.Equal(got, want) {
		t.Errorf("output %q, want %q", got, want)
	}
	term.Hangup()
	var exit *ExitError
	select {
	case err := <-waited:
		if !errors.As(err, &exit) {
			t.Errorf("Wait: %v", err)
		}
	case <-time.After(testTimeout):
		t.Fatal("Wait did not return")
	}
}

// TestResumeOldPeers: without the capability on either side, a lost connection ends the
// session as before; a server that does not know attach makes a reattach fail.
func TestResumeOldPeers(t *testing.T) {
	t.Run("server without resume", func(t *testing.T) {
		term := newFakeTerminal(t, "sleep", "3600")
		rig := newResumeRig(t, term, Detach{})
		rc := startResumeClient(t, rig, nil)
		if _, _, ok := rc.Resumable(); ok {
			t.Error("resumable without Detach.Timeout")
		}
		rig.cutServer()
		if err := rc.wait(t); err == nil || !strings.HasPrefix(err.Error(), "session: connection lost: ") {
			t.Errorf("Wait: %v, want a lost connection", err)
		}
		checkHungUp(t, term, waitServed(t, rig.served))
		rc.mu.Lock()
		defer rc.mu.Unlock()
		if rc.dials != 0 {
			t.Errorf("%d reconnections", rc.dials)
		}
	})
	t.Run("client without resume", func(t *testing.T) {
		c, s := tcpPair(t)
		term := newFakeTerminal(t, "sleep", "3600")
		ts := startSession(t, c, s, term, nil)
		ts.server.Detach.Timeout = time.Minute // too late for this session: it was not offered anyway
		if _, _, ok := ts.client.Resumable(); ok {
			t.Error("resumable without Reconnect")
		}
		_ = c.Close()
		srv, _ := ts.wait()
		checkHungUp(t, term, srv)
	})
	t.Run("server without attach", func(t *testing.T) {
		c, s := tcpPair(t)
		term := newFakeTerminal(t, "sleep", "3600")
		res := make(chan served, 1)
		go func() {
			srv := NewServerConn(s)
			srv.capabilities = []string{capFlow2, capKeepalive} // as an older server's
			if _, err := srv.ReadRequest(); err != nil {
				res <- served{nil, err}
				return
			}
			st, err := srv.Serve(context.Background(), term)
			res <- served{st, err}
		}()
		cl := NewClient(c, Request{User: "bob", Resume: &ResumeRequest{ID: SessionID{1}}})
		if err := cl.Start(context.Background()); !errors.Is(err, ErrResumeUnsupported) {
			t.Errorf("Start: %v, want ErrResumeUnsupported", err)
		}
		// The older server reads the RESUME as a session frame, and fails on it.
		if srv := waitServed(t, res); !errors.Is(srv.err, ErrProtocol) && !strings.Contains(fmt.Sprint(srv.err), "connection lost") {
			t.Errorf("Serve: %v", srv.err)
		}
	})
}

// throughLink puts an emulated link in front of the rig's listener, for the clients dialing from
// now on, and returns it.
func (r *resumeRig) throughLink(t *testing.T) *linkemu.Link {
	link := linkemu.New(linkemu.Profile{})
	proxy, err := link.Listen("127.0.0.1:0", r.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = proxy.Close() })
	r.addr = proxy.Addr().String()
	return link
}

// TestResumeBlackhole: a path that goes dead without a word is noticed by the keepalive, and
// the session survives it whole; when the server has not noticed yet, the resume (over another
// path: roaming) takes the session over from the dead conn.
func TestResumeBlackhole(t *testing.T) {
	for _, tc := range []struct {
		name     string
		server   Keepalive
		takeover bool
	}{
		{"both notice", probing, false},
		{"server does not notice", Keepalive{Interval: -1}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			term := newFakeTerminal(t, "sleep", "3600")
			rig := newResumeRig(t, term, Detach{Timeout: time.Minute}, func(s *ServerConn) { s.Keepalive = tc.server })
			direct := rig.addr
			link := rig.throughLink(t)

			gate := make(chan struct{})
			rc := startResumeClient(t, rig, gate, func(rc *resumeClient) { rc.Keepalive = probing })
			var wantIn bytes.Buffer
			inDone := make(chan error, 1)
			go func() {
				var err error
				for i := range 300 {
					if _, err = fmt.Fprintf(rc.stdin, "i%05d\n", i); err != nil {
						break
					}
				}
				inDone <- err
			}()
			for i := range 300 {
				fmt.Fprintf(&wantIn, "i%05d\n", i)
			}
			want := produce(term, "a", 0, 300)
			rc.stdout.waitFor(t, "some output", func() bool { return rc.stdout.buf.Len() > 900 })
			link.Blackhole()
			want = append(want, produce(term, "b", 0, 300)...)
			rc.waitKeepaliveVerdict(t)
			if !tc.takeover {
				var noAnswer *NoAnswerError
				if cause := rig.waitDetached(t); !errors.As(cause, &noAnswer) {
					t.Errorf("detached for %v, want the keepalive's verdict", cause)
				}
				link.Restore()
			} else {
				rig.addr = direct // another path for the resume; the first stays dead
			}
			close(gate)
			if err := receive(t, inDone, "the end of the input"); err != nil {
				t.Fatal(err)
			}
			rc.stdout.waitFor(t, "all output", func() bool { return rc.stdout.buf.Len() >= len(want) })
			term.waitFor(t, "all input", func() bool { return len(term.input) >= wantIn.Len() })
			if got := rc.stdout.Bytes(); !bytes.Equal(got, want) {
				t.Errorf("output differs at byte %d of %d", firstDiff(got, want), len(want))
			}
			term.locked(func() {
				if !bytes.Equal(term.input, wantIn.Bytes()) {
					t.Errorf("input differs at byte %d of %d", firstDiff(term.input, wantIn.Bytes()), wantIn.Len())
				}
			})
			if tc.takeover && len(rig.detached) != 0 {
				t.Errorf("the taken over session detached: %v", <-rig.detached)
			}
		})
	}
}

// TestResumeRealPTY: numbered lines from a shell on a real pty, and numbered lines typed to
// it, survive cuts of the connection, each exactly once and in order.
func TestResumeRealPTY(t *testing.T) {
	in := filepath.Join(t.TempDir(), "in")
	const lines = 800
	cmd := exec.Command("sh", "-c", `stty -echo
( i=0; while [ $i -lt `+strconv.Itoa(lines)+` ]; do echo o$i; i=$((i+1)); sleep 0.002; done ) &
while read l; do echo "$l" >> "$IN"; done
wait`)
	cmd.Env = append(os.Environ(), "IN="+in)
	p := startTestPTY(t, cmd)
	rig := newResumeRig(t, p, Detach{Timeout: time.Minute})
	rc := startResumeClient(t, rig, nil)
	var wantOut, wantIn bytes.Buffer
	for i := range lines {
		fmt.Fprintf(&wantOut, "o%d\r\n", i)
	}
	// Input only once echo is off, so that none is echoed.
	rc.stdout.waitFor(t, "the first line", func() bool { return rc.stdout.buf.Len() > 0 })
	inDone := make(chan error, 1)
	go func() {
		var err error
		for i := range 3 * lines {
			line := fmt.Sprintf("i%05d\n", i)
			wantIn.WriteString(line)
			if _, err = io.WriteString(rc.stdin, line); err != nil {
				break
			}
			if i%50 == 0 {
				time.Sleep(time.Millisecond) // input in flight across the cuts
			}
		}
		inDone <- err
	}()
	for cut := 1; cut <= 3; cut++ {
		rc.stdout.waitFor(t, "a part of the output", func() bool { return rc.stdout.buf.Len() >= cut*wantOut.Len()/4 })
		rig.cutServer()
	}
	if err := receive(t, inDone, "the end of the input"); err != nil {
		t.Fatal(err)
	}
	_ = rc.stdin.Close()
	var exit *ExitError
	if err := rc.wait(t); err != nil && !errors.As(err, &exit) {
		t.Fatalf("Wait: %v", err)
	}
	if got := rc.stdout.Bytes(); !bytes.Equal(got, wantOut.Bytes()) {
		i := firstDiff(got, wantOut.Bytes())
		t.Errorf("output differs at byte %d of %d (have %d): %q", i, wantOut.Len(), len(got), got[max(0, i-20):min(len(got), i+20)])
	}
	gotIn, err := os.ReadFile(in)
	if err != nil || !bytes.Equal(gotIn, wantIn.Bytes()) {
		t.Errorf("input differs at byte %d of %d (have %d, %v)", firstDiff(gotIn, wantIn.Bytes()), wantIn.Len(), len(gotIn), err)
	}
	if got := len(rc.resumes()); got != 3 {
		t.Errorf("%d resumes, want 3", got)
	}
}

// TestResumeAnswerLost: a client whose resume's answer was lost with its conn resumes with the
// secret it has (the one before); once a frame came over a resumed conn, that one is dead.
func TestResumeAnswerLost(t *testing.T) {
	term := newFakeTerminal(t, "sleep", "3600")
	rig := newResumeRig(t, term, Detach{Timeout: time.Minute})
	rc := startResumeClient(t, rig, make(chan struct{}))
	rc.mu.Lock()
	id, secret := rc.res.id, rc.res.secret
	rc.mu.Unlock()
	_ = rc.Close() // the client's conn is gone: the session detaches
	rig.waitDetached(t)
	resume := func(read bool, speak bool) message {
		t.Helper()
		conn, err := rig.dial()
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		p := newRawPeer(t, conn)
		req := bob
		req.Capabilities = []string{capKeepalive, capResume, capAttach}
		p.login(req)
		p.send(message{typ: frameResume, resume: &ResumeRequest{ID: id, Secret: secret[:]}})
		if !read {
			return message{} // lost with its conn: the answer never arrives
		}
		p.readByte()
		m := p.read()
		if m.typ == frameAccept {
			p.read() // RESUMED
			p.read() // RESUMABLE
			if speak {
				p.send(message{typ: framePing, cookie: 1})
				if pong := p.read(); pong.typ != framePong {
					t.Fatalf("answer to PING %v", pong.typ)
				}
			}
		}
		return m
	}
	resume(false, false)
	if rig.waitAttaches(t, 1)[0] == nil { // the answer was written before the conn went: it was lost with it
		rig.waitDetached(t)
	}
	if m := resume(true, true); m.typ != frameAccept {
		t.Fatalf("resume with the secret before the lost answer: %v %q", m.typ, m.text)
	}
	rig.waitDetached(t)
	if m := resume(true, false); m.typ != frameRefuse || m.text != reasonNoSession {
		t.Fatalf("resume with a secret a conn used: %v %q", m.typ, m.text)
	}
}

// TestResumeGivingUp: a Reconnect that gives up ends the session with the loss; Close while
// Reconnect waits ends it at once (its ctx is done).
func TestResumeGivingUp(t *testing.T) {
	t.Run("Reconnect fails", func(t *testing.T) {
		term := newFakeTerminal(t, "sleep", "3600")
		rig := newResumeRig(t, term, Detach{Timeout: time.Minute})
		rc := startResumeClient(t, rig, nil, func(rc *resumeClient) {
			rc.Reconnect = func(context.Context, int, error) (net.Conn, error) { return nil, errors.New("no route") }
		})
		rig.cutServer()
		if err := rc.wait(t); err == nil || !strings.HasPrefix(err.Error(), "session: connection lost: ") {
			t.Errorf("Wait: %v, want the loss", err)
		}
	})
	t.Run("Close", func(t *testing.T) {
		term := newFakeTerminal(t, "sleep", "3600")
		rig := newResumeRig(t, term, Detach{Timeout: time.Minute})
		waiting := make(chan struct{})
		rc := startResumeClient(t, rig, nil, func(rc *resumeClient) {
			rc.Reconnect = func(ctx context.Context, _ int, _ error) (net.Conn, error) {
				close(waiting)
				<-ctx.Done()
				return nil, ctx.Err()
			}
		})
		rig.cutServer()
		receive(t, waiting, "the call of Reconnect")
		_ = rc.Close()
		if err := rc.wait(t); !errors.Is(err, net.ErrClosed) {
			t.Errorf("Wait: %v, want net.ErrClosed", err)
		}
	})
}
