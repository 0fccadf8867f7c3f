package daemon

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rlogin-go/rlogin/internal/privsep"
	"github.com/rlogin-go/rlogin/session"
	"github.com/rlogin-go/rlogin/transport"
)

// The net child's side of resume (docs/system-mode.md, "Resume and reattach"). The net child of
// a session on a terminal makes it resumable when its monitor says so (netDetachEnv: a listener
// that can pass connections on), tells the monitor its id (RESUMABLE) and its detaches, and
// continues the session over each connection the monitor hands it (ATTACH). The net child of a
// connection that resumes a session hands it over the socket its monitor gives it (RELAY): it
// writes the client's request there, then relays the bytes both ways.

// netDetachEnv is the net child's resume configuration, "TIMEOUT_NS:BUFFER" (session.Detach's
// Timeout and Buffer); without it, the session is not resumable.
const netDetachEnv = "RLOGIND_NET_DETACH"

// maxRelayedRequest bounds the request written on a RELAY's socket (a LOGIN and a RESUME).
const maxRelayedRequest = 128 << 10

// relayedRequestWait bounds the wait for that request on the session's side.
const relayedRequestWait = 10 * time.Second

// detachEnv is the environment entry that gives a net child d (none: nil).
func detachEnv(d session.Detach) string {
	return fmt.Sprintf("%s=%d:%d", netDetachEnv, int64(d.Timeout), d.Buffer)
}

// detachFromEnv reads netDetachEnv; without it, the zero Detach (no resume).
func detachFromEnv() (session.Detach, error) {
	v := os.Getenv(netDetachEnv)
	if v == "" {
		return session.Detach{}, nil
	}
	timeout, buffer, ok := strings.Cut(v, ":")
	ns, err1 := strconv.ParseInt(timeout, 10, 64)
	n, err2 := strconv.Atoi(buffer)
	if !ok || err1 != nil || err2 != nil || ns < 0 || n < 0 {
		return session.Detach{}, fmt.Errorf("net child: bad %s %q", netDetachEnv, v)
	}
	return session.Detach{Timeout: time.Duration(ns), Buffer: n}, nil
}

// A netResumable is a resumable session as its net child serves it.
type netResumable struct {
	ch  *privsep.Channel
	srv *session.ServerConn

	mu         sync.Mutex
	registered bool   // RESUMABLE was sent
	detached   bool   // the session has no connection (told the monitor once registered)
	skipped    uint64 // what the last attach skipped (Detach.Attached)

	attaching sync.WaitGroup // the ATTACH being served
}

// resumableSession makes the session of srv resumable with d, if its client offered resume and
// d has a timeout; it returns nil otherwise. Call it before Serve.
func resumableSession(ch *privsep.Channel, srv *session.ServerConn, req *session.Request, d session.Detach) *netResumable {
	if d.Timeout <= 0 || req.Command != nil && !req.Command.PTY || !offersResume(req) {
		return nil
	}
	r := &netResumable{ch: ch, srv: srv}
	d.Detached = r.detachedNow
	d.Attached = func(_ string, skipped uint64) {
		r.mu.Lock()
		r.skipped = skipped
		r.detached = false
		r.mu.Unlock()
	}
	srv.Detach = d
	return r
}

// register tells the monitor that the session runs and may be resumed (RESUMABLE), once its
// pty is here: the login is authorized then.
func (r *netResumable) register() {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.registered {
		return
	}
	r.registered = true
	if r.ch.Send(&privsep.Resumable{ID: r.srv.ID()}) == nil && r.detached {
		_ = r.ch.Send(&privsep.Detached{Cause: "the connection was lost during the login"})
	}
}

// detachedNow is the session's Detach.Detached.
func (r *netResumable) detachedNow(cause error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.detached = true
	if r.registered {
		text := "unknown"
		if cause != nil {
			text = cause.Error()
		}
		_ = r.ch.Send(&privsep.Detached{Cause: fitText(text, privsep.MaxCauseLen)})
	}
}

// dispatch handles a message of the monitor during the session other than EXITED: an ATTACH
// with its socket, served in a goroutine that wait waits for (the monitor sends the next only
// after its ATTACHED).
func (r *netResumable) dispatch(msg privsep.Message, files []*os.File) {
	a, ok := msg.(*privsep.Attach)
	if !ok || r == nil {
		for _, f := range files {
			_ = f.Close()
		}
		return
	}
	r.attaching.Go(func() { r.attach(a, files[0]) })
}

