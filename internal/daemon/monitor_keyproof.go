package daemon

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"

	"github.com/rlogin-go/rlogin/internal/privsep"
	"github.com/rlogin-go/rlogin/session"
)

// proveKey has the client sign a fresh nonce with the key of its LOGIN (CHALLENGE, then the
// child's PROOF; docs/protocol.md, "keyproof") and checks the signature itself: the TLS
// handshake that proved the key ran in the net child, whose word a monitor must not take. It
// waits for the PROOF until ctx is done (the login grace time). A nil error means the client
// holds login.ClientKey.
func proveKey(ctx context.Context, r *relay, login *privsep.Login) error {
	nonce := make([]byte, session.KeyProofNonceSize)
	if _, err := rand.Read(nonce); err != nil {
		return fmt.Errorf("daemon: a nonce for the key proof: %w", err)
	}
	if err := r.send(&privsep.Challenge{Nonce: nonce}); err != nil {
		return fmt.Errorf("daemon: sending the key proof challenge: %w", err)
	}
	m, err := r.receive(ctx)
	if err != nil {
		return err
	}
	return verifyProof(login, nonce, m.(*privsep.Proof)) // receive lets only a PROOF through here
}

// verifyProof checks proof, the child's answer to the CHALLENGE with nonce.
func verifyProof(login *privsep.Login, nonce []byte, proof *privsep.Proof) error {
	if !session.VerifyKeyProof(login.ClientKey, nonce, proof.Sig) {
		return errors.New("daemon: the client's signature of the nonce does not verify with its key")
	}
	return nil
}
