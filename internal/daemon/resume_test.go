package daemon

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rlogin-go/rlogin/internal/admission"
	"github.com/rlogin-go/rlogin/internal/logintest"
	"github.com/rlogin-go/rlogin/internal/termtest"
	"github.com/rlogin-go/rlogin/keys"
	"github.com/rlogin-go/rlogin/session"
	"github.com/rlogin-go/rlogin/transport"
)

// A resumer is a terminal session whose client offers resume (it has a Reconnect), over a TCP
// connection the test can cut; after a cut the client reconnects once the test lets it (next).
type resumer struct {
	*logintest.Remote
	t    *testing.T
	ts   *testServer
	key  ed25519.PrivateKey
	c    *session.Client
	out  *termtest.Buffer // the terminal's output
	wire *termtest.Buffer // what the server sent on every connection, decrypted

	mu      sync.Mutex
	raw     net.Conn      // the TCP conn in use
	proceed chan struct{} // each value lets one reconnection go
}

// loginResumable logs in to ts as its user with its client key, from 127.0.0.1, offering
// resume.
func (ts *testServer) loginResumable(t *testing.T) *resumer {
	t.Helper()
	return ts.loginResumableAs(t, ts.srv.User(), ts.clientKey)
}

// loginResumableAs is loginResumable as user, with key.
func (ts *testServer) loginResumableAs(t *testing.T, user string, key ed25519.PrivateKey) *resumer {
	t.Helper()
	rs := &resumer{t: t, ts: ts, key: key, wire: &termtest.Buffer{}, proceed: make(chan struct{}, 1)}
	conn, err := rs.dial(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	rs.c = session.NewClient(conn, ts.request(user))
	rs.c.Reconnect = func(ctx context.Context, attempt int, cause error) (net.Conn, error) {
		select {
		case <-rs.proceed:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		return rs.dial(ctx)
	}
	rs.out = &termtest.Buffer{}
	rs.c.Stdout = rs.out
	rs.Remote, err = logintest.StartClient(t, rs.c, rs.out)
	if err != nil {
		t.Fatalf("login: %v\nlog:\n%s", err, ts.log.String())
	}
	if _, _, ok := rs.c.Resumable(); !ok {
		t.Fatal("the server did not accept capability resume")
	}
	return rs
}

// dial connects to the login mailbox with the client key, recording what the server sends.
func (rs *resumer) dial(ctx context.Context) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, shortTimeout)
	defer cancel()
	raw, err := transport.DialMailbox(ctx, rs.ts.addr, MailboxName)
	if err != nil {
		return nil, err
	}
	rs.mu.Lock()
	rs.raw = raw
	rs.mu.Unlock()
	sc, err := secureClient(ctx, raw, rs.ts, rs.key)
	if err != nil {
		return nil, err
	}
	return recordingConn{sc, rs.wire}, nil
}

// secureClient runs the client's TLS handshake on conn with key, pinning ts's host key.
func secureClient(ctx context.Context, conn net.Conn, ts *testServer, key ed25519.PrivateKey) (*transport.SecureConn, error) {
	return transport.Client(ctx, conn, &transport.SecureConfig{
		Key: key,
		VerifyPeer: func(pub ed25519.PublicKey) error {
			if !pub.Equal(pubOf(ts.hostKey)) {
				return errors.New("not the test server's host key")
			}
			return nil
		},
	})
}

// cut breaks the connection under the session, as a path that fails does, without a word of
// the session protocol.
func (rs *resumer) cut() {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	_ = rs.raw.Close()
}

// reconnect lets the client reconnect after a cut.
func (rs *resumer) reconnect() { rs.proceed <- struct{}{} }

// id is the session's id, as the server sent it.
func (rs *resumer) id() session.SessionID {
	id, _, _ := rs.c.Resumable()
	return id
}

// secrets returns every resume secret the server sent (RESUMABLE: type 0x17, 52 bytes: the id,
// the secret, the timeout), read off the decrypted stream.
func (rs *resumer) secrets() [][]byte {
	id := rs.id()
	head := append([]byte{0x17, 0, 0, 52}, id[:]...)
	var secrets [][]byte
	wire := []byte(rs.wire.String())
	for {
		i := bytes.Index(wire, head)
		if i < 0 || len(wire) < i+len(head)+session.ResumeSecretSize {
			return secrets
		}
		wire = wire[i+len(head):]
		secrets = append(secrets, bytes.Clone(wire[:session.ResumeSecretSize]))
	}
}

