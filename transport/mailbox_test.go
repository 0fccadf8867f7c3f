package transport

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rlogin-go/rlogin/transport/memnet"
	"golang.org/x/net/nettest"
)

// startMux serves a Mux on address until the test ends; configure, if not
// nil, sets its fields before Serve.
func startMux(t *testing.T, address string, configure func(*Mux)) (*Mux, string) {
	t.Helper()
	l, err := Listen(testCtx(t), address)
	if err != nil {
		t.Fatal(err)
	}
	m := NewMux(l)
	if configure != nil {
		configure(m)
	}
	served := make(chan error, 1)
	go func() { served <- m.Serve() }()
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Errorf("Mux.Close: %v", err)
		}
		if err := <-served; !errors.Is(err, net.ErrClosed) {
			t.Errorf("Serve returned %v, want net.ErrClosed", err)
		}
	})
	return m, l.Addr().String()
}

// announce opens a mailbox that the test closes when it ends.
func announce(t *testing.T, m *Mux, name string) net.Listener {
	t.Helper()
	l, err := m.Announce(name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

// serveEcho echoes every conn accepted from l until the test ends, then
// closes l and the conns and waits for its goroutines.
func serveEcho(t *testing.T, l net.Listener) {
	t.Helper()
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		closed bool
		conns  []net.Conn
	)
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			if closed {
				mu.Unlock()
				_ = c.Close()
				return
			}
			conns = append(conns, c)
			mu.Unlock()
			wg.Go(func() {
				_, _ = io.Copy(c, c)
				_ = c.Close()
			})
		}
	})
	t.Cleanup(func() {
		_ = l.Close()
		mu.Lock()
		closed = true
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
}

// mailboxPipe makes pipes of conns from a mailbox of a Mux on address, on
// the Network n (nil: the system's sockets), dialed with DialMailbox, or
// with DialMailboxEarly if early is set.
func mailboxPipe(n Network, address string, early bool) nettest.MakePipe {
	return func() (c1, c2 net.Conn, stop func(), err error) {
		lc := ListenConfig{Network: n}
		l, err := lc.Listen(context.Background(), address)
		if err != nil {
			return nil, nil, nil, err
		}
		m := NewMux(l)
		served := make(chan error, 1)
		go func() { served <- m.Serve() }()
		closeMux := func() {
			_ = m.Close()
			<-served
		}
		box, err := m.Announce("pipe")
		if err != nil {
			closeMux()
			return nil, nil, nil, err
		}
		d := Dialer{Network: n}
		c1, c2, err = connPair(box, func(ctx context.Context) (net.Conn, error) {
			if early {
				// Not connPair's ctx, which ends when it returns: the first Read waits for
				// the reply under this one.
				return d.DialMailboxEarly(context.Background(), box.Addr().String(), "pipe")
			}
			return d.DialMailbox(ctx, box.Addr().String(), "pipe")
		})
		if err != nil {
			closeMux()
			return nil, nil, nil, err
		}
		stop = func() {
			_ = c1.Close()
			_ = c2.Close()
			closeMux()
		}
		return c1, c2, stop, nil
	}
}

func TestConnMailboxTCP(t *testing.T) { nettest.TestConn(t, mailboxPipe(nil, "127.0.0.1:0", false)) }

func TestConnMailboxUnix(t *testing.T) { nettest.TestConn(t, mailboxPipe(nil, unixAddr(t), false)) }

func TestConnMailboxMemnet(t *testing.T) {
	nettest.TestConn(t, mailboxPipe(new(memnet.Network), "127.0.0.1:0", false))
}

func TestConnMailboxEarly(t *testing.T) { nettest.TestConn(t, mailboxPipe(nil, "127.0.0.1:0", true)) }

// echoOK checks that conn reaches an echo server.
func echoOK(t *testing.T, c net.Conn) {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 5)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "hello" {
		t.Fatalf("echo: %q, %v", buf, err)
	}
}

// rawExchange sends request on a fresh conn to address and returns all the
// server sent until it closed.
func rawExchange(t *testing.T, address, request string) string {
	t.Helper()
	c, err := Dial(testCtx(t), address)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, request); err != nil {
		t.Fatal(err)
	}
	data, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("reading the reply to %q: %v", request, err)
	}
	return string(data)
}

