package transport

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/nettest"
)

func newKey(t testing.TB) ed25519.PrivateKey {
	t.Helper()
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// tcpPair returns two connected loopback TCP conns.
func tcpPair(t testing.TB) (server, client net.Conn) {
	t.Helper()
	l, err := Listen(testCtx(t), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	server, client, err = connPair(l, func(ctx context.Context) (net.Conn, error) {
		return Dial(ctx, l.Addr().String())
	})
	if err != nil {
		t.Fatal(err)
	}
	return server, client
}

type handshakeResult struct {
	c   *SecureConn
	err error
}

// handshakePair runs Server on srv and Client on cli at the same time.
func handshakePair(ctx context.Context, srv, cli net.Conn, scfg, ccfg *SecureConfig) (s, c handshakeResult) {
	ch := make(chan handshakeResult, 1)
	go func() {
		c, err := Server(ctx, srv, scfg)
		ch <- handshakeResult{c, err}
	}()
	c.c, c.err = Client(ctx, cli, ccfg)
	return <-ch, c
}

// securePipe makes pipes of secure conns over loopback TCP.
func securePipe(t *testing.T) nettest.MakePipe {
	skey, ckey := newKey(t), newKey(t)
	return func() (c1, c2 net.Conn, stop func(), err error) {
		srv, cli := tcpPair(t)
		s, c := handshakePair(context.Background(), srv, cli, &SecureConfig{Key: skey}, &SecureConfig{Key: ckey})
		if err := errors.Join(s.err, c.err); err != nil {
			closeSecure(s.c, c.c)
			return nil, nil, nil, err
		}
		return s.c, c.c, func() { closeSecure(s.c, c.c) }, nil
	}
}

func closeSecure(cs ...*SecureConn) {
	for _, c := range cs {
		if c != nil {
			_ = c.Close()
		}
	}
}

func TestConnSecure(t *testing.T) { nettest.TestConn(t, securePipe(t)) }

func TestSecurePeerKeys(t *testing.T) {
	skey, ckey := newKey(t), newKey(t)
	var sawClient, sawServer ed25519.PublicKey
	scfg := &SecureConfig{Key: skey, VerifyPeer: func(k ed25519.PublicKey) error { sawClient = k; return nil }}
	ccfg := &SecureConfig{Key: ckey, VerifyPeer: func(k ed25519.PublicKey) error { sawServer = k; return nil }}
	srv, cli := tcpPair(t)
	s, c := handshakePair(testCtx(t), srv, cli, scfg, ccfg)
	defer closeSecure(s.c, c.c)
	if err := errors.Join(s.err, c.err); err != nil {
		t.Fatal(err)
	}
	spub, cpub := skey.Public().(ed25519.PublicKey), ckey.Public().(ed25519.PublicKey)
	if !s.c.PeerKey().Equal(cpub) || !sawClient.Equal(cpub) {
		t.Errorf("server sees client key %x (VerifyPeer %x), want %x", s.c.PeerKey(), sawClient, cpub)
	}
	if !c.c.PeerKey().Equal(spub) || !sawServer.Equal(spub) {
		t.Errorf("client sees server key %x (VerifyPeer %x), want %x", c.c.PeerKey(), sawServer, spub)
	}
	var conn net.Conn = c.c
	if k, ok := PeerKey(conn); !ok || !k.Equal(spub) {
		t.Errorf("PeerKey(client conn) = %x, %v", k, ok)
	}
	if _, ok := PeerKey(srv); ok {
		t.Error("PeerKey of a plain conn reported a key")
	}
	if v := c.c.ConnectionState().Version; v != tls.VersionTLS13 {
		t.Errorf("TLS version %x, want 1.3", v)
	}
	roundTrip(t, s.c, c.c)
	roundTrip(t, c.c, s.c)
}

func TestSecureVerifyPeerRejects(t *testing.T) {
	skey, ckey, other := newKey(t), newKey(t), newKey(t)
	pin := func(want ed25519.PrivateKey) func(ed25519.PublicKey) error {
		return func(k ed25519.PublicKey) error {
			if !k.Equal(want.Public()) {
				return errors.New("unexpected key")
			}
			return nil
		}
	}
	t.Run("server refuses client", func(t *testing.T) {
		srv, cli := tcpPair(t)
		s, c := handshakePair(testCtx(t), srv, cli,
			&SecureConfig{Key: skey, VerifyPeer: pin(other)},
			&SecureConfig{Key: ckey, VerifyPeer: pin(skey)})
		defer closeSecure(s.c, c.c)
		if s.err == nil || !strings.Contains(s.err.Error(), "unexpected key") {
			t.Errorf("Server: %v, want the VerifyPeer error", s.err)
		}
		if c.err == nil {
			// TLS 1.3: the client finished first; its first Read fails.
			_ = c.c.SetReadDeadline(time.Now().Add(10 * time.Second))
			if _, err := c.c.Read(make([]byte, 1)); err == nil || errors.Is(err, io.EOF) || errors.Is(err, os.ErrDeadlineExceeded) {
				t.Errorf("client Read after refusal: %v, want a TLS alert", err)
			}
		}
	})
	t.Run("client refuses server", func(t *testing.T) {
		srv, cli := tcpPair(t)
		s, c := handshakePair(testCtx(t), srv, cli,
			&SecureConfig{Key: skey, VerifyPeer: pin(ckey)},
			&SecureConfig{Key: ckey, VerifyPeer: pin(other)})
		defer closeSecure(s.c, c.c)
		if c.err == nil || !strings.Contains(c.err.Error(), "unexpected key") {
			t.Errorf("Client: %v, want the VerifyPeer error", c.err)
		}
		if c.err == nil || c.err.Error() != "unexpected key" {
			t.Errorf("Client: %v, want VerifyPeer's error as it is", c.err)
		}
		if s.err == nil {
			t.Error("Server succeeded after the client refused it")
		}
	})
}

// ecdsaCert makes a self-signed ECDSA certificate: the wrong kind of key.
func ecdsaCert(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func TestSecureRefusesOtherPeers(t *testing.T) {
	key := newKey(t)
	cert := ecdsaCert(t)
	edCert, err := selfSigned(newKey(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		peer *tls.Config
	}{
		{"ecdsa client", &tls.Config{InsecureSkipVerify: true, Certificates: []tls.Certificate{cert}}},
		{"client without certificate", &tls.Config{InsecureSkipVerify: true}},
		{"TLS 1.2 client", &tls.Config{InsecureSkipVerify: true, Certificates: []tls.Certificate{edCert}, MaxVersion: tls.VersionTLS12}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, cli := tcpPair(t)
			tc := tls.Client(cli, tt.peer)
			defer tc.Close()
			done := make(chan error, 1)
			go func() {
				_ = tc.HandshakeContext(testCtx(t))
				// With TLS 1.3 the refusal reaches the client on Read.
				_ = tc.SetReadDeadline(time.Now().Add(10 * time.Second))
				_, err := tc.Read(make([]byte, 1))
				done <- err
			}()
			sc, err := Server(testCtx(t), srv, &SecureConfig{Key: key})
			if err == nil {
				_ = sc.Close()
				t.Fatal("Server accepted the peer")
			}
			t.Logf("Server: %v", err)
			<-done
		})
	}
	t.Run("ecdsa server", func(t *testing.T) {
		srv, cli := tcpPair(t)
		ts := tls.Server(srv, &tls.Config{Certificates: []tls.Certificate{cert}, ClientAuth: tls.RequireAnyClientCert})
		defer ts.Close()
		done := make(chan struct{})
		go func() {
			defer close(done)
			_ = ts.HandshakeContext(testCtx(t))
		}()
		c, err := Client(testCtx(t), cli, &SecureConfig{Key: key})
		if err == nil {
			_ = c.Close()
			t.Fatal("Client accepted an ECDSA server")
		}
		t.Logf("Client: %v", err)
		<-done
	})
}

func TestPeerKeyChecks(t *testing.T) {
	good, err := selfSigned(newKey(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	der := good.Certificate[0]
	if _, _, err := peerKey([][]byte{der}); err != nil {
		t.Errorf("own certificate refused: %v", err)
	}
	tampered := bytes.Clone(der)
	tampered[len(tampered)-1] ^= 1 // in the signature
	for name, raw := range map[string][][]byte{
		"none":     nil,
		"two":      {der, der},
		"garbage":  {[]byte("not a certificate")},
		"ecdsa":    {ecdsaCert(t).Certificate[0]},
		"tampered": {tampered},
	} {
		if _, _, err := peerKey(raw); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestSecureHandshakeTimeout(t *testing.T) {
	key := newKey(t)
	for _, side := range []string{"server", "client"} {
		t.Run(side, func(t *testing.T) {
			srv, cli := tcpPair(t)
			defer srv.Close()
			defer cli.Close()
			cfg := &SecureConfig{Key: key, HandshakeTimeout: 200 * time.Millisecond}
			start := time.Now()
			var err error
			var c *SecureConn
			if side == "server" {
				c, err = Server(testCtx(t), srv, cfg) // cli stays silent
			} else {
				c, err = Client(testCtx(t), cli, cfg) // srv never answers
			}
			if err == nil {
				_ = c.Close()
				t.Fatal("handshake with a silent peer succeeded")
			}
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("error %v, want context.DeadlineExceeded", err)
			}
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("gave up after %v", d)
			}
		})
	}
	t.Run("ctx", func(t *testing.T) {
		srv, cli := tcpPair(t)
		defer cli.Close()
		ctx, cancel := context.WithTimeout(testCtx(t), 200*time.Millisecond)
		defer cancel()
		if c, err := Server(ctx, srv, &SecureConfig{Key: key}); !errors.Is(err, context.DeadlineExceeded) {
			if c != nil {
				_ = c.Close()
			}
			t.Errorf("error %v, want context.DeadlineExceeded", err)
		}
	})
}

func TestSecureCloseWrite(t *testing.T) {
	srv, cli := tcpPair(t)
	s, c := handshakePair(testCtx(t), srv, cli, &SecureConfig{Key: newKey(t)}, &SecureConfig{Key: newKey(t)})
	defer closeSecure(s.c, c.c)
	if err := errors.Join(s.err, c.err); err != nil {
		t.Fatal(err)
	}
	_ = s.c.SetDeadline(time.Now().Add(10 * time.Second))
	_ = c.c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c.c, "request"); err != nil {
		t.Fatal(err)
	}
	if err := c.c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(s.c) // ends at the client's close_notify
	if err != nil || string(got) != "request" {
		t.Fatalf("server read %q, %v", got, err)
	}
	if _, err := io.WriteString(s.c, "response"); err != nil {
		t.Fatal(err)
	}
	if err := s.c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	got, err = io.ReadAll(c.c)
	if err != nil || string(got) != "response" {
		t.Fatalf("client read %q, %v after its CloseWrite", got, err)
	}
	if _, err := io.WriteString(c.c, "more"); err == nil {
		t.Error("Write after CloseWrite succeeded")
	}
}

func TestSecureConfigNeedsKey(t *testing.T) {
	for _, cfg := range []*SecureConfig{nil, {}, {Key: ed25519.PrivateKey("short")}} {
		srv, cli := tcpPair(t)
		if c, err := Server(testCtx(t), srv, cfg); err == nil {
			_ = c.Close()
			t.Fatalf("Server with config %v succeeded", cfg)
		}
		// Server closed srv: the peer sees EOF.
		_ = cli.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := cli.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
			t.Errorf("peer read %v, want EOF", err)
		}
		_ = cli.Close()
	}
}

// TestSecureOverMailbox runs the whole stack of a secure login: a mailbox
// of a Mux, then TLS on the conns it hands out.
func TestSecureOverMailbox(t *testing.T) {
	for _, address := range []string{"127.0.0.1:0", unixAddr(t)} {
		m, addr := startMux(t, address, nil)
		box := announce(t, m, "login")
		srv, cli, err := connPair(box, func(ctx context.Context) (net.Conn, error) {
			return DialMailbox(ctx, addr, "login")
		})
		if err != nil {
			t.Fatal(err)
		}
		s, c := handshakePair(testCtx(t), srv, cli, &SecureConfig{Key: newKey(t)}, &SecureConfig{Key: newKey(t)})
		if err := errors.Join(s.err, c.err); err != nil {
			t.Fatal(err)
		}
		roundTrip(t, c.c, s.c)
		roundTrip(t, s.c, c.c)
		for _, sc := range []*SecureConn{s.c, c.c} {
			if _, ok := sc.NetConn().(*Conn); !ok {
				t.Errorf("NetConn of a SecureConn over a mailbox: %T, want *Conn", sc.NetConn())
			}
		}
		closeSecure(s.c, c.c)
	}
}

// TestSecureWriteTimeoutRecovers checks that a write deadline passing in
// the middle of a TLS record does not break the stream.
func TestSecureWriteTimeoutRecovers(t *testing.T) {
	srv, cli := tcpPair(t)
	s, c := handshakePair(testCtx(t), srv, cli, &SecureConfig{Key: newKey(t)}, &SecureConfig{Key: newKey(t)})
	defer closeSecure(s.c, c.c)
	if err := errors.Join(s.err, c.err); err != nil {
		t.Fatal(err)
	}
	pattern := func(i int) byte { return byte(i*7 + i/251) }
	chunk := make([]byte, 50_000) // not a multiple of the record size
	written := 0
	// The server does not read: the buffers fill and a write times out.
	_ = c.c.SetWriteDeadline(time.Now().Add(200 * time.Millisecond))
	for {
		for i := range chunk {
			chunk[i] = pattern(written + i)
		}
		n, err := c.c.Write(chunk)
		written += n
		if err != nil {
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() {
				t.Fatalf("Write: %v, want a timeout", err)
			}
			break
		}
		if written > 1<<30 {
			t.Fatal("no timeout after 1 GiB")
		}
	}
	if n, err := c.c.Write([]byte("x")); n != 0 || err == nil {
		t.Errorf("Write with a past deadline: %d, %v", n, err)
	}
	_ = c.c.SetWriteDeadline(time.Time{})

	readErr := make(chan error, 1)
	go func() {
		_ = s.c.SetReadDeadline(time.Now().Add(20 * time.Second))
		buf := make([]byte, written+3)
		if _, err := io.ReadFull(s.c, buf); err != nil {
			readErr <- err
			return
		}
		for i := range written {
			if buf[i] != pattern(i) {
				readErr <- errors.New("stream corrupted at byte " + strconv.Itoa(i))
				return
			}
		}
		if string(buf[written:]) != "end" {
			readErr <- errors.New("tail " + string(buf[written:]))
			return
		}
		readErr <- nil
	}()
	if _, err := io.WriteString(c.c, "end"); err != nil {
		t.Fatalf("Write after the timeout: %v", err)
	}
	if err := <-readErr; err != nil {
		t.Fatal(err)
	}
	t.Logf("%d bytes intact across the timeout", written)
}

// TestSecureCloseAfterWriteTimeout checks that Close keeps a write deadline
// that has passed: after a write timed out against a peer that does not
// read, Close gives up on the held tail (and close_notify) at once instead
// of trying to send them for the 5 s crypto/tls allows close_notify.
//
// What the test checks is that Close moves the socket's write deadline to
// no later point (crypto/tls's 5 s would be one), so that every write of
// Close fails at once; how long Close takes depends on the machine, and only
// a watchdog bounds it, for a Close that blocks on something else.
func TestSecureCloseAfterWriteTimeout(t *testing.T) {
	srv, cli := tcpPair(t)
	// Small fixed buffers: the kernel's autotuning would otherwise make room for the tail later.
	if err := errors.Join(srv.(*net.TCPConn).SetReadBuffer(8<<10), cli.(*net.TCPConn).SetWriteBuffer(8<<10)); err != nil {
		t.Fatal(err)
	}
	logged := &deadlineLog{TCPConn: cli.(*net.TCPConn)}
	s, c := handshakePair(testCtx(t), srv, logged, &SecureConfig{Key: newKey(t)}, &SecureConfig{Key: newKey(t)})
	defer closeSecure(s.c, c.c)
	if err := errors.Join(s.err, c.err); err != nil {
		t.Fatal(err)
	}
	if c.c.raw.direct == nil {
		t.Fatal("no direct I/O through the logging conn: the test would not run the path TCP conns take")
	}
	// The server does not read: the buffers fill and a write times out, leaving a tail held.
	_ = c.c.SetWriteDeadline(time.Now().Add(200 * time.Millisecond))
	chunk := make([]byte, 64<<10)
	for written := 0; ; {
		n, err := c.c.Write(chunk)
		written += n
		if err != nil {
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() {
				t.Fatalf("Write: %v, want a timeout", err)
			}
			break
		}
		if written > 1<<30 {
			t.Fatal("no timeout after 1 GiB")
		}
	}
	_ = c.c.SetWriteDeadline(time.Now()) // give up: Close must not wait
	logged.watch()
	closed := make(chan struct{})
	go func() {
		defer close(closed)
		_ = c.c.Close()
	}()
	select {
	case <-closed:
	case <-time.After(10 * time.Second): // watchdog
		t.Fatal("Close still blocked after 10 s")
	}
	if later := logged.later(); len(later) > 0 {
		t.Errorf("Close moved the socket's write deadline later, past the one that had passed: %s", strings.Join(later, ", "))
	}
}

// deadlineLog is a TCP conn that logs, once watch has been called, the write deadlines set on it
// that lie later than the time they are set (or are none): a write under one may wait.
type deadlineLog struct {
	*net.TCPConn // and its SyscallConn: a SecureConn over it reads and writes the descriptor
	mu           sync.Mutex
	watching     bool
	moved        []string
}

func (c *deadlineLog) watch() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.watching = true
}

func (c *deadlineLog) later() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.moved
}

func (c *deadlineLog) log(how string, d time.Time) {
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.watching {
		return
	}
	switch {
	case d.IsZero():
		c.moved = append(c.moved, how+"(none)")
	case d.After(now):
		c.moved = append(c.moved, fmt.Sprintf("%s(%v ahead)", how, d.Sub(now).Round(time.Millisecond)))
	}
}

func (c *deadlineLog) SetDeadline(d time.Time) error {
	c.log("SetDeadline", d)
	return c.TCPConn.SetDeadline(d)
}

func (c *deadlineLog) SetWriteDeadline(d time.Time) error {
	c.log("SetWriteDeadline", d)
	return c.TCPConn.SetWriteDeadline(d)
}

// hiddenConn hides its conn's descriptor, as a wrapper that changes Read must.
type hiddenConn struct{ net.Conn }

// A SecureConn reads and writes the descriptor directly when its conn exposes one, or is a
// mailbox conn over one (after the bytes the mailbox read ahead), and through the conn's own
// methods otherwise; the stream is the same either way.
func TestSecureDirectIO(t *testing.T) {
	skey, ckey := newKey(t), newKey(t)
	ctx := testCtx(t)
	roundTrip := func(t *testing.T, s, c *SecureConn) {
		t.Helper()
		_ = s.SetDeadline(time.Now().Add(30 * time.Second)) // watchdog
		_ = c.SetDeadline(time.Now().Add(30 * time.Second))
		msg := bytes.Repeat([]byte("direct "), 10000)
		go func() { _, _ = c.Write(msg) }()
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(s, got); err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("read %d bytes (%v), not what was written", len(got), err)
		}
	}

	t.Run("TCP", func(t *testing.T) {
		srv, cli := tcpPair(t)
		s, c := handshakePair(ctx, srv, cli, &SecureConfig{Key: skey}, &SecureConfig{Key: ckey})
		if err := errors.Join(s.err, c.err); err != nil {
			t.Fatal(err)
		}
		defer closeSecure(s.c, c.c)
		if s.c.raw.direct == nil || c.c.raw.direct == nil {
			t.Fatal("no direct I/O over TCP conns")
		}
		roundTrip(t, s.c, c.c)
	})

	t.Run("hidden descriptor", func(t *testing.T) {
		srv, cli := tcpPair(t)
		s, c := handshakePair(ctx, hiddenConn{srv}, hiddenConn{cli}, &SecureConfig{Key: skey}, &SecureConfig{Key: ckey})
		if err := errors.Join(s.err, c.err); err != nil {
			t.Fatal(err)
		}
		defer closeSecure(s.c, c.c)
		if s.c.raw.direct != nil || c.c.raw.direct != nil {
			t.Fatal("direct I/O on conns that do not expose their descriptor")
		}
		roundTrip(t, s.c, c.c)
	})

	t.Run("mailbox read-ahead", func(t *testing.T) {
		srv, cli := tcpPair(t)
		// The server takes the start of the ClientHello off the socket first, as the Mux does
		// with bytes past the name; the handshake fails unless they are read before the socket.
		ahead := make(chan []byte, 1)
		go func() {
			b := make([]byte, 20)
			_ = srv.SetReadDeadline(time.Now().Add(30 * time.Second))
			n, _ := io.ReadFull(srv, b)
			_ = srv.SetReadDeadline(time.Time{})
			ahead <- b[:n]
		}()
		cch := make(chan handshakeResult, 1)
		go func() {
			c, err := Client(ctx, cli, &SecureConfig{Key: ckey})
			cch <- handshakeResult{c, err}
		}()
		mc := newConn(srv, <-ahead)
		s, err := Server(ctx, mc, &SecureConfig{Key: skey})
		c := <-cch
		if err := errors.Join(err, c.err); err != nil {
			closeSecure(s, c.c)
			t.Fatal(err)
		}
		defer closeSecure(s, c.c)
		if s.raw.direct == nil || mc.buffered() != 0 {
			t.Fatalf("direct %v, %d bytes still read ahead", s.raw.direct != nil, mc.buffered())
		}
		roundTrip(t, s, c.c)
	})
}

