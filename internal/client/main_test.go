package client

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
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
	"go.uber.org/goleak"
	"golang.org/x/sys/unix"

	"github.com/rlogin-go/rlogin/internal/termtest"
)

// testTimeout bounds every single wait in these tests: needing longer is a failure.
const testTimeout = 20 * time.Second

// rloginBin is the rlogin binary built by TestMain, for the tests that run it in a pty.
var rloginBin string

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	dir, err := os.MkdirTemp("", "rlogin-client-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	rloginBin = filepath.Join(dir, "rlogin")
	cmd := exec.Command("go", "build", "-o", rloginBin, "../../cmd/rlogin")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building rlogin:", err)
		return 1
	}
	code := m.Run()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			return 1
		}
	}
	return code
}

// testTerminal is a pty the test owns: the test plays the user on the master side.
type testTerminal struct {
	t             *testing.T
	master, slave *os.File
	out           termtest.Buffer
	mark          int // expect searches the output from here
	copyDone      chan struct{}

	cmd     *exec.Cmd
	prefix  []string // if set, start runs rlogin through this command (its arguments then rlogin's)
	exited  chan struct{}
	waitErr error

	slaveOnce sync.Once
}

// openTerminal opens a 24x80 pty and copies what appears on it into tt.out.
func openTerminal(t *testing.T) *testTerminal {
	t.Helper()
	master, slave, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	if err := pty.Setsize(master, &pty.Winsize{Rows: 24, Cols: 80}); err != nil {
		t.Fatal(err)
	}
	// The master is read through Go's poller, so that closing it (a hang-up: the terminal
	// window closed) interrupts the copier's Read and really closes it; a Read blocked in
	// read(2) would keep it open. (Fd above made the descriptor blocking.)
	if master, err = pollable(master); err != nil {
		t.Fatal(err)
	}
	tt := &testTerminal{t: t, master: master, slave: slave, copyDone: make(chan struct{})}
	go func() {
		defer close(tt.copyDone)
		_, _ = io.Copy(&tt.out, master) // ends with EIO once every slave fd is closed
	}()
	t.Cleanup(tt.close)
	return tt
}

// pollable returns f as a non-blocking file read through Go's poller, and closes f.
func pollable(f *os.File) (*os.File, error) {
	defer f.Close()
	fd, err := unix.FcntlInt(f.Fd(), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		_ = unix.Close(fd)
		return nil, err
	}
	return os.NewFile(uintptr(fd), f.Name()), nil
}

func (tt *testTerminal) close() {
	if tt.cmd != nil {
		select {
		case <-tt.exited:
		default:
			_ = tt.cmd.Process.Kill()
			<-tt.exited
		}
	}
	tt.closeSlave()
	select {
	case <-tt.copyDone:
	case <-time.After(testTimeout):
		tt.t.Errorf("pty output copier did not end")
	}
	_ = tt.master.Close()
}

func (tt *testTerminal) closeSlave() {
	tt.slaveOnce.Do(func() { _ = tt.slave.Close() })
}

// output returns all the output, once rlogin has exited: it closes the test's slave descriptor, so
// the copier reads to the end. Check termios before.
func (tt *testTerminal) output() string {
	tt.t.Helper()
	select {
	case <-tt.exited:
	default:
		tt.t.Fatal("output called before rlogin exited")
	}
	tt.closeSlave()
	select {
	case <-tt.copyDone:
	case <-time.After(testTimeout):
		tt.t.Fatalf("pty output copier did not end")
	}
	return tt.out.String()
}

// start runs the rlogin binary with args in the terminal, as its controlling terminal.
func (tt *testTerminal) start(env []string, args ...string) {
	tt.t.Helper()
	tt.startWithStdout(tt.slave, env, args...)
}

// startWithStdout is start with standard output redirected to stdout.
func (tt *testTerminal) startWithStdout(stdout io.Writer, env []string, args ...string) {
	tt.t.Helper()
	tt.cmd = exec.Command(rloginBin, args...)
	if len(tt.prefix) > 0 {
		tt.cmd = exec.Command(tt.prefix[0], append(append(tt.prefix[1:len(tt.prefix):len(tt.prefix)], rloginBin), args...)...)
	}
	tt.cmd.Env = env
	tt.cmd.Stdin, tt.cmd.Stdout, tt.cmd.Stderr = tt.slave, stdout, tt.slave
	tt.cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true}
	tt.exited = make(chan struct{})
	if err := tt.cmd.Start(); err != nil {
		tt.t.Fatal(err)
	}
	go func() {
		tt.waitErr = tt.cmd.Wait()
		close(tt.exited)
	}()
}

