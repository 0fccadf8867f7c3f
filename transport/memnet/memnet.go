// Package memnet is a network in memory: Listen and Dial as over TCP and
// Unix-domain sockets, with no port, file or system call, so that tests
// and tools can run a server and its clients inside one process, side by
// side with others, and take them down without a trace.
//
// Typical usage, with package transport:
//
//	var n memnet.Network // the zero value is an empty network
//	lc := transport.ListenConfig{Network: &n}
//	ln, err := lc.Listen(ctx, "127.0.0.1:0")
//	...
//	mux := transport.NewMux(ln)
//	...
//	d := transport.Dialer{Network: &n}
//	c, err := d.DialMailbox(ctx, ln.Addr().String(), "echo")
//
// A Network's conns behave as stream sockets do: each direction is buffered
// (64 KiB, then Write waits for the reader), CloseWrite ends one direction,
// deadlines work as on a net.Conn, and a Close unblocks pending calls on
// that end, whose peer then reads io.EOF and fails to write
// (syscall.EPIPE). A dial to an address nobody listens on, or to a listener
// whose backlog is full, fails at once with syscall.ECONNREFUSED. Errors are
// *net.OpError, as from package net.
package memnet

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"sync"
	"syscall"
)

// backlog is how many dialed conns a listener holds before Accept takes
// them; more are refused, as a full accept queue would drop them.
const backlog = 128

// firstPort is the first port a Listen on port 0 gets, as from the
// system's ephemeral range.
const firstPort = 32768

// A Network is a set of listeners in memory, found by their network
// ("tcp" or "unix") and address. Its zero value is an empty network ready
// to use; it must not be copied after first use. Its methods may be called
// from several goroutines at once.
type Network struct {
	mu        sync.Mutex
	listeners map[Addr]*listener
	lastPort  int // the last port given out for port 0 or to a dialer
}

// An Addr is the address of a memnet listener or conn.
type Addr struct {
	Net     string // "tcp" or "unix"
	Address string // "host:port" for "tcp", a path or name for "unix"
}

// Network returns a.Net.
func (a Addr) Network() string { return a.Net }

// String returns a.Address, which Dial takes back.
func (a Addr) String() string { return a.Address }

// Listen listens on address in network, "tcp" or "unix".
//
// A "tcp" address is "host:port" with a numeric port (host names are not
// resolved: they are just names). Port 0 picks a free port, which Addr of
// the listener tells. A listener on a wildcard host ("", "0.0.0.0" or
// "::", as in ":5513") takes the dials to its port on any host; others
// take only the dials to their own "host:port".
//
// A "unix" address is any non-empty name, a path or not; nothing is
// created in the file system.
//
// An address in use gives an error matching syscall.EADDRINUSE. ctx is
// checked once: Listen does not wait.
func (n *Network) Listen(ctx context.Context, network, address string) (net.Listener, error) {
	fail := func(err error) (net.Listener, error) {
		return nil, &net.OpError{Op: "listen", Net: network, Addr: Addr{network, address}, Err: err}
	}
	if err := ctx.Err(); err != nil {
		return fail(err)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	addr, err := n.listenAddr(network, address)
	if err != nil {
		return fail(err)
	}
	if _, ok := n.listeners[addr]; ok {
		return fail(syscall.EADDRINUSE)
	}
	if n.listeners == nil {
		n.listeners = make(map[Addr]*listener)
	}
	l := &listener{net: n, addr: addr, queue: make(chan *Conn, backlog), done: make(chan struct{})}
	n.listeners[addr] = l
	return l, nil
}

// listenAddr checks address and gives a port to a "tcp" address on port 0.
func (n *Network) listenAddr(network, address string) (Addr, error) {
	switch network {
	case "unix":
		if address == "" {
			return Addr{}, fmt.Errorf("empty address")
		}
		return Addr{network, address}, nil
	case "tcp":
		host, port, err := splitHostPort(address)
		if err != nil {
			return Addr{}, err
		}
		if port == 0 {
			if port, err = n.freePort(host); err != nil {
				return Addr{}, err
			}
		}
		return Addr{network, net.JoinHostPort(host, strconv.Itoa(port))}, nil
	}
	return Addr{}, net.UnknownNetworkError(network)
}

// splitHostPort splits a "tcp" address, whose port must be a number.
func splitHostPort(address string) (host string, port int, err error) {
	host, p, err := net.SplitHostPort(address)
	if err != nil {
		return "", 0, err
	}
	port, err = strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("invalid port %q", p)
	}
	return host, port, nil
}

