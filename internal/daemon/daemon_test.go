package daemon

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rlogin-go/rlogin/internal/admission"
	"github.com/rlogin-go/rlogin/internal/logintest"
	"github.com/rlogin-go/rlogin/internal/usershell"
	"github.com/rlogin-go/rlogin/keys"
	"github.com/rlogin-go/rlogin/session"
	"github.com/rlogin-go/rlogin/transport"
)

func TestLoginRunsCommand(t *testing.T) {
	ts := startServer(t, nil)
	r := ts.login(t)
	r.Send("echo MARK$((1+2)) $0 $PWD; exit 7\n")
	m := r.Expect(`MARK3 (\S+) (\S+)`)
	if !strings.HasPrefix(m[1], "-") {
		t.Errorf("$0 = %q: not a login shell (want a leading '-')", m[1])
	}
	if m[2] != ts.home {
		t.Errorf("working directory %q, want the home directory %q", m[2], ts.home)
	}
	err := r.Wait()
	var ee *session.ExitError
	if !errors.As(err, &ee) || ee.Status != 7 {
		t.Fatalf("Wait: %v, want exit status 7", err)
	}
	ts.waitLog(`msg="session started".*user=` + regexp.QuoteMeta(ts.srv.User()) + `.*term=xterm`)
	ts.waitLog(`msg="session ended".*status=7`)
	ts.waitLog(`msg="authentication succeeded".*key=SHA256:`)
}

func TestSessionEndsWithSignal(t *testing.T) {
	ts := startServer(t, nil)
	r := ts.login(t)
	r.Ready()
	r.Send("kill -KILL $$\n") // an interactive shell ignores SIGTERM
	err := r.Wait()
	var ee *session.ExitError
	if !errors.As(err, &ee) || ee.Signal != "KILL" {
		t.Fatalf("Wait: %v, want an exit by SIGKILL", err)
	}
	ts.waitLog(`msg="session ended".*signal=killed`)
}

func TestUnlistedKeyRefused(t *testing.T) {
	ts := startServer(t, nil)
	stranger := newKey(t)
	_, err := logintest.Login(t, ts.addr, pubOf(ts.hostKey), stranger, ts.request(ts.srv.User()))
	var re *session.RefusedError
	if !errors.As(err, &re) {
		t.Fatalf("login with an unlisted key: %v, want a *session.RefusedError", err)
	}
	if re.Reason != reasonDenied {
		t.Errorf("reason %q, want %q", re.Reason, reasonDenied)
	}
	ts.waitLog(`msg="authentication failed".*key=` + regexp.QuoteMeta(keys.Fingerprint(pubOf(stranger))))
	if strings.Contains(ts.log.String(), "session started") {
		t.Fatal("a shell started for an unlisted key")
	}
}

func TestWrongUserRefused(t *testing.T) {
	ts := startServer(t, nil)
	other := "nobody"
	if ts.srv.User() == other {
		other = "root"
	}
	_, err := logintest.Login(t, ts.addr, pubOf(ts.hostKey), ts.clientKey, ts.request(other))
	var re *session.RefusedError
	if !errors.As(err, &re) {
		t.Fatalf("login as %s: %v, want a *session.RefusedError", other, err)
	}
	if want := "this rlogind serves only user " + ts.srv.User(); re.Reason != want {
		t.Errorf("reason %q, want %q", re.Reason, want)
	}
	// An unlisted key asking for another user learns nothing about who is served.
	_, err = logintest.Login(t, ts.addr, pubOf(ts.hostKey), newKey(t), ts.request(other))
	if !errors.As(err, &re) || re.Reason != reasonDenied {
		t.Fatalf("unlisted key as %s: %v, want refusal %q", other, err, reasonDenied)
	}
	if strings.Contains(ts.log.String(), "session started") {
		t.Fatal("a shell started for another user")
	}
}

