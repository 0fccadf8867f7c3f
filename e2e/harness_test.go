// Package e2e drives the real rlogin binary from a pty against a real rlogind on loopback, as a
// user at a terminal would.
package e2e

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"

	"github.com/rlogin-go/rlogin/internal/termtest"
)

// binDir holds the rlogin and rlogind binaries built once by TestMain.
var binDir string

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	dir, err := os.MkdirTemp("", "rlogin-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	for _, name := range []string{"rlogin", "rlogind"} {
		args := []string{"build", "-o", filepath.Join(dir, name)}
		if raceEnabled {
			args = append(args, "-race")
		}
		cmd := exec.Command("go", append(args, "../cmd/"+name)...)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintf(os.Stderr, "e2e: building %s: %v\n", name, err)
			return 1
		}
	}
	binDir = dir
	return m.Run()
}

// withRaceOptions is a child's environment env with this process's race detector options
// (GORACE) added, unless env is nil (the child inherits them then) or has its own. CI turns off
// the 1 s sleep of a binary built with -race at every exit (atexit_sleep_ms=0, .ci/run), and
// these tests wait for every exit of their rlogind and rlogin.
func withRaceOptions(env []string) []string {
	v, ok := os.LookupEnv("GORACE")
	if !ok || env == nil || slices.ContainsFunc(env, func(kv string) bool { return strings.HasPrefix(kv, "GORACE=") }) {
		return env
	}
	return append(env, "GORACE="+v)
}

// shortTimeout bounds every single wait in these tests: a wait that needs longer is a failure,
// not something to sit out.
const shortTimeout = 20 * time.Second

// daemon is a running rlogind in user mode with its own HOME.
type daemon struct {
	home string
	addr string // 127.0.0.1:port
	port string
	cmd  *exec.Cmd
	log  *termtest.Buffer
	done chan struct{} // closed once cmd has been waited for
	err  error         // cmd's exit error, valid after done
}

// freePort asks the kernel for a loopback port nobody uses right now.
func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, port, _ := net.SplitHostPort(l.Addr().String())
	return port
}

// startDaemon starts rlogind with HOME=home, listening on a fresh loopback port. wrap, if given,
// is a shell snippet run before exec'ing rlogind (for example to ignore signals).
func startDaemon(t *testing.T, home string, wrap string, extra ...string) *daemon {
	t.Helper()
	d := &daemon{home: home, port: freePort(t), log: &termtest.Buffer{}, done: make(chan struct{})}
	d.addr = net.JoinHostPort("127.0.0.1", d.port)
	// -user-mode: the tests run as root in CI, where rlogind would otherwise serve every user.
	args := append([]string{"-user-mode", "-config", "none", "-addr", d.addr}, extra...)
	bin := filepath.Join(binDir, "rlogind")
	if wrap != "" {
		quoted := make([]string, 0, len(args))
		for _, a := range args {
			quoted = append(quoted, "'"+a+"'")
		}
		d.cmd = exec.Command("/bin/sh", "-c", wrap+"; exec "+bin+" "+strings.Join(quoted, " "))
	} else {
		d.cmd = exec.Command(bin, args...)
	}
	d.cmd.Env = []string{"HOME=" + home, "PATH=/usr/local/bin:/usr/bin:/bin", "RLOGIND_SECRET=must-not-leak"}
	// rlogind listens first and makes its keys after: serving is the sign that it is ready.
	d.start(t, `msg="serving logins"`)
	return d
}

// start starts d.cmd with its output in d.log, and waits until the log has ready; the test's
// cleanup stops it.
func (d *daemon) start(t *testing.T, ready string) {
	t.Helper()
	d.cmd.Stdout, d.cmd.Stderr = d.log, d.log
	d.cmd.Env = withRaceOptions(d.cmd.Env)
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		d.err = d.cmd.Wait()
		close(d.done)
	}()
	t.Cleanup(func() { d.stop(t) })
	waitFor(t, "rlogind to log "+ready, func() bool {
		select {
		case <-d.done:
			t.Fatalf("rlogind exited early: %v\n%s", d.err, d.log.String())
		default:
		}
		return strings.Contains(d.log.String(), ready)
	})
}

