package keys_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"log"
	"net"
	"os"
	"path/filepath"

	"golang.org/x/crypto/ssh"

	"github.com/rlogin-go/rlogin/keys"
)

// exampleCert is what ssh-keygen -s ca [-h] -I id -n principals makes, signed here with
// golang.org/x/crypto/ssh so that the example needs no ssh-keygen.
func exampleCert(ca ssh.Signer, typ uint32, principals ...string) *ssh.Certificate {
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		log.Fatal(err)
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		log.Fatal(err)
	}
	cert := &ssh.Certificate{Key: sshPub, CertType: typ, KeyId: "example", ValidPrincipals: principals,
		ValidBefore: ssh.CertTimeInfinity, Permissions: ssh.Permissions{Extensions: map[string]string{"permit-pty": ""}}}
	if err := cert.SignCert(rand.Reader, ca); err != nil {
		log.Fatal(err)
	}
	return cert
}

// A client trusts a host's certificate through a @cert-authority line of known_hosts.
func ExampleKnownHosts_CheckCertificate() {
	ca, err := ssh.NewSignerFromKey(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize)))
	if err != nil {
		log.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	kh := &keys.KnownHosts{Path: filepath.Join(dir, "known_hosts")}
	line := "@cert-authority [*.example.test]:5513 " + string(ssh.MarshalAuthorizedKey(ca.PublicKey()))
	if err := os.WriteFile(kh.Path, []byte(line), 0o600); err != nil {
		log.Fatal(err)
	}

	cert := exampleCert(ca, ssh.HostCert, "web1.example.test")
	fmt.Println(kh.CheckCertificate("web1.example.test:5513", cert))
	err = kh.CheckCertificate("web2.example.test:5513", cert)
	fmt.Println(errors.Is(err, keys.ErrCertificateRejected), err)
	// Output:
	// <nil>
	// true keys: certificate "example": not valid for web2.example.test: its principals are web1.example.test
}

// A server lets a user certificate in for the principals a user may log in as.
func ExampleUserCertPolicy_Check() {
	ca, err := ssh.NewSignerFromKey(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{8}, ed25519.SeedSize)))
	if err != nil {
		log.Fatal(err)
	}
	policy := &keys.UserCertPolicy{
		CAKeys:     []ssh.PublicKey{ca.PublicKey()}, // keys.LoadKeyList("/etc/rlogin/trusted_user_ca_keys")
		Principals: []string{"dbadmins"},            // keys.ParsePrincipals of the user's principals file
	}
	source := &net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 40000}

	login, err := policy.Check("postgres", exampleCert(ca, ssh.UserCert, "alice", "dbadmins"), source)
	fmt.Println(login.Principal, err)
	_, err = policy.Check("postgres", exampleCert(ca, ssh.UserCert, "bob"), source)
	fmt.Println(err)
	// Output:
	// dbadmins <nil>
	// keys: certificate "example": none of its principals (bob) may log in as postgres
}
