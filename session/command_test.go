package session

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"math/rand/v2"
	"os/exec"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rlogin-go/rlogin/internal/pipes"
	"github.com/rlogin-go/rlogin/internal/termtest"
)

// A *pipes.Command is a Terminal with error output and signals, as rlogind serves a command.
var (
	_ Terminal          = (*pipes.Command)(nil)
	_ ErrorOutputReader = (*pipes.Command)(nil)
	_ Signaler          = (*pipes.Command)(nil)
	_ OutputNowReader   = (*pipes.Command)(nil)
	_ FlushPredictor    = (*pipes.Command)(nil)
	_ TryWriter         = (*pipes.Command)(nil)
)

// startCommand starts line with sh -c on pipes and a session for it that asks for line
// without a terminal; setup may change the client before Start.
func startCommand(t *testing.T, line string, setup func(*Client)) (*Client, chan served) {
	t.Helper()
	p, err := pipes.Start(exec.Command("/bin/sh", "-c", line))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.End(0) })
	c, s := tcpPair(t)
	return startPTYSessionOver(t, c, s, p, func(cl *Client) {
		cl.Request = Request{User: "bob", Command: &Command{Line: line}}
		setup(cl)
	})
}

// TestCommandStreams: stdout and stderr arrive apart, and the exit status.
func TestCommandStreams(t *testing.T) {
	var stdout, stderr termtest.Buffer
	cl, res := startCommand(t, "echo out; echo err >&2; exit 5", func(c *Client) {
		c.Stdout, c.Stderr = &stdout, &stderr
	})
	err := cl.Wait()
	var exit *ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 5 {
		t.Errorf("Wait: %v, want exit status 5", err)
	}
	if stdout.String() != "out\n" || stderr.String() != "err\n" {
		t.Errorf("stdout %q, stderr %q; want \"out\\n\" and \"err\\n\"", stdout.String(), stderr.String())
	}
	if srv := waitServed(t, res); srv.err != nil {
		t.Errorf("Serve: %v", srv.err)
	}
}

// TestCommandBulk: 20 MB of every byte value through cat both ways, and as much error output,
// byte-exact, with no newline at the end.
func TestCommandBulk(t *testing.T) {
	data := make([]byte, 20<<20+7)
	r := rand.NewChaCha8([32]byte{1})
	_, _ = r.Read(data)
	var stdout, stderr termtest.Buffer
	cl, res := startCommand(t, "tee /dev/stderr", func(c *Client) {
		c.Stdin = bytes.NewReader(data)
		c.Stdout, c.Stderr = &stdout, &stderr
	})
	if err := cl.Wait(); err != nil {
		t.Fatalf("Wait: %v", err)
	}
	want := sha256.Sum256(data)
	if got := sha256.Sum256([]byte(stdout.String())); got != want {
		t.Errorf("stdout: %d bytes, SHA-256 differs", len(stdout.String()))
	}
	if got := sha256.Sum256([]byte(stderr.String())); got != want {
		t.Errorf("stderr: %d bytes, SHA-256 differs", len(stderr.String()))
	}
	if srv := waitServed(t, res); srv.err != nil {
		t.Errorf("Serve: %v", srv.err)
	}
}

// TestCommandEOF: the end of the client's input is the end of the command's.
func TestCommandEOF(t *testing.T) {
	var stdout termtest.Buffer
	cl, _ := startCommand(t, "wc -c", func(c *Client) {
		c.Stdin = strings.NewReader(strings.Repeat("x", 300000))
		c.Stdout = &stdout
	})
	if err := cl.Wait(); err != nil {
		t.Fatalf("Wait: %v", err)
	}
	if got := strings.TrimSpace(stdout.String()); got != "300000" {
		t.Errorf("wc -c says %q, want 300000", got)
	}
}

// TestCommandSignal: a SIGNAL reaches the command (the whole process group), which dies of it.
func TestCommandSignal(t *testing.T) {
	var stdout termtest.Buffer
	cl, _ := startCommand(t, "echo ready; sleep 60; echo not killed", func(c *Client) {
		c.Stdout = &stdout
	})
	waitOutput(t, &stdout, "ready\n")
	if err := cl.Signal("TERM"); err != nil {
		t.Fatal(err)
	}
	err := cl.Wait()
	var exit *ExitError
	if !errors.As(err, &exit) || exit.Signal != "TERM" {
		t.Errorf("Wait: %v, want killed by TERM", err)
	}
	if err := cl.Signal("STOP"); err == nil {
		t.Error("Signal(STOP) was sent")
	}
}

