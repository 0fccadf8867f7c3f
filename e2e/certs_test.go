package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/rlogin-go/rlogin/internal/logintest"
	"github.com/rlogin-go/rlogin/internal/sshtest"
	"github.com/rlogin-go/rlogin/internal/termtest"
)

// certSetup is a certificate authority made with ssh-keygen, a daemon home whose host key it
// certifies, and a client home whose ~/.ssh/id_ed25519 it certifies for the daemon's user; no
// authorized_keys file anywhere.
type certSetup struct {
	ca         string // the CA's private key; ca+".pub" its public key
	daemonHome string
	hostKey    string // in daemonHome; its certificate is hostKey+"-cert.pub" once signed
	home       string // the client's
	userKey    string // the client's ~/.ssh/id_ed25519
}

func newCertSetup(t *testing.T) *certSetup {
	t.Helper()
	sshtest.Need(t, "ssh-keygen")
	s := &certSetup{ca: filepath.Join(t.TempDir(), "ca"), daemonHome: newHome(t), home: newHome(t)}
	sshtest.Keygen(t, s.ca, "")
	s.hostKey = filepath.Join(s.daemonHome, ".rlogin", "rlogind_host_ed25519_key")
	s.userKey = filepath.Join(s.home, ".ssh", "id_ed25519")
	for _, k := range []string{s.hostKey, s.userKey} {
		if err := os.MkdirAll(filepath.Dir(k), 0o700); err != nil {
			t.Fatal(err)
		}
		sshtest.Keygen(t, k, "")
	}
	return s
}

// sign has ssh-keygen certify the key at keyPath: "-I id" and args (-h, -n, -V, -z, -O ...).
func (s *certSetup) sign(t *testing.T, keyPath, id string, args ...string) {
	t.Helper()
	sshtest.Run(t, nil, "ssh-keygen", append(append([]string{"-q", "-s", s.ca, "-I", id}, args...), keyPath+".pub")...)
}

// caLine is the known_hosts line that trusts the CA for pattern.
func (s *certSetup) caLine(t *testing.T, marker, pattern string) string {
	t.Helper()
	pub, err := os.ReadFile(s.ca + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	return marker + " " + pattern + " " + string(pub)
}

// start starts rlogind presenting the host certificate and trusting the CA for users, with no
// authorized_keys file.
func (s *certSetup) start(t *testing.T, extra ...string) *daemon {
	t.Helper()
	return startDaemon(t, s.daemonHome, "", append([]string{"-no-bootstrap",
		"-host-certificate", s.hostKey + "-cert.pub", "-trusted-user-ca-keys", s.ca + ".pub"}, extra...)...)
}

// TestCertificateLogin is the many-hosts setup: a fresh client whose known_hosts holds only a
// @cert-authority line logs in with no question, by a user certificate, to a server that has no
// authorized_keys file; and ssh-keygen -L reads the certificate rlogind says it presents.
func TestCertificateLogin(t *testing.T) {
	s := newCertSetup(t)
	s.sign(t, s.hostKey, "e2e-host", "-h", "-n", "127.0.0.1,localhost", "-z", "7", "-V", "-5m:+1h")
	s.sign(t, s.userKey, "e2e-user", "-n", logintest.CurrentUser(t), "-V", "-5m:+1h")
	d := s.start(t)

	listed := sshtest.Run(t, nil, "ssh-keygen", "-L", "-f", s.hostKey+"-cert.pub")
	for _, want := range []string{`Key ID: "e2e-host"`, "Serial: 7", "127.0.0.1", "host certificate"} {
		if !strings.Contains(listed, want) {
			t.Errorf("ssh-keygen -L lacks %q:\n%s", want, listed)
		}
	}
	if !regexp.MustCompile(`msg="serving logins".*host_certificate="\\"e2e-host\\" serial 7"`).MatchString(d.log.String()) {
		t.Errorf("rlogind does not say it presents the certificate ssh-keygen -L shows:\n%s", d.log.String())
	}

	writeFile(t, filepath.Join(s.home, ".rlogin", "known_hosts"), s.caLine(t, "@cert-authority", "[127.0.0.*]:"+d.port))
	tm := rlogin(t, d, s.home)
	tm.ready()
	tm.send("exit\r")
	if code := tm.wait(); code != 0 {
		t.Fatalf("exit status %d", code)
	}
	if out := tm.out.String(); strings.Contains(out, "authenticity") || strings.Contains(out, "not accepted") || strings.Contains(out, "Permanently added") {
		t.Errorf("rlogin asked or warned:\n%s", out)
	}
	if !regexp.MustCompile(`certificate accepted.*certificate=e2e-user`).MatchString(d.log.String()) {
		t.Errorf("rlogind's log does not say the certificate let the user in:\n%s", d.log.String())
	}
}

// TestCertificateRefusals: a host certificate that is expired, not yet valid, for another name or
// from an unknown CA is set aside with a message saying which, and the host key question follows;
// a revoked one ends the connection; an expired user certificate is refused by the server, whose
// log says why.
func TestCertificateRefusals(t *testing.T) {
	for _, tc := range []struct {
		name, signArgs, knownHosts, want string
	}{
		{"expired", "-n 127.0.0.1 -V 20200101:20200102", "@cert-authority", "expired at 2020-01-02T00:00:00Z"},
		{"not yet valid", "-n 127.0.0.1 -V +1d:+2d", "@cert-authority", "not valid before "},
		{"wrong principal", "-n web1.example.test", "@cert-authority", "not valid for 127.0.0.1: its principals are web1.example.test"},
		{"unknown CA", "-n 127.0.0.1", "", "which no @cert-authority line for [127.0.0.1]:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newCertSetup(t)
			s.sign(t, s.hostKey, "e2e-host", append([]string{"-h"}, strings.Fields(tc.signArgs)...)...)
			d := s.start(t)
			if tc.knownHosts != "" {
				writeFile(t, filepath.Join(s.home, ".rlogin", "known_hosts"), s.caLine(t, tc.knownHosts, "[127.0.0.1]:"+d.port))
			}
			tm := rlogin(t, d, s.home)
			tm.expect(regexp.QuoteMeta("Host certificate of '[127.0.0.1]:"+d.port+"' not accepted: ") + `.*` + regexp.QuoteMeta(tc.want))
			tm.expect(regexp.QuoteMeta("Are you sure you want to continue connecting (yes/no)? "))
			tm.send("no\r")
			if code := tm.wait(); code != 255 {
				t.Fatalf("exit status %d, want 255", code)
			}
		})
	}
	t.Run("revoked", func(t *testing.T) {
		s := newCertSetup(t)
		s.sign(t, s.hostKey, "e2e-host", "-h", "-n", "127.0.0.1")
		d := s.start(t)
		writeFile(t, filepath.Join(s.home, ".rlogin", "known_hosts"),
			s.caLine(t, "@cert-authority", "[127.0.0.1]:"+d.port)+s.caLine(t, "@revoked", "*"))
		tm := rlogin(t, d, s.home)
		tm.expect(regexp.QuoteMeta("host key verification failed: the host certificate of [127.0.0.1]:" + d.port + " is revoked: its authority"))
		if code := tm.wait(); code != 255 {
			t.Fatalf("exit status %d, want 255", code)
		}
	})
	t.Run("expired user certificate", func(t *testing.T) {
		s := newCertSetup(t)
		s.sign(t, s.hostKey, "e2e-host", "-h", "-n", "127.0.0.1")
		s.sign(t, s.userKey, "e2e-user", "-n", logintest.CurrentUser(t), "-V", "20200101:20200102")
		d := s.start(t)
		writeFile(t, filepath.Join(s.home, ".rlogin", "known_hosts"), s.caLine(t, "@cert-authority", "[127.0.0.1]:"+d.port))
		tm := rlogin(t, d, s.home)
		tm.expect(`refused the login: permission denied \(publickey\)`)
		if code := tm.wait(); code != 255 {
			t.Fatalf("exit status %d, want 255", code)
		}
		if !regexp.MustCompile(`certificate not accepted.*expired at 2020-01-02`).MatchString(d.log.String()) {
			t.Errorf("rlogind's log does not say the certificate expired:\n%s", d.log.String())
		}
	})
}

