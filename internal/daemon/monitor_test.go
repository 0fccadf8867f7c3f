package daemon

import (
	"crypto/ed25519"
	"crypto/rand"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/rlogin-go/rlogin/internal/privsep"
)

// TestClientCertificateMustCertifyTheKey: the monitor does not take the net child's word that
// a certificate belongs to the client's key.
func TestClientCertificateMustCertifyTheKey(t *testing.T) {
	_, caKey, _ := ed25519.GenerateKey(rand.Reader)
	clientPub, _, _ := ed25519.GenerateKey(rand.Reader)
	otherPub, _, _ := ed25519.GenerateKey(rand.Reader)
	signer, err := ssh.NewSignerFromKey(caKey)
	if err != nil {
		t.Fatal(err)
	}
	certFor := func(pub ed25519.PublicKey) []byte {
		k, err := ssh.NewPublicKey(pub)
		if err != nil {
			t.Fatal(err)
		}
		c := &ssh.Certificate{Key: k, CertType: ssh.UserCert, KeyId: "test", ValidPrincipals: []string{"bob"}, ValidBefore: ssh.CertTimeInfinity}
		if err := c.SignCert(rand.Reader, signer); err != nil {
			t.Fatal(err)
		}
		return c.Marshal()
	}
	if c, err := clientCertificate(&privsep.Login{ClientKey: clientPub, ClientCertificate: certFor(clientPub)}); err != nil || c == nil {
		t.Errorf("the client key's own certificate: %v, %v", c, err)
	}
	if _, err := clientCertificate(&privsep.Login{ClientKey: clientPub, ClientCertificate: certFor(otherPub)}); err == nil {
		t.Error("a certificate of another key was taken for the client's")
	}
	k, _ := ssh.NewPublicKey(otherPub)
	if _, err := clientCertificate(&privsep.Login{ClientKey: clientPub, ClientCertificate: k.Marshal()}); err == nil {
		t.Error("a plain key was taken for a certificate")
	}
	if c, err := clientCertificate(&privsep.Login{ClientKey: clientPub}); c != nil || err != nil {
		t.Errorf("no certificate: %v, %v", c, err)
	}
}
