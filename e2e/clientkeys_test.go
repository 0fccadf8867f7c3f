package e2e

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rlogin-go/rlogin/internal/sshtest"
)

// authorize writes the daemon home's authorized_keys with the public key files given (before
// the daemon starts, so that it authorizes nothing of its own).
func authorize(t *testing.T, daemonHome string, pubFiles ...string) {
	t.Helper()
	var lines strings.Builder
	for _, p := range pubFiles {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		lines.Write(data)
	}
	writeFile(t, filepath.Join(daemonHome, ".rlogin", "authorized_keys"), lines.String())
}

// noKeyFiles fails the test if the client's home holds a private key file.
func noKeyFiles(t *testing.T, home string) {
	t.Helper()
	for _, p := range []string{".rlogin/id_ed25519", ".ssh/id_ed25519"} {
		if _, err := os.Lstat(filepath.Join(home, p)); err == nil {
			t.Errorf("%s exists: the key should have been the agent's only", p)
		}
	}
}

// agentHolding starts an ssh-agent holding a new key named name, and returns the agent's
// SSH_AUTH_SOCK entry and the key's file (still on disk).
func agentHolding(t *testing.T, name string) (env, keyPath string) {
	t.Helper()
	env = "SSH_AUTH_SOCK=" + sshtest.StartAgent(t)
	keyPath = filepath.Join(t.TempDir(), name)
	sshtest.Keygen(t, keyPath, "")
	sshtest.Run(t, []string{env}, "ssh-add", "-q", keyPath)
	return env, keyPath
}

// TestAgentOnlyKeyLogin logs in to a real rlogind with a key that lives only in ssh-agent: no key
// file anywhere on disk, and rlogin -d names the key as ssh-add -l lists it.
func TestAgentOnlyKeyLogin(t *testing.T) {
	agentEnv, keyPath := agentHolding(t, "agent_only")
	daemonHome := newHome(t)
	authorize(t, daemonHome, keyPath+".pub")
	fingerprint := sshtest.Fingerprint(t, keyPath)
	if err := os.Remove(keyPath); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, daemonHome, "")

	home := newHome(t)
	writeFile(t, filepath.Join(home, ".rlogin", "known_hosts"), d.hostKeyLine(t))
	tm := startTerminal(t, append(clientEnv(home), agentEnv), filepath.Join(binDir, "rlogin"),
		"-d", "-p", d.port, "127.0.0.1")
	m := tm.expect(`offering your key ssh-agent key \S+ \((SHA256:[A-Za-z0-9+/]{43})\)`)
	if m[1] != fingerprint {
		t.Errorf("rlogin offered %s, the agent's key is %s", m[1], fingerprint)
	}
	if listed := sshtest.Run(t, []string{agentEnv}, "ssh-add", "-l", "-E", "sha256"); !strings.Contains(listed, m[1]) {
		t.Errorf("ssh-add -l does not list what rlogin offered (%s):\n%s", m[1], listed)
	}
	tm.ready()
	tm.send("exit\r")
	if code := tm.wait(); code != 0 {
		t.Fatalf("exit status %d", code)
	}
	if !strings.Contains(d.log.String(), fingerprint) {
		t.Errorf("the daemon's log does not name the agent's key %s:\n%s", fingerprint, d.log.String())
	}
	noKeyFiles(t, home)
}

