package e2e

import (
	"crypto/ed25519"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rlogin-go/rlogin/internal/logintest"
	"github.com/rlogin-go/rlogin/keys"
)

// keyProofRlogind starts rlogind as root with privilege separation and
// -permit-root-login prohibit-password, and the authorized keys in a directory of its own
// (-authorized-keys DIR/%u), where root's lists user's key too. It returns its port and log.
func keyProofRlogind(t *testing.T, user *logintest.User, dir string) (port string, logText func() string) {
	t.Helper()
	keysDir, err := os.MkdirTemp("/run", "rlt-kp-keys-") // traversable by the user, unlike a test's temporary directory
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(keysDir) })
	if err := os.Chmod(keysDir, 0o755); err != nil {
		t.Fatal(err)
	}
	line := keys.MarshalAuthorizedKey(user.Key.Public().(ed25519.PublicKey), "kp")
	for name, uid := range map[string]int{"root": 0, user.Name: user.UID} {
		path := filepath.Join(keysDir, name)
		if err := os.WriteFile(path, line, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(path, uid, -1); err != nil {
			t.Fatal(err)
		}
	}
	conf := filepath.Join(dir, "rlogind.conf")
	writeFile(t, conf, "privilege-separation yes\npassword-authentication no\npermit-root-login prohibit-password\n"+
		"authorized-keys "+filepath.Join(keysDir, "%u")+"\n")
	port = freePort(t)
	start, logText := systemRlogind(t, filepath.Join(binDir, "rlogind"), conf, port)
	d := start()
	t.Cleanup(func() { d.stop(t) })
	return port, logText
}

// TestKeyProofRootLogin: under privilege separation the monitor checks the client's key
// itself (capability keyproof), so rlogin logs in as root with an authorized key when
// -permit-root-login allows it; the release before keyproof (5a17377) proves nothing to the
// monitor, so it is refused as root, and still logs in as a normal user.
func TestKeyProofRootLogin(t *testing.T) {
	user, dir, keyFile := privsepUser(t, "rlt-kp-e2e")
	port, logText := keyProofRlogind(t, user, dir)
	home := newHome(t)

	tm := startTerminal(t, clientEnv(home), filepath.Join(binDir, "rlogin"), "-i", keyFile, "-l", "root", "-p", port, "127.0.0.1")
	tm.expect(`\(yes/no\)\? `)
	tm.send("yes\r")
	tm.send("echo ROOT $((40+2)) $(id -u).\r")
	tm.expect(`ROOT 42 0\.`)
	tm.send("exit\r") // 0 also through login(1), which a build without PAM runs
	if code := tm.wait(); code != 0 {
		t.Errorf("rlogin as root after exit: exit status %d, want 0\n%s", code, logText())
	}

	oldRlogin, _ := oldRelease(t, beforeCommands)
	old := startTerminal(t, clientEnv(home), oldRlogin, "-i", keyFile, "-l", "root", "-p", port, "127.0.0.1")
	old.expect(`permission denied`)
	if code := old.wait(); code != 255 {
		t.Errorf("the old rlogin as root: exit status %d, want 255", code)
	}
	if !strings.Contains(logText(), "only from a client that proves it") {
		t.Errorf("the old client's root login is not logged as refused for want of a key proof:\n%s", logText())
	}

	old = startTerminal(t, clientEnv(home), oldRlogin, "-i", keyFile, "-l", user.Name, "-p", port, "127.0.0.1")
	old.send("echo OLD $((40+3)) $(id -un).\r")
	old.expect(`OLD 43 rlt-kp-e2e\.`)
	old.send("exit\r")
	if code := old.wait(); code != 0 {
		t.Errorf("the old rlogin as %s: exit status %d, want 0", user.Name, code)
	}
}

// TestKeyProofOldServer: rlogin offers keyproof to the release before it (5a17377), which
// ignores the capability and never sends CHALLENGE: the login goes on as before.
func TestKeyProofOldServer(t *testing.T) {
	_, oldRlogind := oldRelease(t, beforeCommands)
	d := startDaemonBin(t, newHome(t), oldRlogind)
	tm := rlogin(t, d, d.home)
	tm.expect(`\(yes/no\)\? `)
	tm.send("yes\r")
	tm.ready()
	tm.send("exit 4\r")
	if code := tm.wait(); code != 4 {
		t.Errorf("rlogin against the old rlogind after `exit 4`: exit status %d, want 4\n%s", code, d.log.String())
	}
}
