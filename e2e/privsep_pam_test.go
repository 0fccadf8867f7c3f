//go:build pam

package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/rlogin-go/rlogin/internal/logintest"
)

// Password logins through PAM in the privilege-separated monitor, with the real binaries: run by
// `go test -tags pam ./e2e/` as root (CI does), which builds rlogind with PAM for them.

// pamBuild is the rlogind built with PAM, once per run.
var pamBuild struct {
	sync.Mutex
	path string
}

// pamRlogind builds rlogind with -tags pam (gcc and the PAM headers, Debian's libpam0g-dev) in
// the binaries' directory, once, and returns its path.
func pamRlogind(t *testing.T) string {
	t.Helper()
	pamBuild.Lock()
	defer pamBuild.Unlock()
	if pamBuild.path == "" {
		path := filepath.Join(binDir, "rlogind-pam")
		args := []string{"build", "-tags", "pam", "-o", path}
		if raceEnabled {
			args = append(args, "-race")
		}
		out, err := exec.Command("go", append(args, "../cmd/rlogind")...).CombinedOutput()
		if err != nil {
			t.Fatalf("building rlogind with PAM: %v\n%s", err, out)
		}
		pamBuild.path = path
	}
	return pamBuild.path
}

// startPAMRlogind starts the PAM build of rlogind as root would run it: privilege separation,
// password logins, classic rlogin on the same port, no penalties for loopback guesses.
func startPAMRlogind(t *testing.T) (port string, logText func() string) {
	t.Helper()
	logintest.RequireRoot(t)
	bin := pamRlogind(t)
	// The network process runs as a uid with no rights but everyone's: it must be able to
	// execute rlogind, which TestMain builds in a directory of root's.
	if err := os.Chmod(binDir, 0o755); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(t.TempDir(), "rlogind.conf")
	writeFile(t, conf, "privilege-separation yes\npassword-authentication yes\nclassic yes\nstop-grace 2s\n")
	port = freePort(t)
	start, logText := systemRlogind(t, bin, conf, port)
	d := start()
	t.Cleanup(func() {
		d.stop(t)
		if t.Failed() {
			t.Logf("rlogind log:\n%s", logText())
		}
	})
	return port, logText
}

// passwordPrompt starts bin (an rlogin) as -l name on port in a fresh home, accepts the host
// key, and waits for the password prompt.
func passwordPrompt(t *testing.T, bin, port, name string) *terminal {
	t.Helper()
	tm := startTerminal(t, clientEnv(newHome(t)), bin, "-l", name, "-p", port, "127.0.0.1")
	tm.expect(`\(yes/no\)\? `)
	tm.send("yes\r")
	tm.expect(`Password: `)
	return tm
}

// TestPAMPasswordLogin: rlogin logs in with a password through the in-band prompt, and gets the
// shell's exit status; a wrong password ends with "login incorrect" and 255, and so does a user
// that does not exist, after the same prompt and about the same time (issue 12: an unknown user
// was refused at once, a known one got "Password:", and a good login's status was login(1)'s 0).
func TestPAMPasswordLogin(t *testing.T) {
	port, logText := startPAMRlogind(t)
	u := addClassicUser(t, "rlt-pam-e2e")
	rlogin := filepath.Join(binDir, "rlogin")

	tm := passwordPrompt(t, rlogin, port, u.name)
	tm.send(u.password + "\r")
	tm.ready()
	tm.send("exit 3\r")
	if code := tm.wait(); code != 3 {
		t.Errorf("rlogin after `exit 3`: exit status %d, want 3", code)
	}

	// The verdict's time, from the answer to the end, for a known user's wrong password and for
	// an unknown user: PAM's delay (login's stack: 3 s) either way.
	var known, unknown []time.Duration
	for range 3 {
		for _, name := range []string{u.name, "rlt-pam-nobody"} {
			tm := passwordPrompt(t, rlogin, port, name)
			start := time.Now()
			tm.send("wrong-guess\r")
			tm.expect(`login incorrect`)
			if code := tm.wait(); code != 255 {
				t.Errorf("a wrong password for %s: exit status %d, want 255", name, code)
			}
			if d := time.Since(start); name == u.name {
				known = append(known, d)
			} else {
				unknown = append(unknown, d)
			}
		}
	}
	// PAM draws each delay at random within 50% of the stack's (libpam's _pam_compute_delay;
	// pam_faildelay's 3 s: 1.5-4.5 s), so a single pair may differ by 3 s; what matters is that
	// neither is answered at once.
	t.Logf("a wrong password's verdict: known user %v, unknown user %v", known, unknown)
	for _, d := range append(known, unknown...) {
		if d < logintest.PAMRefusalMin || d > logintest.PAMRefusalMax {
			t.Errorf("a verdict after %v, want PAM's delay (1.5-4.5 s): known %v, unknown %v", d, known, unknown)
		}
	}
	failed := regexp.MustCompile(`msg="authentication failed" .*method=password user=rlt-pam-nobody`)
	waitFor(t, "the failures logged", func() bool {
		return len(failed.FindAllString(logText(), -1)) == 3
	})
}

// TestPAMPasswordOldClients: the in-band prompt is what login(1) looked like, so the previous
// release's rlogin and netkit's classic rlogin log in with a password as they did.
func TestPAMPasswordOldClients(t *testing.T) {
	port, _ := startPAMRlogind(t)
	u := addClassicUser(t, "rlt-pam-old")
	t.Run("5a17377", func(t *testing.T) {
		old, _ := oldRelease(t, "5a17377")
		tm := passwordPrompt(t, old, port, u.name)
		tm.send(u.password + "\r")
		tm.ready()
		tm.send("exit 5\r")
		if code := tm.wait(); code != 5 {
			t.Errorf("the old rlogin after `exit 5`: exit status %d, want 5", code)
		}
	})
	t.Run("netkit", func(t *testing.T) {
		requireClassicPeers(t, netkitRlogin)
		tm := classicClient(t, true, false, port, u.name)
		tm.expect(`Password: `)
		tm.send(u.password + "\r")
		tm.ready()
		tm.send("exit\r")
		tm.wait()
	})
}
