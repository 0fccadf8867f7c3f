package client

import (
	"bytes"
	"context"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rlogin-go/rlogin/internal/termtest"
	"github.com/rlogin-go/rlogin/pty"
	"github.com/rlogin-go/rlogin/session/classic"
)

// fakeClassicServer accepts one connection on a loopback port, reads the handshake and runs
// serve on the conn; it returns the port and a channel with the handshake it read.
func fakeClassicServer(t *testing.T, serve func(c *net.TCPConn)) (string, <-chan string) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := make(chan string, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(testTimeout))
		buf := make([]byte, 512)
		n := 0
		for bytes.Count(buf[:n], []byte{0}) < 4 {
			m, err := c.Read(buf[n:])
			n += m
			if err != nil {
				return
			}
		}
		hs <- string(buf[:n])
		serve(c.(*net.TCPConn))
	}()
	t.Cleanup(func() {
		_ = l.Close()
		<-done
	})
	_, port, _ := net.SplitHostPort(l.Addr().String())
	return port, hs
}

// urgent sends b as TCP urgent data on c.
func urgent(t *testing.T, c *net.TCPConn, b byte) {
	t.Helper()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var serr error
	if err := rc.Write(func(fd uintptr) bool {
		serr = unix.Sendto(int(fd), []byte{b}, unix.MSG_OOB, nil)
		return true
	}); err != nil || serr != nil {
		t.Fatalf("sending urgent data: %v %v", err, serr)
	}
}

// TestClassicRefusedInTerminal: the server's 0x01 message is shown (sanitized) and rlogin exits
// 255 with the terminal as it was.
func TestClassicRefusedInTerminal(t *testing.T) {
	port, hs := fakeClassicServer(t, func(c *net.TCPConn) {
		_, _ = c.Write([]byte("\x01rlogind: Permission denied.\x1b[2J\r\n"))
	})
	tt := openTerminal(t)
	before := tt.termios()
	tt.start(userEnv(t.TempDir()), "-c", "-p", port, "-l", "alice", "127.0.0.1")
	tt.expect(`rlogin: warning: classic rlogin \(-c\) is not encrypted`)
	tt.expect(`rlogin: 127\.0\.0\.1 refused the login: rlogind: Permission denied\.\\x1b\[2J\r\n`)
	if code := tt.wait(); code != ExitFailure {
		t.Errorf("exit status %d, want %d", code, ExitFailure)
	}
	if after := tt.termios(); after != before {
		t.Errorf("terminal changed:\nbefore %+v\nafter  %+v", before, after)
	}
	got := <-hs
	if !strings.HasPrefix(got, "\x00") || !strings.Contains(got, "\x00alice\x00xterm/") {
		t.Errorf("handshake %q", got)
	}
	if os.Geteuid() == 0 && strings.Contains(tt.output(), "privileged") {
		t.Errorf("root could not bind a privileged port: %q", tt.output())
	}
}

// TestClassicUnprivileged checks the message when no privileged port can be bound: run as a
// non-root user (nobody) when the test runs as root.
func TestClassicUnprivileged(t *testing.T) {
	if start, err := os.ReadFile("/proc/sys/net/ipv4/ip_unprivileged_port_start"); err == nil && strings.TrimSpace(string(start)) != "1024" {
		t.Skipf("ports below %s are not privileged here", strings.TrimSpace(string(start)))
	}
	port, _ := fakeClassicServer(t, func(c *net.TCPConn) {
		_, _ = c.Write([]byte("\x01Permission denied.\r\n"))
	})
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, rloginBin, "-c", "-p", port, "-l", "alice", "127.0.0.1")
	cmd.Env = []string{"HOME=/nonexistent", "PATH=/usr/bin:/bin", "USER=nobody"}
	if os.Geteuid() == 0 {
		// Run as nobody, from a copy of rlogin that nobody can run (the built one is in a
		// private directory).
		cmd.Path = nobodysCopy(t)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	}
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != ExitFailure {
		t.Errorf("exit: %v, want status %d", err, ExitFailure)
	}
	if !strings.Contains(string(out), "cannot bind a privileged source port (512-1023): rlogin is not running as root") {
		t.Errorf("output %q lacks the privileged-port message", out)
	}
}

// nobodysCopy copies rlogin where user nobody can run it, for the test's life.
func nobodysCopy(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "rlogin-nobody-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	bin := dir + "/rlogin"
	data, err := os.ReadFile(rloginBin)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return bin
}

