// Package logintest logs in to a running rlogind from a test, as rlogin would, and checks
// that a test leaves no process or descriptor behind.
//
// Typical usage:
//
//	func TestLogin(t *testing.T) {
//		logintest.CheckNoLeftovers(t)
//		... start the daemon at addr with hostKey, authorizing clientKey ...
//		r, err := logintest.Login(t, addr, hostKey, clientKey, session.Request{User: logintest.CurrentUser(t), Term: "xterm"})
//		if err != nil {
//			t.Fatal(err)
//		}
//		r.Ready()     // the shell runs commands
//		r.ExitWith(3) // and its exit status reaches the client
//	}
//
// Every wait is bounded by Timeout and fails the test when it runs out; the sessions a test
// starts are closed and waited for at its end.
package logintest

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rlogin-go/rlogin/internal/termtest"
	"github.com/rlogin-go/rlogin/session"
	"github.com/rlogin-go/rlogin/transport"
)

// Timeout bounds every single wait: a wait that needs longer is a failure.
const Timeout = 20 * time.Second

// mailbox is the transport mailbox rlogind serves logins on.
const mailbox = "login"

// A Remote is a session logged in through rlogind, with its output collected.
type Remote struct {
	t    testing.TB
	c    Client
	in   io.WriteCloser
	out  *termtest.Buffer
	mark int
	done chan struct{}
	err  error // Wait's result, after done
}

// Login connects to the login mailbox at address, runs the TLS handshake with key, pinning
// hostKey, and starts a session with req. It returns the session's refusal or any other
// failure as an error; the Remote it returns is closed and waited for at the end of the test.
func Login(t testing.TB, address string, hostKey ed25519.PublicKey, key ed25519.PrivateKey, req session.Request) (*Remote, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	conn, err := transport.DialMailbox(ctx, address, mailbox)
	if err != nil {
		return nil, err
	}
	return secure(t, ctx, conn, hostKey, key, req)
}

// LoginOn is Login on conn, already connected (as the client end of an inetd connection).
// It owns conn.
func LoginOn(t testing.TB, conn net.Conn, hostKey ed25519.PublicKey, key ed25519.PrivateKey, req session.Request) (*Remote, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	if err := transport.RequestMailbox(ctx, conn, mailbox); err != nil {
		_ = conn.Close()
		return nil, err
	}
	return secure(t, ctx, conn, hostKey, key, req)
}

// secure runs the TLS handshake on conn and starts the session.
func secure(t testing.TB, ctx context.Context, conn net.Conn, hostKey ed25519.PublicKey, key ed25519.PrivateKey, req session.Request) (*Remote, error) {
	t.Helper()
	sc, err := transport.Client(ctx, conn, &transport.SecureConfig{
		Key: key,
		VerifyPeer: func(pub ed25519.PublicKey) error {
			if !pub.Equal(hostKey) {
				return errors.New("not the host key the test expects")
			}
			return nil
		},
	})
	if err != nil {
		return nil, err
	}
	return Start(t, sc, req)
}

// Start starts a session with req on conn, which has passed the mailbox and TLS already. It
// owns conn.
func Start(t testing.TB, conn net.Conn, req session.Request) (*Remote, error) {
	t.Helper()
	c := session.NewClient(conn, req)
	out := &termtest.Buffer{}
	c.Stdout = out
	return StartClient(t, c, out)
}

// A Client is the client of a login protocol: a *session.Client, or a *classic.Client for
// classic rlogin.
type Client interface {
	StdinPipe() (io.WriteCloser, error)
	Start(ctx context.Context) error
	Wait() error
	Close() error
}

// StartClient starts c, whose Stdout is out, within Timeout, and returns the Remote that types
// into it and reads out. It owns c: it is closed and waited for at the end of the test.
func StartClient(t testing.TB, c Client, out *termtest.Buffer) (*Remote, error) {
	t.Helper()
	r := &Remote{t: t, c: c, out: out, done: make(chan struct{})}
	in, err := c.StdinPipe()
	if err != nil {
		_ = c.Close()
		t.Fatal(err)
	}
	r.in = in
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	if err := c.Start(ctx); err != nil {
		_ = c.Close()
		return nil, err
	}
	go func() { // owned by the cleanup below, which waits for it
		r.err = c.Wait()
		close(r.done)
	}()
	t.Cleanup(func() {
		_ = c.Close()
		<-r.done
	})
	return r, nil
}

