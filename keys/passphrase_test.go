package keys

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rlogin-go/rlogin/internal/sshtest"
)

// TestCreateWithPassphrase: a key Create encrypts is opened by ssh-keygen with the passphrase and
// by nothing without it, and LoadWithPassphrase asks for the passphrase once.
func TestCreateWithPassphrase(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "id_ed25519")
	key, err := Create(path, []byte("correct horse"))
	if err != nil {
		t.Fatal(err)
	}
	want := Fingerprint(publicOf(key))
	if got := sshtest.Fingerprint(t, path+".pub"); got != want {
		t.Errorf("ssh-keygen -lf .pub = %s, want %s", got, want)
	}
	// ssh-keygen -y derives the public key from the private one: it needs the passphrase.
	if _, err := sshtest.Try(t, nil, "ssh-keygen", "-y", "-P", "wrong", "-f", path); err == nil {
		t.Error("ssh-keygen -y opened the key with a wrong passphrase")
	}
	pubLine := sshtest.Run(t, nil, "ssh-keygen", "-y", "-P", "correct horse", "-f", path)
	if !strings.Contains(pubLine, strings.Fields(string(MarshalAuthorizedKey(publicOf(key), "")))[1]) {
		t.Errorf("ssh-keygen -y = %q, not our key", pubLine)
	}
	if _, err := Load(path); !errors.Is(err, ErrPassphraseNeeded) {
		t.Errorf("Load = %v, want ErrPassphraseNeeded", err)
	}
	asked := 0
	got, err := LoadWithPassphrase(path, func() ([]byte, error) { asked++; return []byte("correct horse"), nil })
	if err != nil || !got.Equal(key) || asked != 1 {
		t.Errorf("LoadWithPassphrase = %v, same key %v, asked %d times; want the key, asked once", err, got.Equal(key), asked)
	}
	if _, err := LoadWithPassphrase(path, func() ([]byte, error) { return []byte("wrong"), nil }); !errors.Is(err, ErrWrongPassphrase) {
		t.Errorf("wrong passphrase: %v, want ErrWrongPassphrase", err)
	}
	gaveUp := errors.New("no terminal")
	if _, err := LoadWithPassphrase(path, func() ([]byte, error) { return nil, gaveUp }); !errors.Is(err, gaveUp) {
		t.Errorf("passphrase function's error: got %v", err)
	}
	if _, err := Create(path, nil); !errors.Is(err, fs.ErrExist) {
		t.Errorf("Create over an existing key = %v, want fs.ErrExist", err)
	}
	if again, err := LoadWithPassphrase(path, func() ([]byte, error) { return []byte("correct horse"), nil }); err != nil || !again.Equal(key) {
		t.Errorf("the key changed after a refused Create: %v", err)
	}
}

// TestLoadSSHKeygenPassphrase: a key ssh-keygen -N encrypted opens with its passphrase; an
// unencrypted one does not ask.
func TestLoadSSHKeygenPassphrase(t *testing.T) {
	dir := t.TempDir()
	enc, plain := filepath.Join(dir, "enc"), filepath.Join(dir, "plain")
	sshtest.Keygen(t, enc, "s3cret")
	sshtest.Keygen(t, plain, "")
	key, err := LoadWithPassphrase(enc, func() ([]byte, error) { return []byte("s3cret"), nil })
	if err != nil {
		t.Fatal(err)
	}
	if got, want := Fingerprint(publicOf(key)), sshtest.Fingerprint(t, enc+".pub"); got != want {
		t.Errorf("loaded %s, ssh-keygen says %s", got, want)
	}
	if _, err := LoadWithPassphrase(plain, func() ([]byte, error) { t.Error("asked for an unencrypted key"); return nil, nil }); err != nil {
		t.Fatal(err)
	}
}

// TestLoadPublic reads .pub files as ssh-keygen writes them and refuses other kinds.
func TestLoadPublic(t *testing.T) {
	dir := t.TempDir()
	ed := filepath.Join(dir, "ed")
	sshtest.Keygen(t, ed, "")
	pub, err := LoadPublic(ed + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := Fingerprint(pub), sshtest.Fingerprint(t, ed+".pub"); got != want {
		t.Errorf("LoadPublic = %s, ssh-keygen -lf = %s", got, want)
	}
	rsa := filepath.Join(dir, "rsa")
	sshtest.Run(t, nil, "ssh-keygen", "-q", "-t", "rsa", "-b", "2048", "-N", "", "-f", rsa)
	if _, err := LoadPublic(rsa + ".pub"); err == nil || !strings.Contains(err.Error(), "only ed25519") {
		t.Errorf("LoadPublic(rsa) = %v, want only ed25519", err)
	}
	if _, err := LoadPublic(filepath.Join(dir, "none.pub")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing: %v, want fs.ErrNotExist", err)
	}
	garbage := filepath.Join(dir, "garbage.pub")
	if err := os.WriteFile(garbage, []byte("not a key\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadPublic(garbage); err == nil {
		t.Error("LoadPublic(garbage) succeeded")
	}
}
