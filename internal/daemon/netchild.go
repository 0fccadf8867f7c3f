package daemon

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/rlogin-go/rlogin/internal/pamlogin"
	"github.com/rlogin-go/rlogin/internal/privsep"
	"github.com/rlogin-go/rlogin/pty"
	"github.com/rlogin-go/rlogin/session"
	"github.com/rlogin-go/rlogin/session/classic"
	"github.com/rlogin-go/rlogin/transport"
	"golang.org/x/crypto/ssh"
)

// The net child: the process of one connection that reads the network (see roles.go). It runs
// without privileges (privsep.Confine), and everything it learns goes to its monitor as
// messages; after authentication it serves the session over the pty master the monitor hands
// it. What it writes on its standard error, the monitor logs (sanitized) as why it ended.

// The net child's environment: what it needs of the configuration, none of it secret.
const (
	netHostKeyEnv  = "RLOGIND_NET_HOST_KEY"  // the host's public key, hex
	netDeadlineEnv = "RLOGIND_NET_DEADLINE"  // the end of the login grace time, Unix nanoseconds
	netClassicEnv  = "RLOGIND_NET_CLASSIC"   // "1": classic rlogin is served
	netHostCertEnv = "RLOGIND_NET_HOST_CERT" // the host's OpenSSH certificate, if any: wire format, base64
)