// TestCommandBackgroundJob: a job that keeps the output open does not hold the session once the
// command has exited (pipes.DrainTimeout).
func TestCommandBackgroundJob(t *testing.T) {
	cl, _ := startCommand(t, "sleep 30 & exit 3", func(*Client) {})
	err := cl.Wait()
	var exit *ExitError
	if !errors.As(err, &exit) || exit.Status != 3 {
		t.Errorf("Wait: %v, want exit status 3", err)
	}
}

// TestCommandOldServer: a server without capability exec accepts the login; Start says that it
// runs no commands, and sends no input.
func TestCommandOldServer(t *testing.T) {
	p, err := pipes.Start(exec.Command("/bin/sh", "-c", "cat >/dev/null"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.End(0) })
	c, s := tcpPair(t)
	srv := NewServerConn(s)
	srv.RunsCommands = true
	srv.capabilities = []string{capFlow2}
	res := make(chan error, 1)
	go func() {
		if _, err := srv.ReadRequest(); err != nil {
			_ = srv.Close()
			p.Hangup()
			_, _ = p.Wait()
			res <- err
			return
		}
		_, err := srv.Serve(context.Background(), p)
		res <- err
	}()
	cl := NewClient(c, Request{User: "bob", Command: &Command{Line: "cat"}})
	cl.Stdin = strings.NewReader("never sent")
	if err := cl.Start(context.Background()); !errors.Is(err, ErrCommandsUnsupported) {
		t.Errorf("Start: %v, want ErrCommandsUnsupported", err)
	}
	if err := <-res; !errors.Is(err, ErrProtocol) {
		t.Errorf("the old server's Serve: %v, want a protocol error (the COMMAND frame)", err)
	}
}

// TestCommandNotRun: a server whose caller runs no commands refuses a request with one, before
// anything starts.
func TestCommandNotRun(t *testing.T) {
	c, s := tcpPair(t)
	srv := NewServerConn(s)
	res := make(chan error, 1)
	go func() {
		_, err := srv.ReadRequest()
		res <- err
	}()
	cl := NewClient(c, Request{User: "bob", Command: &Command{Line: "cat"}})
	var refused *RefusedError
	if err := cl.Start(context.Background()); !errors.As(err, &refused) || refused.Reason != reasonNoCommands {
		t.Errorf("Start: %v, want the refusal %q", err, reasonNoCommands)
	}
	if err := <-res; err == nil {
		t.Error("ReadRequest returned a request with a command")
	}
}

// TestCommandProtocolErrors: COMMAND only once, right after a LOGIN that offered exec.
func TestCommandProtocolErrors(t *testing.T) {
	login := func(caps ...string) []message {
		return []message{{typ: frameLogin, req: &Request{User: "bob", Capabilities: caps}}}
	}
	command := message{typ: frameCommand, cmd: &Command{Line: "true"}}
	tests := []struct {
		name string
		msgs []message
	}{
		{"without exec", append(login(), command)},
		{"twice", append(login("exec"), command, command)},
		{"missing", append(login("exec"), message{typ: frameData, data: []byte("x")})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stream := append([]byte{}, encodeStream(t, tt.msgs)...)
			s := NewServerConn(newBytesConn(stream))
			s.RunsCommands = true
			req, err := s.ReadRequest()
			if err == nil {
				// The error is the session's: the frame after the request is not a session frame.
				m, skip, derr := decodeFrame(frameCommand, []byte{0, 'x'}, isClientFrameFlow2)
				if derr == nil || skip {
					t.Errorf("a COMMAND in the session decodes: %+v", m)
				}
				if tt.name == "twice" && req.Command == nil {
					t.Error("the first COMMAND was not read")
				}
			} else if !errors.Is(err, ErrProtocol) {
				t.Errorf("ReadRequest: %v, want a protocol error", err)
			}
			_ = s.Close()
		})
	}
}

func waitOutput(t *testing.T, b *termtest.Buffer, want string) {
	t.Helper()
	termtest.WaitFor(t, testTimeout, strconv.Quote(want), func() bool { return strings.Contains(b.String(), want) })
}

// checkCommandRoundTrip checks that c encodes and decodes back to itself.
func checkCommandRoundTrip(t *testing.T, c *Command) {
	t.Helper()
	b, err := appendCommand(nil, c)
	if err != nil {
		t.Fatalf("command %+v does not encode: %v", c, err)
	}
	got, err := decodeCommand(b[headerLen:])
	if err != nil || !reflect.DeepEqual(got, c) {
		t.Fatalf("command %+v round-trips to %+v, %v", c, got, err)
	}
}

func commandSeeds() []seed {
	return []seed{
		{"plain", append([]byte{0}, "echo hi"...)},
		{"pty", append([]byte{commandPTY}, "top"...)},
		{"nul", []byte{0, 'a', 0, 'b'}},
		{"flags", []byte{0x80, 'x'}},
		{"empty", []byte{0}},
		{"script", append([]byte{0}, "set -e\ncd /tmp && tar c . | gzip\n"...)},
	}
}

