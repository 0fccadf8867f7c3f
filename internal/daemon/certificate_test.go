package daemon

import (
	"context"
	"crypto/ed25519"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/rlogin-go/rlogin/internal/logintest"
	"github.com/rlogin-go/rlogin/internal/sshtest"
	"github.com/rlogin-go/rlogin/keys"
	"github.com/rlogin-go/rlogin/session"
	"github.com/rlogin-go/rlogin/transport"
)

// testCA is a certificate authority made with ssh-keygen.
type testCA struct {
	path string // private key; path+".pub" the public key, as TrustedUserCAKeys lists it
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	sshtest.Need(t, "ssh-keygen")
	ca := &testCA{path: filepath.Join(t.TempDir(), "ca")}
	sshtest.Run(t, nil, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "test-ca", "-f", ca.path)
	return ca
}

// sign has ssh-keygen certify pub with args (-h, -n, -V, -O ...); it returns the certificate
// file's path.
func (ca *testCA) sign(t *testing.T, pub ed25519.PublicKey, args ...string) string {
	t.Helper()
	pubPath := filepath.Join(t.TempDir(), "key.pub")
	if err := os.WriteFile(pubPath, keys.MarshalAuthorizedKey(pub, "test"), 0o644); err != nil {
		t.Fatal(err)
	}
	sshtest.Run(t, nil, "ssh-keygen", append(append([]string{"-q", "-s", ca.path, "-I", "test-cert"}, args...), pubPath)...)
	return filepath.Join(filepath.Dir(pubPath), "key-cert.pub")
}

// certLogin logs in to ts with key and the certificate at certPath as user; it returns the
// session, or the login's error, and the host certificate the server presented.
func certLogin(t *testing.T, ts *testServer, key ed25519.PrivateKey, certPath, user string) (*logintest.Remote, *ssh.Certificate, error) {
	t.Helper()
	return certLoginRequest(t, ts, key, certPath, ts.request(user))
}

// certLoginRequest is certLogin with the request req (a command, say).
func certLoginRequest(t *testing.T, ts *testServer, key ed25519.PrivateKey, certPath string, req session.Request) (*logintest.Remote, *ssh.Certificate, error) {
	t.Helper()
	cert, err := keys.LoadCertificate(certPath)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), shortTimeout)
	defer cancel()
	conn, err := transport.DialMailbox(ctx, ts.addr, MailboxName)
	if err != nil {
		t.Fatal(err)
	}
	var hostCert *ssh.Certificate
	sc, err := transport.Client(ctx, conn, &transport.SecureConfig{Key: key, Certificate: cert,
		VerifyPeerCertificate: func(pub ed25519.PublicKey, c *ssh.Certificate) error {
			if !pub.Equal(pubOf(ts.hostKey)) {
				return errors.New("not the test server's host key")
			}
			hostCert = c
			return nil
		}})
	if err != nil {
		return nil, nil, err
	}
	r, err := logintest.Start(t, sc, req)
	return r, hostCert, err
}

// A client whose key no authorized_keys lists logs in with a certificate from a trusted CA, and
// the server presents its host certificate.
func TestUserCertificateLogin(t *testing.T) {
	ca := newTestCA(t)
	hostKey := newKey(t)
	hostCertPath := ca.sign(t, pubOf(hostKey), "-h", "-n", "127.0.0.1")
	ts := startServer(t, func(c *Config) {
		c.HostKey = hostKey
		c.HostCertificate = hostCertPath
		c.TrustedUserCAKeys = ca.path + ".pub"
	})
	ts.hostKey = hostKey
	key := newKey(t) // not in authorized_keys
	r, hostCert, err := certLogin(t, ts, key, ca.sign(t, pubOf(key), "-n", ts.srv.User(), "-V", "-5m:+1h"), ts.srv.User())
	if err != nil {
		t.Fatalf("login with a certificate: %v\nlog:\n%s", err, ts.log.String())
	}
	r.Send("exit 0\n")
	if err := r.Wait(); err != nil {
		t.Fatal(err)
	}
	if hostCert == nil || hostCert.CertType != ssh.HostCert || hostCert.KeyId != "test-cert" {
		t.Errorf("host certificate presented: %v", hostCert)
	}
	ts.waitLog(`certificate accepted.*certificate=test-cert.*principal=` + ts.srv.User())
}

