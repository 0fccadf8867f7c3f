// Package keys stores and checks ed25519 keys in OpenSSH's file formats,
// so ssh-keygen(1) can read, print and make them: the keys and trust files
// of rlogin and rlogind, and of any other tool that authenticates its peers
// with the same files.
//
// Typical usage, a tool that serves a secure mailbox (see package
// transport) to the keys in the user's authorized_keys:
//
//	home, _ := os.UserHomeDir()
//	hostKey, _, err := keys.LoadOrCreate(filepath.Join(home, ".mytool", "host_ed25519_key"))
//	...
//	sc, err := transport.Server(ctx, conn, &transport.SecureConfig{
//		Key:        hostKey,
//		VerifyPeer: keys.AuthorizedVerifier(filepath.Join(home, ".rlogin", "authorized_keys"), os.Geteuid(), home),
//	})
//
// and its client, which knows the server's key from known_hosts:
//
//	key, _, err := keys.LoadOrCreate(filepath.Join(home, ".rlogin", "id_ed25519"))
//	...
//	kh := &keys.KnownHosts{Path: filepath.Join(home, ".rlogin", "known_hosts")}
//	sc, err := transport.Client(ctx, conn, &transport.SecureConfig{
//		Key:        key,
//		VerifyPeer: kh.HostVerifier("example.org:5513"),
//	})
//
// A client whose user keeps keys in ssh-agent(1) signs through it: DialAgent
// (SSH_AUTH_SOCK), then Agent.Keys; an AgentKey is a crypto.Signer, so it
// can be the SecureConfig's Key, and the private key never leaves the agent.
// A passphrase-protected key file opens with LoadWithPassphrase, which asks
// for the passphrase only when the file is encrypted; Create makes one.
//
// A client that trusts a host on first use, as rlogin does, checks with
// KnownHosts.Check, asks the user about a key that fails with
// ErrUnknownHost (showing Fingerprint(pub)), and adds it with
// KnownHosts.Add once the handshake has succeeded. A server that logs why
// lines of an authorized_keys file authorize nobody calls LoadAuthorized
// and reads Authorized.Skipped.
//
// The formats:
//
//   - private keys: OpenSSH private-key format ("-----BEGIN OPENSSH PRIVATE
//     KEY-----"), plain or passphrase-protected as ssh-keygen -N makes them,
//     mode 0600, with the public half in path+".pub";
//   - authorized_keys: sshd(8) AUTHORIZED_KEYS FILE FORMAT, ssh-ed25519 lines
//     without options, checked like sshd's StrictModes;
//   - known_hosts: sshd(8) SSH_KNOWN_HOSTS FILE FORMAT, including hashed host
//     names and the @revoked marker.
//
// Only ed25519 keys are supported. Nothing in this package keeps state
// between calls but an Agent, which holds its connection to the agent; all
// functions and methods may be called from several goroutines.
package keys

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/subtle"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"syscall"
	"unicode"

	"golang.org/x/crypto/ssh"
)

// maxPrivateKeyFile bounds how much of a private key file is read; an
// OpenSSH ed25519 key file is about 400 bytes.
const maxPrivateKeyFile = 64 << 10

// ErrPassphraseNeeded means a private key file is passphrase-protected and
// no passphrase was given to open it (Load, or LoadWithPassphrase with a nil
// passphrase function).
var ErrPassphraseNeeded = errors.New("keys: key is passphrase-protected")

// ErrWrongPassphrase means the passphrase given does not open the key file.
var ErrWrongPassphrase = errors.New("keys: incorrect passphrase")

