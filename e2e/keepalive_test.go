package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rlogin-go/rlogin/internal/linkemu"
	"github.com/rlogin-go/rlogin/internal/termtest"
)

// Short keepalive bounds for the tests: the server gives a silent client up after 1.5 s, the
// client a silent server after 2 s (rlogin counts in whole seconds).
var (
	serverAlive = []string{"-client-alive-interval", "500ms", "-client-alive-count-max", "3"}
	clientAlive = []string{"-o", "ServerAliveInterval=1", "-o", "ServerAliveCountMax=2"}
)

// aliveSlack is what the tests allow beyond a keepalive bound for a busy machine: generous, not a
// figure of merit.
const aliveSlack = 10 * time.Second

// shellPID asks the remote shell for its pid.
func shellPID(t *testing.T, tm *terminal) int {
	t.Helper()
	tm.send("echo PID=$$.\r")
	m := tm.expect(`PID=(\d+)\.`)
	pid, _ := strconv.Atoi(m[1])
	return pid
}

// checkNoAnswer checks that rlogin gave up on a silent server as it should: status 255, the
// terminal restored, and the one line that says so.
func checkNoAnswer(t *testing.T, tm *terminal, start time.Time) {
	t.Helper()
	select {
	case <-tm.exited:
		t.Logf("rlogin exited %v after the blackhole (bound 2 s)", time.Since(start))
	case <-time.After(2*time.Second + aliveSlack):
		data, _ := tm.out.Snapshot()
		t.Fatalf("rlogin still runs %v after the blackhole; output:\n%q", time.Since(start), tail(data, 2000))
	}
	afterCut(t, tm) // status 255, terminal restored, one line of its own: this one
	data, _ := tm.out.Snapshot()
	if want := "\nrlogin: no answer from 127.0.0.1 for 2 s: connection lost\r\n"; !strings.HasSuffix(string(data), want) {
		t.Errorf("rlogin's last words: %q, want %q", tail(data, 200), want)
	}
}

// TestBlackholeNoticedOnBothEnds: a path that goes silent in the middle of a session (the link
// holds every byte, closes nothing) is noticed by both ends within their keepalive bounds: rlogin
// says so and exits 255, rlogind logs the end of the session with the client's address and reaps
// the shell. With resume off (-o Resume=no); with resume, TestCounterSurvivesCutAndBlackhole.
func TestBlackholeNoticedOnBothEnds(t *testing.T) {
	d := startDaemon(t, newHome(t), "", serverAlive...)
	link := linkemu.New(linkemu.Profile{Delay: wanRTT / 2})
	tm := rloginVia(t, d, link, append([]string{"-o", "Resume=no"}, clientAlive...)...)
	pid := shellPID(t, tm)

	link.Blackhole()
	start := time.Now()
	checkNoAnswer(t, tm, start)
	serverGaveUp(t, d.log.String, `msg="session ended".*remote=127\.0\.0\.1:\d+.*no answer from the peer for 1\.5s`, start)
	waitFor(t, "the shell to be reaped", func() bool {
		_, err := os.Stat("/proc/" + strconv.Itoa(pid))
		return os.IsNotExist(err)
	})
}

// serverGaveUp waits for the log line (re) in which rlogind says that it gave up on the silent
// client, and checks from the line's time that it did so within its bound (1.5 s) of the
// blackhole at start, and the slack. (Not a lower bound: the server last heard the client a
// moment before the blackhole, and counts from then.)
func serverGaveUp(t *testing.T, logText func() string, re string, start time.Time) {
	t.Helper()
	line := regexp.MustCompile(`time=(\S+) .*` + re)
	var m []string
	deadline := time.Now().Add(shortTimeout)
	for m = line.FindStringSubmatch(logText()); m == nil; m = line.FindStringSubmatch(logText()) {
		if time.Now().After(deadline) {
			t.Fatalf("rlogind's log does not say that it gave up on the silent client:\n%s", logText())
		}
		time.Sleep(20 * time.Millisecond)
	}
	at, err := time.Parse(time.RFC3339Nano, m[1])
	if err != nil {
		t.Fatalf("log time %q: %v", m[1], err)
	}
	d := at.Sub(start)
	t.Logf("rlogind gave up on the client %v after the blackhole (bound 1.5 s)", d)
	if d > 1500*time.Millisecond+aliveSlack {
		t.Errorf("rlogind gave up %v after the blackhole, beyond its bound of 1.5 s and the slack", d)
	}
}

