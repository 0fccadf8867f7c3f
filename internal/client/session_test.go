package client

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	creack "github.com/creack/pty"
	"golang.org/x/crypto/ssh"
	"golang.org/x/sys/unix"

	"github.com/rlogin-go/rlogin/internal/termtest"
	"github.com/rlogin-go/rlogin/keys"
	"github.com/rlogin-go/rlogin/pty"
	"github.com/rlogin-go/rlogin/session"
	"github.com/rlogin-go/rlogin/transport"
)

// testServer is rlogind in miniature: a "login" mailbox on loopback, TLS with its own host key
// (any client key is let in unless authorized is set), and a real shell on a real pty for each
// login.
type testServer struct {
	t       *testing.T
	addr    string // 127.0.0.1:port
	port    string
	hostKey ed25519.PrivateKey

	refuse           string              // if set, every login is refused with this reason
	authorized       []ed25519.PublicKey // if set, only these keys may log in, as rlogind's authorized_keys
	handshakeTimeout time.Duration       // the server's TLS handshake timeout; 0 = the transport's default
	detach           time.Duration       // if set, sessions are resumable (session.Detach.Timeout)
	detachBuffer     int                 // session.Detach.Buffer
	old              bool                // answer as a server older than resume: no capabilities, and fail on LIST or RESUME
	forget           bool                // refuse every resume: "no such session", as for a session that expired
	failConns        atomic.Int32        // close this many new connections at once, before TLS

	requests       chan session.Request
	detached       chan session.SessionID // each session detached (its connection lost), in order
	offered        chan ed25519.PublicKey // the client key of each handshake, in order
	presented      chan *ssh.Certificate  // the client certificate of each handshake (nil: none)
	resizes        chan session.WindowSize
	handshakeFails chan error

	mux      *transport.Mux
	ctx      context.Context
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	mu       sync.Mutex
	conns    []net.Conn                         // the accepted TCP conns, to drop them
	sessions map[session.SessionID]*testSession // the running sessions, by id
}

// testSession is a running session of a testServer, for LIST and RESUME.
type testSession struct {
	srv  *session.ServerConn
	info session.SessionInfo // under testServer.mu
}

func startServer(t *testing.T, configure func(*testServer)) *testServer {
	t.Helper()
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s := &testServer{
		t:              t,
		hostKey:        key,
		requests:       make(chan session.Request, 16),
		detached:       make(chan session.SessionID, 16),
		offered:        make(chan ed25519.PublicKey, 16),
		presented:      make(chan *ssh.Certificate, 16),
		resizes:        make(chan session.WindowSize, 64),
		handshakeFails: make(chan error, 16),
	}
	if configure != nil {
		configure(s)
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	l, err := transport.Listen(s.ctx, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.addr = l.Addr().String()
	_, s.port, _ = net.SplitHostPort(s.addr)
	s.mux = transport.NewMux(l)
	box, err := s.mux.Announce("login")
	if err != nil {
		t.Fatal(err)
	}
	s.wg.Add(2)
	go func() {
		defer s.wg.Done()
		_ = s.mux.Serve()
	}()
	go func() {
		defer s.wg.Done()
		s.acceptLogins(box)
	}()
	t.Cleanup(s.stop)
	return s
}

func (s *testServer) stop() {
	s.cancel()
	_ = s.mux.Close()
	s.wg.Wait()
}

func (s *testServer) acceptLogins(box net.Listener) {
	for {
		c, err := box.Accept()
		if err != nil {
			return
		}
		if s.failConns.Add(-1) >= 0 {
			_ = c.Close() // as a server that is not there yet: the client tries again
			continue
		}
		s.mu.Lock()
		s.conns = append(s.conns, c)
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.serve(c)
		}()
	}
}

// dropConns closes every connection at the TCP level, below TLS and the session protocol, as the
// kernel does for a server that crashed.
func (s *testServer) dropConns() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.conns {
		_ = c.Close()
	}
}

