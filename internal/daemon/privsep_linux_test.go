package daemon

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rlogin-go/rlogin/internal/admission"
	"github.com/rlogin-go/rlogin/internal/logintest"
	"github.com/rlogin-go/rlogin/internal/pamlogin"
	"github.com/rlogin-go/rlogin/internal/privsep"
	"github.com/rlogin-go/rlogin/internal/termtest"
	"github.com/rlogin-go/rlogin/session"
	"github.com/rlogin-go/rlogin/transport"
)

// startSeparated starts a System server with privilege separation: its monitors and net
// children are this test binary (TestMain runs their roles), and the monitors' log joins the
// server's. Its cleanup ends the sessions that outlive Serve.
func startSeparated(t *testing.T, edit func(*Config)) *testServer {
	t.Helper()
	requireSystem(t)
	exe := logintest.WorldExecutableCopy(t)
	logR, logW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	var ts *testServer
	copied := make(chan struct{})
	ts = startSystem(t, func(c *Config) {
		c.PrivilegeSeparation = true
		c.Executable = exe
		c.ProcessLog = ProcessLog{File: logW, Level: slog.LevelDebug}
		if edit != nil {
			edit(c)
		}
	})
	go func() { // ends when the last writer (the test's copy, then the monitors') is closed
		defer close(copied)
		_, _ = io.Copy(ts.log, logR)
	}()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), shortTimeout)
		defer cancel()
		if err := ts.srv.EndSessions(ctx); err != nil {
			t.Error(err)
		}
		_ = logW.Close()
		select {
		case <-copied:
		case <-time.After(shortTimeout):
			t.Error("a monitor still holds the log")
		}
		_ = logR.Close()
	})
	return ts
}

// TestSeparatedKeyLogin: with privilege separation a key login works as without: the shell runs
// as the user, and the log says what it says without.
func TestSeparatedKeyLogin(t *testing.T) {
	ts := startSeparated(t, nil)
	alice := addUser(t, "rlt-psalice")
	alice.authorize(t, 0o600)
	r, err := ts.loginAs(t, alice.name, alice.key)
	if err != nil {
		t.Fatalf("login: %v\nlog:\n%s", err, ts.log.String())
	}
	r.Send("echo I AM $(id -un) $(id -u).; exit\n")
	if m := r.Expect(`I AM (\S+) (\d+)\.`); m[1] != alice.name || m[2] != strconv.Itoa(alice.uid) {
		t.Errorf("the shell runs as %s (%s), want %s (%d)", m[1], m[2], alice.name, alice.uid)
	}
	if err := r.Wait(); err != nil {
		t.Errorf("Wait: %v", err)
	}
	ts.waitLog(`msg="authentication succeeded" .*method=publickey user=rlt-psalice`)
	ts.waitLog(`msg="session started" .*user=rlt-psalice`)
	ts.waitLog(`msg="session ended" .*user=rlt-psalice`)
}

// TestSeparatedRefusal: a key that is not authorized is refused as without privilege
// separation, and the failure reaches the listener's penalties.
func TestSeparatedRefusal(t *testing.T) {
	ts := startSeparated(t, nil)
	bob := addUser(t, "rlt-psbob")
	_, err := ts.loginAs(t, bob.name, newKey(t))
	var re *session.RefusedError
	if !errors.As(err, &re) || re.Reason != reasonDenied {
		t.Fatalf("login with an unlisted key: %v, want refusal %q", err, reasonDenied)
	}
	ts.waitLog(`msg="authentication failed" .*user=rlt-psbob`)
	ts.waitUnauth(t, 0)
}

