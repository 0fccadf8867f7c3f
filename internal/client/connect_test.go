package client

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rlogin-go/rlogin/keys"
	"github.com/rlogin-go/rlogin/transport"
)

// impostorServer is a "login" mailbox whose TLS server presents the certificate of a key it does
// not hold (a replayed certificate): its handshake fails at CertificateVerify, after the client
// has seen the key.
type impostorServer struct {
	port string
	pub  ed25519.PublicKey // the key it claims
	mux  *transport.Mux
	wg   sync.WaitGroup
}

func startImpostor(t *testing.T) *impostorServer {
	t.Helper()
	pub, claimed, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	_, own, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "rlogin"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, claimed)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: own}}, // not the certificate's key
	}
	ctx, cancel := context.WithCancel(context.Background())
	l, err := transport.Listen(ctx, "127.0.0.1:0")
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	s := &impostorServer{pub: pub, mux: transport.NewMux(l)}
	_, s.port, _ = net.SplitHostPort(l.Addr().String())
	box, err := s.mux.Announce("login")
	if err != nil {
		t.Fatal(err)
	}
	s.wg.Go(func() { _ = s.mux.Serve() })
	s.wg.Go(func() {
		for {
			c, err := box.Accept()
			if err != nil {
				return
			}
			s.wg.Go(func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(testTimeout))
				_ = tls.Server(c, cfg).Handshake() // fails: the client refuses the signature
			})
		}
	})
	t.Cleanup(func() {
		_ = s.mux.Close()
		s.wg.Wait()
	})
	return s
}

// TestHostKeyAddedOnlyAfterHandshake: a key the user accepts goes into known_hosts only once the
// handshake has shown that the server holds it. An impostor replaying a server's certificate
// gets the question (it cannot be told from a new server then), but the handshake fails, and
// nothing is written: the next connection asks again instead of trusting the key.
func TestHostKeyAddedOnlyAfterHandshake(t *testing.T) {
	s := startImpostor(t)
	home := t.TempDir()
	prompt := &fakePrompt{answers: []string{"yes"}}
	var stderr bytes.Buffer
	cfg := &Config{Stdin: strings.NewReader(""), Stdout: &bytes.Buffer{}, Stderr: &stderr, Home: home,
		LocalUser: "tester", Environ: []string{}, Prompt: prompt}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if code := cfg.Run(ctx, []string{"-o", "ConnectTimeout=20", "-p", s.port, "127.0.0.1"}); code != ExitFailure {
		t.Fatalf("exit status %d, want %d; stderr:\n%s", code, ExitFailure, stderr.String())
	}
	if len(prompt.questions) != 1 || !strings.Contains(prompt.questions[0], keys.Fingerprint(s.pub)) {
		t.Fatalf("questions %q, want one about %s", prompt.questions, keys.Fingerprint(s.pub))
	}
	if strings.Contains(stderr.String(), "Permanently added") {
		t.Errorf("stderr says the key was added:\n%s", stderr.String())
	}
	data, err := os.ReadFile(filepath.Join(home, ".rlogin", "known_hosts"))
	if err == nil {
		t.Errorf("known_hosts written after a failed handshake:\n%s", data)
	} else if !os.IsNotExist(err) {
		t.Fatal(err)
	}
	t.Logf("stderr:\n%s", stderr.String())
}

// TestHostKeyAddedAfterHandshake: with a real server, the accepted key is added once the
// handshake succeeded, with ssh's message, and the next run asks nothing.
func TestHostKeyAddedAfterHandshake(t *testing.T) {
	s := startServer(t, nil)
	home := t.TempDir()
	run := func(answers ...string) (*fakePrompt, string) {
		t.Helper()
		prompt := &fakePrompt{answers: answers}
		var stderr bytes.Buffer
		cfg := &Config{Stdin: strings.NewReader("exit 0\n"), Stdout: &bytes.Buffer{}, Stderr: &stderr, Home: home,
			LocalUser: "tester", Environ: []string{}, Prompt: prompt}
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		if code := cfg.Run(ctx, []string{"-o", "ConnectTimeout=20", "-p", s.port, "127.0.0.1"}); code != 0 {
			t.Fatalf("exit status %d; stderr:\n%s", code, stderr.String())
		}
		return prompt, stderr.String()
	}
	prompt, stderr := run("yes")
	if len(prompt.questions) != 1 || !strings.Contains(stderr, "Warning: Permanently added '[127.0.0.1]:"+s.port+"' (ED25519)") {
		t.Fatalf("first run: questions %q, stderr:\n%s", prompt.questions, stderr)
	}
	pub := s.hostKey.Public().(ed25519.PublicKey)
	if err := (&keys.KnownHosts{Path: filepath.Join(home, ".rlogin", "known_hosts")}).Check(s.addr, pub); err != nil {
		t.Fatalf("known_hosts after the first run: %v", err)
	}
	if prompt, stderr := run(); len(prompt.questions) != 0 || strings.Contains(stderr, "Permanently") {
		t.Fatalf("second run: questions %q, stderr:\n%s", prompt.questions, stderr)
	}
}

// TestHostNamedLikeANetwork: a host named "unix" or "tcp" is a host name like any other, dialed
// over TCP; transport's "unix:" and "tcp:" address prefixes do not apply to it ("rlogin unix" once
// dialed the Unix socket ./5513).
func TestHostNamedLikeANetwork(t *testing.T) {
	t.Chdir(t.TempDir())
	l, err := net.Listen("unix", "5513") // ./5513, what "unix:5513" names
	if err != nil {
		t.Fatal(err)
	}
	dialed := make(chan struct{}, 1)
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			select {
			case dialed <- struct{}{}:
			default:
			}
			_ = c.Close()
		}
	})
	defer func() {
		_ = l.Close()
		wg.Wait()
	}()
	for _, host := range []string{"unix", "tcp"} {
		var stderr bytes.Buffer
		cfg := &Config{Stdin: strings.NewReader(""), Stdout: &bytes.Buffer{}, Stderr: &stderr, Home: t.TempDir(),
			LocalUser: "tester", Environ: []string{}, Prompt: &fakePrompt{}}
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		code := cfg.Run(ctx, []string{"-o", "ConnectTimeout=5", "-p", "5513", host})
		cancel()
		if code != ExitFailure {
			t.Errorf("%s: exit status %d, want %d", host, code, ExitFailure)
		}
		select {
		case <-dialed:
			t.Errorf("rlogin %s dialed the Unix socket ./5513", host)
		default:
		}
		// ("tcp:5513" was dialed as the TCP address "5513": "missing port in address".)
		if msg := stderr.String(); strings.Contains(msg, "missing port") ||
			!strings.Contains(msg, "host "+host+" port 5513") && !strings.Contains(msg, "hostname "+host) {
			t.Errorf("rlogin %s: %q, want a failure to reach host %s over TCP", host, msg, host)
		}
	}
}
