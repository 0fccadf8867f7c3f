package e2e

import (
	"crypto/ed25519"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/rlogin-go/rlogin/internal/logintest"
	"github.com/rlogin-go/rlogin/internal/termtest"
	"github.com/rlogin-go/rlogin/keys"
	"github.com/rlogin-go/rlogin/session"
)

// inheritedFD is the descriptor rlogind inherits in these tests, as in the report of issue 12
// (item 3): a daemon started from a shell that held it open on a root-only file.
const inheritedFD = 251

// secretFile makes a root-only (0600) file for rlogind to inherit, and returns its path and
// content.
func secretFile(t *testing.T) (path, content string) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "secret")
	content = "SECRET-OF-THE-DAEMONS-PARENT"
	if err := os.WriteFile(path, []byte(content+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path, content
}

// startHolding starts rlogind with args and env as the report did, from a shell holding
// inheritedFD open on path (bash: sh may not redirect descriptors above 9), and waits until its
// log has ready. The test's cleanup stops it.
func startHolding(t *testing.T, path string, env []string, ready string, args ...string) *daemon {
	t.Helper()
	d := &daemon{log: &termtest.Buffer{}, done: make(chan struct{})}
	script := fmt.Sprintf(`exec %d<"$0"; exec "$@"`, inheritedFD)
	d.cmd = exec.Command("/bin/bash", append([]string{"-c", script, path, filepath.Join(binDir, "rlogind")}, args...)...)
	d.cmd.Env = env
	d.start(t, ready)
	return d
}

// checkShellHasOnlyItsTerminal checks, from inside a session and from outside, that the
// session's shell has none of the daemon's descriptors: reading inheritedFD fails, and the
// shell, idle at its prompt, holds exactly 0, 1, 2 (its terminal) and 255 (bash's own copy of
// it). send types a line, expect waits for the output to match, output is all output so far.
func checkShellHasOnlyItsTerminal(t *testing.T, send func(string), expect func(string) []string, output func() string, secret string) {
	t.Helper()
	// The typed line echoes "$?" and "$$" literally: only the shell's output has digits there.
	send(fmt.Sprintf(`[ -e /proc/$$/fd/%d ]; echo "FD-OPEN=$?"; cat <&%[1]d; echo "CAT=$?"; echo "SHELL=$$"`, inheritedFD))
	if m := expect(`FD-OPEN=(\d+)`); m[1] == "0" {
		t.Errorf("descriptor %d is open in the session's shell", inheritedFD)
	}
	if m := expect(`CAT=(\d+)`); m[1] == "0" {
		t.Errorf("cat <&%d succeeded in the session", inheritedFD)
	}
	pid := expect(`SHELL=(\d+)`)[1]
	send("echo READY$((40+2))")
	expect(`READY42`) // the shell is back at its prompt, holding no pipe of a command
	if strings.Contains(output(), secret) {
		t.Errorf("the session printed the daemon's inherited file:\n%s", output())
	}
	ents, err := os.ReadDir("/proc/" + pid + "/fd")
	if err != nil {
		t.Fatal(err)
	}
	var fds []int
	for _, e := range ents {
		fd, _ := strconv.Atoi(e.Name())
		fds = append(fds, fd)
	}
	slices.Sort(fds)
	if !slices.Equal(fds, []int{0, 1, 2, 255}) {
		t.Errorf("the session's shell (pid %s) holds descriptors %v, want [0 1 2 255]", pid, fds)
		for _, fd := range fds {
			target, _ := os.Readlink(fmt.Sprintf("/proc/%s/fd/%d", pid, fd))
			t.Logf("fd %d: %s", fd, target)
		}
	}
}

// checkDaemonClosed checks that rlogind (pid) closed inheritedFD on path, not merely kept it
// from its children (the number itself may be in use again, for a descriptor of its own).
func checkDaemonClosed(t *testing.T, pid int, path string) {
	t.Helper()
	if target, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%d", pid, inheritedFD)); target == path {
		t.Errorf("rlogind still holds descriptor %d on %s", inheritedFD, target)
	}
}

// TestInheritedDescriptorNotInSession reproduces issue 12's item 3 in user mode: rlogind
// started with descriptor 251 open on a 0600 file; a session must not be able to read it.
func TestInheritedDescriptorNotInSession(t *testing.T) {
	path, secret := secretFile(t)
	home := newHome(t)
	port := freePort(t)
	addr := net.JoinHostPort("127.0.0.1", port)
	// -user-mode: the tests run as root in CI, where rlogind would otherwise serve every user.
	d := startHolding(t, path, []string{"HOME=" + home, "PATH=/usr/local/bin:/usr/bin:/bin"}, `msg="serving logins"`,
		"-user-mode", "-config", "none", "-addr", addr)
	d.home, d.port, d.addr = home, port, addr
	checkDaemonClosed(t, d.cmd.Process.Pid, path)
	writeFile(t, filepath.Join(home, ".rlogin", "known_hosts"), d.hostKeyLine(t))
	tm := rlogin(t, d, home)
	tm.ready()
	checkShellHasOnlyItsTerminal(t, func(s string) { tm.send(s + "\r") }, tm.expect, tm.out.String, secret)
	tm.send("exit\r")
	if code := tm.wait(); code != 0 {
		t.Fatalf("rlogin exited %d after exit, want 0", code)
	}
}

// TestInheritedDescriptorNotInSystemSession is the same in system mode, as the report found
// it: rlogind run by root, a normal user logged in; with privilege separation (the default) and
// in one process (privilege-separation no, through login(1)).
func TestInheritedDescriptorNotInSystemSession(t *testing.T) {
	logintest.RequireRoot(t)
	if _, err := os.Stat("/bin/login"); err != nil {
		t.Fatalf("system mode needs login(1) (Debian package login): %v", err)
	}
	// The network process runs as a uid with no rights but everyone's: it must be able to
	// execute rlogind, which TestMain builds in a directory of root's.
	if err := os.Chmod(binDir, 0o755); err != nil {
		t.Fatal(err)
	}
	user := logintest.AddUser(t, "rlt-fds-user")
	for _, privsep := range []string{"yes", "no"} {
		t.Run("privilege-separation "+privsep, func(t *testing.T) {
			path, secret := secretFile(t)
			dir := t.TempDir()
			conf := filepath.Join(dir, "rlogind.conf")
			writeFile(t, conf, "permit-root-login no\npassword-authentication no\nprivilege-separation "+privsep+"\n")
			hostKey := filepath.Join(dir, "host_key")
			sock := filepath.Join(dir, "sock")
			d := startHolding(t, path, []string{"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/root"}, `users="all (system mode)"`,
				"-config", conf, "-addr", "unix:"+sock, "-host-key", hostKey)
			checkDaemonClosed(t, d.cmd.Process.Pid, path)
			key, err := keys.Load(hostKey)
			if err != nil {
				t.Fatal(err)
			}
			r, err := logintest.Login(t, "unix:"+sock, key.Public().(ed25519.PublicKey), user.Key,
				session.Request{User: user.Name, Term: "xterm", Window: session.WindowSize{Rows: 24, Cols: 80}})
			if err != nil {
				t.Fatalf("login: %v\n%s", err, d.log.String())
			}
			r.Ready()
			checkShellHasOnlyItsTerminal(t, func(s string) { r.Send(s + "\n") }, r.Expect, r.Output, secret)
			r.ExitWith(0)
		})
	}
}
