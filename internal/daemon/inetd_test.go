package daemon

import (
	"context"
	"crypto/ed25519"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/rlogin-go/rlogin/internal/termtest"
	"github.com/rlogin-go/rlogin/keys"
	"github.com/rlogin-go/rlogin/session"
	"github.com/rlogin-go/rlogin/transport"
	"golang.org/x/sys/unix"
)

// acceptOne returns both ends of a loopback TCP connection: the server's, as inetd would hand
// it over, and the client's.
func acceptOne(t *testing.T) (server, client net.Conn) {
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
		t.Fatal(err)
	}
	return server, client
}

// clientLogin runs the client side of a login on conn: mailbox, TLS pinned to hostKey,
// session as user.
func clientLogin(t *testing.T, conn net.Conn, hostKey ed25519.PublicKey, key ed25519.PrivateKey, user string) (*remote, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), shortTimeout)
	defer cancel()
	if err := transport.RequestMailbox(ctx, conn, MailboxName); err != nil {
		_ = conn.Close()
		return nil, err
	}
	sc, err := transport.Client(ctx, conn, &transport.SecureConfig{
		Key: key,
		VerifyPeer: func(pub ed25519.PublicKey) error {
			if !pub.Equal(hostKey) {
				return errors.New("wrong host key")
			}
			return nil
		},
	})
	if err != nil {
		return nil, err
	}
	return startRemote(t, sc, session.Request{User: user, Term: "xterm", Window: session.WindowSize{Rows: 24, Cols: 80}})
}

func TestServeConn(t *testing.T) {
	checkNoLeftovers(t)
	home := t.TempDir()
	hostKey, clientKey := newKey(t), newKey(t)
	authPath := filepath.Join(home, "authorized_keys")
	if err := os.WriteFile(authPath, keys.MarshalAuthorizedKey(pubOf(clientKey), "test"), 0o600); err != nil {
		t.Fatal(err)
	}
	log := &termtest.Buffer{}
	newSrv := func() *Server {
		srv, err := NewServer(Config{HostKey: hostKey, AuthorizedKeys: authPath, Home: home,
			Logger: slog.New(slog.NewTextHandler(log, nil))})
		if err != nil {
			t.Fatal(err)
		}
		return srv
	}
	serve := func(srv *Server, conn net.Conn) <-chan error {
		done := make(chan error, 1)
		go func() { done <- srv.ServeConn(context.Background(), conn) }()
		return done
	}
	waitServed := func(done <-chan error) {
		t.Helper()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("ServeConn: %v", err)
			}
		case <-time.After(shortTimeout):
			t.Fatalf("ServeConn still running %v after its connection ended", shortTimeout)
		}
	}

	t.Run("login", func(t *testing.T) {
		srv := newSrv()
		server, client := acceptOne(t)
		done := serve(srv, server)
		r, err := clientLogin(t, client, pubOf(hostKey), clientKey, srv.User())
		if err != nil {
			t.Fatalf("login: %v\n%s", err, log.String())
		}
		r.ready()
		r.exitWith(6)
		waitServed(done)
	})
	t.Run("refused key", func(t *testing.T) {
		srv := newSrv()
		server, client := acceptOne(t)
		done := serve(srv, server)
		_, err := clientLogin(t, client, pubOf(hostKey), newKey(t), srv.User())
		var re *session.RefusedError
		if !errors.As(err, &re) {
			t.Fatalf("login with an unlisted key: %v", err)
		}
		waitServed(done)
	})
	t.Run("bad mailbox", func(t *testing.T) {
		srv := newSrv()
		server, client := acceptOne(t)
		defer client.Close()
		done := serve(srv, server)
		if _, err := io.WriteString(client, "nosuchbox\r\n"); err != nil {
			t.Fatal(err)
		}
		waitServed(done)
	})
	t.Run("stop", func(t *testing.T) {
		srv := newSrv()
		server, client := acceptOne(t)
		defer client.Close()
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- srv.ServeConn(ctx, server) }()
		cancel()
		waitServed(done)
	})
}

// TestRunInetd is rlogind -inetd: the connection is on its standard input; it serves that one
// login and returns.
func TestRunInetd(t *testing.T) {
	checkNoLeftovers(t)
	home := t.TempDir()
	t.Setenv("HOME", home)
	server, client := acceptOne(t)
	f, err := server.(*net.TCPConn).File()
	_ = server.Close()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// Bootstrapping makes the user's key, which the client below uses: the first start must
	// not wait for the client, so it runs on its own first.
	log := &termtest.Buffer{}
	done := make(chan error, 1)
	go func() {
		done <- Run(context.Background(), []string{"-inetd", "-config", "none", "-user-mode"}, Env{Stderr: log, Stdin: f})
	}()
	keyPath := filepath.Join(home, ".rlogin", "id_ed25519")
	hostPath := filepath.Join(home, ".rlogin", "rlogind_host_ed25519_key")
	waitFor(t, "the bootstrap", func() bool {
		_, err1 := os.Stat(filepath.Join(home, ".rlogin", "authorized_keys"))
		_, err2 := os.Stat(hostPath + ".pub")
		return err1 == nil && err2 == nil
	})
	userKey, err := keys.Load(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	hostKey, err := keys.Load(hostPath)
	if err != nil {
		t.Fatal(err)
	}
	r, err := clientLogin(t, client, pubOf(hostKey), userKey, currentUser(t))
	if err != nil {
		t.Fatalf("login: %v\n%s", err, log.String())
	}
	r.ready()
	r.exitWith(3)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run -inetd: %v", err)
		}
	case <-time.After(shortTimeout):
		t.Fatal("Run -inetd did not return after its session")
	}
	if !regexp.MustCompile(`msg="session ended".*status=3`).MatchString(log.String()) {
		t.Errorf("log lacks the session's end:\n%s", log.String())
	}
	// Standard input that is not a socket.
	if err := Run(context.Background(), []string{"-inetd", "-config", "none"}, Env{Stderr: io.Discard, Stdin: os.Stdout}); err == nil {
		t.Error("Run -inetd with a non-socket standard input succeeded")
	}
}

// TestInetdConnStaysNonblocking: taking the connection from standard input leaves its socket
// non-blocking. The conn shares the socket's open file description with the file, and a review
// of a hang found the checks made it blocking (os.File.Fd does), under the session's raw reads.
func TestInetdConnStaysNonblocking(t *testing.T) {
	server, client := acceptOne(t)
	defer client.Close()
	f, err := server.(*net.TCPConn).File()
	_ = server.Close()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	c, err := inetdConn(f)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if sameFile(f, os.Stderr) {
		t.Fatal("sameFile: the socket is not standard error")
	}
	rc, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var flags int
	var ferr error
	if err := rc.Control(func(fd uintptr) { flags, ferr = unix.FcntlInt(fd, unix.F_GETFL, 0) }); err != nil || ferr != nil {
		t.Fatal(err, ferr)
	}
	if flags&unix.O_NONBLOCK == 0 {
		t.Fatal("the connection's socket is blocking after inetdConn and sameFile")
	}
}
