package e2e

import (
	"bytes"
	"crypto/ed25519"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/rlogin-go/rlogin/internal/linkemu"
)

// Sessions that survive (issue 15), with the real binaries: rlogin on a pty, rlogind, and the
// link emulator between them.

// The outages of TestCounterSurvivesCutAndBlackhole. The issue asks for a blackhole of 90 s: with
// the default bounds (rlogin gives a silent server up after 45 s, a try to reconnect after 20 s)
// both ends give the path up for dead, rlogin's first try times out in the dead path, and a later
// one resumes once the path is back. With the tests' bounds (the server gives a silent client up
// after 1.5 s, the client a silent server after 2 s and a try after 2 s: -o ConnectTimeout=2)
// 10 s takes the same path, with tries timed out in it and the backoff between them. What 90 s
// adds beyond that is more of the same tries.
const (
	cutOutage       = 5 * time.Second
	blackholeOutage = 90 * time.Second
)

// detachFlags keep a detached session for a minute: longer than any outage of these tests.
var detachFlags = []string{"-detach-timeout", "5m"}

// resumeServer is an rlogind that keeps detached sessions, as a test of resume sees it.
type resumeServer struct {
	d       *daemon       // port and addr to reach it; home is the client's HOME
	logText func() string // rlogind's log so far
	home    string        // the remote user's home: where the shell starts
	args    []string      // what rlogin needs besides -p and the host (-i and -l as root)
	hostKey ed25519.PublicKey
}

// userResumeServer starts rlogind in user mode with the tests' keepalive bounds, detachFlags and
// extra; the client shares its HOME, as in the README's quick start.
func userResumeServer(t *testing.T, extra ...string) *resumeServer {
	t.Helper()
	home := newHome(t)
	flags := append(append(append([]string{}, serverAlive...), detachFlags...), extra...)
	d := startDaemon(t, home, "", flags...)
	// The client knows the daemon's key: rlogin -R and logins without a link ask nothing.
	writeFile(t, filepath.Join(home, ".rlogin", "known_hosts"), d.hostKeyLine(t))
	return &resumeServer{d: d, logText: d.log.String, home: home,
		hostKey: daemonHostKey(t, filepath.Join(home, ".rlogin", "rlogind_host_ed25519_key.pub"))}
}

