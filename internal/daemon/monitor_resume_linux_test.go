package daemon

import (
	"context"
	"crypto/ed25519"
	"errors"
	"net"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rlogin-go/rlogin/internal/linkemu"
	"github.com/rlogin-go/rlogin/internal/logintest"
	"github.com/rlogin-go/rlogin/internal/pamlogin"
	"github.com/rlogin-go/rlogin/internal/termtest"
	"github.com/rlogin-go/rlogin/session"
	"github.com/rlogin-go/rlogin/transport"
)

// Resume and reattach with privilege separation: the sessions' monitors register them with the
// listener, and a new connection's monitor finds them there once it authenticated its user.

// dialProving connects to the rlogind at addr as the owner of key, through the mailbox and TLS:
// what a new client does for each login, resume or list.
func (ts *testServer) dialProving(t *testing.T, addr string, key ed25519.PrivateKey) (net.Conn, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), logintest.Timeout)
	defer cancel()
	conn, err := transport.DialMailbox(ctx, addr, MailboxName)
	if err != nil {
		return nil, err
	}
	hostKey := pubOf(ts.hostKey)
	return transport.Client(ctx, conn, &transport.SecureConfig{Key: key, VerifyPeer: func(pub ed25519.PublicKey) error {
		if !pub.Equal(hostKey) {
			return errors.New("not the test's host key")
		}
		return nil
	}})
}

// A resumableClient is a client logged in with resume on, over an emulated path (linkemu) that
// the test cuts; a lost connection is replaced by a new one, dialled when the test lets it.
type resumableClient struct {
	*logintest.Remote
	link  *linkemu.Link
	gate  chan struct{} // a send lets one reconnection try
	tried chan struct{} // a receive: a reconnection got its conn
}

// resumableLogin logs in to ts as name with key, offering resume, through a path of its own.
// Its cleanup ends the sessions that are still there (detached ones too) before the test's users
// go.
func (ts *testServer) resumableLogin(t *testing.T, name string, key ed25519.PrivateKey) *resumableClient {
	t.Helper()
	link := linkemu.New(linkemu.Profile{})
	proxy, err := link.Listen("127.0.0.1:0", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = proxy.Close()
		ctx, cancel := context.WithTimeout(context.Background(), shortTimeout)
		defer cancel()
		_ = ts.srv.EndSessions(ctx)
	})
	first, err := ts.dialProving(t, proxy.Addr().String(), key)
	if err != nil {
		t.Fatal(err)
	}
	rc := &resumableClient{link: link, gate: make(chan struct{}), tried: make(chan struct{}, 8)}
	c := session.NewClient(first, ts.request(name))
	c.Signer = key
	c.Reconnect = func(ctx context.Context, attempt int, cause error) (net.Conn, error) {
		select {
		case <-rc.gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		next, err := ts.dialProving(t, proxy.Addr().String(), key)
		rc.tried <- struct{}{}
		return next, err
	}
	out := &termtest.Buffer{}
	c.Stdout = out
	if rc.Remote, err = logintest.StartClient(t, c, out); err != nil {
		t.Fatalf("login: %v\nlog:\n%s", err, ts.log.String())
	}
	return rc
}

// cut cuts the client's path (both ends get an RST) until resume.
func (rc *resumableClient) cut() { rc.link.Cut() }

// resume restores the path, lets the client reconnect, and waits until it has its new conn.
func (rc *resumableClient) resume(t *testing.T) {
	t.Helper()
	rc.link.Restore()
	select {
	case rc.gate <- struct{}{}:
	case <-time.After(logintest.Timeout):
		t.Fatal("the client does not try to reconnect")
	}
	select {
	case <-rc.tried:
	case <-time.After(logintest.Timeout):
		t.Fatal("the client did not reconnect")
	}
}

