package keys

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// maxKnownHostsFile bounds how much of a known_hosts file is read.
const maxKnownHostsFile = 64 << 20

// ErrUnknownHost is returned by KnownHosts.Check when the file has no entry
// for the host (or there is no file yet): trust on first use may apply.
var ErrUnknownHost = errors.New("keys: host is not in known_hosts")

// ErrRevokedKey is wrapped by the error KnownHosts.Check returns when the
// host's key is marked @revoked.
var ErrRevokedKey = errors.New("keys: host key is revoked")

// KnownHosts is a known_hosts file in OpenSSH format (see sshd(8),
// SSH_KNOWN_HOSTS FILE FORMAT): host patterns with wildcards and
// negations, hashed host names (HashKnownHosts, ssh-keygen -H), and the
// @revoked and @cert-authority markers. Host names are compared in lower
// case, as ssh(1) does. The zero value is not usable: set Path.
type KnownHosts struct {
	Path string
}

// KeyChangedError is returned by KnownHosts.Check when the host is known
// with a different key: the key was replaced, or someone is intercepting
// the connection. The connection must not go on.
type KeyChangedError struct {
	Host  string   // the host as written in known_hosts, e.g. "[example.org]:5513"
	Path  string   // the known_hosts file
	Line  int      // line of the first entry for Host, 1-based
	Known []string // fingerprints of the keys known for Host
}

func (e *KeyChangedError) Error() string {
	return fmt.Sprintf("keys: host key for %s has changed: it does not match %s:%d (known key %s)",
		e.Host, e.Path, e.Line, strings.Join(e.Known, ", "))
}

// Check reports whether pub is a known key of hostport ("host:port",
// "[ipv6]:port", or a bare host meaning port 22; in the file, the host is
// written as knownhosts.Normalize makes it, "[host]:port" unless the port is
// 22). It returns nil if the file lists pub for the host; ErrUnknownHost if
// it lists no key for the host or does not exist; a *KeyChangedError if it
// lists only other keys for the host; and an error wrapping ErrRevokedKey if
// pub is marked @revoked. Lines that cannot be parsed are ignored, but a
// file with no valid line at all is an error. @cert-authority lines are
// ignored (rlogin has no host certificates), except that, as in
// golang.org/x/crypto/ssh/knownhosts, a CA line whose key is pub accepts it.
func (k *KnownHosts) Check(hostport string, pub ed25519.PublicKey) error {
	pattern, addr, err := parseHostPort(hostport)
	if err != nil {
		return err
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		return fmt.Errorf("keys: checking host key of %s: %w", pattern, err)
	}
	if k.Path == "" {
		return errors.New("keys: KnownHosts.Path is empty")
	}
	data, err := readKnownHosts(k.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return ErrUnknownHost
	}
	if err != nil {
		return err
	}
	caLines := certAuthorityLines(data)

	callback, err := knownhosts.New(k.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return ErrUnknownHost // removed since readKnownHosts
	}
	if err != nil {
		return fmt.Errorf("keys: known_hosts %s: %w", k.Path, err)
	}
	err = callback(addr, hostAddr(addr), sshPub)
	var keyErr *knownhosts.KeyError
	var revokedErr *knownhosts.RevokedError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &revokedErr):
		return fmt.Errorf("keys: host key %s of %s is marked @revoked at %s:%d: %w",
			Fingerprint(pub), pattern, k.Path, revokedErr.Revoked.Line, ErrRevokedKey)
	case errors.As(err, &keyErr):
		changed := &KeyChangedError{Host: pattern, Path: k.Path}
		for _, want := range keyErr.Want {
			if caLines[want.Line] {
				continue // a CA key, not a host key (as OpenSSH's want_marker)
			}
			if changed.Line == 0 {
				changed.Line = want.Line
			}
			changed.Known = append(changed.Known, ssh.FingerprintSHA256(want.Key))
		}
		if len(changed.Known) == 0 {
			return ErrUnknownHost
		}
		return changed
	default:
		return fmt.Errorf("keys: known_hosts %s: %w", k.Path, err)
	}
}

