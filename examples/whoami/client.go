package main

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"

	"github.com/rlogin-go/rlogin/keys"
	"github.com/rlogin-go/rlogin/transport"
)

// maxAnswer bounds what the client reads of the server's answer.
const maxAnswer = 4096

// A client asks a server who it is.
type client struct {
	key       ed25519.PrivateKey
	known     *keys.KnownHosts
	acceptNew bool      // trust a server not in known_hosts yet
	notes     io.Writer // told when a server's key is added to known_hosts
	dialer    transport.Dialer
}

// ask dials addr's mailbox, checks the server's key and returns its answer.
func (c *client) ask(ctx context.Context, addr string) (string, error) {
	conn, err := c.dialer.DialMailbox(ctx, addr, Mailbox)
	if err != nil {
		return "", err
	}
	var unknown ed25519.PublicKey // a new server's key, trusted on first use
	verify := c.known.HostVerifier(addr)
	sc, err := transport.Client(ctx, conn, &transport.SecureConfig{
		Key: c.key,
		VerifyPeer: func(pub ed25519.PublicKey) error {
			err := verify(pub)
			if c.acceptNew && errors.Is(err, keys.ErrUnknownHost) {
				unknown = pub
				return nil
			}
			return err
		},
	})
	if err != nil {
		return "", err // conn closed by Client
	}
	defer sc.Close()
	if unknown != nil {
		// Only now has the server proved that it holds the key.
		if err := c.known.Add(addr, unknown); err != nil {
			return "", err
		}
		fmt.Fprintf(c.notes, "whoami: added %s (%s) to %s\n", addr, keys.Fingerprint(unknown), c.known.Path)
	}
	answer, err := io.ReadAll(io.LimitReader(sc, maxAnswer))
	if err != nil {
		return "", fmt.Errorf("no answer (was our key %s refused?): %w", keys.Fingerprint(c.key.Public().(ed25519.PublicKey)), err)
	}
	return string(answer), nil
}
