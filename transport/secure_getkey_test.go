package transport

import (
	"crypto"
	"crypto/ed25519"
	"errors"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"golang.org/x/crypto/ssh"
)

// firstReadConn closes got when a Read first returns bytes: the peer's first message has come.
type firstReadConn struct {
	net.Conn
	once sync.Once
	got  chan struct{}
}

func (c *firstReadConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.once.Do(func() { close(c.got) })
	}
	return n, err
}

// TestSecureGetKeyOverlapsFirstRoundTrip: a client with GetKey sends its ClientHello before it
// has its key (GetKey returns only once the server has read that message; a client that waited
// for the key first would never get there), presents the key GetKey returns, and asks
// VerifyPeer only after GetKey has returned.
func TestSecureGetKeyOverlapsFirstRoundTrip(t *testing.T) {
	skey, ckey := newKey(t), newKey(t)
	srv, cli := tcpPair(t)
	hello := &firstReadConn{Conn: srv, got: make(chan struct{})}
	var keyFound atomic.Bool
	var verifiedAfterKey atomic.Bool
	ccfg := &SecureConfig{
		GetKey: func() (crypto.Signer, *ssh.Certificate, error) {
			<-hello.got // the watchdog of testCtx ends a wait that never ends
			keyFound.Store(true)
			return ckey, nil, nil
		},
		VerifyPeer: func(ed25519.PublicKey) error { verifiedAfterKey.Store(keyFound.Load()); return nil },
	}
	scfg := &SecureConfig{GetKey: func() (crypto.Signer, *ssh.Certificate, error) { return skey, nil, nil }}
	s, c := handshakePair(testCtx(t), hello, cli, scfg, ccfg)
	defer closeSecure(s.c, c.c)
	if err := errors.Join(s.err, c.err); err != nil {
		t.Fatal(err)
	}
	if got, want := s.c.PeerKey(), ckey.Public().(ed25519.PublicKey); !got.Equal(want) {
		t.Errorf("server sees client key %x, want GetKey's %x", got, want)
	}
	if got, want := c.c.PeerKey(), skey.Public().(ed25519.PublicKey); !got.Equal(want) {
		t.Errorf("client sees server key %x, want the server's GetKey's %x", got, want)
	}
	if !verifiedAfterKey.Load() {
		t.Error("VerifyPeer was called before GetKey returned")
	}
	roundTrip(t, s.c, c.c)
}

// TestSecureGetKeyError: GetKey's error fails the handshake, returned as it is, with the peer
// never verified; the conn is closed.
func TestSecureGetKeyError(t *testing.T) {
	for _, side := range []string{"client", "server"} {
		t.Run(side, func(t *testing.T) {
			noKey := errors.New("no key for you")
			var verified atomic.Bool
			failing := &SecureConfig{
				GetKey:     func() (crypto.Signer, *ssh.Certificate, error) { return nil, nil, noKey },
				VerifyPeer: func(ed25519.PublicKey) error { verified.Store(true); return nil },
			}
			scfg, ccfg := &SecureConfig{Key: newKey(t)}, failing
			if side == "server" {
				scfg, ccfg = failing, &SecureConfig{Key: newKey(t)}
			}
			srv, cli := tcpPair(t)
			s, c := handshakePair(testCtx(t), srv, cli, scfg, ccfg)
			closeSecure(s.c, c.c)
			mine, theirs := c, s
			if side == "server" {
				mine, theirs = s, c
			}
			if mine.err != noKey {
				t.Errorf("%s: error %v, want GetKey's own", side, mine.err)
			}
			if theirs.err == nil {
				t.Errorf("the %s's peer completed the handshake", side)
			}
			if verified.Load() {
				t.Error("the peer's key was verified although GetKey failed")
			}
		})
	}
}

// TestSecureGetKeyConfigErrors: GetKey is one way to give the key, Key and Certificate the
// other; and what GetKey returns is checked as Key is.
func TestSecureGetKeyConfigErrors(t *testing.T) {
	key := newKey(t)
	returns := func(k crypto.Signer) func() (crypto.Signer, *ssh.Certificate, error) {
		return func() (crypto.Signer, *ssh.Certificate, error) { return k, nil, nil }
	}
	for _, tc := range []struct {
		name string
		cfg  *SecureConfig
		want string
	}{
		{"GetKey and Key", &SecureConfig{Key: key, GetKey: returns(key)}, "set one way"},
		{"GetKey and Certificate", &SecureConfig{Certificate: &ssh.Certificate{}, GetKey: returns(key)}, "set one way"},
		{"GetKey returns nil", &SecureConfig{GetKey: returns(nil)}, "GetKey returned no key"},
		{"GetKey returns a short key", &SecureConfig{GetKey: returns(ed25519.PrivateKey("short"))}, "needs an ed25519 Key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, cli := tcpPair(t)
			s, c := handshakePair(testCtx(t), srv, cli, &SecureConfig{Key: newKey(t)}, tc.cfg)
			closeSecure(s.c, c.c)
			if c.err == nil || !strings.Contains(c.err.Error(), tc.want) {
				t.Errorf("client error %v, want one saying %q", c.err, tc.want)
			}
		})
	}
}
