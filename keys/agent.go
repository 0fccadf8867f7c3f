package keys

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// AgentTimeout bounds each request to an ssh-agent: listing its keys, or one
// signature. A key added with "ssh-add -c" must be confirmed within it. A
// TLS handshake that signs through the agent is bounded by its own, shorter
// timeout anyway (see package transport); this bound only keeps a stuck
// agent from holding its caller for ever.
const AgentTimeout = 30 * time.Second

// Agent is a connection to an ssh-agent(1), for signing with the ed25519
// keys it holds: the private keys stay in the agent (or on the hardware
// token behind it) and never reach this process. Its methods may be called
// from several goroutines; requests are answered one at a time.
type Agent struct {
	mu     sync.Mutex // one request at a time: each sets the conn's deadline
	conn   net.Conn
	client agent.ExtendedAgent
}

// DialAgent connects to the ssh-agent listening on the Unix socket at
// socket (the value of SSH_AUTH_SOCK). The caller closes the Agent.
func DialAgent(ctx context.Context, socket string) (*Agent, error) {
	if socket == "" {
		return nil, errors.New("keys: no ssh-agent socket (SSH_AUTH_SOCK is empty)")
	}
	var d net.Dialer
	dctx, cancel := context.WithTimeout(ctx, AgentTimeout)
	defer cancel()
	conn, err := d.DialContext(dctx, "unix", socket)
	if err != nil {
		return nil, fmt.Errorf("keys: ssh-agent: %w", err)
	}
	return &Agent{conn: conn, client: agent.NewClient(conn)}, nil
}

// Close closes the connection to the agent; its keys can no longer sign.
func (a *Agent) Close() error { return a.conn.Close() }

// Keys returns the agent's ed25519 keys in the agent's order, the order
// "ssh-add -l" lists them in. Keys of other types are left out; a
// certificate the agent holds for one of the keys (ssh-add adds
// id_ed25519-cert.pub with id_ed25519) is the key's Certificate.
func (a *Agent) Keys() ([]*AgentKey, error) {
	var list []*agent.Key
	err := a.request(func() (err error) {
		list, err = a.client.List()
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("keys: ssh-agent: listing keys: %w", err)
	}
	var out []*AgentKey
	var certs []*ssh.Certificate
	for _, k := range list {
		pk, err := ssh.ParsePublicKey(k.Blob)
		if err != nil {
			continue // a key this library cannot read cannot be one of ours
		}
		if cert, ok := pk.(*ssh.Certificate); ok {
			certs = append(certs, cert)
			continue
		}
		pub, ok := ed25519PublicKey(pk)
		if !ok {
			continue
		}
		out = append(out, &AgentKey{agent: a, key: pk, pub: pub, Comment: k.Comment})
	}
	for _, cert := range certs {
		pub, ok := ed25519PublicKey(cert.Key)
		if !ok || cert.CertType != ssh.UserCert {
			continue
		}
		for _, k := range out {
			if k.pub.Equal(pub) && k.Certificate == nil {
				k.Certificate = cert
			}
		}
	}
	return out, nil
}

// request runs one exchange with the agent under AgentTimeout.
func (a *Agent) request(do func() error) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if err := a.conn.SetDeadline(time.Now().Add(AgentTimeout)); err != nil {
		return err
	}
	return do()
}

// AgentKey is an ed25519 key held by an ssh-agent. It is a crypto.Signer
// whose Sign asks the agent, so it can be a transport.SecureConfig's Key.
type AgentKey struct {
	agent   *Agent
	key     ssh.PublicKey
	pub     ed25519.PublicKey
	Comment string // as the agent reports it (usually the key file's path or comment)

	// Certificate is the user certificate the agent holds for the key, or nil.
	Certificate *ssh.Certificate
}

// Public returns the key's ed25519.PublicKey.
func (k *AgentKey) Public() crypto.PublicKey { return k.pub }

// Sign asks the agent to sign message with the key (pure ed25519: opts must
// be crypto.Hash(0), and message is the message itself, not a digest). The
// signature is checked before it is returned, so a confused agent cannot
// make a handshake fail in a way that looks like the peer's doing.
func (k *AgentKey) Sign(_ io.Reader, message []byte, opts crypto.SignerOpts) ([]byte, error) {
	if opts.HashFunc() != crypto.Hash(0) {
		return nil, errors.New("keys: ssh-agent: ed25519 keys sign the message itself, not a digest")
	}
	var sig *ssh.Signature
	err := k.agent.request(func() (err error) {
		sig, err = k.agent.client.SignWithFlags(k.key, message, 0)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("keys: ssh-agent: signing: %w", err)
	}
	if sig.Format != ssh.KeyAlgoED25519 || !ed25519.Verify(k.pub, message, sig.Blob) {
		return nil, errors.New("keys: ssh-agent: the agent's signature does not verify")
	}
	return sig.Blob, nil
}
