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
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rlogin-go/rlogin/pty"
)

// endingTimeout is how long these tests give Serve to end once nothing should hold it: the
// graces plus room for a loaded machine, well below the conns' watchdog (testTimeout).
const endingTimeout = hangupGrace + killGrace + 8*time.Second

// servePTY runs serveTerminal with a real pty running sh -c script.
func servePTY(t *testing.T, script string, configure func(*ServerConn), setup func(*Client)) (*Client, chan served) {
	t.Helper()
	cmd := exec.Command("sh", "-c", script)
	cmd.Env = []string{"PATH=/usr/local/bin:/usr/bin:/bin", "LC_ALL=C"}
	p, err := pty.Start(cmd, pty.Size{Rows: 24, Cols: 80})
	if errors.Is(err, pty.ErrUnsupported) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	return serveTerminal(t, p, configure, setup)
}

// serveTerminal runs Serve with term for a client over loopback TCP that setup adjusts and that
// is then started; configure, if not nil, adjusts the server first. The cleanup closes the
// terminal and kills the shell before waiting for Serve, so that Serve returns even when the test
// failed because it did not.
func serveTerminal(t *testing.T, term Terminal, configure func(*ServerConn), setup func(*Client)) (*Client, chan served) {
	t.Helper()
	c, s := tcpPair(t)
	srv := NewServerConn(s)
	if configure != nil {
		configure(srv)
	}
	res := make(chan served, 1)
	go func() {
		if _, err := srv.ReadRequest(); err != nil {
			_ = srv.Close()
			_ = term.Close()
			term.Kill()
			st, _ := term.Wait()
			res <- served{st, err}
			return
		}
		st, err := srv.Serve(context.Background(), term)
		res <- served{st, err}
	}()
	t.Cleanup(func() {
		_ = term.Close()
		term.Kill()
		select {
		case r := <-res:
			res <- r
		case <-time.After(testTimeout):
			t.Error("Serve did not return even after the shell was killed")
		}
	})
	cl := NewClient(c, Request{User: "bob", Term: "xterm"})
	if setup != nil {
		setup(cl)
	}
	if err := cl.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cl.Close() })
	return cl, res
}

// servedWithin returns what Serve returned, or fails the test if that takes longer than d.
func servedWithin(t *testing.T, res chan served, d time.Duration, what string) served {
	t.Helper()
	select {
	case r := <-res:
		res <- r
		return r
	case <-time.After(d):
		t.Fatalf("Serve still running %v after %s", d, what)
	}
	panic("unreachable")
}

// TestHangupIgnoredRealPTY: the connection is lost and the shell ignores SIGHUP. After the grace,
// Serve closes the terminal, which hangs up the line for good: the shell, reading it, gets end of
// file and exits, and Serve returns.
func TestHangupIgnoredRealPTY(t *testing.T) {
	out := newSyncBuffer()
	cl, res := servePTY(t, `trap '' HUP; echo READY; exec cat >/dev/null`, nil, func(c *Client) { c.Stdout = out })
	out.waitFor(t, "READY", func() bool { return bytes.Contains(out.buf.Bytes(), []byte("READY")) })
	start := time.Now()
	_ = cl.Close() // the connection is lost
	r := servedWithin(t, res, endingTimeout, "the connection was lost")
	t.Logf("Serve returned %v after the connection was lost: %v", time.Since(start), r.err)
	if r.err == nil || !strings.Contains(r.err.Error(), "connection lost") {
		t.Errorf("Serve: %v, want a lost connection", r.err)
	}
	if ws, ok := r.state.Sys().(syscall.WaitStatus); !ok || ws.Signaled() {
		t.Errorf("shell state %v, want an exit of its own (end of file on its terminal)", r.state)
	}
}

