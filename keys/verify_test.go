package keys

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestAuthorizedVerifier(t *testing.T) {
	dir := secureTempDir(t)
	path := filepath.Join(dir, "authorized_keys")
	alice, bob := publicOf(newKey(t)), publicOf(newKey(t))
	verify := AuthorizedVerifier(path, os.Geteuid(), "")

	if err := verify(alice); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("no file: %v, want fs.ErrNotExist", err)
	}
	if err := os.WriteFile(path, MarshalAuthorizedKey(alice, "alice"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := verify(alice); err != nil {
		t.Errorf("listed key: %v", err)
	}
	err := verify(bob)
	if !errors.Is(err, ErrNotAuthorized) {
		t.Fatalf("unlisted key: %v, want ErrNotAuthorized", err)
	}
	for _, want := range []string{Fingerprint(bob), path} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message %q does not name %s", err, want)
		}
	}
	if strings.Count(err.Error(), "keys:") != 1 {
		t.Errorf("message %q, want one package prefix", err)
	}
	// The file is read at every call: an edit applies at once.
	if err := os.WriteFile(path, MarshalAuthorizedKey(bob, "bob"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := verify(bob); err != nil {
		t.Errorf("key added since: %v", err)
	}
	if err := verify(alice); !errors.Is(err, ErrNotAuthorized) {
		t.Errorf("key removed since: %v, want ErrNotAuthorized", err)
	}
	// StrictModes apply, as to LoadAuthorized.
	if err := os.Chmod(path, 0o666); err != nil {
		t.Fatal(err)
	}
	if err := verify(bob); err == nil || errors.Is(err, ErrNotAuthorized) {
		t.Errorf("world-writable file: %v, want LoadAuthorized's refusal", err)
	}
}

func TestHostVerifier(t *testing.T) {
	dir := t.TempDir()
	kh := &KnownHosts{Path: filepath.Join(dir, "known_hosts")}
	host, other := publicOf(newKey(t)), publicOf(newKey(t))
	verify := kh.HostVerifier("server.example:5513")

	err := verify(host)
	if !errors.Is(err, ErrUnknownHost) {
		t.Fatalf("empty known_hosts: %v, want ErrUnknownHost", err)
	}
	for _, want := range []string{"server.example:5513", Fingerprint(host), kh.Path} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message %q does not name %s", err, want)
		}
	}
	if _, err := os.Stat(kh.Path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("HostVerifier wrote known_hosts: %v", err)
	}
	if err := kh.Add("server.example:5513", host); err != nil {
		t.Fatal(err)
	}
	if err := verify(host); err != nil {
		t.Errorf("known key: %v", err)
	}
	var changed *KeyChangedError
	if err := verify(other); !errors.As(err, &changed) {
		t.Errorf("other key: %v, want *KeyChangedError", err)
	}
	if err := kh.HostVerifier("elsewhere.example:5513")(host); !errors.Is(err, ErrUnknownHost) {
		t.Errorf("the key of another host: %v, want ErrUnknownHost", err)
	}
}
