package keys

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/pem"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/crypto/ssh"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// sshKeygen runs ssh-keygen with args and returns its standard output. It
// skips the test, saying so, if ssh-keygen is not installed.
func sshKeygen(t *testing.T, args ...string) string {
	t.Helper()
	out, err := runSSHKeygen(t, args...)
	if err != nil {
		t.Fatalf("ssh-keygen %s: %v", strings.Join(args, " "), err)
	}
	return out
}

// runSSHKeygen is sshKeygen that returns ssh-keygen's failure.
func runSSHKeygen(t *testing.T, args ...string) (string, error) {
	t.Helper()
	bin, err := exec.LookPath("ssh-keygen")
	if err != nil {
		t.Skip("ssh-keygen is not installed: OpenSSH interoperability NOT tested")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second) // watchdog
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdin = nil
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), errors.Join(err, errors.New(stderr.String()))
	}
	return stdout.String(), nil
}

// sshKeygenFingerprint returns the SHA256 fingerprint ssh-keygen -lf
// prints for path.
func sshKeygenFingerprint(t *testing.T, path string) string {
	t.Helper()
	out := sshKeygen(t, "-l", "-E", "sha256", "-f", path)
	// "256 SHA256:... comment (ED25519)"
	fields := strings.Fields(out)
	if len(fields) < 4 || fields[0] != "256" || fields[len(fields)-1] != "(ED25519)" {
		t.Fatalf("ssh-keygen -lf %s: unexpected output %q", path, out)
	}
	return fields[1]
}

func mode(t *testing.T, path string) os.FileMode {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

func publicOf(k ed25519.PrivateKey) ed25519.PublicKey { return k.Public().(ed25519.PublicKey) }

func newKey(t *testing.T) ed25519.PrivateKey {
	t.Helper()
	_, k, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// noTempFiles fails if writeFileAtomic left temporary files in dir.
func noTempFiles(t *testing.T, dir string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if strings.Contains(e.Name(), ".tmp-") {
			t.Errorf("temporary file left behind: %s", e.Name())
		}
	}
}

func TestLoadOrCreate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "home", ".rlogin")
	path := filepath.Join(dir, "id_ed25519")

	key, created, err := LoadOrCreate(path)
	if err != nil {
		t.Fatal(err)
	}
	if !created {
		t.Error("created = false for a new key")
	}
	if len(key) != ed25519.PrivateKeySize {
		t.Fatalf("key length %d", len(key))
	}
	if m := mode(t, path); m != 0o600 {
		t.Errorf("key mode %04o, want 0600", m)
	}
	if m := mode(t, path+".pub"); m != 0o644 {
		t.Errorf(".pub mode %04o, want 0644", m)
	}
	for _, d := range []string{dir, filepath.Dir(dir)} {
		if m := mode(t, d); m != 0o700 {
			t.Errorf("directory %s mode %04o, want 0700", d, m)
		}
	}
	noTempFiles(t, dir)

	// The private key file is an OpenSSH private key.
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if block, _ := pem.Decode(data); block == nil || block.Type != "OPENSSH PRIVATE KEY" {
		t.Fatalf("key file is not an OpenSSH private key:\n%s", data)
	}
	signer, err := ssh.ParsePrivateKey(data)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(signer.PublicKey().Marshal(), mustSSHPub(t, publicOf(key)).Marshal()) {
		t.Error("file holds a different key than returned")
	}

	// The .pub file is one authorized_keys line with a user@host comment.
	pubData, err := os.ReadFile(path + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	pub, comment, options, rest, err := ssh.ParseAuthorizedKey(pubData)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(pub.Marshal(), mustSSHPub(t, publicOf(key)).Marshal()) {
		t.Error(".pub holds a different key")
	}
	if !strings.Contains(comment, "@") || options != nil || len(rest) != 0 {
		t.Errorf(".pub: comment %q options %q rest %q", comment, options, rest)
	}
	if bytes.Count(pubData, []byte("\n")) != 1 || !bytes.HasSuffix(pubData, []byte("\n")) {
		t.Errorf(".pub is not one line: %q", pubData)
	}

	// Second time: the same key, loaded.
	again, created, err := LoadOrCreate(path)
	if err != nil {
		t.Fatal(err)
	}
	if created || !again.Equal(key) {
		t.Errorf("second LoadOrCreate: created=%v, same key=%v", created, again.Equal(key))
	}
	loaded, err := Load(path)
	if err != nil || !loaded.Equal(key) {
		t.Errorf("Load: %v, same key=%v", err, loaded.Equal(key))
	}
}

