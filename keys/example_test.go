package keys_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/rlogin-go/rlogin/keys"
)

func ExampleLoadOrCreate() {
	home, err := os.MkdirTemp("", "example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(home)
	path := filepath.Join(home, ".rlogin", "id_ed25519")

	_, created, err := keys.LoadOrCreate(path)
	fmt.Println("first:", created, err)
	_, created, err = keys.LoadOrCreate(path)
	fmt.Println("second:", created, err)
	// Output:
	// first: true <nil>
	// second: false <nil>
}

func ExampleFingerprint() {
	key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{1}, ed25519.SeedSize))
	pub := key.Public().(ed25519.PublicKey)
	fmt.Print(string(keys.MarshalAuthorizedKey(pub, "alice@example.org")))
	fmt.Println(keys.Fingerprint(pub))
	// Output:
	// ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIqI4910CfGV/VLbLTy6XXLKZwm/HZQSG/N0iAG0D29c alice@example.org
	// SHA256:fe85JkIjo8VPe+XqXJGH5Mau1EMFdK1OdKvJUFicyA8
}

// Trust on first use, as rlogin does it.
func ExampleKnownHosts_Check() {
	dir, err := os.MkdirTemp("", "example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	kh := &keys.KnownHosts{Path: filepath.Join(dir, "known_hosts")}
	first, _, _ := ed25519.GenerateKey(nil)
	other, _, _ := ed25519.GenerateKey(nil)

	err = kh.Check("server.example:5513", first)
	if errors.Is(err, keys.ErrUnknownHost) {
		// An interactive client asks the user here, showing keys.Fingerprint(first).
		err = kh.Add("server.example:5513", first)
	}
	fmt.Println("first contact:", err)
	fmt.Println("again:", kh.Check("server.example:5513", first))

	var changed *keys.KeyChangedError
	err = kh.Check("server.example:5513", other)
	fmt.Println("other key:", errors.As(err, &changed), changed.Host, changed.Line)
	// Output:
	// first contact: <nil>
	// again: <nil>
	// other key: true [server.example]:5513 1
}

func ExampleLoadAuthorized() {
	peerKey, _, _ := ed25519.GenerateKey(nil) // from the TLS handshake
	auth, err := keys.LoadAuthorized("/home/alice/.rlogin/authorized_keys", 1000, "/home/alice")
	if err != nil {
		log.Printf("refused: %v", err) // missing, or fails the StrictModes checks
		return
	}
	for _, s := range auth.Skipped {
		log.Printf("%s: %s", auth.Path, s) // e.g. "line 3: key options are not supported ..."
	}
	if !auth.Allows(peerKey) {
		log.Printf("refused: key %s is not authorized", keys.Fingerprint(peerKey))
	}
}

// A server's check of its clients' keys, for the VerifyPeer of a
// transport.SecureConfig: authorized_keys is read at every call.
func ExampleAuthorizedVerifier() {
	home, err := os.MkdirTemp("", "example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(home)
	path := filepath.Join(home, "authorized_keys")
	alice, _, _ := ed25519.GenerateKey(nil)
	mallory, _, _ := ed25519.GenerateKey(nil)
	if err := os.WriteFile(path, keys.MarshalAuthorizedKey(alice, "alice"), 0o600); err != nil {
		log.Fatal(err)
	}

	verify := keys.AuthorizedVerifier(path, os.Geteuid(), home)
	fmt.Println("alice:", verify(alice))
	fmt.Println("mallory:", errors.Is(verify(mallory), keys.ErrNotAuthorized))
	// Output:
	// alice: <nil>
	// mallory: true
}

// A client's check of a server's key, for the VerifyPeer of a
// transport.SecureConfig: strict, it never adds to known_hosts.
func ExampleKnownHosts_HostVerifier() {
	dir, err := os.MkdirTemp("", "example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	kh := &keys.KnownHosts{Path: filepath.Join(dir, "known_hosts")}
	server, _, _ := ed25519.GenerateKey(nil)

	verify := kh.HostVerifier("server.example:5513")
	fmt.Println("before:", errors.Is(verify(server), keys.ErrUnknownHost))
	if err := kh.Add("server.example:5513", server); err != nil { // e.g. from the admin's list
		log.Fatal(err)
	}
	fmt.Println("after:", verify(server))
	// Output:
	// before: true
	// after: <nil>
}

// Signing through ssh-agent: the private key stays in the agent.
func ExampleDialAgent() {
	agent, err := keys.DialAgent(context.Background(), os.Getenv("SSH_AUTH_SOCK"))
	if err != nil {
		log.Fatal(err)
	}
	defer agent.Close()
	ks, err := agent.Keys() // ed25519 keys, in ssh-add -l's order
	if err != nil || len(ks) == 0 {
		log.Fatal("no ed25519 key in the agent")
	}
	fmt.Println("offering", keys.Fingerprint(ks[0].Public().(ed25519.PublicKey)))
	// ks[0] is a crypto.Signer: transport.SecureConfig{Key: ks[0], ...}
}

// A passphrase-protected key, asked for only when the file is encrypted.
func ExampleLoadWithPassphrase() {
	dir, err := os.MkdirTemp("", "example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "id_ed25519")
	if _, err := keys.Create(path, []byte("correct horse")); err != nil {
		log.Fatal(err)
	}
	_, err = keys.Load(path)
	fmt.Println("without:", errors.Is(err, keys.ErrPassphraseNeeded))
	_, err = keys.LoadWithPassphrase(path, func() ([]byte, error) { return []byte("correct horse"), nil })
	fmt.Println("with:", err)
	// Output:
	// without: true
	// with: <nil>
}