// TestHangupIgnoredKilledRealPTY: a shell that ignores SIGHUP and does not read its terminal
// outlives the close of the terminal too: Serve kills it.
func TestHangupIgnoredKilledRealPTY(t *testing.T) {
	out := newSyncBuffer()
	cl, res := servePTY(t, `trap '' HUP; echo READY; exec sleep 1000`, func(s *ServerConn) {
		s.hangupGrace, s.killGrace = 100*time.Millisecond, 100*time.Millisecond
	}, func(c *Client) { c.Stdout = out })
	out.waitFor(t, "READY", func() bool { return bytes.Contains(out.buf.Bytes(), []byte("READY")) })
	_ = cl.Close()
	r := servedWithin(t, res, endingTimeout, "the connection was lost")
	if ws, ok := r.state.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGKILL {
		t.Errorf("shell state %v, want killed by SIGKILL", r.state)
	}
}

// TestHangupEscalation: after Hangup, a shell that is still there after hangupGrace gets its
// terminal closed, and after killGrace more, Kill; one that exits in time gets neither.
func TestHangupEscalation(t *testing.T) {
	for _, tc := range []struct {
		name         string
		shell        []string
		closed, kill bool
		signal       syscall.Signal
	}{
		{"exits on SIGHUP", []string{"sleep", "3600"}, false, false, syscall.SIGHUP},
		{"ignores SIGHUP", []string{"sh", "-c", "trap '' HUP; exec sleep 3600"}, true, true, syscall.SIGKILL},
	} {
		t.Run(tc.name, func(t *testing.T) {
			term := newFakeTerminal(t, tc.shell...)
			if tc.kill {
				waitIgnoresHangup(t, term.cmd.Process.Pid)
			}
			cl, res := serveTerminal(t, term, func(s *ServerConn) {
				s.hangupGrace, s.killGrace = 200*time.Millisecond, 200*time.Millisecond
				if !tc.closed { // a slow machine must not make the shell miss the grace
					s.hangupGrace = testTimeout
				}
			}, nil)
			_ = cl.Close()
			r := servedWithin(t, res, endingTimeout, "the connection was lost")
			if ws, ok := r.state.Sys().(syscall.WaitStatus); !ok || ws.Signal() != tc.signal {
				t.Errorf("shell state %v, want killed by %v", r.state, tc.signal)
			}
			term.locked(func() {
				if term.hangups != 1 || term.closedUp != tc.closed || (term.kills == 1) != tc.kill {
					t.Errorf("Hangup %d times, closed before the reap %v, Kill %d times; want 1, %v, kill %v",
						term.hangups, term.closedUp, term.kills, tc.closed, tc.kill)
				}
			})
		})
	}
}

// waitIgnoresHangup waits until process pid (a child of the test, not yet reaped) ignores SIGHUP.
func waitIgnoresHangup(t *testing.T, pid int) {
	t.Helper()
	waitUntil(t, "the shell to ignore SIGHUP", func() bool {
		status, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
		if err != nil {
			t.Fatal(err)
		}
		for line := range strings.Lines(string(status)) {
			if mask, ok := strings.CutPrefix(line, "SigIgn:"); ok {
				ign, err := strconv.ParseUint(strings.TrimSpace(mask), 16, 64)
				return err == nil && ign&(1<<(syscall.SIGHUP-1)) != 0
			}
		}
		return false
	})
}

// TestServeUnansweredEndsStubbornShell: Serve without a login request hangs the shell up and
// waits for it; a shell that ignores SIGHUP cannot make it wait forever.
func TestServeUnansweredEndsStubbornShell(t *testing.T) {
	_, s := tcpPair(t)
	srv := NewServerConn(s)
	srv.hangupGrace, srv.killGrace = 100*time.Millisecond, 100*time.Millisecond
	term := newFakeTerminal(t, "sh", "-c", "trap '' HUP; exec sleep 3600")
	waitIgnoresHangup(t, term.cmd.Process.Pid)
	res := make(chan served, 1)
	go func() {
		st, err := srv.Serve(context.Background(), term)
		res <- served{st, err}
	}()
	select {
	case r := <-res:
		if r.err == nil {
			t.Error("Serve without a request succeeded")
		}
		if ws, ok := r.state.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGKILL {
			t.Errorf("shell state %v, want killed by SIGKILL", r.state)
		}
	case <-time.After(endingTimeout):
		_ = term.cmd.Process.Kill() // so that the goroutine ends
		<-res
		t.Fatal("Serve without a request still waiting for a shell that ignores SIGHUP")
	}
}

