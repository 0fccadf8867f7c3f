package privsep

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/sys/unix"

	"github.com/rlogin-go/rlogin/transport"
)

// tbs returns the to-be-signed part of a certificate for key made from tmpl, signed by key.
func tbs(t testing.TB, key ed25519.PrivateKey, tmpl *x509.Certificate) []byte {
	t.Helper()
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c.RawTBSCertificate
}

// certTemplate is a certificate like transport's, with fixed fields so seeds stay the same.
func certTemplate() *x509.Certificate {
	return &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "rlogin"},
		NotBefore:    time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		NotAfter:     time.Date(2126, 1, 1, 0, 0, 0, 0, time.UTC),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
}

func selfSignedTBS(t testing.TB, key ed25519.PrivateKey) []byte { return tbs(t, key, certTemplate()) }

func caTBS(t testing.TB, key ed25519.PrivateKey) []byte {
	tmpl := certTemplate()
	tmpl.IsCA, tmpl.BasicConstraintsValid = true, true
	tmpl.KeyUsage |= x509.KeyUsageCertSign
	return tbs(t, key, tmpl)
}

// channels returns the two Channels of a fresh Pair, closed at the test's end.
func channels(t testing.TB) (monitor, netc *Channel) {
	t.Helper()
	mf, nf, err := Pair()
	if err != nil {
		t.Fatal(err)
	}
	monitor, err = NewFileChannel(mf, MonitorSide)
	if err != nil {
		t.Fatal(err)
	}
	netc, err = NewFileChannel(nf, NetSide)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { monitor.Close(); netc.Close() })
	return monitor, netc
}

// serveSignatures is a monitor that answers SIGN with h until the channel ends or a request is
// refused; it returns how many it signed and the refusal.
func serveSignatures(ch *Channel, h *HostKeyHolder) (signed int, err error) {
	for {
		m, _, err := ch.Receive()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return signed, nil
			}
			return signed, err
		}
		req, ok := m.(*Sign)
		if !ok {
			return signed, errors.New("not a SIGN: " + m.Type().String())
		}
		sig, err := h.Answer(req)
		if err != nil {
			_ = ch.Send(&Refuse{Reason: "signature refused"})
			return signed, err
		}
		if err := ch.Send(sig); err != nil {
			return signed, err
		}
		signed++
	}
}

// streamPair returns the ends of a SOCK_STREAM socketpair: buffered, unlike net.Pipe, so a
// TLS close_notify that no one reads does not hold Close for crypto/tls's 5 s.
func streamPair(t testing.TB) (a, b net.Conn) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	conns := make([]net.Conn, 2)
	for i, fd := range fds {
		f := os.NewFile(uintptr(fd), "stream")
		conns[i], err = net.FileConn(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	return conns[0], conns[1]
}

type result[T any] struct {
	v   T
	err error
}

// hostCertificate returns an OpenSSH host certificate of key for principals, signed by a new CA.
func hostCertificate(t testing.TB, key ed25519.PrivateKey, principals ...string) *ssh.Certificate {
	t.Helper()
	pub, err := ssh.NewPublicKey(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	ca, err := ssh.NewSignerFromKey(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{9}, 32)))
	if err != nil {
		t.Fatal(err)
	}
	cert := &ssh.Certificate{Key: pub, CertType: ssh.HostCert, KeyId: "test", ValidPrincipals: principals,
		ValidBefore: ssh.CertTimeInfinity}
	if err := cert.SignCert(rand.Reader, ca); err != nil {
		t.Fatal(err)
	}
	return cert
}

// TestHostKeySignerHandshake runs a real TLS 1.3 handshake whose server key is a
// HostKeySigner, with the monitor's side in a goroutine over a real socketpair: without a
// host certificate, and with one large enough to make the certificate the monitor signs
// several KiB.
func TestHostKeySignerHandshake(t *testing.T) {
	hostKey := testKey()
	many := make([]string, 500)
	for i := range many {
		many[i] = fmt.Sprintf("host%03d.example.test", i)
	}
	for _, tc := range []struct {
		name string
		cert *ssh.Certificate
	}{
		{"no certificate", nil},
		{"a large host certificate", hostCertificate(t, hostKey, many...)},
	} {
		t.Run(tc.name, func(t *testing.T) { signerHandshake(t, hostKey, tc.cert) })
	}
}