func TestLoadOrCreateRestoresMissingPub(t *testing.T) {
	path := filepath.Join(t.TempDir(), "id_ed25519")
	key, _, err := LoadOrCreate(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(path + ".pub"); err != nil {
		t.Fatal(err)
	}
	if _, created, err := LoadOrCreate(path); err != nil || created {
		t.Fatalf("LoadOrCreate: created=%v err=%v", created, err)
	}
	pubData, err := os.ReadFile(path + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	pub, _, _, _, err := ssh.ParseAuthorizedKey(pubData)
	if err != nil || !bytes.Equal(pub.Marshal(), mustSSHPub(t, publicOf(key)).Marshal()) {
		t.Fatalf("restored .pub: %v %q", err, pubData)
	}
}

func TestLoadOrCreateConcurrent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "d", "id_ed25519")
	const n = 8
	keys := make([]ed25519.PrivateKey, n)
	created := make([]bool, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { keys[i], created[i], errs[i] = LoadOrCreate(path) })
	}
	wg.Wait()
	ncreated := 0
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("LoadOrCreate %d: %v", i, errs[i])
		}
		if !keys[i].Equal(keys[0]) {
			t.Fatalf("LoadOrCreate %d returned a different key", i)
		}
		if created[i] {
			ncreated++
		}
	}
	if ncreated != 1 {
		t.Errorf("%d callers created the key, want 1", ncreated)
	}
	onDisk, err := Load(path)
	if err != nil || !onDisk.Equal(keys[0]) {
		t.Fatalf("key on disk differs from the one returned: %v", err)
	}
	noTempFiles(t, filepath.Dir(path))
}

func TestLoadOrCreateKeepsTooOpenKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "id_ed25519")
	if _, _, err := LoadOrCreate(path); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(path)
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadOrCreate(path); err == nil || !strings.Contains(err.Error(), "too open") {
		t.Fatalf("LoadOrCreate of a 0644 key: %v, want a 'too open' error", err)
	}
	after, _ := os.ReadFile(path)
	if !bytes.Equal(before, after) {
		t.Error("LoadOrCreate replaced an existing key")
	}
}

// TestSSHKeygenReadsOurKey checks that OpenSSH's ssh-keygen reads the key
// files LoadOrCreate writes, and agrees on the fingerprint.
func TestSSHKeygenReadsOurKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "id_ed25519")
	key, _, err := LoadOrCreate(path)
	if err != nil {
		t.Fatal(err)
	}
	want := Fingerprint(publicOf(key))
	if got := sshKeygenFingerprint(t, path); got != want {
		t.Errorf("ssh-keygen -lf %s = %s, Fingerprint = %s", path, got, want)
	}
	if got := sshKeygenFingerprint(t, path+".pub"); got != want {
		t.Errorf("ssh-keygen -lf .pub = %s, Fingerprint = %s", got, want)
	}
	// -y derives the public key from the private key file itself (and
	// checks its permissions, as ssh does).
	derived := sshKeygen(t, "-y", "-f", path)
	pubData, err := os.ReadFile(path + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	if f1, f2 := strings.Fields(derived), strings.Fields(string(pubData)); len(f1) < 2 || len(f2) < 2 || f1[0] != f2[0] || f1[1] != f2[1] {
		t.Errorf("ssh-keygen -y = %q, .pub = %q", derived, pubData)
	}
	// Without the .pub file, ssh-keygen reads the private key file.
	if err := os.Remove(path + ".pub"); err != nil {
		t.Fatal(err)
	}
	if got := sshKeygenFingerprint(t, path); got != want {
		t.Errorf("ssh-keygen -lf without .pub = %s, Fingerprint = %s", got, want)
	}
}