// TestSeparatedNoRootReadsNetwork: while a client is in the middle of its login (connected,
// nothing sent), the only process that holds the server's end of the connection runs as a
// dynamic uid, not root; the monitor and the listener have handed theirs over.
func TestSeparatedNoRootReadsNetwork(t *testing.T) {
	ts := startSeparated(t, nil)
	c := dialFrom(t, ts.addr, "127.0.0.1")
	defer c.Close()
	ts.waitLog(`msg="connection accepted"`)
	// The server's end of c: the socket whose local address is c's remote one.
	inode := serverSocketInode(t, c.RemoteAddr().String(), c.LocalAddr().String())
	// The child confines itself first thing (privsep.Confine), before it reads the connection;
	// until its exec it is the monitor's fork, root's, and before the monitor starts it, the
	// monitor alone holds the connection: wait for the one holder to be a confined process.
	var holders []int
	var status []byte
	deadline := time.Now().Add(shortTimeout)
	for {
		holders = socketHolders(t, inode)
		if len(holders) == 1 {
			status, _ = os.ReadFile(filepath.Join("/proc", strconv.Itoa(holders[0]), "status"))
			if strings.Contains(string(status), "Seccomp:\t2") {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("processes %v hold the server's socket (inode %s), want the confined net child alone; status:\n%s", holders, inode, status)
		}
		time.Sleep(10 * time.Millisecond)
	}
	uid := procUID(t, holders[0])
	r := privsep.DefaultUIDRange()
	if uid < r.First || uid >= r.First+r.Count {
		t.Fatalf("the process holding the connection (pid %d) runs as uid %d, not a dynamic uid of %d-%d", holders[0], uid, r.First, r.First+r.Count-1)
	}
	for _, want := range []string{"NoNewPrivs:\t1", "Seccomp:\t2", "CapEff:\t0000000000000000"} {
		if !strings.Contains(string(status), want) {
			t.Errorf("the net child's status lacks %q:\n%s", want, status)
		}
	}
}

// TestSeparatedSessionsOutliveStop: a session goes on after the listener's Serve has returned
// (a restart of rlogind), and EndSessions ends it: the client is told the service is stopping,
// and the session's processes are gone.
func TestSeparatedSessionsOutliveStop(t *testing.T) {
	ts := startSeparated(t, func(c *Config) { c.StopGrace = 2 * time.Second })
	carol := addUser(t, "rlt-pscarol")
	carol.authorize(t, 0o600)
	r, err := ts.loginAs(t, carol.name, carol.key)
	if err != nil {
		t.Fatalf("login: %v", err)
	}
	r.Send("echo BEFORE $((6*7)).\n")
	r.Expect(`BEFORE 42\.`)
	if err := ts.stop(); err != nil {
		t.Fatal(err)
	}
	ts.waitLog(`msg="stopped listening; sessions go on"`)
	r.Send("echo AFTER $((6*8)).\n")
	r.Expect(`AFTER 48\.`)
	ctx, cancel := context.WithTimeout(context.Background(), shortTimeout)
	defer cancel()
	if err := ts.srv.EndSessions(ctx); err != nil {
		t.Fatal(err)
	}
	err = r.Wait()
	var ce *session.ClosedError
	if !errors.As(err, &ce) || !strings.Contains(ce.Reason, reasonStopping) {
		t.Errorf("client's end: %v, want the server's %q", err, reasonStopping)
	}
	ts.waitLog(`msg="session ended" .*user=rlt-pscarol`)
}

// TestSeparatedGraceTime: a client that sends nothing is cut off at the login grace time, and
// its monitor and net child are gone with it.
func TestSeparatedGraceTime(t *testing.T) {
	ts := startSeparated(t, func(c *Config) { c.LoginGraceTime = time.Second })
	c := dialFrom(t, ts.addr, "127.0.0.1")
	defer c.Close()
	if _, ok, _ := waitClosed(c, shortTimeout); !ok {
		t.Fatal("a silent connection was not closed at the grace time")
	}
	ts.waitLog(`login grace time exceeded`)
	waitFor(t, "the connection's processes to end", func() bool {
		pids, err := monitorPids()
		return err == nil && len(pids) == 0
	})
}

// TestSeparatedPenalty: a failure the monitor reports reaches the listener's penalties.
func TestSeparatedPenalty(t *testing.T) {
	ts := startSeparated(t, func(c *Config) {
		c.PerSourcePenalties = &admission.Penalties{AuthFail: time.Hour, Max: 2 * time.Hour}
	})
	dave := addUser(t, "rlt-psdave")
	if _, err := loginFromAs(t, ts, "127.0.0.2", newKey(t), dave.name); err == nil {
		t.Fatal("an unlisted key logged in")
	}
	ts.waitLog(`msg="source penalized.*source=127.0.0.2/32 reason="failed authentication"`)
	c := dialFrom(t, ts.addr, "127.0.0.2")
	expectDropped(t, c, dropPenalty)
	_ = c.Close()
}

// TestSeparatedNoPAMUnknownLikeKnown: in a build without PAM, with password logins on, a known
// user whose key is not authorized gets the answer an unknown user gets, and is charged for it
// alike: neither the answer nor the penalty tells who exists.
func TestSeparatedNoPAMUnknownLikeKnown(t *testing.T) {
	if pamlogin.Supported {
		t.Skip("a build with PAM asks both for a password (e2e's PAM tests)")
	}
	ts := startSeparated(t, func(c *Config) {
		c.PasswordAuthentication = true
		c.PerSourcePenalties = &admission.Penalties{AuthFail: time.Hour, Max: 2 * time.Hour}
	})
	frank := addUser(t, "rlt-psfrank")
	for _, tc := range []struct{ source, user string }{
		{"127.0.0.3", frank.name},
		{"127.0.0.4", "rlt-psnobody"},
	} {
		_, err := loginFromAs(t, ts, tc.source, newKey(t), tc.user)
		var re *session.RefusedError
		if !errors.As(err, &re) || re.Reason != reasonDenied {
			t.Errorf("user %s: %v, want refusal %q", tc.user, err, reasonDenied)
		}
		ts.waitLog(`msg="source penalized.*source=` + regexp.QuoteMeta(tc.source) + `/32 reason="failed authentication"`)
	}
}

// serverSocketInode finds the inode of the TCP socket whose local address is local and remote
// address remote, in /proc/net/tcp.
func serverSocketInode(t *testing.T, local, remote string) string {
	t.Helper()
	hexAddr := func(hp string) string {
		host, port, _ := strings.Cut(hp, ":")
		var b [4]byte
		for i, part := range strings.Split(host, ".") {
			n, _ := strconv.Atoi(part)
			b[i] = byte(n)
		}
		p, _ := strconv.Atoi(port)
		return strings.ToUpper(strconv.FormatUint(uint64(b[3])<<24|uint64(b[2])<<16|uint64(b[1])<<8|uint64(b[0]), 16)) +
			":" + strings.ToUpper(strconv.FormatUint(uint64(p), 16))
	}
	l, r := hexAddr(local), hexAddr(remote)
	var inode string
	waitFor(t, "the server's socket in /proc/net/tcp", func() bool {
		data, err := os.ReadFile("/proc/net/tcp")
		if err != nil {
			t.Fatal(err)
		}
		for line := range strings.Lines(string(data)) {
			f := strings.Fields(line)
			if len(f) > 9 && strings.EqualFold(f[1], padAddr(l)) && strings.EqualFold(f[2], padAddr(r)) {
				inode = f[9]
				return true
			}
		}
		return false
	})
	return inode
}

// padAddr pads the address part of "ADDR:PORT" to /proc/net/tcp's 8 and port to 4 digits.
func padAddr(a string) string {
	addr, port, _ := strings.Cut(a, ":")
	return strings.Repeat("0", 8-len(addr)) + addr + ":" + strings.Repeat("0", 4-len(port)) + port
}

// socketHolders lists the processes with a descriptor on the socket inode.
func socketHolders(t *testing.T, inode string) []int {
	t.Helper()
	want := "socket:[" + inode + "]"
	var pids []int
	procs, _ := os.ReadDir("/proc")
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil {
			continue
		}
		fds, _ := os.ReadDir(filepath.Join("/proc", p.Name(), "fd"))
		for _, fd := range fds {
			if target, _ := os.Readlink(filepath.Join("/proc", p.Name(), "fd", fd.Name())); target == want {
				pids = append(pids, pid)
				break
			}
		}
	}
	return pids
}

