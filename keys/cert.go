package keys

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"
	"unicode"

	"golang.org/x/crypto/ssh"

	"github.com/rlogin-go/rlogin/internal/sanitize"
	"github.com/rlogin-go/rlogin/internal/userfile"
)

const (
	// maxCertificateFile bounds a certificate file (id_ed25519-cert.pub):
	// OpenSSH bounds a key blob to 16 KiB, and base64 makes it a third longer.
	maxCertificateFile = 32 << 10
	// maxKeyListFile bounds a TrustedUserCAKeys or RevokedKeys file, and an
	// authorized principals file.
	maxKeyListFile = 1 << 20
)

// ErrUnknownAuthority is wrapped by the *CertificateError of a certificate
// that no trusted certificate authority signed.
var ErrUnknownAuthority = errors.New("keys: certificate authority is not trusted")

// ErrCertificateRejected is wrapped by the *CertificateError of a
// certificate that a trusted authority signed but that is not valid here
// and now: wrong type, name or source address, outside its validity
// window, an unsupported critical option, a bad signature.
var ErrCertificateRejected = errors.New("keys: certificate rejected")

// A CertificateError says why an OpenSSH certificate was not accepted.
// errors.Is matches it with ErrUnknownAuthority, ErrCertificateRejected or
// ErrRevokedKey.
type CertificateError struct {
	KeyID  string // the certificate's key ID (ssh-keygen -I), safe to show
	Reason string // why, safe to show: peer strings in it are escaped
	kind   error  // ErrUnknownAuthority, ErrCertificateRejected or ErrRevokedKey
	cause  error  // golang.org/x/crypto/ssh's error, when it had the last word
}

func (e *CertificateError) Error() string {
	return fmt.Sprintf("keys: certificate %q: %s", e.KeyID, e.Reason)
}

// Unwrap returns the kind of refusal and its cause.
func (e *CertificateError) Unwrap() []error {
	if e.cause == nil {
		return []error{e.kind}
	}
	return []error{e.kind, e.cause}
}

func certError(cert *ssh.Certificate, kind error, format string, args ...any) *CertificateError {
	return &CertificateError{KeyID: sanitize.Text(cert.KeyId), Reason: fmt.Sprintf(format, args...), kind: kind}
}

// LoadCertificate reads an OpenSSH certificate file, as ssh-keygen -s
// writes it next to the key it certifies (id_ed25519-cert.pub): one line,
// "ssh-ed25519-cert-v01@openssh.com AAAA... [comment]". A missing file
// gives an error matching fs.ErrNotExist. It checks the format only: who
// signed the certificate, and for what, is for the peer to judge.
func LoadCertificate(path string) (*ssh.Certificate, error) {
	data, err := readFileBounded(path, "certificate file "+path, maxCertificateFile)
	if err != nil {
		return nil, err
	}
	pub, _, _, _, err := ssh.ParseAuthorizedKey(data)
	if err != nil {
		return nil, fmt.Errorf("keys: %s: not a certificate file: %w", path, err)
	}
	cert, ok := pub.(*ssh.Certificate)
	if !ok {
		return nil, fmt.Errorf("keys: %s holds a plain %s key, not a certificate", path, sanitize.Text(pub.Type()))
	}
	if cert.Key.Type() != ssh.KeyAlgoED25519 {
		return nil, fmt.Errorf("keys: %s: certificate of a %s key; only ed25519 keys are supported", path, sanitize.Text(cert.Key.Type()))
	}
	return cert, nil
}