// runNetChild is the net role's main.
func runNetChild() int {
	if err := privsep.Confine(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := serveNet(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// serveNet serves the net child's connection.
func serveNet() error {
	pub, err := hex.DecodeString(os.Getenv(netHostKeyEnv))
	if err != nil || len(pub) != ed25519.PublicKeySize {
		return errors.New("net child: no host key")
	}
	nanos, err := strconv.ParseInt(os.Getenv(netDeadlineEnv), 10, 64)
	if err != nil {
		return errors.New("net child: no deadline")
	}
	deadline := time.Unix(0, nanos)
	ch, err := privsep.NewFileChannel(os.NewFile(netChannelFD, "net-channel"), privsep.NetSide)
	if err != nil {
		return err
	}
	defer ch.Close()
	connFile := os.NewFile(netConnFD, "net-conn")
	conn, err := net.FileConn(connFile)
	_ = connFile.Close() // conn has its own descriptor
	if err != nil {
		return fmt.Errorf("net child: %w", err)
	}
	_ = conn.SetDeadline(deadline)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	// A SIGHUP or SIGINT meant for rlogind (pkill -HUP rlogind at a log rotation) must not end
	// the session: taken and dropped.
	signal.Notify(make(chan os.Signal, 1), syscall.SIGHUP, syscall.SIGINT)
	n := &netServer{ch: ch, hostKey: ed25519.PublicKey(pub), deadline: deadline}
	if n.alive, err = clientAliveFromEnv(); err != nil {
		return err
	}
	if n.detach, err = detachFromEnv(); err != nil {
		return err
	}
	if c := os.Getenv(netHostCertEnv); c != "" {
		n.hostCert, err = parseCertificate(c)
		if err != nil {
			return err
		}
	}
	return n.serve(ctx, conn, os.Getenv(netClassicEnv) == "1")
}

// A netServer serves one connection in the net child.
type netServer struct {
	ch       *privsep.Channel
	hostKey  ed25519.PublicKey
	hostCert *ssh.Certificate // presented with hostKey, or nil
	deadline time.Time
	alive    session.Keepalive // Config.ClientAlive
	detach   session.Detach    // the sessions' resume (netDetachEnv); zero: none
	res      *netResumable     // the session, if it may be resumed
}

// parseCertificate reads the host certificate the monitor passed (netHostCertEnv).
func parseCertificate(b64 string) (*ssh.Certificate, error) {
	blob, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, fmt.Errorf("net child: host certificate: %w", err)
	}
	pub, err := ssh.ParsePublicKey(blob)
	if err != nil {
		return nil, fmt.Errorf("net child: host certificate: %w", err)
	}
	cert, ok := pub.(*ssh.Certificate)
	if !ok {
		return nil, errors.New("net child: host certificate: not a certificate")
	}
	return cert, nil
}

// serve sorts conn out as the daemon's Mux does (the login mailbox, and with classic, the first
// bytes of classic clients and of TLS clients that name no mailbox) and serves it.
func (n *netServer) serve(ctx context.Context, conn net.Conn, classicOn bool) error {
	one := newOneConnListener(conn)
	mux := transport.NewMux(one)
	mux.NameTimeout = time.Until(n.deadline)
	mux.MaxPending = 1
	mux.KeepAlive = tcpKeepAlive(n.alive)
	type route struct {
		l      net.Listener
		handle func(context.Context, net.Conn) error
	}
	mb, err := mux.Announce(MailboxName)
	if err != nil {
		return err
	}
	routes := []route{{mb, n.serveSecure}}
	if classicOn {
		cl, err := mux.AnnounceFirstByte(transport.FirstByteClassic)
		if err != nil {
			return err
		}
		tl, err := mux.AnnounceFirstByte(transport.FirstByteTLS)
		if err != nil {
			return err
		}
		routes = append(routes, route{tl, n.serveSecure}, route{cl, n.serveClassic})
	}
	type handed struct {
		c      net.Conn
		handle func(context.Context, net.Conn) error
	}
	got := make(chan handed, len(routes))
	var accepts sync.WaitGroup
	for _, r := range routes {
		accepts.Go(func() {
			if c, err := r.l.Accept(); err == nil {
				got <- handed{c, r.handle}
			}
		})
	}
	var muxErr error
	var serving sync.WaitGroup
	serving.Go(func() { muxErr = mux.Serve() })
	var h handed
	select {
	case h = <-got:
	case <-one.done: // the Mux gave up on the connection (a bad or unknown name, a timeout)
	case <-ctx.Done():
	}
	_ = mux.Close() // ends the other Accepts and Serve; a conn handed over stays open
	accepts.Wait()
	serving.Wait()
	if h.c == nil {
		select {
		case h = <-got: // handed over just as the Mux closed
		default:
			if muxErr != nil && !errors.Is(muxErr, net.ErrClosed) {
				return muxErr
			}
			return errors.New("connection ended before a login")
		}
	}
	return h.handle(ctx, h.c)
}

// serveSecure runs the secure protocol on c: the TLS handshake (the monitor signs), the login
// request, the monitor's verdict, and the session.
func (n *netServer) serveSecure(ctx context.Context, c net.Conn) error {
	hctx, cancel := context.WithDeadline(ctx, n.deadline)
	defer cancel()
	sc, err := transport.Server(hctx, c, &transport.SecureConfig{
		Key:              privsep.NewHostKeySigner(n.ch, n.hostKey),
		Certificate:      n.hostCert,
		HandshakeTimeout: max(time.Until(n.deadline), time.Millisecond),
	})
	if err != nil {
		return fmt.Errorf("TLS handshake: %w", err)
	}
	_ = sc.SetDeadline(n.deadline)
	srv := session.NewServerConn(sc)
	srv.Keepalive = n.alive
	// The monitor of a PAM build runs commands; without PAM, capability exec is not offered,
	// and a new client says the server runs no commands.
	srv.RunsCommands = pamlogin.Supported
	req, err := srv.ReadRequest()
	if err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			_ = srv.Refuse(reasonTimedOut)
		}
		_ = srv.Close()
		return fmt.Errorf("login request: %w", err)
	}
	login := &privsep.Login{
		Protocol:  privsep.ProtocolSecure,
		User:      req.User,
		Term:      req.Term,
		Window:    req.Window,
		Env:       req.Env,
		ClientKey: sc.PeerKey(),
		Peer:      peerOf(c),
		KeyProof:  srv.KeyProofOffered(),
	}
	if cert := sc.PeerCertificate(); cert != nil {
		login.ClientCertificate = cert.Marshal()
	}
	if req.Resume != nil || req.List {
		return n.serveResume(ctx, c, sc, srv, req, login)
	}
	n.res = resumableSession(n.ch, srv, req, n.detach)
	if req.Command != nil {
		// Before LOGIN, which the monitor acts on as it arrives (docs/privsep-messages.md).
		if err := n.ch.Send(&privsep.Command{Command: *req.Command}); err != nil {
			_ = srv.Close()
			return err
		}
	}
	return n.loginAndServe(ctx, login, secureNet{srv}, sc)
}

