package keys

import (
	"bytes"
	"crypto/ed25519"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"golang.org/x/crypto/ssh"

	"github.com/rlogin-go/rlogin/internal/sanitize"
	"github.com/rlogin-go/rlogin/internal/userfile"
)

const (
	// maxAuthorizedFile bounds the size of an authorized_keys file: about
	// ten thousand ed25519 lines.
	maxAuthorizedFile = 1 << 20
	// maxAuthorizedLine bounds one line, as OpenSSH bounds a public key
	// blob (SSH_MAX_PUBKEY_BYTES).
	maxAuthorizedLine = 16 << 10
)

// Authorized is the set of keys an authorized_keys file lets log in.
type Authorized struct {
	// Path is the file the keys came from.
	Path string
	// Skipped lists the lines that hold something other than a blank line,
	// a comment or a usable key, and why each was not used, for the
	// daemon's log.
	Skipped []Skipped

	keys []authorizedKey
}

// Skipped is a line of an authorized_keys file that authorizes nobody.
type Skipped struct {
	Line   int    // 1-based line number
	Reason string // safe to log: file content in it is one line, with control and bidi characters escaped
}

func (s Skipped) String() string { return fmt.Sprintf("line %d: %s", s.Line, s.Reason) }

// LoadAuthorized reads an authorized_keys file (sshd(8) format) for the user
// with the given uid.
//
// As sshd's StrictModes, it first checks that the file is a regular file
// and that the file and every directory from it up to the user's home
// directory home, or up to / when the file is not under home or home is "",
// (after resolving symbolic links, as sshd's auth_secure_path) is owned by uid
// or by root and is not writable by group or others; otherwise it returns an
// error naming the offending path. Directories above home are not checked,
// as in sshd, so a home under a world-writable sticky directory works. A missing
// file gives an error matching fs.ErrNotExist.
//
// It reads only a regular file of at most 1 MiB on a disk-backed file system
// (refusing FIFOs, devices, and the files of procfs, sysfs and the other
// pseudo file systems, which may block or never end), opened without
// blocking, with the calling thread's rights: a daemon running as root
// calls it with the user's file-system credentials, and under a deadline,
// as rlogind does, since a file system may still take its time.
//
// Every line of the form "[options] ssh-ed25519 AAAA... [comment]" authorizes its
// key. The options enforced are command="...", from="..." and no-pty (KeyOptions,
// Permit); a line that carries any other (restrict, cert-authority, environment=
// ...) authorizes nobody, nor do keys of other types, over-long or unparsable lines. Each of those
// is recorded in Skipped; blank lines and # comments are ignored.
func LoadAuthorized(path string, uid int, home string) (*Authorized, error) {
	data, fi, err := userfile.ReadFile(path, maxAuthorizedFile)
	if err != nil {
		return nil, fmt.Errorf("keys: authorized keys: %w", err)
	}
	// Check what was read, then the directories leading to it.
	if err := checkOwnerMode(path, "file", fi, uid); err != nil {
		return nil, err
	}
	if err := checkSecureDirs(path, uid, home); err != nil {
		return nil, err
	}
	a := parseAuthorizedKeys(data)
	a.Path = path
	return a, nil
}

// Allows reports whether pub is one of the authorized keys on a line without options (an
// exact comparison of the 32-byte keys): for a caller that enforces none. Permit also takes the
// lines with options.
func (a *Authorized) Allows(pub ed25519.PublicKey) bool {
	if a == nil || len(pub) != ed25519.PublicKeySize {
		return false
	}
	for _, k := range a.keys {
		if bytes.Equal(k.key, pub) && k.opts == (KeyOptions{}) {
			return true
		}
	}
	return false
}

// Keys returns a copy of the keys Allows accepts (on lines without options), in file order.
func (a *Authorized) Keys() []ed25519.PublicKey {
	if a == nil {
		return nil
	}
	var out []ed25519.PublicKey
	for _, k := range a.keys {
		if k.opts == (KeyOptions{}) {
			out = append(out, bytes.Clone(k.key))
		}
	}
	return out
}

