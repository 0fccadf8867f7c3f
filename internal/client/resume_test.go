package client

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rlogin-go/rlogin/internal/linkemu"
	"github.com/rlogin-go/rlogin/keys"
	"github.com/rlogin-go/rlogin/session"
)

// reattachRun runs rlogin -R (with args before the host) against s as a new client with its own
// home, standard input a terminal (nobody types on it) or, with noTTY, empty, and returns its
// status, standard output and standard error.
func reattachRun(t *testing.T, s *testServer, noTTY bool, args ...string) (int, string, string) {
	t.Helper()
	home := t.TempDir()
	s.trust(t, home)
	var stdout, stderr bytes.Buffer
	cfg := &Config{Stdout: &stdout, Stderr: &stderr, Home: home, SystemConfig: "none", LocalUser: "tester", Environ: userEnv(home)}
	if !noTTY {
		cfg.Stdin = openTerminal(t).slave
	}
	code := cfg.Run(watchdog(t), append(append([]string{"-R"}, args...), "-p", s.port, "127.0.0.1"))
	return code, stdout.String(), stderr.String()
}

// TestReattachList: -R lists the user's sessions; with none detached it takes none over, prints
// the list and says how to choose, status 255; an id that matches nothing says so; without a
// terminal it prints the list, status 0.
func TestReattachList(t *testing.T) {
	s := startServer(t, func(s *testServer) { s.detach = time.Hour })
	tt1, _ := login(t, s)
	tt2, _ := login(t, s)
	code, out, errs := reattachRun(t, s, false)
	if code != ExitFailure {
		t.Errorf("status %d, want %d", code, ExitFailure)
	}
	if want := "rlogin: no session of yours on 127.0.0.1 is detached; to take one over from its client, name it: rlogin -R ID 127.0.0.1\n"; errs != want {
		t.Errorf("stderr %q, want %q", errs, want)
	}
	rows := regexp.MustCompile(`(?m)^([0-9a-f]{8})  attached  +\d\d:\d\d  +127\.0\.0\.1:\d+  +(\d+)  +xterm$`).FindAllStringSubmatch(out, -1)
	if !strings.HasPrefix(out, "ID        STATE     STARTED  FROM") || len(rows) != 2 || rows[0][1] == rows[1][1] {
		t.Errorf("the list is not the two sessions:\n%s", out)
	}

	code, out, errs = reattachRun(t, s, false, strings.Repeat("0", 32))
	if want := "rlogin: no session of yours on 127.0.0.1 has an id starting with " + strings.Repeat("0", 32) + "\n"; code != ExitFailure || errs != want {
		t.Errorf("an unknown id: status %d, stderr %q; want %d, %q", code, errs, ExitFailure, want)
	}
	if len(regexp.MustCompile(`(?m)^[0-9a-f]{8}  attached`).FindAllString(out, -1)) != 2 {
		t.Errorf("an unknown id: the list is not the two sessions:\n%s", out)
	}

	// Without a terminal -R only lists: a script's end of input would end the shell it took.
	code, listed, errs := reattachRun(t, s, true)
	if code != 0 || listed != out || errs != "" {
		t.Errorf("without a terminal: status %d, stderr %q, output:\n%s\nwant 0, nothing, the list:\n%s", code, errs, listed, out)
	}

	// The sessions were not disturbed.
	tt1.ready()
	tt2.ready()
}

// TestReattachNoSessions: -R with no session at all says so; without a terminal, the empty list
// is no failure.
func TestReattachNoSessions(t *testing.T) {
	s := startServer(t, nil)
	code, out, errs := reattachRun(t, s, false)
	if want := "rlogin: you have no sessions on 127.0.0.1\n"; code != ExitFailure || out != "" || errs != want {
		t.Errorf("status %d, stdout %q, stderr %q; want %d, nothing, %q", code, out, errs, ExitFailure, want)
	}
	if code, out, errs := reattachRun(t, s, true); code != 0 || out != "" || errs != "" {
		t.Errorf("without a terminal: status %d, stdout %q, stderr %q; want 0 and nothing", code, out, errs)
	}
}

