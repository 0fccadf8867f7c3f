package transport

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/rlogin-go/rlogin/internal/rawio"
)

// DefaultHandshakeTimeout bounds a TLS handshake when
// SecureConfig.HandshakeTimeout is 0.
const DefaultHandshakeTimeout = 10 * time.Second

// A SecureConfig configures one end of a secure stream.
type SecureConfig struct {
	// Key is this end's key (required, unless GetKey is set): an
	// ed25519.PrivateKey, or any crypto.Signer whose public half is an
	// ed25519.PublicKey, such as a key held by ssh-agent or by another
	// process, so that the private half need not be in this one. Its public
	// half is sent to the peer in a self-signed certificate.
	Key crypto.Signer
	// GetKey, if set in place of Key and Certificate, returns them when
	// the handshake begins. A client's first message (the ClientHello)
	// needs no key, and the server asks for the key only in its answer, a
	// round trip later; so Client sends that message at once and calls
	// GetKey in a goroutine of its own, and the work of finding the key
	// (reading and checking a key file, asking an agent) and of making its
	// certificate overlaps the round trip. Client waits for GetKey before
	// it calls VerifyPeer or VerifyPeerCertificate (so that a question one
	// of them asks the user never comes while GetKey asks one), and
	// returns only after GetKey has returned, even when the handshake
	// failed. Server calls GetKey before the handshake. GetKey's error
	// aborts the handshake, and Client or Server return it as it is.
	GetKey func() (crypto.Signer, *ssh.Certificate, error)
	// HandshakeTimeout bounds the handshake; 0 means
	// DefaultHandshakeTimeout. The ctx given to Client or Server bounds
	// it too.
	HandshakeTimeout time.Duration
	// VerifyPeer, if set, is called during the handshake with the key the
	// peer presented; an error aborts the handshake, and Client or Server
	// return it as it is, so its words (and its type, for errors.As) reach
	// the caller unchanged. (The handshake goes on to check that the peer
	// holds the private half, so a key seen by VerifyPeer is trusted only
	// once Client or Server succeeds.) Pin keys here (or in
	// VerifyPeerCertificate): there are no X.509 certificate authorities,
	// so without a verifier any ed25519 key is accepted. keys.AuthorizedVerifier and KnownHosts.HostVerifier of
	// package keys make one from authorized_keys and known_hosts files.
	VerifyPeer func(ed25519.PublicKey) error
	// Certificate, if set, is an OpenSSH certificate of Key's public half
	// (ssh-keygen -s: a host certificate for a server, a user certificate
	// for a client), sent to the peer with the key so that it can trust
	// the key for the names the certificate's authority gives it. A peer
	// that knows nothing of certificates ignores it. Setting it needs no
	// access to a certificate authority's key, nor to Key's private half.
	Certificate *ssh.Certificate
	// VerifyPeerCertificate, if set, is called in place of VerifyPeer
	// (set one of them, not both) with the key the peer presented and
	// the OpenSSH certificate it sent with it, nil if it sent none. By
	// then the certificate is known to be for that key; whether its
	// authority, names, validity and options are acceptable is
	// VerifyPeerCertificate's to decide (package keys: KnownHosts.CheckCertificate
	// and UserCertPolicy). Its error is returned as VerifyPeer's is.
	VerifyPeerCertificate func(ed25519.PublicKey, *ssh.Certificate) error
}

// MaxCertificateSize bounds an OpenSSH certificate in a handshake, as
// OpenSSH bounds a public key blob (SSH_MAX_PUBKEY_BYTES).
const MaxCertificateSize = 16 << 10

// certificateOID identifies the non-critical X.509 extension that carries
// an OpenSSH certificate (docs/protocol.md §6.1). A function, not a
// variable: the package keeps no globals.
func certificateOID() asn1.ObjectIdentifier { return asn1.ObjectIdentifier{2, 25, 1569729058} }