// TestLoadSSHKeygenKey loads keys made by ssh-keygen.
func TestLoadSSHKeygenKey(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "id_ed25519")
	sshKeygen(t, "-q", "-t", "ed25519", "-N", "", "-C", "test@example", "-f", path)
	key, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := Fingerprint(publicOf(key)), sshKeygenFingerprint(t, path); got != want {
		t.Errorf("Fingerprint = %s, ssh-keygen -l = %s", got, want)
	}
	// And LoadOrCreate leaves it alone.
	k2, created, err := LoadOrCreate(path)
	if err != nil || created || !k2.Equal(key) {
		t.Errorf("LoadOrCreate of ssh-keygen's key: created=%v err=%v", created, err)
	}
}

func TestLoadRefuses(t *testing.T) {
	dir := t.TempDir()
	gen := func(name string, args ...string) string {
		t.Helper()
		p := filepath.Join(dir, name)
		sshKeygen(t, append([]string{"-q", "-C", "", "-f", p}, args...)...)
		return p
	}
	ours := filepath.Join(dir, "ours")
	if _, _, err := LoadOrCreate(ours); err != nil {
		t.Fatal(err)
	}
	garbage := filepath.Join(dir, "garbage")
	if err := os.WriteFile(garbage, []byte("not a key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big")
	if err := os.WriteFile(big, bytes.Repeat([]byte("A"), maxPrivateKeyFile+1), 0o600); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	// A key whose stored public half is not its seed's.
	a, b := newKey(t), newKey(t)
	mixed := append(bytes.Clone(a.Seed()), publicOf(b)...)
	block, err := ssh.MarshalPrivateKey(ed25519.PrivateKey(mixed), "")
	if err != nil {
		t.Fatal(err)
	}
	inconsistent := filepath.Join(dir, "inconsistent")
	if err := os.WriteFile(inconsistent, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name, path, want string
		mode             os.FileMode // 0: leave as is
	}{
		{"rsa", gen("rsa", "-t", "rsa", "-b", "2048", "-N", ""), "RSA key; only ed25519", 0},
		{"ecdsa", gen("ecdsa", "-t", "ecdsa", "-N", ""), "ECDSA key; only ed25519", 0},
		{"passphrase", gen("enc", "-t", "ed25519", "-N", "secret"), "passphrase", 0},
		{"garbage", garbage, "no key found", 0},
		{"too large", big, "too large", 0},
		{"inconsistent", inconsistent, "inconsistent", 0},
		{"directory", dir, "not a regular file", 0},
		{"fifo", fifo, "not a regular file", 0},
		{"mode 0644", ours, "permissions 0644", 0o644},
		{"mode 0640", ours, "permissions 0640", 0o640},
		{"mode 0604", ours, "permissions 0604", 0o604},
		{"mode 0610", ours, "permissions 0610", 0o610},
		{"mode 0601", ours, "permissions 0601", 0o601},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.mode != 0 {
				if err := os.Chmod(tt.path, tt.mode); err != nil {
					t.Fatal(err)
				}
			}
			done := make(chan error, 1)
			go func() {
				_, err := Load(tt.path)
				done <- err
			}()
			var err error
			select {
			case err = <-done:
			case <-time.After(10 * time.Second): // watchdog: a FIFO must not block
				t.Fatal("Load hangs")
			}
			if err == nil {
				t.Fatalf("Load(%s) succeeded", tt.name)
			}
			if !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "keys: ") {
				t.Errorf("Load(%s) = %q, want it to contain %q", tt.name, err, tt.want)
			}
		})
	}

	// LoadUnchecked refuses what Load refuses but the halves, which CheckKey then refuses in
	// Load's words.
	t.Run("unchecked", func(t *testing.T) {
		if _, err := LoadUnchecked(garbage); err == nil || !strings.Contains(err.Error(), "no key found") {
			t.Errorf("LoadUnchecked(garbage) = %v, want Load's refusal", err)
		}
		key, err := LoadUnchecked(inconsistent)
		if err != nil {
			t.Fatalf("LoadUnchecked(inconsistent): %v; it leaves the halves to CheckKey", err)
		}
		_, loadErr := Load(inconsistent)
		if err := CheckKey(inconsistent, key); err == nil || loadErr == nil || err.Error() != loadErr.Error() {
			t.Errorf("CheckKey(inconsistent) = %v, want Load's error %v", err, loadErr)
		}
		if err := CheckKey(ours, a); err != nil {
			t.Errorf("CheckKey of a sound key: %v", err)
		}
	})
	t.Run("allowed modes", func(t *testing.T) {
		for _, m := range []os.FileMode{0o600, 0o400} {
			if err := os.Chmod(ours, m); err != nil {
				t.Fatal(err)
			}
			if _, err := Load(ours); err != nil {
				t.Errorf("Load with mode %04o: %v", m, err)
			}
		}
	})
	t.Run("missing", func(t *testing.T) {
		_, err := Load(filepath.Join(dir, "nope"))
		if !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Load of a missing file = %v, want fs.ErrNotExist", err)
		}
	})
}