// offeringResume logs in to the rlogind at addr as name with key, offering resume, but never
// reconnects.
func (ts *testServer) offeringResume(t *testing.T, addr, name string, key ed25519.PrivateKey) *logintest.Remote {
	t.Helper()
	conn, err := ts.dialProving(t, addr, key)
	if err != nil {
		t.Fatal(err)
	}
	c := session.NewClient(conn, ts.request(name))
	c.Signer = key
	c.Reconnect = func(context.Context, int, error) (net.Conn, error) {
		return nil, errors.New("the test reconnects nothing")
	}
	out := &termtest.Buffer{}
	c.Stdout = out
	r, err := logintest.StartClient(t, c, out)
	if err != nil {
		t.Fatalf("login: %v\nlog:\n%s", err, ts.log.String())
	}
	return r
}

// listSessions lists name's sessions on ts, logging in with key.
func (ts *testServer) listSessions(t *testing.T, name string, key ed25519.PrivateKey) ([]session.SessionInfo, error) {
	t.Helper()
	conn, err := ts.dialProving(t, ts.addr, key)
	if err != nil {
		return nil, err
	}
	c := session.NewClient(conn, ts.request(name))
	c.Signer = key
	ctx, cancel := context.WithTimeout(context.Background(), logintest.Timeout)
	defer cancel()
	return c.ListSessions(ctx)
}

// reattach takes over name's session id on ts with key (rlogin -R), or resumes it with secret.
func (ts *testServer) reattach(t *testing.T, name string, key ed25519.PrivateKey, id session.SessionID, secret []byte) (*logintest.Remote, error) {
	t.Helper()
	conn, err := ts.dialProving(t, ts.addr, key)
	if err != nil {
		return nil, err
	}
	req := ts.request(name)
	req.Resume = &session.ResumeRequest{ID: id, Secret: secret}
	c := session.NewClient(conn, req)
	c.Signer = key
	out := &termtest.Buffer{}
	c.Stdout = out
	return logintest.StartClient(t, c, out)
}

// shellPid returns the pid of r's shell.
func shellPid(t *testing.T, r *logintest.Remote) int {
	t.Helper()
	r.Send("echo PID=$$.\n")
	pid, _ := strconv.Atoi(r.Expect(`PID=(\d+)\.`)[1])
	return pid
}

// requireNoSession checks that err is the refusal every unavailable session gets.
func requireNoSession(t *testing.T, what string, err error) {
	t.Helper()
	var re *session.RefusedError
	if !errors.As(err, &re) || re.Reason != reasonNoSession {
		t.Fatalf("%s: %v, want the refusal %q", what, err, reasonNoSession)
	}
}

// TestSeparatedResumeList: a separated session that accepted resume is in its user's list (with
// its shell's pid, attached, then detached after a cut), and in nobody else's; another user's
// connection, authenticated, gets "no such session" for it, as for an id that does not exist.
func TestSeparatedResumeList(t *testing.T) {
	ts := startSeparated(t, nil)
	alice, bob := addUser(t, "rlt-rsalice"), addUser(t, "rlt-rsbob")
	alice.authorize(t, 0o600)
	bob.authorize(t, 0o600)
	r := ts.resumableLogin(t, alice.name, alice.key)
	r.Ready()
	// The session's process: the shell in a build with PAM, login(1) without.
	pid, _ := strconv.Atoi(ts.waitLog(`msg="session started" .*pid=(\d+) user=rlt-rsalice`)[1])
	list, err := ts.listSessions(t, alice.name, alice.key)
	if err != nil {
		t.Fatalf("list: %v\nlog:\n%s", err, ts.log.String())
	}
	if len(list) != 1 || !list[0].Attached || list[0].PID != pid || list[0].What != "xterm" || list[0].Peer == "" {
		t.Fatalf("alice's sessions %+v, want one attached, pid %d, running xterm", list, pid)
	}
	id := list[0].ID
	ts.waitLog(`msg="sessions listed" .*user=rlt-rsalice sessions=1`)
	if list, err := ts.listSessions(t, bob.name, bob.key); err != nil || len(list) != 0 {
		t.Errorf("bob's sessions %+v, %v; want none", list, err)
	}
	_, err = ts.reattach(t, bob.name, bob.key, id, nil)
	requireNoSession(t, "bob takes alice's session over", err)
	// A key that is not authorized lists nothing, whatever the build does with passwords.
	_, err = ts.listSessions(t, alice.name, newKey(t))
	var re *session.RefusedError
	if !errors.As(err, &re) || re.Reason != reasonDenied {
		t.Errorf("a list with a key not authorized: %v, want the refusal %q", err, reasonDenied)
	}
	var unknown session.SessionID
	unknown[0] = ^id[0]
	_, err = ts.reattach(t, alice.name, alice.key, unknown, nil)
	requireNoSession(t, "an unknown id", err)
	ts.waitLog(`msg="resume refused" .*user=rlt-rsbob id=` + id.Short())

	r.cut()
	ts.waitLog(`msg="session detached" .*user=rlt-rsalice .*id=` + id.Short())
	r.Send("exit\n") // typed while detached: the client sends it after the resume
	r.resume(t)
	if err := r.Wait(); err != nil {
		t.Errorf("Wait: %v", err)
	}
}