func (s *testServer) serve(c net.Conn) {
	sc, err := transport.Server(s.ctx, c, &transport.SecureConfig{Key: s.hostKey, HandshakeTimeout: s.handshakeTimeout})
	if err != nil {
		select {
		case s.handshakeFails <- err:
		default:
		}
		return
	}
	select {
	case s.offered <- sc.PeerKey():
	default:
	}
	select {
	case s.presented <- sc.PeerCertificate():
	default:
	}
	if s.old {
		s.serveAsOld(sc)
		return
	}
	srv := session.NewServerConn(sc)
	req, err := srv.ReadRequest()
	if err != nil {
		_ = srv.Close()
		return
	}
	select {
	case s.requests <- *req:
	default:
	}
	if req.Resume != nil && s.refuse == "" {
		s.resume(srv, req, sc.RemoteAddr().String()) // srv is the session's now
		return
	}
	defer srv.Close()
	if req.List && s.refuse == "" {
		_ = srv.SendSessions(s.list())
		return
	}
	if s.refuse != "" {
		_ = srv.Refuse(s.refuse)
		return
	}
	if s.authorized != nil && !slices.ContainsFunc(s.authorized, func(k ed25519.PublicKey) bool { return k.Equal(sc.PeerKey()) }) {
		_ = srv.Refuse("permission denied (publickey)") // rlogind's words
		return
	}
	cmd := exec.Command("/bin/sh")
	cmd.Dir = os.TempDir()
	cmd.Env = append([]string{"TERM=" + req.Term, "PS1=$ ", "PATH=/usr/local/bin:/usr/bin:/bin"}, req.Env...)
	p, err := pty.Start(cmd, req.Window)
	if err != nil {
		_ = srv.Refuse("no shell: " + err.Error())
		return
	}
	defer p.Close()
	ts := &testSession{srv: srv, info: session.SessionInfo{ID: srv.ID(), Attached: true, Started: time.Now(),
		Peer: sc.RemoteAddr().String(), What: req.Term, PID: cmd.Process.Pid}}
	s.mu.Lock()
	if s.sessions == nil {
		s.sessions = map[session.SessionID]*testSession{}
	}
	s.sessions[srv.ID()] = ts
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.sessions, srv.ID())
		s.mu.Unlock()
	}()
	if s.detach > 0 {
		srv.Detach = session.Detach{
			Timeout: s.detach,
			Buffer:  s.detachBuffer,
			Detached: func(error) {
				s.mu.Lock()
				ts.info.Attached, ts.info.Detached = false, time.Now()
				s.mu.Unlock()
				select {
				case s.detached <- ts.info.ID:
				default:
				}
			},
			Attached: func(peer string, _ uint64) {
				s.mu.Lock()
				ts.info.Attached, ts.info.Detached, ts.info.Peer = true, time.Time{}, peer
				s.mu.Unlock()
			},
		}
	}
	_, _ = srv.Serve(s.ctx, &ptyTerminal{PTY: p, resizes: s.resizes})
}

// resume hands srv, whose request resumes or reattaches a session, to that session, as rlogind
// does (every client key is this test's one user's).
func (s *testServer) resume(srv *session.ServerConn, req *session.Request, peer string) {
	s.mu.Lock()
	ts := s.sessions[req.Resume.ID]
	s.mu.Unlock()
	if ts == nil || s.forget {
		_ = srv.Refuse("no such session")
		_ = srv.Close()
		return
	}
	reattach := req.Resume.Secret == nil
	reason := "resumed from " + peer
	if reattach {
		reason = "taken over from " + peer
	}
	_ = ts.srv.Attach(srv, reattach, reason)
}

// list is the answer to LIST: every resumable session.
func (s *testServer) list() []session.SessionInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	var list []session.SessionInfo
	for _, ts := range s.sessions {
		list = append(list, ts.info)
	}
	return list
}

