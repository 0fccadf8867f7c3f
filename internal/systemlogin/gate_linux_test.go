package systemlogin

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rlogin-go/rlogin/internal/logintest"
	"github.com/rlogin-go/rlogin/internal/termtest"
	"github.com/rlogin-go/rlogin/pty"
	"github.com/rlogin-go/rlogin/session"
)

func TestLineLen(t *testing.T) {
	for in, want := range map[string]int{
		"": 0, "secret": 6, "secret\r": 7, "pw\rroot\r": 3, "\x7f": 1, "a\x04b": 2, "\x03": 1, "é\n": 3,
	} {
		if got := lineLen([]byte(in)); got != want {
			t.Errorf("lineLen(%q) = %d, want %d", in, got, want)
		}
	}
}

// fakeLoginScript plays login(1)'s conversation on its terminal: a password prompt with echo
// off; after "good", it hands the terminal to uid $GATE_UID (chown, as login(1) does) and reads
// lines like a shell; after anything else it says "Login incorrect" and asks for a user name
// with echo on, as login(1) does. It appends what it reads to $GATE_OUT.
const fakeLoginScript = `
printf 'Password: '
stty -echo
IFS= read -r pw
stty echo
echo "password:$pw" >> "$GATE_OUT"
if [ "$pw" = good ]; then
	chown "$GATE_UID" "$(tty)"
	printf 'WELCOME\n'
	while IFS= read -r line; do echo "shell:$line" >> "$GATE_OUT"; done
	exit 0
fi
printf '\nLogin incorrect\nlogin: '
IFS= read -r name
echo "name:$name" >> "$GATE_OUT"
`

// gateRun is the fake login(1) running behind a loginGate.
type gateRun struct {
	t    *testing.T
	p    *pty.PTY
	gate *loginGate
	out  string           // GATE_OUT
	log  *termtest.Buffer // the gate's log
	term *termtest.Buffer // what the fake login wrote to its terminal
	read chan struct{}
	// failures counts the gate's onFail calls, opens its onOpen calls.
	failures, opens atomic.Int32
}

func startGate(t *testing.T, uid int, script string) *gateRun {
	return startGateUntil(t, uid, script, time.Now().Add(shortTimeout))
}

