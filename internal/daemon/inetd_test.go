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
	"testing"
	"time"

	"github.com/rlogin-go/rlogin/internal/logintest"
	"github.com/rlogin-go/rlogin/internal/termtest"
	"github.com/rlogin-go/rlogin/keys"
	"github.com/rlogin-go/rlogin/session"
)

// clientLogin runs the client side of a login on conn: mailbox, TLS pinned to hostKey,
// session as user.
func clientLogin(t *testing.T, conn net.Conn, hostKey ed25519.PublicKey, key ed25519.PrivateKey, user string) (*logintest.Remote, error) {
	t.Helper()
	return logintest.LoginOn(t, conn, hostKey, key, session.Request{User: user, Term: "xterm", Window: session.WindowSize{Rows: 24, Cols: 80}})
}

func TestServeConn(t *testing.T) {
	logintest.CheckNoLeftovers(t)
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
		server, client := logintest.ConnPair(t)
		done := serve(srv, server)
		r, err := clientLogin(t, client, pubOf(hostKey), clientKey, srv.User())
		if err != nil {
			t.Fatalf("login: %v\n%s", err, log.String())
		}
		r.Ready()
		r.ExitWith(6)
		waitServed(done)
	})
	t.Run("refused key", func(t *testing.T) {
		srv := newSrv()
		server, client := logintest.ConnPair(t)
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
		server, client := logintest.ConnPair(t)
		defer client.Close()
		done := serve(srv, server)
		if _, err := io.WriteString(client, "nosuchbox\r\n"); err != nil {
			t.Fatal(err)
		}
		waitServed(done)
	})
	t.Run("stop", func(t *testing.T) {
		srv := newSrv()
		server, client := logintest.ConnPair(t)
		defer client.Close()
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- srv.ServeConn(ctx, server) }()
		cancel()
		waitServed(done)
	})
}