// serveAsOld answers as a server older than resume: it reads the version and the LOGIN, accepts
// with no capabilities, and ends at the next frame, which it does not know (RESUME or LIST; the
// protocol's version 1 as a server before them sees it).
func (s *testServer) serveAsOld(sc net.Conn) {
	defer sc.Close()
	br := bufio.NewReader(sc)
	frame := func() (byte, error) {
		var h [4]byte
		if _, err := io.ReadFull(br, h[:]); err != nil {
			return 0, err
		}
		_, err := io.CopyN(io.Discard, br, int64(h[1])<<16|int64(h[2])<<8|int64(h[3]))
		return h[0], err
	}
	if v, err := br.ReadByte(); err != nil || v != 1 {
		return
	}
	if _, err := frame(); err != nil { // LOGIN
		return
	}
	if _, err := sc.Write([]byte{1, 0x02, 0, 0, 1, 0}); err != nil { // version 1, ACCEPT, no capabilities
		return
	}
	_, _ = frame() // then a frame it does not know: the old server's protocol error ends it
}

// ptyTerminal is a *pty.PTY that reports each resize.
type ptyTerminal struct {
	*pty.PTY
	resizes chan<- session.WindowSize
}

func (t *ptyTerminal) Resize(w session.WindowSize) error {
	select {
	case t.resizes <- w:
	default:
	}
	return t.PTY.Resize(w)
}

// trust writes the server's host key into home's known_hosts, and makes the user's key, so rlogin
// says nothing about either.
func (s *testServer) trust(t *testing.T, home string) {
	t.Helper()
	if _, _, err := keys.LoadOrCreate(filepath.Join(home, ".rlogin", "id_ed25519")); err != nil {
		t.Fatal(err)
	}
	k := &keys.KnownHosts{Path: filepath.Join(home, ".rlogin", "known_hosts")}
	if err := k.Add(s.addr, s.hostKey.Public().(ed25519.PublicKey)); err != nil {
		t.Fatal(err)
	}
}

func (s *testServer) request(t *testing.T) session.Request {
	t.Helper()
	select {
	case r := <-s.requests:
		return r
	case <-time.After(testTimeout):
		t.Fatal("no login request reached the server")
		return session.Request{}
	}
}

// nextOffered is the client key of the next handshake.
func (s *testServer) nextOffered(t *testing.T) ed25519.PublicKey {
	t.Helper()
	select {
	case k := <-s.offered:
		return k
	case <-time.After(testTimeout):
		t.Fatal("no handshake reached the server")
		return nil
	}
}

func (s *testServer) resize(t *testing.T) session.WindowSize {
	t.Helper()
	select {
	case w := <-s.resizes:
		return w
	case <-time.After(testTimeout):
		t.Fatal("no window size reached the server")
		return session.WindowSize{}
	}
}

// login starts rlogin in a new terminal against s, with a HOME that knows s's key, and waits for
// the shell.
func login(t *testing.T, s *testServer, args ...string) (*testTerminal, unix.Termios) {
	t.Helper()
	home := t.TempDir()
	s.trust(t, home)
	tt := openTerminal(t)
	before := tt.termios()
	tt.start(userEnv(home), append(args, "-l", "tester", "-p", s.port, "127.0.0.1")...)
	tt.ready()
	return tt, before
}

// ready waits until the remote shell runs commands and prompts for the next: the echo of the
// typed line shows "$((40+2))" literally, so only the shell's output matches.
func (tt *testTerminal) ready() {
	tt.t.Helper()
	tt.send("echo READY$((40+2))\r")
	tt.expect(`READY42\r\n\$ `)
}

// isRaw reports whether the terminal is in raw mode as rlogin sets it.
func isRaw(ts unix.Termios) bool {
	return ts.Lflag&(unix.ICANON|unix.ECHO|unix.ISIG) == 0 && ts.Oflag&unix.OPOST == 0
}

