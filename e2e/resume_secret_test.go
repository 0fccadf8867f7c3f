package e2e

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/rlogin-go/rlogin/internal/logintest"
	"github.com/rlogin-go/rlogin/internal/termtest"
	"github.com/rlogin-go/rlogin/keys"
	"github.com/rlogin-go/rlogin/session"
	"github.com/rlogin-go/rlogin/transport"
)

// The resume secret is the test's to steal: a client of the session package, whose plaintext
// the test reads, logs in and resumes; others present what it got.

// sessionDialer makes the connections of the test's own session clients to rlogind at addr,
// whose host key is hostKey.
type sessionDialer struct {
	addr    string
	hostKey ed25519.PublicKey
}

// dial connects from the loopback address source (each refused attempt of a test comes from an
// address of its own, so that the penalties rlogind charges a source for failures do not turn
// away the next), asks for the login mailbox and runs the TLS handshake with key.
func (sd sessionDialer) dial(ctx context.Context, source string, key ed25519.PrivateKey) (*recordingConn, error) {
	return sd.dialVerify(ctx, source, key, func(pub ed25519.PublicKey) error {
		if !pub.Equal(sd.hostKey) {
			return errors.New("not the test's rlogind")
		}
		return nil
	})
}

// dialVerify is dial with verify checking the server's key.
func (sd sessionDialer) dialVerify(ctx context.Context, source string, key ed25519.PrivateKey, verify func(ed25519.PublicKey) error) (*recordingConn, error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(source)}}
	raw, err := d.DialContext(ctx, "tcp", sd.addr)
	if err != nil {
		return nil, err
	}
	if err := transport.RequestMailbox(ctx, raw, "login"); err != nil {
		_ = raw.Close()
		return nil, err
	}
	sc, err := transport.Client(ctx, raw, &transport.SecureConfig{Key: key, VerifyPeer: verify})
	if err != nil {
		return nil, err
	}
	return &recordingConn{Conn: sc, raw: raw}, nil
}

// recordingConn is a secure conn that keeps a copy of the plaintext it reads.
type recordingConn struct {
	net.Conn
	raw net.Conn // the TCP connection under TLS

	mu   sync.Mutex
	read []byte
}

func (c *recordingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.mu.Lock()
	c.read = append(c.read, p[:n]...)
	c.mu.Unlock()
	return n, err
}

// lose closes the TCP connection under TLS, without a word: to the session, a lost connection.
func (c *recordingConn) lose() { _ = c.raw.Close() }

// resumable returns the session id and the secret of the RESUMABLE frame (0x17, docs/protocol.md)
// that the server sent on c: after the version byte, frames of a type byte, a 24-bit length and
// the payload of 16 bytes of id, 32 of secret and the timeout.
func (c *recordingConn) resumable(t *testing.T) (session.SessionID, []byte) {
	t.Helper()
	var id session.SessionID
	var secret []byte
	waitFor(t, "a RESUMABLE frame from rlogind", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		if len(c.read) == 0 || c.read[0] != 1 {
			return false
		}
		for p := c.read[1:]; len(p) >= 4; {
			n := int(p[1])<<16 | int(p[2])<<8 | int(p[3])
			if len(p) < 4+n {
				return false
			}
			if p[0] == 0x17 && n == 16+session.ResumeSecretSize+4 {
				copy(id[:], p[4:20])
				secret = slices.Clone(p[20 : 20+session.ResumeSecretSize])
				return true
			}
			p = p[4+n:]
		}
		return false
	})
	return id, secret
}

// daemonHostKey reads the public host key at path (OpenSSH format).
func daemonHostKey(t *testing.T, path string) ed25519.PublicKey {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pub, _, _, _, err := ssh.ParseAuthorizedKey(b)
	if err != nil {
		t.Fatal(err)
	}
	return pub.(ssh.CryptoPublicKey).CryptoPublicKey().(ed25519.PublicKey)
}

