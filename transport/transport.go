// Package transport moves bytes between rlogin clients and servers, or
// between any other tool's: plain stream sockets (TCP over IPv4 and IPv6,
// Unix-domain), named mailboxes that share one listening socket (the TCPMUX
// convention of RFC 1078), and secure streams (TLS 1.3 with ed25519 keys on
// both ends, for which OpenSSH certificates may vouch; no X.509 authorities).
//
// Typical usage, server side:
//
//	ln, err := transport.Listen(ctx, ":5513")
//	...
//	mux := transport.NewMux(ln) // mux owns ln
//	login, err := mux.Announce("login")
//	...
//	go mux.Serve() // returns net.ErrClosed after mux.Close
//	for {
//		c, err := login.Accept() // a *transport.Conn
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
//	...             // errors.As(err, &mailboxErr): refused, or not a TCPMUX server
//	sc, err := transport.Client(ctx, c, &transport.SecureConfig{
//		Key:        userKey,
//		VerifyPeer: knownHost, // pins the server's key
//	})
//
// Package keys reads the OpenSSH-format files that supply them: hostKey
// and userKey with keys.LoadOrCreate, authorized with
// keys.AuthorizedVerifier (authorized_keys) and knownHost with
// KnownHosts.HostVerifier (known_hosts). examples/whoami in this module is
// a whole tool built that way.
//
// Every conn transport hands out is a net.Conn: the conns of mailboxes are
// *Conn, with CloseWrite, NetConn, and ReadFrom and WriteTo that keep the
// kernel's splice and sendfile paths for io.Copy; secure streams are
// *SecureConn, with CloseWrite, NetConn, PeerKey and PeerCertificate.
// Every listener is a net.Listener whose Close unblocks Accept with an
// error matching net.ErrClosed.
//
// The TCP conns a Dialer makes and a Mux accepts notice a peer that vanished
// without a word within 45 seconds, through TCP keepalive and
// TCP_USER_TIMEOUT: their KeepAlive fields change the bound.
//
// A Dialer and a ListenConfig configure the connections as net.Dialer and
// net.ListenConfig do (LocalAddr, Control), or put them on another Network,
// such as the in-memory one of package transport/memnet for tests; Dial,
// Listen, DialMailbox and ListMailboxes use their zero values.
//
// One listening socket can serve other protocols beside the mailboxes: a
// Mux tells them apart by the first byte of the connection, which for a
// mailbox name is printable ASCII. Mux.AnnounceFirstByte(FirstByteClassic)
// receives classic rlogin clients (RFC 1282, first byte NUL), and
// Mux.AnnounceFirstByte(FirstByteTLS) TLS clients that name no mailbox
// (first byte 0x16, a TLS handshake record).
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

// A Network carries stream connections in place of the system's TCP and
// Unix-domain sockets: for example the in-memory network of package
// transport/memnet, so tests and tools run without ports. network is "tcp"
// or "unix", and address is in that network's form ("host:port", or a
// socket path): transport maps its own address forms (see Dial) onto these.
// A Network's methods may be called from several goroutines at once; its
// listeners' Close must unblock Accept with an error matching net.ErrClosed.
type Network interface {
	Dial(ctx context.Context, network, address string) (net.Conn, error)
	Listen(ctx context.Context, network, address string) (net.Listener, error)
}

// errSystemOnly is the error of a Dialer or ListenConfig that sets both a
// Network and options of the system's sockets.
var errSystemOnly = errors.New("LocalAddr and Control configure the system's sockets, not a Network")

// A ListenConfig holds options for listening, as net.ListenConfig does.
// Its zero value listens on the system's sockets, as Listen does.
type ListenConfig struct {
	// Control, if not nil, is called with the socket before it is bound,
	// as net.ListenConfig.Control is: for socket options such as
	// SO_REUSEPORT.
	Control func(network, address string, c syscall.RawConn) error
	// Network, if not nil, carries the listener instead of the system's
	// sockets; it is configured on its own, and Control must be nil.
	Network Network
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
// socket, nor a socket that accepts connections. (With a Network, the
// forms are mapped the same way, and the Network does the rest.)
//
// ctx bounds only the setup, not the listener's life.
func (lc *ListenConfig) Listen(ctx context.Context, address string) (net.Listener, error) {
	network, addr, err := splitAddress(address)
	if err != nil {
		return nil, err
	}
	var l net.Listener
	switch {
	case lc.Network != nil && lc.Control != nil:
		err = errSystemOnly
	case lc.Network != nil:
		l, err = lc.Network.Listen(ctx, network, addr)
	default:
		l, err = lc.listenSystem(ctx, network, addr)
	}
	if err != nil {
		return nil, fmt.Errorf("transport: %w", err)
	}
	return l, nil
}

// listenSystem listens on the system's sockets.
func (lc *ListenConfig) listenSystem(ctx context.Context, network, addr string) (net.Listener, error) {
	nlc := net.ListenConfig{Control: lc.Control}
	l, err := nlc.Listen(ctx, network, addr)
	if err != nil && network == "unix" && errors.Is(err, syscall.EADDRINUSE) && removeStale(ctx, addr) {
		l, err = nlc.Listen(ctx, network, addr)
	}
	return l, err
}

// Listen listens on address (see ListenConfig.Listen for its forms) with
// the zero ListenConfig: on the system's sockets.
func Listen(ctx context.Context, address string) (net.Listener, error) {
	var lc ListenConfig
	return lc.Listen(ctx, address)
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

// A Dialer holds options for connecting, as net.Dialer does. Its zero
// value dials with the system's sockets, as Dial does. A Dialer may be
// used from several goroutines at once.
type Dialer struct {
	// LocalAddr, if not nil, is the address to dial from: a *net.TCPAddr
	// for a TCP address, a *net.UnixAddr for a Unix one (as
	// net.Dialer.LocalAddr). For example &net.TCPAddr{Port: 1023} binds
	// a privileged source port.
	LocalAddr net.Addr
	// Control, if not nil, is called with the socket before it connects,
	// as net.Dialer.Control is: for socket options such as SO_MARK.
	Control func(network, address string, c syscall.RawConn) error
	// Network, if not nil, carries the conns instead of the system's
	// sockets; it is configured on its own, and LocalAddr and Control must
	// be nil.
	Network Network
	// KeepAlive is how a TCP conn notices a dead peer (see KeepAlive); the
	// zero value within 45 seconds.
	KeepAlive KeepAlive
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
// (With a Network, the forms are mapped the same way, and the Network does
// the rest.) ctx bounds the connection setup; once connected, the conn
// does not depend on ctx.
func (d *Dialer) Dial(ctx context.Context, address string) (net.Conn, error) {
	network, addr, err := splitAddress(address)
	if err != nil {
		return nil, err
	}
	var c net.Conn
	switch {
	case d.Network != nil && (d.LocalAddr != nil || d.Control != nil):
		err = errSystemOnly
	case d.Network != nil:
		c, err = d.Network.Dial(ctx, network, addr)
	default:
		nd := net.Dialer{LocalAddr: d.LocalAddr, Control: d.Control}
		c, err = nd.DialContext(ctx, network, addr)
		if err == nil {
			if err = d.KeepAlive.Set(c); err != nil {
				_ = c.Close()
				return nil, err
			}
		}
	}
	if err != nil {
		return nil, fmt.Errorf("transport: %w", err)
	}
	return c, nil
}

// Dial connects to address (see Dialer.Dial for its forms) with the zero
// Dialer: over the system's sockets.
func Dial(ctx context.Context, address string) (net.Conn, error) {
	var d Dialer
	return d.Dial(ctx, address)
}