// rawLogin sends a login request built by hand, as a hostile client would, bypassing the
// session client's own checks, and returns the server's answer: the REFUSE reason, or accepted.
func rawLogin(t *testing.T, ts *testServer, user, term string, env []string) (reason string, accepted bool) {
	t.Helper()
	conn, err := dialSecure(t, ts.addr, pubOf(ts.hostKey), ts.clientKey)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(shortTimeout))
	str16 := func(b []byte, s string) []byte { return append(binary.BigEndian.AppendUint16(b, uint16(len(s))), s...) }
	var p []byte
	p = str16(p, user)
	p = str16(p, term)
	p = binary.BigEndian.AppendUint16(p, 24)
	p = binary.BigEndian.AppendUint16(p, 80)
	p = append(p, 0, 0, 0, 0, byte(len(env)))
	for _, e := range env {
		p = str16(p, e)
	}
	p = append(p, 0) // no capabilities
	// Protocol version 1, then the LOGIN frame: type 0x01 and a 3-byte length.
	msg := append([]byte{1, 0x01, byte(len(p) >> 16), byte(len(p) >> 8), byte(len(p))}, p...)
	if _, err := conn.Write(msg); err != nil {
		t.Fatal(err)
	}
	var hdr [5]byte // version, then the answer's frame header
	if _, err := io.ReadFull(conn, hdr[:]); err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	body := make([]byte, int(hdr[2])<<16|int(hdr[3])<<8|int(hdr[4]))
	if _, err := io.ReadFull(conn, body); err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	switch {
	case hdr[0] == 1 && hdr[1] == 0x03: // REFUSE
		return string(body), false
	case hdr[0] == 1 && hdr[1] == 0x02: // ACCEPT
		return "", true
	}
	t.Fatalf("unexpected answer % x", hdr)
	return "", false
}

func TestInvalidUserNamesRefused(t *testing.T) {
	ts := startServer(t, nil)
	for _, name := range []string{
		"-froot", "-f root", "-f", "-", "a b", "a\x00b", "root\n", "r\x1b[31moot", "", strings.Repeat("a", 33),
		"ro\u00f6t", "../root", "a/b", "root;id", "$(id)", "a:b",
	} {
		t.Run(strconv.Quote(name), func(t *testing.T) {
			reason, accepted := rawLogin(t, ts, name, "xterm", nil)
			if accepted {
				t.Fatalf("login as %q was accepted", name)
			}
			t.Logf("%q refused: %s", name, reason)
		})
	}
	// A name outside session.ValidUserName breaks the LOGIN frame's bounds: the session refuses
	// it before the daemon logs it, so the log is awaited.
	refusals := func() int {
		log := ts.log.String()
		return strings.Count(log, "login refused") + strings.Count(log, "login failed")
	}
	waitFor(t, "16 refusals in the log", func() bool { return refusals() >= 16 })
	log := ts.log.String()
	if strings.Contains(log, "session started") || strings.Contains(log, "authentication succeeded") || strings.ContainsAny(log, "\x00\x1b") {
		t.Fatalf("a login went ahead, or a raw control character reached the log:\n%q", log)
	}
	if n := refusals(); n != 16 {
		t.Errorf("%d refusals logged, want 16:\n%s", n, log)
	}
	// The reason says what is wrong with the name.
	if reason, _ := rawLogin(t, ts, "$(id)", "xterm", nil); !strings.HasPrefix(reason, "protocol error: bad LOGIN frame: user name") {
		t.Errorf("reason %q, want a bad user name", reason)
	}
	if len(children()) != 0 {
		t.Fatalf("child processes after refused logins: %v", children())
	}
}

func TestAuthorizedKeysChecks(t *testing.T) {
	for _, tc := range []struct {
		name    string
		setup   func(ts *testServer)
		wantLog string
	}{
		{"group writable", func(ts *testServer) {
			ts.writeAuthorized(t, string(keys.MarshalAuthorizedKey(pubOf(ts.clientKey), "")), 0o620)
		}, `authorized keys file.*writable by group or others`},
		{"directory writable by others", func(ts *testServer) {
			if err := os.Chmod(filepath.Dir(ts.authPath), 0o702); err != nil {
				t.Fatal(err)
			}
		}, `authorized keys file.*writable by group or others`},
		{"options line", func(ts *testServer) {
			line := "restrict " + string(keys.MarshalAuthorizedKey(pubOf(ts.clientKey), ""))
			ts.writeAuthorized(t, line, 0o600)
		}, `authorized keys lines skipped.*key option restrict is not supported`},
		{"from not matching", func(ts *testServer) {
			line := `from="192.0.2.0/24" ` + string(keys.MarshalAuthorizedKey(pubOf(ts.clientKey), ""))
			ts.writeAuthorized(t, line, 0o600)
		}, `authentication failed.*its from= does not match`},
		{"missing file", func(ts *testServer) {
			if err := os.Remove(ts.authPath); err != nil {
				t.Fatal(err)
			}
		}, `authorized keys file.*no such file`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := startServer(t, nil)
			tc.setup(ts)
			_, err := logintest.Login(t, ts.addr, pubOf(ts.hostKey), ts.clientKey, ts.request(ts.srv.User()))
			var re *session.RefusedError
			if !errors.As(err, &re) || re.Reason != reasonDenied {
				t.Fatalf("login: %v, want refusal %q", err, reasonDenied)
			}
			ts.waitLog(tc.wantLog)
		})
	}
}