// TestReattachTooOld: a server older than resume cannot list sessions: -R says so, status 255.
func TestReattachTooOld(t *testing.T) {
	s := startServer(t, func(s *testServer) { s.old = true })
	code, out, errs := reattachRun(t, s, false)
	if want := "rlogin: 127.0.0.1's rlogind cannot list or reattach sessions (too old)\n"; code != ExitFailure || out != "" || errs != want {
		t.Errorf("status %d, stdout %q, stderr %q; want %d, nothing, %q", code, out, errs, ExitFailure, want)
	}
}

// TestResumeNo: -o Resume=no (and the configuration's "Resume no") does not offer resume, and a
// lost connection ends the session as before; by default rlogin offers it.
func TestResumeNo(t *testing.T) {
	s := startServer(t, func(s *testServer) { s.detach = time.Hour })
	tt, _ := login(t, s)
	if caps := s.request(t).Capabilities; !slices.Contains(caps, "resume") {
		t.Errorf("a login offers %q, without resume", caps)
	}
	tt.send("exit\r")
	tt.wait()

	tt, before := login(t, s, "-o", "Resume=no")
	if caps := s.request(t).Capabilities; slices.Contains(caps, "resume") {
		t.Errorf("with -o Resume=no, the login offers %q", caps)
	}
	s.dropConns()
	tt.expect(`\r\nrlogin: connection to 127\.0\.0\.1 lost: [^\r\n]+\r\n$`)
	tt.exits(ExitFailure, before)
}

// loginResumable starts a server that keeps sessions for an hour, and logs in to it; it returns
// the terminal, its state before rlogin and the shell's process id.
func loginResumable(t *testing.T, configure func(*testServer)) (*testServer, *testTerminal, unix.Termios, string) {
	t.Helper()
	s := startServer(t, func(s *testServer) {
		s.detach = time.Hour
		if configure != nil {
			configure(s)
		}
	})
	tt, before := login(t, s)
	return s, tt, before, tt.shellPID()
}

// shellPID asks the remote shell for its process id.
func (tt *testTerminal) shellPID() string {
	tt.t.Helper()
	tt.send("echo PID=$$.\r")
	return tt.expect(`PID=(\d+)\.\r\n\$ `)[1]
}

// exits waits for rlogin to exit, and checks its status and that it left the terminal as before.
func (tt *testTerminal) exits(status int, before unix.Termios) {
	tt.t.Helper()
	if code := tt.wait(); code != status {
		tt.t.Errorf("exit status %d, want %d", code, status)
	}
	if after := tt.termios(); after != before {
		tt.t.Fatalf("terminal not restored:\nbefore %+v\nafter  %+v", before, after)
	}
}

// statusRun matches what rlogin writes from the loss of the connection to the resume: a line of
// its own, redrawn in place (carriage return, text, erase) any number of times, never scrolled,
// then the last text and a new line.
var statusRun = regexp.MustCompile(`^\r\n(?:\r[^\r\n]*\x1b\[K)+\rrlogin: reconnected\x1b\[K\r\n$`)

// TestReconnectStatusLine: a lost connection is followed by new tries, shown on one status line
// that is redrawn, not scrolled, while the terminal stays raw; what is typed meanwhile reaches
// the same shell once after the resume, and the session goes on.
func TestReconnectStatusLine(t *testing.T) {
	s, tt, before, pid := loginResumable(t, nil)
	s.failConns.Store(1000) // the tries fail until the test lets them through
	start := tt.mark
	s.dropConns()
	tt.expect(`rlogin: connection to 127\.0\.0\.1 lost; reconnecting \(~\. to give up\): [^\r\n]+\x1b\[K`)
	tt.expect(`\rrlogin: reconnecting to 127\.0\.0\.1 in \d+ s \(~\. to give up\): [^\r\n]*\x1b\[K`)
	if ts := tt.termios(); !isRaw(ts) {
		t.Errorf("the terminal is not raw while reconnecting: %+v", ts)
	}
	tt.send("echo TYPED$((2+3)).\r")
	s.failConns.Store(0)
	tt.expect(`rlogin: reconnected\x1b\[K\r\n`)
	data, _ := tt.out.Snapshot()
	if run := string(data[start:tt.mark]); !statusRun.MatchString(run) {
		t.Errorf("the status line is not one line redrawn in place:\n%q", run)
	}
	tt.expect(`TYPED5\.\r\n\$ `)
	if again := tt.shellPID(); again != pid {
		t.Errorf("after the resume the shell is %s, not %s", again, pid)
	}
	data, _ = tt.out.Snapshot()
	if n := strings.Count(string(data), "TYPED5."); n != 1 {
		t.Errorf("the typed line's output appears %d times, want once", n)
	}
	tt.send("exit\r")
	tt.exits(0, before)
}