// procUID is the real uid of pid, from its status (the owner of /proc/PID is root's for a
// process that is not dumpable, such as a net child).
func procUID(t *testing.T, pid int) uint32 {
	t.Helper()
	status, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(status)) {
		if f := strings.Fields(line); len(f) > 1 && f[0] == "Uid:" {
			uid, err := strconv.ParseUint(f[1], 10, 32)
			if err != nil {
				t.Fatal(err)
			}
			return uint32(uid)
		}
	}
	t.Fatalf("no Uid line in /proc/%d/status", pid)
	return 0
}

// TestSeparatedClassicRhosts: a classic (RFC 1282) client from a privileged port, trusted by
// the user's .rhosts, logs in through the net child, whose one-conn Mux sorts it out by its
// first byte; the monitor checks the trust with the address the kernel gives it. A password
// login (no trust from an ordinary port) is refused for now, with the reason.
func TestSeparatedClassicRhosts(t *testing.T) {
	ts := startSeparated(t, func(c *Config) {
		c.Classic = ClassicConfig{Enabled: true, TrustRhosts: true}
		c.PasswordAuthentication = true
	})
	erin := addUser(t, "rlt-pserin")
	rhosts := filepath.Join(erin.home, ".rhosts")
	if err := os.WriteFile(rhosts, []byte("127.0.0.1 remote-erin\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(rhosts, erin.uid, erin.gid); err != nil {
		t.Fatal(err)
	}
	r, err := loginClassic(t, ts.addr, "remote-erin", erin.name, true)
	if err != nil {
		t.Fatalf("login: %v\nlog:\n%s", err, ts.log.String())
	}
	r.Send("echo I AM $(id -un).\r")
	r.Expect(`I AM rlt-pserin\.`)
	r.Send("exit\r")
	if err := r.Wait(); err != nil {
		t.Errorf("Wait: %v", err)
	}
	ts.waitLog(`msg="authentication succeeded" .*method=rhosts`)

	// From an unprivileged port, no trust: the password is asked (PAM), or refused without PAM.
	r, err = loginClassic(t, ts.addr, "remote-erin", erin.name, false)
	if !pamlogin.Supported {
		// Refused as an unknown user is, so that the answer tells nobody who exists.
		if err == nil || !strings.Contains(err.Error(), classicDenied) {
			t.Errorf("a password login with privilege separation: %v, want the refusal %q", err, classicDenied)
		}
		ts.waitLog(`msg="authentication failed" .*built with PAM`)
		return
	}
	if err != nil {
		t.Fatalf("password login: %v", err)
	}
	r.Expect(`Password: `)
	r.Send(erin.password + "\r")
	r.Send("echo I AM $(id -un).\r")
	r.Expect(`I AM rlt-pserin\.`)
	r.Send("exit\r")
	if err := r.Wait(); err != nil {
		t.Errorf("Wait: %v", err)
	}
	ts.waitLog(`msg="authentication succeeded" .*method=password user=rlt-pserin`)
}

// TestSeparatedInetd: ServeConn (rlogind -inetd) with privilege separation makes the calling
// process the connection's monitor: the login goes through a net child as with a listener.
func TestSeparatedInetd(t *testing.T) {
	if pamlogin.Supported {
		// The PAM session opens on the thread ServeConn runs on, which must be the main thread
		// (pam_loginuid), as it is in rlogind -inetd (called from main); a test goroutine's is
		// not.
		t.Skip("ServeConn with PAM needs the main thread; this test calls it from a test goroutine")
	}
	ts := startSeparated(t, nil)
	frank := addUser(t, "rlt-psfrank")
	frank.authorize(t, 0o600)
	addr, served := ts.serveInetd(t)
	r, err := logintest.Login(t, addr, pubOf(ts.hostKey), frank.key, ts.request(frank.name))
	if err != nil {
		t.Fatalf("login: %v\nlog:\n%s", err, ts.log.String())
	}
	r.Send("echo I AM $(id -un).; exit\n")
	r.Expect(`I AM rlt-psfrank\.`)
	if err := r.Wait(); err != nil {
		t.Errorf("Wait: %v", err)
	}
	select {
	case err := <-served:
		if err != nil {
			t.Errorf("ServeConn: %v", err)
		}
	case <-time.After(shortTimeout):
		t.Fatal("ServeConn did not return after the session")
	}
	ts.waitLog(`msg="session ended" .*user=rlt-psfrank`)
}

// TestSeparatedRootKeyProof: with privilege separation root logs in with a key only from a
// client that proves the key to the monitor itself (capability keyproof): an older client's
// login is refused (the monitor would take the net child's word for the key), with the usual
// refusal and no penalty; a proving client's follows permit-root-login (prohibit-password); a
// proof that does not verify is a failed authentication.
func TestSeparatedRootKeyProof(t *testing.T) {
	requireSystem(t) // before rootKeys, which needs root too
	pattern, rootKey := rootKeys(t)
	ts := startSeparated(t, func(c *Config) {
		c.AuthorizedKeys = pattern
		c.PermitRootLogin = PermitRootProhibitPassword
	})

	_, err := ts.loginAs(t, "root", rootKey) // no Signer: no keyproof offered
	var re *session.RefusedError
	if !errors.As(err, &re) || re.Reason != reasonDenied {
		t.Fatalf("root login without a key proof: %v, want refusal %q", err, reasonDenied)
	}
	ts.waitLog(`msg="login refused" .*user=root reason="root logs in with a key under privilege separation only from a client that proves it`)

	r, err := ts.loginProving(t, "root", rootKey, rootKey)
	if err != nil {
		t.Fatalf("root login with a key proof: %v\nlog:\n%s", err, ts.log.String())
	}
	r.Send("echo I AM $(id -u).; exit\n")
	if m := r.Expect(`I AM (\d+)\.`); m[1] != "0" {
		t.Errorf("the shell runs as uid %s, want 0", m[1])
	}

	_, err = ts.loginProving(t, "root", rootKey, forgedProof{rootKey})
	if !errors.As(err, &re) || re.Reason != reasonDenied {
		t.Fatalf("root login with a forged key proof: %v, want refusal %q", err, reasonDenied)
	}
	ts.waitLog(`msg="authentication failed" .*user=root reason="key proof failed"`)
}

// forgedProof signs the TLS handshake with its key, as a client that holds it, and the key
// proof with garbage, as a taken-over net child that does not would answer a CHALLENGE.
type forgedProof struct{ key ed25519.PrivateKey }

func (f forgedProof) Public() crypto.PublicKey { return f.key.Public() }
func (f forgedProof) Sign(rand io.Reader, msg []byte, opts crypto.SignerOpts) ([]byte, error) {
	if bytes.HasPrefix(msg, []byte("rlogin keyproof v1\x00")) {
		return make([]byte, ed25519.SignatureSize), nil
	}
	return f.key.Sign(rand, msg, opts)
}

// loginProving is loginAs with a client that offers keyproof and signs the CHALLENGE with
// signer (handshake with key).
func (ts *testServer) loginProving(t *testing.T, name string, key ed25519.PrivateKey, signer crypto.Signer) (*logintest.Remote, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), logintest.Timeout)
	defer cancel()
	conn, err := transport.DialMailbox(ctx, ts.addr, MailboxName)
	if err != nil {
		return nil, err
	}
	hostKey := pubOf(ts.hostKey)
	sc, err := transport.Client(ctx, conn, &transport.SecureConfig{Key: key, VerifyPeer: func(pub ed25519.PublicKey) error {
		if !pub.Equal(hostKey) {
			return errors.New("not the test's host key")
		}
		return nil
	}})
	if err != nil {
		return nil, err
	}
	c := session.NewClient(sc, ts.request(name))
	c.Signer = signer
	out := &termtest.Buffer{}
	c.Stdout = out
	return logintest.StartClient(t, c, out)
}

