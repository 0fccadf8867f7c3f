package keys

import (
	"crypto/ed25519"
	"errors"
	"fmt"
)

// ErrNotAuthorized is wrapped by the error of AuthorizedVerifier for a key
// that the authorized_keys file does not list.
var ErrNotAuthorized = errors.New("keys: key is not authorized")

// AuthorizedVerifier returns a check of a client's key against the
// authorized_keys file at path, for the VerifyPeer of a server's
// transport.SecureConfig:
//
//	home, _ := os.UserHomeDir()
//	cfg := &transport.SecureConfig{
//		Key:        hostKey,
//		VerifyPeer: keys.AuthorizedVerifier(filepath.Join(home, ".rlogin", "authorized_keys"), os.Geteuid(), home),
//	}
//
// Each call reads the file as LoadAuthorized(path, uid, home) does, with
// its StrictModes checks, as sshd reads it at every login: an edit applies
// to the next connection, and nothing is kept between calls. It returns nil
// if the file lists the key; LoadAuthorized's error if the file is missing
// (matching fs.ErrNotExist) or unsafe; otherwise an error wrapping
// ErrNotAuthorized that names the key's fingerprint and the file.
// Lines the file skips are not reported: call LoadAuthorized to see them.
func AuthorizedVerifier(path string, uid int, home string) func(ed25519.PublicKey) error {
	return func(pub ed25519.PublicKey) error {
		auth, err := LoadAuthorized(path, uid, home)
		if err != nil {
			return err
		}
		if !auth.Allows(pub) {
			return fmt.Errorf("%w: %s is not listed in %s", ErrNotAuthorized, Fingerprint(pub), path)
		}
		return nil
	}
}

// HostVerifier returns a check of a server's key against the known_hosts
// file, for the VerifyPeer of a client's transport.SecureConfig, where
// hostport is the address dialed (see Check for its forms):
//
//	kh := &keys.KnownHosts{Path: filepath.Join(home, ".rlogin", "known_hosts")}
//	cfg := &transport.SecureConfig{Key: userKey, VerifyPeer: kh.HostVerifier("example.org:5513")}
//
// It returns Check's result: nil for a known key; for a host the file does
// not list, an error wrapping ErrUnknownHost that names the host and the
// key's fingerprint; a *KeyChangedError; or an error wrapping
// ErrRevokedKey. It never adds to the file. A client that trusts a new host
// on first use adds its key with Add only after the handshake has
// succeeded: the check runs before the server has proved that it holds the
// key's private half.
func (k *KnownHosts) HostVerifier(hostport string) func(ed25519.PublicKey) error {
	return func(pub ed25519.PublicKey) error {
		err := k.Check(hostport, pub)
		if errors.Is(err, ErrUnknownHost) {
			return fmt.Errorf("%w: no entry for %s in %s (its key is %s)", ErrUnknownHost, hostport, k.Path, Fingerprint(pub))
		}
		return err
	}
}