// TestReconnectGiveUp: ~^Z while reconnecting suspends rlogin, and ~. ends it at once, status
// 255, the status line replaced by the reason, the terminal restored.
func TestReconnectGiveUp(t *testing.T) {
	s, tt, before, _ := loginResumable(t, nil)
	s.failConns.Store(1000)
	s.dropConns()
	tt.expect(`reconnecting \(~\. to give up\): [^\r\n]+\x1b\[K`)

	// ~^Z works too (here the kernel discards the stop: see TestEscapes), and the status line
	// is drawn again below its message, the terminal raw again; so does ~?.
	tt.send("~\x1a")
	tt.expect(`(?:^|\x1b\[K)\r\n~\^Z \[suspend rlogin\]\r\n\rrlogin: [^\r\n]*\x1b\[K`)
	if during := tt.termios(); !isRaw(during) {
		t.Errorf("terminal not raw after ~^Z: %+v", during)
	}
	tt.send("~?")
	tt.expect(`(?:^|\x1b\[K)\r\nSupported escape sequences:\r\n(?:[^\r\n]*\r\n)+\rrlogin: [^\r\n]*\x1b\[K`)

	tt.send("~.")
	tt.expect(`\r\x1b\[K\r(\r\n)?rlogin: connection to 127\.0\.0\.1 lost: gave up reconnecting \(~\.\)\r?\n$`)
	tt.exits(ExitFailure, before)
}

// TestReconnectRefused: when the server no longer has the session, rlogin says so and exits 255.
func TestReconnectRefused(t *testing.T) {
	s, tt, before, _ := loginResumable(t, func(s *testServer) { s.forget = true })
	s.dropConns()
	tt.expect(`rlogin: the session on 127\.0\.0\.1 ended while disconnected\r?\n$`)
	tt.exits(ExitFailure, before)
}

// TestReconnectTimeout: rlogin gives up once the server's detach timeout has passed.
func TestReconnectTimeout(t *testing.T) {
	s, tt, before, _ := loginResumable(t, func(s *testServer) { s.detach = 2 * time.Second })
	s.failConns.Store(1000)
	s.dropConns()
	tt.expect(`rlogin: gave up reconnecting to 127\.0\.0\.1 after 2 s: [^\r\n]+\r?\n$`)
	tt.exits(ExitFailure, before)
}

// TestReconnectSignal: a signal that ends rlogin while it reconnects restores the terminal too.
func TestReconnectSignal(t *testing.T) {
	s, tt, before, _ := loginResumable(t, nil)
	s.failConns.Store(1000)
	s.dropConns()
	tt.expect(`reconnecting \(~\. to give up\): [^\r\n]+\x1b\[K`)
	if err := tt.cmd.Process.Signal(unix.SIGTERM); err != nil {
		t.Fatal(err)
	}
	tt.expect(`rlogin: killed by signal 15 \(SIGTERM\)\r?\n$`)
	tt.exits(128+15, before)
}

// waitDetached waits until s noticed that a session's connection was lost.
func (s *testServer) waitDetached(t *testing.T) {
	t.Helper()
	select {
	case <-s.detached:
	case <-time.After(testTimeout):
		t.Fatalf("no session detached: %+v", s.list())
	}
}