// TestSeparatedPreLoginFailureLogged: a client that breaks off in the TLS handshake is a failed
// login, logged as a warning with its stage, not as the end of the network process.
func TestSeparatedPreLoginFailureLogged(t *testing.T) {
	ts := startSeparated(t, nil)
	c := dialFrom(t, ts.addr, "127.0.0.1")
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(shortTimeout))
	if _, err := c.Write([]byte(MailboxName + "\r\n")); err != nil {
		t.Fatal(err)
	}
	reply := make([]byte, 3)
	if _, err := io.ReadFull(c, reply); err != nil || string(reply) != "+\r\n" {
		t.Fatalf("mailbox reply %q, %v", reply, err)
	}
	// A TLS record header of a handshake record, then garbage.
	if _, err := c.Write([]byte("\x16\x03\x01\x00\x05hello")); err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, c) // the server gives up and closes
	ts.waitLog(`level=WARN msg="login failed" .*stage="TLS handshake"`)
	if strings.Contains(ts.log.String(), `msg="network process ended"`) {
		t.Errorf("a failed handshake logged as the network process's end:\n%s", ts.log.String())
	}
}

// serveInetd serves the first connection to the address it returns with ServeConn, as an
// rlogind -inetd does, and sends ServeConn's result on served; the test must receive it.
func (ts *testServer) serveInetd(t *testing.T) (addr string, served <-chan error) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	result := make(chan error, 1)
	go func() { // the test receives its result
		c, err := l.Accept()
		if err != nil {
			result <- err
			return
		}
		result <- ts.srv.ServeConn(context.Background(), c)
	}()
	return l.Addr().String(), result
}