// wait waits for rlogin to exit and returns its exit status.
func (tt *testTerminal) wait() int {
	tt.t.Helper()
	select {
	case <-tt.exited:
	case <-time.After(testTimeout):
		tt.t.Fatalf("rlogin did not exit; output:\n%q", tt.out.String())
	}
	var ee *exec.ExitError
	if errors.As(tt.waitErr, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			tt.t.Fatalf("rlogin was killed by %v; output:\n%q", ws.Signal(), tt.out.String())
		}
		return ee.ExitCode()
	}
	if tt.waitErr != nil {
		tt.t.Fatal(tt.waitErr)
	}
	return 0
}

// send types s.
func (tt *testTerminal) send(s string) {
	tt.t.Helper()
	if _, err := tt.master.Write([]byte(s)); err != nil {
		tt.t.Fatalf("typing %q: %v", s, err)
	}
}

// expect waits for the output after the mark to match the regular expression re, moves the mark
// past the match and returns the submatches.
func (tt *testTerminal) expect(re string) []string {
	tt.t.Helper()
	m, ok := tt.out.Expect(&tt.mark, regexp.MustCompile(re), testTimeout)
	if !ok {
		data, _ := tt.out.Snapshot()
		tt.t.Fatalf("timed out waiting for %q; output after mark:\n%q", re, data[tt.mark:])
	}
	return m
}

// termios is the terminal's state now.
func (tt *testTerminal) termios() unix.Termios {
	tt.t.Helper()
	ts, err := unix.IoctlGetTermios(int(tt.slave.Fd()), unix.TCGETS)
	if err != nil {
		tt.t.Fatal(err)
	}
	return *ts
}

// waitFor polls cond until it holds, or fails the test after testTimeout.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	termtest.WaitFor(t, testTimeout, what, cond)
}

// freePort is a loopback port nobody listens on right now.
func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(l.Addr().String())
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return port
}

// userEnv is the environment of a user at a terminal with their own HOME.
func userEnv(home string) []string {
	return []string{"HOME=" + home, "PATH=/usr/local/bin:/usr/bin:/bin", "TERM=xterm", "LANG=C.UTF-8", "LC_TEST=yes", "OTHER=no"}
}

// TestNoServerInTerminal runs rlogin in a pty against a port nobody listens on: it creates the
// key, says why it failed in one line, exits 255, and leaves the terminal as it found it.
func TestNoServerInTerminal(t *testing.T) {
	tt := openTerminal(t)
	before := tt.termios()
	home := t.TempDir()
	port := freePort(t)
	tt.start(userEnv(home), "-p", port, "127.0.0.1")
	m := tt.expect(`rlogin: created your key ~/\.rlogin/id_ed25519 \((SHA256:[A-Za-z0-9+/]{43})\)\r\n`)
	tt.expect(`^rlogin: connect to host 127\.0\.0\.1 port ` + port + `: connection refused\r\n`)
	if code := tt.wait(); code != ExitFailure {
		t.Fatalf("exit status %d, want %d", code, ExitFailure)
	}
	if after := tt.termios(); after != before {
		t.Fatalf("terminal changed:\nbefore %+v\nafter  %+v", before, after)
	}
	if rest := strings.TrimSpace(tt.output()[tt.mark:]); rest != "" {
		t.Fatalf("more output after the reason: %q", rest)
	}
	pub, err := os.ReadFile(filepath.Join(home, ".rlogin", "id_ed25519.pub"))
	if err != nil || !bytes.HasPrefix(pub, []byte("ssh-ed25519 ")) {
		t.Fatalf("public key file: %q, %v", pub, err)
	}

	// The second time the key exists: only the reason.
	tt2 := openTerminal(t)
	tt2.start(userEnv(home), "-p", port, "127.0.0.1")
	if code := tt2.wait(); code != ExitFailure {
		t.Fatalf("second run: exit status %d", code)
	}
	if got, want := tt2.output(), "rlogin: connect to host 127.0.0.1 port "+port+": connection refused\r\n"; got != want {
		t.Fatalf("second run printed %q, want %q (fingerprint %s)", got, want, m[1])
	}
}

// TestUsageErrors checks that bad command lines give one reason and the usage line, status 255.
func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{{}, {"-x", "host"}, {"-t", "-T", "host", "cmd"}, {"-p", "0", "host"}, {"-e", "xy", "host"}} {
		var stdout, stderr bytes.Buffer
		cfg := &Config{Stdout: &stdout, Stderr: &stderr, Home: t.TempDir()}
		if code := cfg.Run(watchdog(t), args); code != ExitFailure {
			t.Errorf("%q: status %d, want %d", args, code, ExitFailure)
		}
		lines := strings.Split(strings.TrimSuffix(stderr.String(), "\n"), "\n")
		if len(lines) != 2 || !strings.HasPrefix(lines[0], "rlogin: ") || lines[1] != UsageLine || stdout.Len() != 0 {
			t.Errorf("%q: stderr %q, stdout %q", args, stderr.String(), stdout.String())
		}
	}
}