func TestWriteFileAtomicNoClobber(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	if err := os.WriteFile(path, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := writeFileAtomic(path, []byte("new"), 0o600, true)
	if !errors.Is(err, fs.ErrExist) {
		t.Fatalf("writeFileAtomic over an existing file = %v, want fs.ErrExist", err)
	}
	if data, _ := os.ReadFile(path); string(data) != "old" {
		t.Errorf("file now holds %q", data)
	}
	noTempFiles(t, dir)
	if err := writeFileAtomic(path, []byte("new"), 0o640, false); err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(path); string(data) != "new" || mode(t, path) != 0o640 {
		t.Errorf("replaced file holds %q mode %04o", data, mode(t, path))
	}
	noTempFiles(t, dir)
}

func TestFingerprint(t *testing.T) {
	// Fixed key, fingerprint as printed by ssh-keygen -l (checked live below).
	key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{1}, ed25519.SeedSize))
	fp := Fingerprint(publicOf(key))
	if !strings.HasPrefix(fp, "SHA256:") || strings.HasSuffix(fp, "=") || len(fp) != len("SHA256:")+43 {
		t.Errorf("Fingerprint = %q", fp)
	}
	path := filepath.Join(t.TempDir(), "k.pub")
	if err := os.WriteFile(path, MarshalAuthorizedKey(publicOf(key), "x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := sshKeygenFingerprint(t, path); got != fp {
		t.Errorf("ssh-keygen -l = %s, Fingerprint = %s", got, fp)
	}
	if got := Fingerprint(ed25519.PublicKey{1, 2, 3}); got != "(invalid ed25519 key)" {
		t.Errorf("Fingerprint of a short key = %q", got)
	}
}

func TestMarshalAuthorizedKey(t *testing.T) {
	pub := publicOf(newKey(t))
	tests := []struct{ comment, want string }{
		{"", ""},
		{"alice@host", "alice@host"},
		{"  two  words ", "two words"},
		{"evil\nssh-ed25519 AAAA injected", "evil ssh-ed25519 AAAA injected"},
		{"a\r\x00\x1b[2Jb\u2028c", "a [2Jb c"},
	}
	for _, tt := range tests {
		line := MarshalAuthorizedKey(pub, tt.comment)
		if bytes.Count(line, []byte("\n")) != 1 || !bytes.HasSuffix(line, []byte("\n")) {
			t.Errorf("MarshalAuthorizedKey(%q) = %q: not one line", tt.comment, line)
		}
		k, comment, options, rest, err := ssh.ParseAuthorizedKey(line)
		if err != nil || options != nil || len(rest) != 0 {
			t.Fatalf("MarshalAuthorizedKey(%q) = %q: %v", tt.comment, line, err)
		}
		if !bytes.Equal(k.Marshal(), mustSSHPub(t, pub).Marshal()) || comment != tt.want {
			t.Errorf("MarshalAuthorizedKey(%q): comment %q, want %q", tt.comment, comment, tt.want)
		}
		if tt.comment == "" && bytes.HasSuffix(line, []byte(" \n")) {
			t.Errorf("trailing space with empty comment: %q", line)
		}
	}
	if got := MarshalAuthorizedKey(pub[:10], "x"); got != nil {
		t.Errorf("MarshalAuthorizedKey of a short key = %q, want nil", got)
	}
}

func mustSSHPub(t *testing.T, pub ed25519.PublicKey) ssh.PublicKey {
	t.Helper()
	k, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return k
}