// attach continues the session over sock, whose client (at a.Peer) the monitor authenticated as
// the session's user: it reads the request the client's net child wrote there, checks that it
// names this session, and hands the connection to the session, which checks the secret (unless
// a reattach) and answers the client. The monitor learns the outcome (ATTACHED).
func (r *netResumable) attach(a *privsep.Attach, sock *os.File) {
	accepted := false
	defer func() {
		r.mu.Lock()
		skipped := r.skipped
		r.skipped = 0
		r.mu.Unlock()
		if !accepted {
			skipped = 0
		}
		_ = r.ch.Send(&privsep.Attached{Accepted: accepted, Skipped: skipped})
	}()
	c, err := net.FileConn(sock)
	_ = sock.Close()
	if err != nil {
		return
	}
	uc, ok := c.(*net.UnixConn)
	if !ok {
		_ = c.Close()
		return
	}
	conn := &relayedConn{UnixConn: uc, peer: peerAddr(a.Peer)}
	req, err := readRelayedRequest(conn)
	if err != nil {
		_ = conn.Close()
		return
	}
	next := session.NewServerConnWithRequest(conn, req)
	if req.Resume == nil || req.Resume.ID != r.srv.ID() || a.Reattach != (req.Resume.Secret == nil) {
		_ = next.Refuse(reasonNoSession)
		return
	}
	reason := "resumed from " + peerOrLocal(a.Peer)
	if a.Reattach {
		reason = "taken over from " + peerOrLocal(a.Peer)
	}
	accepted = r.srv.Attach(next, a.Reattach, reason) == nil
}

// disable makes the session not resumable after all (a password login: see verdict). Call it
// before Serve.
func (r *netResumable) disable() {
	if r != nil {
		r.srv.Detach = session.Detach{}
	}
}

// dispatcher is dispatch, or nil for no resumable session.
func (r *netResumable) dispatcher() func(privsep.Message, []*os.File) {
	if r == nil {
		return nil
	}
	return r.dispatch
}

// wait waits for the ATTACH being served, if any.
func (r *netResumable) wait() {
	if r != nil {
		r.attaching.Wait()
	}
}

// peerOrLocal names the peer of a close reason.
func peerOrLocal(peer string) string {
	if peer == "" {
		return "a local connection"
	}
	return peer
}

// A relayedConn is the session's end of a RELAY socket: its remote address is the client's, as
// the client's monitor got it from the kernel.
type relayedConn struct {
	*net.UnixConn
	peer peerAddr
}

func (c *relayedConn) RemoteAddr() net.Addr { return c.peer }

// peerAddr is a client's address as text ("" for a Unix socket).
type peerAddr string

func (a peerAddr) Network() string { return "tcp" }
func (a peerAddr) String() string  { return string(a) }

// writeRelayedRequest writes req on w, as readRelayedRequest reads it: a u32 length, then
// session.MarshalRequest's bytes.
func writeRelayedRequest(w io.Writer, req *session.Request) error {
	b, err := session.MarshalRequest(req)
	if err != nil {
		return err
	}
	if len(b) > maxRelayedRequest {
		return fmt.Errorf("net child: a request of %d bytes to relay", len(b))
	}
	_, err = w.Write(append(binary.BigEndian.AppendUint32(nil, uint32(len(b))), b...))
	return err
}

// readRelayedRequest reads the request writeRelayedRequest wrote on c, within
// relayedRequestWait, checked as ReadRequest checks one.
func readRelayedRequest(c net.Conn) (*session.Request, error) {
	_ = c.SetReadDeadline(time.Now().Add(relayedRequestWait))
	defer func() { _ = c.SetReadDeadline(time.Time{}) }()
	var n [4]byte
	if _, err := io.ReadFull(c, n[:]); err != nil {
		return nil, err
	}
	size := binary.BigEndian.Uint32(n[:])
	if size > maxRelayedRequest {
		return nil, fmt.Errorf("net child: a relayed request of %d bytes", size)
	}
	b := make([]byte, size)
	if _, err := io.ReadFull(c, b); err != nil {
		return nil, err
	}
	return session.UnmarshalRequest(b)
}