// pid asks the shell for its pid.
func (rs *resumer) pid() int {
	rs.t.Helper()
	rs.Send("echo PID=$((0+$$))\n")
	pid, _ := strconv.Atoi(rs.Expect(`PID=(\d+)`)[1])
	return pid
}

// recordingConn copies what it reads to rec.
type recordingConn struct {
	net.Conn
	rec io.Writer
}

func (c recordingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	_, _ = c.rec.Write(p[:n])
	return n, err
}

// CloseWrite keeps the conn's half-close.
func (c recordingConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// seqOutput is what `seq 1 n` writes on a terminal.
func seqOutput(n int) string {
	var b strings.Builder
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "%d\r\n", i)
	}
	return b.String()
}

// TestResumeContinuesSession: a session whose connection is cut detaches, its shell running and
// writing; its client resumes it on a new connection, and gets the same shell and every byte
// once, in order. The log has the detach and the resume, with the addresses, and no secret.
func TestResumeContinuesSession(t *testing.T) {
	ts := startServer(t, nil)
	rs := ts.loginResumable(t)
	rs.Ready()
	pid := rs.pid()
	marker := filepath.Join(ts.home, "written")
	rs.Send("sleep 1; seq 1 3000; echo SEQ-$((1+1))-END; : >written\n")
	rs.Expect(`SEQ-\$\(\(1\+1\)\)-END`) // the echo: the line reached the shell
	rs.cut()
	ts.waitLog(`msg="session detached".*id=` + rs.id().Short() + `.*peer=127\.0\.0\.1:\d+ cause=`)
	waitFor(t, "the shell to write while detached", func() bool { _, err := os.Stat(marker); return err == nil })
	rs.reconnect()
	rs.Expect(`SEQ-2-END`)
	if got := rs.pid(); got != pid {
		t.Errorf("the shell after the resume is pid %d, want %d", got, pid)
	}
	out := rs.out.String()
	if n := strings.Count(out, seqOutput(3000)+"SEQ-2-END"); n != 1 {
		t.Errorf("the output written while detached appears %d times in full, want once:\n%q", n, tail(out, 3000))
	}
	ts.waitLog(`msg="session resumed".*id=` + rs.id().Short() + `.*peer=127\.0\.0\.1:\d+ skipped=0`)
	rs.ExitWith(3)
	ts.waitLog(`msg="session ended".*status=3`)
	checkNoSecret(t, ts, rs.secrets(), 2)
}

// checkNoSecret checks that the server sent at least n secrets and logged none, in any form.
func checkNoSecret(t *testing.T, ts *testServer, secrets [][]byte, n int) {
	t.Helper()
	if len(secrets) < n {
		t.Fatalf("%d resume secrets seen on the wire, want %d", len(secrets), n)
	}
	log := ts.log.String()
	for _, s := range secrets {
		for _, form := range []string{string(s), hex.EncodeToString(s), base64.StdEncoding.EncodeToString(s),
			base64.RawStdEncoding.EncodeToString(s), base64.URLEncoding.EncodeToString(s), base64.RawURLEncoding.EncodeToString(s),
			fmt.Sprint(s), fmt.Sprintf("%q", s), fmt.Sprintf("%x", s[:8])} {
			if strings.Contains(log, form) {
				t.Fatalf("the log has a resume secret (%q):\n%s", form, log)
			}
		}
	}
}

// startAs starts a session.Client with req on a new connection from 127.0.0.1 with key, and
// returns Start's error, and the remote once started.
func (ts *testServer) startAs(t *testing.T, key ed25519.PrivateKey, req session.Request) (*logintest.Remote, error) {
	t.Helper()
	conn, err := dialSecure(t, ts.addr, pubOf(ts.hostKey), key)
	if err != nil {
		t.Fatal(err)
	}
	return logintest.Start(t, conn, req)
}

// list asks ts for the sessions of its user with key.
func (ts *testServer) list(t *testing.T, key ed25519.PrivateKey) ([]session.SessionInfo, error) {
	t.Helper()
	return ts.listAs(t, ts.srv.User(), key)
}

// listAs asks ts for the sessions of user with key.
func (ts *testServer) listAs(t *testing.T, user string, key ed25519.PrivateKey) ([]session.SessionInfo, error) {
	t.Helper()
	conn, err := dialSecure(t, ts.addr, pubOf(ts.hostKey), key)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), shortTimeout)
	defer cancel()
	return session.ListSessions(ctx, conn, ts.request(user))
}