func TestMailboxUnknown(t *testing.T) {
	ctx := testCtx(t)
	m, addr := startMux(t, "127.0.0.1:0", nil)
	serveEcho(t, announce(t, m, "echo"))

	c, err := DialMailbox(ctx, addr, "foo")
	if err == nil {
		_ = c.Close()
		t.Fatal("DialMailbox of an unknown mailbox succeeded")
	}
	var me *MailboxError
	if !errors.As(err, &me) || me.Name != "foo" || me.Reason != "unknown mailbox" {
		t.Fatalf("error %#v, want *MailboxError for foo", err)
	}
	if want := `transport: mailbox "foo" refused: unknown mailbox`; err.Error() != want {
		t.Errorf("message %q, want %q", err, want)
	}

	// The server is unaffected.
	c, err = DialMailbox(ctx, addr, "echo")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	echoOK(t, c)
}

func TestMailboxHelp(t *testing.T) {
	ctx := testCtx(t)
	m, addr := startMux(t, unixAddr(t), nil)
	announce(t, m, "login")
	announce(t, m, "Echo")
	names, err := ListMailboxes(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"Echo", "login"}; !slices.Equal(names, want) {
		t.Errorf("ListMailboxes = %q, want %q", names, want)
	}
	if got, want := rawExchange(t, addr, "help\r\n"), "Echo\r\nlogin\r\n"; got != want {
		t.Errorf("raw help reply %q, want %q", got, want)
	}
}

// answerOnce serves one conn on a fresh TCP listener: it reads request,
// writes answer, and reads until the client closes. wait returns the
// server's error once it is done.
func answerOnce(t *testing.T, request, answer string) (addr string, wait func() error) {
	t.Helper()
	l, err := Listen(testCtx(t), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() {
		defer l.Close()
		c, err := l.Accept()
		if err != nil {
			served <- err
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second)) // watchdog
		if _, err = io.ReadFull(c, make([]byte, len(request))); err == nil {
			_, err = io.WriteString(c, answer)
		}
		_ = c.(*net.TCPConn).CloseWrite()
		_, _ = io.Copy(io.Discard, c) // until the client closes
		served <- err
	}()
	return l.Addr().String(), func() error { return <-served }
}

// mailboxConns returns the two ends of a conn to the mailbox name of a new
// Mux: the one its listener accepted and the one DialMailbox returned.
func mailboxConns(t *testing.T, name string) (accepted, dialed *Conn) {
	t.Helper()
	m, addr := startMux(t, "127.0.0.1:0", nil)
	box := announce(t, m, name)
	c1, c2, err := connPair(box, func(ctx context.Context) (net.Conn, error) {
		return DialMailbox(ctx, addr, name)
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c1.Close(); _ = c2.Close() })
	_ = c1.SetDeadline(time.Now().Add(10 * time.Second)) // watchdog
	_ = c2.SetDeadline(time.Now().Add(10 * time.Second))
	accepted, ok := c1.(*Conn)
	if !ok {
		t.Fatalf("the mailbox's listener accepted a %T, want *Conn", c1)
	}
	return accepted, c2.(*Conn)
}

