package session

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"slices"
)

// The frames of capability keyproof (docs/protocol.md, section 6.3): a server that cannot see
// the TLS handshake itself (a privilege-separated monitor) asks the client to sign a nonce
// with the key it logs in with.
const (
	capKeyProof = "keyproof"

	frameChallenge frameType = 0x15 // server: a nonce to sign, after LOGIN and before the answer
	frameProof     frameType = 0x16 // client: the signature over the nonce

	// KeyProofNonceSize is the size of a CHALLENGE's nonce.
	KeyProofNonceSize = 32
)

// keyProofContext opens every signed key proof, so that a signature made for this protocol is
// never valid for anything else, and a later version's is never valid for this one.
const keyProofContext = "rlogin keyproof v1\x00"

// ErrNoKeyProof is returned by ServerConn.Challenge when the client did not offer capability
// keyproof (an older client, or one without a key to sign with).
var ErrNoKeyProof = errors.New("session: the client offers no key proof")

// KeyProofMessage returns what a client signs to answer a CHALLENGE with nonce: the bytes of
// "rlogin keyproof v1", a zero byte, then the nonce.
func KeyProofMessage(nonce []byte) []byte {
	return append([]byte(keyProofContext), nonce...)
}

// VerifyKeyProof reports whether sig is key's proof over nonce.
func VerifyKeyProof(key ed25519.PublicKey, nonce, sig []byte) bool {
	return len(key) == ed25519.PublicKeySize && len(nonce) == KeyProofNonceSize &&
		ed25519.Verify(key, KeyProofMessage(nonce), sig)
}

// offersKeyProof reports whether the client can answer a CHALLENGE: it has an ed25519 Signer.
func (c *Client) offersKeyProof() bool {
	if c.Signer == nil {
		return false
	}
	_, ok := c.Signer.Public().(ed25519.PublicKey)
	return ok
}

// prove answers a CHALLENGE: it signs the nonce and sends PROOF.
func (c *Client) prove(conn net.Conn, nonce []byte) error {
	sig, err := c.Signer.Sign(rand.Reader, KeyProofMessage(nonce), crypto.Hash(0))
	if err != nil {
		return err // a Signer's own error ("keys: ssh-agent: ..."): another prefix would add nothing
	}
	if len(sig) != ed25519.SignatureSize {
		return fmt.Errorf("session: the key proof's signature is %d bytes, not %d", len(sig), ed25519.SignatureSize)
	}
	if _, err := conn.Write(appendFrame(nil, frameProof, sig)); err != nil {
		return fmt.Errorf("session: sending the key proof: %w", err)
	}
	return nil
}

// withChallenge is isAnswerFrame, and CHALLENGE too.
func withChallenge(t frameType) bool { return t == frameChallenge || isAnswerFrame(t) }

func isProofFrame(t frameType) bool { return t == frameProof }

// KeyProofOffered reports whether the client offered capability keyproof, and this server
// supports it: whether Challenge may be called. It is false before ReadRequest.
func (s *ServerConn) KeyProofOffered() bool {
	return s.req != nil && slices.Contains(s.req.Capabilities, capKeyProof) && slices.Contains(s.capabilities, capKeyProof)
}

// Challenge sends the client a CHALLENGE with nonce (KeyProofNonceSize bytes, fresh from
// crypto/rand) and returns the client's signature from its PROOF, unchecked: VerifyKeyProof
// judges it. Call it between ReadRequest and Refuse or Serve, at most once, and only if the
// request offered the capability (else ErrNoKeyProof). It sets no deadline: the caller's, on
// the conn, bounds it.
func (s *ServerConn) Challenge(nonce []byte) ([]byte, error) {
	switch {
	case s.phase != phaseRequest:
		return nil, errors.New("session: Challenge needs a login request that nobody answered")
	case s.challenged:
		return nil, errors.New("session: Challenge called twice")
	case len(nonce) != KeyProofNonceSize:
		return nil, fmt.Errorf("session: a key proof nonce of %d bytes, not %d", len(nonce), KeyProofNonceSize)
	case !s.KeyProofOffered():
		return nil, ErrNoKeyProof
	}
	s.challenged = true // the version byte goes before the CHALLENGE, not again before the answer
	if _, err := s.conn.Write(appendFrame([]byte{version}, frameChallenge, nonce)); err != nil {
		return nil, fmt.Errorf("session: sending the key proof challenge: %w", err)
	}
	s.fr.limit = ed25519.SignatureSize
	m, err := s.fr.readMessage(isProofFrame)
	s.fr.limit = 0
	if err != nil {
		if errors.Is(err, ErrProtocol) {
			_ = s.Refuse(err.Error())
		}
		return nil, fmt.Errorf("session: reading the key proof: %w", err)
	}
	return bytes.Clone(m.data), nil
}

// answerPrefix is what goes before the answer to the login: the version byte, unless a
// CHALLENGE was sent after it.
func (s *ServerConn) answerPrefix() []byte {
	if s.challenged {
		return nil
	}
	return []byte{version}
}

// decodeKeyProof checks a CHALLENGE's or PROOF's payload: a nonce or a signature of fixed size.
func decodeKeyProof(typ frameType, p []byte) ([]byte, error) {
	want := KeyProofNonceSize
	if typ == frameProof {
		want = ed25519.SignatureSize
	}
	if len(p) != want {
		return nil, fmt.Errorf("%d bytes of payload, not %d", len(p), want)
	}
	return p, nil
}
