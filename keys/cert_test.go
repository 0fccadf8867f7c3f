package keys

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// certAuthority is a CA made by ssh-keygen in a test's directory.
type certAuthority struct {
	t    *testing.T
	dir  string
	path string // the CA's private key; its public key is path+".pub"
}

// newCA makes a CA with ssh-keygen (skipping the test without it).
func newCA(t *testing.T, name string) *certAuthority {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, name)
	sshKeygen(t, "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", path)
	return &certAuthority{t: t, dir: dir, path: path}
}

// publicLine is the CA's public key line.
func (ca *certAuthority) publicLine() string {
	ca.t.Helper()
	data, err := os.ReadFile(ca.path + ".pub")
	if err != nil {
		ca.t.Fatal(err)
	}
	return strings.TrimSpace(string(data))
}

// publicKey is the CA's public key.
func (ca *certAuthority) publicKey() ssh.PublicKey {
	ca.t.Helper()
	pub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(ca.publicLine()))
	if err != nil {
		ca.t.Fatal(err)
	}
	return pub
}

// sign has ssh-keygen -s sign a new key of ours with args (-h, -n, -V, -O ...) and returns
// the key's path and its certificate as LoadCertificate reads it.
func (ca *certAuthority) sign(id string, args ...string) (string, *ssh.Certificate) {
	ca.t.Helper()
	keyPath := filepath.Join(ca.t.TempDir(), "id_ed25519")
	if _, _, err := LoadOrCreate(keyPath); err != nil {
		ca.t.Fatal(err)
	}
	sshKeygen(ca.t, append(append([]string{"-q", "-s", ca.path, "-I", id}, args...), keyPath+".pub")...)
	cert, err := LoadCertificate(keyPath + "-cert.pub")
	if err != nil {
		ca.t.Fatal(err)
	}
	return keyPath, cert
}

// resign returns a copy of cert changed by edit and signed again by the CA, for certificates
// ssh-keygen refuses to make.
func (ca *certAuthority) resign(cert *ssh.Certificate, edit func(*ssh.Certificate)) *ssh.Certificate {
	ca.t.Helper()
	data, err := os.ReadFile(ca.path)
	if err != nil {
		ca.t.Fatal(err)
	}
	signer, err := ssh.ParsePrivateKey(data)
	if err != nil {
		ca.t.Fatal(err)
	}
	c := *cert
	edit(&c)
	if err := c.SignCert(rand.Reader, signer); err != nil {
		ca.t.Fatal(err)
	}
	return &c
}

