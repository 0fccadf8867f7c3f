package client

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/rlogin-go/rlogin/internal/sshtest"
	"github.com/rlogin-go/rlogin/keys"
	"github.com/rlogin-go/rlogin/session"
	"github.com/rlogin-go/rlogin/transport"
)

// certServer is a "login" mailbox whose TLS server presents a host key with an OpenSSH
// certificate, records the user certificate each client presents, and refuses every login with
// "certificate test": enough to see whether the client trusted the host without a question.
type certServer struct {
	port    string
	hostKey ed25519.PrivateKey
	mu      sync.Mutex
	seen    []*ssh.Certificate // the user certificates presented, nil for none
}

func startCertServer(t *testing.T, hostKeyPath string, cert *ssh.Certificate) *certServer {
	t.Helper()
	key, err := keys.Load(hostKeyPath)
	if err != nil {
		t.Fatal(err)
	}
	s := &certServer{hostKey: key}
	cfg := &transport.SecureConfig{Key: key, Certificate: cert,
		VerifyPeerCertificate: func(_ ed25519.PublicKey, c *ssh.Certificate) error {
			s.mu.Lock()
			s.seen = append(s.seen, c)
			s.mu.Unlock()
			return nil
		}}
	s.port = tcpServer(t, func(c net.Conn) {
		_ = c.SetDeadline(time.Now().Add(testTimeout))
		// The TCPMUX answer (RFC 1078) for the one mailbox there is, "login".
		if line, err := bufio.NewReader(io.LimitReader(c, 7)).ReadString('\n'); err != nil || line != "login\r\n" {
			return
		}
		if _, err := io.WriteString(c, "+\r\n"); err != nil {
			return
		}
		sc, err := transport.Server(context.Background(), c, cfg)
		if err != nil {
			return
		}
		srv := session.NewServerConn(sc)
		defer srv.Close()
		if _, err := srv.ReadRequest(); err == nil {
			_ = srv.Refuse("certificate test")
		}
	})
	return s
}

func (s *certServer) presented() []*ssh.Certificate {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*ssh.Certificate(nil), s.seen...)
}

// certFixture is a CA made with ssh-keygen and a host key of ours in a directory.
type certFixture struct {
	dir, ca, hostKey string
}

func newCertFixture(t *testing.T) *certFixture {
	t.Helper()
	sshtest.Need(t, "ssh-keygen")
	f := &certFixture{dir: t.TempDir()}
	f.ca = filepath.Join(f.dir, "ca")
	sshtest.Run(t, nil, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "test-ca", "-f", f.ca)
	f.hostKey = filepath.Join(f.dir, "host_ed25519_key")
	if _, _, err := keys.LoadOrCreate(f.hostKey); err != nil {
		t.Fatal(err)
	}
	return f
}

