package client

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"io/fs"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/rlogin-go/rlogin/keys"
	"github.com/rlogin-go/rlogin/transport"
)

// OpenSSH certificates, both ways (docs/protocol.md §6.1). rlogin presents the user certificate
// that sits beside its key file (id_ed25519-cert.pub), as ssh does; a server that does not use
// certificates ignores it. A host certificate that the server presents is accepted without any
// question when known_hosts trusts its authority for the host (@cert-authority); one that is
// revoked refuses the connection; one that is not acceptable for another reason (unknown
// authority, another host's, outside its validity window) is set aside with a message saying
// why, and the host's key is checked as if there were no certificate.

// secureConfig is the client's end of the handshake: the identity's key and certificate
// (identity.go chooses them), and check for the server's key or certificate.
func (r *runner) secureConfig(id *identity, check *hostKeyCheck) *transport.SecureConfig {
	return &transport.SecureConfig{
		GetKey:                id.key, // loaded in the handshake's first round trip, if not before
		VerifyPeerCertificate: check.verifyCertificate,
	}
}

// certificateBeside returns the user certificate in keyPath+"-cert.pub" (ssh-keygen -s writes it
// there), or nil if there is none or it is not for pub, saying why when there is one rlogin
// cannot use; messages name the key file shown (~/.rlogin/id_ed25519). Whether the certificate is
// valid, and for whom, is the server's to judge.
func (r *runner) certificateBeside(keyPath, shown string, pub ed25519.PublicKey) *ssh.Certificate {
	return r.certificateAt(keyPath+"-cert.pub", shown+"-cert.pub", pub)
}

// certificateAt is certificateBeside for the certificate file certPath (CertificateFile's),
// shown as path.
func (r *runner) certificateAt(certPath, path string, pub ed25519.PublicKey) *ssh.Certificate {
	cert, err := keys.LoadCertificate(certPath)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		fmt.Fprintf(r.stderr, "rlogin: not presenting the certificate %s: %s\n", path, plainText(err))
		return nil
	}
	if !certifies(cert, pub) {
		fmt.Fprintf(r.stderr, "rlogin: not presenting the certificate %s: it is for another key than %s\n", path, keys.Fingerprint(pub))
		return nil
	}
	if cert.CertType != ssh.UserCert {
		fmt.Fprintf(r.stderr, "rlogin: not presenting the certificate %s: it is a host certificate\n", path)
		return nil
	}
	r.debugf("presenting the certificate %s (key ID %q, serial %d)", path, cert.KeyId, cert.Serial)
	return cert
}

// verifyCertificate is the transport's VerifyPeerCertificate: the server's certificate, if it
// sent one and known_hosts trusts it, else its key (verify).
func (h *hostKeyCheck) verifyCertificate(pub ed25519.PublicKey, cert *ssh.Certificate) error {
	if cert == nil {
		return h.verify(pub)
	}
	err := h.known.CheckCertificate(h.hostport, cert)
	var refused *keys.CertificateError
	switch {
	case err == nil:
		h.err = nil
		return nil
	case errors.Is(err, keys.ErrRevokedKey):
		h.err = hostKeyRefused(fmt.Sprintf("the host certificate of %s is revoked: %s",
			knownhosts.Normalize(h.hostport), reasonOf(err)), err)
		return h.err
	case errors.Is(err, keys.ErrUnknownAuthority) && h.known.Check(h.hostport, pub) == nil:
		// The key is known anyway: the certificate adds nothing to say, as in ssh.
		return h.verify(pub)
	case errors.As(err, &refused):
		fmt.Fprintf(h.stderr, "Host certificate of '%s' not accepted: %s.\nChecking its host key instead.\n",
			knownhosts.Normalize(h.hostport), reasonOf(err))
		return h.verify(pub)
	default: // known_hosts could not be read: verify says so
		return h.verify(pub)
	}
}

// certifies reports whether cert is a certificate of pub.
func certifies(cert *ssh.Certificate, pub ed25519.PublicKey) bool {
	ck, ok := cert.Key.(ssh.CryptoPublicKey)
	if !ok {
		return false
	}
	k, ok := ck.CryptoPublicKey().(ed25519.PublicKey)
	return ok && k.Equal(pub)
}

// reasonOf is a certificate refusal's reason, without the package's words around it.
func reasonOf(err error) string {
	var ce *keys.CertificateError
	if errors.As(err, &ce) {
		return ce.Reason
	}
	return plainText(err)
}
