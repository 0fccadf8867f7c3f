package rlogind

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/user"
	"path/filepath"
	"strings"

	"github.com/rlogin-go/rlogin/internal/errtext"
	"github.com/rlogin-go/rlogin/keys"
)

// userKey is the key rlogin logs in with, which bootstrap authorizes.
const userKey = "~/.rlogin/id_ed25519"

// loadHostKey loads the host key at path, creating it if there is none.
func loadHostKey(log *slog.Logger, path string) (ed25519.PrivateKey, error) {
	hostKey, created, err := keys.LoadOrCreate(path)
	if err != nil {
		return nil, errtext.Errorf("rlogind: cannot use the host key: %w", err)
	}
	fp := keys.Fingerprint(hostKey.Public().(ed25519.PublicKey))
	if created {
		log.Info("created host key", "path", path, "fingerprint", fp)
	} else {
		log.Info("host key", "path", path, "fingerprint", fp)
	}
	return hostKey, nil
}

// bootstrap writes the authorized keys file at path with the user's own rlogin key, creating
// that key if needed, if and only if there is no file at path. It never touches an existing
// file, nor one created by someone else meanwhile.
func bootstrap(log *slog.Logger, home, path string) error {
	if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
		return nil // there is a file (or something that LoadAuthorized will complain about)
	}
	keyPath := expandHome(userKey, home)
	key, _, err := keys.LoadOrCreate(keyPath)
	if err != nil {
		return errtext.Errorf("rlogind: bootstrapping %s: %w", path, err)
	}
	pub := key.Public().(ed25519.PublicKey)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return errtext.Errorf("rlogind: bootstrapping %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return nil // created meanwhile: not ours to touch
	}
	if err != nil {
		return errtext.Errorf("rlogind: bootstrapping %s: %w", path, err)
	}
	_, err = f.Write(keys.MarshalAuthorizedKey(pub, keyComment()))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(path) // best effort: a half-written file would stop the next bootstrap
		return errtext.Errorf("rlogind: bootstrapping %s: %w", path, err)
	}
	log.Info(fmt.Sprintf("authorized your own key %s.pub (%s) in %s because that file did not exist",
		tildePath(keyPath, home), keys.Fingerprint(pub), tildePath(path, home)))
	return nil
}

// keyComment is the comment of a bootstrapped authorized_keys line: user@host, as ssh-keygen's.
func keyComment() string {
	name := "rlogin"
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	host, err := os.Hostname()
	if err != nil {
		host = "localhost"
	}
	return name + "@" + host
}

// expandHome replaces a leading "~/" of p with home.
func expandHome(p, home string) string {
	if rest, ok := strings.CutPrefix(p, "~/"); ok {
		return filepath.Join(home, rest)
	}
	return p
}

// tildePath shows p relative to home as "~/...", when it is under home.
func tildePath(p, home string) string {
	rel, err := filepath.Rel(home, p)
	if err != nil || rel == "." || strings.HasPrefix(rel, "..") || filepath.IsAbs(rel) {
		return p
	}
	return "~/" + rel
}
