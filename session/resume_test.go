package session

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"
)

// resumeRig runs one resumable session on a loopback listener: the first conn starts it, every
// later one that asks to resume is attached to it. The client's conns are kept, to be cut.
type resumeRig struct {
	t      *testing.T
	l      net.Listener
	term   *fakeTerminal
	srv    *ServerConn
	served chan served
	done   chan struct{} // the accept loop ended
	cancel context.CancelFunc

	mu       sync.Mutex
	conns    []net.Conn // the server's ends, newest last
	attaches []error    // what each Attach returned
	detached chan error // Detach.Detached's causes
}

func newResumeRig(t *testing.T, term *fakeTerminal, detach Detach) *resumeRig {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	r := &resumeRig{t: t, l: l, term: term, served: make(chan served, 1), done: make(chan struct{}), cancel: cancel,
		detached: make(chan error, 100)}
	detach.Detached = func(cause error) { r.detached <- cause }
	go r.accept(ctx, detach)
	t.Cleanup(func() {
		_ = l.Close()
		<-r.done
		cancel()
		waitServed(t, r.served)
	})
	return r
}

func (r *resumeRig) accept(ctx context.Context, detach Detach) {
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
		r.mu.Unlock()
		s := NewServerConn(conn)
		req, err := s.ReadRequest()
		switch {
		case err != nil:
			_ = s.Close()
		case first:
			first = false
			r.srv = s
			s.Detach = detach
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
	c, err := net.Dial("tcp", r.l.Addr().String())
	if err != nil {
		return nil, err
	}
	return watchdog(r.t, c), nil
}

// cutServer closes the server's end of the newest conn (the path breaks; both ends notice).
func (r *resumeRig) cutServer() {
	r.mu.Lock()
	c := r.conns[len(r.conns)-1]
	r.mu.Unlock()
	_ = c.Close()
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
func TestResumeCuts(t *testing.T) {
	term := newFakeTerminal(t, "sleep", "3600")
	rig := newResumeRig(t, term, Detach{Timeout: time.Minute})
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
		if err := <-inDone; err != nil {
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
	rig.mu.Lock()
	for i, err := range rig.attaches {
		if err != nil {
			t.Errorf("Attach %d: %v", i, err)
		}
	}
	rig.mu.Unlock()
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