// Send types s into the remote shell.
func (r *Remote) Send(s string) {
	r.t.Helper()
	if _, err := io.WriteString(r.in, s); err != nil {
		r.t.Fatalf("sending %q: %v", s, err)
	}
}

// Expect waits until the output after the mark matches re, moves the mark past the match and
// returns the submatches.
func (r *Remote) Expect(re string) []string {
	r.t.Helper()
	m, ok := r.out.Expect(&r.mark, regexp.MustCompile(re), Timeout)
	if !ok {
		r.t.Fatalf("timed out waiting for %q; output:\n%q", re, tail(r.out.String(), 2000))
	}
	return m
}

// Wait waits for the session to end and returns session.Client.Wait's error.
func (r *Remote) Wait() error {
	r.t.Helper()
	select {
	case <-r.done:
		return r.err
	case <-time.After(Timeout):
		r.t.Fatalf("session did not end within %v; output:\n%q", Timeout, tail(r.out.String(), 2000))
		return nil
	}
}

// Ready waits until the remote shell runs commands: the typed text echoes "$((40+2))"
// literally, so only the shell's own output matches.
func (r *Remote) Ready() {
	r.t.Helper()
	r.Send("echo READY$((40+2))\n")
	r.Expect(`READY42`)
}

// ExitWith ends the remote's shell with status and checks that the client got it.
func (r *Remote) ExitWith(status int) {
	r.t.Helper()
	r.Send(fmt.Sprintf("exit %d\n", status))
	err := r.Wait()
	var ee *session.ExitError
	if status == 0 && err == nil || errors.As(err, &ee) && ee.Status == status {
		return
	}
	r.t.Fatalf("session ended with %v, want exit status %d", err, status)
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// CurrentUser is the name of the user running the test, whom a user-mode rlogind serves.
func CurrentUser(t testing.TB) string {
	t.Helper()
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	return u.Username
}

// CheckNoLeftovers checks, when the test ends (after the cleanups registered later, such as a
// server's stop), that the test left no child process and no open descriptor behind.
func CheckNoLeftovers(t testing.TB) {
	t.Helper()
	before := countFDs(t)
	t.Cleanup(func() {
		deadline := time.Now().Add(Timeout)
		for {
			kids, fds := childrenOf(os.Getpid()), countFDs(t)
			if len(kids) == 0 && fds <= before {
				return
			}
			if time.Now().After(deadline) {
				t.Errorf("left behind: child processes %v, %d descriptors (had %d): %s", kids, fds, before, listFDs())
				return
			}
			time.Sleep(10 * time.Millisecond) // polling /proc: there is nothing to wait on
		}
	})
}

func countFDs(t testing.TB) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents) - 1 // the directory being read
}

func listFDs() string {
	ents, _ := os.ReadDir("/proc/self/fd")
	var out []string
	for _, e := range ents {
		target, _ := os.Readlink(filepath.Join("/proc/self/fd", e.Name()))
		out = append(out, e.Name()+"->"+target)
	}
	return strings.Join(out, " ")
}

// childrenOf lists the pids whose parent is ppid (zombies included).
func childrenOf(ppid int) []int {
	var pids []int
	eachProcess(func(pid int, dir string) {
		stat, err := os.ReadFile(filepath.Join(dir, "stat"))
		if err != nil {
			return
		}
		// The command name is in parentheses and may hold spaces; the fields after it are fixed.
		i := bytes.LastIndexByte(stat, ')')
		if i < 0 || i+2 >= len(stat) {
			return
		}
		if f := strings.Fields(string(stat[i+2:])); len(f) >= 2 && f[1] == strconv.Itoa(ppid) {
			pids = append(pids, pid)
		}
	})
	sort.Ints(pids)
	return pids
}

// eachProcess calls fn with each process's pid and /proc directory.
func eachProcess(fn func(pid int, dir string)) {
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		if pid, err := strconv.Atoi(e.Name()); err == nil {
			fn(pid, filepath.Join("/proc", e.Name()))
		}
	}
}

// ConnPair returns both ends of a loopback TCP connection: the server's, as inetd would hand
// it over, and the client's. The test's cleanup closes them.
func ConnPair(t testing.TB) (server, client net.Conn) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	client, err = net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server, err = l.Accept()
	if err != nil {
		_ = client.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = server.Close()
		_ = client.Close()
	})
	return server, client
}

// Output returns all the session's output so far.
func (r *Remote) Output() string { return r.out.String() }