// LoadKeyList reads a file of public keys, one per line in authorized_keys
// format without options, as sshd reads TrustedUserCAKeys and RevokedKeys
// (a plain key list; OpenSSH's binary KRL format is not read). Blank lines
// and # comments are ignored; any other line that is not a key is an error,
// since a line skipped in a list of revoked keys would let its key in.
// Keys may be of any type golang.org/x/crypto/ssh knows.
func LoadKeyList(path string) ([]ssh.PublicKey, error) {
	data, err := readFileBounded(path, "key list "+path, maxKeyListFile)
	if err != nil {
		return nil, err
	}
	var list []ssh.PublicKey
	for n, line := range strings.Split(string(data), "\n") {
		line = strings.Trim(line, " \t\r")
		if line == "" || line[0] == '#' {
			continue
		}
		pub, _, options, _, err := ssh.ParseAuthorizedKey([]byte(line))
		if err != nil {
			return nil, fmt.Errorf("keys: %s:%d: not a public key", path, n+1)
		}
		if len(options) > 0 {
			return nil, fmt.Errorf("keys: %s:%d: key options are not allowed here", path, n+1)
		}
		list = append(list, pub)
	}
	return list, nil
}

// LoadPrincipals reads the authorized principals file at path for the
// user with the given uid and home directory, with the StrictModes checks
// and the safe reading of LoadAuthorized (see there), and parses it with
// ParsePrincipals. A missing file gives an error matching fs.ErrNotExist:
// as in sshd, a server that uses principals files then lets no
// certificate in for the user.
func LoadPrincipals(path string, uid int, home string) (principals []string, skipped []Skipped, err error) {
	data, fi, err := userfile.ReadFile(path, maxKeyListFile)
	if err != nil {
		return nil, nil, fmt.Errorf("keys: authorized principals: %w", err)
	}
	if err := checkOwnerMode(path, "file", fi, uid); err != nil {
		return nil, nil, err
	}
	if err := checkSecureDirs(path, uid, home); err != nil {
		return nil, nil, err
	}
	principals, skipped = ParsePrincipals(data)
	return principals, skipped, nil
}

// ParsePrincipals parses an authorized principals file (sshd_config(5),
// AuthorizedPrincipalsFile): one principal name per line, blank lines and #
// comments ignored. rlogind enforces no key options, so a line that carries
// any authorizes nobody and is listed in skipped, with the reason. The
// result is never nil: an empty file allows no principal.
func ParsePrincipals(data []byte) (principals []string, skipped []Skipped) {
	principals = []string{}
	for n, line := range strings.Split(string(data), "\n") {
		line = strings.Trim(line, " \t\r")
		if line == "" || line[0] == '#' {
			continue
		}
		if strings.ContainsAny(line, " \t") {
			skipped = append(skipped, Skipped{Line: n + 1, Reason: "principal options are not supported (rlogind enforces none): " + sanitize.Text(line)})
			continue
		}
		if strings.ContainsFunc(line, unicode.IsControl) {
			skipped = append(skipped, Skipped{Line: n + 1, Reason: "control characters in a principal name: " + sanitize.Text(line)})
			continue
		}
		principals = append(principals, line)
	}
	return principals, skipped
}

// Critical options of user certificates (PROTOCOL.certkeys) that
// UserCertPolicy honours; a certificate with any other is refused, as sshd
// refuses it.
const (
	OptionForceCommand  = "force-command"
	OptionSourceAddress = "source-address"
)

// extensionPermitPty is the certificate extension without which sshd gives
// a session no terminal: such a certificate may run commands on pipes only.
const extensionPermitPty = "permit-pty"

// A UserCertPolicy decides which OpenSSH user certificates may log in, as
// sshd does with TrustedUserCAKeys, AuthorizedPrincipalsFile and
// RevokedKeys. Its zero value trusts no authority.
type UserCertPolicy struct {
	// CAKeys are the trusted user certificate authorities
	// (TrustedUserCAKeys; LoadKeyList reads that file).
	CAKeys []ssh.PublicKey
	// Revoked are keys that may not log in: a certificate of one of them,
	// or signed by one of them, is refused (RevokedKeys; LoadKeyList).
	Revoked []ssh.PublicKey
	// Principals are the certificate principals that may log in as the
	// user (the user's AuthorizedPrincipalsFile; ParsePrincipals). nil
	// means the user's own name, as in sshd without that file; an empty
	// non-nil list allows no one.
	Principals []string
	// Clock gives the time for the validity window; nil means time.Now.
	Clock func() time.Time
}