// serveResume serves a connection whose request (req, read by srv over sc) resumes or lists
// sessions, once its monitor authenticated login: the list, a refusal, or the relay to the
// session (RELAY).
func (n *netServer) serveResume(ctx context.Context, c net.Conn, sc *transport.SecureConn, srv *session.ServerConn, req *session.Request, login *privsep.Login) error {
	var instead privsep.Message = &privsep.List{}
	if req.Resume != nil {
		instead = &privsep.Resume{ID: req.Resume.ID, Reattach: req.Resume.Secret == nil}
	}
	if err := n.ch.Send(instead); err != nil {
		_ = srv.Close()
		return err
	}
	msg, files, err := n.decide(login, secureNet{srv})
	if err != nil {
		_ = srv.Close()
		return err
	}
	switch msg := msg.(type) {
	case *privsep.Refuse:
		_ = srv.Refuse(msg.Reason)
		return nil
	case *privsep.Sessions:
		return srv.SendSessions(sessionInfos(msg.List))
	case *privsep.Relay:
		_ = c.SetDeadline(time.Time{}) // the session's own keepalive watches the connection now
		_ = sc.SetDeadline(time.Time{})
		return relaySession(ctx, sc, files[0], req, srv.KeyProofOffered())
	}
	_ = srv.Close()
	return fmt.Errorf("unexpected %v from the monitor", msg.Type())
}

// sessionInfos is a SESSIONS message's list as the session protocol sends it.
func sessionInfos(list []privsep.SessionEntry) []session.SessionInfo {
	infos := make([]session.SessionInfo, len(list))
	for i, e := range list {
		infos[i] = session.SessionInfo{ID: e.ID, Attached: e.Attached, Started: time.Unix(int64(e.Started), 0),
			Peer: e.Peer, What: e.What, PID: int(e.PID)}
		if !e.Attached {
			infos[i].Detached = time.Unix(int64(e.Detached), 0)
		}
	}
	return infos
}

// relaySession writes req on sock, the socket to the session, and relays the bytes between
// client and sock both ways until either ends or ctx is done; it closes both. challenged says
// that the client's CHALLENGE carried the protocol's version byte already, which the session's
// answer must then not repeat (dropVersion).
func relaySession(ctx context.Context, client net.Conn, sock *os.File, req *session.Request, challenged bool) error {
	c, err := net.FileConn(sock)
	_ = sock.Close()
	if err != nil {
		_ = client.Close()
		return fmt.Errorf("net child: relay: %w", err)
	}
	if err := writeRelayedRequest(c, req); err != nil {
		_ = c.Close()
		_ = client.Close()
		return fmt.Errorf("net child: relay: %w", err)
	}
	var once sync.Once
	closeBoth := func() {
		once.Do(func() {
			_ = client.Close()
			_ = c.Close()
		})
	}
	stop := context.AfterFunc(ctx, closeBoth)
	defer stop()
	var from io.Reader = c
	if challenged {
		from = dropVersion(c)
	}
	var copies sync.WaitGroup
	copies.Go(func() { copyToSession(c, client); closeBoth() })
	copies.Go(func() {
		if copyToClient(client, from) == 0 && ctx.Err() == nil {
			// The session ended before it answered: it expired, or ended, after the listener
			// passed this conn on and before its own net child could take it. The client gets
			// the answer of every resume that cannot be served, not a bare end of the conn.
			refuseRelayed(client, req, challenged)
		}
		closeBoth()
	})
	copies.Wait()
	return nil
}

// copyToSession copies the client's bytes to the session.
func copyToSession(session io.Writer, client io.Reader) { _, _ = io.Copy(session, client) }

// copyToClient copies the session's bytes to the client, and returns how many.
func copyToClient(client io.Writer, session io.Reader) int64 {
	n, _ := io.Copy(client, session)
	return n
}

// refuseRelayed answers the relayed request req on client with the refusal "no such session",
// as the session's own net child would have; challenged as for relaySession.
func refuseRelayed(client net.Conn, req *session.Request, challenged bool) {
	var srv *session.ServerConn
	if challenged {
		srv = session.NewServerConnChallenged(client, req)
	} else {
		srv = session.NewServerConnWithRequest(client, req)
	}
	_ = srv.Refuse(reasonNoSession) // best effort: the client may be gone
}

// sessionVersion is the session protocol's version byte (docs/protocol.md §3).
const sessionVersion = 1

// dropVersion returns r without its first byte if that is the protocol's version byte. The
// session answers a relayed request as if nothing had been written to the client yet
// (session.NewServerConnWithRequest), so its answer starts with the version byte; but after a
// CHALLENGE, which carried the version byte, the client reads the answer without it. No answer
// frame has type 1 (ACCEPT 2, REFUSE 3), so an answer without the byte passes unchanged.
func dropVersion(r io.Reader) io.Reader {
	var first [1]byte
	return io.MultiReader(readerFunc(func(b []byte) (int, error) {
		if _, err := io.ReadFull(r, first[:]); err != nil {
			return 0, err
		}
		if first[0] == sessionVersion {
			return 0, io.EOF // this part of the MultiReader is done; r follows
		}
		b[0] = first[0]
		return 1, io.EOF
	}), r)
}

// readerFunc is a function as an io.Reader.
type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(b []byte) (int, error) { return f(b) }