// opaqueSigner holds an ed25519 key behind crypto.Signer only, as an agent's or another
// process's key is: the handshake must not need the private key's bytes.
type opaqueSigner struct {
	key   ed25519.PrivateKey
	signs int
}

func (s *opaqueSigner) Public() crypto.PublicKey { return s.key.Public() }
func (s *opaqueSigner) Sign(r io.Reader, msg []byte, o crypto.SignerOpts) ([]byte, error) {
	s.signs++
	return s.key.Sign(r, msg, o)
}

func TestSecureSignerKey(t *testing.T) {
	ss, cs := &opaqueSigner{key: newKey(t)}, &opaqueSigner{key: newKey(t)}
	srv, cli := tcpPair(t)
	s, c := handshakePair(testCtx(t), srv, cli, &SecureConfig{Key: ss}, &SecureConfig{Key: cs})
	defer closeSecure(s.c, c.c)
	if err := errors.Join(s.err, c.err); err != nil {
		t.Fatal(err)
	}
	if !s.c.PeerKey().Equal(cs.key.Public()) || !c.c.PeerKey().Equal(ss.key.Public()) {
		t.Error("the peers' keys are not the signers' keys")
	}
	if ss.signs == 0 || cs.signs == 0 {
		t.Errorf("signers used %d (server) and %d (client) times, want both", ss.signs, cs.signs)
	}
	roundTrip(t, s.c, c.c)
}

func TestSecureRefusesOtherKeyTypes(t *testing.T) {
	ek, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	srv, cli := tcpPair(t)
	defer srv.Close()
	_, err = Client(testCtx(t), cli, &SecureConfig{Key: ek})
	if err == nil || !strings.Contains(err.Error(), "want ed25519") {
		t.Errorf("Client with an ECDSA key: %v, want a refusal naming ed25519", err)
	}
}