// freePort returns a port of host that no listener uses. n.mu is held.
func (n *Network) freePort(host string) (int, error) {
	for range 65536 - firstPort {
		n.lastPort = max(n.lastPort+1, firstPort)
		if n.lastPort > 65535 {
			n.lastPort = firstPort
		}
		if _, ok := n.listeners[Addr{"tcp", net.JoinHostPort(host, strconv.Itoa(n.lastPort))}]; !ok {
			return n.lastPort, nil
		}
	}
	return 0, syscall.EADDRINUSE
}

// Dial connects to the listener at address in network, "tcp" or "unix"
// (see Listen for the forms). It fails at once, with an error matching
// syscall.ECONNREFUSED, if nobody listens there or the listener's backlog
// of conns not yet accepted is full. ctx is checked once: Dial does not
// wait.
func (n *Network) Dial(ctx context.Context, network, address string) (net.Conn, error) {
	fail := func(err error) (net.Conn, error) {
		return nil, &net.OpError{Op: "dial", Net: network, Addr: Addr{network, address}, Err: err}
	}
	if err := ctx.Err(); err != nil {
		return fail(err)
	}
	n.mu.Lock()
	l, local, err := n.find(network, address)
	n.mu.Unlock()
	if err != nil {
		return fail(err)
	}
	dialed, accepted := newPair(local, l.addr)
	if !l.enqueue(accepted) {
		return fail(syscall.ECONNREFUSED)
	}
	return dialed, nil
}

// find returns the listener a dial to address reaches, and the dialing
// end's address. n.mu is held.
func (n *Network) find(network, address string) (*listener, Addr, error) {
	switch network {
	case "unix":
		if l := n.listeners[Addr{network, address}]; l != nil {
			return l, Addr{network, ""}, nil
		}
	case "tcp":
		host, port, err := splitHostPort(address)
		if err != nil {
			return nil, Addr{}, err
		}
		for _, h := range []string{host, "", "0.0.0.0", "::"} {
			l := n.listeners[Addr{network, net.JoinHostPort(h, strconv.Itoa(port))}]
			if l == nil {
				continue
			}
			// The dialing end gets a port of its own on the host it dialed.
			if host == "" {
				host = "127.0.0.1"
			}
			local, err := n.freePort(host)
			if err != nil {
				return nil, Addr{}, err
			}
			return l, Addr{network, net.JoinHostPort(host, strconv.Itoa(local))}, nil
		}
	default:
		return nil, Addr{}, net.UnknownNetworkError(network)
	}
	return nil, Addr{}, syscall.ECONNREFUSED
}

// remove forgets l.
func (n *Network) remove(l *listener) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.listeners[l.addr] == l {
		delete(n.listeners, l.addr)
	}
}

// A listener is a Network's net.Listener.
type listener struct {
	net   *Network
	addr  Addr
	queue chan *Conn    // dialed, not yet accepted
	done  chan struct{} // closed by Close

	mu     sync.Mutex // orders enqueue and Close, so no conn is queued after Close
	closed bool
}

// enqueue queues c for Accept and reports whether it did: not when the
// listener is closed or its backlog is full.
func (l *listener) enqueue(c *Conn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return false
	}
	select {
	case l.queue <- c:
		return true
	default:
		return false
	}
}

// Accept waits for a dialed conn; after Close it returns an error matching
// net.ErrClosed.
func (l *listener) Accept() (net.Conn, error) {
	select {
	case c := <-l.queue:
		return c, nil
	case <-l.done:
		return nil, &net.OpError{Op: "accept", Net: l.addr.Net, Addr: l.addr, Err: net.ErrClosed}
	}
}

// Close frees the address, unblocks Accept and closes the conns that were
// dialed but not accepted: their dialers read io.EOF.
func (l *listener) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return &net.OpError{Op: "close", Net: l.addr.Net, Addr: l.addr, Err: net.ErrClosed}
	}
	l.closed = true
	close(l.done)
	l.mu.Unlock()
	l.net.remove(l)
	for {
		select {
		case c := <-l.queue:
			_ = c.Close() // never accepted: nobody else owns it
		default:
			return nil
		}
	}
}

// Addr returns the listener's address; for port 0, the port it got.
func (l *listener) Addr() net.Addr { return l.addr }