// rlogin starts rlogin against s through link (a new host to the client: the question is
// answered), with the tests' keepalive bounds, on a terminal wide enough for its whole status
// line, and waits for the shell.
func (s *resumeServer) rlogin(t *testing.T, link *linkemu.Link, args ...string) *terminal {
	t.Helper()
	p, err := link.Listen("127.0.0.1:0", s.d.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	_, port, _ := net.SplitHostPort(p.Addr().String())
	args = append(append(append(append([]string{}, s.args...), clientAlive...), args...), "-p", port, "127.0.0.1")
	tm := startTerminalWith(t, pty.Winsize{Rows: 24, Cols: 200}, copyOutput, clientEnv(s.d.home), filepath.Join(binDir, "rlogin"), args...)
	tm.expect(`\(yes/no\)\? `) // the proxy's port is a new host to the client
	tm.send("yes\r")
	tm.ready()
	return tm
}

// rloginDirect starts rlogin against s's port itself, without a link, with args (the host key
// is known already, or the caller answers).
func (s *resumeServer) rloginDirect(t *testing.T, args ...string) *terminal {
	t.Helper()
	args = append(append(append([]string{}, s.args...), args...), "-p", s.d.port, "127.0.0.1")
	return startTerminal(t, clientEnv(s.d.home), filepath.Join(binDir, "rlogin"), args...)
}

// logLine waits until rlogind's log has a line that matches re, after the first skip such
// lines, and returns the line and its time.
func (s *resumeServer) logLine(t *testing.T, re string, skip int) (string, time.Time) {
	t.Helper()
	line := regexp.MustCompile(`(?m)^time=(\S+) .*` + re + `.*$`)
	var ms [][]string
	deadline := time.Now().Add(shortTimeout)
	for ms = line.FindAllStringSubmatch(s.logText(), -1); len(ms) <= skip; ms = line.FindAllStringSubmatch(s.logText(), -1) {
		if time.Now().After(deadline) {
			t.Fatalf("rlogind did not log %q (%d before) within %v:\n%s", re, skip, shortTimeout, s.logText())
		}
		time.Sleep(10 * time.Millisecond)
	}
	at, err := time.Parse(time.RFC3339Nano, ms[skip][1])
	if err != nil {
		t.Fatalf("log time %q: %v", ms[skip][1], err)
	}
	return ms[skip][0], at
}

// The status line of rlogin reconnecting, and the end of it (internal/client/status.go): each
// redraw is a carriage return, the text and an erase to the end of the line; the line that stays
// ends with CR LF.
var (
	statusLost        = `rlogin: connection to 127\.0\.0\.1 lost`
	statusReconnected = `rlogin: reconnected[^\r\n]*\x1b\[K\r\n`
	statusRegion      = regexp.MustCompile(`\rrlogin: connection to 127\.0\.0\.1 lost[^\n]*?\rrlogin: reconnected[^\r\n]*\x1b\[K\r\n`)
)

// The counter on the remote side: a numbered line every few milliseconds until the file stop
// exists in the home directory, then the count. Echo is off meanwhile, so that what is typed
// during the run (held in the terminal's input until the shell reads it) does not show among
// the lines.
const counterCommand = "stty -echo; i=0; while [ ! -e stop ]; do i=$((i+1)); echo L$i; sleep 0.004; done; echo END$i; stty echo\r"

// checkCounter checks the counter's output in out, rlogin's terminal: after the status regions
// of rlogin's reconnects are taken out, the lines L1 to Ln, each exactly once, in order, and
// nothing else, then ENDn. It returns n and the number of reconnects it found.
func checkCounter(t *testing.T, out []byte) (n, reconnects int) {
	t.Helper()
	first := regexp.MustCompile(`[\r\n]L1\r\n`).FindIndex(out) // after the command's line
	if first == nil {
		t.Fatalf("no L1 in rlogin's output:\n%q", tail(out, 2000))
	}
	out = out[first[0]+1:]
	m := regexp.MustCompile(`END(\d+)\r\n`).FindSubmatchIndex(out)
	if m == nil {
		t.Fatalf("no END in rlogin's output:\n%q", tail(out, 2000))
	}
	n, _ = strconv.Atoi(string(out[m[2]:m[3]]))
	got := out[:m[0]]
	var want bytes.Buffer
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&want, "L%d\r\n", i)
	}
	// rlogin starts its status line with CR LF of its own when the output stopped mid-line
	// (status.go); the bytes cannot tell that from the shell's CR LF, so each region is tried
	// with and without the two bytes before it.
	regions := statusRegion.FindAllIndex(got, -1)
	for _, r := range regions {
		t.Logf("rlogin's status line: %q", got[r[0]:r[1]])
	}
	for mask := 0; mask < 1<<len(regions); mask++ {
		var stream []byte
		from := 0
		for i, r := range regions {
			end := r[0]
			if mask&(1<<i) != 0 {
				if !bytes.HasSuffix(got[from:end], []byte("\r\n")) {
					break
				}
				end -= 2
			}
			stream = append(stream, got[from:end]...)
			from = r[1]
		}
		stream = append(stream, got[from:]...)
		if bytes.Equal(stream, want.Bytes()) {
			return n, len(regions)
		}
	}
	// Say what went wrong: the first line out of place.
	lines := strings.Split(string(statusRegion.ReplaceAll(got, []byte("\r\n"))), "\r\n")
	next := 1
	for _, l := range lines {
		switch {
		case l == "":
		case l == fmt.Sprintf("L%d", next):
			next++
		default:
			t.Errorf("after L%d comes %q, not L%d", next-1, l, next)
			next = -1
		}
		if next < 0 {
			break
		}
	}
	t.Fatalf("the counter's lines on rlogin's terminal are not L1 to L%d exactly once in order (%d reconnects); the output:\n%q", n, len(regions), tail(got, 4000))
	return 0, 0
}

// typedLines waits until the file typed in dir has want lines, then returns its content.
func typedLines(t *testing.T, dir string, want int) string {
	t.Helper()
	path := filepath.Join(dir, "typed")
	var b []byte
	waitFor(t, fmt.Sprintf("%d lines in %s", want, path), func() bool {
		b, _ = os.ReadFile(path)
		return bytes.Count(b, []byte("\n")) >= want
	})
	return string(b)
}