func TestUserCertificateRefusals(t *testing.T) {
	ca, other := newTestCA(t), newTestCA(t)
	for _, tc := range []struct {
		name    string
		edit    func(*testing.T, *Config, ed25519.PublicKey)
		signer  *testCA
		args    []string // "%u" is the daemon's user
		wantLog string
	}{
		{"wrong principal", nil, ca, []string{"-n", "somebody-else"}, `certificate not accepted.*none of its principals \(somebody-else\)`},
		{"expired", nil, ca, []string{"-n", "%u", "-V", "20200101:20200102"}, `certificate not accepted.*expired at 2020-01-02`},
		{"not yet valid", nil, ca, []string{"-n", "%u", "-V", "+1d:+2d"}, `certificate not accepted.*not valid before`},
		{"unknown CA", nil, other, []string{"-n", "%u"}, `certificate not accepted.*not a trusted user certificate authority`},
		{"source-address", nil, ca, []string{"-n", "%u", "-O", "source-address=10.0.0.0/8"}, `certificate not accepted.*127.0.0.1 is not in its source-address list`},
		{"revoked key", func(t *testing.T, c *Config, pub ed25519.PublicKey) {
			c.RevokedKeys = writeFile(t, "revoked", string(keys.MarshalAuthorizedKey(pub, "")))
		}, ca, []string{"-n", "%u"}, `key revoked`},
		{"revoked CA", func(t *testing.T, c *Config, _ ed25519.PublicKey) {
			data, err := os.ReadFile(ca.path + ".pub")
			if err != nil {
				t.Fatal(err)
			}
			c.RevokedKeys = writeFile(t, "revoked", string(data))
		}, ca, []string{"-n", "%u"}, `certificate revoked.*its authority`},
		{"no principals file", func(t *testing.T, c *Config, _ ed25519.PublicKey) {
			c.AuthorizedPrincipalsFile = "~/.rlogin/principals"
		}, ca, []string{"-n", "%u"}, `certificate not accepted.*none of its principals`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			key := newKey(t)
			ts := startServer(t, func(c *Config) {
				c.TrustedUserCAKeys = ca.path + ".pub"
				if tc.edit != nil {
					tc.edit(t, c, pubOf(key))
				}
			})
			args := make([]string, len(tc.args))
			for i, a := range tc.args {
				args[i] = strings.ReplaceAll(a, "%u", ts.srv.User())
			}
			_, _, err := certLogin(t, ts, key, tc.signer.sign(t, pubOf(key), args...), ts.srv.User())
			var re *session.RefusedError
			if !errors.As(err, &re) || re.Reason != reasonDenied {
				t.Fatalf("login: %v, want a refusal %q", err, reasonDenied)
			}
			ts.waitLog(tc.wantLog)
		})
	}
}

// A certificate's force-command runs in place of the login shell, and the session ends with it.
func TestUserCertificateForceCommand(t *testing.T) {
	ca := newTestCA(t)
	ts := startServer(t, func(c *Config) { c.TrustedUserCAKeys = ca.path + ".pub" })
	key := newKey(t)
	r, _, err := certLogin(t, ts, key, ca.sign(t, pubOf(key), "-n", ts.srv.User(), "-O", "force-command=echo FORCED-$((6*7)); exit 3"), ts.srv.User())
	if err != nil {
		t.Fatalf("login: %v\nlog:\n%s", err, ts.log.String())
	}
	r.Expect(`FORCED-42`)
	var exit *session.ExitError
	if err := r.Wait(); !errors.As(err, &exit) || exit.Status != 3 {
		t.Fatalf("session ended with %v, want the forced command's status 3", err)
	}
	ts.waitLog(`certificate accepted.*force_command="echo FORCED-\$\(\(6\*7\)\); exit 3"`)
}

// A certificate without permit-pty gets no terminal: a command runs on pipes (its
// force-command's, if it has one), and a login or -t is refused for want of a terminal.
func TestUserCertificateWithoutPermitPty(t *testing.T) {
	ca := newTestCA(t)
	ts := startServer(t, func(c *Config) { c.TrustedUserCAKeys = ca.path + ".pub" })
	key := newKey(t)
	for _, opts := range [][]string{{"-O", "no-pty"}, {"-O", "no-pty", "-O", "force-command=tty; exit 4"}} {
		cert := ca.sign(t, pubOf(key), append([]string{"-n", ts.srv.User()}, opts...)...)
		req := ts.request(ts.srv.User())
		req.Command = &session.Command{Line: "tty; exit 4"}
		r, _, err := certLoginRequest(t, ts, key, cert, req)
		if err != nil {
			t.Fatalf("%v: command: %v\nlog:\n%s", opts, err, ts.log.String())
		}
		r.Expect(`not a tty\n`)
		var exit *session.ExitError
		if err := r.Wait(); !errors.As(err, &exit) || exit.Status != 4 {
			t.Fatalf("%v: session ended with %v, want status 4", opts, err)
		}
		for _, c := range []*session.Command{nil, {Line: "tty", PTY: true}} {
			req.Command = c
			_, _, err = certLoginRequest(t, ts, key, cert, req)
			var re *session.RefusedError
			if !errors.As(err, &re) || re.Reason != reasonNoPTY {
				t.Fatalf("%v: command %+v: %v, want the refusal %q", opts, c, err, reasonNoPTY)
			}
		}
	}
}