func TestSessionExitStatus(t *testing.T) {
	s := startServer(t, nil)
	tt, before := login(t, s)
	if isRaw(before) {
		t.Fatal("the test terminal starts in raw mode")
	}
	req := s.request(t)
	if req.User != "tester" || req.Term != "xterm" || req.Window != (session.WindowSize{Rows: 24, Cols: 80}) ||
		!slices.Equal(req.Env, []string{"LANG=C.UTF-8", "LC_TEST=yes"}) {
		t.Fatalf("login request %+v", req)
	}
	if during := tt.termios(); !isRaw(during) {
		t.Fatalf("terminal not in raw mode during the session: %+v", during)
	}
	tt.send("exit 7\r")
	if code := tt.wait(); code != 7 {
		t.Fatalf("exit status %d, want 7; output:\n%q", code, tt.out.String())
	}
	if after := tt.termios(); after != before {
		t.Fatalf("terminal not restored:\nbefore %+v\nafter  %+v", before, after)
	}
}

func TestSessionKilledBySignal(t *testing.T) {
	s := startServer(t, nil)
	tt, _ := login(t, s)
	tt.send("kill -KILL $$\r") // an interactive shell ignores SIGTERM
	if code := tt.wait(); code != 128+int(syscall.SIGKILL) {
		t.Fatalf("exit status %d, want %d", code, 128+int(syscall.SIGKILL))
	}
}

func TestEscapes(t *testing.T) {
	s := startServer(t, nil)
	tt, before := login(t, s)

	tt.send("~?")
	tt.expect(`Supported escape sequences:\r\n`)
	tt.expect(`~\.   - terminate connection\r\n`)

	// Not at the start of a line: sent as typed. The prompt after the output is awaited too: a
	// line typed before it shows would be echoed before the prompt, and the anchored matches
	// below would find the prompt in the middle (seen on a loaded machine).
	tt.send("echo a~.b~?c\r")
	tt.expect(`\r\na~\.b~\?c\r\n\$ `)

	// ~~ sends one ~; ~y sends both: cat shows what arrived (after the terminal's echo of it).
	tt.send("cat\r")
	tt.expect(`cat\r\n`)
	tt.send("~~x\r")
	tt.expect(`^~x\r\n~x\r\n`)
	tt.send("~y\r")
	tt.expect(`^~y\r\n~y\r\n`)
	tt.send("\x04")
	tt.ready()

	// ~^Z: rlogin leaves raw mode and stops itself. Here its process group is orphaned (it leads
	// the terminal's session), so the kernel discards the stop: rlogin goes on at once, in raw
	// mode again, and sends the window size.
	tt.send("~\x1a")
	tt.expect(`~\^Z \[suspend rlogin\]\r\n`)
	if w := s.resize(t); w != (session.WindowSize{Rows: 24, Cols: 80}) {
		t.Fatalf("window size after resume %+v", w)
	}
	tt.ready()
	if during := tt.termios(); !isRaw(during) {
		t.Fatalf("terminal not raw after resume: %+v", during)
	}

	tt.send("sleep 1000\r")
	tt.send("~.")
	tt.expect(`Connection to 127\.0\.0\.1 closed\.\r\n`)
	if code := tt.wait(); code != 0 {
		t.Fatalf("exit status %d after ~., want 0", code)
	}
	if after := tt.termios(); after != before {
		t.Fatalf("terminal not restored after ~.:\nbefore %+v\nafter  %+v", before, after)
	}
}

func TestEscapeCharOptions(t *testing.T) {
	s := startServer(t, nil)
	tt, _ := login(t, s, "-e", "^]")
	tt.send("echo x~.y\r")
	tt.expect(`\r\nx~\.y\r\n`)
	tt.send("\x1d.")
	tt.expect(`Connection to 127\.0\.0\.1 closed\.`)
	if code := tt.wait(); code != 0 {
		t.Fatalf("exit status %d", code)
	}

	tt2, _ := login(t, s, "-E")
	tt2.send("~.\r")
	tt2.expect(`~\.: not found`) // the shell got it as a command
	tt2.send("exit 3\r")
	if code := tt2.wait(); code != 3 {
		t.Fatalf("exit status %d with -E", code)
	}
}

