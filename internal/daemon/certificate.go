package daemon

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"

	"golang.org/x/crypto/ssh"

	"github.com/rlogin-go/rlogin/internal/errtext"
	"github.com/rlogin-go/rlogin/internal/sanitize"
	"github.com/rlogin-go/rlogin/internal/systemlogin"
	"github.com/rlogin-go/rlogin/internal/userfile"
	"github.com/rlogin-go/rlogin/keys"
)

// OpenSSH certificates (docs/protocol.md §6.1): the host certificate presented with the host
// key, and the user certificates that let clients in as sshd's TrustedUserCAKeys,
// AuthorizedPrincipalsFile and RevokedKeys do. The rules are keys.UserCertPolicy's; this file
// reads the files they need, as the daemon reads authorized_keys.

// loadHostCertificate reads cfg.HostCertificate, which must be a host certificate of
// cfg.HostKey; nil when there is none.
func loadHostCertificate(cfg Config) (*ssh.Certificate, error) {
	if cfg.HostCertificate == "" {
		return nil, nil
	}
	cert, err := keys.LoadCertificate(cfg.HostCertificate)
	if err != nil {
		return nil, errtext.Errorf("daemon: host certificate: %w", err) // one prefix: keys' goes
	}
	if cert.CertType != ssh.HostCert {
		return nil, fmt.Errorf("daemon: host certificate %s is a user certificate (sign it with ssh-keygen -h)", cfg.HostCertificate)
	}
	certified := cert.Key.(ssh.CryptoPublicKey).CryptoPublicKey() // LoadCertificate: an ed25519 key
	if !cfg.HostKey.Public().(ed25519.PublicKey).Equal(certified) {
		return nil, fmt.Errorf("daemon: host certificate %s is for the key %s, not for the host key %s", cfg.HostCertificate,
			ssh.FingerprintSHA256(cert.Key), keys.Fingerprint(cfg.HostKey.Public().(ed25519.PublicKey)))
	}
	return cert, nil
}

// certAttrs describes the certificates the server presents and trusts, for its first log line.
func (s *Server) certAttrs() []any {
	var attrs []any
	if s.hostCert != nil {
		attrs = append(attrs, "host_certificate", certID(s.hostCert))
	}
	if s.cfg.TrustedUserCAKeys != "" {
		attrs = append(attrs, "trusted_user_ca_keys", s.cfg.TrustedUserCAKeys)
	}
	return attrs
}

// certID names a host certificate in the log: its key ID and serial.
func certID(cert *ssh.Certificate) string {
	if cert == nil {
		return "none"
	}
	return fmt.Sprintf("%q serial %d", cert.KeyId, cert.Serial)
}

// A certVerdict is what the certificate rules say about a client's key.
type certVerdict int

const (
	certNotUsed  certVerdict = iota // no certificate, none trusted, or not accepted: the key alone decides
	certAccepted                    // the certificate lets the client in
	certRevoked                     // the key is revoked (RevokedKeys): it lets no one in
)

// userCertificate applies RevokedKeys to cl's key, and the user certificate rules to its
// certificate (if it sent one) for a login as u. It logs why a certificate was not accepted, and
// what an accepted one was; it sets cl.forceCommand and cl.noPTY to an accepted one's
// force-command and its lack of permit-pty.
func (s *Server) userCertificate(ctx context.Context, log *slog.Logger, u *systemlogin.User, cl *client) certVerdict {
	user, key, cert := u.Name, cl.key, cl.cert
	policy := &keys.UserCertPolicy{}
	if s.cfg.RevokedKeys != "" {
		revoked, err := keys.LoadKeyList(s.cfg.RevokedKeys)
		if err != nil {
			log.Error("cannot use the revoked keys file: no key is accepted", "err", err)
			return certRevoked // as sshd: an unreadable revocation list lets no key in
		}
		policy.Revoked = revoked
		if policy.Revokes(key) {
			log.Warn("key revoked", "user", user, "path", s.cfg.RevokedKeys)
			return certRevoked
		}
	}
	if cert == nil || s.cfg.TrustedUserCAKeys == "" {
		return certNotUsed
	}
	var err error
	if policy.CAKeys, err = keys.LoadKeyList(s.cfg.TrustedUserCAKeys); err != nil {
		log.Error("cannot use the trusted user CA keys file", "err", err)
		return certNotUsed
	}
	if s.cfg.AuthorizedPrincipalsFile != "" {
		path := u.AuthorizedKeysPath(s.cfg.AuthorizedPrincipalsFile) // the same expansions
		type principals struct {
			names   []string
			skipped []keys.Skipped
		}
		p, err := userfile.Load(ctx, &s.files, u.UID, func() (principals, error) {
			names, skipped, err := keys.LoadPrincipals(path, u.UID, u.Home)
			return principals{names, skipped}, err
		})
		switch {
		case errors.Is(err, fs.ErrNotExist):
			policy.Principals = []string{} // as sshd: no file, no principal
		case err != nil:
			log.Error("cannot use the authorized principals file", "user", user, "err", err)
			return certNotUsed
		default:
			policy.Principals = p.names
			for _, sk := range p.skipped {
				log.Warn("authorized principals line skipped", "path", path, "line", sk.String())
			}
		}
	}
	login, err := policy.Check(user, cert, cl.addr)
	if errors.Is(err, keys.ErrRevokedKey) {
		log.Warn("certificate revoked", "user", user, "err", err)
		return certRevoked
	}
	if err != nil {
		log.Warn("certificate not accepted", "user", user, "err", err)
		return certNotUsed
	}
	if login.ForceCommand != "" && s.cfg.System && !s.runsCommands {
		// Never ignore a restriction: login(1) runs the user's shell, never a command, so such
		// a certificate lets no one in.
		log.Warn("certificate not accepted: its force-command option is not supported in system mode", "user", user, "certificate", login.KeyID)
		return certNotUsed
	}
	if login.NoPTY && s.cfg.System && !s.runsCommands {
		// As for force-command: login(1) gives every session a terminal, so a certificate
		// that permits none lets no one in.
		log.Warn("certificate not accepted: without permit-pty it allows no terminal, and system mode has no sessions without one", "user", user, "certificate", login.KeyID)
		return certNotUsed
	}
	log.Info("certificate accepted", "user", user, "certificate", login.KeyID, "serial", login.Serial,
		"principal", login.Principal, "ca", login.CA, "force_command", sanitize.Text(login.ForceCommand))
	cl.forceCommand, cl.noPTY = login.ForceCommand, login.NoPTY
	return certAccepted
}