// Add appends an entry for hostport and pub to the file, as
// knownhosts.Line writes it ("[host]:port ssh-ed25519 AAAA..."), creating
// the file with mode 0600 (and its directory with mode 0700) if needed. It
// does not remove other entries for the host.
func (k *KnownHosts) Add(hostport string, pub ed25519.PublicKey) error {
	pattern, _, err := parseHostPort(hostport)
	if err != nil {
		return err
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		return fmt.Errorf("keys: adding host key of %s: %w", pattern, err)
	}
	if k.Path == "" {
		return errors.New("keys: KnownHosts.Path is empty")
	}
	line := knownhosts.Line([]string{pattern}, sshPub) + "\n"

	if err := os.MkdirAll(filepath.Dir(k.Path), 0o700); err != nil {
		return fmt.Errorf("keys: %w", err)
	}
	f, err := os.OpenFile(k.Path, os.O_RDWR|os.O_APPEND|os.O_CREATE|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0o600)
	if err != nil {
		return fmt.Errorf("keys: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("keys: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("keys: known_hosts %s is not a regular file", k.Path)
	}
	// Don't glue the entry to a last line that lacks its newline.
	if size := fi.Size(); size > 0 {
		var last [1]byte
		if _, err := f.ReadAt(last[:], size-1); err != nil {
			return fmt.Errorf("keys: reading %s: %w", k.Path, err)
		}
		if last[0] != '\n' {
			line = "\n" + line
		}
	}
	// One write with O_APPEND: concurrent Adds don't interleave.
	if _, err := f.WriteString(line); err != nil {
		return fmt.Errorf("keys: writing %s: %w", k.Path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("keys: writing %s: %w", k.Path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("keys: writing %s: %w", k.Path, err)
	}
	return nil
}

// parseHostPort checks and canonicalizes a "host:port" address. It returns
// the host pattern as known_hosts stores it and the "host:port" form that
// the knownhosts callback takes. Host names are lower-cased, as ssh(1)
// does, IPv6 addresses written in canonical form (RFC 5952); a missing port
// means 22. Only characters of host names and IP
// addresses are allowed, so an entry can never turn into a wildcard,
// negation, marker, hash, second pattern or second line.
func parseHostPort(hostport string) (pattern, addr string, err error) {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		host, port = hostport, "22"
		if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
			host = host[1 : len(host)-1]
		}
	}
	if host == "" {
		return "", "", fmt.Errorf("keys: invalid host address %q: no host", hostport)
	}
	for _, c := range []byte(host) {
		ok := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			c == '.' || c == '-' || c == '_' || c == ':' || c == '%'
		if !ok {
			return "", "", fmt.Errorf("keys: invalid host address %q: bad character %q in host", hostport, c)
		}
	}
	host = strings.ToLower(host)
	if strings.Contains(host, ":") {
		// Only an IPv6 address may hold colons ("tcp:host:port" may not).
		ip, err := netip.ParseAddr(host)
		if err != nil {
			return "", "", fmt.Errorf("keys: invalid host address %q: %q is neither a host name nor an IP address", hostport, host)
		}
		host = ip.String() // one spelling per address
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil || n == 0 {
		return "", "", fmt.Errorf("keys: invalid host address %q: bad port %q", hostport, port)
	}
	addr = net.JoinHostPort(host, strconv.FormatUint(n, 10))
	return knownhosts.Normalize(addr), addr, nil
}

// readKnownHosts reads the file at path, refusing what is not a regular
// file (a FIFO would block knownhosts.New).
func readKnownHosts(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("keys: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("keys: known_hosts %s is not a regular file", path)
	}
	f, err := openRegular(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxKnownHostsFile+1))
	if err != nil {
		return nil, fmt.Errorf("keys: reading %s: %w", path, err)
	}
	if len(data) > maxKnownHostsFile {
		return nil, fmt.Errorf("keys: known_hosts %s is larger than %d bytes", path, maxKnownHostsFile)
	}
	return data, nil
}

// certAuthorityLines returns the numbers of the @cert-authority lines,
// counted as knownhosts counts lines.
func certAuthorityLines(data []byte) map[int]bool {
	lines := map[int]bool{}
	for n := 1; len(data) > 0; n++ {
		var line []byte
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			line, data = data, nil
		}
		line = bytes.TrimLeft(line, " \t")
		if i := bytes.IndexAny(line, " \t"); i >= 0 && string(line[:i]) == "@cert-authority" {
			lines[n] = true
		}
	}
	return lines
}

// hostAddr is the net.Addr handed to the knownhosts callback.
type hostAddr string

func (a hostAddr) Network() string { return "tcp" }
func (a hostAddr) String() string  { return string(a) }