// TestHelp checks that -h and --help print the usage on standard output and exit 0: asked for, it
// is not an error.
func TestHelp(t *testing.T) {
	for _, args := range [][]string{{"-h"}, {"--help"}, {"host", "-h"}} {
		var stdout, stderr bytes.Buffer
		cfg := &Config{Stdout: &stdout, Stderr: &stderr}
		if code := cfg.Run(watchdog(t), args); code != 0 || stdout.String() != usageText || stderr.Len() != 0 {
			t.Errorf("%q: status %d, stdout %q, stderr %q", args, code, stdout.String(), stderr.String())
		}
	}
}

// TestNoServerPiped runs rlogin in-process with pipes: no terminal, so no raw mode and no prompt.
func TestNoServerPiped(t *testing.T) {
	var stdout, stderr bytes.Buffer
	home := t.TempDir()
	port := freePort(t)
	cfg := &Config{Stdin: strings.NewReader("ls\n"), Stdout: &stdout, Stderr: &stderr, Home: home, LocalUser: "bob"}
	if code := cfg.Run(watchdog(t), []string{"-p", port, "localhost"}); code != ExitFailure {
		t.Fatalf("status %d", code)
	}
	lines := strings.Split(strings.TrimSuffix(stderr.String(), "\n"), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "rlogin: created your key "+home+"/.rlogin/id_ed25519 (SHA256:") ||
		lines[1] != "rlogin: connect to host localhost port "+port+": connection refused" {
		t.Fatalf("stderr %q", stderr.String())
	}
}

// TestDebug checks that -d reports progress on stderr, and that without it nothing extra shows.
func TestDebug(t *testing.T) {
	port := freePort(t)
	home := t.TempDir()
	for _, debug := range []bool{true, false} {
		var stderr bytes.Buffer
		cfg := &Config{Stderr: &stderr, Home: home, LocalUser: "bob"}
		args := []string{"-p", port, "127.0.0.1"}
		if debug {
			args = append([]string{"-d"}, args...)
		}
		if code := cfg.Run(watchdog(t), args); code != ExitFailure {
			t.Fatalf("status %d", code)
		}
		has := strings.Contains(stderr.String(), "rlogin: debug: connecting to 127.0.0.1:"+port+"\n")
		if has != debug {
			t.Fatalf("-d %v: stderr %q", debug, stderr.String())
		}
	}
}

// tcpServer serves each connection to a loopback port with serve, in a goroutine of its own that
// the test's cleanup waits for (after closing the conn); it returns the port.
func tcpServer(t *testing.T, serve func(c net.Conn)) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				serve(c)
			}()
		}
	}()
	t.Cleanup(func() {
		_ = l.Close()
		wg.Wait()
	})
	_, port, _ := net.SplitHostPort(l.Addr().String())
	return port
}

// silentServer accepts connections on loopback and never answers; it returns the port.
func silentServer(t *testing.T) string {
	return tcpServer(t, func(c net.Conn) { _, _ = io.Copy(io.Discard, c) }) // until rlogin gives up
}

// TestConnectTimeoutOption checks that -o ConnectTimeout=N bounds the wait for a server that
// accepts the connection and says nothing.
func TestConnectTimeoutOption(t *testing.T) {
	port := silentServer(t)
	var stderr bytes.Buffer
	cfg := &Config{Stderr: &stderr, Home: t.TempDir(), LocalUser: "bob"}
	start := time.Now()
	code := cfg.Run(watchdog(t), []string{"-o", "ConnectTimeout=1", "-p", port, "127.0.0.1"})
	if took := time.Since(start); took < time.Second || took > testTimeout {
		t.Errorf("gave up after %v, want about 1s", took)
	}
	if code != ExitFailure {
		t.Errorf("status %d, want %d", code, ExitFailure)
	}
	want := "rlogin: connect to host 127.0.0.1 port " + port + ": connection timed out\n"
	if !strings.HasSuffix(stderr.String(), want) {
		t.Errorf("stderr %q, want it to end in %q", stderr.String(), want)
	}
}

// watchdog is a context that ends after testTimeout: a Run that would hang ends instead (status
// 255), and the test fails on what it got rather than at go test's own timeout.
func watchdog(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}
