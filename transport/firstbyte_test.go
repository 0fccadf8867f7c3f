package transport

import (
	"context"
	"crypto/ed25519"
	"errors"
	"io"
	"net"
	"slices"
	"testing"
	"time"

	"golang.org/x/net/nettest"
)

// firstBytePipe makes pipes of conns handed over by a first-byte listener: the dialing side
// writes the first byte, which the accepting side reads first.
func firstBytePipe(address string) nettest.MakePipe {
	return func() (c1, c2 net.Conn, stop func(), err error) {
		l, err := Listen(context.Background(), address)
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
		box, err := m.AnnounceFirstByte(FirstByteClassic)
		if err != nil {
			closeMux()
			return nil, nil, nil, err
		}
		c1, c2, err = connPair(box, func(ctx context.Context) (net.Conn, error) {
			c, err := Dial(ctx, box.Addr().String())
			if err != nil {
				return nil, err
			}
			if _, err := c.Write([]byte{FirstByteClassic}); err != nil {
				_ = c.Close()
				return nil, err
			}
			return c, nil
		})
		if err != nil {
			closeMux()
			return nil, nil, nil, err
		}
		// The accepting side sees the first byte first; consume it so the pipe starts empty.
		var b [1]byte
		if _, err := io.ReadFull(c1, b[:]); err != nil || b[0] != FirstByteClassic {
			_ = c1.Close()
			_ = c2.Close()
			closeMux()
			return nil, nil, nil, errors.New("first byte not delivered first")
		}
		stop = func() {
			_ = c1.Close()
			_ = c2.Close()
			closeMux()
		}
		return c1, c2, stop, nil
	}
}

func TestConnFirstByteTCP(t *testing.T) { nettest.TestConn(t, firstBytePipe("127.0.0.1:0")) }

func TestFirstByteOnePortForAll(t *testing.T) {
	ctx := testCtx(t)
	m, addr := startMux(t, "127.0.0.1:0", nil)
	serveEcho(t, announce(t, m, "echo"))
	classic, err := m.AnnounceFirstByte(FirstByteClassic)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = classic.Close() })
	tlsBox, err := m.AnnounceFirstByte(FirstByteTLS)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tlsBox.Close() })

	// A classic rlogin client: its handshake arrives whole, with no reply from the Mux.
	hs := "\x00bob\x00bob\x00xterm/38400\x00"
	c, err := Dial(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, hs[:5]); err != nil {
		t.Fatal(err)
	}
	sc, err := classic.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	if _, err := io.WriteString(c, hs[5:]); err != nil {
		t.Fatal(err)
	}
	_ = sc.SetDeadline(time.Now().Add(10 * time.Second))
	got := make([]byte, len(hs))
	if _, err := io.ReadFull(sc, got); err != nil || string(got) != hs {
		t.Fatalf("classic listener read %q, %v; want %q", got, err, hs)
	}
	if _, err := sc.Write([]byte{0}); err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(c, got[:1]); err != nil || got[0] != 0 {
		t.Fatalf("client read %q, %v; want the server's NUL and nothing from the Mux", got[:1], err)
	}

	// A direct TLS client, without a mailbox name.
	serverKey, clientKey := newKey(t), newKey(t)
	tlsDone := make(chan error, 1)
	go func() {
		conn, err := tlsBox.Accept()
		if err != nil {
			tlsDone <- err
			return
		}
		s, err := Server(ctx, conn, &SecureConfig{Key: serverKey})
		if err != nil {
			tlsDone <- err
			return
		}
		_, err = io.Copy(s, s)
		_ = s.Close()
		tlsDone <- err
	}()
	raw, err := Dial(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	sec, err := Client(ctx, raw, &SecureConfig{Key: clientKey, VerifyPeer: func(k ed25519.PublicKey) error {
		if !k.Equal(serverKey.Public()) {
			return errors.New("wrong server key")
		}
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	echoOK(t, sec)
	_ = sec.Close()
	if err := <-tlsDone; err != nil {
		t.Errorf("TLS server: %v", err)
	}

	// Mailboxes work as before; HELP lists names only.
	mc, err := DialMailbox(ctx, addr, "echo")
	if err != nil {
		t.Fatal(err)
	}
	echoOK(t, mc)
	_ = mc.Close()
	names, err := ListMailboxes(ctx, addr)
	if err != nil || !slices.Equal(names, []string{"echo"}) {
		t.Errorf("ListMailboxes = %q, %v; want only echo", names, err)
	}

	// A first byte nobody announced is still a bad name.
	if got, want := rawExchange(t, addr, "\x01hello\r\n"), "-"+reasonBadName+"\r\n"; got != want {
		t.Errorf("reply to an unannounced first byte %q, want %q", got, want)
	}
}

func TestAnnounceFirstByteErrors(t *testing.T) {
	m, addr := startMux(t, "127.0.0.1:0", nil)
	for _, b := range []byte{'a', 'Z', '0', '~', '!'} {
		if l, err := m.AnnounceFirstByte(b); err == nil {
			_ = l.Close()
			t.Errorf("AnnounceFirstByte(%q) succeeded: names start with it", b)
		}
	}
	l, err := m.AnnounceFirstByte(FirstByteClassic)
	if err != nil {
		t.Fatal(err)
	}
	if l2, err := m.AnnounceFirstByte(FirstByteClassic); err == nil {
		_ = l2.Close()
		t.Error("a second AnnounceFirstByte of the same byte succeeded")
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept after Close = %v, want net.ErrClosed", err)
	}
	// Withdrawn: NUL is a bad name again.
	if got, want := rawExchange(t, addr, "\x00bob\x00"), "-"+reasonBadName+"\r\n"; got != want {
		t.Errorf("reply after withdrawal %q, want %q", got, want)
	}
	l, err = m.AnnounceFirstByte(FirstByteClassic)
	if err != nil {
		t.Fatalf("announcing again after Close: %v", err)
	}
	_ = l.Close()
}

func TestFirstByteSilentPeer(t *testing.T) {
	// A peer that sends nothing is closed after NameTimeout, first-byte listeners or not.
	m, addr := startMux(t, "127.0.0.1:0", func(m *Mux) { m.NameTimeout = 200 * time.Millisecond })
	l, err := m.AnnounceFirstByte(FirstByteClassic)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	c, err := Dial(testCtx(t), addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	start := time.Now()
	if data, err := io.ReadAll(c); err != nil || len(data) != 0 {
		t.Errorf("silent peer got %q, %v; want a plain close", data, err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("closed after %v", d)
	}
}