// TestCertificatesAndOldPeers: an old rlogin logs in to a new rlogind that presents a host
// certificate (it sees a plain key), and a new rlogin that presents a user certificate logs in to
// an old rlogind (which sees a plain key), each by authorized_keys and known_hosts as before.
func TestCertificatesAndOldPeers(t *testing.T) {
	oldRlogin, oldRlogind := oldRelease(t, beforeCertificates)
	s := newCertSetup(t)
	s.sign(t, s.hostKey, "e2e-host", "-h", "-n", "127.0.0.1")
	s.sign(t, s.userKey, "e2e-user", "-n", logintest.CurrentUser(t))

	t.Run("old client, new server", func(t *testing.T) {
		home := newHome(t)
		oldKey := filepath.Join(home, ".rlogin", "id_ed25519")
		if err := os.MkdirAll(filepath.Dir(oldKey), 0o700); err != nil {
			t.Fatal(err)
		}
		sshtest.Keygen(t, oldKey, "")
		authorize(t, s.daemonHome, oldKey+".pub")
		d := s.start(t)
		writeFile(t, filepath.Join(home, ".rlogin", "known_hosts"), d.hostKeyLine(t))
		tm := startTerminal(t, clientEnv(home), oldRlogin, "-p", d.port, "127.0.0.1")
		tm.ready()
		tm.send("exit\r")
		if code := tm.wait(); code != 0 {
			t.Fatalf("exit status %d\n%s", code, d.log.String())
		}
	})
	t.Run("new client, old server", func(t *testing.T) {
		daemonHome := newHome(t)
		authorize(t, daemonHome, s.userKey+".pub")
		d := &daemon{home: daemonHome, port: freePort(t), log: &termtest.Buffer{}, done: make(chan struct{})}
		d.addr = "127.0.0.1:" + d.port
		d.cmd = exec.Command(oldRlogind, "-user-mode", "-config", "none", "-no-bootstrap", "-addr", d.addr)
		d.cmd.Env = []string{"HOME=" + daemonHome, "PATH=/usr/local/bin:/usr/bin:/bin"}
		d.start(t, `msg="serving logins"`)
		writeFile(t, filepath.Join(s.home, ".rlogin", "known_hosts"), d.hostKeyLine(t))
		tm := rlogin(t, d, s.home, "-d")
		tm.expect(`presenting the certificate`)
		tm.ready()
		tm.send("exit\r")
		if code := tm.wait(); code != 0 {
			t.Fatalf("exit status %d\n%s", code, d.log.String())
		}
	})
}
