package daemon

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"testing"

	"github.com/rlogin-go/rlogin/internal/privsep"
	"github.com/rlogin-go/rlogin/session"
)

// TestVerifyProof: the monitor accepts only the signature of its nonce by the LOGIN's key; a
// net child's forgery (another key's signature, another nonce's, garbage) fails.
func TestVerifyProof(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	login := &privsep.Login{Protocol: privsep.ProtocolSecure, User: "alice", ClientKey: pub, KeyProof: true}
	nonce := bytes.Repeat([]byte{1}, session.KeyProofNonceSize)
	if err := verifyProof(login, nonce, &privsep.Proof{Sig: ed25519.Sign(priv, session.KeyProofMessage(nonce))}); err != nil {
		t.Errorf("the client's proof: %v", err)
	}
	for name, sig := range map[string][]byte{
		"another key":    ed25519.Sign(other, session.KeyProofMessage(nonce)),
		"another nonce":  ed25519.Sign(priv, session.KeyProofMessage(make([]byte, session.KeyProofNonceSize))),
		"the bare nonce": ed25519.Sign(priv, nonce),
		"zeros":          make([]byte, ed25519.SignatureSize),
	} {
		if err := verifyProof(login, nonce, &privsep.Proof{Sig: sig}); err == nil {
			t.Errorf("a proof signed with %s verifies", name)
		}
	}
}