func signerHandshake(t *testing.T, hostKey ed25519.PrivateKey, cert *ssh.Certificate) {
	clientKey := ed25519.NewKeyFromSeed(make([]byte, 32))
	monitorCh, netCh := channels(t)
	watchdog(t, monitorCh, netCh)
	holder, err := NewHostKeyHolder(hostKey)
	if err != nil {
		t.Fatal(err)
	}
	monitorDone := make(chan result[int], 1)
	go func() {
		n, err := serveSignatures(monitorCh, holder)
		monitorDone <- result[int]{n, err}
	}()

	signer := NewHostKeySigner(netCh, hostKey.Public().(ed25519.PublicKey))
	srvConn, cliConn := streamPair(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second) // the watchdog
	defer cancel()
	clientDone := make(chan result[*transport.SecureConn], 1)
	go func() {
		c, err := transport.Client(ctx, cliConn, &transport.SecureConfig{Key: clientKey,
			VerifyPeerCertificate: func(k ed25519.PublicKey, c *ssh.Certificate) error {
				if !k.Equal(hostKey.Public()) {
					return errors.New("not the host key")
				}
				if (c == nil) != (cert == nil) {
					return fmt.Errorf("host certificate %v, want %v", c, cert)
				}
				return nil
			}})
		clientDone <- result[*transport.SecureConn]{c, err}
	}()
	srv, err := transport.Server(ctx, srvConn, &transport.SecureConfig{Key: signer, Certificate: cert})
	cr := <-clientDone
	if err != nil || cr.err != nil {
		t.Fatalf("handshake: server %v, client %v", err, cr.err)
	}
	defer srv.Close()
	defer cr.v.Close()
	if !srv.PeerKey().Equal(clientKey.Public()) {
		t.Error("server saw another client key")
	}
	if _, err := cr.v.Write([]byte("ping")); err != nil { // the socketpair buffers it
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(srv, buf); err != nil || string(buf) != "ping" {
		t.Errorf("read %q, %v over the secure conn", buf, err)
	}

	// A second handshake on the same connection's monitor is refused: its signatures are spent.
	_, err = signer.Sign(nil, certificateVerifyContent(32), crypto.Hash(0))
	if err == nil || !strings.Contains(err.Error(), "refused") {
		t.Errorf("a third signature: %v, want a refusal", err)
	}
	monitorCh.Close()
	mr := <-monitorDone
	if mr.v != 2 || mr.err == nil {
		t.Errorf("monitor signed %d (want 2: certificate, CertificateVerify) and ended with %v (want the refusal)", mr.v, mr.err)
	}
}

func TestHostKeyHolderRefuses(t *testing.T) {
	key := testKey()
	other := ed25519.NewKeyFromSeed(make([]byte, 32))
	for _, tc := range []struct {
		name string
		reqs [][]byte // all but the last are signed
	}{
		{"other content", [][]byte{[]byte("hello")}},
		{"a certificate of another key", [][]byte{selfSignedTBS(t, other)}},
		{"a CA certificate", [][]byte{caTBS(t, key)}},
		{"two certificates", [][]byte{selfSignedTBS(t, key), selfSignedTBS(t, key)}},
		{"two CertificateVerify", [][]byte{certificateVerifyContent(32), certificateVerifyContent(48)}},
		{"a certificate after CertificateVerify", [][]byte{certificateVerifyContent(32), selfSignedTBS(t, key)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, err := NewHostKeyHolder(key)
			if err != nil {
				t.Fatal(err)
			}
			for i, c := range tc.reqs {
				sig, err := h.Answer(&Sign{Content: c})
				last := i == len(tc.reqs)-1
				if last && err == nil {
					t.Errorf("request %d signed, want a refusal", i)
				}
				if !last && (err != nil || !ed25519.Verify(key.Public().(ed25519.PublicKey), c, sig.Sig)) {
					t.Fatalf("request %d: %v", i, err)
				}
			}
		})
	}
}

func TestHostKeySignerChecks(t *testing.T) {
	key := testKey()
	monitorCh, netCh := channels(t)
	signer := NewHostKeySigner(netCh, key.Public().(ed25519.PublicKey))
	signer.Timeout = 5 * time.Second // the watchdog

	if _, err := signer.Sign(nil, []byte("x"), crypto.SHA256); err == nil {
		t.Error("Sign of a SHA-256 digest succeeded")
	}
	if _, err := signer.Sign(nil, []byte("x"), &ed25519.Options{Context: "ctx"}); err == nil {
		t.Error("Sign with an ed25519 context succeeded")
	}

	// A monitor whose signature is of something else: caught by the signer.
	watchdog(t, monitorCh)
	monitorDone := make(chan error, 1)
	go func() {
		_, _, err := monitorCh.Receive()
		if err == nil {
			err = monitorCh.Send(&Signature{Sig: ed25519.Sign(key, []byte("other"))})
		}
		monitorDone <- err
	}()
	if _, err := signer.Sign(nil, certificateVerifyContent(32), crypto.Hash(0)); err == nil || !strings.Contains(err.Error(), "does not verify") {
		t.Errorf("a wrong signature: %v, want it caught", err)
	}
	if err := <-monitorDone; err != nil {
		t.Fatal(err)
	}

	// A monitor that does not answer: the timeout.
	signer.Timeout = 100 * time.Millisecond
	start := time.Now()
	if _, err := signer.Sign(nil, certificateVerifyContent(32), crypto.Hash(0)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("no answer: %v, want a deadline error", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("no answer took %v", d)
	}
}