// A CertLogin is what a user certificate that Check accepted asks of the
// session.
type CertLogin struct {
	Principal string // the principal that let the user in
	KeyID     string // the certificate's key ID, safe to log
	Serial    uint64
	CA        string // the SHA256 fingerprint of the authority that signed it
	// ForceCommand is the command of the force-command critical option,
	// "" if it has none. A caller that cannot run it in place of the
	// user's shell must refuse the login.
	ForceCommand string
	// NoPTY is set when the certificate lacks the permit-pty extension: its
	// session may have no terminal (a command on pipes only), as an
	// authorized_keys line with no-pty. A caller that cannot honour it must
	// refuse the login.
	NoPTY bool
}

// Check decides whether cert, presented by a client connected from
// source, may log in as user. In order: neither the certificate's key nor
// its authority may be revoked; it must be a user certificate signed by
// one of CAKeys; one of its principals must be allowed (Principals, or
// user); now must be in its validity window; every critical option must be
// one of OptionForceCommand and OptionSourceAddress, and source must match
// source-address (an IP address or CIDR list; a source that is not a TCP
// address never matches); and its authority's signature must verify (with a SHA-2 algorithm:
// ssh-rsa SHA-1 signatures are refused, as OpenSSH does by default). A
// certificate without the permit-pty extension is accepted with NoPTY set,
// as sshd gives its session no terminal. A refusal is a *CertificateError
// whose Reason says which rule failed.
func (p *UserCertPolicy) Check(user string, cert *ssh.Certificate, source net.Addr) (*CertLogin, error) {
	if err := checkRevoked(cert, p.Revoked); err != nil {
		return nil, err
	}
	if cert.CertType != ssh.UserCert {
		return nil, certError(cert, ErrCertificateRejected, "a host certificate, not a user certificate")
	}
	if !containsKey(p.CAKeys, cert.SignatureKey) {
		return nil, certError(cert, ErrUnknownAuthority, "signed by %s, which is not a trusted user certificate authority",
			ssh.FingerprintSHA256(cert.SignatureKey))
	}
	allowed := p.Principals
	if allowed == nil {
		allowed = []string{user}
	}
	principal := ""
	for _, name := range cert.ValidPrincipals {
		if slices.Contains(allowed, name) {
			principal = name
			break
		}
	}
	if principal == "" {
		return nil, certError(cert, ErrCertificateRejected, "none of its principals (%s) may log in as %s",
			principalList(cert), sanitize.Text(user))
	}
	if err := checkValidity(cert, p.Clock); err != nil {
		return nil, err
	}
	for opt := range cert.CriticalOptions {
		if opt != OptionForceCommand && opt != OptionSourceAddress {
			return nil, certError(cert, ErrCertificateRejected, "unsupported critical option %q", sanitize.Text(opt))
		}
	}
	if list, ok := cert.CriticalOptions[OptionSourceAddress]; ok {
		if err := matchSourceAddress(list, source); err != nil {
			return nil, certError(cert, ErrCertificateRejected, "%s", err)
		}
	}
	if err := checkSignature(cert, principal, []string{OptionForceCommand, OptionSourceAddress}, p.Clock); err != nil {
		return nil, err
	}
	return &CertLogin{
		Principal:    principal,
		KeyID:        sanitize.Text(cert.KeyId),
		Serial:       cert.Serial,
		CA:           ssh.FingerprintSHA256(cert.SignatureKey),
		ForceCommand: cert.CriticalOptions[OptionForceCommand],
		NoPTY:        !hasPermitPty(cert),
	}, nil
}

// hasPermitPty reports whether cert lets its session have a terminal.
func hasPermitPty(cert *ssh.Certificate) bool {
	_, ok := cert.Extensions[extensionPermitPty]
	return ok
}

// Revokes reports whether pub is one of p.Revoked: a key that may not log
// in at all, certificate or not.
func (p *UserCertPolicy) Revokes(pub ed25519.PublicKey) bool {
	k, err := ssh.NewPublicKey(pub)
	return err != nil || containsKey(p.Revoked, k)
}

