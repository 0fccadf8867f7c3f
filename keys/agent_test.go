package keys

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rlogin-go/rlogin/internal/sshtest"
)

// TestAgentKeysSign lists a real ssh-agent's keys and signs with them: the ed25519 keys come back in
// "ssh-add -l"'s order, other kinds are left out, and the signatures verify.
func TestAgentKeysSign(t *testing.T) {
	sock := sshtest.StartAgent(t)
	env := []string{"SSH_AUTH_SOCK=" + sock}
	dir := t.TempDir()
	rsa := filepath.Join(dir, "id_rsa")
	sshtest.Run(t, nil, "ssh-keygen", "-q", "-t", "rsa", "-b", "2048", "-N", "", "-f", rsa)
	first, second := filepath.Join(dir, "first"), filepath.Join(dir, "second")
	sshtest.Keygen(t, first, "")
	sshtest.Keygen(t, second, "")
	for _, p := range []string{rsa, first, second} {
		sshtest.Run(t, env, "ssh-add", "-q", p)
	}

	a, err := DialAgent(context.Background(), sock)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	got, err := a.Keys()
	if err != nil {
		t.Fatal(err)
	}
	var listed []string // ssh-add -l's ed25519 fingerprints, in its order
	for _, line := range strings.Split(sshtest.Run(t, env, "ssh-add", "-l", "-E", "sha256"), "\n") {
		if strings.HasSuffix(line, "(ED25519)") {
			listed = append(listed, strings.Fields(line)[1])
		}
	}
	if len(got) != 2 || len(listed) != 2 {
		t.Fatalf("agent keys %d, ssh-add -l ed25519 lines %d; want 2 and 2", len(got), len(listed))
	}
	for i, k := range got {
		pub := k.Public().(ed25519.PublicKey)
		if fp := Fingerprint(pub); fp != listed[i] {
			t.Errorf("key %d: Fingerprint %s, ssh-add -l %s", i, fp, listed[i])
		}
		msg := []byte("handshake transcript")
		sig, err := k.Sign(nil, msg, crypto.Hash(0))
		if err != nil {
			t.Fatal(err)
		}
		if !ed25519.Verify(pub, msg, sig) {
			t.Errorf("key %d: the agent's signature does not verify", i)
		}
		if _, err := k.Sign(nil, msg, crypto.SHA256); err == nil {
			t.Errorf("key %d: signing a digest succeeded", i)
		}
	}
	if want := sshtest.Fingerprint(t, first); Fingerprint(got[0].Public().(ed25519.PublicKey)) != want {
		t.Errorf("first agent key is not the first ed25519 key added (%s)", want)
	}
}

// TestAgentGone: a socket nobody listens on, and an agent closed under its keys, give errors, not
// hangs.
func TestAgentGone(t *testing.T) {
	if _, err := DialAgent(context.Background(), filepath.Join(t.TempDir(), "none")); err == nil {
		t.Fatal("DialAgent to a missing socket succeeded")
	}
	if _, err := DialAgent(context.Background(), ""); err == nil || !strings.Contains(err.Error(), "SSH_AUTH_SOCK") {
		t.Fatalf("DialAgent(\"\") = %v, want an error naming SSH_AUTH_SOCK", err)
	}
	sock := sshtest.StartAgent(t)
	key := filepath.Join(t.TempDir(), "k")
	sshtest.Keygen(t, key, "")
	sshtest.Run(t, []string{"SSH_AUTH_SOCK=" + sock}, "ssh-add", "-q", key)
	a, err := DialAgent(context.Background(), sock)
	if err != nil {
		t.Fatal(err)
	}
	ks, err := a.Keys()
	if err != nil || len(ks) != 1 {
		t.Fatalf("Keys = %d keys, %v", len(ks), err)
	}
	_ = a.Close()
	if _, err := ks[0].Sign(nil, []byte("x"), crypto.Hash(0)); err == nil {
		t.Fatal("Sign through a closed agent succeeded")
	}
}