// resumeAs asks ts, as user with key, to resume the session id with secret (nil: reattach),
// and returns the refusal; a resume accepted is closed at once, and an error.
func (ts *testServer) resumeAs(t *testing.T, user string, key ed25519.PrivateKey, id session.SessionID, secret []byte) error {
	t.Helper()
	req := ts.request(user)
	req.Resume = &session.ResumeRequest{ID: id, Secret: secret}
	r, err := ts.startAs(t, key, req)
	if err == nil {
		_ = r.Close()
		return errors.New("accepted")
	}
	return err
}

// refused reports whether err is a refusal with reason.
func refused(err error, reason string) bool {
	var re *session.RefusedError
	return errors.As(err, &re) && re.Reason == reason
}

// TestReattachTakesOver: a new client of the same user lists the sessions and takes one over:
// the same shell, and the client attached until then is told who took it.
func TestReattachTakesOver(t *testing.T) {
	ts := startServer(t, nil)
	first := ts.loginResumable(t)
	first.Ready()
	pid := first.pid()
	list, err := ts.list(t, ts.clientKey)
	if err != nil {
		t.Fatalf("list: %v", err)
	}
	if len(list) != 1 || list[0].ID != first.id() || !list[0].Attached || list[0].PID != pid || list[0].What != "xterm" ||
		!strings.HasPrefix(list[0].Peer, "127.0.0.1:") || !list[0].Detached.IsZero() || time.Since(list[0].Started) > time.Minute {
		t.Fatalf("list %+v, want the one attached session, pid %d", list, pid)
	}
	ts.waitLog(`msg="sessions listed".*sessions=1`)

	req := ts.request(ts.srv.User())
	req.Resume = &session.ResumeRequest{ID: first.id()}
	second, err := ts.startAs(t, ts.clientKey, req)
	if err != nil {
		t.Fatalf("reattach: %v\nlog:\n%s", err, ts.log.String())
	}
	err = first.Wait()
	if err == nil || !regexp.MustCompile(`taken over from 127\.0\.0\.1:\d+`).MatchString(err.Error()) {
		t.Errorf("the first client ended with %v, want \"taken over from 127.0.0.1:PORT\"", err)
	}
	second.Send("echo PID=$((0+$$))\n")
	if got := second.Expect(`PID=(\d+)`)[1]; got != strconv.Itoa(pid) {
		t.Errorf("the reattached shell is pid %s, want %d", got, pid)
	}
	ts.waitLog(`msg="session reattached".*id=` + first.id().Short() + `.*peer=127\.0\.0\.1:\d+ skipped=0 new_conn=\d+ took_over_from=127\.0\.0\.1:\d+`)
	second.ExitWith(0)
	ts.waitLog(`msg="session ended"`)
	if list, err := ts.list(t, ts.clientKey); err != nil || len(list) != 0 {
		t.Errorf("list after the end: %+v, %v; want none", list, err)
	}
}

