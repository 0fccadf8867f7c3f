package transport

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// sshCert returns an OpenSSH certificate of key's public half of type typ
// (ssh.HostCert, ssh.UserCert) for principals, signed by a new CA.
func sshCert(t testing.TB, key ed25519.PrivateKey, typ uint32, principals ...string) *ssh.Certificate {
	t.Helper()
	pub, err := ssh.NewPublicKey(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	ca, err := ssh.NewSignerFromKey(newKey(t))
	if err != nil {
		t.Fatal(err)
	}
	cert := &ssh.Certificate{Key: pub, CertType: typ, KeyId: "test", ValidPrincipals: principals,
		ValidBefore: ssh.CertTimeInfinity}
	if err := cert.SignCert(rand.Reader, ca); err != nil {
		t.Fatal(err)
	}
	return cert
}

// securePair is a server and a client secure conn over loopback TCP, closed when t ends.
func securePair(t *testing.T, scfg, ccfg *SecureConfig) (s, c *SecureConn) {
	t.Helper()
	srv, cli := tcpPair(t)
	sr, cr := handshakePair(testCtx(t), srv, cli, scfg, ccfg)
	t.Cleanup(func() { closeSecure(sr.c, cr.c) })
	if err := errors.Join(sr.err, cr.err); err != nil {
		t.Fatal(err)
	}
	return sr.c, cr.c
}

func TestSecureCertificates(t *testing.T) {
	skey, ckey := newKey(t), newKey(t)
	hostCert := sshCert(t, skey, ssh.HostCert, "host.example.test")
	userCert := sshCert(t, ckey, ssh.UserCert, "alice")
	var sawHost, sawUser *ssh.Certificate
	scfg := &SecureConfig{Key: skey, Certificate: hostCert,
		VerifyPeerCertificate: func(pub ed25519.PublicKey, c *ssh.Certificate) error {
			sawUser = c
			return nil
		}}
	ccfg := &SecureConfig{Key: ckey, Certificate: userCert,
		VerifyPeerCertificate: func(pub ed25519.PublicKey, c *ssh.Certificate) error {
			if !pub.Equal(skey.Public()) {
				t.Error("VerifyPeerCertificate got another key than the server's")
			}
			sawHost = c
			return nil
		}}
	s, c := securePair(t, scfg, ccfg)
	if sawHost == nil || !bytes.Equal(sawHost.Marshal(), hostCert.Marshal()) {
		t.Errorf("client's VerifyPeerCertificate saw %v, want the host certificate", sawHost)
	}
	if got := c.PeerCertificate(); got == nil || !bytes.Equal(got.Marshal(), hostCert.Marshal()) {
		t.Errorf("client's PeerCertificate = %v, want the host certificate", got)
	}
	roundTrip(t, s, c) // the server's check of the client runs in the client's first flight
	if sawUser == nil || !bytes.Equal(sawUser.Marshal(), userCert.Marshal()) {
		t.Errorf("server's VerifyPeerCertificate saw %v, want the user certificate", sawUser)
	}
	if got := s.PeerCertificate(); got == nil || got.KeyId != "test" {
		t.Errorf("server's PeerCertificate = %v, want the user certificate", got)
	}
}

// A peer that knows nothing of certificates (VerifyPeer only, or none at all) still connects to
// one that sends one, and a peer that sends none is seen with a nil certificate.
func TestSecureCertificateIgnoredByPlainPeer(t *testing.T) {
	skey, ckey := newKey(t), newKey(t)
	var called bool
	scfg := &SecureConfig{Key: skey, Certificate: sshCert(t, skey, ssh.HostCert, "h")}
	ccfg := &SecureConfig{Key: ckey, VerifyPeer: func(pub ed25519.PublicKey) error {
		called = true
		return nil
	}}
	s, c := securePair(t, scfg, ccfg)
	if !called {
		t.Error("VerifyPeer was not called")
	}
	roundTrip(t, s, c)
	if s.PeerCertificate() != nil {
		t.Error("the server sees a certificate the client never sent")
	}
}

func TestSecureCertificateConfigErrors(t *testing.T) {
	key := newKey(t)
	verify := func(ed25519.PublicKey) error { return nil }
	verifyCert := func(ed25519.PublicKey, *ssh.Certificate) error { return nil }
	for _, tc := range []struct {
		name string
		cfg  *SecureConfig
		want string
	}{
		{"certificate of another key", &SecureConfig{Key: key, Certificate: sshCert(t, newKey(t), ssh.HostCert, "h")}, "another key"},
		{"both verifiers", &SecureConfig{Key: key, VerifyPeer: verify, VerifyPeerCertificate: verifyCert}, "set one"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, cli := tcpPair(t)
			defer srv.Close()
			_, err := Client(testCtx(t), cli, tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "transport: ") {
				t.Errorf("Client: %v, want a transport error saying %q", err, tc.want)
			}
		})
	}
}