func newEd25519(t *testing.T) ed25519.PrivateKey {
	t.Helper()
	_, key, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// resumingClient is the victim: a session of the session package that resumes by itself
// after a lost connection, from 127.0.0.1, whose every connection the test can read.
type resumingClient struct {
	*logintest.Remote
	mu    sync.Mutex
	conns []*recordingConn // the first connection, then each one it resumed on
}

// startResumingClient logs in as req.User with key and waits for the shell.
func startResumingClient(t *testing.T, sd sessionDialer, key ed25519.PrivateKey, req session.Request) *resumingClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), shortTimeout)
	defer cancel()
	first, err := sd.dial(ctx, "127.0.0.1", key)
	if err != nil {
		t.Fatal(err)
	}
	rc := &resumingClient{conns: []*recordingConn{first}}
	c := session.NewClient(first, req)
	c.Signer = key // as rlogin: a monitor that did not see the TLS handshake asks for a proof
	c.Reconnect = func(ctx context.Context, attempt int, cause error) (net.Conn, error) {
		if attempt > 3 {
			return nil, fmt.Errorf("gave up after %d tries: %w", attempt-1, cause)
		}
		conn, err := sd.dial(ctx, "127.0.0.1", key)
		if err == nil {
			rc.mu.Lock()
			rc.conns = append(rc.conns, conn)
			rc.mu.Unlock()
		}
		return conn, err
	}
	out := &termtest.Buffer{}
	c.Stdout = out
	rc.Remote, err = logintest.StartClient(t, c, out)
	if err != nil {
		t.Fatalf("login: %v", err)
	}
	rc.Ready()
	if _, _, ok := c.Resumable(); !ok {
		t.Fatal("rlogind did not accept capability resume")
	}
	return rc
}

// conn is the client's n-th connection (0: the first), once it has it.
func (rc *resumingClient) conn(t *testing.T, n int) *recordingConn {
	t.Helper()
	var c *recordingConn
	waitFor(t, fmt.Sprintf("connection %d of the client", n), func() bool {
		rc.mu.Lock()
		defer rc.mu.Unlock()
		if len(rc.conns) > n {
			c = rc.conns[n]
		}
		return c != nil
	})
	return c
}

// alive checks that the session still answers its own client.
func (rc *resumingClient) alive(t *testing.T, after string) {
	t.Helper()
	rc.Send("echo STILL$((40+2)) " + after + "\n")
	rc.Expect(`STILL42 ` + after)
}

// thief is a login that presents a resume request it must get nothing for.
type thief struct {
	name   string
	source string // its loopback address
	user   string
	key    ed25519.PrivateKey
	// reason is the refusal expected; "" takes any refusal (a login refused before the
	// session is looked up says why in its own words).
	reason string
	// resume is what it presents, made from the session's id and its first secret; nil asks
	// for a LIST instead, which must succeed and not show the session.
	resume func(id session.SessionID, secret []byte) *session.ResumeRequest
}

// withSecret presents the session's id and the secret.
func withSecret(id session.SessionID, secret []byte) *session.ResumeRequest {
	return &session.ResumeRequest{ID: id, Secret: secret}
}

// withoutSecret asks for a reattach of the session (no secret: the same user only).
func withoutSecret(id session.SessionID, _ []byte) *session.ResumeRequest {
	return &session.ResumeRequest{ID: id}
}

// refused checks that th gets nothing for the session id, whose first secret was secret.
func (th thief) refused(t *testing.T, sd sessionDialer, id session.SessionID, secret []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), shortTimeout)
	defer cancel()
	conn, err := sd.dial(ctx, th.source, th.key)
	if err != nil {
		t.Fatalf("%s: %v", th.name, err)
	}
	req := session.Request{User: th.user, Term: "xterm", Window: session.WindowSize{Rows: 24, Cols: 80}}
	c := session.NewClient(conn, req)
	c.Signer = th.key
	defer c.Close()
	if th.resume == nil {
		list, err := c.ListSessions(ctx)
		if err != nil {
			t.Errorf("%s: LIST: %v", th.name, err)
		}
		for _, si := range list {
			if si.ID == id {
				t.Errorf("%s: LIST shows the session: %+v", th.name, si)
			}
		}
		return
	}
	c.Resume = th.resume(id, secret)
	err = c.Start(ctx)
	var refused *session.RefusedError
	switch {
	case !errors.As(err, &refused):
		t.Errorf("%s: the resume was not refused: %v", th.name, err)
	case th.reason != "" && refused.Reason != th.reason:
		t.Errorf("%s: refused with %q, want %q", th.name, refused.Reason, th.reason)
	default:
		t.Logf("%s: refused: %q", th.name, refused.Reason)
	}
}

// noSession is the one refusal of a resume that cannot be served, whatever the reason.
const noSession = "no such session"