// TestResumeRefusals: a resume needs the login of a key that may log in, checked before the
// session is looked up; then a session that does not exist, a wrong secret and a secret of a
// connection that was given up all get "no such session", and count as failed logins.
func TestResumeRefusals(t *testing.T) {
	ts := startServer(t, func(c *Config) {
		c.PerSourcePenalties = &admission.Penalties{AuthFail: time.Hour, NoAuth: time.Hour, Max: time.Hour}
	})
	rs := ts.loginResumable(t)
	rs.Ready()
	id := rs.id()
	resume := func(key ed25519.PrivateKey, id session.SessionID, secret []byte) error {
		t.Helper()
		return ts.resumeAs(t, ts.srv.User(), key, id, secret)
	}

	stranger := newKey(t)
	if err := resume(stranger, id, nil); !refused(err, reasonDenied) {
		t.Errorf("reattach with a key not authorized: %v, want %q", err, reasonDenied)
	}
	if err := resume(stranger, id, rs.secrets()[0]); !refused(err, reasonDenied) {
		t.Errorf("resume with a key not authorized and the right secret: %v, want %q", err, reasonDenied)
	}
	ts.waitLog(`msg="authentication failed".*key=` + regexp.QuoteMeta(keys.Fingerprint(pubOf(stranger))))
	if strings.Contains(ts.log.String(), "resume refused") {
		t.Fatal("a key not authorized got as far as the lookup of the session")
	}

	var unknown session.SessionID
	copy(unknown[:], "not a session id")
	wrong := bytes.Repeat([]byte{0x5a}, session.ResumeSecretSize)
	for name, err := range map[string]error{
		"an unknown session":           resume(ts.clientKey, unknown, nil),
		"an unknown session, a secret": resume(ts.clientKey, unknown, rs.secrets()[0]),
		"a wrong secret":               resume(ts.clientKey, id, wrong),
	} {
		if !refused(err, "no such session") {
			t.Errorf("%s: %v, want \"no such session\"", name, err)
		}
	}
	// The session is untouched.
	rs.Ready()

	// After a resume, the secret of the connection given up is dead.
	old := rs.secrets()[0]
	rs.cut()
	ts.waitLog(`msg="session detached"`)
	rs.reconnect()
	rs.Ready()
	if err := resume(ts.clientKey, id, old); !refused(err, "no such session") {
		t.Errorf("a replayed secret: %v, want \"no such session\"", err)
	}
	rs.Ready()

	// A refused resume is a failed login: its source is penalized.
	req := ts.request(ts.srv.User())
	req.Resume = &session.ResumeRequest{ID: unknown}
	c := dialFrom(t, ts.addr, "127.0.0.2")
	ctx, cancel := context.WithTimeout(context.Background(), shortTimeout)
	defer cancel()
	if err := transport.RequestMailbox(ctx, c, MailboxName); err != nil {
		t.Fatal(err)
	}
	sc, err := secureClient(ctx, c, ts, ts.clientKey)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := logintest.Start(t, sc, req); !refused(err, "no such session") {
		t.Fatalf("resume from 127.0.0.2: %v", err)
	}
	ts.waitLog(`msg="source penalized.*source=127.0.0.2/32 reason="failed authentication"`)
	rs.ExitWith(0)
	checkNoSecret(t, ts, rs.secrets(), 2)
}

// TestListKeyOptions: a key that forces a command, or allows no terminal, sees and has none
// of the sessions of a plain key.
func TestListKeyOptions(t *testing.T) {
	ts := startServer(t, nil)
	forced, noPTY := newKey(t), newKey(t)
	ts.writeAuthorized(t, string(keys.MarshalAuthorizedKey(pubOf(ts.clientKey), ""))+
		`command="echo forced" `+string(keys.MarshalAuthorizedKey(pubOf(forced), ""))+
		`no-pty `+string(keys.MarshalAuthorizedKey(pubOf(noPTY), "")), 0o600)
	rs := ts.loginResumable(t)
	rs.Ready()
	for name, key := range map[string]ed25519.PrivateKey{"forced command": forced, "no-pty": noPTY} {
		list, err := ts.list(t, key)
		if err != nil || len(list) != 0 {
			t.Errorf("%s key: list %+v, %v; want none", name, list, err)
		}
		if err := ts.resumeAs(t, ts.srv.User(), key, rs.id(), nil); !refused(err, "no such session") {
			t.Errorf("%s key: reattach %v, want \"no such session\"", name, err)
		}
	}
	if list, err := ts.list(t, ts.clientKey); err != nil || len(list) != 1 {
		t.Errorf("plain key: list %+v, %v; want the session", list, err)
	}
	rs.ExitWith(0)
}

// TestDetachedSessionExpires: a detached session that nobody resumes ends after the detach
// timeout, with its shell and the job it left in the background; its client, let go too late,
// is refused.
func TestDetachedSessionExpires(t *testing.T) {
	ts := startServer(t, func(c *Config) {
		c.DetachTimeout = 2 * time.Second
		c.StopGrace = time.Second
	})
	rs := ts.loginResumable(t)
	rs.Ready()
	pid := rs.pid()
	rs.Send("sleep 1000 & echo JOB=$((0+$!))\n")
	job, _ := strconv.Atoi(rs.Expect(`JOB=(\d+)`)[1])
	rs.cut()
	ts.waitLog(`msg="session detached"`)
	ts.waitLog(`msg="detached session expired".*id=` + rs.id().Short())
	waitFor(t, "the shell and its job to end", func() bool { return gone(pid) && gone(job) })
	ts.waitLog(`msg="session ended"`)
	rs.reconnect()
	if err := rs.Wait(); err == nil {
		t.Error("the client of an expired session ended without an error")
	}
	if list, err := ts.list(t, ts.clientKey); err != nil || len(list) != 0 {
		t.Errorf("list after the expiry: %+v, %v; want none", list, err)
	}
}

