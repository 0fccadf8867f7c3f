package daemon

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/rlogin-go/rlogin/internal/logintest"
	"github.com/rlogin-go/rlogin/internal/termtest"
	"github.com/rlogin-go/rlogin/keys"
	"github.com/rlogin-go/rlogin/session"
	"github.com/rlogin-go/rlogin/transport"
)

// fakeShellName is the name under which the test binary plays a login shell: started as
// "-fakeshell", it prints what it was started with (see fakeShell) and exits.
const fakeShellName = "fakeshell"

// shortTimeout bounds every single wait in these tests: a wait that needs longer is a failure.
const shortTimeout = 20 * time.Second

func TestMain(m *testing.M) {
	if os.Args[0] == "-"+fakeShellName {
		os.Exit(fakeShell())
	}
	// The monitor and net child processes of privilege separation (privsep_linux_test.go).
	if ran, status := RunRole(); ran {
		os.Exit(status)
	}
	// Open the netpoller's descriptors before any test counts descriptors.
	if l, err := net.Listen("tcp", "127.0.0.1:0"); err == nil {
		_ = l.Close()
	}
	goleak.VerifyTestMain(m)
}

// fakeShell prints its argv[0], working directory and environment, one item per line, and
// exits 0.
func fakeShell() int {
	var b strings.Builder
	fmt.Fprintf(&b, "ARGV0=%s\n", os.Args[0])
	wd, _ := os.Getwd()
	fmt.Fprintf(&b, "CWD=%s\n", wd)
	for _, kv := range os.Environ() {
		fmt.Fprintf(&b, "ENV %q\n", kv)
	}
	b.WriteString("END\n")
	_, _ = os.Stdout.WriteString(b.String())
	return 0
}

// testServer is a Server running in-process on a loopback port, with its own home directory.
type testServer struct {
	t         *testing.T
	srv       *Server
	addr      string
	home      string
	authPath  string
	hostKey   ed25519.PrivateKey
	clientKey ed25519.PrivateKey // listed in authPath
	log       *termtest.Buffer
	cancel    context.CancelFunc
	done      chan error // Serve's result
}

// startServer starts a Server whose authorized_keys lists a fresh client key; edit, if not nil,
// changes the Config first.
func startServer(t *testing.T, edit func(*Config)) *testServer {
	t.Helper()
	logintest.CheckNoLeftovers(t)
	home := t.TempDir()
	ts := &testServer{
		t:         t,
		home:      home,
		authPath:  filepath.Join(home, ".rlogin", "authorized_keys"),
		hostKey:   newKey(t),
		clientKey: newKey(t),
		log:       &termtest.Buffer{},
		done:      make(chan error, 1),
	}
	ts.writeAuthorized(t, string(keys.MarshalAuthorizedKey(ts.clientKey.Public().(ed25519.PublicKey), "test")), 0o600)
	cfg := Config{
		HostKey:        ts.hostKey,
		AuthorizedKeys: ts.authPath,
		Home:           home,
		LoginGraceTime: shortTimeout,
		Logger:         slog.New(slog.NewTextHandler(ts.log, &slog.HandlerOptions{Level: slog.LevelDebug})),
		// Tests of other things make many failed logins from 127.0.0.1; the tests of the
		// per-source penalties use other loopback addresses (limits_test.go).
		PenaltyExempt: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")},
	}
	if edit != nil {
		edit(&cfg)
	}
	srv, err := NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ts.srv = srv
	ctx, cancel := context.WithCancel(context.Background())
	ts.cancel = cancel
	l, err := transport.Listen(ctx, "127.0.0.1:0")
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	ts.addr = l.Addr().String()
	go func() { ts.done <- srv.Serve(ctx, l) }()
	t.Cleanup(func() {
		if err := ts.stop(); err != nil {
			t.Error(err)
		}
		if t.Failed() || os.Getenv("RLOGIND_TEST_LOG") != "" {
			t.Logf("server log:\n%s", ts.log.String())
		}
	})
	return ts
}

