package e2e

import (
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/rlogin-go/rlogin/internal/logintest"
	"github.com/rlogin-go/rlogin/internal/termtest"
)

// TestPrivsepSessionOutlivesRestart: rlogind run by root with -privilege-separation, as an
// administrator would run it. A user logs in with rlogin; SIGTERM to rlogind (a restart, an
// upgrade) leaves the session running, as sshd's do; a new rlogind serves new logins; and
// `rlogind -end-sessions`, the documented way to end them all, ends it: the client is told
// the service is stopping. Issue 12: SIGTERM ended every session, the administrator's own
// included.
func TestPrivsepSessionOutlivesRestart(t *testing.T) {
	user, dir, keyFile := privsepUser(t, "rlt-ps-e2e")
	conf := filepath.Join(dir, "rlogind.conf")
	writeFile(t, conf, "privilege-separation yes\npassword-authentication no\nstop-grace 2s\n")
	port := freePort(t)
	start, logText := systemRlogind(t, filepath.Join(binDir, "rlogind"), conf, port)
	d := start()

	home := newHome(t)
	tm := startTerminal(t, clientEnv(home), filepath.Join(binDir, "rlogin"), "-i", keyFile, "-l", user.Name, "-p", port, "127.0.0.1")
	tm.expect(`\(yes/no\)\? `)
	tm.send("yes\r")
	tm.send("echo BEFORE $((40+2)) $(id -un).\r")
	tm.expect(`BEFORE 42 rlt-ps-e2e\.`)

	d.stop(t)
	if !strings.Contains(logText(), "sessions go on") {
		t.Fatalf("rlogind's stop did not say the sessions go on:\n%s", logText())
	}
	tm.send("echo AFTER $((40+3)).\r")
	tm.expect(`AFTER 43\.`)

	// The restarted rlogind serves new logins, beside the old session.
	d2 := start()
	defer d2.stop(t)
	tm2 := startTerminal(t, clientEnv(home), filepath.Join(binDir, "rlogin"), "-i", keyFile, "-l", user.Name, "-p", port, "127.0.0.1")
	tm2.send("echo SECOND $((40+4)).\r")
	tm2.expect(`SECOND 44\.`)
	tm2.send("exit\r")
	if code := tm2.wait(); code != 0 {
		t.Errorf("second login: exit status %d", code)
	}

	// The second session's monitor ends a moment after its client: then one session is left.
	waitFor(t, "one session left", func() bool { return len(monitors()) == 1 })
	end := exec.Command(filepath.Join(binDir, "rlogind"), "-end-sessions", "-config", conf)
	out, err := end.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "ended 1 sessions") {
		t.Fatalf("rlogind -end-sessions: %v\n%s", err, out)
	}
	tm.expectWithin(`service stopping`, 5*time.Second)
	if code := tm.wait(); code != 255 {
		t.Errorf("rlogin's exit status after -end-sessions: %d, want 255", code)
	}
	waitFor(t, "the session's processes to end", func() bool { return len(processesIn(user.Home)) == 0 })
}

// systemRlogind returns a function that starts the rlogind binary bin as root would run it, with
// the configuration file conf, on 127.0.0.1:port, its host key and log in a directory of their
// own, and waits until it serves; and one that returns its log so far.
func systemRlogind(t *testing.T, bin, conf, port string) (start func() *daemon, logText func() string) {
	t.Helper()
	dir := t.TempDir()
	logFile := filepath.Join(dir, "rlogind.log")
	args := []string{"-config", conf, "-addr", "127.0.0.1:" + port, "-host-key", filepath.Join(dir, "host_key"),
		"-log-file", logFile}
	logText = func() string { b, _ := os.ReadFile(logFile); return string(b) }
	start = func() *daemon {
		d := &daemon{port: port, log: &termtest.Buffer{}, done: make(chan struct{})}
		d.cmd = exec.Command(bin, args...)
		d.cmd.Env = []string{"HOME=/root", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
		before := strings.Count(logText(), `msg="serving logins"`)
		d.start(t, "")
		waitFor(t, "rlogind to serve", func() bool { return strings.Count(logText(), `msg="serving logins"`) > before })
		return d
	}
	return start, logText
}

// privsepUser prepares a test of rlogind run by root with privilege separation: a user to log
// in as, a directory for the daemon's files, and the user's key in it, for rlogin -i.
func privsepUser(t *testing.T, name string) (user *logintest.User, dir, keyFile string) {
	t.Helper()
	logintest.RequireRoot(t)
	// The network process runs as a uid with no rights but everyone's: it must be able to
	// execute rlogind, which TestMain builds in a directory of root's.
	if err := os.Chmod(binDir, 0o755); err != nil {
		t.Fatal(err)
	}
	user = logintest.AddUser(t, name)
	dir = t.TempDir()
	keyFile = filepath.Join(dir, "id_ed25519")
	block, err := ssh.MarshalPrivateKey(user.Key, "")
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, keyFile, string(pem.EncodeToMemory(block)))
	return user, dir, keyFile
}

// monitors lists the pids of the rlogind session monitors running (privilege separation).
func monitors() []string {
	var pids []string
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		if cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline")); err == nil && string(cmdline) == "rlogind: session\x00" {
			pids = append(pids, e.Name())
		}
	}
	return pids
}