// sign has ssh-keygen sign pubPath with the CA (args: -h, -n, -V, ...) and returns the certificate.
func (f *certFixture) sign(t *testing.T, pubPath string, args ...string) *ssh.Certificate {
	t.Helper()
	sshtest.Run(t, nil, "ssh-keygen", append(append([]string{"-q", "-s", f.ca, "-I", "test"}, args...), pubPath)...)
	cert, err := keys.LoadCertificate(strings.TrimSuffix(pubPath, ".pub") + "-cert.pub")
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

func (f *certFixture) caLine(t *testing.T, pattern string) string {
	t.Helper()
	data, err := os.ReadFile(f.ca + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	return "@cert-authority " + pattern + " " + string(data)
}

// runCertClient runs rlogin against s with known_hosts lines in a new home and returns the
// questions asked and stderr. The server refuses every login, so the exit status is 255.
func runCertClient(t *testing.T, s *certServer, home string, knownHosts ...string) ([]string, string) {
	t.Helper()
	path := filepath.Join(home, ".rlogin", "known_hosts")
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(strings.Join(knownHosts, "")), 0o600); err != nil {
		t.Fatal(err)
	}
	prompt := &fakePrompt{}
	var stderr bytes.Buffer
	cfg := &Config{Stdin: strings.NewReader(""), Stdout: &bytes.Buffer{}, Stderr: &stderr, Home: home,
		LocalUser: "tester", Environ: []string{}, Prompt: prompt}
	if code := cfg.Run(watchdog(t), []string{"-o", "ConnectTimeout=20", "-p", s.port, "127.0.0.1"}); code != ExitFailure {
		t.Fatalf("exit status %d, want %d; stderr:\n%s", code, ExitFailure, stderr.String())
	}
	return prompt.questions, stderr.String()
}

func TestHostCertificate(t *testing.T) {
	f := newCertFixture(t)
	good := f.sign(t, f.hostKey+".pub", "-h", "-n", "127.0.0.1,localhost", "-V", "-5m:+1h")
	s := startCertServer(t, f.hostKey, good)
	hostPattern := "[127.0.0.1]:" + s.port
	hostPub := s.hostKey.Public().(ed25519.PublicKey)
	plainLine := hostPattern + " " + string(keys.MarshalAuthorizedKey(hostPub, ""))

	t.Run("trusted authority: no question", func(t *testing.T) {
		questions, stderr := runCertClient(t, s, t.TempDir(), f.caLine(t, "[127.0.0.*]:"+s.port))
		if len(questions) != 0 || strings.Contains(stderr, "not accepted") || !strings.Contains(stderr, "refused the login: certificate test") {
			t.Errorf("questions %q, stderr:\n%s", questions, stderr)
		}
	})
	t.Run("revoked authority", func(t *testing.T) {
		caPub, err := os.ReadFile(f.ca + ".pub")
		if err != nil {
			t.Fatal(err)
		}
		questions, stderr := runCertClient(t, s, t.TempDir(), f.caLine(t, hostPattern), "@revoked * "+string(caPub))
		if len(questions) != 0 || !strings.Contains(stderr, "host key verification failed: the host certificate of "+hostPattern+" is revoked: its authority") {
			t.Errorf("questions %q, stderr:\n%s", questions, stderr)
		}
	})
	t.Run("unknown authority, known key: silent", func(t *testing.T) {
		questions, stderr := runCertClient(t, s, t.TempDir(), plainLine)
		if len(questions) != 0 || strings.Contains(stderr, "not accepted") || !strings.Contains(stderr, "refused the login") {
			t.Errorf("questions %q, stderr:\n%s", questions, stderr)
		}
	})
	t.Run("unknown authority, unknown key: said, then asked", func(t *testing.T) {
		questions, stderr := runCertClient(t, s, t.TempDir())
		want := "Host certificate of '" + hostPattern + "' not accepted: signed by "
		if len(questions) != 1 || !strings.Contains(stderr, want) || !strings.Contains(stderr, "Checking its host key instead.") {
			t.Errorf("questions %q, stderr:\n%s\nwant %q", questions, stderr, want)
		}
	})
}

func TestHostCertificateNotValid(t *testing.T) {
	f := newCertFixture(t)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"wrong principal", []string{"-n", "web1.example.test"}, "not valid for 127.0.0.1: its principals are web1.example.test"},
		{"expired", []string{"-n", "127.0.0.1", "-V", "20200101:20200102"}, "expired at 2020-01-02T00:00:00Z"},
		{"not yet valid", []string{"-n", "127.0.0.1", "-V", "+1d:+2d"}, "not valid before "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := startCertServer(t, f.hostKey, f.sign(t, f.hostKey+".pub", append([]string{"-h"}, tc.args...)...))
			hostPub := s.hostKey.Public().(ed25519.PublicKey)
			plainLine := "[127.0.0.1]:" + s.port + " " + string(keys.MarshalAuthorizedKey(hostPub, ""))
			// The key is known: the fallback to it lets the client in, after saying why the
			// certificate was set aside.
			questions, stderr := runCertClient(t, s, t.TempDir(), f.caLine(t, "[127.0.0.1]:"+s.port), plainLine)
			want := "Host certificate of '[127.0.0.1]:" + s.port + "' not accepted: " + tc.want
			if len(questions) != 0 || !strings.Contains(stderr, want) || !strings.Contains(stderr, "refused the login: certificate test") {
				t.Errorf("questions %q, stderr:\n%s\nwant %q", questions, stderr, want)
			}
			// The key is not known: the normal question follows.
			questions, stderr = runCertClient(t, s, t.TempDir(), f.caLine(t, "[127.0.0.1]:"+s.port))
			if len(questions) != 1 || !strings.Contains(stderr, want) {
				t.Errorf("unknown key: questions %q, stderr:\n%s", questions, stderr)
			}
		})
	}
}

func TestUserCertificatePresented(t *testing.T) {
	f := newCertFixture(t)
	s := startCertServer(t, f.hostKey, nil)
	home := t.TempDir()
	hostPub := s.hostKey.Public().(ed25519.PublicKey)
	plainLine := "[127.0.0.1]:" + s.port + " " + string(keys.MarshalAuthorizedKey(hostPub, ""))

	runCertClient(t, s, home, plainLine) // creates ~/.rlogin/id_ed25519; no certificate yet
	keyPath := filepath.Join(home, ".rlogin", "id_ed25519")
	cert := f.sign(t, keyPath+".pub", "-n", "tester")
	_, stderr := runCertClient(t, s, home, plainLine)
	seen := s.presented()
	if len(seen) != 2 || seen[0] != nil || seen[1] == nil || !bytes.Equal(seen[1].Marshal(), cert.Marshal()) {
		t.Fatalf("presented %v, want nothing then the certificate; stderr:\n%s", seen, stderr)
	}

	// A certificate of another key is not presented, and rlogin says so.
	other := newCertFixture(t)
	otherCert, err := os.ReadFile(other.hostKey + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(other.dir, "k.pub"), otherCert, 0o644); err != nil {
		t.Fatal(err)
	}
	other.sign(t, filepath.Join(other.dir, "k.pub"), "-n", "tester")
	data, err := os.ReadFile(filepath.Join(other.dir, "k-cert.pub"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyPath+"-cert.pub", data, 0o644); err != nil {
		t.Fatal(err)
	}
	_, stderr = runCertClient(t, s, home, plainLine)
	if seen := s.presented(); len(seen) != 3 || seen[2] != nil || !strings.Contains(stderr, "rlogin: not presenting the certificate "+keyPath+"-cert.pub: it is for another key") {
		t.Errorf("presented %v; stderr:\n%s", seen, stderr)
	}
}
