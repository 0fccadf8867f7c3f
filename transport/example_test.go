package transport_test

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/rlogin-go/rlogin/transport"
	"github.com/rlogin-go/rlogin/transport/memnet"
)

// Example_echo is a small tool built on transport alone: an echo server
// behind the mailbox "echo", and its client.
func Example_echo() {
	ctx := context.Background()

	// The server: one listener, one mailbox, one goroutine per conn.
	ln, err := transport.Listen(ctx, "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	mux := transport.NewMux(ln)
	echo, err := mux.Announce("echo")
	if err != nil {
		log.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() { _ = mux.Serve() })
	wg.Go(func() {
		for {
			c, err := echo.Accept()
			if err != nil {
				return // mux closed
			}
			wg.Go(func() {
				defer c.Close()
				_, _ = io.Copy(c, c)
			})
		}
	})
	defer wg.Wait()
	defer mux.Close()

	// The client: names are case-insensitive.
	addr := ln.Addr().String()
	c, err := transport.DialMailbox(ctx, addr, "ECHO")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Fprintln(c, "hello, mailbox")
	_ = c.CloseWrite() // end of input
	reply, err := io.ReadAll(c)
	_ = c.Close()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Print(string(reply))

	names, err := transport.ListMailboxes(ctx, addr)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(names)

	_, err = transport.DialMailbox(ctx, addr, "nope")
	var refused *transport.MailboxError
	fmt.Println(errors.As(err, &refused), err)

	// Output:
	// hello, mailbox
	// [echo]
	// true transport: mailbox "nope" refused: unknown mailbox
}

// Example_secure shows the stack of a secure login: a mailbox, then TLS
// with ed25519 keys pinned on both ends.
func Example_secure() {
	ctx := context.Background()
	hostPub, hostKey, _ := ed25519.GenerateKey(rand.Reader)
	userPub, userKey, _ := ed25519.GenerateKey(rand.Reader)
	pin := func(want ed25519.PublicKey) func(ed25519.PublicKey) error {
		return func(got ed25519.PublicKey) error {
			if !got.Equal(want) {
				return errors.New("unknown key")
			}
			return nil
		}
	}

	ln, err := transport.Listen(ctx, "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	mux := transport.NewMux(ln)
	login, err := mux.Announce("login")
	if err != nil {
		log.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- mux.Serve() }()
	defer func() { _ = mux.Close(); <-served }()

	// Server side: accept, then the TLS handshake; the client must hold an
	// authorized key.
	type result struct {
		msg  string
		user bool
	}
	done := make(chan result, 1)
	go func() {
		c, err := login.Accept()
		if err != nil {
			done <- result{msg: err.Error()}
			return
		}
		sc, err := transport.Server(ctx, c, &transport.SecureConfig{Key: hostKey, VerifyPeer: pin(userPub)})
		if err != nil {
			done <- result{msg: err.Error()}
			return
		}
		defer sc.Close()
		msg, _ := io.ReadAll(sc)
		done <- result{string(msg), sc.PeerKey().Equal(userPub)}
	}()

	// Client side: the mailbox, then TLS; the server must hold the pinned
	// host key.
	c, err := transport.DialMailbox(ctx, ln.Addr().String(), "login")
	if err != nil {
		log.Fatal(err)
	}
	sc, err := transport.Client(ctx, c, &transport.SecureConfig{Key: userKey, VerifyPeer: pin(hostPub)})
	if err != nil {
		log.Fatal(err)
	}
	var conn net.Conn = sc
	key, ok := transport.PeerKey(conn)
	fmt.Println("client sees the host key:", ok && key.Equal(hostPub))
	fmt.Fprint(sc, "hello over TLS 1.3")
	_ = sc.CloseWrite()
	r := <-done
	_ = sc.Close()
	fmt.Println("server sees the user key:", r.user)
	fmt.Println("server read:", r.msg)

	// Output:
	// client sees the host key: true
	// server sees the user key: true
	// server read: hello over TLS 1.3
}

// ExampleSecureConfig_getKey lets a client send its first message before
// it has its key: finding the key (reading a key file, asking an agent)
// overlaps the first round trip, as the server asks for the key only in its
// answer.
func ExampleSecureConfig_getKey() {
	ctx := context.Background()
	_, hostKey, _ := ed25519.GenerateKey(rand.Reader)
	srvConn, cliConn := net.Pipe()
	served := make(chan error, 1)
	go func() {
		sc, err := transport.Server(ctx, srvConn, &transport.SecureConfig{Key: hostKey})
		if err == nil {
			_, err = io.WriteString(sc, "hello")
			_ = sc.Close()
		}
		served <- err
	}()

	findKey := func() (crypto.Signer, *ssh.Certificate, error) {
		_, key, err := ed25519.GenerateKey(rand.Reader) // a key file, an agent: here a new key
		return key, nil, err
	}
	sc, err := transport.Client(ctx, cliConn, &transport.SecureConfig{GetKey: findKey})
	if err != nil {
		log.Fatal(err)
	}
	msg, _ := io.ReadAll(sc)
	_ = sc.Close()
	if err := <-served; err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(msg))

	// Output:
	// hello
}

// ExampleDialer runs a server and its client on an in-memory network: the
// same code as over TCP, with no port.
func ExampleDialer() {
	ctx := context.Background()
	var n memnet.Network
	lc := transport.ListenConfig{Network: &n}
	ln, err := lc.Listen(ctx, "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	mux := transport.NewMux(ln)
	greet, err := mux.Announce("greet")
	if err != nil {
		log.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() { _ = mux.Serve() })
	wg.Go(func() {
		c, err := greet.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		fmt.Fprintln(c, "hello from", c.LocalAddr().Network(), "memory")
	})
	defer wg.Wait()
	defer mux.Close()

	d := transport.Dialer{Network: &n}
	c, err := d.DialMailbox(ctx, ln.Addr().String(), "greet")
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	msg, err := io.ReadAll(c)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Print(string(msg))
	// Output:
	// hello from tcp memory
}

// ExampleMailboxError tells a port that speaks another protocol from a
// TCPMUX server that refuses: here an sshd, whose banner comes where the
// mailbox reply should.
func ExampleMailboxError() {
	ctx := context.Background()
	var n memnet.Network
	ln, err := n.Listen(ctx, "tcp", "127.0.0.1:22")
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		fmt.Fprint(c, "SSH-2.0-OpenSSH_9.2p1\r\n")
		_, _ = io.Copy(io.Discard, c)
	}()
	defer func() { <-done }()

	d := transport.Dialer{Network: &n}
	_, err = d.DialMailbox(ctx, "127.0.0.1:22", "login")
	var me *transport.MailboxError
	if errors.As(err, &me) {
		switch {
		case me.Refused:
			fmt.Println("no such service:", me.Reason)
		case strings.HasPrefix(me.Reply, "SSH-"):
			fmt.Println("that port speaks SSH, not rlogin")
		default:
			fmt.Println(err)
		}
	}
	// Output:
	// that port speaks SSH, not rlogin
}

// ExampleConn reaches what is under a mailbox conn: the TCP socket, for
// its options, and the half-close.
func ExampleConn() {
	ctx := context.Background()
	ln, err := transport.Listen(ctx, "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	mux := transport.NewMux(ln)
	box, err := mux.Announce("upload")
	if err != nil {
		log.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() { _ = mux.Serve() })
	received := make(chan string, 1)
	wg.Go(func() {
		c, err := box.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		var b strings.Builder
		_, _ = io.Copy(&b, c) // through Conn.WriteTo: the kernel's splice where it can
		received <- b.String()
	})
	defer wg.Wait()
	defer mux.Close()

	c, err := transport.DialMailbox(ctx, ln.Addr().String(), "upload")
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	if tcp, ok := c.NetConn().(*net.TCPConn); ok {
		_ = tcp.SetNoDelay(false) // a bulk transfer: let the kernel gather small writes
	}
	// From an *os.File, io.Copy goes through Conn.ReadFrom: the kernel's sendfile.
	_, _ = io.Copy(c, strings.NewReader("a file's bytes"))
	_ = c.CloseWrite() // the end of the upload; c can still read
	fmt.Println(<-received)
	// Output:
	// a file's bytes
}

// ExampleListenConfig sets a socket option on the listening socket before
// it is bound, as net.ListenConfig does.
func ExampleListenConfig() {
	lc := transport.ListenConfig{
		Control: func(network, address string, c syscall.RawConn) error {
			var serr error
			err := c.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1)
			})
			return errors.Join(err, serr)
		},
	}
	ln, err := lc.Listen(context.Background(), "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()
	fmt.Println(ln.Addr().Network())
	// Output:
	// tcp
}

// A client that wants a dead server noticed within 20 seconds rather than 45: keepalive probes
// after 10 seconds of silence, 2 of them, and sent data unacknowledged for at most 20 seconds.
func ExampleKeepAlive() {
	d := transport.Dialer{KeepAlive: transport.KeepAlive{Interval: 10 * time.Second, Count: 2}}
	c, err := d.DialMailbox(context.Background(), "host.example:5513", "login")
	if err != nil {
		return
	}
	defer c.Close()
	// ... transport.Client(ctx, c, cfg) and the session
}