func TestWindowChange(t *testing.T) {
	s := startServer(t, nil)
	tt, _ := login(t, s)
	if err := creack.Setsize(tt.master, &creack.Winsize{Rows: 37, Cols: 101, X: 370, Y: 1010}); err != nil {
		t.Fatal(err)
	}
	if w := s.resize(t); w != (session.WindowSize{Rows: 37, Cols: 101, XPixel: 370, YPixel: 1010}) {
		t.Fatalf("server got window %+v", w)
	}
	tt.send("stty size\r")
	tt.expect(`\r\n37 101\r\n`)
}

func TestSignalsRestoreTerminal(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGHUP, syscall.SIGINT, syscall.SIGQUIT} {
		t.Run(unix.SignalName(sig), func(t *testing.T) {
			s := startServer(t, nil)
			tt, before := login(t, s)
			if err := tt.cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			tt.expect(`rlogin: killed by signal \d+ \(` + unix.SignalName(sig) + `\)\r\n`)
			if code := tt.wait(); code != 128+int(sig) {
				t.Fatalf("exit status %d, want %d", code, 128+int(sig))
			}
			if after := tt.termios(); after != before {
				t.Fatalf("terminal not restored:\nbefore %+v\nafter  %+v", before, after)
			}
		})
	}
}

func TestConnectionLost(t *testing.T) {
	s := startServer(t, nil)
	tt, before := login(t, s)
	tt.send("printf 'no newline'\r")
	tt.expect(`printf 'no newline'\r\n`) // the echo
	tt.expect(`^no newline\$ `)          // the output and the prompt
	s.dropConns()
	// The reason starts a new line, once the terminal is back in normal mode.
	m := tt.expect(`^\r+\n(rlogin: connection to 127\.0\.0\.1 lost: [^\r\n]+)\r\n$`)
	t.Logf("reason: %s", m[1])
	if code := tt.wait(); code != ExitFailure {
		t.Fatalf("exit status %d, want %d", code, ExitFailure)
	}
	if after := tt.termios(); after != before {
		t.Fatalf("terminal not restored:\nbefore %+v\nafter  %+v", before, after)
	}
}

func TestServerStopping(t *testing.T) {
	s := startServer(t, nil)
	tt, before := login(t, s)
	s.cancel() // the server ends the session with a reason
	tt.expect(`rlogin: connection closed by 127\.0\.0\.1: [^\r\n]+\r\n`)
	if code := tt.wait(); code != ExitFailure {
		t.Fatalf("exit status %d, want %d", code, ExitFailure)
	}
	if after := tt.termios(); after != before {
		t.Fatalf("terminal not restored:\nbefore %+v\nafter  %+v", before, after)
	}
}

func TestLoginRefused(t *testing.T) {
	s := startServer(t, func(s *testServer) { s.refuse = "no such user \x1b[2J\u202etester" })
	home := t.TempDir()
	s.trust(t, home)
	tt := openTerminal(t)
	before := tt.termios()
	tt.start(userEnv(home), "-l", "tester", "-p", s.port, "127.0.0.1")
	if code := tt.wait(); code != ExitFailure {
		t.Fatalf("exit status %d, want %d", code, ExitFailure)
	}
	if after := tt.termios(); after != before {
		t.Fatalf("terminal changed:\nbefore %+v\nafter  %+v", before, after)
	}
	out := tt.output()
	if !regexp.MustCompile(`^rlogin: 127\.0\.0\.1 refused the login: no such user [^\r\n]*tester\r\n$`).MatchString(out) {
		t.Fatalf("output %q", out)
	}
	if strings.ContainsAny(out, "\x1b\u202e") {
		t.Fatalf("the server's reason reached the terminal unsanitized: %q", out)
	}
}