// TestEncryptedSSHKeyLogin: an encrypted ~/.ssh/id_ed25519 asks for its passphrase once on the
// terminal, and logs in.
func TestEncryptedSSHKeyLogin(t *testing.T) {
	home := newHome(t)
	sshKey := filepath.Join(home, ".ssh", "id_ed25519")
	if err := os.MkdirAll(filepath.Dir(sshKey), 0o700); err != nil {
		t.Fatal(err)
	}
	sshtest.Keygen(t, sshKey, "e2e passphrase")
	daemonHome := newHome(t)
	authorize(t, daemonHome, sshKey+".pub")
	d := startDaemon(t, daemonHome, "")
	writeFile(t, filepath.Join(home, ".rlogin", "known_hosts"), d.hostKeyLine(t))
	tm := rlogin(t, d, home)
	tm.expect(regexp.QuoteMeta("Enter passphrase for key '~/.ssh/id_ed25519': "))
	tm.send("e2e passphrase\r")
	tm.ready()
	tm.send("exit\r")
	if code := tm.wait(); code != 0 {
		t.Fatalf("exit status %d", code)
	}
	if strings.Contains(tm.out.String(), "e2e passphrase") {
		t.Errorf("the passphrase was echoed:\n%q", tm.out.String())
	}
}

// TestConfigAlias: a Host alias in ~/.rlogin/config reaches the real host and port, and rlogin -G
// prints what rlogin then uses.
func TestConfigAlias(t *testing.T) {
	home := newHome(t)
	d := startDaemon(t, home, "") // the quick start: one HOME, rlogind authorizes ~/.rlogin/id_ed25519
	writeFile(t, filepath.Join(home, ".rlogin", "known_hosts"), d.hostKeyLine(t))
	writeFile(t, filepath.Join(home, ".rlogin", "config"),
		"Host box\n    HostName 127.0.0.1\n    Port "+d.port+"\n    EscapeChar ^]\nHost *\n    ConnectTimeout 7\n")

	g := startTerminal(t, clientEnv(home), filepath.Join(binDir, "rlogin"), "-G", "box")
	if code := g.wait(); code != 0 {
		t.Fatalf("rlogin -G: status %d", code)
	}
	// The exit can come before the terminal's last output is read: wait for the output.
	wants := []string{"host box\r\n", "hostname 127.0.0.1\r\n", "port " + d.port + "\r\n",
		"connecttimeout 7\r\n", "escapechar ^]\r\n"}
	waitFor(t, "rlogin -G box to print the alias's settings "+strings.Join(wants, ", "), func() bool {
		for _, want := range wants {
			if !strings.Contains(g.out.String(), want) {
				return false
			}
		}
		return true
	})

	tm := startTerminal(t, clientEnv(home), filepath.Join(binDir, "rlogin"), "box")
	tm.ready()
	tm.send("\r\x1d.")                                 // the configured escape character, at the start of a line
	tm.expect(`Connection to 127\.0\.0\.1 closed[.;]`) // ";": the session stays detached (resume)
	if code := tm.wait(); code != 0 {
		t.Fatalf("exit status %d", code)
	}
}

// TestRefusedKeyCost measures what a refused key costs: the agent's key is offered first and
// refused, then ~/.rlogin/id_ed25519 on a new connection logs in. It logs both logins' times.
func TestRefusedKeyCost(t *testing.T) {
	agentEnv, _ := agentHolding(t, "unlisted")
	home := newHome(t)
	d := startDaemon(t, home, "") // authorizes ~/.rlogin/id_ed25519 only
	writeFile(t, filepath.Join(home, ".rlogin", "known_hosts"), d.hostKeyLine(t))

	timeLogin := func(env []string) time.Duration {
		t.Helper()
		start := time.Now()
		tm := startTerminal(t, env, filepath.Join(binDir, "rlogin"), "-p", d.port, "127.0.0.1")
		tm.ready()
		took := time.Since(start)
		tm.send("exit\r")
		if code := tm.wait(); code != 0 {
			t.Fatalf("exit status %d", code)
		}
		return took
	}
	direct := timeLogin(clientEnv(home))
	fallback := timeLogin(append(clientEnv(home), agentEnv))
	t.Logf("login with the first key: %v; after one refused key: %v", direct, fallback)
	if n := strings.Count(d.log.String(), "authentication failed"); n != 1 {
		t.Errorf("the daemon logged %d failed authentications, want 1 (the agent's key):\n%s", n, d.log.String())
	}
}