// LoadOrCreate loads the ed25519 private key at path, or, if there is no
// file there, creates one: a new key in OpenSSH private-key format, mode
// 0600, and its public half in path+".pub" (authorized_keys format, comment
// user@host, mode 0644). Missing parent directories are made with mode 0700.
// Each file is written to a temporary file and moved into place, so a crash
// never leaves half a key; if several processes race to create the key, one
// wins and the others load its key. created reports whether this call made
// the key.
//
// An existing key is loaded as by Load; if its .pub file is missing, it is
// written again (best effort).
func LoadOrCreate(path string) (key ed25519.PrivateKey, created bool, err error) {
	key, err = Load(path)
	if err == nil {
		writePublicIfMissing(path, key)
		return key, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, false, err
	}
	key, err = Create(path, nil)
	if errors.Is(err, fs.ErrExist) {
		// Another process created the key first: use that one.
		key, err = Load(path)
		if err != nil {
			return nil, false, err
		}
		writePublicIfMissing(path, key)
		return key, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	return key, true, nil
}

// Create makes a new ed25519 key at path, in OpenSSH private-key format,
// mode 0600, encrypted with passphrase unless it is empty (as ssh-keygen -N
// does: bcrypt KDF and aes256-ctr, so ssh-keygen and ssh-add open it), and
// its public half in path+".pub" (comment user@host, mode 0644). Missing
// parent directories are made with mode 0700. It never replaces a file: if
// path exists, it returns an error matching fs.ErrExist and writes nothing.
func Create(path string, passphrase []byte) (ed25519.PrivateKey, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("keys: %w", err)
	}
	_, key, err := ed25519.GenerateKey(nil)
	if err != nil {
		return nil, fmt.Errorf("keys: generating key: %w", err)
	}
	comment := defaultComment()
	var block *pem.Block
	if len(passphrase) > 0 {
		block, err = ssh.MarshalPrivateKeyWithPassphrase(key, comment, passphrase)
	} else {
		block, err = ssh.MarshalPrivateKey(key, comment)
	}
	if err != nil {
		return nil, fmt.Errorf("keys: encoding key: %w", err)
	}
	if err := writeFileAtomic(path, pem.EncodeToMemory(block), 0o600, true); err != nil {
		return nil, err
	}
	pub := MarshalAuthorizedKey(key.Public().(ed25519.PublicKey), comment)
	if err := writeFileAtomic(path+".pub", pub, 0o644, false); err != nil {
		return nil, err
	}
	return key, nil
}

// Load reads the ed25519 private key at path (OpenSSH private-key format, or
// PKCS#8 PEM). Like ssh(1), it refuses a key file that group or others may
// access ("permissions 0644 ... are too open"). A missing file gives an
// error matching fs.ErrNotExist; a passphrase-protected one, an error
// matching ErrPassphraseNeeded (LoadWithPassphrase opens it). Keys of other
// types are refused.
func Load(path string) (ed25519.PrivateKey, error) {
	return LoadWithPassphrase(path, nil)
}

// LoadWithPassphrase is Load for a key file that may be passphrase-protected:
// passphrase is called, once, only when the file is encrypted, and its error
// is returned as is. A passphrase that does not open the key gives an error
// matching ErrWrongPassphrase. A nil passphrase function refuses encrypted
// files as Load does.
func LoadWithPassphrase(path string, passphrase func() ([]byte, error)) (ed25519.PrivateKey, error) {
	key, err := loadUnchecked(path, passphrase)
	if err != nil {
		return nil, err
	}
	if err := CheckKey(path, key); err != nil {
		return nil, err
	}
	return key, nil
}

// LoadUnchecked is Load without its last step, the check that the public half the file stores
// is its seed's (CheckKey), for a caller that checks later: that check is a process's first
// ed25519 operation, for which Go builds its tables (about 0.7 ms), and rlogin makes it while
// its first round trip is under way.
func LoadUnchecked(path string) (ed25519.PrivateKey, error) { return loadUnchecked(path, nil) }

// CheckKey reports, in Load's words, whether the public half of key, loaded from path, is not
// its seed's.
func CheckKey(path string, key ed25519.PrivateKey) error {
	if subtle.ConstantTimeCompare(ed25519.NewKeyFromSeed(key.Seed()), key) != 1 {
		return fmt.Errorf("keys: %s: inconsistent ed25519 key (public half does not match)", path)
	}
	return nil
}