// TestReattach: after rlogin was killed, rlogin -R takes the detached session over in another
// terminal: the same shell, which kept running.
func TestReattach(t *testing.T) {
	s, tt1, _, pid := loginResumable(t, nil)
	tt1.send("cd /; sleep 1000 & echo BG=$!.\r")
	bg := tt1.expect(`BG=(\d+)\.\r\n\$ `)[1]
	if err := tt1.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-tt1.exited
	s.waitDetached(t)

	tt2, before := reattachShell(t, s, pid)
	tt2.send("pwd; kill -0 " + bg + " && echo ALIVE$((1+1))\r")
	tt2.expect(`(?:\r\n|\$ )/\r\nALIVE2\r\n\$ `) // the same directory, the background job still there
	tt2.send("kill " + bg + "; exit\r")
	tt2.exits(0, before)
}

// reattachShell runs rlogin -R in a new terminal, as a new client with its own home, and checks
// that it takes over the detached session of shell pid; it returns the terminal and its state
// before rlogin.
func reattachShell(t *testing.T, s *testServer, pid string) (*testTerminal, unix.Termios) {
	t.Helper()
	home := t.TempDir()
	s.trust(t, home)
	tt := openTerminal(t)
	before := tt.termios()
	tt.start(userEnv(home), "-R", "-l", "tester", "-p", s.port, "127.0.0.1")
	tt.expect(`rlogin: reattaching session [0-9a-f]{8} on 127\.0\.0\.1 \(detached \d+s ago\)\r\n`)
	tt.ready()
	if again := tt.shellPID(); again != pid {
		t.Errorf("reattached to shell %s, not %s", again, pid)
	}
	return tt, before
}

// TestReattachTakeOver: rlogin -R ID takes over a session whose client is still connected; that
// client is told and exits 255.
func TestReattachTakeOver(t *testing.T) {
	s, tt1, before1, pid := loginResumable(t, nil)
	list := s.list()
	if len(list) != 1 {
		t.Fatalf("%d sessions, want 1", len(list))
	}
	home := t.TempDir()
	s.trust(t, home)
	tt2 := openTerminal(t)
	tt2.start(userEnv(home), "-R", list[0].ID.Short(), "-l", "tester", "-p", s.port, "127.0.0.1")
	tt2.expect(`rlogin: taking over session ` + list[0].ID.Short() + ` on 127\.0\.0\.1 from its client at 127\.0\.0\.1:\d+\r\n`)
	tt1.expect(`rlogin: connection closed by 127\.0\.0\.1: taken over from 127\.0\.0\.1:\d+\r\n`)
	tt1.exits(ExitFailure, before1)
	tt2.ready()
	if again := tt2.shellPID(); again != pid {
		t.Errorf("took over shell %s, not %s", again, pid)
	}
	tt2.send("exit\r")
	tt2.wait()
}

// TestReconnectAfterBlackhole: a path that goes silent is given up after the keepalive's bound;
// the new tries wait until the path is back, and the line typed just before the silence was
// noticed reaches the shell once.
func TestReconnectAfterBlackhole(t *testing.T) {
	s := startServer(t, func(s *testServer) { s.detach = time.Hour })
	link := linkemu.New(linkemu.Profile{})
	port, home := s.behindLink(t, link)
	tt := openTerminal(t)
	tt.start(userEnv(home), "-o", "ServerAliveInterval=1", "-o", "ServerAliveCountMax=2", "-l", "tester", "-p", port, "127.0.0.1")
	tt.ready()
	pid := tt.shellPID()

	link.Blackhole()
	tt.send("echo DURING$((3+4)).\r")
	tt.expect(`rlogin: connection to 127\.0\.0\.1 lost; reconnecting \(~\. to give up\): no answer[^\r\n]*\x1b\[K`) // cut to 79 columns
	link.Restore()
	tt.expect(`rlogin: reconnected\x1b\[K\r\n`)
	if again := tt.shellPID(); again != pid {
		t.Errorf("after the resume the shell is %s, not %s", again, pid)
	}
	tt.send("exit\r")
	tt.wait()
	if n := strings.Count(tt.output(), "DURING7."); n != 1 {
		t.Errorf("the line typed as the path went silent ran %d times, want once", n)
	}
}