// stop cancels Serve and waits for it; it returns Serve's error or a timeout.
func (ts *testServer) stop() error {
	ts.cancel()
	select {
	case err := <-ts.done:
		ts.done <- err // for a second stop
		return err
	case <-time.After(shortTimeout):
		return fmt.Errorf("Serve did not return within %v of cancel; log:\n%s", shortTimeout, ts.log.String())
	}
}

func (ts *testServer) writeAuthorized(t *testing.T, content string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(ts.authPath), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(ts.authPath, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(ts.authPath, mode); err != nil {
		t.Fatal(err)
	}
}

func newKey(t *testing.T) ed25519.PrivateKey {
	t.Helper()
	_, key, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func pubOf(key ed25519.PrivateKey) ed25519.PublicKey { return key.Public().(ed25519.PublicKey) }

// dialSecure connects to ts's login mailbox and runs the TLS handshake with key, pinning ts's
// host key.
func dialSecure(t *testing.T, address string, hostKey ed25519.PublicKey, key ed25519.PrivateKey) (net.Conn, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), shortTimeout)
	defer cancel()
	conn, err := transport.DialMailbox(ctx, address, MailboxName)
	if err != nil {
		return nil, err
	}
	return transport.Client(ctx, conn, &transport.SecureConfig{
		Key: key,
		VerifyPeer: func(pub ed25519.PublicKey) error {
			if !pub.Equal(hostKey) {
				return errors.New("not the test server's host key")
			}
			return nil
		},
	})
}

// login logs in to ts as the daemon's user with ts's client key; it fails the test if the
// login does not start.
func (ts *testServer) login(t *testing.T) *logintest.Remote {
	t.Helper()
	r, err := logintest.Login(t, ts.addr, pubOf(ts.hostKey), ts.clientKey, ts.request(ts.srv.User()))
	if err != nil {
		t.Fatalf("login: %v\nlog:\n%s", err, ts.log.String())
	}
	return r
}

func (ts *testServer) request(user string) session.Request {
	return session.Request{
		User:   user,
		Term:   "xterm",
		Window: session.WindowSize{Rows: 24, Cols: 80},
		Env:    []string{"LANG=C.UTF-8"},
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// waitFor polls cond until it holds or shortTimeout passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	termtest.WaitFor(t, shortTimeout, what, cond)
}

// children lists the pids whose parent is this process (zombies included).
func children() []int {
	return childrenOf(os.Getpid())
}

func childrenOf(ppid int) []int {
	var pids []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if st, ok := procStat(pid); ok && st.ppid == ppid {
			pids = append(pids, pid)
		}
	}
	sort.Ints(pids)
	return pids
}

type procStatus struct {
	state byte
	ppid  int
}

// procStat reads the state and parent of pid from /proc; ok is false if there is no such process.
func procStat(pid int) (procStatus, bool) {
	stat, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return procStatus{}, false
	}
	// The command name is in parentheses and may hold spaces; the fields after it are fixed.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 || i+2 >= len(stat) {
		return procStatus{}, false
	}
	f := strings.Fields(string(stat[i+2:]))
	if len(f) < 2 {
		return procStatus{}, false
	}
	ppid, _ := strconv.Atoi(f[1])
	return procStatus{state: f[0][0], ppid: ppid}, true
}

// gone reports whether pid has exited (no such process, or a zombie someone else must reap).
func gone(pid int) bool {
	st, ok := procStat(pid)
	return !ok || st.state == 'Z' || st.state == 'X'
}

// waitLog waits until the log matches re and returns the submatches.
func (ts *testServer) waitLog(re string) []string {
	ts.t.Helper()
	mark := 0
	m, ok := ts.log.Expect(&mark, regexp.MustCompile(re), shortTimeout)
	if !ok {
		ts.t.Fatalf("timed out waiting for %q in the log:\n%s", re, ts.log.String())
	}
	return m
}

// waitLogAt waits for a log line that matches re, as waitLog does, and returns the time the line
// says it was logged: what a test measures between two events, however late it polls the log.
func (ts *testServer) waitLogAt(re string) time.Time {
	ts.t.Helper()
	m := ts.waitLog(`time=(\S+) [^\n]*` + re)
	at, err := time.Parse(time.RFC3339Nano, m[1])
	if err != nil {
		ts.t.Fatalf("the time of the log line %q: %v", m[0], err)
	}
	return at
}