// TestStopEndsDetachedSessions: Serve's stop (SIGTERM) ends a detached session and its shell.
func TestStopEndsDetachedSessions(t *testing.T) {
	ts := startServer(t, nil)
	rs := ts.loginResumable(t)
	rs.Ready()
	pid := rs.pid()
	rs.cut()
	ts.waitLog(`msg="session detached"`)
	if err := ts.stop(); err != nil {
		t.Fatal(err)
	}
	if !gone(pid) {
		t.Errorf("the shell (pid %d) outlived the stop", pid)
	}
	ts.waitLog(`msg="detached session ended: service stopping".*id=` + rs.id().Short())
	ts.waitLog(`msg="session ended"`)
}

// TestDetachedSessionsCount: a detached session holds its MaxSessions slot, so a new login is
// refused; its resume takes no slot of its own.
func TestDetachedSessionsCount(t *testing.T) {
	ts := startServer(t, func(c *Config) { c.MaxSessions = 1 })
	rs := ts.loginResumable(t)
	rs.Ready()
	rs.cut()
	ts.waitLog(`msg="session detached"`)
	_, err := ts.startAs(t, ts.clientKey, ts.request(ts.srv.User()))
	var re *session.RefusedError
	if !errors.As(err, &re) || re.Reason != reasonMaxSessions {
		t.Fatalf("a login while a session is detached, with -max-sessions 1: %v, want %q", err, reasonMaxSessions)
	}
	rs.reconnect()
	rs.Ready()
	rs.ExitWith(0)
	ts.waitLog(`msg="session ended"`)
	r, err := ts.startAs(t, ts.clientKey, ts.request(ts.srv.User()))
	if err != nil {
		t.Fatalf("a login once the session ended: %v", err)
	}
	r.ExitWith(0)
}

// TestResumeOff: with a negative DetachTimeout a session does not accept resume, and a lost
// connection ends it at once, as before resume.
func TestResumeOff(t *testing.T) {
	ts := startServer(t, func(c *Config) { c.DetachTimeout = -1 })
	conn, err := dialSecure(t, ts.addr, pubOf(ts.hostKey), ts.clientKey)
	if err != nil {
		t.Fatal(err)
	}
	c, out := ts.givingUpClient(conn)
	r, err := logintest.StartClient(t, c, out)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, ok := c.Resumable(); ok {
		t.Fatal("resume accepted with DetachTimeout -1")
	}
	r.Ready()
	_ = r.Close()
	ts.waitLog(`msg="session ended"`)
	if strings.Contains(ts.log.String(), "session detached") {
		t.Fatal("a session detached with resume off")
	}
	ts.waitLog(`msg="serving logins".*resume=false`)
}

// givingUpClient makes a client of ts's user on conn that offers resume but gives up when its
// connection is lost; it returns it unstarted, with its output.
func (ts *testServer) givingUpClient(conn net.Conn) (*session.Client, *termtest.Buffer) {
	c := session.NewClient(conn, ts.request(ts.srv.User()))
	c.Reconnect = func(ctx context.Context, attempt int, cause error) (net.Conn, error) {
		return nil, errors.New("this test does not reconnect")
	}
	out := &termtest.Buffer{}
	c.Stdout = out
	return c, out
}

// TestServeConnNotResumable: ServeConn (inetd) serves one connection, and no other could resume
// its session: it does not accept resume, and a lost connection ends the session at once.
func TestServeConnNotResumable(t *testing.T) {
	ts := startServer(t, nil)
	server, client := logintest.ConnPair(t)
	done := make(chan error, 1)
	go func() { done <- ts.srv.ServeConn(context.Background(), server) }()
	ctx, cancel := context.WithTimeout(context.Background(), shortTimeout)
	defer cancel()
	if err := transport.RequestMailbox(ctx, client, MailboxName); err != nil {
		t.Fatal(err)
	}
	sc, err := secureClient(ctx, client, ts, ts.clientKey)
	if err != nil {
		t.Fatal(err)
	}
	c, out := ts.givingUpClient(sc)
	r, err := logintest.StartClient(t, c, out)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, ok := c.Resumable(); ok {
		t.Error("ServeConn's session accepted resume")
	}
	r.Ready()
	_ = r.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("ServeConn: %v", err)
		}
	case <-time.After(shortTimeout):
		t.Fatalf("ServeConn still running %v after its connection was lost", shortTimeout)
	}
}