// A SecureConn is a TLS 1.3 stream whose ends are identified by ed25519
// keys. It implements net.Conn; multiple goroutines may call its methods
// simultaneously.
type SecureConn struct {
	conn     *tls.Conn
	raw      *recordConn // under conn
	peer     ed25519.PublicKey
	peerCert *ssh.Certificate // the OpenSSH certificate the peer sent with peer, or nil
}

// Client runs the client side of a TLS 1.3 handshake on conn, presenting
// cfg.Key, and checks the server's key with cfg.VerifyPeer. The
// SecureConn owns conn; on failure Client closes conn.
//
// With TLS 1.3 the client finishes its handshake before the server has
// checked the client's key: a server that refuses the key makes the
// client's first Read fail ("tls: bad certificate"), not Client.
func Client(ctx context.Context, conn net.Conn, cfg *SecureConfig) (*SecureConn, error) {
	return handshake(ctx, conn, cfg, false)
}

// Server runs the server side of a TLS 1.3 handshake on conn, presenting
// cfg.Key. It requires the client to present an ed25519 key and checks it
// with cfg.VerifyPeer. The SecureConn owns conn; on failure Server closes
// conn.
func Server(ctx context.Context, conn net.Conn, cfg *SecureConfig) (*SecureConn, error) {
	return handshake(ctx, conn, cfg, true)
}