// TestHostKeyQuestion answers the first-contact question on the terminal.
func TestHostKeyQuestion(t *testing.T) {
	s := startServer(t, nil)
	fp := regexp.QuoteMeta(keys.Fingerprint(s.hostKey.Public().(ed25519.PublicKey)))
	name := regexp.QuoteMeta("'[127.0.0.1]:" + s.port + "'")
	home := t.TempDir()
	known := filepath.Join(home, ".rlogin", "known_hosts")

	// "no": nothing is written, status 255.
	tt := openTerminal(t)
	before := tt.termios()
	tt.start(userEnv(home), "-l", "tester", "-p", s.port, "127.0.0.1")
	tt.expect(`The authenticity of host ` + name + ` can't be established\.\r\n` +
		`ED25519 key fingerprint is ` + fp + `\.\r\n` +
		`Are you sure you want to continue connecting \(yes/no\)\? $`)
	tt.send("no\r")
	tt.expect(`rlogin: host key verification failed: [^\r\n]*\r\n$`)
	if code := tt.wait(); code != ExitFailure {
		t.Fatalf("exit status %d after no, want %d", code, ExitFailure)
	}
	if after := tt.termios(); after != before {
		t.Fatalf("terminal changed:\nbefore %+v\nafter  %+v", before, after)
	}
	if _, err := os.Stat(known); !os.IsNotExist(err) {
		t.Fatalf("known_hosts exists after no: %v", err)
	}

	// Something else, then "yes": the key is added and the login goes on.
	tt = openTerminal(t)
	tt.start(userEnv(home), "-l", "tester", "-p", s.port, "127.0.0.1")
	tt.expect(`\(yes/no\)\? $`)
	tt.send("sure\r")
	tt.expect(`Please type 'yes' or 'no': $`)
	tt.send("yes\r")
	tt.expect(`Warning: Permanently added ` + name + ` \(ED25519\) to the list of known hosts\.\r\n`)
	tt.ready()
	tt.send("exit\r")
	if code := tt.wait(); code != 0 {
		t.Fatalf("exit status %d", code)
	}
	if err := (&keys.KnownHosts{Path: known}).Check(s.addr, s.hostKey.Public().(ed25519.PublicKey)); err != nil {
		t.Fatalf("key not in known_hosts: %v", err)
	}

	// The third time nothing is asked.
	tt = openTerminal(t)
	tt.start(userEnv(home), "-l", "tester", "-p", s.port, "127.0.0.1")
	tt.ready()
	tt.send("exit 4\r")
	if code := tt.wait(); code != 4 {
		t.Fatalf("exit status %d", code)
	}
	if strings.Contains(tt.output(), "authenticity") {
		t.Fatalf("asked again: %q", tt.output())
	}
}

// TestHostKeyQuestionSlowAnswer answers after the server gave up on the handshake: rlogin connects
// again, with the key now known, and asks nothing more.
func TestHostKeyQuestionSlowAnswer(t *testing.T) {
	s := startServer(t, func(s *testServer) { s.handshakeTimeout = time.Second })
	home := t.TempDir()
	tt := openTerminal(t)
	tt.start(userEnv(home), "-d", "-l", "tester", "-p", s.port, "127.0.0.1")
	tt.expect(`\(yes/no\)\? $`)
	select {
	case <-s.handshakeFails:
	case <-time.After(testTimeout):
		t.Fatal("the server's handshake did not time out")
	}
	tt.send("yes\r")
	tt.expect(`Warning: Permanently added`)
	tt.expect(`rlogin: debug: trying again after accepting the host key`)
	tt.ready()
	tt.send("exit 0\r")
	if code := tt.wait(); code != 0 {
		t.Fatalf("exit status %d", code)
	}
	if n := strings.Count(tt.output(), "authenticity"); n != 1 {
		t.Fatalf("asked %d times", n)
	}
}

