package client

import (
	"bytes"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// reattachRun runs rlogin -R (with args before the host) against s as a new client with its own
// home, standard input empty, and returns its status, standard output and standard error.
func reattachRun(t *testing.T, s *testServer, args ...string) (int, string, string) {
	t.Helper()
	home := t.TempDir()
	s.trust(t, home)
	var stdout, stderr bytes.Buffer
	cfg := &Config{Stdout: &stdout, Stderr: &stderr, Home: home, SystemConfig: "none", LocalUser: "tester", Environ: userEnv(home)}
	code := cfg.Run(watchdog(t), append(append([]string{"-R"}, args...), "-p", s.port, "127.0.0.1"))
	return code, stdout.String(), stderr.String()
}

// TestReattachList: -R lists the user's sessions; with none detached it takes none over, prints
// the list and says how to choose, status 255; an id that matches nothing says so.
func TestReattachList(t *testing.T) {
	s := startServer(t, nil)
	tt1, _ := login(t, s)
	tt2, _ := login(t, s)
	code, out, errs := reattachRun(t, s)
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

	code, out, errs = reattachRun(t, s, strings.Repeat("0", 32))
	if want := "rlogin: no session of yours on 127.0.0.1 has an id starting with " + strings.Repeat("0", 32) + "\n"; code != ExitFailure || errs != want {
		t.Errorf("an unknown id: status %d, stderr %q; want %d, %q", code, errs, ExitFailure, want)
	}
	if len(regexp.MustCompile(`(?m)^[0-9a-f]{8}  attached`).FindAllString(out, -1)) != 2 {
		t.Errorf("an unknown id: the list is not the two sessions:\n%s", out)
	}

	// The sessions were not disturbed.
	tt1.ready()
	tt2.ready()
}

// TestReattachNoSessions: -R with no session at all says so.
func TestReattachNoSessions(t *testing.T) {
	s := startServer(t, nil)
	code, out, errs := reattachRun(t, s)
	if want := "rlogin: you have no sessions on 127.0.0.1\n"; code != ExitFailure || out != "" || errs != want {
		t.Errorf("status %d, stdout %q, stderr %q; want %d, nothing, %q", code, out, errs, ExitFailure, want)
	}
}

// TestReattachTooOld: a server older than resume cannot list sessions: -R says so, status 255.
func TestReattachTooOld(t *testing.T) {
	s := startServer(t, func(s *testServer) { s.old = true })
	code, out, errs := reattachRun(t, s)
	if want := "rlogin: 127.0.0.1's rlogind cannot list or reattach sessions (too old)\n"; code != ExitFailure || out != "" || errs != want {
		t.Errorf("status %d, stdout %q, stderr %q; want %d, nothing, %q", code, out, errs, ExitFailure, want)
	}
}

// TestResumeNo: -o Resume=no (and the configuration's "Resume no") does not offer resume, and a
// lost connection ends the session as before; by default rlogin offers it.
func TestResumeNo(t *testing.T) {
	s := startServer(t, nil)
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
	if code := tt.wait(); code != ExitFailure {
		t.Fatalf("exit status %d, want %d", code, ExitFailure)
	}
	if after := tt.termios(); after != before {
		t.Fatalf("terminal not restored:\nbefore %+v\nafter  %+v", before, after)
	}
}
