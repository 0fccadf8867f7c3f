package client

import (
	"bytes"
	"crypto/ed25519"
	"encoding/pem"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/rlogin-go/rlogin/internal/sshtest"
	"github.com/rlogin-go/rlogin/keys"
)

// knowHost writes only the server's host key into home's known_hosts: the user's keys are the
// test's to choose.
func (s *testServer) knowHost(t *testing.T, home string) {
	t.Helper()
	k := &keys.KnownHosts{Path: filepath.Join(home, ".rlogin", "known_hosts")}
	if err := k.Add(s.addr, s.hostKey.Public().(ed25519.PublicKey)); err != nil {
		t.Fatal(err)
	}
}

// pubOf reads the public key ssh-keygen wrote next to the key file path.
func pubOf(t *testing.T, path string) ed25519.PublicKey {
	t.Helper()
	pub, err := keys.LoadPublic(path + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	return pub
}

// encryptedSSHKey makes home's ~/.ssh/id_ed25519 with ssh-keygen, passphrase "open sesame".
func encryptedSSHKey(t *testing.T, home string) string {
	t.Helper()
	path := filepath.Join(home, ".ssh", "id_ed25519")
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	sshtest.Keygen(t, path, "open sesame")
	return path
}

// agentWithKey starts an ssh-agent holding one new ed25519 key, whose files are then removed:
// the key lives only in the agent. It returns the agent's environment entry and the public key.
func agentWithKey(t *testing.T) (string, ed25519.PublicKey) {
	t.Helper()
	sock := sshtest.StartAgent(t)
	env := "SSH_AUTH_SOCK=" + sock
	path := filepath.Join(t.TempDir(), "agent_key")
	sshtest.Keygen(t, path, "")
	sshtest.Run(t, []string{env}, "ssh-add", "-q", path)
	pub := pubOf(t, path)
	if err := errors.Join(os.Remove(path), os.Remove(path+".pub")); err != nil {
		t.Fatal(err)
	}
	return env, pub
}

// TestAgentKeyLogin logs in with a key that lives only in ssh-agent: nothing is created on disk,
// the server sees the agent's key, and -d names the key as ssh-add -l does.
func TestAgentKeyLogin(t *testing.T) {
	agentEnv, pub := agentWithKey(t)
	s := startServer(t, func(s *testServer) { s.authorized = []ed25519.PublicKey{pub} })
	home := t.TempDir()
	s.knowHost(t, home)
	tt := openTerminal(t)
	tt.start(append(userEnv(home), agentEnv), "-d", "-l", "tester", "-p", s.port, "127.0.0.1")
	m := tt.expect(`offering your key ssh-agent key agent_key \((SHA256:[A-Za-z0-9+/]{43})\)`)
	tt.ready()
	if got := s.nextOffered(t); !got.Equal(pub) {
		t.Errorf("the server saw %s, want the agent's key %s", keys.Fingerprint(got), keys.Fingerprint(pub))
	}
	listed := sshtest.Run(t, []string{agentEnv}, "ssh-add", "-l", "-E", "sha256")
	if !strings.Contains(listed, m[1]) {
		t.Errorf("rlogin offered %s; ssh-add -l lists:\n%s", m[1], listed)
	}
	tt.send("exit\r")
	if code := tt.wait(); code != 0 {
		t.Fatalf("exit status %d", code)
	}
	if _, err := os.Lstat(filepath.Join(home, ".rlogin", "id_ed25519")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("rlogin made a key file although the agent had a key: %v", err)
	}
}

// TestPassphraseKey types the passphrase of an encrypted ~/.ssh/id_ed25519 on a real terminal:
// asked once, not echoed, and the key logs in.
func TestPassphraseKey(t *testing.T) {
	_, tt := passphraseLogin(t, nil)
	tt.send("exit\r")
	if code := tt.wait(); code != 0 {
		t.Fatalf("exit status %d", code)
	}
	if out := tt.output(); strings.Contains(out, "open sesame") || strings.Count(out, "Enter passphrase") != 1 {
		t.Errorf("the passphrase was echoed or asked for twice:\n%q", out)
	}
}

// passphraseLogin logs in to a new server (configure, if set, sets it up) with a new home's
// encrypted ~/.ssh/id_ed25519, typing its passphrase when asked, and waits for the shell.
func passphraseLogin(t *testing.T, configure func(*testServer)) (*testServer, *testTerminal) {
	t.Helper()
	home := t.TempDir()
	sshKey := encryptedSSHKey(t, home)
	s := startServer(t, func(s *testServer) {
		s.authorized = []ed25519.PublicKey{pubOf(t, sshKey)}
		if configure != nil {
			configure(s)
		}
	})
	s.knowHost(t, home)
	tt := openTerminal(t)
	tt.start(userEnv(home), "-l", "tester", "-p", s.port, "127.0.0.1")
	tt.expect(regexp.QuoteMeta("Enter passphrase for key '~/.ssh/id_ed25519': "))
	tt.send("open sesame\r")
	tt.ready()
	return s, tt
}

// TestWrongPassphrase: one try, then a clear message and status 255, the terminal as it was.
func TestWrongPassphrase(t *testing.T) {
	home := t.TempDir()
	encryptedSSHKey(t, home)
	s := startServer(t, nil)
	s.knowHost(t, home)
	tt := openTerminal(t)
	before := tt.termios()
	tt.start(userEnv(home), "-l", "tester", "-p", s.port, "127.0.0.1")
	tt.expect(`Enter passphrase for key `)
	tt.send("open barley\r")
	if code := tt.wait(); code != ExitFailure {
		t.Fatalf("exit status %d, want %d", code, ExitFailure)
	}
	if after := tt.termios(); after != before {
		t.Fatalf("terminal changed (echo left off?):\nbefore %+v\nafter  %+v", before, after)
	}
	if out := tt.output(); !strings.HasSuffix(out, "rlogin: wrong passphrase for ~/.ssh/id_ed25519\r\n") || strings.Contains(out, "barley") {
		t.Errorf("output %q", out)
	}
}

// TestPassphraseNoTerminal: an encrypted key with nowhere to ask is a clear message when it is the
// only key, and is passed over, saying so, when another follows.
func TestPassphraseNoTerminal(t *testing.T) {
	home := t.TempDir()
	sshKey := encryptedSSHKey(t, home)
	notTTY := filepath.Join(home, "not-a-terminal")
	if err := os.WriteFile(notTTY, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	s := startServer(t, nil)
	s.knowHost(t, home)
	run := func(args ...string) (int, string) {
		var stderr bytes.Buffer
		cfg := &Config{Stderr: &stderr, Home: home, SystemConfig: "none", Environ: []string{"TERM=dumb"},
			Passphrase: TTYPassphrase{Path: notTTY}}
		return cfg.Run(watchdog(t), append(args, "-l", "tester", "-p", s.port, "127.0.0.1")), stderr.String()
	}
	code, out := run("-i", sshKey)
	if want := "rlogin: cannot ask for the passphrase of " + sshKey + ": no terminal (add the key to ssh-agent with ssh-add, or run rlogin from a terminal)\n"; code != ExitFailure || out != want {
		t.Errorf("-i encrypted key, no terminal: status %d, stderr %q; want %d, %q", code, out, ExitFailure, want)
	}
	own, _, err := keys.LoadOrCreate(filepath.Join(home, ".rlogin", "id_ed25519"))
	if err != nil {
		t.Fatal(err)
	}
	code, out = run()
	if code != 0 || !strings.HasPrefix(out, "rlogin: cannot ask for the passphrase of "+sshKey) {
		t.Errorf("fallback to ~/.rlogin/id_ed25519: status %d, stderr %q", code, out)
	}
	for _, want := range []ed25519.PublicKey{pubOf(t, filepath.Join(home, ".rlogin", "id_ed25519"))} {
		if got := s.nextOffered(t); !got.Equal(want) || !want.Equal(own.Public()) {
			t.Errorf("offered %s, want ~/.rlogin's %s", keys.Fingerprint(got), keys.Fingerprint(want))
		}
	}
}

// TestRefusedKeyFallsBack: the server refuses the agent's key and takes ~/.rlogin/id_ed25519,
// offered next on a new connection; when it takes none, the message names every key offered.
func TestRefusedKeyFallsBack(t *testing.T) {
	agentEnv, agentPub := agentWithKey(t)
	home := t.TempDir()
	own, _, err := keys.LoadOrCreate(filepath.Join(home, ".rlogin", "id_ed25519"))
	if err != nil {
		t.Fatal(err)
	}
	ownPub := own.Public().(ed25519.PublicKey)
	s := startServer(t, func(s *testServer) { s.authorized = []ed25519.PublicKey{ownPub} })
	s.knowHost(t, home)
	var stderr bytes.Buffer
	cfg := &Config{Stderr: &stderr, Home: home, SystemConfig: "none", Environ: []string{"TERM=dumb", agentEnv}}
	if code := cfg.Run(watchdog(t), []string{"-l", "tester", "-p", s.port, "127.0.0.1"}); code != 0 {
		t.Fatalf("status %d, stderr %q", code, stderr.String())
	}
	if first, second := s.nextOffered(t), s.nextOffered(t); !first.Equal(agentPub) || !second.Equal(ownPub) {
		t.Errorf("offered %s then %s; want the agent's key, then ~/.rlogin's", keys.Fingerprint(first), keys.Fingerprint(second))
	}

	// -i: only that key, even with another that the server would take.
	other := filepath.Join(home, "other")
	sshtest.Keygen(t, other, "")
	stderr.Reset()
	if code := cfg.Run(watchdog(t), []string{"-i", other, "-l", "tester", "-p", s.port, "127.0.0.1"}); code != ExitFailure {
		t.Fatalf("-i unauthorized key: status %d", code)
	}
	want := "rlogin: 127.0.0.1 refused the login: permission denied (publickey); rlogin offered " +
		other + " (" + keys.Fingerprint(pubOf(t, other)) + ") (choose another key with -i)\n"
	if stderr.String() != want {
		t.Errorf("stderr %q, want %q", stderr.String(), want)
	}
	if got := s.nextOffered(t); !got.Equal(pubOf(t, other)) {
		t.Errorf("-i offered %s", keys.Fingerprint(got))
	}
	select {
	case k := <-s.offered:
		t.Errorf("with -i, another key was offered too: %s", keys.Fingerprint(k))
	default:
	}
}

// TestIdentityFileInAgent: -i naming a key the agent holds signs through the agent: the private
// key file need not exist, only its .pub.
func TestIdentityFileInAgent(t *testing.T) {
	sock := sshtest.StartAgent(t)
	agentEnv := "SSH_AUTH_SOCK=" + sock
	home := t.TempDir()
	path := filepath.Join(home, "token_key")
	sshtest.Keygen(t, path, "")
	sshtest.Run(t, []string{agentEnv}, "ssh-add", "-q", path)
	if err := os.Remove(path); err != nil { // the private half is in the agent only
		t.Fatal(err)
	}
	pub := pubOf(t, path)
	s := startServer(t, func(s *testServer) { s.authorized = []ed25519.PublicKey{pub} })
	s.knowHost(t, home)
	var stderr bytes.Buffer
	cfg := &Config{Stderr: &stderr, Home: home, SystemConfig: "none", Environ: []string{"TERM=dumb", agentEnv}}
	if code := cfg.Run(watchdog(t), []string{"-d", "-i", path, "-l", "tester", "-p", s.port, "127.0.0.1"}); code != 0 {
		t.Fatalf("status %d, stderr %q", code, stderr.String())
	}
	if !strings.Contains(stderr.String(), "offering your key "+path+" (in ssh-agent)") {
		t.Errorf("stderr %q does not say the agent signs for %s", stderr.String(), path)
	}
}

// TestNewKey makes a passphrase-protected key with --new-key on a real terminal, and checks that
// ssh-keygen opens it with that passphrase; a second --new-key never replaces it.
func TestNewKey(t *testing.T) {
	home := t.TempDir()
	tt := openTerminal(t)
	tt.start(userEnv(home), "--new-key")
	tt.expect(`Enter passphrase for ~/\.rlogin/id_ed25519 \(empty for no passphrase\): `)
	tt.send("long enough\r")
	tt.expect(`Enter the same passphrase again: `)
	tt.send("long enough\r")
	if code := tt.wait(); code != 0 {
		t.Fatalf("exit status %d; output %q", code, tt.output())
	}
	path := filepath.Join(home, ".rlogin", "id_ed25519")
	if out := tt.output(); strings.Contains(out, "long enough") || !strings.Contains(out, "rlogin: created your key ~/.rlogin/id_ed25519 with a passphrase (SHA256:") {
		t.Errorf("output %q", out)
	}
	if _, err := sshtest.Try(t, nil, "ssh-keygen", "-y", "-P", "", "-f", path); err == nil {
		t.Error("the new key opens without its passphrase")
	}
	sshtest.Run(t, nil, "ssh-keygen", "-y", "-P", "long enough", "-f", path)
	if got, want := sshtest.Fingerprint(t, path), keys.Fingerprint(pubOf(t, path)); got != want {
		t.Errorf("ssh-keygen -lf = %s, .pub = %s", got, want)
	}

	again := openTerminal(t)
	again.start(userEnv(home), "--new-key")
	again.expect(`Enter passphrase`)
	again.send("x\r")
	again.expect(`again: `)
	again.send("y\r")
	if code := again.wait(); code != ExitFailure || !strings.Contains(again.output(), "rlogin: the passphrases do not match; no key made") {
		t.Errorf("mismatch: status %d, output %q", code, again.output())
	}
	var stderr bytes.Buffer
	cfg := &Config{Stderr: &stderr, Home: home, Passphrase: answers("", "")}
	if code := cfg.Run(watchdog(t), []string{"--new-key"}); code != ExitFailure || !strings.Contains(stderr.String(), "exists; rlogin never replaces a key") {
		t.Errorf("over an existing key: status %d, stderr %q", code, stderr.String())
	}
}

// answers is a Prompter that gives these answers in turn.
type answerList []string

func answers(a ...string) *answerList { l := answerList(a); return &l }

func (l *answerList) Prompt(string) (string, error) {
	if len(*l) == 0 {
		return "", errors.New("no more answers")
	}
	a := (*l)[0]
	*l = (*l)[1:]
	return a, nil
}

// TestCertificateFollowsKey: the user certificate presented is the one for the key offered:
// beside ~/.ssh/id_ed25519, held by the agent with its key, or CertificateFile's.
func TestCertificateFollowsKey(t *testing.T) {
	ca := filepath.Join(t.TempDir(), "ca")
	sshtest.Keygen(t, ca, "")
	sign := func(keyPath string) string {
		sshtest.Run(t, nil, "ssh-keygen", "-q", "-s", ca, "-I", "id-"+filepath.Base(keyPath), "-n", "tester", keyPath+".pub")
		return keyPath + "-cert.pub"
	}
	s := startServer(t, nil)
	run := func(home string, env []string, args ...string) {
		t.Helper()
		var stderr bytes.Buffer
		cfg := &Config{Stderr: &stderr, Home: home, SystemConfig: "none", Environ: append([]string{"TERM=dumb"}, env...)}
		if code := cfg.Run(watchdog(t), append(args, "-l", "tester", "-p", s.port, "127.0.0.1")); code != 0 {
			t.Fatalf("status %d, stderr %q", code, stderr.String())
		}
	}
	presented := func(want string) {
		t.Helper()
		s.nextOffered(t)
		var cert *ssh.Certificate
		select {
		case cert = <-s.presented: // sent right after the key
		case <-time.After(testTimeout):
			t.Fatal("no certificate report from the server")
		}
		if cert == nil || cert.KeyId != want {
			t.Errorf("presented %v, want the certificate %q", cert, want)
		}
	}

	home := t.TempDir()
	s.knowHost(t, home)
	sshKey := filepath.Join(home, ".ssh", "id_ed25519")
	if err := os.MkdirAll(filepath.Dir(sshKey), 0o700); err != nil {
		t.Fatal(err)
	}
	sshtest.Keygen(t, sshKey, "")
	sign(sshKey)
	run(home, nil)
	presented("id-id_ed25519")

	// ssh-add adds the certificate beside the key too; then only the agent holds either.
	agentHome := t.TempDir()
	s.knowHost(t, agentHome)
	sock := sshtest.StartAgent(t)
	tokenKey := filepath.Join(t.TempDir(), "token")
	sshtest.Keygen(t, tokenKey, "")
	sign(tokenKey)
	sshtest.Run(t, []string{"SSH_AUTH_SOCK=" + sock}, "ssh-add", "-q", tokenKey)
	if err := errors.Join(os.Remove(tokenKey), os.Remove(tokenKey+".pub"), os.Remove(tokenKey+"-cert.pub")); err != nil {
		t.Fatal(err)
	}
	run(agentHome, []string{"SSH_AUTH_SOCK=" + sock})
	presented("id-token")

	// CertificateFile names a certificate kept elsewhere.
	other := filepath.Join(t.TempDir(), "other")
	sshtest.Keygen(t, other, "")
	certFile := filepath.Join(t.TempDir(), "elsewhere-cert.pub")
	if err := os.Rename(sign(other), certFile); err != nil {
		t.Fatal(err)
	}
	writeConfig(t, home, "CertificateFile "+certFile+"\n")
	run(home, nil, "-i", other)
	presented("id-other")
}

// TestPassphraseInterrupted: ^C at the passphrase question ends rlogin by SIGINT, as it would
// without the question, with echo back on.
func TestPassphraseInterrupted(t *testing.T) {
	home := t.TempDir()
	encryptedSSHKey(t, home)
	s := startServer(t, nil)
	s.knowHost(t, home)
	tt := openTerminal(t)
	before := tt.termios()
	tt.start(userEnv(home), "-l", "tester", "-p", s.port, "127.0.0.1")
	tt.expect(`Enter passphrase for key `)
	tt.send("\x03")
	select {
	case <-tt.exited:
	case <-time.After(testTimeout):
		t.Fatalf("rlogin did not exit at ^C; output:\n%q", tt.out.String())
	}
	var ee *exec.ExitError
	if !errors.As(tt.waitErr, &ee) || !ee.Sys().(syscall.WaitStatus).Signaled() || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGINT {
		t.Errorf("rlogin ended with %v, want killed by SIGINT", tt.waitErr)
	}
	if after := tt.termios(); after != before {
		t.Fatalf("terminal changed (echo left off?):\nbefore %+v\nafter  %+v", before, after)
	}
}

// TestFirstKeyLoadsDuringHandshake: the first key is handed out before it is loaded when
// loading it asks nothing (an unencrypted key file; the handshake loads it in its first round
// trip, from what was read to find that out: the file is read once), and loaded at once when it
// needs its passphrase (asked before any connection), with -d, or when the file is not one
// rlogin can use; loaded either way, it is the same key. A key file whose halves do not match
// fails when the handshake loads it, in keys.Load's words.
func TestFirstKeyLoadsDuringHandshake(t *testing.T) {
	plainHome := func() string { // one per case: a case removes its key file
		home := t.TempDir()
		sshtest.Keygen(t, filepath.Join(mkdirAll(t, home, ".ssh"), "id_ed25519"), "")
		return home
	}
	encrypted := t.TempDir()
	encryptedSSHKey(t, encrypted)
	open := t.TempDir()
	sshtest.Keygen(t, filepath.Join(mkdirAll(t, open, ".ssh"), "id_ed25519"), "")
	if err := os.Chmod(filepath.Join(open, ".ssh", "id_ed25519"), 0o644); err != nil {
		t.Fatal(err)
	}
	mismatched := t.TempDir()
	writeMismatchedKey(t, filepath.Join(mkdirAll(t, mismatched, ".ssh"), "id_ed25519"))
	for _, tc := range []struct {
		name        string
		home        string
		debug       bool
		lazy        bool
		loadErr     string // what loading it says, "" if it loads
		passphrases int    // asked by next
	}{
		{name: "unencrypted", home: plainHome(), lazy: true},
		{name: "unencrypted, -d", home: plainHome(), debug: true},
		{name: "encrypted", home: encrypted, passphrases: 1},
		{name: "readable by others", home: open, loadErr: "too open"},
		{name: "halves that do not match", home: mismatched, lazy: true, loadErr: "inconsistent ed25519 key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stderr bytes.Buffer
			asked := answers("open sesame")
			cfg := &Config{Stderr: &stderr, Home: tc.home, Environ: []string{}, Passphrase: asked}
			r := newRunner(cfg, Options{Debug: tc.debug}, cfg.Stderr)
			dir, err := r.rloginDir()
			if err != nil {
				t.Fatal(err)
			}
			ids, err := r.newIdentities(watchdog(t), dir)
			if err != nil {
				t.Fatal(err)
			}
			defer ids.close()
			id, err := ids.next()
			if tc.loadErr != "" && !tc.lazy {
				if err == nil || !strings.Contains(err.Error(), tc.loadErr) {
					t.Fatalf("next: %v, want an error saying %q", err, tc.loadErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if (id.lazy != nil) != tc.lazy {
				t.Errorf("handed out unloaded: %v, want %v", id.lazy != nil, tc.lazy)
			}
			if got := 1 - len(*asked); got != tc.passphrases {
				t.Errorf("next asked %d passphrases, want %d", got, tc.passphrases)
			}
			// The key is read by now, loaded or not: the file is not read again.
			if tc.loadErr == "" {
				if err := os.Remove(filepath.Join(tc.home, ".ssh", "id_ed25519")); err != nil {
					t.Fatal(err)
				}
			}
			signer, _, err := id.key()
			if tc.loadErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.loadErr) {
					t.Fatalf("loading: %v, want an error saying %q", err, tc.loadErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want, err := keys.LoadPublic(filepath.Join(tc.home, ".ssh", "id_ed25519.pub"))
			if err != nil {
				t.Fatal(err)
			}
			if !signer.Public().(ed25519.PublicKey).Equal(want) || !id.public().Equal(want) || id.from != "~/.ssh/id_ed25519" && id.from != tc.home+"/.ssh/id_ed25519" {
				t.Errorf("loaded %s from %q, want the key of ~/.ssh/id_ed25519 %s", keys.Fingerprint(id.public()), id.from, keys.Fingerprint(want))
			}
		})
	}
}

// writeMismatchedKey writes an unencrypted ed25519 key file at path whose public half is another
// key's.
func writeMismatchedKey(t *testing.T, path string) {
	t.Helper()
	_, key, _ := ed25519.GenerateKey(nil)
	other, _, _ := ed25519.GenerateKey(nil)
	copy(key[ed25519.SeedSize:], other)
	block, err := ssh.MarshalPrivateKey(key, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
}

// mkdirAll makes the directory dir/name (mode 0700) and returns its path.
func mkdirAll(t *testing.T, dir, name string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(p, 0o700); err != nil {
		t.Fatal(err)
	}
	return p
}