// TestCounterSurvivesCutAndBlackhole: a counter printing a numbered line every few milliseconds
// goes on across a cut of 5 s (the path resets every connection) and a blackhole (the path
// holds every byte, closes nothing) of blackholeOutage, and every line is on rlogin's terminal
// exactly once, in order. What is typed during the outages, before the client noticed the
// blackhole and while it reconnects, is run once after the resume. Both ends notice the dead path within their keepalive
// bounds (the resuming twin of TestBlackholeNoticedOnBothEnds).
func TestCounterSurvivesCutAndBlackhole(t *testing.T) {
	counterSurvives(t, userResumeServer(t))
}

func counterSurvives(t *testing.T, s *resumeServer) {
	t.Helper()
	link := linkemu.New(linkemu.Profile{Delay: wanRTT / 2})
	tm := s.rlogin(t, link, "-o", "ConnectTimeout=2")
	pid := shellPID(t, tm)

	tm.send(counterCommand)
	tm.expect(`\nL20\r\n`)

	// The cut: both ends see a reset at once.
	link.Cut()
	cut := time.Now()
	tm.expect(statusLost)
	tm.send("echo during-cut >> typed\r") // held by rlogin while it reconnects
	s.logLine(t, `msg="session detached"`, 0)
	time.Sleep(time.Until(cut.Add(cutOutage))) // on purpose: the outage is what is tested
	link.Restore()
	restored := time.Now()
	tm.expect(statusReconnected)
	t.Logf("after the cut of %v: live again %v after the path was restored", cutOutage, time.Since(restored))
	s.logLine(t, `msg="session resumed"`, 0)
	tm.expect(`\nL\d+\r\nL\d+\r\n`) // the counter goes on

	// The blackhole: nothing arrives, nothing is closed; each end gives the other up.
	link.Blackhole()
	start := time.Now()
	tm.send("echo before-notice >> typed\r") // into the dead connection: re-sent after the resume
	tm.expect(statusLost + `[^\r\n\x1b]*: no answer for 2 s\x1b`)
	noticed := time.Since(start)
	t.Logf("rlogin noticed the blackhole after %v (bound 2 s)", noticed)
	if noticed > 2*time.Second+aliveSlack {
		t.Errorf("rlogin noticed the blackhole %v after it began, beyond its bound of 2 s and the slack", noticed)
	}
	serverGaveUp(t, s.logText, `msg="session detached".*no answer from the peer for 1\.5s`, start)
	tm.send("echo while-reconnecting >> typed\r")
	time.Sleep(time.Until(start.Add(blackholeOutage))) // on purpose, as above
	link.Restore()
	restored = time.Now()
	tm.expectWithin(statusReconnected, shortTimeout+maxHandshake)
	t.Logf("after the blackhole of %v: live again %v after the path was restored", blackholeOutage, time.Since(restored))
	s.logLine(t, `msg="session resumed"`, 1)
	tm.expect(`\nL\d+\r\nL\d+\r\n`)

	writeFile(t, filepath.Join(s.home, "stop"), "")
	tm.expect(`END\d+\r\n`)
	out, _ := tm.out.Snapshot()
	n, reconnects := checkCounter(t, out)
	t.Logf("%d lines, %d reconnects", n, reconnects)
	if reconnects != 2 {
		t.Errorf("rlogin's terminal shows %d reconnects, want 2", reconnects)
	}
	// The typed lines ran once each, in order, after the counter: the shell read them then.
	if got, want := typedLines(t, s.home, 3), "during-cut\nbefore-notice\nwhile-reconnecting\n"; got != want {
		t.Errorf("the typed commands wrote %q, want %q: each exactly once", got, want)
	}
	tm.send("echo SYNC$((40+2)) $$.\r")
	tm.expect(`SYNC42 ` + strconv.Itoa(pid) + `\.`) // the same shell all along
	if got, want := typedLines(t, s.home, 3), "during-cut\nbefore-notice\nwhile-reconnecting\n"; got != want {
		t.Errorf("after a command more, the typed commands wrote %q, want %q", got, want)
	}
	tm.send("exit\r")
	if code := tm.wait(); code != 0 {
		t.Errorf("rlogin exited %d after exit, want 0\n%s", code, s.logText())
	}
}

// maxHandshake is the longest a reconnect try may hang in a dead path (the TLS handshake's
// timeout, transport.DefaultHandshakeTimeout; with -o ConnectTimeout=2 the tries of these tests
// give up sooner): a wait that may span a try allows for it.
const maxHandshake = 10 * time.Second

// TestReattachAfterClientKilled: rlogin is killed (SIGKILL: no word to the server); a new
// rlogin -R takes the session over and finds the same shell: the same pid, the same working
// directory, its background job still running.
func TestReattachAfterClientKilled(t *testing.T) {
	reattachAfterClientKilled(t, userResumeServer(t))
}