// aliceSession starts a separated server (edit its Config, if not nil) and logs in to it as a
// new user, rlt-rsalice, with resume on; it returns the pid of the session's shell too.
func aliceSession(t *testing.T, edit func(*Config)) (*testServer, *testUser, *resumableClient, int) {
	t.Helper()
	ts := startSeparated(t, edit)
	alice := addUser(t, "rlt-rsalice")
	alice.authorize(t, 0o600)
	r := ts.resumableLogin(t, alice.name, alice.key)
	return ts, alice, r, shellPid(t, r.Remote)
}

// TestSeparatedResume: a separated session whose connection is cut goes on detached (its list
// entry says so); its client resumes it on a new connection, authenticated as a new login: the
// same shell, every byte of output once and in order (also what the shell wrote while
// detached), and the input typed while detached once.
func TestSeparatedResume(t *testing.T) {
	ts, alice, r, pid := aliceSession(t, nil)
	// Numbered lines, some before the cut, some while detached, some after the resume.
	r.Send("for i in $(seq 1 300); do echo L$i.; sleep 0.005; done; echo COUNTED\n")
	r.Expect(`L20\.`)
	r.cut()
	ts.waitLog(`msg="session detached" .*user=rlt-rsalice`)
	list, err := ts.listSessions(t, alice.name, alice.key)
	if err != nil || len(list) != 1 || list[0].Attached || list[0].Detached.IsZero() {
		t.Fatalf("alice's sessions while detached: %+v, %v; want one detached", list, err)
	}
	r.Send("echo TYPED-$((6*7)).\n") // kept by the client until the resume
	r.resume(t)
	ts.waitLog(`msg="session resumed" .*user=rlt-rsalice .*skipped=0`)
	r.Expect(`COUNTED`)
	r.Expect(`TYPED-42\.`)
	if again := shellPid(t, r.Remote); again != pid {
		t.Errorf("the shell after the resume is %d, before %d", again, pid)
	}
	out := r.Output()
	for i := 1; i <= 300; i++ {
		if n := strings.Count(out, "L"+strconv.Itoa(i)+".\r\n"); n != 1 {
			t.Fatalf("line %d came %d times; output:\n%q", i, n, out)
		}
	}
	if n := strings.Count(out, "TYPED-42."); n != 1 {
		t.Errorf("the input typed while detached ran %d times", n)
	}
	if list, err := ts.listSessions(t, alice.name, alice.key); err != nil || len(list) != 1 || !list[0].Attached {
		t.Errorf("alice's sessions after the resume: %+v, %v; want one attached", list, err)
	}
	r.Send("exit\n")
	if err := r.Wait(); err != nil {
		t.Errorf("Wait: %v", err)
	}
}

