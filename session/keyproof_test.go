package session

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"io"
	"slices"
	"testing"
)

// badSigner claims key's public half and signs with garbage, as a client that does not hold
// the key would.
type badSigner struct{ key ed25519.PublicKey }

func (b badSigner) Public() crypto.PublicKey { return b.key }
func (badSigner) Sign(io.Reader, []byte, crypto.SignerOpts) ([]byte, error) {
	return make([]byte, ed25519.SignatureSize), nil
}

// challengeResult is what the server side of runChallenge saw.
type challengeResult struct {
	req   *Request
	sig   []byte
	err   error
	nonce []byte
}

// runChallenge logs client in to a server (with serverCaps, if not nil) that challenges it and
// refuses with "done"; it returns what the server got and what Start returned.
func runChallenge(t *testing.T, signer crypto.Signer, serverCaps []string) (challengeResult, error) {
	t.Helper()
	c, s := tcpPair(t)
	srv := NewServerConn(s)
	if serverCaps != nil {
		srv.capabilities = serverCaps
	}
	res := make(chan challengeResult, 1)
	go func() {
		var r challengeResult
		r.req, r.err = srv.ReadRequest()
		if r.err == nil {
			r.nonce = make([]byte, KeyProofNonceSize)
			_, _ = rand.Read(r.nonce)
			r.sig, r.err = srv.Challenge(r.nonce)
			_ = srv.Refuse("done")
		}
		res <- r
	}()
	cl := NewClient(c, bob)
	cl.Signer = signer
	err := cl.Start(context.Background())
	return <-res, err
}

// TestKeyProof: a client with a key answers the CHALLENGE with a signature that verifies
// against that key and no other, then reads the answer as usual.
func TestKeyProof(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	other, _, _ := ed25519.GenerateKey(rand.Reader)
	r, err := runChallenge(t, priv, nil)
	var refused *RefusedError
	if !errors.As(err, &refused) || refused.Reason != "done" {
		t.Fatalf("Start: %v, want the refusal after the proof", err)
	}
	if r.err != nil {
		t.Fatalf("Challenge: %v", r.err)
	}
	if !slices.Contains(r.req.Capabilities, "keyproof") { // KeyProofOffered is checked by Challenge
		t.Errorf("the client offered %q, not keyproof", r.req.Capabilities)
	}
	if !VerifyKeyProof(pub, r.nonce, r.sig) {
		t.Error("the proof does not verify with the client's key")
	}
	if VerifyKeyProof(other, r.nonce, r.sig) {
		t.Error("the proof verifies with another key")
	}
	if VerifyKeyProof(pub, make([]byte, KeyProofNonceSize), r.sig) {
		t.Error("the proof verifies for another nonce")
	}
	if want := append([]byte("rlogin keyproof v1\x00"), r.nonce...); !ed25519.Verify(pub, want, r.sig) {
		t.Error("the proof is not over the documented message")
	}
}

// TestKeyProofBadSignature: Challenge returns what the client sent; judging it is the caller's.
func TestKeyProofBadSignature(t *testing.T) {
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	r, _ := runChallenge(t, badSigner{pub}, nil)
	if r.err != nil {
		t.Fatalf("Challenge: %v", r.err)
	}
	if VerifyKeyProof(pub, r.nonce, r.sig) {
		t.Error("a garbage proof verifies")
	}
}

// TestKeyProofOldPeers: a client without a Signer (as an old client) does not offer keyproof,
// and a server that does not support it (as an old server) cannot challenge; both log in.
func TestKeyProofOldPeers(t *testing.T) {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	for name, run := range map[string]func() (challengeResult, error){
		"old client": func() (challengeResult, error) { return runChallenge(t, nil, nil) },
		"old server": func() (challengeResult, error) {
			return runChallenge(t, priv, []string{capFlow2, capKeepalive, capExec})
		},
	} {
		r, err := run()
		if !errors.Is(r.err, ErrNoKeyProof) {
			t.Errorf("%s: Challenge: %v, want ErrNoKeyProof", name, r.err)
		}
		var refused *RefusedError
		if !errors.As(err, &refused) || refused.Reason != "done" {
			t.Errorf("%s: Start: %v, want the server's answer", name, err)
		}
	}
}

// TestKeyProofProtocolErrors: the PROOF is exactly a signature, and comes right after the
// CHALLENGE; a server sends at most one CHALLENGE.
func TestKeyProofProtocolErrors(t *testing.T) {
	login, err := appendMessage([]byte{version}, &message{typ: frameLogin, req: &Request{User: "bob", Capabilities: []string{capKeyProof}}})
	if err != nil {
		t.Fatal(err)
	}
	for name, after := range map[string][]byte{
		"short proof": appendFrame(nil, frameProof, make([]byte, 10)),
		"long proof":  appendFrame(nil, frameProof, make([]byte, ed25519.SignatureSize+1)),
		"data":        appendFrame(nil, frameData, []byte("x")),
	} {
		c, s := tcpPair(t)
		srv := NewServerConn(s)
		if _, err := c.Write(append(bytes.Clone(login), after...)); err != nil {
			t.Fatal(err)
		}
		drained := make(chan struct{})
		go func() {
			_, _ = io.Copy(io.Discard, c) // until the server closes its side
			_ = c.Close()                 // and then this one, as a client does, which ends its linger
			close(drained)
		}()
		if _, err := srv.ReadRequest(); err != nil {
			t.Fatalf("%s: ReadRequest: %v", name, err)
		}
		if _, err := srv.Challenge(make([]byte, KeyProofNonceSize)); !errors.Is(err, ErrProtocol) {
			t.Errorf("%s: Challenge: %v, want a protocol error", name, err)
		}
		if _, err := srv.Challenge(make([]byte, KeyProofNonceSize)); err == nil {
			t.Errorf("%s: a second Challenge succeeded", name)
		}
		_ = srv.Close()
		<-drained
	}

	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	challenge := appendFrame(nil, frameChallenge, make([]byte, KeyProofNonceSize))
	c, s := tcpPair(t)
	// The answer is written before the client's LOGIN is read: the socket buffers hold both.
	if _, err := s.Write(append(append([]byte{version}, challenge...), challenge...)); err != nil {
		t.Fatal(err)
	}
	cl := NewClient(c, bob)
	cl.Signer = priv
	if err := cl.Start(context.Background()); !errors.Is(err, ErrProtocol) {
		t.Errorf("Start after two CHALLENGEs: %v, want a protocol error", err)
	}
}