func reattachAfterClientKilled(t *testing.T, s *resumeServer) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(s.home, "work", "sub"), 0o777); err != nil {
		t.Fatal(err)
	}
	tm := s.rloginDirect(t)
	tm.ready()
	tm.send("cd work/sub; sleep 1000 & echo BEFORE PID=$$ JOB=$! CWD=$(pwd).\r")
	m := tm.expect(`BEFORE PID=(\d+) JOB=(\d+) CWD=(\S+)\.`)
	pid, job, cwd := m[1], m[2], m[3]
	if err := tm.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	tm.wait() // killed: its status says so
	s.logLine(t, `msg="session detached"`, 0)

	tm2 := s.rloginDirect(t, "-R")
	id := tm2.expect(`rlogin: reattaching session ([0-9a-f]{8}) on 127\.0\.0\.1 \(detached `)[1]
	s.logLine(t, `msg="session reattached"`, 0)
	tm2.send("echo AFTER PID=$$ JOBS=$(jobs -p) CWD=$(pwd).\r")
	m = tm2.expect(`AFTER PID=(\d+) JOBS=(\d*) CWD=(\S+)\.`)
	if m[1] != pid || m[2] != job || m[3] != cwd {
		t.Errorf("after the reattach: pid %s, jobs %q, cwd %s; before: pid %s, job %s, cwd %s", m[1], m[2], m[3], pid, job, cwd)
	}
	if _, err := os.Stat("/proc/" + job); err != nil {
		t.Errorf("the background job %s: %v", job, err)
	}

	// Taking over a session whose client is still there: it is told, and ends.
	tm3 := s.rloginDirect(t, "-R", id)
	tm3.expect(`rlogin: taking over session [0-9a-f]{8} on 127\.0\.0\.1 from its client at 127\.0\.0\.1:\d+`)
	tm2.expect(`rlogin: connection closed by 127\.0\.0\.1: taken over from 127\.0\.0\.1:\d+`)
	if code := tm2.wait(); code != 255 {
		t.Errorf("the client taken over exited %d, want 255", code)
	}
	tm3.send("echo THIRD PID=$$.\r")
	tm3.expect(`THIRD PID=` + pid + `\.`)
	tm3.send("kill %1; exit\r")
	if code := tm3.wait(); code != 0 {
		t.Errorf("rlogin exited %d after exit, want 0", code)
	}
	waitFor(t, "the job to end", func() bool { return !alive(job) })
}

// alive reports whether the process pid (decimal) exists and is not a zombie.
func alive(pid string) bool {
	stat, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return false
	}
	rest := stat[bytes.LastIndexByte(stat, ')')+1:]
	return !bytes.HasPrefix(rest, []byte(" Z"))
}

// TestResumeFromNewAddress: the client's new connection comes from another address (a move to
// another network): the session resumes all the same, and rlogind logs the new address.
func TestResumeFromNewAddress(t *testing.T) {
	resumeFromNewAddress(t, userResumeServer(t))
}

func resumeFromNewAddress(t *testing.T, s *resumeServer) {
	t.Helper()
	link := linkemu.New(linkemu.Profile{Delay: wanRTT / 2})
	p := newRoamingProxy(t, link, s.d.addr)
	tm := startTerminal(t, clientEnv(s.d.home), filepath.Join(binDir, "rlogin"),
		append(append(append([]string{}, s.args...), clientAlive...), "-p", p.port(), "127.0.0.1")...)
	tm.expect(`\(yes/no\)\? `) // the proxy's port is a new host to the client
	tm.send("yes\r")
	pid := shellPID(t, tm)

	p.roam("127.0.0.2") // the connections from now on; the session's own goes on
	link.Cut()
	tm.expect(statusLost)
	s.logLine(t, `msg="session detached".*127\.0\.0\.1:\d+`, 0)
	link.Restore()
	tm.expect(statusReconnected)
	s.logLine(t, `msg="session resumed".*127\.0\.0\.2:\d+`, 0)
	tm.send("echo MOVED $$.\r")
	tm.expect(`MOVED ` + strconv.Itoa(pid) + `\.`)
	tm.send("exit\r")
	if code := tm.wait(); code != 0 {
		t.Errorf("rlogin exited %d after exit, want 0", code)
	}
}