// TestReconnectSameKey: a reconnection proves the key of the login again: the agent's (whose
// first connection rlogin closed after the login), or a passphrase-protected file's, without
// asking for the passphrase again.
func TestReconnectSameKey(t *testing.T) {
	t.Run("agent", func(t *testing.T) {
		agentEnv, pub := agentWithKey(t)
		s := startServer(t, func(s *testServer) { s.detach, s.authorized = time.Hour, []ed25519.PublicKey{pub} })
		home := t.TempDir()
		s.knowHost(t, home)
		tt := openTerminal(t)
		tt.start(append(userEnv(home), agentEnv), "-l", "tester", "-p", s.port, "127.0.0.1")
		tt.ready()
		s.nextOffered(t)
		s.dropConns()
		tt.expect(`rlogin: reconnected\x1b\[K\r\n`)
		if got := s.nextOffered(t); !got.Equal(pub) {
			t.Errorf("the reconnection offered %s, want the agent's key %s", keys.Fingerprint(got), keys.Fingerprint(pub))
		}
		tt.ready()
		tt.send("exit\r")
		tt.wait()
	})
	t.Run("passphrase", func(t *testing.T) {
		s, tt := passphraseLogin(t, func(s *testServer) { s.detach = time.Hour })
		s.dropConns()
		tt.expect(`rlogin: reconnected\x1b\[K\r\n`)
		tt.ready()
		tt.send("exit\r")
		tt.wait()
		if n := strings.Count(tt.output(), "Enter passphrase"); n != 1 {
			t.Errorf("the passphrase was asked %d times, want once", n)
		}
	})
}

// TestReconnectSkipped: output beyond the server's buffer while detached is dropped, and the
// message after the resume says how much.
func TestReconnectSkipped(t *testing.T) {
	dir := t.TempDir()
	start, done := filepath.Join(dir, "start"), filepath.Join(dir, "done")
	s, tt, before, _ := loginResumable(t, func(s *testServer) { s.detachBuffer = 1000 })
	s.failConns.Store(1000)
	// The output comes once the connection is gone (the test makes the file start then), and
	// the file done says that the shell wrote it all.
	tt.send("while [ ! -e " + start + " ]; do sleep 0.01; done; seq 1 20000; touch " + done + "\r")
	tt.expect(`done\r\n`) // the echo: the shell has the line
	s.dropConns()
	s.waitDetached(t)
	tt.expect(`reconnecting \(~\. to give up\): [^\r\n]+\x1b\[K`)
	if err := os.WriteFile(start, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	waitFile(t, done)
	s.failConns.Store(0)
	m := tt.expect(`rlogin: reconnected; (\d+) bytes of output skipped\x1b\[K\r\n`)
	if n, _ := strconv.Atoi(m[1]); n < 100000 {
		t.Errorf("%d bytes skipped, want most of seq's 108894", n)
	}
	tt.expect(`20000\r\n\$ `)
	tt.send("exit\r")
	tt.exits(0, before)
}

// waitFile waits until the file at path exists (a shell on the test's server made it).
func waitFile(t *testing.T, path string) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for {
		if _, err := os.Stat(path); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not appear", path)
		}
		time.Sleep(10 * time.Millisecond) // no notification to wait for: poll the file system
	}
}

// TestReconnectGiveUpWhileTrying: ~. ends rlogin at once also while a try waits on a path that
// drops everything (it would wait up to the connect timeout).
func TestReconnectGiveUpWhileTrying(t *testing.T) {
	s := startServer(t, func(s *testServer) { s.detach = time.Hour })
	link := linkemu.New(linkemu.Profile{})
	port, home := s.behindLink(t, link)
	tt := openTerminal(t)
	before := tt.termios()
	tt.start(userEnv(home), "-o", "ServerAliveInterval=1", "-o", "ServerAliveCountMax=1", "-l", "tester", "-p", port, "127.0.0.1")
	tt.ready()
	link.Blackhole()
	tt.expect(`reconnecting \(~\. to give up\): no answer[^\r\n]*\x1b\[K`) // and the first try waits
	start := time.Now()
	tt.send("~.")
	tt.expect(`rlogin: connection to 127\.0\.0\.1 lost: gave up reconnecting \(~\.\)\r?\n$`)
	tt.exits(ExitFailure, before)
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("rlogin took %v to give up", took)
	}
	link.Restore()
}