// TestListMailboxesNotAListing: a HELP answer that is not a list of names,
// such as a "-" refusal or another protocol's banner, is a *MailboxError,
// not a list.
func TestListMailboxesNotAListing(t *testing.T) {
	for _, tt := range []struct {
		answer, reply string
		refused       bool
	}{
		{"-no listing here\r\n", "-no listing here", true},
		{"login\r\n-oops\r\n", "-oops", true},
		{"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n", "SSH-2.0-OpenSSH_9.2p1 Debian-2", false},
	} {
		t.Run(tt.reply, func(t *testing.T) {
			addr, wait := answerOnce(t, "HELP\r\n", tt.answer)
			names, err := ListMailboxes(testCtx(t), addr)
			var me *MailboxError
			if !errors.As(err, &me) || names != nil {
				t.Fatalf("ListMailboxes = %q, %v; want a *MailboxError", names, err)
			}
			if me.Name != "HELP" || me.Reply != tt.reply || me.Refused != tt.refused {
				t.Errorf("MailboxError %+v, want Reply %q, Refused %v", me, tt.reply, tt.refused)
			}
			if err := wait(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestMailboxCaseInsensitive(t *testing.T) {
	ctx := testCtx(t)
	m, addr := startMux(t, "127.0.0.1:0", nil)
	serveEcho(t, announce(t, m, "Login"))
	for _, name := range []string{"Login", "login", "LOGIN", "lOgIn"} {
		c, err := DialMailbox(ctx, addr, name)
		if err != nil {
			t.Fatalf("DialMailbox(%q): %v", name, err)
		}
		echoOK(t, c)
		_ = c.Close()
	}
	if l, err := m.Announce("LOGIN"); err == nil {
		_ = l.Close()
		t.Error("Announce of a name differing only in case succeeded")
	}
}

func TestMailboxBadNames(t *testing.T) {
	m, addr := startMux(t, "127.0.0.1:0", nil)
	announce(t, m, strings.Repeat("x", MaxNameLen))
	for _, name := range []string{"", "a b", "tab\t", "nul\x00", "\u00fc", "cr\r\n", "help", "HELP", "-x", "+x", strings.Repeat("x", MaxNameLen+1)} {
		if l, err := m.Announce(name); !errors.Is(err, ErrInvalidName) {
			if err == nil {
				_ = l.Close()
			}
			t.Errorf("Announce(%q): %v, want ErrInvalidName", name, err)
		}
		if c, err := DialMailbox(testCtx(t), addr, name); !errors.Is(err, ErrInvalidName) {
			if err == nil {
				_ = c.Close()
			}
			t.Errorf("DialMailbox(%q): %v, want ErrInvalidName", name, err)
		}
	}
	_, err := DialMailbox(testCtx(t), addr, "a b")
	if want := `transport: request "a b": invalid mailbox name`; err == nil || err.Error() != want {
		t.Errorf("message %q, want %q", err, want)
	}
	for _, req := range []string{"a b\r\n", "\r\n", "x\ry\r\n", "bare-lf\n", strings.Repeat("x", MaxNameLen+1) + "\r\n", strings.Repeat("y", 100)} {
		if got, want := rawExchange(t, addr, req), "-invalid mailbox name\r\n"; got != want {
			t.Errorf("reply to %q: %q, want %q", req, got, want)
		}
	}
	// Names no mailbox can have, requested by another client: unknown, as
	// before the rule that keeps them out of HELP listings.
	for _, req := range []string{"-x\r\n", "+x\r\n"} {
		if got, want := rawExchange(t, addr, req), "-unknown mailbox\r\n"; got != want {
			t.Errorf("reply to %q: %q, want %q", req, got, want)
		}
	}
	c, err := DialMailbox(testCtx(t), addr, strings.ToUpper(strings.Repeat("x", MaxNameLen)))
	if err != nil {
		t.Fatalf("the longest name: %v", err)
	}
	_ = c.Close()
}

func TestMailboxKeepsBytesAfterName(t *testing.T) {
	m, addr := startMux(t, "127.0.0.1:0", nil)
	box := announce(t, m, "echo")
	c1, c2, err := connPair(box, func(ctx context.Context) (net.Conn, error) {
		c, err := Dial(ctx, addr)
		if err != nil {
			return nil, err
		}
		// One write: the Mux reads the name and what follows at once.
		if _, err := io.WriteString(c, "echo\r\nearly bytes"); err != nil {
			_ = c.Close()
			return nil, err
		}
		return c, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c1.Close()
	defer c2.Close()
	_ = c1.SetDeadline(time.Now().Add(10 * time.Second))
	_ = c2.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c2, " and late ones"); err != nil {
		t.Fatal(err)
	}
	want := "early bytes and late ones"
	buf := make([]byte, len(want))
	if _, err := io.ReadFull(c1, buf); err != nil || string(buf) != want {
		t.Errorf("owner read %q, %v; want %q", buf, err, want)
	}
	reply := make([]byte, 3)
	if _, err := io.ReadFull(c2, reply); err != nil || string(reply) != "+\r\n" {
		t.Errorf("client read %q, %v; want +CRLF", reply, err)
	}
}

func TestRequestMailboxLeavesOwnerBytes(t *testing.T) {
	m, addr := startMux(t, "127.0.0.1:0", nil)
	box := announce(t, m, "greeter")
	c1, c2, err := connPair(box, func(ctx context.Context) (net.Conn, error) {
		return DialMailbox(ctx, addr, "greeter")
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c1.Close()
	defer c2.Close()
	if _, err := io.WriteString(c1, "greeting"); err != nil {
		t.Fatal(err)
	}
	_ = c2.SetDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 8)
	if _, err := io.ReadFull(c2, buf); err != nil || string(buf) != "greeting" {
		t.Errorf("client read %q, %v; want greeting", buf, err)
	}

	// Reply and greeting already together in the socket: RequestMailbox
	// must still leave the greeting.
	raw, err := Dial(testCtx(t), addr)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if _, err := io.WriteString(raw, "greeter\r\n"); err != nil {
		t.Fatal(err)
	}
	owner, err := box.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer owner.Close()
	if _, err := io.WriteString(owner, "greeting"); err != nil {
		t.Fatal(err)
	}
	if err := readReplyAndGreeting(t, raw); err != nil {
		t.Error(err)
	}
}

// readReplyAndGreeting reads "+" CRLF with readReply, then the greeting.
func readReplyAndGreeting(t *testing.T, c net.Conn) error {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	line, ok, err := readReply(c)
	if err != nil || !ok || line != "+" {
		return errors.Join(errors.New("bad reply "+line), err)
	}
	buf := make([]byte, 8)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "greeting" {
		return errors.Join(errors.New("greeting lost: "+string(buf)), err)
	}
	return nil
}

func TestReadReply(t *testing.T) {
	tests := []struct {
		in, line, rest string
		ok, err        bool
	}{
		{"+\r\nrest", "+", "rest", true, false},
		{"+welcome\r\nrest", "+welcome", "rest", true, false},
		{"-unknown mailbox\r\nX", "-unknown mailbox", "X", true, false},
		// Not replies: returned as read, at the first wrong byte.
		{"-\r\r\n", "-\r", "\n", false, false},
		{"+bare lf\nX", "+bare lf", "X", false, false},
		{"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n", "SSH-2.0-OpenSSH_9.2p1 Debian-2", "", false, false},
		{"\r\n", "", "", false, false},
		{strings.Repeat("-", maxReplyLen), strings.Repeat("-", maxReplyLen), "", false, false},
		// Cut short: a read error.
		{"+", "", "", false, true},
		{"", "", "", false, true},
	}
	for _, tt := range tests {
		r := strings.NewReader(tt.in)
		line, ok, err := readReply(r)
		rest, _ := io.ReadAll(r)
		if (err != nil) != tt.err || ok != tt.ok || line != tt.line || (tt.ok && string(rest) != tt.rest) {
			t.Errorf("readReply(%q) = %q, %v, %v, rest %q; want %q, ok %v, error %v, rest %q",
				tt.in, line, ok, err, rest, tt.line, tt.ok, tt.err, tt.rest)
		}
	}
}

// stallReader returns data, then fails the test if it is read again: a peer
// that sent data and waits.
type stallReader struct {
	t    *testing.T
	data []byte
}

func (r *stallReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		r.t.Helper()
		r.t.Errorf("read again after %q: a client would wait for bytes that never come", p)
		return 0, errors.New("stalled")
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

// TestReadReplyFlippedByte: any one byte of "+" CRLF changed gives an answer
// at once, without waiting for more.
func TestReadReplyFlippedByte(t *testing.T) {
	for i := range 3 {
		for v := range 256 {
			data := []byte("+\r\n")
			if data[i] == byte(v) {
				continue
			}
			data[i] = byte(v)
			line, ok, err := readReply(&stallReader{t: t, data: data})
			if err != nil {
				t.Fatalf("readReply(%q): %v", data, err)
			}
			if ok != (string(data) == "-\r\n") {
				t.Errorf("readReply(%q) = %q, ok %v", data, line, ok)
			}
		}
	}
}

// TestRequestMailboxNotAReply: a server that answers with anything but a
// TCPMUX reply, and keeps the conn open, gives a *MailboxError at once.
func TestRequestMailboxNotAReply(t *testing.T) {
	for _, tt := range []struct {
		reply, line string
		refused     bool
	}{
		{"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n", "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3", false},
		{"*\r\n", "*", false},
		{"+\x0c\n", "+\x0c", false},
		{"+\r\x0b", "+\r\x0b", false},
		{"-go away\r\n", "-go away", true},
		{"SSH-2.0", "SSH-2.0", false}, // and then nothing: bannerGrace ends the wait
	} {
		t.Run(tt.line, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(testCtx(t), 10*time.Second)
			defer cancel()
			l, err := Listen(ctx, "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			srv, cli, err := connPair(l, func(ctx context.Context) (net.Conn, error) {
				return Dial(ctx, l.Addr().String())
			})
			_ = l.Close()
			if err != nil {
				t.Fatal(err)
			}
			defer srv.Close()
			defer cli.Close()
			if _, err := io.WriteString(srv, tt.reply); err != nil {
				t.Fatal(err)
			}
			err = RequestMailbox(ctx, cli, "login")
			var me *MailboxError
			if !errors.As(err, &me) {
				t.Fatalf("RequestMailbox: %v, want a *MailboxError", err)
			}
			if me.Name != "login" || me.Reply != tt.line || me.Refused != tt.refused {
				t.Errorf("MailboxError %+v, want Reply %q, Refused %v", me, tt.line, tt.refused)
			}
		})
	}
}

func TestMailboxErrorMessages(t *testing.T) {
	for _, tt := range []struct {
		reply, want string
	}{
		{"-unknown mailbox", `transport: mailbox "login" refused: unknown mailbox`},
		{"-\x1b[2J", `transport: mailbox "login" refused: \x1b[2J`},
		{"SSH-2.0-OpenSSH_9.2p1", `transport: mailbox "login": not a TCPMUX reply: "SSH-2.0-OpenSSH_9.2p1"`},
		{"\u202e\x1b", `transport: mailbox "login": not a TCPMUX reply: "\u202e\x1b"`},
	} {
		if got := newMailboxError("login", tt.reply).Error(); got != tt.want {
			t.Errorf("reply %q: message %q, want %q", tt.reply, got, tt.want)
		}
	}
}

// TestDialMailboxReplyText: the text of a "+text" reply reaches the caller.
func TestDialMailboxReplyText(t *testing.T) {
	addr, wait := answerOnce(t, "echo\r\n", "+welcome to echo\r\n")
	c, err := DialMailbox(testCtx(t), addr, "echo")
	if err != nil {
		t.Fatal(err)
	}
	if got := c.ReplyText(); got != "welcome to echo" {
		t.Errorf("ReplyText %q, want %q", got, "welcome to echo")
	}
	_ = c.Close()
	if err := wait(); err != nil {
		t.Fatal(err)
	}
}

func TestMailboxNameTimeout(t *testing.T) {
	ctx := testCtx(t)
	m, addr := startMux(t, "127.0.0.1:0", func(m *Mux) { m.NameTimeout = 300 * time.Millisecond })
	serveEcho(t, announce(t, m, "echo"))

	silent, err := Dial(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	if _, err := io.WriteString(silent, "ec"); err != nil { // and then nothing
		t.Fatal(err)
	}

	// Others are served while the silent peer holds its exchange.
	c, err := DialMailbox(ctx, addr, "echo")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	echoOK(t, c)

	start := time.Now()
	_ = silent.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := silent.Read(make([]byte, 10))
	if n != 0 || !errors.Is(err, io.EOF) {
		t.Fatalf("silent peer read %d, %v; want EOF (closed by the Mux)", n, err)
	}
	t.Logf("silent peer closed after %v", time.Since(start))
	echoOK(t, c) // a handed-over conn has no deadline left
}

// pendingCount returns the number of conns in the name exchange.
func pendingCount(m *Mux) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.pending)
}

// waitFor polls cond until it holds or a deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestMailboxMaxPending(t *testing.T) {
	ctx := testCtx(t)
	m, addr := startMux(t, "127.0.0.1:0", func(m *Mux) {
		m.MaxPending = 1
		m.NameTimeout = time.Minute
	})
	serveEcho(t, announce(t, m, "echo"))

	holder, err := Dial(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	waitFor(t, "one pending exchange", func() bool { return pendingCount(m) == 1 })

	// Over the cap: closed at once, no reply.
	if got := rawExchange(t, addr, ""); got != "" {
		t.Errorf("conn over MaxPending got %q, want it closed", got)
	}
	if _, err := DialMailbox(ctx, addr, "echo"); err == nil {
		t.Error("DialMailbox over MaxPending succeeded")
	}

	_ = holder.Close()
	waitFor(t, "no pending exchange", func() bool { return pendingCount(m) == 0 })
	c, err := DialMailbox(ctx, addr, "echo")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	echoOK(t, c)
}

func TestMailboxCloseUnblocksAccept(t *testing.T) {
	ctx := testCtx(t)
	l, err := Listen(ctx, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m := NewMux(l)
	served := make(chan error, 1)
	go func() { served <- m.Serve() }()
	box, err := m.Announce("box")
	if err != nil {
		t.Fatal(err)
	}
	accepted := make(chan error, 1)
	go func() {
		c, err := box.Accept()
		if err == nil {
			_ = c.Close()
		}
		accepted <- err
	}()
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	for what, ch := range map[string]chan error{"mailbox Accept": accepted, "Serve": served} {
		select {
		case err := <-ch:
			if !errors.Is(err, net.ErrClosed) {
				t.Errorf("%s after Close: %v, want net.ErrClosed", what, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("Close did not unblock %s", what)
		}
	}
	if _, err := box.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept on a closed mailbox: %v", err)
	}
	if _, err := m.Announce("late"); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Announce after Close: %v", err)
	}
	if err := m.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestMailboxCloseWithdrawsName(t *testing.T) {
	ctx := testCtx(t)
	m, addr := startMux(t, "127.0.0.1:0", nil)
	box := announce(t, m, "temp")
	accepted := make(chan error, 1)
	go func() {
		_, err := box.Accept()
		accepted <- err
	}()
	if err := box.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-accepted; !errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept after Close: %v, want net.ErrClosed", err)
	}
	var me *MailboxError
	if _, err := DialMailbox(ctx, addr, "temp"); !errors.As(err, &me) {
		t.Errorf("DialMailbox of a withdrawn mailbox: %v", err)
	}
	announce(t, m, "temp") // the name is free again
}

func TestMailboxSlowOwner(t *testing.T) {
	ctx := testCtx(t)
	m, addr := startMux(t, "127.0.0.1:0", nil)
	slow := announce(t, m, "slow") // never accepted
	serveEcho(t, announce(t, m, "echo"))

	var queued []net.Conn
	defer func() {
		for _, c := range queued {
			_ = c.Close()
		}
	}()
	for range mailboxQueueLen {
		c, err := DialMailbox(ctx, addr, "slow")
		if err != nil {
			t.Fatal(err)
		}
		queued = append(queued, c)
	}
	var me *MailboxError
	if _, err := DialMailbox(ctx, addr, "slow"); !errors.As(err, &me) || me.Reason != "mailbox busy" {
		t.Fatalf("DialMailbox of a full mailbox: %v, want mailbox busy", err)
	}

	// Serve is not blocked by the slow mailbox.
	c, err := DialMailbox(ctx, addr, "echo")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	echoOK(t, c)

	// Closing the mailbox closes the conns its owner never took.
	_ = slow.Close()
	for _, q := range queued {
		_ = q.SetReadDeadline(time.Now().Add(10 * time.Second))
		if n, err := q.Read(make([]byte, 1)); n != 0 || !errors.Is(err, io.EOF) {
			t.Fatalf("queued conn after mailbox Close: %d, %v; want EOF", n, err)
		}
	}
}

func TestRequestMailboxContext(t *testing.T) {
	// A server that accepts and never answers.
	l, err := Listen(testCtx(t), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for _, tt := range []struct {
		name string
		ctx  func() (context.Context, context.CancelFunc)
		want error
	}{
		{"deadline", func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 200*time.Millisecond)
		}, context.DeadlineExceeded},
		{"cancel", func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(200*time.Millisecond, cancel)
			return ctx, cancel
		}, context.Canceled},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv, cli, err := connPair(l, func(ctx context.Context) (net.Conn, error) {
				return Dial(ctx, l.Addr().String())
			})
			if err != nil {
				t.Fatal(err)
			}
			defer srv.Close()
			defer cli.Close()
			ctx, cancel := tt.ctx()
			defer cancel()
			start := time.Now()
			err = RequestMailbox(ctx, cli, "login")
			if !errors.Is(err, tt.want) {
				t.Errorf("RequestMailbox: %v, want %v", err, tt.want)
			}
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("RequestMailbox returned after %v", d)
			}
		})
	}
}

func TestMailboxCloseWaitsForExchanges(t *testing.T) {
	ctx := testCtx(t)
	l, err := Listen(ctx, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m := NewMux(l)
	m.NameTimeout = time.Hour
	served := make(chan error, 1)
	go func() { served <- m.Serve() }()
	var silent []net.Conn
	for range 5 {
		c, err := Dial(ctx, l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		silent = append(silent, c)
	}
	waitFor(t, "5 pending exchanges", func() bool { return pendingCount(m) == 5 })
	closed := make(chan error, 1)
	go func() { closed <- m.Close() }()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Close hung on pending exchanges")
	}
	<-served
	for _, c := range silent {
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
			t.Errorf("pending conn after Close: %v, want EOF", err)
		}
	}
}

// chunkReader returns data in chunks whose sizes come from cuts.
type chunkReader struct {
	data, cuts []byte
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	n := len(r.data)
	if len(r.cuts) > 0 {
		n = min(n, int(r.cuts[0])+1)
		r.cuts = r.cuts[1:]
	}
	n = copy(p, r.data[:n])
	r.data = r.data[n:]
	return n, nil
}

// FuzzMailboxName feeds the server's name reader arbitrary bytes, split at
// arbitrary points, and checks it against a plain reading of the rule:
// a valid name, CRLF, and no byte after the CRLF lost.
func FuzzMailboxName(f *testing.F) {
	f.Add([]byte("login\r\n"), []byte{})
	f.Add([]byte("LOGIN\r\n\x16\x03\x01"), []byte{0, 0, 2})
	f.Add([]byte("help\r\n"), []byte{3})
	f.Add([]byte("a b\r\n"), []byte{})
	f.Add([]byte("x\ry\r\n"), []byte{1, 1})
	f.Add([]byte("\r\n"), []byte{})
	f.Add([]byte(strings.Repeat("n", 64)+"\r\nrest"), []byte{63, 0, 1})
	f.Add([]byte(strings.Repeat("n", 65)+"\r\n"), []byte{})
	f.Fuzz(func(t *testing.T, data, cuts []byte) {
		r := &chunkReader{data: data, cuts: cuts}
		name, rest, err := readName(r)

		// The wire's rule: 1 to MaxNameLen bytes of printable ASCII without
		// space (ValidMailboxName's, less the first byte's, which only
		// Announce and requests need).
		end := bytes.Index(data, []byte("\r\n"))
		valid := end > 0 && end <= MaxNameLen && !bytes.ContainsFunc(data[:end], func(r rune) bool { return r <= ' ' || r >= 0x7f })
		if (err == nil) != valid {
			t.Fatalf("readName(%q) = %q, %v; valid %v", data, name, err, valid)
		}
		if err != nil {
			return
		}
		if name != string(data[:end]) {
			t.Fatalf("name %q, want %q", name, data[:end])
		}
		after := append(bytes.Clone(rest), r.data...)
		if !bytes.Equal(after, data[end+2:]) {
			t.Fatalf("bytes after CRLF: %q, want %q", after, data[end+2:])
		}
	})
}