func TestHostKeyChangedRefused(t *testing.T) {
	s := startServer(t, nil)
	home := t.TempDir()
	other, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if err := (&keys.KnownHosts{Path: filepath.Join(home, ".rlogin", "known_hosts")}).Add(s.addr, other); err != nil {
		t.Fatal(err)
	}
	tt := openTerminal(t)
	before := tt.termios()
	tt.start(userEnv(home), "-l", "tester", "-p", s.port, "127.0.0.1")
	tt.expect(`WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!`)
	tt.expect(regexp.QuoteMeta(keys.Fingerprint(s.hostKey.Public().(ed25519.PublicKey))))
	tt.expect(`Offending key in ~/\.rlogin/known_hosts:1\r\n`)
	tt.expect(regexp.QuoteMeta("ssh-keygen -R '[127.0.0.1]:"+s.port+"' -f ~/.rlogin/known_hosts") + `\r\n`)
	tt.expect(`rlogin: host key verification failed: [^\r\n]*\r\n$`)
	if code := tt.wait(); code != ExitFailure {
		t.Fatalf("exit status %d, want %d", code, ExitFailure)
	}
	if after := tt.termios(); after != before {
		t.Fatalf("terminal changed:\nbefore %+v\nafter  %+v", before, after)
	}
	select {
	case r := <-s.requests:
		t.Fatalf("a login request reached the server despite the changed key: %+v", r)
	default:
	}
}

// TestPipedInput runs rlogin in-process with input from a reader: no terminal, no escapes; the
// end of input reaches the remote shell.
func TestPipedInput(t *testing.T) {
	s := startServer(t, nil)
	home := t.TempDir()
	s.trust(t, home)
	var stdout, stderr termtest.Buffer
	cfg := &Config{
		Stdin:     strings.NewReader("echo piped-$((2+2)) ~.\n"),
		Stdout:    &stdout,
		Stderr:    &stderr,
		Home:      home,
		LocalUser: "tester",
		Environ:   []string{"LC_ALL=C", "SECRET=x"},
	}
	code := cfg.Run(watchdog(t), []string{"-p", s.port, "127.0.0.1"})
	if code != 0 || !strings.Contains(stdout.String(), "piped-4 ~.") || stderr.String() != "" {
		t.Fatalf("status %d, stdout %q, stderr %q", code, stdout.String(), stderr.String())
	}
	req := s.request(t)
	if req.User != "tester" || req.Term != "dumb" || req.Window != (session.WindowSize{Rows: 24, Cols: 80}) ||
		!slices.Equal(req.Env, []string{"LC_ALL=C"}) {
		t.Fatalf("login request %+v", req)
	}
}

// TestPipeStaysOpen gives rlogin a pipe that stays open after the remote shell exits: Run returns
// anyway, and the goroutine reading the pipe ends with it (TestMain checks for leaks).
func TestPipeStaysOpen(t *testing.T) {
	s := startServer(t, nil)
	home := t.TempDir()
	s.trust(t, home)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if _, err := w.WriteString("exit 5\n"); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr termtest.Buffer
	cfg := &Config{Stdin: r, Stdout: &stdout, Stderr: &stderr, Home: home, LocalUser: "tester", Environ: []string{}}
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	if code := cfg.Run(ctx, []string{"-p", s.port, "127.0.0.1"}); code != 5 {
		t.Fatalf("status %d, stdout %q, stderr %q", code, stdout.String(), stderr.String())
	}
}

// TestRunCanceled ends a session by cancelling Run's context.
func TestRunCanceled(t *testing.T) {
	s := startServer(t, nil)
	home := t.TempDir()
	s.trust(t, home)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	var stdout, stderr termtest.Buffer
	cfg := &Config{Stdin: r, Stdout: &stdout, Stderr: &stderr, Home: home, LocalUser: "tester", Environ: []string{}}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan int, 1)
	go func() { done <- cfg.Run(ctx, []string{"-p", s.port, "127.0.0.1"}) }()
	if _, err := w.WriteString("echo started-$((1+1))\n"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the shell to run", func() bool { return strings.Contains(stdout.String(), "started-2") })
	cancel()
	select {
	case code := <-done:
		if code != ExitFailure || !strings.Contains(stderr.String(), "canceled") {
			t.Fatalf("status %d, stderr %q", code, stderr.String())
		}
	case <-time.After(testTimeout):
		t.Fatal("Run did not return after cancel")
	}
}