// loadUnchecked is LoadWithPassphrase but CheckKey.
func loadUnchecked(path string, passphrase func() ([]byte, error)) (ed25519.PrivateKey, error) {
	data, err := readPrivateKeyFile(path)
	if err != nil {
		return nil, err
	}
	raw, err := ssh.ParseRawPrivateKey(data)
	var missing *ssh.PassphraseMissingError
	if errors.As(err, &missing) {
		if passphrase == nil {
			return nil, fmt.Errorf("%w: %s", ErrPassphraseNeeded, path)
		}
		pass, perr := passphrase()
		if perr != nil {
			return nil, perr
		}
		raw, err = ssh.ParseRawPrivateKeyWithPassphrase(data, pass)
		if errors.Is(err, x509.IncorrectPasswordError) {
			return nil, fmt.Errorf("%w for %s", ErrWrongPassphrase, path)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("keys: %s: %w", path, err)
	}
	var key ed25519.PrivateKey
	switch k := raw.(type) {
	case ed25519.PrivateKey:
		key = k
	case *ed25519.PrivateKey:
		key = *k
	default:
		return nil, fmt.Errorf("keys: %s: %s key; only ed25519 keys are supported", path, keyKind(raw))
	}
	if len(key) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("keys: %s: malformed ed25519 key", path)
	}
	return key, nil
}

// readPrivateKeyFile reads a private key file: a regular file, not open to
// group or others, of at most maxPrivateKeyFile bytes.
func readPrivateKeyFile(path string) ([]byte, error) {
	f, err := openRegular(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("keys: %w", err)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("keys: permissions %04o for %q are too open: a private key file must not be accessible by group or others (chmod 600 it)", perm, path)
	}
	return readBounded(f, path, "private key")
}

// readBounded reads f, the key file at path, refusing more than
// maxPrivateKeyFile bytes: no key file of ours is near that size.
func readBounded(f *os.File, path, what string) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(f, maxPrivateKeyFile+1))
	if err != nil {
		return nil, fmt.Errorf("keys: reading %s: %w", path, err)
	}
	if len(data) > maxPrivateKeyFile {
		return nil, fmt.Errorf("keys: %s: too large for a %s file", path, what)
	}
	return data, nil
}

// LoadPublic reads the ed25519 public key in a .pub file (one line in
// authorized_keys format, as ssh-keygen writes it next to the private key).
// A missing file gives an error matching fs.ErrNotExist.
func LoadPublic(path string) (ed25519.PublicKey, error) {
	f, err := openRegular(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := readBounded(f, path, "public key")
	if err != nil {
		return nil, err
	}
	k, _, _, _, err := ssh.ParseAuthorizedKey(data)
	if err != nil {
		return nil, fmt.Errorf("keys: %s: %w", path, err)
	}
	pub, ok := ed25519PublicKey(k)
	if !ok {
		return nil, fmt.Errorf("keys: %s: %s key; only ed25519 keys are supported", path, k.Type())
	}
	return pub, nil
}

// ed25519PublicKey returns k's ed25519 key, if it is one (a plain key, not a
// certificate).
func ed25519PublicKey(k ssh.PublicKey) (ed25519.PublicKey, bool) {
	if k.Type() != ssh.KeyAlgoED25519 {
		return nil, false
	}
	ck, ok := k.(ssh.CryptoPublicKey)
	if !ok {
		return nil, false
	}
	pub, ok := ck.CryptoPublicKey().(ed25519.PublicKey)
	return pub, ok && len(pub) == ed25519.PublicKeySize
}

// keyKind names the kind of a parsed private key for error messages.
func keyKind(raw any) string {
	switch raw.(type) {
	case *rsa.PrivateKey:
		return "RSA"
	case *ecdsa.PrivateKey:
		return "ECDSA"
	}
	return fmt.Sprintf("%T", raw)
}

// Fingerprint returns the SHA256 fingerprint of pub as ssh-keygen -l prints
// it: "SHA256:" and the unpadded base64 of the hash of the key's SSH wire
// encoding. A key of the wrong length gives "(invalid ed25519 key)".
func Fingerprint(pub ed25519.PublicKey) string {
	k, err := ssh.NewPublicKey(pub)
	if err != nil {
		return "(invalid ed25519 key)"
	}
	return ssh.FingerprintSHA256(k)
}

// MarshalAuthorizedKey returns pub as one authorized_keys / .pub line,
// "ssh-ed25519 AAAA... comment\n". Runs of white space and control
// characters in comment become single spaces, so the result is always one
// line. A key of the wrong length gives nil.
func MarshalAuthorizedKey(pub ed25519.PublicKey, comment string) []byte {
	k, err := ssh.NewPublicKey(pub)
	if err != nil {
		return nil
	}
	line := ssh.MarshalAuthorizedKey(k) // ends in '\n'
	comment = cleanComment(comment)
	if comment == "" {
		return line
	}
	out := make([]byte, 0, len(line)+1+len(comment))
	out = append(out, line[:len(line)-1]...)
	out = append(out, ' ')
	out = append(out, comment...)
	return append(out, '\n')
}

// cleanComment makes comment fit on one line of a key file.
func cleanComment(comment string) string {
	comment = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || unicode.IsSpace(r) || r == unicode.ReplacementChar {
			return ' '
		}
		return r
	}, comment)
	return strings.Join(strings.Fields(comment), " ")
}