// TestExitWithInputHeld: the shell exits while input waits for a terminal that a background job
// holds (nobody reads it; a pty's Write blocks). The client gets EXIT, and Serve returns: it
// closes the terminal, which drops the input.
func TestExitWithInputHeld(t *testing.T) {
	c, s := tcpPair(t)
	term := newFakeTerminal(t, "sleep", "3600")
	term.blockIn, term.held = true, true
	ts := startSession(t, c, s, term, nil)
	if _, err := ts.stdin.Write([]byte("input nobody reads")); err != nil {
		t.Fatal(err)
	}
	term.waitFor(t, "the input to be blocked", func() bool { return term.blocked > 0 })
	if err := term.cmd.Process.Signal(syscall.SIGTERM); err != nil { // the shell exits
		t.Fatal(err)
	}
	select {
	case err := <-ts.waited:
		ts.waited <- err
		var exit *ExitError
		if !errors.As(err, &exit) || exit.Signal != "TERM" {
			t.Errorf("Wait: %v, want killed by SIGTERM", err)
		}
	case <-time.After(testTimeout):
		t.Fatal("the client got no EXIT")
	}
	select {
	case r := <-ts.served:
		ts.served <- r
		if r.err != nil {
			t.Errorf("Serve: %v", r.err)
		}
	case <-time.After(endingTimeout):
		_ = term.Close() // so that the cleanup ends
		t.Fatal("Serve still running after EXIT, its input blocked")
	}
	term.locked(func() {
		if !term.closed || term.hangups != 0 || term.kills != 0 {
			t.Errorf("closed %v, Hangup %d times, Kill %d times; want true, 0, 0", term.closed, term.hangups, term.kills)
		}
	})
}

// TestExitWithInputHeldRealPTY is TestExitWithInputHeld on a real pty: a background job holds the
// terminal, the shell stops reading it (raw mode) and exits with 200 KiB of input pending.
func TestExitWithInputHeldRealPTY(t *testing.T) {
	goFile := filepath.Join(t.TempDir(), "go")
	out := newSyncBuffer()
	var stdin io.WriteCloser
	script := fmt.Sprintf(`set -m; sleep 1000 & echo BG=$!; stty raw -echo; while [ ! -e '%s' ]; do sleep 0.01; done; exit 0`, goFile)
	cl, res := servePTY(t, script, nil, func(c *Client) {
		c.Stdout = out
		stdin, _ = c.StdinPipe()
	})
	re := regexp.MustCompile(`BG=(\d+)`)
	out.waitFor(t, "the job's pid", func() bool { return re.Match(out.buf.Bytes()) })
	bg, _ := strconv.Atoi(string(re.FindSubmatch(out.Bytes())[1]))
	// The job holds the terminal after the shell's exit: kill it in the end, through a pidfd.
	if fd, err := unix.PidfdOpen(bg, 0); err == nil {
		t.Cleanup(func() {
			_ = unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0)
			_ = unix.Close(fd)
		})
	}
	// Far more input than the terminal holds: the server's Write to it blocks.
	if _, err := stdin.Write(bytes.Repeat([]byte("x"), 200<<10)); err != nil {
		t.Fatal(err)
	}
	if err := touch(goFile); err != nil {
		t.Fatal(err)
	}
	waited := make(chan error, 1)
	go func() { waited <- cl.Wait() }()
	select {
	case err := <-waited:
		if err != nil {
			t.Errorf("Wait: %v, want exit status 0", err)
		}
	case <-time.After(testTimeout):
		_ = cl.Close()
		<-waited
		t.Fatal("the client got no EXIT")
	}
	r := servedWithin(t, res, endingTimeout, "EXIT was sent")
	if r.err != nil {
		t.Errorf("Serve: %v", r.err)
	}
}

