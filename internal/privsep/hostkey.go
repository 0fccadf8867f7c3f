package privsep

import (
	"crypto"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"
)

// DefaultSignTimeout bounds one signature a HostKeySigner asks of the monitor when its
// Timeout is 0.
const DefaultSignTimeout = 10 * time.Second

// A HostKeySigner is the host key as the net child holds it: a crypto.Signer (for
// transport.SecureConfig.Key) whose Sign asks the monitor over a Channel (SIGN) and waits for
// its answer (SIGNATURE). The private key never enters the net child. While a handshake runs,
// the signer must be the only one receiving on the Channel. Multiple goroutines may call Sign
// simultaneously; their requests are sent one at a time.
type HostKeySigner struct {
	ch  *Channel
	pub ed25519.PublicKey
	// Timeout bounds one Sign (from SIGN sent to SIGNATURE read); 0 means DefaultSignTimeout.
	Timeout time.Duration

	mu sync.Mutex // one request at a time
}

// NewHostKeySigner returns the signer of the host key pub, whose private half the monitor at
// the other end of ch (a NetSide Channel) holds.
func NewHostKeySigner(ch *Channel, pub ed25519.PublicKey) *HostKeySigner {
	return &HostKeySigner{ch: ch, pub: pub}
}

// Public returns the host's public key.
func (s *HostKeySigner) Public() crypto.PublicKey { return s.pub }

// Sign returns the monitor's ed25519 signature of msg (opts must be crypto.Hash(0): ed25519
// signs the message itself). It checks the signature against the public key, so a monitor's
// wrong answer fails here, not at the peer. A REFUSE from the monitor is an error with its
// reason.
func (s *HostKeySigner) Sign(_ io.Reader, msg []byte, opts crypto.SignerOpts) ([]byte, error) {
	if opts.HashFunc() != 0 {
		return nil, fmt.Errorf("privsep: host key signs messages, not %v digests", opts.HashFunc())
	}
	if o, ok := opts.(*ed25519.Options); ok && o.Context != "" {
		return nil, errors.New("privsep: host key signs without a context (pure ed25519)")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	timeout := s.Timeout
	if timeout <= 0 {
		timeout = DefaultSignTimeout
	}
	if err := s.ch.SetDeadline(time.Now().Add(timeout)); err != nil {
		return nil, fmt.Errorf("privsep: sign: %w", err)
	}
	defer func() { _ = s.ch.SetDeadline(time.Time{}) }() // best effort: the next user sets its own
	if err := s.ch.Send(&Sign{Content: msg}); err != nil {
		return nil, err
	}
	m, _, err := s.ch.Receive() // a reply with descriptors is refused by Receive
	if err != nil {
		return nil, err
	}
	switch m := m.(type) {
	case *Signature:
		if !ed25519.Verify(s.pub, msg, m.Sig) {
			return nil, errors.New("privsep: the monitor's signature does not verify")
		}
		return m.Sig, nil
	case *Refuse:
		return nil, fmt.Errorf("privsep: the monitor refused to sign: %s", m.Reason)
	default:
		return nil, fmt.Errorf("privsep: unexpected %v in answer to SIGN", m.Type())
	}
}

// A HostKeyHolder is the monitor's side of the host key: it answers a net child's SIGN, and
// signs only what one TLS 1.3 server handshake of transport.Server needs, once each per
// connection: the to-be-signed part of a self-signed certificate for the host key itself (no
// certificate authority), then a TLS 1.3 server CertificateVerify content (RFC 8446 §4.4.3).
// Every other request is refused, and the monitor ends the connection.
//
// A net child that is taken over can still have one CertificateVerify content of its choice
// signed per connection: the monitor cannot tell whose transcript a hash is. The bound makes
// the host key an oracle of one signature per accepted connection, as sshd's monitor is.
type HostKeyHolder struct {
	key crypto.Signer
	pub ed25519.PublicKey

	mu       sync.Mutex
	cert     bool // the certificate is signed
	verified bool // the CertificateVerify is signed
}

// NewHostKeyHolder returns the holder of key, an ed25519 key (an ed25519.PrivateKey, or a
// crypto.Signer whose public half is an ed25519.PublicKey), for one connection.
func NewHostKeyHolder(key crypto.Signer) (*HostKeyHolder, error) {
	pub, ok := key.Public().(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("privsep: host key is a %T key, want ed25519", key.Public())
	}
	return &HostKeyHolder{key: key, pub: pub}, nil
}

// Answer signs req's content if it is the next thing a handshake needs signed, or returns an
// error that says why not (for the log; the net child gets no more than a REFUSE).
func (h *HostKeyHolder) Answer(req *Sign) (*Signature, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case h.verified:
		return nil, errors.New("privsep: sign: the handshake's signatures were given already")
	case isCertificateVerify(req.Content):
		h.verified = true
	case h.cert:
		return nil, errors.New("privsep: sign: a second certificate")
	default:
		key, err := selfSignedTBSKey(req.Content)
		if err != nil {
			return nil, fmt.Errorf("privsep: sign: neither a CertificateVerify nor a certificate: %w", err)
		}
		if !key.Equal(h.pub) {
			return nil, errors.New("privsep: sign: a certificate for another key")
		}
		h.cert = true
	}
	sig, err := h.key.Sign(nil, req.Content, crypto.Hash(0))
	if err != nil {
		return nil, fmt.Errorf("privsep: sign: %w", err)
	}
	return &Signature{Sig: sig}, nil
}
