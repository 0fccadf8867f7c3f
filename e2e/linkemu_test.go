package e2e

import (
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rlogin-go/rlogin/internal/linkemu"
)

// wanRTT is the round trip of the emulated link of these tests: a long-haul path.
const wanRTT = 100 * time.Millisecond

// cutDeadline bounds how long rlogin may take to notice that the path was cut. The proxy resets
// both connections, so the client sees the RST after the emulated delay at most; the deadline is
// generous for a busy machine, not a figure of merit.
const cutDeadline = 10 * time.Second

// rloginVia starts rlogin (with args) against d through a proxy of link, and answers the
// host-key question (the proxy's port is a new host to the client). It returns the terminal
// once the shell runs commands.
func rloginVia(t *testing.T, d *daemon, link *linkemu.Link, args ...string) *terminal {
	t.Helper()
	return rloginBinVia(t, filepath.Join(binDir, "rlogin"), d, link, args...)
}

// rloginBinVia is rloginVia with the rlogin binary bin (an old release's).
func rloginBinVia(t *testing.T, bin string, d *daemon, link *linkemu.Link, args ...string) *terminal {
	t.Helper()
	tm := startTerminal(t, clientEnv(d.home), bin, append(args, "-p", linkPort(t, d, link), "127.0.0.1")...)
	tm.expect(`\(yes/no\)\? `)
	tm.send("yes\r")
	tm.ready()
	return tm
}

// linkPort starts a proxy of link in front of d, for the test's duration, and returns its port.
func linkPort(t *testing.T, d *daemon, link *linkemu.Link) string {
	t.Helper()
	p, err := link.Listen("127.0.0.1:0", d.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	_, port, _ := net.SplitHostPort(p.Addr().String())
	return port
}

// TestLoginAcrossWAN logs in across an emulated 100 ms round trip, runs a command and logs out.
func TestLoginAcrossWAN(t *testing.T) {
	d := startDaemon(t, newHome(t), "")
	start := time.Now()
	tm := rloginVia(t, d, linkemu.New(linkemu.Profile{Delay: wanRTT / 2}))
	t.Logf("login across a %v round trip: shell answered after %v", wanRTT, time.Since(start))
	tm.send("echo sum=$((6*7)); seq 1000 | tail -n 1\r")
	tm.expect(`sum=42\r\n1000\r\n`)
	tm.send("exit\r")
	if code := tm.wait(); code != 0 {
		t.Fatalf("rlogin exited %d after exit, want 0", code)
	}
}

// TestCutPathEndsSession cuts the path in the middle of a session with resume off (-o
// Resume=no): rlogin ends, saying why in one line. With resume, the session goes on:
// TestCounterSurvivesCutAndBlackhole.
func TestCutPathEndsSession(t *testing.T) {
	d := startDaemon(t, newHome(t), "")
	link := linkemu.New(linkemu.Profile{Delay: wanRTT / 2})
	tm := rloginVia(t, d, link, "-o", "Resume=no")
	tm.send("echo BEFORE$((40+2))\r")
	tm.expect(`BEFORE42`)
	link.Cut()
	afterCut(t, tm)
}

// afterCut checks what rlogin does when its path is cut and it does not resume: it exits with
// status 255 within cutDeadline, with the terminal restored and a one-line reason as the last
// thing it wrote.
func afterCut(t *testing.T, tm *terminal) {
	t.Helper()
	start := time.Now()
	select {
	case <-tm.exited:
		t.Logf("rlogin exited %v after the cut", time.Since(start))
	case <-time.After(cutDeadline):
		data, _ := tm.out.Snapshot()
		t.Fatalf("rlogin still runs %v after the path was cut; output:\n%q", cutDeadline, tail(data, 2000))
	}
	if code := tm.wait(); code != 255 {
		t.Errorf("rlogin exited %d after the path was cut, want 255", code)
	}
	if got := tm.termios(); got != tm.initial {
		t.Errorf("terminal not restored:\nbefore %+v\nafter  %+v", tm.initial, got)
	}
	// The reason: a line of its own, the only line rlogin wrote after the shell's last output.
	m := tm.expect(`(?m)^rlogin: [^\r\n]+\r?\n`)
	t.Logf("rlogin's last line after the cut: %q", m[0])
	data, _ := tm.out.Snapshot()
	if n := strings.Count(string(data), "rlogin: "); n != 1 {
		t.Errorf("rlogin wrote %d lines of its own, want one reason:\n%q", n, tail(data, 2000))
	}
}