// TestClassicFlowControl: the server's 0x10 and 0x20 switch the terminal's IXON off and on; with
// -8 it stays off.
func TestClassicFlowControl(t *testing.T) {
	for _, eight := range []bool{false, true} {
		name := "default"
		if eight {
			name = "-8"
		}
		t.Run(name, func(t *testing.T) {
			step := make(chan struct{})
			port, _ := fakeClassicServer(t, func(c *net.TCPConn) {
				_, _ = c.Write([]byte{0})
				_, _ = c.Write([]byte("START\r\n"))
				<-step
				urgent(t, c, classic.ControlNoStop)
				_, _ = c.Write([]byte("NOSTOP\r\n"))
				<-step
				urgent(t, c, classic.ControlDoStop)
				_, _ = c.Write([]byte("DOSTOP\r\n"))
				<-step
			})
			tt := openTerminal(t)
			args := []string{"-c", "-p", port, "-l", "alice", "127.0.0.1"}
			if eight {
				args = append([]string{"-8"}, args...)
			}
			tt.start(userEnv(t.TempDir()), args...)
			ixon := func() bool { return tt.termios().Iflag&unix.IXON != 0 }
			tt.expect(`START\r\n`)
			if got := ixon(); got == eight {
				t.Errorf("IXON %v at the start", got)
			}
			step <- struct{}{}
			tt.expect(`NOSTOP\r\n`)
			if ixon() {
				t.Error("IXON on after 0x10")
			}
			step <- struct{}{}
			tt.expect(`DOSTOP\r\n`)
			if got := ixon(); got == eight {
				t.Errorf("IXON %v after 0x20", got)
			}
			step <- struct{}{}
			if code := tt.wait(); code != 0 {
				t.Errorf("exit status %d after the server closed", code)
			}
			tt.expect(`Connection to 127\.0\.0\.1 closed\.`)
		})
	}
}

// TestClassicSessionPiped runs rlogin -c in-process with pipes against a classic server on a real
// pty: output, input, the end when the server closes (status 0).
func TestClassicSessionPiped(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	shell := make(chan *pty.PTY, 1)
	go func() {
		c, err := l.Accept()
		_ = l.Close()
		if err != nil {
			served <- err
			return
		}
		srv := classic.NewServerConn(c)
		req, err := srv.ReadRequest()
		if err != nil {
			served <- err
			return
		}
		if req.ServerUser != "alice" || req.ClientUser != "bob" || req.Term != "vt100" {
			_ = srv.Refuse("unexpected request")
			served <- nil
			return
		}
		cmd := exec.Command("/bin/sh", "-c", "echo hello; read x; echo got $x")
		cmd.Env = []string{"PATH=/usr/bin:/bin"}
		p, err := pty.Start(cmd, pty.Size{Rows: 24, Cols: 80})
		if err != nil {
			served <- err
			return
		}
		defer p.Close()
		shell <- p
		_, err = srv.Serve(context.Background(), p)
		served <- err
	}()
	_, port, _ := net.SplitHostPort(l.Addr().String())
	pr, pw := io.Pipe()
	var stdout, stderr termtest.Buffer
	cfg := &Config{Stdin: pr, Stdout: &stdout, Stderr: &stderr, LocalUser: "bob", Environ: []string{"TERM=vt100"}}
	status := make(chan int, 1)
	go func() { status <- cfg.Run(watchdog(t), []string{"-c", "-p", port, "-l", "alice", "127.0.0.1"}) }()
	deadline := time.Now().Add(testTimeout)
	for !strings.Contains(stdout.String(), "hello") {
		if time.Now().After(deadline) {
			t.Fatalf("no output; stderr %q", stderr.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	_, _ = io.WriteString(pw, "world\n")
	for !strings.Contains(stdout.String(), "got world") {
		if time.Now().After(deadline) {
			t.Fatalf("no answer; output %q, stderr %q", stdout.String(), stderr.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	// Close the input only once the shell has exited: the session then ends with the shell, as
	// the test wants. Closed earlier, rlogin may drop the connection first (on a loaded machine
	// the server then said "connection lost").
	select {
	case p := <-shell:
		select {
		case <-p.Exited():
		case <-time.After(testTimeout):
			t.Fatal("the shell did not exit after its answer")
		}
	case <-time.After(testTimeout):
		t.Fatal("the server started no shell")
	}
	_ = pw.Close() // Run waits for a reader that is not a file to end
	select {
	case code := <-status:
		if code != 0 {
			t.Errorf("status %d; stderr %q", code, stderr.String())
		}
	case <-time.After(testTimeout):
		t.Fatal("rlogin did not end")
	}
	if !strings.Contains(stderr.String(), "not encrypted") || !strings.Contains(stderr.String(), "Connection to 127.0.0.1 closed.") {
		t.Errorf("stderr %q", stderr.String())
	}
	if err := <-served; err != nil {
		t.Errorf("server: %v", err)
	}
}