// startGateUntil is startGate with the login grace time ending at deadline.
func startGateUntil(t *testing.T, uid int, script string, deadline time.Time) *gateRun {
	t.Helper()
	logintest.CheckNoLeftovers(t)
	dir := t.TempDir()
	g := &gateRun{t: t, out: filepath.Join(dir, "out"), log: &termtest.Buffer{}, term: &termtest.Buffer{}, read: make(chan struct{})}
	cmd := exec.Command("/bin/sh", "-c", script)
	cmd.Env = []string{"PATH=/usr/bin:/bin", "GATE_OUT=" + g.out, "GATE_UID=" + strconv.Itoa(uid)}
	p, err := pty.Start(cmd, pty.Size{Rows: 24, Cols: 80})
	if err != nil {
		t.Fatal(err)
	}
	g.p = p
	tty := ttyOf(p.Pid())
	log := slog.New(slog.NewTextHandler(g.log, nil))
	g.gate, err = newLoginGate(log, p, tty, uid, deadline, func() { g.failures.Add(1) }, func() { g.opens.Add(1) })
	if err != nil {
		p.Hangup()
		_ = p.Close()
		_, _ = p.Wait()
		t.Fatal(err)
	}
	go func() {
		defer close(g.read)
		buf := make([]byte, 4096)
		for {
			n, _, err := p.ReadOutput(buf)
			_, _ = g.term.Write(buf[:n])
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() {
		g.gate.Hangup()
		g.gate.close()
		select {
		case <-g.read:
		case <-time.After(shortTimeout):
			t.Error("the fake login's output did not end")
		}
		_ = p.Close()
		_, _ = p.Wait()
		if t.Failed() {
			t.Logf("gate log:\n%s\nterminal:\n%q", g.log.String(), g.term.String())
		}
	})
	return g
}

// write calls the gate's Write under a watchdog and returns its error.
func (g *gateRun) write(s string) error {
	g.t.Helper()
	done := make(chan error, 1)
	go func() {
		_, err := g.gate.Write([]byte(s))
		done <- err
	}()
	select {
	case err := <-done:
		return err
	case <-time.After(shortTimeout):
		g.gate.Hangup() // unblocks Write
		<-done
		g.t.Fatalf("Write(%q) did not return within %v", s, shortTimeout)
		return nil
	}
}

// reads returns what the fake login has read so far.
func (g *gateRun) reads() string {
	b, _ := os.ReadFile(g.out)
	return string(b)
}

func (g *gateRun) waitTerm(re string) {
	g.t.Helper()
	mark := 0
	if _, ok := g.term.Expect(&mark, regexp.MustCompile(re), shortTimeout); !ok {
		g.t.Fatalf("timed out waiting for %q on the terminal: %q", re, g.term.String())
	}
}

// TestGateOneUserOnly pastes a wrong password, a user name and that user's password at once, the
// attack the gate exists for: login(1) must get the password and nothing else.
func TestGateOneUserOnly(t *testing.T) {
	g := startGate(t, os.Getuid(), fakeLoginScript)
	if err := g.write("wrong\rroot\rrootpw\r"); err != nil {
		t.Fatalf("Write: %v", err)
	}
	g.waitTerm(`login: `)
	select {
	case <-g.read:
	case <-time.After(shortTimeout):
		t.Fatal("the login was not ended")
	}
	if got := g.reads(); got != "password:wrong\n" {
		t.Errorf("the fake login read %q, want only the password", got)
	}
	mark := 0
	if _, ok := g.log.Expect(&mark, regexp.MustCompile(`authentication failed.*asked for something other than a secret`), shortTimeout); !ok {
		t.Errorf("log: %s", g.log.String())
	}
	if n := g.failures.Load(); n != 1 {
		t.Errorf("onFail called %d times, want 1", n)
	}
	if n := g.opens.Load(); n != 0 {
		t.Errorf("onOpen called %d times after a failed login, want 0", n)
	}
}

// TestGateAsksForNameWithoutInput checks that the watcher ends a login that asks for a user name
// even when the client types nothing more.
func TestGateAsksForNameWithoutInput(t *testing.T) {
	g := startGate(t, os.Getuid(), fakeLoginScript)
	if err := g.write("wrong\r"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-g.read:
	case <-time.After(shortTimeout):
		t.Fatal("the login was not ended")
	}
	if got := g.reads(); got != "password:wrong\n" {
		t.Errorf("the fake login read %q", got)
	}
}

// TestGateTypeahead sends the password before the prompt, one keystroke at a time, and more
// input after it: the gate holds what login(1) is not waiting for, and passes everything once
// the terminal belongs to the user.
func TestGateTypeahead(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the fake login chowns its terminal")
	}
	g := startGate(t, 65534, fakeLoginScript)
	for _, k := range []string{"g", "o", "o", "d", "\r", "ls -l\r"} {
		if err := g.write(k); err != nil {
			t.Fatalf("Write(%q): %v", k, err)
		}
	}
	if err := g.write("second\r"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the shell to read both lines", func() bool {
		return g.reads() == "password:good\nshell:ls -l\nshell:second\n"
	})
	mark := 0
	if _, ok := g.log.Expect(&mark, regexp.MustCompile(`authentication succeeded`), shortTimeout); !ok {
		t.Errorf("log: %s", g.log.String())
	}
	if n := g.failures.Load(); n != 0 {
		t.Errorf("onFail called %d times after a successful login", n)
	}
	if n := g.opens.Load(); n != 1 {
		t.Errorf("onOpen called %d times after a successful login, want 1", n)
	}
}

// TestGateRootLogin checks that the gate sees the session start when the user is root, whose
// terminal changes owner from root to root: login(1)'s chown changes its ctime.
func TestGateRootLogin(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	g := startGate(t, 0, fakeLoginScript)
	// The kernel stamps ctime with a coarse clock (one tick, at most 10 ms): wait until that
	// clock is past the stamp the gate recorded, so that the chown gets a later one.
	after := time.Unix(g.gate.startCtime.Unix()).Add(20 * time.Millisecond)
	waitFor(t, "the clock to pass the terminal's ctime", func() bool { return time.Now().After(after) })
	if err := g.write("good\rid\r"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the shell to read", func() bool { return strings.Contains(g.reads(), "shell:id\n") })
}

// TestGateTryWrite checks the direct write path that session.Serve prefers: it takes nothing
// before the session has started, and everything after.
func TestGateTryWrite(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the fake login chowns its terminal")
	}
	g := startGate(t, 65534, fakeLoginScript)
	g.waitTerm(`Password: `)
	if n, err := g.gate.TryWrite([]byte("good\r")); n != 0 || err != nil {
		t.Fatalf("TryWrite before the session: %d, %v; want 0, nil", n, err)
	}
	if g.gate.FlushesOutput([]byte{3}) {
		t.Error("FlushesOutput(^C) before the session: true; the gate holds that input, it flushes nothing now")
	}
	if k := g.gate.AppendFlushKeys(nil); len(k) != 0 {
		t.Errorf("AppendFlushKeys before the session: %q; the gate holds ^C for login(1), so the client must not discard its output at one", k)
	}
	if err := g.write("good\r"); err != nil {
		t.Fatal(err)
	}
	g.waitTerm(`WELCOME`)
	waitFor(t, "the gate to open", func() bool {
		n, err := g.gate.TryWrite(nil)
		return n == 0 && err == nil && g.gate.isOpen()
	})
	if n, err := g.gate.TryWrite([]byte("direct\r")); n != 7 || err != nil {
		t.Fatalf("TryWrite in the session: %d, %v", n, err)
	}
	waitFor(t, "the shell to read", func() bool { return g.reads() == "password:good\nshell:direct\n" })
	// In the session, ^C goes to the terminal, which flushes its output (signals are on): the
	// server must know, to keep the prompt that follows the flush.
	if !g.gate.FlushesOutput([]byte{3}) {
		t.Error("FlushesOutput(^C) in the session: false, want the PTY's answer (true)")
	}
	// And the client is told so, to discard its own terminal's pending output at a ^C.
	if k := g.gate.AppendFlushKeys(nil); !bytes.Contains(k, []byte{3}) {
		t.Errorf("AppendFlushKeys in the session: %q, want the PTY's (with ^C)", k)
	}
}

