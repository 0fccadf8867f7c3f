package e2e

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/rlogin-go/rlogin/internal/linkemu"
)

// startOldDaemon starts the rlogind binary bin of an old release in user mode, with its own HOME.
func startOldDaemon(t *testing.T, bin string) *daemon {
	t.Helper()
	return startDaemonBin(t, newHome(t), bin)
}

// cutMessage logs in with the rlogin binary bin (and args) to d through a link, cuts the path,
// checks that rlogin ends as it did before resume (afterCut: status 255, the terminal restored,
// one line), and returns that line, with the ports of its addresses made "PORT" (they differ
// from run to run).
func cutMessage(t *testing.T, bin string, d *daemon, args ...string) (line string, pid int) {
	t.Helper()
	link := linkemu.New(linkemu.Profile{Delay: wanRTT / 2})
	tm := rloginBinVia(t, bin, d, link, args...)
	pid = shellPID(t, tm)
	link.Cut()
	afterCut(t, tm)
	data, _ := tm.out.Snapshot()
	text := string(data)
	line = strings.TrimRight(text[strings.LastIndex(text, "rlogin: "):], "\r\n")
	return regexp.MustCompile(`(127\.0\.0\.1):\d+`).ReplaceAllString(line, "$1:PORT"), pid
}

// TestResumeOldPeers: the release before resume against this one. Its rlogin logs in to the
// new rlogind, which offers it nothing it does not know, and a cut ends the session as before:
// the same last words as against its own rlogind, and the shell is hung up at once (no detached
// session). The new rlogin logs in to the old rlogind, and a cut ends it with the same words as
// the old rlogin's; rlogin -R says that the old rlogind is too old.
func TestResumeOldPeers(t *testing.T) {
	oldRlogin, oldRlogind := oldRelease(t, beforeResume)
	newRlogin := filepath.Join(binDir, "rlogin")
	old := startOldDaemon(t, oldRlogind)
	before, _ := cutMessage(t, oldRlogin, old)
	t.Logf("the old pair after a cut: %q", before)

	t.Run("old client, new server", func(t *testing.T) {
		s := userResumeServer(t)
		got, pid := cutMessage(t, oldRlogin, s.d)
		if got != before {
			t.Errorf("the old rlogin's last words against the new rlogind: %q, want %q (as against its own)", got, before)
		}
		s.logLine(t, `msg="session ended".*remote=127\.0\.0\.1:\d+`, 0)
		waitFor(t, "the shell to be reaped", func() bool {
			_, err := os.Stat("/proc/" + strconv.Itoa(pid))
			return os.IsNotExist(err)
		})
		if strings.Contains(s.logText(), `msg="session detached"`) {
			t.Errorf("rlogind kept the old client's session:\n%s", s.logText())
		}
	})
	t.Run("new client, old server", func(t *testing.T) {
		d := startOldDaemon(t, oldRlogind)
		got, _ := cutMessage(t, newRlogin, d, clientAlive...)
		if got != before {
			t.Errorf("the new rlogin's last words against the old rlogind: %q, want %q (the old rlogin's)", got, before)
		}
	})
	t.Run("reattach, old server", func(t *testing.T) {
		d := startOldDaemon(t, oldRlogind)
		writeFile(t, filepath.Join(d.home, ".rlogin", "known_hosts"), d.hostKeyLine(t))
		tm := startTerminal(t, clientEnv(d.home), newRlogin, "-R", "-p", d.port, "127.0.0.1")
		tm.expect(`rlogin: 127\.0\.0\.1's rlogind cannot list or reattach sessions \(too old\)\r?\n`)
		if code := tm.wait(); code != 255 {
			t.Errorf("rlogin -R against the old rlogind exited %d, want 255", code)
		}
	})
}