func TestKnownHostsCheckCertificate(t *testing.T) {
	ca := newCA(t, "host-ca")
	other := newCA(t, "other-ca")
	_, good := ca.sign("web1", "-h", "-n", "web1.example.test,web1", "-V", "-5m:+1h")
	_, expired := ca.sign("old", "-h", "-n", "web1.example.test", "-V", "20200101:20200102")
	_, future := ca.sign("future", "-h", "-n", "web1.example.test", "-V", "+1d:+2d")
	_, user := ca.sign("alice", "-n", "web1.example.test")
	_, foreign := other.sign("foreign", "-h", "-n", "web1.example.test")
	tampered := *good
	tampered.ValidPrincipals = []string{"web1.example.test", "evil.example.test"}

	caLine := "@cert-authority [*.example.test]:5513 " + ca.publicLine()
	for _, tc := range []struct {
		name     string
		lines    []string
		hostport string
		cert     *ssh.Certificate
		want     error // nil, or what the error matches
		reason   string
	}{
		{"accepted", []string{caLine}, "web1.example.test:5513", good, nil, ""},
		{"host name in any case", []string{caLine}, "WEB1.example.TEST:5513", good, nil, ""},
		{"port 22 form", []string{"@cert-authority *.example.test " + ca.publicLine()}, "web1.example.test:22", good, nil, ""},
		{"pattern of another port", []string{"@cert-authority *.example.test " + ca.publicLine()}, "web1.example.test:5513", good, ErrUnknownAuthority, "no @cert-authority line"},
		{"negated host", []string{"@cert-authority [*.example.test]:5513,![web1.example.test]:5513 " + ca.publicLine()}, "web1.example.test:5513", good, ErrUnknownAuthority, "no @cert-authority line"},
		{"wrong principal", []string{"@cert-authority [*.test]:5513 " + ca.publicLine()}, "web2.example.test:5513", good, ErrCertificateRejected, "not valid for web2.example.test: its principals are web1.example.test, web1"},
		{"expired", []string{caLine}, "web1.example.test:5513", expired, ErrCertificateRejected, "expired at 2020-01-02"},
		{"not yet valid", []string{caLine}, "web1.example.test:5513", future, ErrCertificateRejected, "not valid before"},
		{"unknown CA", []string{caLine}, "web1.example.test:5513", foreign, ErrUnknownAuthority, "which no @cert-authority line for [web1.example.test]:5513"},
		{"CA key as a plain host key", []string{"[web1.example.test]:5513 " + ca.publicLine()}, "web1.example.test:5513", good, ErrUnknownAuthority, "trusts"},
		{"user certificate", []string{caLine}, "web1.example.test:5513", user, ErrCertificateRejected, "a user certificate"},
		{"revoked CA", []string{caLine, "@revoked * " + ca.publicLine()}, "web1.example.test:5513", good, ErrRevokedKey, "its authority"},
		{"revoked key", []string{caLine, "@revoked * " + string(ssh.MarshalAuthorizedKey(good.Key))}, "web1.example.test:5513", good, ErrRevokedKey, "its key"},
		{"tampered", []string{caLine}, "web1.example.test:5513", &tampered, ErrCertificateRejected, "signature does not verify"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kh := writeKnownHosts(t, tc.lines...)
			err := kh.CheckCertificate(tc.hostport, tc.cert)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("CheckCertificate: %v", err)
				}
				return
			}
			var ce *CertificateError
			if !errors.Is(err, tc.want) || !errors.As(err, &ce) || !strings.Contains(err.Error(), tc.reason) {
				t.Fatalf("CheckCertificate: %v, want a *CertificateError matching %v saying %q", err, tc.want, tc.reason)
			}
			if !strings.HasPrefix(err.Error(), "keys: certificate ") || strings.Contains(err.Error(), "ssh: ") {
				t.Errorf("error %q: want one package prefix", err)
			}
		})
	}
	t.Run("no file", func(t *testing.T) {
		kh := &KnownHosts{Path: filepath.Join(t.TempDir(), "known_hosts")}
		if err := kh.CheckCertificate("web1.example.test:5513", good); !errors.Is(err, ErrUnknownAuthority) {
			t.Errorf("CheckCertificate without a file: %v, want ErrUnknownAuthority", err)
		}
	})
	t.Run("plain check ignores CA lines", func(t *testing.T) {
		kh := writeKnownHosts(t, caLine)
		pub := good.Key.(ssh.CryptoPublicKey).CryptoPublicKey().(ed25519.PublicKey)
		if err := kh.Check("web1.example.test:5513", pub); !errors.Is(err, ErrUnknownHost) {
			t.Errorf("Check of a certified key: %v, want ErrUnknownHost", err)
		}
	})
}

// userPolicy is a policy trusting ca, as of now.
func userPolicy(ca *certAuthority) *UserCertPolicy {
	return &UserCertPolicy{CAKeys: []ssh.PublicKey{ca.publicKey()}}
}