func handshake(ctx context.Context, conn net.Conn, cfg *SecureConfig, server bool) (*SecureConn, error) {
	if err := checkConfig(cfg); err != nil {
		_ = conn.Close()
		return nil, err
	}
	timeout := cfg.HandshakeTimeout
	if timeout <= 0 {
		timeout = DefaultHandshakeTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	own := newLocalKey(cfg)
	if server || cfg.GetKey == nil {
		own.find() // needed at once: a server's first answer carries its certificate
	} else {
		go own.find()
	}
	tc, peer := secureConfig(ctx, cfg, own, server)
	raw := newRecordConn(conn)
	var c *tls.Conn
	if server {
		c = tls.Server(raw, tc)
	} else {
		c = tls.Client(raw, tc)
	}
	err := own.errNow()
	if err == nil {
		err = c.HandshakeContext(ctx)
	}
	if err != nil {
		_ = c.Close()
		<-own.done // GetKey's goroutine, if any, has ended
		if own.err != nil {
			return nil, own.err // GetKey's own error, or the certificate's
		}
		if peer.refused != nil {
			return nil, peer.refused // the caller's own error, in its own words
		}
		return nil, fmt.Errorf("transport: tls handshake: %w", err)
	}
	<-own.done // the handshake presented the key: found long ago
	return &SecureConn{conn: c, raw: raw, peer: peer.key, peerCert: peer.cert}, nil
}

// checkConfig checks what cfg says of this end's key before the handshake begins; a key
// GetKey returns is checked when it comes (localKey.find).
func checkConfig(cfg *SecureConfig) error {
	switch {
	case cfg == nil || cfg.Key == nil && cfg.GetKey == nil:
		return errors.New("transport: SecureConfig needs an ed25519 Key")
	case cfg.GetKey != nil && (cfg.Key != nil || cfg.Certificate != nil):
		return errors.New("transport: SecureConfig sets GetKey and also Key or Certificate; set one way")
	case cfg.VerifyPeer != nil && cfg.VerifyPeerCertificate != nil:
		return errors.New("transport: SecureConfig sets both VerifyPeer and VerifyPeerCertificate; set one")
	}
	return nil
}

// A localKey is this end's key and certificate for one handshake, found once (see
// SecureConfig.GetKey): done is closed when cert or err is set.
type localKey struct {
	cfg  *SecureConfig
	done chan struct{}
	cert tls.Certificate
	err  error
}

func newLocalKey(cfg *SecureConfig) *localKey {
	return &localKey{cfg: cfg, done: make(chan struct{})}
}

// find finds the key (cfg.Key, or GetKey's) and makes its self-signed certificate.
func (k *localKey) find() {
	defer close(k.done)
	key, cert := k.cfg.Key, k.cfg.Certificate
	if k.cfg.GetKey != nil {
		var err error
		if key, cert, err = k.cfg.GetKey(); err != nil {
			k.err = err // as it is: the caller's own words
			return
		}
		if key == nil {
			k.err = errors.New("transport: SecureConfig.GetKey returned no key")
			return
		}
	}
	k.cert, k.err = certificateFor(key, cert)
}

// errNow is find's error if find has ended, else nil.
func (k *localKey) errNow() error {
	select {
	case <-k.done:
		return k.err
	default:
		return nil
	}
}

// wait waits for find, within ctx, and returns its error.
func (k *localKey) wait(ctx context.Context) error {
	select {
	case <-k.done:
		return k.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// certificateFor checks key (and cert, an OpenSSH certificate of it, if not nil) and makes the
// self-signed certificate that presents them.
func certificateFor(key crypto.Signer, cert *ssh.Certificate) (tls.Certificate, error) {
	if k, isRaw := key.(ed25519.PrivateKey); isRaw && len(k) != ed25519.PrivateKeySize {
		return tls.Certificate{}, errors.New("transport: SecureConfig needs an ed25519 Key")
	}
	pub, ok := key.Public().(ed25519.PublicKey)
	if !ok {
		return tls.Certificate{}, fmt.Errorf("transport: SecureConfig.Key is a %T key, want ed25519", key.Public())
	}
	ext, err := certificateExtension(cert, pub)
	if err != nil {
		return tls.Certificate{}, err
	}
	return selfSigned(key, ext)
}

// secureConfig returns the tls.Config of one handshake, which presents own (found by then on a
// server), and where its verification stores the peer's key. ctx bounds the handshake.
func secureConfig(ctx context.Context, cfg *SecureConfig, own *localKey, server bool) (*tls.Config, *peerCheck) {
	peer := new(peerCheck)
	tc := &tls.Config{
		MinVersion: tls.VersionTLS13,
		MaxVersion: tls.VersionTLS13,
		GetClientCertificate: func(cri *tls.CertificateRequestInfo) (*tls.Certificate, error) {
			if err := own.wait(cri.Context()); err != nil {
				return nil, err
			}
			return &own.cert, nil
		},
		ClientAuth: tls.RequireAnyClientCert,
		// There are no X.509 certificate authorities: the chain check is
		// replaced by VerifyPeerCertificate.
		InsecureSkipVerify: true,
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			// Whatever GetKey asks the user comes first, then the verifier's question.
			if err := own.wait(ctx); err != nil {
				return err
			}
			pub, sshCert, err := peerKey(raw)
			if err != nil {
				return err
			}
			verify := cfg.VerifyPeerCertificate
			if verify == nil && cfg.VerifyPeer != nil {
				verify = func(pub ed25519.PublicKey, _ *ssh.Certificate) error { return cfg.VerifyPeer(pub) }
			}
			if verify != nil {
				if err := verify(pub, sshCert); err != nil {
					peer.refused = err
					return err
				}
			}
			peer.key, peer.cert = pub, sshCert
			return nil
		},
		SessionTicketsDisabled: true, // every connection checks its peer's key
	}
	if server {
		tc.Certificates = []tls.Certificate{own.cert}
	}
	return tc, peer
}

// A peerCheck is what the verification of one handshake found. The
// handshake runs the verification in the goroutine that called it, which
// reads the result after the handshake returns.
type peerCheck struct {
	key     ed25519.PublicKey // the peer's key, verified
	cert    *ssh.Certificate  // the OpenSSH certificate the peer sent for key, or nil
	refused error             // VerifyPeer's error
}

// selfSigned makes a certificate for key's public half, signed by key,
// with the extension ext if it is not nil.
func selfSigned(key crypto.Signer, ext *pkix.Extension) (tls.Certificate, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("transport: certificate serial: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "rlogin"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(100 * 365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	if ext != nil {
		tmpl.ExtraExtensions = []pkix.Extension{*ext}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("transport: certificate: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

// peerKey checks that raw is exactly one ed25519 certificate signed by its
// own key, and returns that key and the OpenSSH certificate the X.509
// certificate carries for it, if any. (The handshake itself then checks
// that the peer holds the private half: TLS CertificateVerify.)
func peerKey(raw [][]byte) (ed25519.PublicKey, *ssh.Certificate, error) {
	if len(raw) != 1 {
		return nil, nil, fmt.Errorf("peer sent %d certificates, want 1", len(raw))
	}
	cert, err := x509.ParseCertificate(raw[0])
	if err != nil {
		return nil, nil, fmt.Errorf("peer certificate: %w", err)
	}
	pub, ok := cert.PublicKey.(ed25519.PublicKey)
	if !ok || cert.SignatureAlgorithm != x509.PureEd25519 {
		return nil, nil, errors.New("peer certificate is not ed25519")
	}
	if err := cert.CheckSignature(cert.SignatureAlgorithm, cert.RawTBSCertificate, cert.Signature); err != nil {
		return nil, nil, fmt.Errorf("peer certificate: %w", err)
	}
	for _, ext := range cert.Extensions { // x509.ParseCertificate refuses duplicate extensions
		if ext.Id.Equal(certificateOID()) {
			sshCert, err := parseCertificateExtension(ext, pub)
			if err != nil {
				return nil, nil, fmt.Errorf("peer's OpenSSH certificate: %w", err)
			}
			return pub, sshCert, nil
		}
	}
	return pub, nil, nil
}

// certificateExtension is the X.509 extension that carries cert, an
// OpenSSH certificate of pub; nil if cert is nil.
func certificateExtension(cert *ssh.Certificate, pub ed25519.PublicKey) (*pkix.Extension, error) {
	if cert == nil {
		return nil, nil
	}
	if err := certifies(cert, pub); err != nil {
		return nil, fmt.Errorf("transport: SecureConfig.Certificate: %w", err)
	}
	blob := cert.Marshal()
	if len(blob) > MaxCertificateSize {
		return nil, fmt.Errorf("transport: SecureConfig.Certificate: %d bytes, more than %d", len(blob), MaxCertificateSize)
	}
	value, err := asn1.Marshal(blob) // an OCTET STRING
	if err != nil {
		return nil, fmt.Errorf("transport: SecureConfig.Certificate: %w", err)
	}
	return &pkix.Extension{Id: certificateOID(), Critical: false, Value: value}, nil
}

// parseCertificateExtension returns the OpenSSH certificate that ext
// carries, refusing one that is malformed, too large, critical or not for
// pub. Whether its authority and names are to be trusted is the verifier's
// question, not this one's.
func parseCertificateExtension(ext pkix.Extension, pub ed25519.PublicKey) (*ssh.Certificate, error) {
	if ext.Critical {
		return nil, errors.New("its extension is marked critical, which would make older peers refuse it")
	}
	var blob []byte
	rest, err := asn1.Unmarshal(ext.Value, &blob)
	if err != nil {
		return nil, fmt.Errorf("not an OCTET STRING: %w", err)
	}
	if len(rest) != 0 {
		return nil, errors.New("trailing bytes after the OCTET STRING")
	}
	if len(blob) > MaxCertificateSize {
		return nil, fmt.Errorf("%d bytes, more than %d", len(blob), MaxCertificateSize)
	}
	key, err := ssh.ParsePublicKey(blob)
	if err != nil {
		return nil, err
	}
	cert, ok := key.(*ssh.Certificate)
	if !ok {
		return nil, fmt.Errorf("a plain %s key, not a certificate", key.Type())
	}
	if err := certifies(cert, pub); err != nil {
		return nil, err
	}
	return cert, nil
}

// certifies checks that cert is an OpenSSH certificate of the ed25519 key pub.
func certifies(cert *ssh.Certificate, pub ed25519.PublicKey) error {
	if cert.Key == nil || cert.Key.Type() != ssh.KeyAlgoED25519 {
		return errors.New("not a certificate of an ed25519 key")
	}
	ck, ok := cert.Key.(ssh.CryptoPublicKey)
	if !ok {
		return errors.New("not a certificate of an ed25519 key")
	}
	if k, ok := ck.CryptoPublicKey().(ed25519.PublicKey); !ok || !k.Equal(pub) {
		return errors.New("a certificate of another key than the one presented")
	}
	return nil
}

// PeerKey returns the key the peer presented in the handshake.
func (c *SecureConn) PeerKey() ed25519.PublicKey { return c.peer }

// PeerCertificate returns the OpenSSH certificate the peer sent with its
// key, or nil if it sent none. It is for PeerKey, and it passed
// VerifyPeerCertificate if the SecureConfig had one; without that check
// it proves nothing about the peer's names.
func (c *SecureConn) PeerCertificate() *ssh.Certificate { return c.peerCert }

// PeerKey returns the peer's key of c if c is a *SecureConn.
func PeerKey(c net.Conn) (ed25519.PublicKey, bool) {
	sc, ok := c.(*SecureConn)
	if !ok {
		return nil, false
	}
	return sc.peer, true
}

// Read reads data; it returns io.EOF after the peer's CloseWrite or Close.
func (c *SecureConn) Read(b []byte) (int, error) { return c.conn.Read(b) }

// Write sends b in TLS records as large as the protocol allows. A write
// deadline that passes does not break the conn: Write returns the timeout
// error with the count of bytes taken, and the tail of the record it
// interrupted, already encrypted, is held and sent before anything else by
// the next Write (once the deadline is moved) or by Close.
func (c *SecureConn) Write(b []byte) (int, error) {
	if c.raw.writeDeadlinePassed() {
		return 0, &net.OpError{Op: "write", Net: c.LocalAddr().Network(), Source: c.LocalAddr(),
			Addr: c.RemoteAddr(), Err: os.ErrDeadlineExceeded}
	}
	n := 0
	for {
		// In chunks, so a timeout leaves at most one chunk in memory.
		m, err := c.conn.Write(b[:min(len(b), writeChunk)])
		n += m
		if err != nil {
			return n, err
		}
		if err := c.raw.takeTimeout(); err != nil {
			return n, err
		}
		b = b[m:]
		if len(b) == 0 {
			return n, nil
		}
	}
}

// Close sends what a timed-out Write held and close_notify, then closes
// the underlying conn. Sending is bounded by the write deadline and by
// crypto/tls's own 5 s: with a deadline that has passed, Close drops them
// and closes at once, so a peer that does not read cannot hold it.
func (c *SecureConn) Close() error {
	c.raw.closing.Store(true)
	return c.conn.Close()
}

// CloseWrite ends the stream in this direction (TLS close_notify): the
// peer's Read returns io.EOF while it can still write to this end.
func (c *SecureConn) CloseWrite() error { return c.conn.CloseWrite() }

// NetConn returns the conn the handshake ran on (a *Conn from a mailbox, or
// the conn given to Client or Server), as tls.Conn.NetConn does: for socket
// options and addresses. Reading or writing it directly breaks the TLS
// stream.
func (c *SecureConn) NetConn() net.Conn { return c.raw.Conn }

func (c *SecureConn) LocalAddr() net.Addr                { return c.conn.LocalAddr() }
func (c *SecureConn) RemoteAddr() net.Addr               { return c.conn.RemoteAddr() }
func (c *SecureConn) SetDeadline(t time.Time) error      { return c.conn.SetDeadline(t) }
func (c *SecureConn) SetReadDeadline(t time.Time) error  { return c.conn.SetReadDeadline(t) }
func (c *SecureConn) SetWriteDeadline(t time.Time) error { return c.conn.SetWriteDeadline(t) }

// ConnectionState returns details of the TLS connection.
func (c *SecureConn) ConnectionState() tls.ConnectionState { return c.conn.ConnectionState() }

// writeChunk is the most a SecureConn passes to tls.Conn.Write at once: a
// multiple of the largest TLS record (16 KiB).
const writeChunk = 64 << 10

// A recordConn is the conn under a SecureConn's tls.Conn. tls.Conn treats
// any failed write as fatal, since part of a record may be on the wire; so
// when a write times out, recordConn keeps the unwritten bytes, reports
// success to tls.Conn and the timeout to SecureConn.Write, and sends the
// kept bytes before anything else on the next write. The TLS stream stays
// intact and a write deadline works as on a plain net.Conn.
type recordConn struct {
	net.Conn
	writeDeadline atomic.Int64          // Unix ns; 0 = none
	timeout       atomic.Pointer[error] // a write timed out
	mu            sync.Mutex            // guards pending
	pending       []byte                // written to tls.Conn, not yet to Conn
	closing       atomic.Bool           // SecureConn.Close was called

	// direct reads and writes the conn's descriptor with raw system calls (see package
	// rawio: it saves each process two context switches per echoed keystroke). It is set
	// when the conn exposes its descriptor (syscall.Conn, as TCP and Unix conns and the
	// wrappers of rlogind that only add deadlines or accounting do), or is a mailbox conn
	// over one; nil otherwise.
	direct  *rawio.Conn
	mailbox *Conn // the conn, when it is one: its Read returns bytes of its own first
}

func newRecordConn(conn net.Conn) *recordConn {
	c := &recordConn{Conn: conn}
	inner := conn
	if mc, ok := conn.(*Conn); ok {
		c.mailbox, inner = mc, mc.conn
	}
	c.direct, _ = rawio.NewConn(inner)
	return c
}

// Read reads through direct once the mailbox conn, if any, has nothing of its own left.
func (c *recordConn) Read(p []byte) (int, error) {
	if c.direct != nil && (c.mailbox == nil || c.mailbox.buffered() == 0) {
		return c.direct.Read(p)
	}
	return c.Conn.Read(p)
}

func (c *recordConn) writer() net.Conn {
	if c.direct != nil {
		return c.direct
	}
	return c.Conn
}

func (c *recordConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.pending) > 0 {
		n, err := c.writer().Write(c.pending)
		c.pending = c.pending[n:]
		if err != nil {
			return c.keep(p, err)
		}
		c.pending = nil
	}
	n, err := c.writer().Write(p)
	if err != nil {
		return c.keep(p[n:], err)
	}
	return n, nil
}

// keep keeps the unwritten p if err is a timeout.
func (c *recordConn) keep(p []byte, err error) (int, error) {
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		return 0, err // fatal for tls.Conn, as it should be
	}
	c.pending = append(c.pending, p...)
	c.timeout.Store(&err)
	return len(p), nil
}

// takeTimeout returns and clears the timeout of a write.
func (c *recordConn) takeTimeout() error {
	if err := c.timeout.Swap(nil); err != nil {
		return *err
	}
	return nil
}

func (c *recordConn) writeDeadlinePassed() bool {
	d := c.writeDeadline.Load()
	return d != 0 && time.Now().UnixNano() >= d
}

func (c *recordConn) setWriteDeadline(t time.Time) {
	if t.IsZero() {
		c.writeDeadline.Store(0)
	} else {
		c.writeDeadline.Store(t.UnixNano())
	}
}

func (c *recordConn) SetDeadline(t time.Time) error {
	c.setWriteDeadline(t)
	return c.Conn.SetDeadline(t)
}

func (c *recordConn) SetWriteDeadline(t time.Time) error {
	if c.closing.Load() {
		// tls.Conn.Close gives close_notify 5 s from now; a deadline set
		// before that is earlier (one that passed means "give up") stays.
		if d := c.writeDeadline.Load(); d != 0 && (t.IsZero() || d < t.UnixNano()) {
			return nil
		}
	}
	c.setWriteDeadline(t)
	return c.Conn.SetWriteDeadline(t)
}