// defaultComment returns "user@host" for the current user, as ssh-keygen
// writes it.
func defaultComment() string {
	name := ""
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	if name == "" {
		name = os.Getenv("USER")
	}
	if name == "" {
		name = fmt.Sprint(os.Getuid())
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost"
	}
	return cleanComment(name + "@" + host)
}

// writePublicIfMissing writes path+".pub" for key if there is no such file
// (a crash after the private key was written, a racing creator, a user who
// deleted it). It is best effort: the private key is what counts, and its
// directory may be read-only.
func writePublicIfMissing(path string, key ed25519.PrivateKey) {
	if _, err := os.Lstat(path + ".pub"); !errors.Is(err, fs.ErrNotExist) {
		return // present (or unknowable): leave it alone
	}
	pub := MarshalAuthorizedKey(key.Public().(ed25519.PublicKey), defaultComment())
	_ = writeFileAtomic(path+".pub", pub, 0o644, false) // best effort, see above
}

// openRegular opens path for reading without blocking on a FIFO or taking a
// controlling terminal, and checks that it is a regular file.
func openRegular(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0)
	if err != nil {
		return nil, fmt.Errorf("keys: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("keys: %w", err)
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("keys: %s is not a regular file", path)
	}
	return f, nil
}

// writeFileAtomic writes data to path through a temporary file in the same
// directory, so readers see the old file or the whole new one, never a
// part. With noClobber the file is only created: if path exists, nothing is
// written and the error matches fs.ErrExist.
func writeFileAtomic(path string, data []byte, perm os.FileMode, noClobber bool) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return fmt.Errorf("keys: %w", err)
	}
	tmpName := tmp.Name()
	defer func() {
		if err != nil {
			_ = os.Remove(tmpName) // best effort; may already be gone
		}
	}()
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return fmt.Errorf("keys: %w", err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("keys: writing %s: %w", tmpName, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("keys: writing %s: %w", tmpName, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("keys: writing %s: %w", tmpName, err)
	}
	if noClobber {
		// link(2) fails if path exists: an atomic create-if-absent.
		if err := os.Link(tmpName, path); err != nil {
			if errors.Is(err, fs.ErrExist) {
				return fmt.Errorf("keys: %w", err)
			}
			// A file system without hard links: fall back to rename,
			// still checking first.
			if _, serr := os.Lstat(path); !errors.Is(serr, fs.ErrNotExist) {
				return fmt.Errorf("keys: %s: %w", path, fs.ErrExist)
			}
			if err := os.Rename(tmpName, path); err != nil {
				return fmt.Errorf("keys: %w", err)
			}
		} else {
			_ = os.Remove(tmpName) // path holds the data now
		}
	} else if err := os.Rename(tmpName, path); err != nil {
		return fmt.Errorf("keys: %w", err)
	}
	syncDir(dir)
	return nil
}

// syncDir flushes a directory entry change to disk, best effort.
func syncDir(dir string) {
	d, err := os.Open(dir)
	if err != nil {
		return
	}
	_ = d.Sync() // best effort: some file systems refuse to fsync a directory
	_ = d.Close()
}