// serveClassic runs the classic protocol on c.
func (n *netServer) serveClassic(ctx context.Context, c net.Conn) error {
	srv := classic.NewServerConn(c)
	req, err := srv.ReadRequest()
	if err != nil {
		_ = c.Close()
		return fmt.Errorf("classic handshake: %w", err)
	}
	login := &privsep.Login{
		Protocol:   privsep.ProtocolClassic,
		User:       req.ServerUser,
		ClientUser: req.ClientUser,
		Term:       req.Term,
		Peer:       peerOf(c),
	}
	return n.loginAndServe(ctx, login, classicNet{srv}, c)
}

// A netProtocol is a protocol's server side, as loginAndServe needs it.
type netProtocol interface {
	Refuse(reason string) error
	serve(ctx context.Context, term session.Terminal) error
	// prove has the client sign the monitor's nonce (a CHALLENGE) and returns the signature.
	prove(nonce []byte) ([]byte, error)
}

type secureNet struct{ *session.ServerConn }

func (p secureNet) serve(ctx context.Context, term session.Terminal) error {
	_, err := p.Serve(ctx, term)
	return err
}

func (p secureNet) prove(nonce []byte) ([]byte, error) { return p.Challenge(nonce) }

type classicNet struct{ *classic.ServerConn }

func (classicNet) prove([]byte) ([]byte, error) {
	return nil, errors.New("a classic client proves no key") // the monitor never asks for it
}

func (p classicNet) serve(ctx context.Context, term session.Terminal) error {
	ct, ok := term.(classic.Terminal)
	if !ok { // the monitor sends PIPES only for a secure login's COMMAND
		return errors.New("classic: the session has no terminal")
	}
	_, err := p.Serve(ctx, ct)
	return err
}

// loginAndServe asks the monitor to decide login, which came over conn with protocol p, and
// tells the client its refusal, or serves the session the monitor started; when the monitor
// has something to ask or tell the user first (PAM's conversation), the session is accepted at
// once and the conversation goes in band (loginTerminal).
func (n *netServer) loginAndServe(ctx context.Context, login *privsep.Login, p netProtocol, conn net.Conn) error {
	term, err := n.verdict(login, p, func() { _ = conn.SetDeadline(time.Time{}) })
	if err != nil {
		var refused refusal
		if errors.As(err, &refused) {
			_ = p.Refuse(string(refused))
			return nil
		}
		_ = conn.Close()
		return err
	}
	err = p.serve(ctx, term)
	_ = term.Close()
	n.res.wait()
	return err
}

// refusal is verdict's error when the monitor refused the login: the reason for the client.
type refusal string

func (r refusal) Error() string { return "login refused: " + string(r) }

// verdict sends login to the monitor and waits for its answer: the session's terminal, or a
// refusal; started is called once the session's pty is here (the login's deadline ends). A
// CHALLENGE first goes to the client (p), and its signature back as PROOF. A session that may be
// resumed (n.res) is registered with the monitor once its pty is here; a password login is not
// resumable (a PROMPT first: the session starts before the login is decided).
func (n *netServer) verdict(login *privsep.Login, p netProtocol, started func()) (session.Terminal, error) {
	msg, files, err := n.decide(login, p)
	if err != nil {
		return nil, err
	}
	switch msg := msg.(type) {
	case *privsep.Refuse:
		return nil, refusal(msg.Reason)
	case *privsep.Accept:
		shell := startRemoteShell(n.ch, nil, n.res.dispatcher())
		term, err := pty.Attach(files[0], shell)
		if err != nil {
			shell.Kill()
			return nil, err
		}
		started()
		n.res.register()
		return term, nil
	case *privsep.Pipes:
		started()
		return newNetPipes(n.ch, files), nil
	case *privsep.Prompt:
		n.res.disable()
		n.res = nil
		return newLoginTerminal(n.ch, msg, started, nil), nil
	case *privsep.Info:
		res := n.res
		return newLoginTerminal(n.ch, msg, func() { started(); res.register() }, res.dispatcher()), nil
	}
	return nil, fmt.Errorf("unexpected %v from the monitor", msg.Type())
}