// TestAuthorizedKeysReread checks that edits of authorized_keys apply to the next login.
func TestAuthorizedKeysReread(t *testing.T) {
	ts := startServer(t, nil)
	second := newKey(t)
	if _, err := logintest.Login(t, ts.addr, pubOf(ts.hostKey), second, ts.request(ts.srv.User())); err == nil {
		t.Fatal("an unlisted key logged in")
	}
	ts.writeAuthorized(t, string(keys.MarshalAuthorizedKey(pubOf(second), "second")), 0o600)
	r, err := logintest.Login(t, ts.addr, pubOf(ts.hostKey), second, ts.request(ts.srv.User()))
	if err != nil {
		t.Fatalf("login with the newly listed key: %v", err)
	}
	r.Send("exit 0\n")
	if err := r.Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := logintest.Login(t, ts.addr, pubOf(ts.hostKey), ts.clientKey, ts.request(ts.srv.User())); err == nil {
		t.Fatal("a key removed from authorized_keys still logged in")
	}
}

// fakeShellPath makes the test binary available as a shell called fakeshell.
func fakeShellPath(t *testing.T) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), fakeShellName)
	if err := os.Symlink(exe, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// shellReport is what fakeShell printed.
type shellReport struct {
	argv0, cwd string
	env        map[string]string
}

func parseShellReport(t *testing.T, out string) shellReport {
	t.Helper()
	rep := shellReport{env: make(map[string]string)}
	for line := range strings.Lines(strings.ReplaceAll(out, "\r\n", "\n")) {
		line = strings.TrimSuffix(line, "\n")
		switch {
		case strings.HasPrefix(line, "ARGV0="):
			rep.argv0 = strings.TrimPrefix(line, "ARGV0=")
		case strings.HasPrefix(line, "CWD="):
			rep.cwd = strings.TrimPrefix(line, "CWD=")
		case strings.HasPrefix(line, "ENV "):
			kv, err := strconv.Unquote(strings.TrimPrefix(line, "ENV "))
			if err != nil {
				t.Fatalf("bad line %q: %v", line, err)
			}
			name, value, _ := strings.Cut(kv, "=")
			rep.env[name] = value
		}
	}
	return rep
}

func TestShellEnvironment(t *testing.T) {
	t.Setenv("RLOGIND_TEST_SECRET", "must-not-leak")
	shell := fakeShellPath(t)
	ts := startServer(t, func(c *Config) { c.Shell = shell })
	for _, tc := range []struct {
		name     string
		term     string
		env      []string
		wantTerm string
		wantEnv  map[string]string
	}{
		{
			name:     "locale passed",
			term:     "xterm-256color",
			env:      []string{"LANG=C.UTF-8", "LC_ALL=en_US.UTF-8", "LC_MESSAGES=fr_FR.UTF-8"},
			wantTerm: "xterm-256color",
			wantEnv:  map[string]string{"LANG": "C.UTF-8", "LC_ALL": "en_US.UTF-8", "LC_MESSAGES": "fr_FR.UTF-8"},
		},
		{name: "empty TERM", term: "", wantTerm: "dumb"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := ts.request(ts.srv.User())
			req.Term, req.Env = tc.term, tc.env
			r, err := logintest.Login(t, ts.addr, pubOf(ts.hostKey), ts.clientKey, req)
			if err != nil {
				t.Fatalf("login: %v", err)
			}
			if err := r.Wait(); err != nil {
				t.Fatalf("Wait: %v; output:\n%q", err, r.Output())
			}
			out := r.Output()
			if !strings.Contains(out, "END") {
				t.Fatalf("fake shell's report incomplete:\n%q", out)
			}
			rep := parseShellReport(t, out)
			if rep.argv0 != "-"+fakeShellName {
				t.Errorf("argv[0] = %q, want %q", rep.argv0, "-"+fakeShellName)
			}
			if rep.cwd != ts.home {
				t.Errorf("working directory %q, want %q", rep.cwd, ts.home)
			}
			want := map[string]string{
				"HOME":    ts.home,
				"USER":    ts.srv.User(),
				"LOGNAME": ts.srv.User(),
				"SHELL":   shell,
				"PATH":    usershell.DefaultPath,
				"TERM":    tc.wantTerm,
			}
			for k, v := range tc.wantEnv {
				want[k] = v
			}
			if !equalMaps(rep.env, want) {
				t.Errorf("shell environment:\n got %q\nwant %q", rep.env, want)
			}
		})
	}
	if strings.ContainsAny(ts.log.String(), "\x1b\x07") {
		t.Errorf("a raw control character reached the log:\n%q", ts.log.String())
	}
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// TestRealShellEnvironment runs env in the user's real login shell: the names it shows are the
// daemon's set plus what the shell itself adds, and nothing of the daemon's own environment.
func TestRealShellEnvironment(t *testing.T) {
	t.Setenv("RLOGIND_TEST_SECRET", "must-not-leak")
	ts := startServer(t, nil)
	r := ts.login(t)
	r.Send("echo BEGIN$((1+1)); env | cut -d= -f1 | sort | tr '\\n' ' '; echo END$((2+2))\n")
	names := strings.Fields(r.Expect(`BEGIN2\r?\n(.*)END4`)[1])
	r.Send("exit\n")
	if err := r.Wait(); err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{"HOME": true, "USER": true, "LOGNAME": true, "SHELL": true, "PATH": true, "TERM": true, "LANG": true}
	shellAdds := map[string]bool{"PWD": true, "OLDPWD": true, "SHLVL": true, "_": true}
	var extra []string
	for _, n := range names {
		if !want[n] && !shellAdds[n] {
			extra = append(extra, n)
		}
		delete(want, n)
	}
	if len(extra) > 0 || len(want) > 0 {
		t.Fatalf("shell environment names %q: unexpected %q, missing %v", names, extra, want)
	}
}

// stalledPeer is a way to hold a connection open without logging in.
type stalledPeer struct {
	name string
	dial func(t *testing.T, ts *testServer) net.Conn
}

var stalledPeers = []stalledPeer{
	{"silent", func(t *testing.T, ts *testServer) net.Conn {
		c, err := net.Dial("tcp", ts.addr)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}},
	{"mailbox then silent", func(t *testing.T, ts *testServer) net.Conn {
		ctx, cancel := context.WithTimeout(context.Background(), shortTimeout)
		defer cancel()
		c, err := transport.DialMailbox(ctx, ts.addr, MailboxName)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}},
	{"slow name then silent", func(t *testing.T, ts *testServer) net.Conn {
		// Spends most of the grace time in the name exchange: the grace time counts from accept,
		// so what is left for the rest is short.
		c, err := net.Dial("tcp", ts.addr)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Write([]byte("log")); err != nil {
			t.Fatal(err)
		}
		time.Sleep(slowNameDelay) // the peer's pace, not a wait for the server
		if _, err := c.Write([]byte("in\r\n")); err != nil {
			t.Fatal(err)
		}
		return c
	}},
	{"TLS then silent", func(t *testing.T, ts *testServer) net.Conn {
		c, err := dialSecure(t, ts.addr, pubOf(ts.hostKey), newKey(t))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}},
}

// waitClosed waits up to timeout for the server to close c and returns when it did; ok is false
// if c stayed open. What the server sent before closing is in got.
func waitClosed(c net.Conn, timeout time.Duration) (at time.Time, ok bool, got []byte) {
	_ = c.SetReadDeadline(time.Now().Add(timeout))
	buf := make([]byte, 512)
	for {
		n, err := c.Read(buf)
		if len(got) < 64<<10 {
			got = append(got, buf[:n]...)
		}
		if err == nil {
			continue
		}
		return time.Now(), !isTimeout(err), got
	}
}

// slowNameDelay is how long the "slow name" peer takes to finish its mailbox name.
const slowNameDelay = 1500 * time.Millisecond

func TestLoginGraceTime(t *testing.T) {
	const grace = 2 * time.Second
	for _, p := range stalledPeers {
		t.Run(p.name, func(t *testing.T) {
			ts := startServer(t, func(c *Config) { c.LoginGraceTime = grace })
			start := time.Now()
			c := p.dial(t, ts)
			defer c.Close()
			// The close is timed from now on: however long the login below takes.
			type closed struct {
				at  time.Time
				ok  bool
				got []byte
			}
			closes := make(chan closed, 1)
			go func() {
				at, ok, got := waitClosed(c, grace+shortTimeout)
				closes <- closed{at, ok, got}
			}()
			// A real login meanwhile is not held up.
			r := ts.login(t)
			r.Send("exit 3\n")
			var ee *session.ExitError
			if err := r.Wait(); !errors.As(err, &ee) || ee.Status != 3 {
				t.Fatalf("parallel login: %v, want exit status 3", err)
			}
			cl := <-closes // waitClosed returns by its deadline
			at, ok, got := cl.at, cl.ok, cl.got
			if !ok {
				t.Fatalf("stalled conn still open %v after connecting", time.Since(start))
			}
			// A peer that got as far as the login protocol is told why it is dropped.
			if p.name == "TLS then silent" && !strings.Contains(string(got), "login timed out") {
				t.Errorf("the stalled TLS peer got %q before the close, want the reason \"login timed out\"", got)
			}
			if d := at.Sub(start); d < grace-100*time.Millisecond {
				t.Fatalf("stalled conn closed after %v, before the grace time %v", d, grace)
			}
			// One deadline from accept: a peer slow in each stage must not get the grace time twice.
			if d := at.Sub(start); d >= grace+slowNameDelay {
				t.Fatalf("stalled conn closed after %v: the grace time %v restarted after the name exchange", d, grace)
			}
			t.Logf("stalled conn closed after %v", at.Sub(start))
			if p.name != "silent" { // the name exchange is the mux's and logs at debug level
				ts.waitLog(`login grace time exceeded`)
			}
		})
	}
}

func TestMaxStartups(t *testing.T) {
	const (
		grace       = 4 * time.Second
		maxStartups = 3
	)
	ts := startServer(t, func(c *Config) {
		c.LoginGraceTime = grace
		c.MaxStartups = admission.StartupLimit{Start: maxStartups, Rate: 100, Full: maxStartups}
	})
	// An authenticated session does not count against the cap.
	busy := ts.login(t)
	busy.Ready()
	var stalled []net.Conn
	for i := range maxStartups {
		stalled = append(stalled, stalledPeers[i%len(stalledPeers)].dial(t, ts))
	}
	defer func() {
		for _, c := range stalled {
			_ = c.Close()
		}
	}()
	waitFor(t, "the stalled conns to be counted", func() bool {
		return ts.srv.unauthenticated() == maxStartups
	})
	// At the cap, a new conn is closed at once, long before the grace time.
	extra, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer extra.Close()
	start := time.Now()
	if _, ok, _ := waitClosed(extra, grace/2); !ok {
		t.Fatalf("a conn beyond max-startups was not closed at once")
	}
	t.Logf("conn beyond the cap closed after %v", time.Since(start))
	ts.waitLog(`max-startups.*max_startups=3`)
	// Once the stalled conns time out, logins work again.
	for _, c := range stalled {
		if _, ok, _ := waitClosed(c, grace+shortTimeout); !ok {
			t.Fatal("stalled conn not closed after the grace time")
		}
	}
	r := ts.login(t)
	r.Send("exit 0\n")
	if err := r.Wait(); err != nil {
		t.Fatal(err)
	}
	busy.Send("exit 0\n")
	if err := busy.Wait(); err != nil {
		t.Fatal(err)
	}
}

// TestStopEndsSessions cancels Serve during a session: the client is told "service stopping",
// and the shell and the command it runs are gone.
func TestStopEndsSessions(t *testing.T) {
	ts := startServer(t, nil)
	r := ts.login(t)
	r.Ready()
	shellPid, _ := strconv.Atoi(ts.waitLog(`msg="session started".*pid=(\d+)`)[1])
	r.Send("sh -c 'echo SLEEP=$$; exec sleep 1000'\n")
	sleepPid, _ := strconv.Atoi(r.Expect(`SLEEP=(\d+)`)[1])
	if err := ts.stop(); err != nil {
		t.Fatal(err)
	}
	err := r.Wait()
	var ce *session.ClosedError
	if !errors.As(err, &ce) || ce.Reason != reasonStopping {
		t.Fatalf("Wait after stop: %v, want *session.ClosedError %q", err, reasonStopping)
	}
	waitFor(t, "the shell and its command to be gone", func() bool { return gone(shellPid) && gone(sleepPid) })
}

// TestStopKillsStubbornShell stops a server whose shell ignores SIGHUP: after StopGrace the
// shell is killed and Serve returns.
func TestStopKillsStubbornShell(t *testing.T) {
	const stopGrace = 300 * time.Millisecond
	ts := startServer(t, func(c *Config) { c.StopGrace = stopGrace })
	r := ts.login(t)
	r.Send("trap '' HUP; echo TRAPPED$((1+1))\n")
	r.Expect(`TRAPPED2`)
	shellPid, _ := strconv.Atoi(ts.waitLog(`msg="session started".*pid=(\d+)`)[1])
	start := time.Now()
	if err := ts.stop(); err != nil {
		t.Fatal(err)
	}
	t.Logf("Serve returned %v after cancel", time.Since(start))
	if !gone(shellPid) {
		t.Fatalf("shell %d still running after Serve returned", shellPid)
	}
	ts.waitLog(`killed their shells`)
	_ = r.Wait()
}

// TestServeReturnsWhenListenerFails checks that Serve reports a listener that stops working
// instead of hanging.
func TestServeListenerClosed(t *testing.T) {
	logintest.CheckNoLeftovers(t)
	srv, err := NewServer(Config{HostKey: newKey(t), AuthorizedKeys: "/nonexistent"})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(context.Background(), l) }()
	// Wait until Serve accepts, so that the close below hits its accept loop.
	waitFor(t, "Serve to accept", func() bool {
		c, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			return false
		}
		_ = c.Close()
		return true
	})
	_ = l.Close()
	select {
	case err := <-done:
		if err == nil || !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Serve: %v, want an error matching net.ErrClosed", err)
		}
	case <-time.After(shortTimeout):
		t.Fatal("Serve did not return after its listener was closed")
	}
}

