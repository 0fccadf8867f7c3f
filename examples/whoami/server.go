package main

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"

	"github.com/rlogin-go/rlogin/keys"
	"github.com/rlogin-go/rlogin/transport"
)

// handshakeTimeout bounds a client's TLS handshake, so a silent one does not
// hold its goroutine.
const handshakeTimeout = 10 * time.Second

// A server answers on the mailbox "whoami".
type server struct {
	secure *transport.SecureConfig
	log    *slog.Logger
}

// newServer loads (or makes) the host key; clients are checked against
// authorized_keys at every connection.
func newServer(cfg config) (*server, error) {
	hostKey, _, err := keys.LoadOrCreate(cfg.hostKey())
	if err != nil {
		return nil, err
	}
	return &server{
		secure: &transport.SecureConfig{
			Key:              hostKey,
			HandshakeTimeout: handshakeTimeout,
			VerifyPeer:       keys.AuthorizedVerifier(cfg.authorizedKeys(), os.Geteuid(), cfg.home),
		},
		log: slog.New(slog.DiscardHandler),
	}, nil
}

func (s *server) hostPublic() ed25519.PublicKey { return s.secure.Key.Public().(ed25519.PublicKey) }

// serve answers the conns of ln, which it owns, until ctx ends; then it
// closes ln and waits for the conns it serves.
func (s *server) serve(ctx context.Context, ln net.Listener) error {
	mux := transport.NewMux(ln)
	box, err := mux.Announce(Mailbox)
	if err != nil {
		_ = mux.Close()
		return err
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() { _ = mux.Serve() })
	stop := context.AfterFunc(ctx, func() { _ = mux.Close() }) // unblocks Accept
	defer stop()
	for {
		c, err := box.Accept()
		if errors.Is(err, net.ErrClosed) {
			return nil // ctx ended
		}
		if err != nil {
			_ = mux.Close()
			return err
		}
		wg.Go(func() { s.answer(ctx, c) })
	}
}

// answer runs the handshake on c, which it owns, and tells the client its
// key.
func (s *server) answer(ctx context.Context, c net.Conn) {
	sc, err := transport.Server(ctx, c, s.secure) // closes c on failure
	if err != nil {
		s.log.Info("refused", "peer", c.RemoteAddr().String(), "err", err)
		return
	}
	defer sc.Close()
	_ = sc.SetWriteDeadline(time.Now().Add(handshakeTimeout)) // a client that does not read
	fmt.Fprintf(sc, "you are %s\n", keys.Fingerprint(sc.PeerKey()))
}