// parseAuthorizedKeys parses the contents of an authorized_keys file. It
// never fails: what it cannot use goes to Skipped.
func parseAuthorizedKeys(data []byte) *Authorized {
	a := &Authorized{}
	for lineNum := 1; len(data) > 0; lineNum++ {
		var line []byte
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			line, data = data, nil
		}
		if len(line) > maxAuthorizedLine {
			a.skip(lineNum, fmt.Sprintf("line longer than %d bytes", maxAuthorizedLine))
			continue
		}
		// As OpenSSH: blanks skipped at the start are spaces and tabs only (a line that starts
		// with CR is malformed there); a CR at the end is a CRLF file's.
		line = bytes.TrimRight(bytes.TrimLeft(line, " \t"), " \t\r")
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		key, opts, reason := parseAuthorizedLine(line)
		if key == nil {
			a.skip(lineNum, reason)
			continue
		}
		a.keys = append(a.keys, authorizedKey{key: key, opts: opts})
	}
	return a
}

func (a *Authorized) skip(line int, reason string) {
	a.Skipped = append(a.Skipped, Skipped{Line: line, Reason: reason})
}

// parseAuthorizedLine parses one non-blank, non-comment line. It returns the
// key it authorizes with its options, or nil and why not.
func parseAuthorizedLine(line []byte) (ed25519.PublicKey, KeyOptions, string) {
	pub, _, options, rest, err := ssh.ParseAuthorizedKey(line)
	if err != nil || len(bytes.TrimSpace(rest)) != 0 {
		return nil, KeyOptions{}, "malformed line or unknown key type"
	}
	opts, err := parseKeyOptions(options)
	if err != nil {
		return nil, KeyOptions{}, err.Error()
	}
	if pub.Type() != ssh.KeyAlgoED25519 {
		return nil, KeyOptions{}, fmt.Sprintf("key type %s is not supported (only %s)", sanitize.Text(pub.Type()), ssh.KeyAlgoED25519)
	}
	cpk, ok := pub.(ssh.CryptoPublicKey)
	if !ok {
		return nil, KeyOptions{}, "not a valid ed25519 key"
	}
	key, ok := cpk.CryptoPublicKey().(ed25519.PublicKey)
	if !ok || len(key) != ed25519.PublicKeySize {
		return nil, KeyOptions{}, "not a valid ed25519 key"
	}
	return bytes.Clone(key), opts, ""
}

// checkOwnerMode applies the StrictModes rule to one file or directory: it
// must be owned by uid or root and not writable by group or others.
func checkOwnerMode(path, what string, fi os.FileInfo, uid int) error {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fmt.Errorf("keys: cannot read the owner of %s", path)
	}
	owner := int64(st.Uid)
	if owner != 0 && owner != int64(uid) {
		return fmt.Errorf("keys: bad ownership or modes for %s %s: owned by uid %d, want %d or root", what, path, owner, uid)
	}
	if perm := fi.Mode().Perm(); perm&0o022 != 0 {
		return fmt.Errorf("keys: bad ownership or modes for %s %s: mode %04o is writable by group or others", what, path, perm)
	}
	return nil
}

// checkSecureDirs checks every directory from the one holding path (after
// resolving symbolic links, as sshd's realpath) up to home, or up to / when
// home is "" or the path is outside it.
func checkSecureDirs(path string, uid int, home string) error {
	real, err := realPath(path)
	if err != nil {
		return err
	}
	stopAt := ""
	if home != "" {
		if h, err := realPath(home); err == nil {
			stopAt = h
		}
	}
	for dir := filepath.Dir(real); ; dir = filepath.Dir(dir) {
		fi, err := os.Lstat(dir)
		if err != nil {
			return fmt.Errorf("keys: %w", err)
		}
		if !fi.IsDir() {
			return fmt.Errorf("keys: %s is not a directory", dir)
		}
		if err := checkOwnerMode(dir, "directory", fi, uid); err != nil {
			return err
		}
		if dir == stopAt || dir == filepath.Dir(dir) { // reached home or /
			return nil
		}
	}
}

// realPath is path made absolute with symbolic links resolved.
func realPath(path string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", fmt.Errorf("keys: %w", err)
	}
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return "", fmt.Errorf("keys: %w", err)
	}
	return real, nil
}