// stop sends SIGTERM and waits for rlogind to exit, killing it if it does not within the deadline.
func (d *daemon) stop(t *testing.T) {
	select {
	case <-d.done:
		return
	default:
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(shortTimeout):
		_ = d.cmd.Process.Kill()
		<-d.done
		t.Errorf("rlogind did not exit within %v of SIGTERM\n%s", shortTimeout, d.log.String())
	}
}

// hostKeyLine is the daemon's host key as a known_hosts line for its address.
func (d *daemon) hostKeyLine(t *testing.T) string {
	t.Helper()
	pub, err := os.ReadFile(filepath.Join(d.home, ".rlogin", "rlogind_host_ed25519_key.pub"))
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(pub))
	return fmt.Sprintf("[127.0.0.1]:%s %s %s\n", d.port, f[0], f[1])
}

// children lists the pids whose parent is the daemon.
func (d *daemon) children() []int {
	var pids []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// The command name is in parentheses and may hold spaces; fields after it are fixed.
		rest := stat[bytes.LastIndexByte(stat, ')')+2:]
		f := strings.Fields(string(rest))
		if len(f) > 1 && f[1] == strconv.Itoa(d.cmd.Process.Pid) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// newHome makes a HOME directory for a test. Its cleanup first waits until no process works in
// it any more (a shell that lost its daemon still writes its history on the way out), so that
// removing the directory does not race with them.
func newHome(t *testing.T) string {
	t.Helper()
	home := t.TempDir()
	t.Cleanup(func() {
		waitFor(t, "the processes working in "+home+" to end", func() bool {
			pids := processesIn(home)
			for _, pid := range pids {
				cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
				t.Logf("still in %s: pid %d %q", home, pid, cmdline)
			}
			return len(pids) == 0
		})
	})
	return home
}

// processesIn lists the pids whose working directory is dir or below it.
func processesIn(dir string) []int {
	var pids []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cwd, err := os.Readlink(filepath.Join("/proc", e.Name(), "cwd"))
		if err == nil && (cwd == dir || strings.HasPrefix(cwd, dir+"/")) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// terminal is a pty the test owns, with a client running on its slave side.
type terminal struct {
	t      *testing.T
	master *os.File
	slave  *os.File
	cmd    *exec.Cmd
	out    *termtest.Buffer
	mark   int // expect searches out from here
	// initial is the terminal state before the client started, to compare after it exits.
	initial unix.Termios
	exited  chan struct{}
	err     error
	readWG  sync.WaitGroup
}

// startTerminal runs bin with args in a new pty of 24x80 as its controlling terminal.
func startTerminal(t *testing.T, env []string, bin string, args ...string) *terminal {
	t.Helper()
	return startTerminalWith(t, pty.Winsize{Rows: 24, Cols: 80}, copyOutput, env, bin, args...)
}

// startTerminalWith runs bin with args in a new pty of the given size as its controlling
// terminal; copyOut moves what appears on the pty into the terminal's output, until the pty closes.
func startTerminalWith(t *testing.T, size pty.Winsize, copyOut func(w io.Writer, r io.Reader), env []string, bin string, args ...string) *terminal {
	t.Helper()
	master, slave, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	if err := pty.Setsize(master, &size); err != nil {
		t.Fatal(err)
	}
	tm := &terminal{t: t, master: master, slave: slave, out: &termtest.Buffer{}, exited: make(chan struct{})}
	tm.initial = tm.termios()
	tm.cmd = exec.Command(bin, args...)
	tm.cmd.Env = withRaceOptions(env)
	tm.cmd.Stdin, tm.cmd.Stdout, tm.cmd.Stderr = slave, slave, slave
	tm.cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true}
	if err := tm.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	tm.readWG.Add(1)
	go func() {
		defer tm.readWG.Done()
		copyOut(tm.out, tm.master)
	}()
	go func() {
		tm.err = tm.cmd.Wait()
		close(tm.exited)
	}()
	t.Cleanup(tm.close)
	return tm
}

// copyOutput copies the pty's output as fast as it comes.
func copyOutput(w io.Writer, r io.Reader) {
	_, _ = io.Copy(w, r)
}

func (tm *terminal) close() {
	select {
	case <-tm.exited:
	default:
		_ = tm.cmd.Process.Kill()
		<-tm.exited
	}
	_ = tm.slave.Close() // the master's reader then gets EIO
	tm.readWG.Wait()
	_ = tm.master.Close()
}

// send types s into the terminal.
func (tm *terminal) send(s string) {
	tm.t.Helper()
	if _, err := tm.master.Write([]byte(s)); err != nil {
		tm.t.Fatalf("typing %q: %v", s, err)
	}
}

// expect waits until the output after the mark matches re and moves the mark past the match.
func (tm *terminal) expect(re string) []string {
	tm.t.Helper()
	return tm.expectWithin(re, shortTimeout)
}

func (tm *terminal) expectWithin(re string, timeout time.Duration) []string {
	tm.t.Helper()
	m, ok := tm.out.Expect(&tm.mark, regexp.MustCompile(re), timeout)
	if !ok {
		data, _ := tm.out.Snapshot()
		tm.t.Fatalf("timed out after %v waiting for %q; output after mark:\n%q", timeout, re, tail(data[tm.mark:], 2000))
	}
	return m
}

// expectLiteral waits for lit after the mark without rescanning what it has already seen, so it
// stays cheap while a flood of output arrives, and moves the mark past it.
func (tm *terminal) expectLiteral(lit string) {
	tm.t.Helper()
	deadline := time.Now().Add(shortTimeout)
	from := tm.mark
	for {
		data, changed := tm.out.Snapshot()
		if i := bytes.Index(data[from:], []byte(lit)); i >= 0 {
			tm.mark = from + i + len(lit)
			return
		}
		from = max(tm.mark, len(data)-len(lit)+1)
		if !termtest.WaitChange(changed, deadline) {
			tm.t.Fatalf("timed out waiting for %q; output after mark:\n%q", lit, tail(data[tm.mark:], 2000))
		}
	}
}

// readBytes waits for n bytes of output after the mark and returns them.
func (tm *terminal) readBytes(n int) []byte {
	tm.t.Helper()
	deadline := time.Now().Add(shortTimeout)
	for {
		data, changed := tm.out.Snapshot()
		if len(data)-tm.mark >= n {
			b := data[tm.mark : tm.mark+n]
			tm.mark += n
			return b
		}
		if !termtest.WaitChange(changed, deadline) {
			tm.t.Fatalf("timed out waiting for %d bytes; have %d", n, len(data)-tm.mark)
		}
	}
}

// wait waits for the client to exit and returns its exit status.
func (tm *terminal) wait() int {
	tm.t.Helper()
	select {
	case <-tm.exited:
	case <-time.After(shortTimeout):
		data, _ := tm.out.Snapshot()
		tm.t.Fatalf("client did not exit within %v; output:\n%q", shortTimeout, tail(data, 2000))
	}
	var ee *exec.ExitError
	if errors.As(tm.err, &ee) {
		return ee.ExitCode()
	}
	if tm.err != nil {
		tm.t.Fatal(tm.err)
	}
	return 0
}

// termios is the current terminal state of the client's side of the pty.
func (tm *terminal) termios() unix.Termios {
	tm.t.Helper()
	ts, err := unix.IoctlGetTermios(int(tm.slave.Fd()), unix.TCGETS)
	if err != nil {
		tm.t.Fatal(err)
	}
	return *ts
}

// waitFor polls cond until it holds or shortTimeout passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	termtest.WaitFor(t, shortTimeout, what, cond)
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}