// TestDetachedSessionExpires: a session whose client is gone ends after the detach timeout, as
// a lost one did before resume: the shell and its background job are gone, and rlogin -R finds
// nothing to take over.
func TestDetachedSessionExpires(t *testing.T) {
	detachedSessionExpires(t, userResumeServer(t, "-detach-timeout", "2s", "-stop-grace", "1s"), 2*time.Second)
}

func detachedSessionExpires(t *testing.T, s *resumeServer, timeout time.Duration) {
	t.Helper()
	tm := s.rloginDirect(t)
	tm.ready()
	tm.send("sleep 1000 & echo PIDS $$ $!.\r")
	m := tm.expect(`PIDS (\d+) (\d+)\.`)
	if err := tm.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	tm.wait() // killed: its status says so
	_, detached := s.logLine(t, `msg="session detached"`, 0)
	_, expired := s.logLine(t, `msg="detached session expired"`, 0)
	d := expired.Sub(detached)
	t.Logf("expired %v after it detached (detach timeout %v)", d, timeout)
	if d < timeout-50*time.Millisecond || d > timeout+aliveSlack {
		t.Errorf("the detached session expired %v after it detached, want %v", d, timeout)
	}
	waitFor(t, "the shell and its job to be gone", func() bool { return !alive(m[1]) && !alive(m[2]) })

	tm2 := s.rloginDirect(t, "-R")
	tm2.expect(`rlogin: you have no sessions on 127\.0\.0\.1`)
	if code := tm2.wait(); code != 255 {
		t.Errorf("rlogin -R with no session exited %d, want 255", code)
	}
}

// roamingProxy forwards each connection it accepts through a link to upstream, as
// linkemu.Proxy does, but dials upstream from a source address that the test picks (roam): the
// server then sees the client's next connections come from another address, as after a move to
// another network. (linkemu's Proxy dials from the address the kernel picks.)
type roamingProxy struct {
	t        *testing.T
	link     *linkemu.Link
	ln       net.Listener
	upstream string
	wg       sync.WaitGroup // the accept loop and one goroutine per connection

	mu     sync.Mutex
	source net.IP                // the source address of upstream dials
	conns  map[net.Conn]struct{} // the conns of the connections joined, closed by Close
	closed bool
}

// newRoamingProxy starts a roamingProxy on a loopback port, dialing from 127.0.0.1 until roam;
// the test's cleanup closes it.
func newRoamingProxy(t *testing.T, link *linkemu.Link, upstream string) *roamingProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &roamingProxy{t: t, link: link, ln: ln, upstream: upstream, source: net.IPv4(127, 0, 0, 1),
		conns: make(map[net.Conn]struct{})}
	p.wg.Add(1)
	go p.acceptLoop()
	t.Cleanup(p.close)
	return p
}

// port is the port the proxy listens on.
func (p *roamingProxy) port() string {
	_, port, _ := net.SplitHostPort(p.ln.Addr().String())
	return port
}

// roam makes the next upstream dials come from ip (a loopback address: any of 127.0.0.0/8).
func (p *roamingProxy) roam(ip string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.source = net.ParseIP(ip)
}

func (p *roamingProxy) acceptLoop() {
	defer p.wg.Done()
	for {
		down, err := p.ln.Accept()
		if err != nil {
			return // closed
		}
		p.wg.Add(1)
		go p.serve(down)
	}
}

// serve dials upstream from the current source address and joins the two through the link.
func (p *roamingProxy) serve(down net.Conn) {
	defer p.wg.Done()
	p.mu.Lock()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: p.source}, Timeout: shortTimeout}
	p.mu.Unlock()
	up, err := d.Dial("tcp", p.upstream)
	if err != nil {
		p.t.Logf("roaming proxy: %v", err)
		_ = down.Close()
		return
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		_ = down.Close()
		_ = up.Close()
		return
	}
	p.conns[down], p.conns[up] = struct{}{}, struct{}{}
	p.mu.Unlock()
	_ = p.link.Join(down, up) // its error is the peers' to see
	p.mu.Lock()
	delete(p.conns, down)
	delete(p.conns, up)
	p.mu.Unlock()
}

// close stops accepting, ends every connection through the proxy and waits for its goroutines.
func (p *roamingProxy) close() {
	_ = p.ln.Close()
	p.mu.Lock()
	p.closed = true
	for c := range p.conns {
		_ = c.Close() // Join then ends
	}
	p.mu.Unlock()
	p.wg.Wait()
}