// x509WithExtension is a self-signed certificate of key with one extra extension.
func x509WithExtension(t testing.TB, key ed25519.PrivateKey, ext pkix.Extension) []byte {
	t.Helper()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "rlogin"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtraExtensions: []pkix.Extension{ext}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// Whatever a hostile peer puts in the extension is refused with a reason, never trusted.
func TestPeerCertificateRefusals(t *testing.T) {
	key := newKey(t)
	octets := func(b []byte) []byte {
		v, err := asn1.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	good := sshCert(t, key, ssh.HostCert, "h").Marshal()
	plain, _ := ssh.NewPublicKey(key.Public())
	for _, tc := range []struct {
		name string
		ext  pkix.Extension
		want string
	}{
		{"critical", pkix.Extension{Id: certificateOID(), Critical: true, Value: octets(good)}, "critical"},
		{"not an octet string", pkix.Extension{Id: certificateOID(), Value: []byte{0x02, 0x01, 0x00}}, "OCTET STRING"},
		{"trailing bytes", pkix.Extension{Id: certificateOID(), Value: append(octets(good), 0)}, "trailing"},
		{"garbage", pkix.Extension{Id: certificateOID(), Value: octets([]byte("hello"))}, "OpenSSH certificate"},
		{"plain key", pkix.Extension{Id: certificateOID(), Value: octets(plain.Marshal())}, "not a certificate"},
		{"another key", pkix.Extension{Id: certificateOID(), Value: octets(sshCert(t, newKey(t), ssh.HostCert, "h").Marshal())}, "another key"},
		{"too large", pkix.Extension{Id: certificateOID(), Value: octets(make([]byte, MaxCertificateSize+1))}, "more than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, cert, err := peerKey([][]byte{x509WithExtension(t, key, tc.ext)})
			if err == nil || cert != nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("peerKey: %v (certificate %v), want a refusal saying %q", err, cert, tc.want)
			}
		})
	}
	pub, cert, err := peerKey([][]byte{x509WithExtension(t, key, pkix.Extension{Id: certificateOID(), Value: octets(good)})})
	if err != nil || cert == nil || !pub.Equal(key.Public()) {
		t.Errorf("peerKey of a good certificate: %v, %v", cert, err)
	}
}

// A hostile peer's refusal reaches the handshake as an error, not a trusted key.
func TestSecureRefusesBadCertificateExtension(t *testing.T) {
	key := newKey(t)
	der := x509WithExtension(t, key, pkix.Extension{Id: certificateOID(), Value: []byte{0x04, 0x01, 0x00}})
	srv, cli := tcpPair(t)
	ch := make(chan error, 1)
	go func() {
		c, err := Server(testCtx(t), srv, &SecureConfig{Key: newKey(t)})
		if err == nil {
			_ = c.Close()
		}
		ch <- err
	}()
	// The client presents its crafted certificate through crypto/tls itself.
	crafted := tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	c := tls.Client(cli, &tls.Config{MinVersion: tls.VersionTLS13, InsecureSkipVerify: true,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &crafted, nil }})
	defer c.Close()
	if err := c.HandshakeContext(testCtx(t)); err == nil {
		_, _ = c.Read(make([]byte, 1)) // TLS 1.3: the server's refusal arrives after the client's handshake
	}
	err := <-ch
	if err == nil || !strings.Contains(err.Error(), "peer's OpenSSH certificate") {
		t.Errorf("Server: %v, want a refusal of the peer's OpenSSH certificate", err)
	}
}

func FuzzCertificateExtension(f *testing.F) {
	key := newKey(f)
	good := sshCert(f, key, ssh.HostCert, "h", "i").Marshal()
	seed, _ := asn1.Marshal(good)
	f.Add(seed, false)
	f.Add([]byte{0x04, 0x00}, false)
	f.Add(seed, true)
	pub := key.Public().(ed25519.PublicKey)
	f.Fuzz(func(t *testing.T, value []byte, critical bool) {
		cert, err := parseCertificateExtension(pkix.Extension{Id: certificateOID(), Critical: critical, Value: value}, pub)
		if err != nil {
			if cert != nil {
				t.Fatal("a certificate with an error")
			}
			return
		}
		if critical {
			t.Fatal("a critical extension was accepted")
		}
		if certifies(cert, pub) != nil {
			t.Fatal("accepted a certificate of another key")
		}
		if len(cert.Marshal()) > MaxCertificateSize {
			t.Fatal("accepted an oversized certificate")
		}
	})
}