// decide sends login to the monitor and returns its answer, with the descriptors it carries;
// a CHALLENGE first goes to the client (p), and its signature back as PROOF.
func (n *netServer) decide(login *privsep.Login, p netProtocol) (privsep.Message, []*os.File, error) {
	if err := n.ch.Send(login); err != nil {
		return nil, nil, err
	}
	msg, files, err := n.ch.Receive()
	if c, ok := msg.(*privsep.Challenge); ok && err == nil {
		sig, err := p.prove(c.Nonce)
		if err != nil {
			return nil, nil, fmt.Errorf("key proof: %w", err)
		}
		if err := n.ch.Send(&privsep.Proof{Sig: sig}); err != nil {
			return nil, nil, err
		}
		msg, files, err = n.ch.Receive()
	}
	return msg, files, err
}

// peerOf is c's remote address, if it is an IP one.
func peerOf(c net.Conn) netip.AddrPort {
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		return a.AddrPort()
	}
	return netip.AddrPort{}
}

// A remoteShell is the shell the monitor runs, as pty.Attach needs it: its process operations
// are messages to the monitor, and its end the monitor's EXITED.
type remoteShell struct {
	ch       *privsep.Channel
	exited   chan struct{}
	hangup   sync.Once
	status   syscall.WaitStatus
	err      error
	onExit   func()                            // or nil
	dispatch func(privsep.Message, []*os.File) // the monitor's other messages (ATTACH), or nil
}

// newRemoteShell returns the shell of ch's session, whose EXITED it waits for in a goroutine
// that ends with that message or with the channel.
func newRemoteShell(ch *privsep.Channel) *remoteShell { return startRemoteShell(ch, nil, nil) }

// startRemoteShell is newRemoteShell that calls onExit, if not nil, when the EXITED arrives (or
// the channel ends), before Exited is closed; and dispatch, if not nil, with each other message
// of the monitor (a resumable session's ATTACH), also after EXITED, until the channel ends.
func startRemoteShell(ch *privsep.Channel, onExit func(), dispatch func(privsep.Message, []*os.File)) *remoteShell {
	s := &remoteShell{ch: ch, exited: make(chan struct{}), onExit: onExit, dispatch: dispatch}
	// Owned by the session: returns at EXITED, which the monitor always sends, or the channel's
	// end; with dispatch, at the channel's end (serveNet closes it as the process ends).
	go s.watch()
	return s
}

func (s *remoteShell) watch() {
	ended := func() {
		if s.onExit != nil {
			s.onExit()
		}
		close(s.exited)
	}
	exited := false
	for {
		msg, files, err := s.ch.Receive()
		if err != nil {
			if !exited {
				s.err = fmt.Errorf("the monitor is gone: %w", err)
				ended()
			}
			return
		}
		if e, ok := msg.(*privsep.Exited); ok && !exited {
			s.status = waitStatus(e)
			exited = true
			ended()
			if s.dispatch == nil {
				return
			}
			continue
		}
		if s.dispatch != nil {
			s.dispatch(msg, files)
			continue
		}
		for _, f := range files {
			_ = f.Close()
		}
	}
}

func (s *remoteShell) Hangup()                 { s.hangup.Do(func() { _ = s.ch.Send(&privsep.Hangup{}) }) }
func (s *remoteShell) Kill()                   { _ = s.ch.Send(&privsep.Kill{}) }
func (s *remoteShell) Exited() <-chan struct{} { return s.exited }
func (s *remoteShell) Wait() (syscall.WaitStatus, error) {
	<-s.exited
	return s.status, s.err
}

// waitStatus is the wait status an EXITED message describes (Linux's encoding).
func waitStatus(e *privsep.Exited) syscall.WaitStatus {
	if e.Signal != 0 {
		ws := syscall.WaitStatus(e.Signal & 0x7f)
		if e.CoreDumped {
			ws |= 0x80
		}
		return ws
	}
	return syscall.WaitStatus((e.Status & 0xff) << 8)
}
