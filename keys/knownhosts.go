package keys

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/rlogin-go/rlogin/internal/sanitize"
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
// ignored: a CA key is never a host key (as in ssh(1);
// golang.org/x/crypto/ssh/knownhosts would accept pub from a CA line); they
// are CheckCertificate's. Host names match whatever their case in the file, as in
// ssh(1) (knownhosts compares them case-sensitively).
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
	entries, err := parseKnownHosts(data)
	if err != nil {
		return fmt.Errorf("keys: known_hosts %s: %w", k.Path, err)
	}
	blob := sshPub.Marshal()
	for _, e := range entries { // @revoked wins, whatever its host pattern (as knownhosts)
		if e.marker == markerRevoked && bytes.Equal(e.key.Marshal(), blob) {
			return fmt.Errorf("keys: host key %s of %s is marked @revoked at %s:%d: %w",
				Fingerprint(pub), pattern, k.Path, e.line, ErrRevokedKey)
		}
	}
	host, port, _ := net.SplitHostPort(addr) // addr is parseHostPort's: it splits
	changed := &KeyChangedError{Host: pattern, Path: k.Path}
	for _, e := range entries {
		if e.marker != "" || !e.matchHost(host, port) {
			continue // a CA key is not a host key (OpenSSH's want_marker)
		}
		if bytes.Equal(e.key.Marshal(), blob) {
			return nil
		}
		if changed.Line == 0 {
			changed.Line = e.line
		}
		changed.Known = append(changed.Known, ssh.FingerprintSHA256(e.key))
	}
	if len(changed.Known) == 0 {
		return ErrUnknownHost
	}
	return changed
}

// CheckCertificate checks the OpenSSH host certificate a server presented
// at hostport (as Check takes it) against the @cert-authority lines of the
// file, with ssh(1)'s rules: neither the certificate's key nor its
// authority may be marked @revoked; it must be a host certificate; a
// @cert-authority line whose host patterns match the host (and port, as
// for Check) must list the key that signed it; the host name (or address)
// as dialed, in lower case, must be one of its principals; now must be in
// its validity window; it may carry no critical option; and the
// signature must verify (not with ssh-rsa, SHA-1). It returns nil when the
// certificate is accepted, a *CertificateError wrapping ErrRevokedKey,
// ErrUnknownAuthority or ErrCertificateRejected saying why not, or an
// error reading the file. A missing file trusts no authority.
//
// A client that finds the certificate unacceptable for any reason but a
// revocation may still check the host's key itself with Check, as ssh(1)
// falls back to known_hosts' plain keys.
func (k *KnownHosts) CheckCertificate(hostport string, cert *ssh.Certificate) error {
	return k.checkCertificate(hostport, cert, nil)
}

func (k *KnownHosts) checkCertificate(hostport string, cert *ssh.Certificate, clock func() time.Time) error {
	_, addr, err := parseHostPort(hostport)
	if err != nil {
		return err
	}
	if k.Path == "" {
		return errors.New("keys: KnownHosts.Path is empty")
	}
	var entries []knownHostsEntry
	data, err := readKnownHosts(k.Path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return err
	default:
		if entries, err = parseKnownHosts(data); err != nil {
			return fmt.Errorf("keys: known_hosts %s: %w", k.Path, err)
		}
	}
	var revoked []ssh.PublicKey
	for _, e := range entries {
		if e.marker == markerRevoked {
			revoked = append(revoked, e.key)
		}
	}
	if err := checkRevoked(cert, revoked); err != nil {
		return err
	}
	if cert.CertType != ssh.HostCert {
		return certError(cert, ErrCertificateRejected, "a user certificate, not a host certificate")
	}
	host, port, _ := net.SplitHostPort(addr) // addr is parseHostPort's: it splits
	trusted := false
	for _, e := range entries {
		if e.marker == markerCertAuthority && e.matchHost(host, port) && containsKey([]ssh.PublicKey{e.key}, cert.SignatureKey) {
			trusted = true
			break
		}
	}
	if !trusted {
		return certError(cert, ErrUnknownAuthority, "signed by %s, which no @cert-authority line for %s in %s trusts",
			ssh.FingerprintSHA256(cert.SignatureKey), knownhosts.Normalize(addr), k.Path)
	}
	if !slices.Contains(cert.ValidPrincipals, host) {
		return certError(cert, ErrCertificateRejected, "not valid for %s: its principals are %s", host, principalList(cert))
	}
	if err := checkValidity(cert, clock); err != nil {
		return err
	}
	for opt := range cert.CriticalOptions {
		return certError(cert, ErrCertificateRejected, "unsupported critical option %q in a host certificate", sanitize.Text(opt))
	}
	return checkSignature(cert, host, nil, clock)
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
	return readFileBounded(path, "known_hosts "+path, maxKnownHostsFile)
}

