package rlogind

import (
	"io"
	"path/filepath"
	"testing"
)

// The certificate settings come from sshd_config-style keywords or flags, with ~/ expanded in
// the server's own files and left to each user's home in the principals file.
func TestCertificateOptions(t *testing.T) {
	home := t.TempDir()
	path := writeConfig(t, home, `HostCertificate ~/.rlogin/rlogind_host_ed25519_key-cert.pub
TrustedUserCAKeys /etc/rlogin/user_ca.pub
AuthorizedPrincipalsFile ~/.rlogin/principals
revoked-keys ~/revoked
`)
	o, err := loadOptions([]string{"-config", path, "-trusted-user-ca-keys", "~/ca.pub"}, io.Discard, home, "none")
	if err != nil {
		t.Fatal(err)
	}
	o.resolvePaths(home, false)
	cfg := o.serverConfig(newKey(t), home, nil)
	for _, c := range []struct{ name, got, want string }{
		{"HostCertificate", cfg.HostCertificate, filepath.Join(home, ".rlogin", "rlogind_host_ed25519_key-cert.pub")},
		{"TrustedUserCAKeys (the flag wins)", cfg.TrustedUserCAKeys, filepath.Join(home, "ca.pub")},
		{"AuthorizedPrincipalsFile (each user's)", cfg.AuthorizedPrincipalsFile, "~/.rlogin/principals"},
		{"RevokedKeys", cfg.RevokedKeys, filepath.Join(home, "revoked")},
	} {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.name, c.got, c.want)
		}
	}
}
