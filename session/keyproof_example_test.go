package session_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"net"

	"github.com/rlogin-go/rlogin/session"
)

// A server that did not see the TLS handshake itself has the client sign a fresh nonce with
// its login key, and checks the signature before it answers the login.
func ExampleServerConn_Challenge() {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	clientConn, serverConn := net.Pipe()
	started := make(chan error, 1)
	go func() {
		c := session.NewClient(clientConn, session.Request{User: "alice", Term: "xterm"})
		c.Signer = priv // it offers keyproof, and answers the CHALLENGE
		started <- c.Start(context.Background())
	}()

	sc := session.NewServerConn(serverConn)
	req, err := sc.ReadRequest()
	if err != nil {
		fmt.Println(err)
		return
	}
	nonce := make([]byte, session.KeyProofNonceSize)
	_, _ = rand.Read(nonce)
	sig, err := sc.Challenge(nonce)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(req.User, "holds the key:", session.VerifyKeyProof(pub, nonce, sig))
	_ = sc.Refuse("that was all")
	fmt.Println(<-started)
	// Output:
	// alice holds the key: true
	// session: login refused: that was all
}