func touch(path string) error {
	return exec.Command("touch", path).Run()
}

// writeWatchConn tells how many Writes were started and how many are in progress.
type writeWatchConn struct {
	net.Conn
	started, writing atomic.Int32
}

func (c *writeWatchConn) Write(b []byte) (int, error) {
	c.started.Add(1)
	c.writing.Add(1)
	defer c.writing.Add(-1)
	return c.Conn.Write(b)
}

// TestShutdownWhileLastFrameBlocked: the shell exited and its EXIT is queued, but the client does
// not read it. Cancelling ctx still ends Serve, within the farewell timeout.
func TestShutdownWhileLastFrameBlocked(t *testing.T) {
	c, s := pipePair(t) // unbuffered: a Write waits for the client to read
	ws := &writeWatchConn{Conn: s}
	term := newFakeTerminal(t, "true")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv := NewServerConn(ws)
	res := make(chan served, 1)
	go func() {
		if _, err := srv.ReadRequest(); err != nil {
			_ = srv.Close()
			st, _ := term.Wait()
			res <- served{st, err}
			return
		}
		st, err := srv.Serve(ctx, term)
		res <- served{st, err}
	}()
	t.Cleanup(func() {
		_ = c.Close()
		<-res
	})
	p := newRawPeer(t, c)
	p.login(bob)
	if v := p.readByte(); v != version {
		t.Fatalf("answer version %d", v)
	}
	if m := p.read(); m.typ != frameAccept {
		t.Fatalf("answer %v", m.typ)
	}
	// The shell prints nothing and exits: the server's next Write is the EXIT, which nobody reads.
	term.waitFor(t, "the shell's reap", func() bool { return term.reaped })
	// The first Write was the ACCEPT.
	waitUntil(t, "the EXIT to be written", func() bool { return ws.started.Load() == 2 && ws.writing.Load() > 0 })
	start := time.Now()
	cancel()
	r := servedWithin(t, res, farewellTimeout+8*time.Second, "ctx was cancelled")
	t.Logf("Serve returned %v after cancel: %v", time.Since(start), r.err)
	if !errors.Is(r.err, context.Canceled) {
		t.Errorf("Serve: %v, want the service stopping", r.err)
	}
}

// TestLoginFrameLimit: before the login request, a server reads no frame longer than the largest
// LOGIN: it refuses it from its header, without waiting for (or allocating) the payload. The
// largest LOGIN itself passes.
func TestLoginFrameLimit(t *testing.T) {
	for _, tc := range []struct {
		name   string
		header []byte
		reason string
	}{
		{"long LOGIN", appendHeader(nil, frameLogin, maxLogin+1),
			fmt.Sprintf("protocol error: LOGIN frame of %d bytes exceeds the limit of %d", maxLogin+1, maxLogin)},
		{"long optional frame", appendHeader(nil, frameOptional|0x42, maxPayload),
			fmt.Sprintf("protocol error: type 0xc2 frame of %d bytes exceeds the limit of %d", maxPayload, maxLogin)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, s := tcpPair(t)
			srv := NewServerConn(s)
			done := make(chan error, 1)
			go func() {
				_, err := srv.ReadRequest()
				done <- err
			}()
			p := newRawPeer(t, c)
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Second)) // the payload never comes
			p.write(append([]byte{version}, tc.header...))
			if v := p.readByte(); v != version {
				t.Fatalf("answer version %d", v)
			}
			if m := p.read(); m.typ != frameRefuse || m.text != tc.reason {
				t.Errorf("answer %v %q, want REFUSE %q", m.typ, m.text, tc.reason)
			}
			_ = c.Close()
			if err := <-done; !errors.Is(err, ErrProtocol) {
				t.Errorf("ReadRequest: %v", err)
			}
		})
	}

	t.Run("largest LOGIN", func(t *testing.T) {
		req := largestRequest()
		b, err := appendMessage([]byte{version}, &message{typ: frameLogin, req: &req})
		if err != nil {
			t.Fatal(err)
		}
		if n := len(b) - 1 - headerLen; n != maxLogin {
			t.Fatalf("largest LOGIN payload %d bytes, maxLogin %d", n, maxLogin)
		}
		c, s := tcpPair(t)
		srv := NewServerConn(s)
		done := make(chan error, 1)
		go func() {
			_, err := srv.ReadRequest()
			done <- err
		}()
		if _, err := c.Write(b); err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Errorf("ReadRequest: %v", err)
		}
		_ = srv.Close()
	})
}

