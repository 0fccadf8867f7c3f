package transport

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

// TestDialMailboxEarlySendsAtOnce: the name and what the caller writes next (a TLS ClientHello)
// reach the server before it answers, and the handshake then completes over the conn: the
// mailbox costs no round trip of its own.
func TestDialMailboxEarlySendsAtOnce(t *testing.T) {
	ctx := testCtx(t)
	l, err := Listen(ctx, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	serverKey, clientKey := newKey(t), newKey(t)
	served := make(chan error, 1)
	go func() {
		served <- func() error {
			c, err := l.Accept()
			if err != nil {
				return err
			}
			_ = c.SetDeadline(time.Now().Add(10 * time.Second)) // watchdog
			// Not a byte of answer until the name and the first TLS record's start are in.
			want := []byte("login\r\n\x16")
			got := make([]byte, len(want))
			if _, err := io.ReadFull(c, got); err != nil {
				_ = c.Close()
				return err
			}
			if !bytes.Equal(got, want) {
				_ = c.Close()
				return errors.New("the server read " + string(got) + ", want the name and a TLS record")
			}
			if _, err := io.WriteString(c, "+ready\r\n"); err != nil {
				_ = c.Close()
				return err
			}
			sc, err := Server(ctx, newConn(c, got[len(want)-1:]), &SecureConfig{Key: serverKey})
			if err != nil {
				return err
			}
			defer sc.Close()
			_, err = io.Copy(sc, sc) // echo until the client closes
			return err
		}()
	}()

	var d Dialer
	mc, err := d.DialMailboxEarly(ctx, l.Addr().String(), "login")
	if err != nil {
		t.Fatal(err)
	}
	if got := mc.ReplyText(); got != "" {
		t.Errorf("ReplyText before the first Read: %q, want nothing", got)
	}
	sc, err := Client(ctx, mc, &SecureConfig{Key: clientKey})
	if err != nil {
		t.Fatal(err)
	}
	echoOK(t, sc)
	if got := mc.ReplyText(); got != "ready" {
		t.Errorf("ReplyText %q, want %q", got, "ready")
	}
	_ = sc.Close()
	if err := <-served; err != nil {
		t.Fatal(err)
	}
}

// TestDialMailboxEarlyRefused: a refusal comes out of the first Read, and every later one, as a
// *MailboxError, also through a TLS handshake.
func TestDialMailboxEarlyRefused(t *testing.T) {
	for _, secure := range []bool{false, true} {
		addr, wait := answerOnce(t, "login\r\n", "-no such mailbox\r\n")
		var d Dialer
		c, err := d.DialMailboxEarly(testCtx(t), addr, "login")
		if err != nil {
			t.Fatal(err)
		}
		var errs []error
		if secure {
			_, err := Client(testCtx(t), c, &SecureConfig{Key: newKey(t)}) // closes c
			errs = append(errs, err)
		} else {
			for range 2 {
				_, err := c.Read(make([]byte, 10))
				errs = append(errs, err)
			}
			_ = c.Close()
		}
		for _, err := range errs {
			var me *MailboxError
			if !errors.As(err, &me) || !me.Refused || me.Reason != "no such mailbox" || me.Name != "login" {
				t.Errorf("secure %v: error %v, want the *MailboxError of the refusal", secure, err)
			}
		}
		if err := wait(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestDialMailboxEarlyContext: the first Read waits for the reply no longer than the ctx of the
// dial allows.
func TestDialMailboxEarlyContext(t *testing.T) {
	l, err := Listen(testCtx(t), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := l.Accept()
		accepted <- c // a server that never answers
	}()
	ctx, cancel := context.WithTimeout(testCtx(t), 200*time.Millisecond)
	defer cancel()
	var d Dialer
	c, err := d.DialMailboxEarly(ctx, l.Addr().String(), "login")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Read with no reply: %v, want context.DeadlineExceeded", err)
	}
	if sc := <-accepted; sc != nil {
		_ = sc.Close()
	}
}

func TestDialMailboxEarlyBadName(t *testing.T) {
	var d Dialer
	if _, err := d.DialMailboxEarly(testCtx(t), "127.0.0.1:1", "bad name"); !errors.Is(err, ErrInvalidName) {
		t.Errorf("DialMailboxEarly of a bad name: %v, want ErrInvalidName", err)
	}
}