// TestQuietSessionSurvives: a healthy session across a WAN round trip, with no byte typed or
// printed for many keepalive intervals of both ends, goes on as before.
func TestQuietSessionSurvives(t *testing.T) {
	d := startDaemon(t, newHome(t), "", serverAlive...)
	tm := rloginVia(t, d, linkemu.New(linkemu.Profile{Delay: wanRTT / 2}), clientAlive...)
	// 12 of the server's intervals, 6 of the client's: each bound passed 3 times over.
	idleThenExit(t, tm, d, 6*time.Second)
}

// idleThenExit leaves the session idle for idle (on purpose: the time is what is tested), then
// checks that the shell still answers and that it exits with status 0.
func idleThenExit(t *testing.T, tm *terminal, d *daemon, idle time.Duration) {
	t.Helper()
	time.Sleep(idle)
	tm.ready()
	tm.send("exit\r")
	if code := tm.wait(); code != 0 {
		t.Fatalf("rlogin exited %d after %v idle, want 0\n%s", code, idle, d.log.String())
	}
}

// TestKeepaliveAndOldPeers: an old rlogin with a new rlogind that probes, and a new rlogin with
// an old rlogind: neither sends the other a probe it does not know, and a session idle for
// several bounds goes on.
func TestKeepaliveAndOldPeers(t *testing.T) {
	oldRlogin, oldRlogind := oldRelease(t, beforeCommands)
	t.Run("old client, new server", func(t *testing.T) {
		home := newHome(t)
		d := startDaemon(t, home, "", serverAlive...)
		writeFile(t, filepath.Join(home, ".rlogin", "known_hosts"), d.hostKeyLine(t))
		tm := startTerminal(t, clientEnv(home), oldRlogin, "-p", d.port, "127.0.0.1")
		tm.ready()
		idleThenExit(t, tm, d, 3*time.Second) // two of the server's bounds
	})
	t.Run("new client, old server", func(t *testing.T) {
		home := newHome(t)
		d := &daemon{home: home, port: freePort(t), log: &termtest.Buffer{}, done: make(chan struct{})}
		d.addr = "127.0.0.1:" + d.port
		d.cmd = exec.Command(oldRlogind, "-user-mode", "-config", "none", "-addr", d.addr)
		d.cmd.Env = []string{"HOME=" + home, "PATH=/usr/local/bin:/usr/bin:/bin"}
		d.start(t, `msg="serving logins"`)
		tm := rlogin(t, d, home, clientAlive...)
		tm.expect(`\(yes/no\)\? `)
		tm.send("yes\r")
		tm.ready()
		idleThenExit(t, tm, d, 5*time.Second) // two of the client's bounds
	})
}

// TestPrivsepBlackhole: with privilege separation the network process serves the session, and
// it is the one that probes the client: a blackholed path ends the session there too, the log
// says why, and the shell goes (with resume off: -o Resume=no).
func TestPrivsepBlackhole(t *testing.T) {
	privsepBlackhole(t, filepath.Join(binDir, "rlogind"))
}

// privsepBlackhole is TestPrivsepBlackhole with the rlogind binary bin.
func privsepBlackhole(t *testing.T, bin string) {
	t.Helper()
	user, dir, keyFile := privsepUser(t, "rlt-ka-e2e")
	conf := filepath.Join(dir, "rlogind.conf")
	writeFile(t, conf, "privilege-separation yes\npassword-authentication no\nstop-grace 2s\nclient-alive-interval 500ms\n")
	port := freePort(t)
	startRlogind, logText := systemRlogind(t, bin, conf, port)
	d := startRlogind()
	d.addr = "127.0.0.1:" + port

	link := linkemu.New(linkemu.Profile{Delay: wanRTT / 2})
	d.home = newHome(t) // the client's
	tm := rloginVia(t, d, link, append([]string{"-i", keyFile, "-l", user.Name, "-o", "Resume=no"}, clientAlive...)...)
	pid := shellPID(t, tm)

	link.Blackhole()
	start := time.Now()
	checkNoAnswer(t, tm, start)
	// The monitor logs what the network process, which ran the session, said as it ended.
	serverGaveUp(t, logText, `remote=127\.0\.0\.1:\d+.*no answer from the peer for 1\.5s`, start)
	waitFor(t, "the shell to be reaped", func() bool {
		_, err := os.Stat("/proc/" + strconv.Itoa(pid))
		return os.IsNotExist(err)
	})
}