// largestRequest is a request with every field at its bound.
func largestRequest() Request {
	r := Request{User: strings.Repeat("u", MaxUserLen), Term: strings.Repeat("t", MaxTermLen)}
	for i := range MaxLocaleVars {
		name := "LC_" + strings.Repeat("A", i+1)
		r.Env = append(r.Env, name+"="+strings.Repeat("v", MaxLocaleVarLen-len(name)-1))
	}
	for i := range maxCaps {
		r.Capabilities = append(r.Capabilities, strings.Repeat(string(rune('a'+i%26)), maxCapName-1)+string(rune('0'+i/26)))
	}
	return r
}

// TestClientRepairsRequest: a client sends what the protocol carries of its environment and
// terminal type rather than failing the login: it drops locale variables that break a bound or
// repeat a name (the first wins, as for getenv), keeps at most 64, and sends "dumb" for a
// terminal type outside the bounds.
func TestClientRepairsRequest(t *testing.T) {
	var many []string
	for i := range MaxLocaleVars + 10 {
		many = append(many, "LC_X"+strings.Repeat("Y", i)+"=C")
	}
	for _, tc := range []struct {
		name     string
		term     string
		env      []string
		wantTerm string
		wantEnv  []string
	}{
		{"UTF-8 value", "xterm", []string{"LANG=C.UTF-8", "LC_IDENTIFICATION=caf\u00e9"}, "xterm", []string{"LANG=C.UTF-8"}},
		{"twice", "xterm", []string{"LANG=C.UTF-8", "PATH=/bin", "LANG=en_US.UTF-8"}, "xterm", []string{"LANG=C.UTF-8"}},
		{"tab", "xterm", []string{"LC_TERMINAL=iTerm2\t", "LC_ALL=C"}, "xterm", []string{"LC_ALL=C"}},
		{"too long", "xterm", []string{"LANG=" + strings.Repeat("x", MaxLocaleVarLen), "LC_CTYPE=C"}, "xterm", []string{"LC_CTYPE=C"}},
		{"too many", "xterm", many, "xterm", many[:MaxLocaleVars]},
		{"bad term", "x\x1b[31m", nil, "dumb", nil},
		{"term with slash", "../../tmp/x", nil, "dumb", nil},
		{"long term", strings.Repeat("x", MaxTermLen+1), nil, "dumb", nil},
		{"no term", "", nil, "", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, s := tcpPair(t)
			cl := NewClient(c, Request{User: "bob", Term: tc.term, Env: tc.env})
			started := make(chan error, 1)
			go func() { started <- cl.Start(context.Background()) }()
			p := newRawPeer(t, s)
			if v := p.readByte(); v != version {
				t.Fatalf("client version %d", v)
			}
			m := p.read()
			if m.typ != frameLogin {
				t.Fatalf("client sent %v", m.typ)
			}
			if m.req.Term != tc.wantTerm || strings.Join(m.req.Env, "\n") != strings.Join(tc.wantEnv, "\n") {
				t.Errorf("request TERM %q, Env %q; want %q, %q", m.req.Term, m.req.Env, tc.wantTerm, tc.wantEnv)
			}
			p.write(appendFrame([]byte{version}, frameRefuse, []byte("done")))
			var refused *RefusedError
			if err := <-started; !errors.As(err, &refused) {
				t.Errorf("Start: %v", err)
			}
		})
	}
}