// checkRevoked refuses cert if its key or its authority's is in revoked.
func checkRevoked(cert *ssh.Certificate, revoked []ssh.PublicKey) error {
	if containsKey(revoked, cert.Key) {
		return certError(cert, ErrRevokedKey, "its key %s is revoked", ssh.FingerprintSHA256(cert.Key))
	}
	if containsKey(revoked, cert.SignatureKey) {
		return certError(cert, ErrRevokedKey, "its authority %s is revoked", ssh.FingerprintSHA256(cert.SignatureKey))
	}
	return nil
}

// checkValidity says whether now is in cert's validity window, in words
// that give the window.
func checkValidity(cert *ssh.Certificate, clock func() time.Time) error {
	now := time.Now
	if clock != nil {
		now = clock
	}
	t := now().Unix()
	if after := int64(cert.ValidAfter); after < 0 || t < after {
		return certError(cert, ErrCertificateRejected, "not valid before %s", certTime(cert.ValidAfter))
	}
	if cert.ValidBefore != ssh.CertTimeInfinity {
		if before := int64(cert.ValidBefore); before < 0 || t >= before {
			return certError(cert, ErrCertificateRejected, "expired at %s", certTime(cert.ValidBefore))
		}
	}
	return nil
}

// checkSignature has golang.org/x/crypto/ssh check cert for principal
// once more, with its signature, after the checks that give clearer
// reasons have passed.
func checkSignature(cert *ssh.Certificate, principal string, options []string, clock func() time.Time) error {
	if cert.Signature == nil || cert.Signature.Format == ssh.KeyAlgoRSA {
		return certError(cert, ErrCertificateRejected, "its authority signed it with ssh-rsa (SHA-1), which is not accepted")
	}
	checker := &ssh.CertChecker{SupportedCriticalOptions: options, Clock: clock}
	if err := checker.CheckCert(principal, cert); err != nil {
		e := certError(cert, ErrCertificateRejected, "%s", strings.TrimPrefix(err.Error(), "ssh: "))
		e.cause = err
		return e
	}
	return nil
}

// matchSourceAddress checks source against list, the value of a
// source-address critical option: comma-separated IP addresses and CIDR
// prefixes. A malformed entry refuses, as in OpenSSH.
func matchSourceAddress(list string, source net.Addr) error {
	tcp, ok := source.(*net.TCPAddr)
	if !ok || tcp == nil {
		return fmt.Errorf("its source-address option allows only %s, and the client's address %v is not an IP address", sanitize.Text(list), source)
	}
	ip, ok := netip.AddrFromSlice(tcp.IP)
	if !ok {
		return fmt.Errorf("its source-address option allows only %s, and the client's address %v is not an IP address", sanitize.Text(list), source)
	}
	ip = ip.Unmap()
	for _, entry := range strings.Split(list, ",") {
		if a, err := netip.ParseAddr(entry); err == nil {
			if a.Unmap() == ip {
				return nil
			}
			continue
		}
		prefix, err := netip.ParsePrefix(entry)
		if err != nil {
			return fmt.Errorf("its source-address option %s has the malformed entry %s", sanitize.Text(list), sanitize.Text(entry))
		}
		if prefix.Contains(ip) {
			return nil
		}
	}
	return fmt.Errorf("the client's address %s is not in its source-address list %s", ip, sanitize.Text(list))
}

// containsKey reports whether list holds key (an exact comparison of the
// keys' wire encodings).
func containsKey(list []ssh.PublicKey, key ssh.PublicKey) bool {
	if key == nil {
		return false
	}
	blob := key.Marshal()
	for _, k := range list {
		if bytes.Equal(k.Marshal(), blob) {
			return true
		}
	}
	return false
}

// principalList is cert's principals, for a message.
func principalList(cert *ssh.Certificate) string {
	if len(cert.ValidPrincipals) == 0 {
		return "none"
	}
	return sanitize.Text(strings.Join(cert.ValidPrincipals, ", "))
}

// certTime shows a certificate time as ssh-keygen -L does, in UTC.
func certTime(t uint64) string {
	if t > 1<<62 {
		return "forever"
	}
	return time.Unix(int64(t), 0).UTC().Format("2006-01-02T15:04:05Z")
}
