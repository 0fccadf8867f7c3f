// Package transport moves bytes between rlogin clients and servers: plain
// stream sockets (TCP over IPv4 and IPv6, Unix-domain), named mailboxes that
// share one listening socket (the TCPMUX convention of RFC 1078), and secure
// streams (TLS 1.3 with ed25519 keys on both ends, no certificate authorities).
//
// Every conn it hands out is a net.Conn, and the conns of mailboxes are
// *Conn, with CloseWrite and NetConn; every listener is a net.Listener whose
// Close unblocks Accept with an error matching net.ErrClosed.
//
// One listening socket can serve other protocols beside the mailboxes: a
// Mux tells them apart by the first byte of the connection, which for a
// mailbox name is printable ASCII. Mux.AnnounceFirstByte(FirstByteClassic)
// receives classic rlogin clients (RFC 1282, first byte NUL), and
// Mux.AnnounceFirstByte(FirstByteTLS) TLS clients that name no mailbox
// (first byte 0x16, a TLS handshake record).
//
// Typical usage, server side:
//
//	ln, err := transport.Listen(ctx, ":5513")
//	...
//	mux := transport.NewMux(ln) // mux owns ln
//	login, err := mux.Announce("login")
//	...
//	classic, err := mux.AnnounceFirstByte(transport.FirstByteClassic) // optional: NUL-first conns
//	...
//	go mux.Serve() // returns net.ErrClosed after mux.Close
//	for {
//		c, err := login.Accept()
//		...
//		sc, err := transport.Server(ctx, c, &transport.SecureConfig{
//			Key:        hostKey,
//			VerifyPeer: authorized, // func(ed25519.PublicKey) error
//		})
//		...
//	}
//
// and client side:
//
//	c, err := transport.DialMailbox(ctx, "host:5513", "login")
//	...
//	sc, err := transport.Client(ctx, c, &transport.SecureConfig{
//		Key:        userKey,
//		VerifyPeer: knownHost, // pins the server's key
//	})
package transport

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
	"time"
)

// staleProbeTimeout bounds the dial that tells a stale Unix socket file from
// a live one.
const staleProbeTimeout = time.Second

// splitAddress maps an address to a network ("tcp" or "unix") and the
// address in that network's form.
func splitAddress(address string) (network, addr string, err error) {
	switch {
	case strings.HasPrefix(address, "unix:"):
		network, addr = "unix", strings.TrimPrefix(address, "unix:")
	case strings.HasPrefix(address, "tcp:"):
		network, addr = "tcp", strings.TrimPrefix(address, "tcp:")
	case strings.Contains(address, "/"):
		network, addr = "unix", address
	default:
		network, addr = "tcp", address
	}
	if addr == "" {
		return "", "", fmt.Errorf("transport: empty address %q", address)
	}
	return network, addr, nil
}

// Listen listens for stream connections on address, which takes one of the
// forms:
//
//	"host:port", "[ipv6]:port"  TCP on that host's address (IPv4 or IPv6)
//	":port"                     TCP on all interfaces, IPv4 and IPv6
//	"tcp:host:port"             TCP, explicitly (for a host named "unix")
//	"unix:/path/sock"           Unix-domain stream socket at that path
//	"/path/sock", "dir/sock"    Unix-domain, for any address containing '/'
//	"unix:@name"                Linux abstract Unix socket (no file)
//
// A port of 0 picks a free port; Addr of the returned listener tells which.
// A Unix listener removes its socket file on Close. If the socket file
// already exists but nobody listens on it (a stale file left by a process
// that died), Listen replaces it; it never removes a file that is not a
// socket, nor a socket that accepts connections.
//
// ctx bounds only the setup, not the listener's life.
func Listen(ctx context.Context, address string) (net.Listener, error) {
	network, addr, err := splitAddress(address)
	if err != nil {
		return nil, err
	}
	var lc net.ListenConfig
	l, err := lc.Listen(ctx, network, addr)
	if err != nil && network == "unix" && errors.Is(err, syscall.EADDRINUSE) && removeStale(ctx, addr) {
		l, err = lc.Listen(ctx, network, addr)
	}
	if err != nil {
		return nil, fmt.Errorf("transport: %w", err)
	}
	return l, nil
}

// removeStale removes the Unix socket file at path if it is a socket that
// refuses connections, and reports whether it did.
func removeStale(ctx context.Context, path string) bool {
	fi, err := os.Lstat(path)
	if err != nil || fi.Mode().Type() != os.ModeSocket {
		return false // gone already, or not a socket: never removed
	}
	ctx, cancel := context.WithTimeout(ctx, staleProbeTimeout)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", path)
	if err == nil {
		_ = c.Close() // live socket: leave it alone
		return false
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return false
	}
	return os.Remove(path) == nil
}

// Dial connects to address, which takes one of the forms:
//
//	"host:port", "[ipv6]:port"  TCP to that host (names are resolved)
//	":port"                     TCP to the local system
//	"tcp:host:port"             TCP, explicitly (for a host named "unix")
//	"unix:/path/sock"           Unix-domain stream socket at that path
//	"/path/sock", "dir/sock"    Unix-domain, for any address containing '/'
//	"unix:@name"                Linux abstract Unix socket
//
// ctx bounds the connection setup; once connected, the conn does not
// depend on ctx.
func Dial(ctx context.Context, address string) (net.Conn, error) {
	network, addr, err := splitAddress(address)
	if err != nil {
		return nil, err
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, fmt.Errorf("transport: %w", err)
	}
	return c, nil
}