// readFileBounded reads the regular file at path, of at most limit bytes;
// what names it in the error for a larger one.
func readFileBounded(path, what string, limit int) ([]byte, error) {
	f, err := openRegular(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, int64(limit)+1))
	if err != nil {
		return nil, fmt.Errorf("keys: reading %s: %w", path, err)
	}
	if len(data) > limit {
		return nil, fmt.Errorf("keys: %s is larger than %d bytes", what, limit)
	}
	return data, nil
}

// known_hosts markers.
const (
	markerCertAuthority = "@cert-authority"
	markerRevoked       = "@revoked"
)

// knownHostsEntry is one valid line of a known_hosts file.
type knownHostsEntry struct {
	line     int    // 1-based
	marker   string // "", markerCertAuthority or markerRevoked
	patterns []hostPattern
	hashed   *hashedHost // instead of patterns: "|1|salt|hash"
	key      ssh.PublicKey
}

// hostPattern is one host of a pattern list: a host name with wildcards ('*', '?'), in lower
// case, and a port; negate for "!pattern".
type hostPattern struct {
	host, port string
	negate     bool
}

// hashedHost is a host hashed as HashKnownHosts (ssh-keygen -H) writes it.
type hashedHost struct {
	salt, hash []byte
}

// parseKnownHosts parses known_hosts data as golang.org/x/crypto/ssh/knownhosts does (the same
// lines are valid and numbered the same way): lines that cannot be parsed are skipped, but data
// with invalid lines and no valid one is an error. Host patterns are kept in lower case.
func parseKnownHosts(data []byte) ([]knownHostsEntry, error) {
	var entries []knownHostsEntry
	var firstErr error
	firstErrLine := 0
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := bytes.Trim(sc.Bytes(), " \t")
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		e, err := parseKnownHostsLine(line)
		if err != nil {
			if firstErr == nil {
				firstErr, firstErrLine = err, n
			}
			continue
		}
		e.line = n
		entries = append(entries, e)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(entries) == 0 && firstErr != nil {
		return nil, fmt.Errorf("no valid entries, line %d: %w", firstErrLine, firstErr)
	}
	return entries, nil
}

// nextWord splits line at its first space or tab.
func nextWord(line []byte) (string, []byte) {
	i := bytes.IndexAny(line, " \t")
	if i < 0 {
		return string(line), nil
	}
	return string(line[:i]), bytes.Trim(line[i:], " \t")
}