// The optional Terminal methods that a key login's pty has: a password login's session must not
// lose them by going through the gate.
var (
	_ session.FlushPredictor  = (*loginGate)(nil)
	_ session.FlushKeyer      = (*loginGate)(nil)
	_ session.OutputMarker    = (*loginGate)(nil)
	_ session.OutputNowReader = (*loginGate)(nil)
	_ session.TryWriter       = (*loginGate)(nil)
)

// TestGateGraceTime checks that a login still at the password prompt at the end of the login
// grace time is ended.
func TestGateGraceTime(t *testing.T) {
	g := startGateUntil(t, os.Getuid(), fakeLoginScript, time.Now().Add(300*time.Millisecond))
	g.waitTerm(`Password: `)
	select {
	case <-g.read:
	case <-time.After(shortTimeout):
		t.Fatal("the login was not ended at the login grace time")
	}
	mark := 0
	if _, ok := g.log.Expect(&mark, regexp.MustCompile(`authentication failed.*login grace time exceeded`), shortTimeout); !ok {
		t.Errorf("log: %s", g.log.String())
	}
	if n := g.failures.Load(); n != 1 {
		t.Errorf("onFail called %d times, want 1", n)
	}
}

// TestGateHoldsBounded checks that Write queues input while login(1) is busy, without waiting,
// up to maxHeld bytes; past that it waits, until the session is hung up.
func TestGateHoldsBounded(t *testing.T) {
	g := startGate(t, os.Getuid(), "sleep 1000") // busy, never asking
	chunk := []byte(strings.Repeat("x", 1024))
	for range maxHeld / len(chunk) {
		if err := g.write(string(chunk)); err != nil { // write has a watchdog: it must not wait
			t.Fatal(err)
		}
	}
	done := make(chan error, 1)
	go func() {
		_, err := g.gate.Write(chunk)
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("Write past maxHeld returned at once: %v", err)
	case <-time.After(5 * gatePoll): // a few of the watcher's probes: it must still wait
	}
	g.gate.Hangup()
	select {
	case err := <-done:
		if !errors.Is(err, errGateClosed) {
			t.Fatalf("Write after Hangup: %v", err)
		}
	case <-time.After(shortTimeout):
		t.Fatal("Hangup did not unblock Write")
	}
	if _, err := g.gate.Write([]byte("late")); !errors.Is(err, errGateClosed) {
		t.Errorf("Write after Hangup: %v, want errGateClosed", err)
	}
}

var _ io.Writer = (*loginGate)(nil)

// TestGateProbeSeesChownAfterFirstLook: login(1) may chown the terminal and start the shell,
// which blocks reading with echo on, between probe's first look at the terminal and its look at
// login(1). probe must report the session started, not "asks for a user name", which ended a
// good login on a loaded machine (TestGateTypeahead).
func TestGateProbeSeesChownAfterFirstLook(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the fake login chowns its terminal")
	}
	logintest.CheckNoLeftovers(t)
	const uid = 65534
	cmd := exec.Command("/bin/sh", "-c", `read x; chown `+strconv.Itoa(uid)+` "$(tty)"; read y`)
	p, err := pty.Start(cmd, pty.Size{Rows: 24, Cols: 80})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.Hangup()
		_ = p.Close()
		_, _ = p.Wait()
	})
	tty := ttyOf(p.Pid())
	var st unix.Stat_t
	if err := unix.Stat(tty, &st); err != nil {
		t.Fatal(err)
	}
	proc := "/proc/" + strconv.Itoa(p.Pid())
	waitFor(t, "the fake login to read", func() bool { _, ok := blockedInRead(proc); return ok })
	g := &loginGate{p: p, pid: p.Pid(), tty: tty, uid: uid, startUID: st.Uid, startCtime: st.Ctim, lastPass: -1}
	g.afterFirstLook = func() {
		if _, err := p.Write([]byte("go\n")); err != nil {
			t.Error(err)
		}
		waitFor(t, "the chown and the shell's read", func() bool {
			var now unix.Stat_t
			if unix.Stat(tty, &now) != nil || now.Uid != uid {
				return false
			}
			_, ok := blockedInRead(proc)
			return ok
		})
	}
	if r := g.probe(); r.state != gateOpen {
		t.Fatalf("probe: state %d, want gateOpen (%d)", r.state, gateOpen)
	}
}