func TestUserCertPolicy(t *testing.T) {
	ca := newCA(t, "user-ca")
	other := newCA(t, "other-ca")
	_, alice := ca.sign("alice@example", "-n", "alice,admins", "-V", "-5m:+1h")
	_, forced := ca.sign("backup", "-n", "alice", "-O", "force-command=/usr/bin/backup --now")
	_, sourced := ca.sign("office", "-n", "alice", "-O", "source-address=10.0.0.0/8,192.0.2.7")
	// ssh-keygen refuses to write a malformed source-address: sign one with the CA's key here.
	badSource := ca.resign(alice, func(c *ssh.Certificate) {
		c.KeyId, c.ValidPrincipals = "bad-source", []string{"alice"}
		c.CriticalOptions = map[string]string{OptionSourceAddress: "10.0.0.0/99"}
	})
	_, noPty := ca.sign("no-pty", "-n", "alice", "-O", "clear")
	_, critical := ca.sign("critical", "-n", "alice", "-O", "critical:verify-required")
	_, expired := ca.sign("expired", "-n", "alice", "-V", "20200101:20200102")
	_, future := ca.sign("future", "-n", "alice", "-V", "+1d:+2d")
	_, host := ca.sign("host", "-h", "-n", "alice")
	_, foreign := other.sign("foreign", "-n", "alice")

	tcp := func(s string) net.Addr { return net.TCPAddrFromAddrPort(netip.MustParseAddrPort(s)) }
	local := tcp("127.0.0.1:4000")
	for _, tc := range []struct {
		name   string
		policy func() *UserCertPolicy
		user   string
		cert   *ssh.Certificate
		source net.Addr
		want   error
		reason string
		check  func(*testing.T, *CertLogin)
	}{
		{"user's own name", func() *UserCertPolicy { return userPolicy(ca) }, "alice", alice, local, nil, "", func(t *testing.T, l *CertLogin) {
			if l.Principal != "alice" || l.KeyID != "alice@example" || l.ForceCommand != "" || l.CA != ssh.FingerprintSHA256(ca.publicKey()) {
				t.Errorf("CertLogin = %+v", l)
			}
		}},
		{"other user", func() *UserCertPolicy { return userPolicy(ca) }, "bob", alice, local, ErrCertificateRejected, "none of its principals (alice, admins) may log in as bob", nil},
		{"principals file", func() *UserCertPolicy { p := userPolicy(ca); p.Principals = []string{"admins"}; return p }, "bob", alice, local, nil, "", func(t *testing.T, l *CertLogin) {
			if l.Principal != "admins" {
				t.Errorf("principal %q, want admins", l.Principal)
			}
		}},
		{"empty principals file", func() *UserCertPolicy { p := userPolicy(ca); p.Principals = []string{}; return p }, "alice", alice, local, ErrCertificateRejected, "none of its principals", nil},
		{"force-command", func() *UserCertPolicy { return userPolicy(ca) }, "alice", forced, local, nil, "", func(t *testing.T, l *CertLogin) {
			if l.NoPTY {
				t.Error("a certificate with permit-pty: NoPTY true")
			}
			if l.ForceCommand != "/usr/bin/backup --now" {
				t.Errorf("ForceCommand %q", l.ForceCommand)
			}
		}},
		{"source-address in a prefix", func() *UserCertPolicy { return userPolicy(ca) }, "alice", sourced, tcp("10.1.2.3:5000"), nil, "", nil},
		{"source-address exact", func() *UserCertPolicy { return userPolicy(ca) }, "alice", sourced, tcp("[::ffff:192.0.2.7]:5000"), nil, "", nil},
		{"source-address outside", func() *UserCertPolicy { return userPolicy(ca) }, "alice", sourced, local, ErrCertificateRejected, "127.0.0.1 is not in its source-address list", nil},
		{"source-address over a Unix socket", func() *UserCertPolicy { return userPolicy(ca) }, "alice", sourced, &net.UnixAddr{Name: "/run/x", Net: "unix"}, ErrCertificateRejected, "not an IP address", nil},
		{"source-address malformed", func() *UserCertPolicy { return userPolicy(ca) }, "alice", badSource, tcp("10.1.2.3:5000"), ErrCertificateRejected, "malformed entry", nil},
		{"no permit-pty", func() *UserCertPolicy { return userPolicy(ca) }, "alice", noPty, local, nil, "", func(t *testing.T, l *CertLogin) {
			if !l.NoPTY {
				t.Error("a certificate without permit-pty: NoPTY false, want true (commands on pipes only)")
			}
		}},
		{"unsupported critical option", func() *UserCertPolicy { return userPolicy(ca) }, "alice", critical, local, ErrCertificateRejected, `unsupported critical option "verify-required"`, nil},
		{"expired", func() *UserCertPolicy { return userPolicy(ca) }, "alice", expired, local, ErrCertificateRejected, "expired at 2020-01-02T00:00:00Z", nil},
		{"not yet valid", func() *UserCertPolicy { return userPolicy(ca) }, "alice", future, local, ErrCertificateRejected, "not valid before", nil},
		{"host certificate", func() *UserCertPolicy { return userPolicy(ca) }, "alice", host, local, ErrCertificateRejected, "a host certificate", nil},
		{"unknown CA", func() *UserCertPolicy { return userPolicy(ca) }, "alice", foreign, local, ErrUnknownAuthority, "not a trusted user certificate authority", nil},
		{"no CA at all", func() *UserCertPolicy { return &UserCertPolicy{} }, "alice", alice, local, ErrUnknownAuthority, "not a trusted", nil},
		{"revoked key", func() *UserCertPolicy { p := userPolicy(ca); p.Revoked = []ssh.PublicKey{alice.Key}; return p }, "alice", alice, local, ErrRevokedKey, "its key", nil},
		{"revoked CA", func() *UserCertPolicy { p := userPolicy(ca); p.Revoked = []ssh.PublicKey{ca.publicKey()}; return p }, "alice", alice, local, ErrRevokedKey, "its authority", nil},
		{"clock past the window", func() *UserCertPolicy {
			p := userPolicy(ca)
			p.Clock = func() time.Time { return time.Now().Add(2 * time.Hour) }
			return p
		}, "alice", alice, local, ErrCertificateRejected, "expired at", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			login, err := tc.policy().Check(tc.user, tc.cert, tc.source)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Check: %v", err)
				}
				if tc.check != nil {
					tc.check(t, login)
				}
				return
			}
			var ce *CertificateError
			if login != nil || !errors.Is(err, tc.want) || !errors.As(err, &ce) || !strings.Contains(err.Error(), tc.reason) {
				t.Fatalf("Check: %v, %v; want a *CertificateError matching %v saying %q", login, err, tc.want, tc.reason)
			}
		})
	}
}