// parseKnownHostsLine parses "[marker] patterns keytype base64-key [comment]".
func parseKnownHostsLine(line []byte) (knownHostsEntry, error) {
	var e knownHostsEntry
	w, rest := nextWord(line)
	if w == markerCertAuthority || w == markerRevoked {
		e.marker = w
		w, rest = nextWord(rest)
	}
	if strings.HasPrefix(w, "@") {
		return e, fmt.Errorf("unexpected marker %q", w)
	}
	if len(rest) == 0 {
		return e, errors.New("missing host pattern")
	}
	keyType, rest := nextWord(rest)
	if len(rest) == 0 {
		return e, errors.New("missing key type pattern")
	}
	blob, _ := nextWord(rest)
	raw, err := base64.StdEncoding.DecodeString(blob)
	if err != nil {
		return e, err
	}
	if e.key, err = ssh.ParsePublicKey(raw); err != nil {
		return e, err
	}
	if e.key.Type() != keyType {
		return e, fmt.Errorf("key type mismatch: found %q, want %q", e.key.Type(), keyType)
	}
	if e.marker == markerRevoked {
		return e, nil // the host pattern of a @revoked line is not used
	}
	if strings.HasPrefix(w, "|") {
		e.hashed, err = parseHashedHost(w)
		return e, err
	}
	e.patterns, err = parseHostPatterns(w)
	return e, err
}

// parseHostPatterns parses a comma-separated pattern list: "host", "[host]:port", "!host".
func parseHostPatterns(list string) ([]hostPattern, error) {
	var ps []hostPattern
	for _, p := range strings.Split(list, ",") {
		if p == "" {
			continue
		}
		var hp hostPattern
		if p[0] == '!' {
			hp.negate, p = true, p[1:]
			if p == "" {
				return nil, errors.New("negation without following hostname")
			}
		}
		var err error
		hp.host, hp.port, err = net.SplitHostPort(p)
		if err != nil {
			if p[0] == '[' {
				return nil, err
			}
			hp.host, hp.port = p, "22"
		}
		hp.host = strings.ToLower(hp.host) // ssh(1) matches host names in any case
		ps = append(ps, hp)
	}
	return ps, nil
}

// parseHashedHost parses "|1|base64-salt|base64-hash".
func parseHashedHost(s string) (*hashedHost, error) {
	parts := strings.Split(s, "|")
	if len(parts) != 4 {
		return nil, fmt.Errorf("hashed host of %d components, want 3", len(parts)-1)
	}
	if parts[1] != "1" {
		return nil, fmt.Errorf("hashed host of type %q, must be 1", parts[1])
	}
	salt, err := base64.StdEncoding.DecodeString(parts[2])
	if err != nil {
		return nil, err
	}
	hash, err := base64.StdEncoding.DecodeString(parts[3])
	if err != nil {
		return nil, err
	}
	return &hashedHost{salt: salt, hash: hash}, nil
}

// matchHost reports whether the entry is for host (lower case) and port. In a pattern list, a
// matching negated pattern excludes the host whatever the others say.
func (e *knownHostsEntry) matchHost(host, port string) bool {
	if e.hashed != nil {
		// The name hashed is the host as ssh(1) looks it up: in lower case, "[host]:port"
		// unless the port is 22.
		mac := hmac.New(sha1.New, e.hashed.salt)
		mac.Write([]byte(knownhosts.Normalize(net.JoinHostPort(host, port))))
		return hmac.Equal(mac.Sum(nil), e.hashed.hash)
	}
	matched := false
	for _, p := range e.patterns {
		if p.port != port || !wildcardMatch(p.host, host) {
			continue
		}
		if p.negate {
			return false
		}
		matched = true
	}
	return matched
}

// wildcardMatch reports whether s matches pattern, where '*' matches any run of bytes (dots
// included) and '?' any one byte. It backtracks only to the last '*', so it takes
// O(len(pattern)*len(s)) whatever the pattern.
func wildcardMatch(pattern, s string) bool {
	p, i := 0, 0
	star, mark := -1, 0 // the last '*' seen, and where in s its match ends so far
	for i < len(s) {
		switch {
		case p < len(pattern) && pattern[p] == '*':
			star, mark = p, i
			p++
		case p < len(pattern) && (pattern[p] == '?' || pattern[p] == s[i]):
			p++
			i++
		case star >= 0:
			mark++
			p, i = star+1, mark
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}