// TestResumeSecretRefused: in user mode (one user), what a resume secret is not good for: a
// wrong secret; the right one with a key that is not authorized; a replay of a secret already
// used for a resume (each connection gets a fresh one); any secret once the session ended.
// (Another user with the right secret: TestSeparatedResume, in system mode.)
func TestResumeSecretRefused(t *testing.T) {
	home := newHome(t)
	key := newEd25519(t)
	writeFile(t, filepath.Join(home, ".rlogin", "authorized_keys"), string(keys.MarshalAuthorizedKey(key.Public().(ed25519.PublicKey), "victim")))
	d := startDaemon(t, home, "", append(append([]string{}, serverAlive...), detachFlags...)...)
	sd := sessionDialer{addr: d.addr, hostKey: daemonHostKey(t, filepath.Join(home, ".rlogin", "rlogind_host_ed25519_key.pub"))}
	user := logintest.CurrentUser(t)
	secretRefusals(t, sd, d.log.String, user, key,
		thief{name: "a key not authorized, with the secret", source: "127.0.0.4", user: user, key: newEd25519(t), resume: withSecret},
		thief{name: "a key not authorized, reattaching", source: "127.0.0.5", user: user, key: newEd25519(t), resume: withoutSecret},
	)
}

// secretRefusals logs in as user with key (the victim) to the rlogind at sd, whose log is
// logText, and checks what the session's secret is not good for: thieves first, then a wrong
// secret, then (after the victim lost its connection and resumed, getting a new secret) a
// replay of the first secret, and any secret once the session ended, each with the victim's own
// key. The session goes on with its own client throughout, and no secret is in the log.
func secretRefusals(t *testing.T, sd sessionDialer, logText func() string, user string, key ed25519.PrivateKey, thieves ...thief) {
	t.Helper()
	victim := startResumingClient(t, sd, key, session.Request{User: user, Term: "xterm", Window: session.WindowSize{Rows: 24, Cols: 80}})
	id, secret1 := victim.conn(t, 0).resumable(t)
	wrong := make([]byte, session.ResumeSecretSize)
	_, _ = rand.Read(wrong)
	thieves = append(thieves, thief{name: "the same key with a wrong secret", source: "127.0.0.3", user: user, key: key, reason: noSession,
		resume: func(id session.SessionID, _ []byte) *session.ResumeRequest { return withSecret(id, wrong) }})
	for _, th := range thieves {
		th.refused(t, sd, id, secret1)
		victim.alive(t, strings.ReplaceAll(th.source, ".", "-"))
	}

	// The victim's connection is lost; it resumes, and gets a new secret.
	victim.conn(t, 0).lose()
	_, secret2 := victim.conn(t, 1).resumable(t)
	victim.alive(t, "resumed")
	if slices.Equal(secret1, secret2) {
		t.Error("the resumed connection got the same secret")
	}
	replay := thief{name: "the same key replaying the used secret", source: "127.0.0.6", user: user, key: key, reason: noSession, resume: withSecret}
	replay.refused(t, sd, id, secret1)
	victim.alive(t, "replay")

	victim.ExitWith(0)
	// Once the server has ended the session (it lists it no more), its last secret is no good.
	waitFor(t, "the ended session to leave the list", func() bool { return !listed(t, sd, user, key, id) })
	ended := thief{name: "the same key with the last secret, after the end", source: "127.0.0.7", user: user, key: key, reason: noSession, resume: withSecret}
	ended.refused(t, sd, id, secret2)
	checkNoSecret(t, logText(), secret1, secret2)
}

// listed reports whether user's list of sessions, asked for with key, holds id.
func listed(t *testing.T, sd sessionDialer, user string, key ed25519.PrivateKey, id session.SessionID) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), shortTimeout)
	defer cancel()
	conn, err := sd.dial(ctx, "127.0.0.1", key)
	if err != nil {
		t.Fatal(err)
	}
	c := session.NewClient(conn, session.Request{User: user, Term: "xterm", Window: session.WindowSize{Rows: 24, Cols: 80}})
	c.Signer = key
	list, err := c.ListSessions(ctx)
	if err != nil {
		t.Fatalf("LIST: %v", err)
	}
	return slices.ContainsFunc(list, func(si session.SessionInfo) bool { return si.ID == id })
}

// checkNoSecret checks that the log text holds none of the secrets, in hex, base64 or raw.
func checkNoSecret(t *testing.T, text string, secrets ...[]byte) {
	t.Helper()
	for _, secret := range secrets {
		for _, form := range []string{hex.EncodeToString(secret), base64.StdEncoding.EncodeToString(secret),
			base64.RawURLEncoding.EncodeToString(secret), string(secret)} {
			if strings.Contains(text, form) {
				t.Errorf("rlogind's log holds a resume secret (%q):\n%s", form, text)
			}
		}
	}
}