// TestSeparatedReattach: a new client of the same user takes a separated session over without
// its secret (rlogin -R): the old client is told who took it; a wrong secret gets "no such
// session", as another user would.
func TestSeparatedReattach(t *testing.T) {
	ts, alice, old, pid := aliceSession(t, nil)
	old.Send("cd /tmp; sleep 1000 & echo JOB=$!.\n")
	job := old.Expect(`JOB=(\d+)\.`)[1]
	list, err := ts.listSessions(t, alice.name, alice.key)
	if err != nil || len(list) != 1 {
		t.Fatalf("alice's sessions: %+v, %v", list, err)
	}
	id := list[0].ID
	wrong := make([]byte, session.ResumeSecretSize)
	_, err = ts.reattach(t, alice.name, alice.key, id, wrong)
	requireNoSession(t, "a wrong secret", err)
	ts.waitLog(`msg="resume refused" .*user=rlt-rsalice .*id=` + id.Short())

	r, err := ts.reattach(t, alice.name, alice.key, id, nil)
	if err != nil {
		t.Fatalf("reattach: %v\nlog:\n%s", err, ts.log.String())
	}
	err = old.Wait()
	var ce *session.ClosedError
	if !errors.As(err, &ce) || !strings.HasPrefix(ce.Reason, "taken over from 127.0.0.1:") {
		t.Errorf("the old client ended with %v, want a CLOSE taken over from 127.0.0.1", err)
	}
	ts.waitLog(`msg="session reattached" .*user=rlt-rsalice .*took_over_from=127.0.0.1:`)
	if again := shellPid(t, r); again != pid {
		t.Errorf("the reattached shell is %d, before %d", again, pid)
	}
	r.Send("echo CWD=$(pwd) JOBS=$(jobs -p).\n")
	if m := r.Expect(`CWD=(\S+) JOBS=(\d*)\.`); m[1] != "/tmp" || m[2] != job {
		t.Errorf("after the reattach: cwd %s, jobs %q; want /tmp and %s", m[1], m[2], job)
	}
	r.Send("kill %1; exit\n")
	if err := r.Wait(); err != nil {
		t.Errorf("Wait: %v", err)
	}
}