// FuzzCommand feeds the COMMAND decoder arbitrary payloads: no panic, and what decodes
// round-trips and keeps the bounds.
func FuzzCommand(f *testing.F) {
	for _, s := range commandSeeds() {
		f.Add(s.data)
	}
	f.Fuzz(func(t *testing.T, p []byte) {
		c, err := decodeCommand(p)
		if err != nil {
			return
		}
		if c.Line == "" || len(c.Line) > MaxCommandLen || strings.IndexByte(c.Line, 0) >= 0 {
			t.Fatalf("decoded command %q breaks the bounds", c.Line)
		}
		checkCommandRoundTrip(t, c)
	})
}

// blockedWriter holds every Write until release is closed, as a paused pager holds a pipe.
type blockedWriter struct {
	release chan struct{}
	buf     termtest.Buffer
}

func (w *blockedWriter) Write(p []byte) (int, error) {
	<-w.release
	return w.buf.Write(p)
}

// TestCommandStderrBlockedKeepsSession: while Stderr does not take its output, the client goes
// on reading the server's frames, so its keepalive hears the server and the session survives
// many times the keepalive's limit; then every byte arrives.
func TestCommandStderrBlockedKeepsSession(t *testing.T) {
	const n = 3000000
	ka := Keepalive{Interval: 20 * time.Millisecond, CountMax: 2} // gives up after 40 ms of silence
	stderr := &blockedWriter{release: make(chan struct{})}
	var stdout termtest.Buffer
	cl, res := startCommand(t, "head -c "+strconv.Itoa(n)+" /dev/zero >&2; echo done", func(c *Client) {
		c.Stdout, c.Stderr = &stdout, stderr
		c.Keepalive = ka
	})
	// 25 times the keepalive's limit: a client that stopped reading would have given up.
	hold := time.AfterFunc(time.Second, func() { close(stderr.release) })
	defer hold.Stop()
	if err := cl.Wait(); err != nil {
		t.Fatalf("Wait: %v", err)
	}
	if got := len(stderr.buf.String()); got != n || stdout.String() != "done\n" {
		t.Errorf("stderr %d bytes (want %d), stdout %q (want \"done\\n\")", got, n, stdout.String())
	}
	if srv := waitServed(t, res); srv.err != nil {
		t.Errorf("Serve: %v", srv.err)
	}
}

// TestErrorOutputFillsTheWindow: error output goes out as far as the client's credit allows,
// not only in whole reads. The client grants credit a batch at a time, and a window shrunk to
// a link leaves less room than one read of error output until its next credit, which comes
// only after more output: a server that waited for room for a whole read waited forever (a
// command writing only to stderr stalled, 1 run in 20 of TestCommandBulk on a loaded machine).
// Here the client grants nothing at first: the error output must fill the window exactly.
func TestErrorOutputFillsTheWindow(t *testing.T) {
	const total = 300000
	p, err := pipes.Start(exec.Command("/bin/sh", "-c", "dd if=/dev/zero bs="+strconv.Itoa(total)+" count=1 status=none >&2"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.End(0) })
	req := bob
	req.Command = &Command{Line: "the dd above"}
	req.Capabilities = []string{capFlow2, capExec}
	peer, res, ans := serveRaw(t, p, req, []string{capFlow2, capExec}, func(sc *ServerConn) { sc.RunsCommands = true })
	if ans.typ != frameAccept {
		t.Fatalf("answer %v, want ACCEPT", ans.typ)
	}
	room := window - flushReserve // what flow2's server sends before the first credit
	got := 0
	for got < room {
		m := peer.read() // the conn's watchdog ends a wait for output that does not come
		if m.typ != frameStderr {
			t.Fatalf("%v after %d bytes of error output, want STDERR", m.typ, got)
		}
		got += len(m.data)
	}
	if got != room {
		t.Fatalf("%d bytes of error output before any credit, want the window's %d", got, room)
	}
	peer.send(message{typ: frameCredit, credit: uint32(got)})
	for got < total {
		m := peer.read()
		if m.typ != frameStderr {
			t.Fatalf("%v after %d bytes of error output, want STDERR", m.typ, got)
		}
		got += len(m.data)
		peer.send(message{typ: frameCredit, credit: uint32(len(m.data))})
	}
	if m := peer.read(); m.typ != frameExit || m.exit.Status != 0 {
		t.Fatalf("%v (exit %+v) after the error output, want EXIT 0", m.typ, m.exit)
	}
	if srv := waitServed(t, res); srv.err != nil {
		t.Errorf("Serve: %v", srv.err)
	}
}