// AuthorizedPrincipalsFile maps certificate principals to the user; RevokedKeys refuses a key
// that authorized_keys lists.
func TestUserCertificatePrincipalsAndRevokedKeys(t *testing.T) {
	ca := newTestCA(t)
	ts := startServer(t, func(c *Config) {
		c.TrustedUserCAKeys = ca.path + ".pub"
		c.AuthorizedPrincipalsFile = "%h/.rlogin/principals"
	})
	if err := os.WriteFile(filepath.Join(ts.home, ".rlogin", "principals"), []byte("# who may\nops\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	key := newKey(t)
	r, _, err := certLogin(t, ts, key, ca.sign(t, pubOf(key), "-n", "alice,ops"), ts.srv.User())
	if err != nil {
		t.Fatalf("login with principal ops: %v\nlog:\n%s", err, ts.log.String())
	}
	r.Send("exit 0\n")
	if err := r.Wait(); err != nil {
		t.Fatal(err)
	}
	ts.waitLog(`certificate accepted.*principal=ops`)

	revoked := startServer(t, func(c *Config) {
		c.RevokedKeys = writeFile(t, "revoked", "")
	})
	if err := os.WriteFile(revoked.srv.cfg.RevokedKeys, keys.MarshalAuthorizedKey(pubOf(revoked.clientKey), ""), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := logintest.Login(t, revoked.addr, pubOf(revoked.hostKey), revoked.clientKey, revoked.request(revoked.srv.User())); err == nil {
		t.Fatal("a revoked key in authorized_keys logged in")
	}
	revoked.waitLog(`key revoked`)
}

func TestHostCertificateChecked(t *testing.T) {
	ca := newTestCA(t)
	hostKey := newKey(t)
	for _, tc := range []struct {
		name, path, want string
	}{
		{"another key's", ca.sign(t, pubOf(newKey(t)), "-h", "-n", "h"), "is for the key"},
		{"user certificate", ca.sign(t, pubOf(hostKey), "-n", "h"), "is a user certificate"},
		{"missing", filepath.Join(t.TempDir(), "missing-cert.pub"), "no such file"},
	} {
		_, err := NewServer(Config{HostKey: hostKey, AuthorizedKeys: "x", HostCertificate: tc.path})
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "daemon: host certificate") ||
			strings.Contains(err.Error(), "keys: ") {
			t.Errorf("%s: NewServer: %v, want %q", tc.name, err, tc.want)
		}
	}
}

// writeFile writes data to a new file called name and returns its path.
func writeFile(t *testing.T, name, data string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// Reload (SIGHUP) reads the host certificate again: the next handshake presents the new one, and
// a certificate of another key is refused with the old one kept.
func TestHostCertificateReload(t *testing.T) {
	ca := newTestCA(t)
	hostKey := newKey(t)
	first := ca.sign(t, pubOf(hostKey), "-h", "-n", "127.0.0.1", "-z", "1")
	ts := startServer(t, func(c *Config) {
		c.HostKey = hostKey
		c.HostCertificate = first
		c.TrustedUserCAKeys = ca.path + ".pub"
	})
	ts.hostKey = hostKey
	presented := func() uint64 {
		t.Helper()
		key := newKey(t)
		r, hostCert, err := certLogin(t, ts, key, ca.sign(t, pubOf(key), "-n", ts.srv.User()), ts.srv.User())
		if err != nil {
			t.Fatalf("login: %v\n%s", err, ts.log.String())
		}
		r.Send("exit 0\n")
		if err := r.Wait(); err != nil {
			t.Fatal(err)
		}
		return hostCert.Serial
	}
	if got := presented(); got != 1 {
		t.Fatalf("serial %d presented, want 1", got)
	}
	cfg := ts.srv.current.Load().cfg
	cfg.HostCertificate = ca.sign(t, pubOf(hostKey), "-h", "-n", "127.0.0.1", "-z", "2")
	if err := ts.srv.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	ts.waitLog(`configuration reloaded.*host_certificate="\\"test-cert\\" serial 1 -> \\"test-cert\\" serial 2"`)
	if got := presented(); got != 2 {
		t.Fatalf("serial %d presented after the reload, want 2", got)
	}
	cfg.HostCertificate = ca.sign(t, pubOf(newKey(t)), "-h", "-n", "127.0.0.1", "-z", "3")
	if err := ts.srv.Reload(cfg); err == nil || !strings.Contains(err.Error(), "is for the key") {
		t.Fatalf("Reload with another key's certificate: %v", err)
	}
	if got := presented(); got != 2 {
		t.Fatalf("serial %d presented after a failed reload, want 2", got)
	}
}