// TestSeparatedDetachedStop: a stop of the session's monitor (SIGTERM, what EndSessions and
// -end-sessions send each) ends a detached separated session and its shell.
func TestSeparatedDetachedStop(t *testing.T) {
	ts, alice, r, pid := aliceSession(t, nil)
	session, _ := strconv.Atoi(ts.waitLog(`msg="session started" .*pid=(\d+) user=rlt-rsalice`)[1])
	st, ok := procStat(session)
	if !ok || !isMonitor(st.ppid) {
		t.Fatalf("the session's process %d has no monitor for its parent (%+v)", session, st)
	}
	r.cut()
	ts.waitLog(`msg="session detached" .*user=rlt-rsalice`)
	if err := syscall.Kill(st.ppid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the detached session's shell to end", func() bool { return gone(pid) && gone(st.ppid) })
	ts.waitLog(`msg="session ended" .*user=rlt-rsalice`)
	if list, err := ts.listSessions(t, alice.name, alice.key); err != nil || len(list) != 0 {
		t.Errorf("alice's sessions after the stop: %+v, %v", list, err)
	}
}

// TestSeparatedDetachedExpiry: a detached separated session ends at its detach timeout, with its
// shell and its background job.
func TestSeparatedDetachedExpiry(t *testing.T) {
	ts, alice, r, pid := aliceSession(t, func(c *Config) { c.DetachTimeout = 2 * time.Second })
	r.Send("sleep 1000 & echo JOB=$!.\n")
	job, _ := strconv.Atoi(r.Expect(`JOB=(\d+)\.`)[1])
	list, err := ts.listSessions(t, alice.name, alice.key)
	if err != nil || len(list) != 1 {
		t.Fatalf("alice's sessions: %+v, %v", list, err)
	}
	r.cut()
	detached := ts.waitLogAt(`msg="session detached" .*user=rlt-rsalice`)
	expired := ts.waitLogAt(`msg="detached session expired" .*user=rlt-rsalice`)
	if d := expired.Sub(detached); d < time.Second || d > 10*time.Second {
		t.Errorf("expired %v after the detach, want about 2s", d)
	}
	waitFor(t, "the shell and its job to end", func() bool { return gone(pid) && gone(job) })
	if err := r.Wait(); err == nil {
		t.Error("the client's session ended well after its expiry") // it gives up at the timeout the server told it
	}
	_, err = ts.reattach(t, alice.name, alice.key, list[0].ID, nil)
	requireNoSession(t, "a reattach after the expiry", err)
}

// TestSeparatedPAMPasswordNotResumable: a password login (through PAM's conversation, in band)
// is not made resumable: its session starts before the login is decided. Its user's list is
// empty, even with a key.
func TestSeparatedPAMPasswordNotResumable(t *testing.T) {
	ts := startPAMPasswords(t, false)
	bob := addUser(t, "rlt-pmrbob")
	r := ts.offeringResume(t, ts.addr, bob.name, newKey(t)) // a key bob has not authorized
	r.Expect(`Password: `)
	r.Send(bob.password + "\r")
	r.Ready()
	bob.authorize(t, 0o600)
	if list, err := ts.listSessions(t, bob.name, bob.key); err != nil || len(list) != 0 {
		t.Errorf("bob's sessions: %+v, %v; want none (a password login)", list, err)
	}
	r.ExitWith(0)
}

// TestSeparatedInetdNotResumable: under -inetd (ServeConn) no listener could pass a new
// connection on to the session, so it is not made resumable: a cut ends it, as before resume.
func TestSeparatedInetdNotResumable(t *testing.T) {
	if pamlogin.Supported {
		t.Skip("ServeConn with PAM needs the main thread; this test calls it from a test goroutine")
	}
	ts := startSeparated(t, nil)
	frank := addUser(t, "rlt-rsfrank")
	frank.authorize(t, 0o600)
	addr, served := ts.serveInetd(t)
	link := linkemu.New(linkemu.Profile{})
	proxy, err := link.Listen("127.0.0.1:0", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	r := ts.offeringResume(t, proxy.Addr().String(), frank.name, frank.key)
	pid := shellPid(t, r)
	link.Cut()
	waitFor(t, "the shell to be hung up", func() bool { return gone(pid) })
	select {
	case err := <-served:
		if err != nil {
			t.Errorf("ServeConn: %v", err)
		}
	case <-time.After(shortTimeout):
		t.Fatal("ServeConn did not return after the cut")
	}
	ts.waitLog(`msg="session ended" .*user=rlt-rsfrank`)
	if log := ts.log.String(); strings.Contains(log, `msg="session detached"`) {
		t.Errorf("an -inetd session detached:\n%s", log)
	}
}

// TestSeparatedResumeExpiredAccount: with privilege separation, once the user's account has
// expired (chage -E 0), a reattach and a list are refused as a new login would be: by PAM's
// account stack in a build with PAM, by the same check as without privilege separation in one
// without.
func TestSeparatedResumeExpiredAccount(t *testing.T) {
	ts, alice, r, _ := aliceSession(t, nil)
	list, err := ts.listSessions(t, alice.name, alice.key)
	if err != nil || len(list) != 1 {
		t.Fatalf("alice's sessions: %+v, %v", list, err)
	}
	r.cut()
	ts.waitLog(`msg="session detached" .*user=rlt-rsalice`)
	expireAccount(t, alice)
	var re *session.RefusedError
	if _, err := ts.reattach(t, alice.name, alice.key, list[0].ID, nil); !errors.As(err, &re) || re.Reason != reasonDenied {
		t.Errorf("reattaching with the account expired: %v, want the refusal %q", err, reasonDenied)
	}
	if !pamlogin.Supported {
		ts.waitLog(`msg="login refused" .*user=rlt-rsalice reason="account: .*the account has expired"`)
	}
	if list, err := ts.listSessions(t, alice.name, alice.key); !errors.As(err, &re) || re.Reason != reasonDenied {
		t.Errorf("listing with the account expired: %+v, %v; want the refusal %q", list, err, reasonDenied)
	}
	// Once the account is valid again, the session is there to reattach; being detached, it
	// was taken over from nobody.
	userCmd(t, "", "chage", "-E", "-1", alice.name)
	again, err := ts.reattach(t, alice.name, alice.key, list[0].ID, nil)
	if err != nil {
		t.Fatalf("reattaching with the account valid again: %v", err)
	}
	if line := ts.waitLog(`msg="session reattached"[^\n]*`)[0]; strings.Contains(line, "took_over_from") {
		t.Errorf("the reattach of a detached session logs %q, which says whom it took the session from", line)
	}
	again.Send("exit\n")
	if err := again.Wait(); err != nil {
		t.Errorf("Wait: %v", err)
	}
}