// TestHangupDetaches: when rlogin's terminal hangs up (its window closed: the master side goes,
// rlogin reads EIO and gets SIGHUP), rlogin drops the connection without the end of input, which
// would log the shell out, and exits 255; the session stays detached with its shell, which rlogin
// -R takes back. The same when SIGHUP is ignored (nohup): then only the read tells rlogin.
func TestHangupDetaches(t *testing.T) {
	for _, tc := range []struct {
		name   string
		prefix []string
	}{
		{"SIGHUP", nil},
		{"SIGHUP ignored", []string{"/bin/sh", "-c", `trap "" HUP; exec "$0" "$@"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := startServer(t, func(s *testServer) { s.detach = time.Hour })
			home := t.TempDir()
			s.trust(t, home)
			tt1 := openTerminal(t)
			tt1.prefix = tc.prefix
			tt1.start(userEnv(home), "-l", "tester", "-p", s.port, "127.0.0.1")
			tt1.ready()
			pid := tt1.shellPID()
			if err := tt1.master.Close(); err != nil {
				t.Fatal(err)
			}
			if code := tt1.wait(); code != ExitFailure {
				t.Errorf("after the hang-up rlogin exited %d, want %d", code, ExitFailure)
			}
			s.waitDetached(t)

			tt2, _ := reattachShell(t, s, pid)
			tt2.send("exit\r")
			tt2.wait()
		})
	}
}

// keptSession is a remoteSession whose server keeps it when its connection goes (resume).
type keptSession struct{}

func (keptSession) Resize(session.WindowSize) error { return nil }
func (keptSession) Wait() error                     { return nil }
func (keptSession) Close() error                    { return nil }
func (keptSession) Resumable() (session.SessionID, time.Duration, bool) {
	return session.SessionID{}, time.Hour, true
}

// TestHangupSIGHUPAfterHandlers: the SIGHUP of a hang-up that leaves the session detached may
// come after interact has removed its handlers (Linux wakes the terminal's readers, whose read
// fails, before it signals the session leader); it must not kill rlogin, which exits 255. Here
// the read's hang-up comes first, the handlers go as interact removes them, and then the
// SIGHUP: rlogin runs in this process, which the SIGHUP killed before the fix (TestHangupDetaches
// saw it as "rlogin was killed by hangup" on a loaded machine).
func TestHangupSIGHUPAfterHandlers(t *testing.T) {
	r := newRunner(&Config{}, Options{}, io.Discard)
	r.sess = keptSession{}
	w := r.watchSignals(t.Context())
	if !r.hangUp() {
		t.Fatal("hangUp: the session is not kept")
	}
	r.stopWatching(w)
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	select {
	case <-r.hangUpSIGHUP: // caught, and dropped
	case <-time.After(testTimeout):
		t.Fatal("the hang-up's SIGHUP was not caught")
	}
	r.stopSignal(r.hangUpSIGHUP) // as interact does once it returns
}

// TestHangupWithoutResume: without resume a hang-up ends the session as before: the shell is not
// kept, so there is nothing to reattach. As before, the hang-up's SIGHUP may also kill rlogin:
// Linux sends it after the read that fails, and it may find rlogin past its handlers.
func TestHangupWithoutResume(t *testing.T) {
	s := startServer(t, func(s *testServer) { s.detach = time.Hour })
	tt, _ := login(t, s, "-o", "Resume=no")
	if err := tt.master.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-tt.exited:
	case <-time.After(testTimeout):
		t.Fatalf("rlogin did not exit; output:\n%q", tt.out.String())
	}
	var ee *exec.ExitError
	if errors.As(tt.waitErr, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGHUP {
			return // killed the default way, as a hang-up kills a program that does not catch it
		}
	}
	if code := tt.wait(); code == ExitFailure {
		t.Errorf("without resume a hang-up exited %d, as a kept session does", code)
	}
}