// A certificate whose fields were changed after signing is refused, whatever the change.
func TestUserCertPolicyRefusesTampered(t *testing.T) {
	ca := newCA(t, "user-ca")
	_, cert := ca.sign("bob", "-n", "bob", "-O", "source-address=10.0.0.0/8")
	tampered := *cert
	tampered.ValidPrincipals = []string{"alice"}
	delete(tampered.CriticalOptions, OptionSourceAddress)
	tampered.CriticalOptions = map[string]string{}
	if _, err := userPolicy(ca).Check("alice", &tampered, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}); !errors.Is(err, ErrCertificateRejected) || !strings.Contains(err.Error(), "signature") {
		t.Errorf("Check of a tampered certificate: %v, want a refusal of its signature", err)
	}
}

func TestLoadCertificate(t *testing.T) {
	ca := newCA(t, "ca")
	keyPath, cert := ca.sign("id-1", "-n", "alice", "-z", "42")
	if cert.KeyId != "id-1" || cert.Serial != 42 || cert.CertType != ssh.UserCert {
		t.Errorf("LoadCertificate: %+v", cert)
	}
	// ssh-keygen -L reads the file rlogin and rlogind are configured with.
	if out := sshKeygen(t, "-L", "-f", keyPath+"-cert.pub"); !strings.Contains(out, `Key ID: "id-1"`) || !strings.Contains(out, "Serial: 42") {
		t.Errorf("ssh-keygen -L: %q", out)
	}
	dir := t.TempDir()
	write := func(name, data string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tc := range []struct{ name, data, want string }{
		{"plain key", string(ssh.MarshalAuthorizedKey(cert.Key)), "plain ssh-ed25519 key, not a certificate"},
		{"garbage", "hello\n", "not a certificate file"},
		{"too large", strings.Repeat("A", maxCertificateFile+1), "larger than"},
	} {
		if _, err := LoadCertificate(write(tc.name, tc.data)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: LoadCertificate: %v, want %q", tc.name, err, tc.want)
		}
	}
	if _, err := LoadCertificate(filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("LoadCertificate of a missing file: %v", err)
	}
}

func TestLoadKeyList(t *testing.T) {
	ca, other := newCA(t, "ca"), newCA(t, "other")
	dir := t.TempDir()
	path := filepath.Join(dir, "trusted")
	data := "# user CAs\n\n" + ca.publicLine() + "\n  " + other.publicLine() + "\r\n"
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	list, err := LoadKeyList(path)
	if err != nil || len(list) != 2 || !containsKey(list, ca.publicKey()) || !containsKey(list, other.publicKey()) {
		t.Fatalf("LoadKeyList: %v, %v", list, err)
	}
	for _, tc := range []struct{ data, want string }{
		{ca.publicLine() + "\nnot a key\n", ":2: not a public key"},
		{`cert-authority ` + ca.publicLine() + "\n", ":1: key options are not allowed"},
	} {
		if err := os.WriteFile(path, []byte(tc.data), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadKeyList(path); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("LoadKeyList of %q: %v, want %q", tc.data, err, tc.want)
		}
	}
}

func TestParsePrincipals(t *testing.T) {
	got, skipped := ParsePrincipals([]byte("# admins\nalice\n\n  ops \r\nfrom=\"10.0.0.1\" bob\n"))
	if strings.Join(got, ",") != "alice,ops" {
		t.Errorf("principals %q, want alice, ops", got)
	}
	if len(skipped) != 1 || skipped[0].Line != 5 || !strings.Contains(skipped[0].Reason, "options") {
		t.Errorf("skipped %v, want line 5 for its options", skipped)
	}
	if got, _ := ParsePrincipals(nil); got == nil || len(got) != 0 {
		t.Errorf("ParsePrincipals(nil) = %#v, want an empty, non-nil list", got)
	}
}

func TestLoadPrincipals(t *testing.T) {
	home := t.TempDir()
	if err := os.Chmod(home, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(home, "principals")
	if err := os.WriteFile(path, []byte("alice\nops\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	got, _, err := LoadPrincipals(path, os.Getuid(), home)
	if err != nil || strings.Join(got, ",") != "alice,ops" {
		t.Fatalf("LoadPrincipals: %q, %v", got, err)
	}
	if err := os.Chmod(path, 0o666); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadPrincipals(path, os.Getuid(), home); err == nil || !strings.Contains(err.Error(), "writable by group or others") {
		t.Errorf("LoadPrincipals of a world-writable file: %v", err)
	}
	if _, _, err := LoadPrincipals(filepath.Join(home, "missing"), os.Getuid(), home); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("LoadPrincipals of a missing file: %v", err)
	}
}

func FuzzParsePrincipals(f *testing.F) {
	f.Add([]byte("alice\n# c\nfrom=x bob\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		got, skipped := ParsePrincipals(data)
		for _, p := range got {
			if p == "" || strings.ContainsAny(p, " \t\r\n") || p[0] == '#' {
				t.Fatalf("principal %q", p)
			}
		}
		for _, s := range skipped {
			if strings.ContainsAny(s.Reason, "\r\n") {
				t.Fatalf("reason %q spans lines", s.Reason)
			}
		}
	})
}

// FuzzCertificateChecks feeds certificates a peer could send to both checks: they never panic,
// and whatever they accept was signed by the trusted authority for the name asked.
func FuzzCertificateChecks(f *testing.F) {
	_, caKey, err := ed25519.GenerateKey(nil)
	if err != nil {
		f.Fatal(err)
	}
	ca, err := ssh.NewSignerFromKey(caKey)
	if err != nil {
		f.Fatal(err)
	}
	for _, typ := range []uint32{ssh.UserCert, ssh.HostCert} {
		pub, _, err := ed25519.GenerateKey(nil)
		if err != nil {
			f.Fatal(err)
		}
		sshPub, err := ssh.NewPublicKey(pub)
		if err != nil {
			f.Fatal(err)
		}
		cert := &ssh.Certificate{Key: sshPub, CertType: typ, KeyId: "seed",
			ValidPrincipals: []string{"alice", "web1.example.test"}, ValidBefore: ssh.CertTimeInfinity,
			Permissions: ssh.Permissions{Extensions: map[string]string{"permit-pty": ""},
				CriticalOptions: map[string]string{"source-address": "127.0.0.0/8"}}}
		if err := cert.SignCert(rand.Reader, ca); err != nil {
			f.Fatal(err)
		}
		f.Add(cert.Marshal())
	}
	dir := f.TempDir()
	kh := &KnownHosts{Path: filepath.Join(dir, "known_hosts")}
	if err := os.WriteFile(kh.Path, []byte("@cert-authority * "+string(ssh.MarshalAuthorizedKey(ca.PublicKey()))), 0o600); err != nil {
		f.Fatal(err)
	}
	policy := &UserCertPolicy{CAKeys: []ssh.PublicKey{ca.PublicKey()}}
	source := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}
	f.Fuzz(func(t *testing.T, blob []byte) {
		pub, err := ssh.ParsePublicKey(blob)
		if err != nil {
			return
		}
		cert, ok := pub.(*ssh.Certificate)
		if !ok {
			return
		}
		// The signature itself is golang.org/x/crypto/ssh's to verify (TestUserCertPolicyRefusesTampered).
		signedByCA := containsKey([]ssh.PublicKey{ca.PublicKey()}, cert.SignatureKey)
		if login, err := policy.Check("alice", cert, source); err == nil {
			if !signedByCA || login.Principal != "alice" || cert.CertType != ssh.UserCert {
				t.Fatalf("accepted %+v", cert)
			}
		}
		if err := kh.checkCertificate("web1.example.test:22", cert, nil); err == nil {
			if !signedByCA || cert.CertType != ssh.HostCert {
				t.Fatalf("accepted host certificate %+v", cert)
			}
		}
	})
}