// TestManyLogins runs several sessions at once and checks every one gets its own exit status.
func TestManyLogins(t *testing.T) {
	ts := startServer(t, nil)
	const n = 4
	var rs []*logintest.Remote
	for i := range n {
		r := ts.login(t)
		r.Send("exit " + strconv.Itoa(10+i) + "\n")
		rs = append(rs, r)
	}
	var got []int
	for _, r := range rs {
		var ee *session.ExitError
		if err := r.Wait(); !errors.As(err, &ee) {
			t.Fatalf("Wait: %v", err)
		} else {
			got = append(got, ee.Status)
		}
	}
	sort.Ints(got)
	for i, s := range got {
		if s != 10+i {
			t.Fatalf("exit statuses %v, want 10..%d", got, 10+n-1)
		}
	}
}

// TestServeSeveralListeners: one Server serves two listeners at once, one Serve call each, as
// rlogind does with the sockets systemd passes; each call stops with its own ctx and leaves the
// other serving.
func TestServeSeveralListeners(t *testing.T) {
	ts := startServer(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	l, err := transport.Listen(ctx, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- ts.srv.Serve(ctx, l) }()

	for i, addr := range []string{ts.addr, l.Addr().String(), ts.addr} {
		r, err := logintest.Login(t, addr, pubOf(ts.hostKey), ts.clientKey, ts.request(ts.srv.User()))
		if err != nil {
			t.Fatalf("login %d on %s: %v", i, addr, err)
		}
		r.Send(fmt.Sprintf("exit %d\n", 10+i))
		var ee *session.ExitError
		if err := r.Wait(); !errors.As(err, &ee) || ee.Status != 10+i {
			t.Fatalf("login %d on %s: Wait: %v, want exit status %d", i, addr, err, 10+i)
		}
		if i == 1 { // the second listener stops; the first keeps serving
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("second Serve: %v, want nil after cancel", err)
				}
			case <-time.After(shortTimeout):
				t.Fatal("second Serve did not return after its ctx was cancelled")
			}
		}
	}
}