// TestBulkInput sends a large input through the pump and checks it arrives whole.
func TestBulkInput(t *testing.T) {
	s := startServer(t, nil)
	home := t.TempDir()
	s.trust(t, home)
	var in bytes.Buffer
	in.WriteString("stty -echo; wc -c; exit\n")
	line := strings.Repeat("x", 99) + "\n"
	for range 5000 { // 500 000 bytes in lines the pty's line discipline takes
		in.WriteString(line)
	}
	var stdout, stderr termtest.Buffer
	cfg := &Config{Stdin: &in, Stdout: &stdout, Stderr: &stderr, Home: home, LocalUser: "tester", Environ: []string{}}
	if code := cfg.Run(watchdog(t), []string{"-p", s.port, "127.0.0.1"}); code != 0 {
		t.Fatalf("status %d, stderr %q", code, stderr.String())
	}
	if !regexp.MustCompile(`500000\r\n`).MatchString(stdout.String()) {
		t.Fatalf("wc did not count 500000 bytes: %q", tail(stdout.String(), 300))
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// TestStdoutRedirected runs rlogin at a terminal with its output going to a file: the window size
// comes from standard input's terminal, the escapes still work, and their messages go to stderr.
func TestStdoutRedirected(t *testing.T) {
	s := startServer(t, nil)
	home := t.TempDir()
	s.trust(t, home)
	tt := openTerminal(t)
	if err := creack.Setsize(tt.master, &creack.Winsize{Rows: 30, Cols: 90}); err != nil {
		t.Fatal(err)
	}
	before := tt.termios()
	out, err := os.Create(filepath.Join(t.TempDir(), "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	tt.startWithStdout(out, userEnv(home), "-l", "tester", "-p", s.port, "127.0.0.1")
	if w := s.request(t).Window; w != (session.WindowSize{Rows: 30, Cols: 90}) {
		t.Fatalf("window %+v, want 30x90 from standard input", w)
	}
	tt.send("~?")
	tt.expect(`Supported escape sequences:\r\n`)
	tt.send("echo to-$((1+1))-file; exit 2\r")
	if code := tt.wait(); code != 2 {
		t.Fatalf("exit status %d", code)
	}
	if after := tt.termios(); after != before {
		t.Fatalf("terminal not restored:\nbefore %+v\nafter  %+v", before, after)
	}
	data, err := os.ReadFile(out.Name())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), "to-2-file\r\n") || strings.Contains(string(data), "escape") {
		t.Fatalf("output file %q", data)
	}
}

// TestHostKeyNoTerminalAdvice runs rlogin with an unknown host key and no terminal to ask on: it
// refuses, says so in one line after saying how to trust the key, and the known_hosts line it
// offers lets the next run in.
func TestHostKeyNoTerminalAdvice(t *testing.T) {
	s := startServer(t, nil)
	home := t.TempDir()
	run := func(input string) (int, string) {
		var stderr bytes.Buffer
		cfg := &Config{
			Stdin:     strings.NewReader(input),
			Stdout:    io.Discard,
			Stderr:    &stderr,
			Home:      home,
			LocalUser: "tester",
			Prompt:    TTYPrompter{Path: filepath.Join(home, "no-tty")},
		}
		return cfg.Run(watchdog(t), []string{"-p", s.port, "127.0.0.1"}), stderr.String()
	}
	code, stderr := run("exit 5\n")
	lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
	last := lines[len(lines)-1]
	fp := keys.Fingerprint(s.hostKey.Public().(ed25519.PublicKey))
	name := "[127.0.0.1]:" + s.port
	if code != ExitFailure || last != "rlogin: host key verification failed: no terminal to ask whether to trust '"+name+"' (ED25519 "+fp+")" {
		t.Fatalf("status %d, stderr:\n%s", code, stderr)
	}
	var offered string
	for _, l := range lines {
		if strings.HasPrefix(l, name+" ssh-ed25519 ") {
			offered = l
		}
	}
	if offered == "" {
		t.Fatalf("no known_hosts line offered:\n%s", stderr)
	}
	f, err := os.OpenFile(filepath.Join(home, ".rlogin", "known_hosts"), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(offered + "\n"); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if code, stderr := run("exit 5\n"); code != 5 || stderr != "" {
		t.Fatalf("with the offered line: status %d, stderr %q", code, stderr)
	}
}
