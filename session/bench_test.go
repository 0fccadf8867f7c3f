package session

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/rlogin-go/rlogin/transport"
)

// The benchmarks run the session layer alone over loopback TCP, plain ("TCP") and secured as
// rlogin and rlogind secure it ("TLS": transport's TLS 1.3 with ed25519 keys), so that a change in
// framing or in the pumps shows up with benchstat:
//
//	go test -run '^$' -bench . -count 10 ./session/ > new.txt; benchstat old.txt new.txt

// benchConns returns the client and server ends of a loopback TCP connection, secured with TLS
// when secure is set.
func benchConns(b *testing.B, secure bool) (client, server net.Conn) {
	b.Helper()
	c, s := tcpPair(b)
	if !secure {
		return c, s
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	key := func() ed25519.PrivateKey {
		_, k, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			b.Fatal(err)
		}
		return k
	}
	type result struct {
		c   *transport.SecureConn
		err error
	}
	ch := make(chan result, 1)
	skey := key()
	go func() {
		sc, err := transport.Server(ctx, s, &transport.SecureConfig{Key: skey})
		ch <- result{sc, err}
	}()
	cc, cerr := transport.Client(ctx, c, &transport.SecureConfig{Key: key()})
	r := <-ch
	if err := errors.Join(cerr, r.err); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		_ = cc.Close()
		_ = r.c.Close()
	})
	return cc, r.c
}

// benchTransports are the benchmarks' transports; with resume, the session is resumable (both
// ends keep what the other has not credited yet).
var benchTransports = []struct {
	name           string
	secure, resume bool
}{{"TCP", false, false}, {"TLS", true, false}, {"TLS+resume", true, true}}

// benchResume makes a session resumable, if resume is set: the server's configure and the
// client's setup for startSessionWith.
func benchResume(resume bool, setup func(*Client)) (func(*ServerConn), func(*Client)) {
	if !resume {
		return nil, setup
	}
	return func(s *ServerConn) { s.Detach.Timeout = time.Hour }, func(c *Client) {
		c.Reconnect = func(context.Context, int, error) (net.Conn, error) { return nil, errors.New("no reconnection") }
		setup(c)
	}
}

// BenchmarkOutput measures session throughput from the server's terminal to the client's Stdout:
// a terminal floods output in reads of the given size, and the client writes it to a discarding
// Stdout.
func BenchmarkOutput(b *testing.B) {
	for _, tr := range benchTransports {
		for _, bc := range []struct {
			name string
			read int
		}{
			{"pty-sized reads 4KiB", 4 << 10},
			{"reads 32KiB", 32 << 10},
		} {
			b.Run(tr.name+"/"+bc.name, func(b *testing.B) {
				c, s := benchConns(b, tr.secure)
				term := newFakeTerminal(b, "true")
				term.flood = true
				term.floodRead = bc.read
				term.floodMax = b.N * bc.read
				b.SetBytes(int64(bc.read))
				b.ResetTimer()
				configure, setup := benchResume(tr.resume, func(c *Client) { c.Stdout = discard{} })
				ts := startSessionWith(b, c, s, term, configure, setup)
				if _, _, ok := ts.client.Resumable(); ok != tr.resume {
					b.Fatalf("resumable: %v", ok)
				}
				srv, err := ts.wait()
				b.StopTimer()
				if err != nil || srv.err != nil {
					b.Fatal(err, srv.err)
				}
			})
		}
	}
}

// discard is io.Discard without its ReaderFrom, like a terminal.
type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// echoWriter signals each Write.
type echoWriter chan int

func (w echoWriter) Write(p []byte) (int, error) {
	w <- len(p)
	return len(p), nil
}

// BenchmarkKeystrokeEcho measures the round trip of one keystroke: client StdinPipe -> server ->
// echoing terminal -> server -> client Stdout.
func BenchmarkKeystrokeEcho(b *testing.B) {
	for _, tr := range benchTransports {
		b.Run(tr.name, func(b *testing.B) {
			c, s := benchConns(b, tr.secure)
			term := newFakeTerminal(b)
			term.echo = true
			echoed := make(echoWriter, 1)
			configure, setup := benchResume(tr.resume, func(c *Client) { c.Stdout = echoed })
			ts := startSessionWith(b, c, s, term, configure, setup)
			if _, _, ok := ts.client.Resumable(); ok != tr.resume {
				b.Fatalf("resumable: %v", ok)
			}
			key := []byte{'k'}
			watchdog := time.NewTimer(testTimeout)
			defer watchdog.Stop()
			b.ResetTimer()
			for range b.N {
				if _, err := ts.stdin.Write(key); err != nil {
					b.Fatal(err)
				}
				select {
				case <-echoed:
				case <-watchdog.C:
					b.Fatal("timed out waiting for the echo")
				}
			}
			b.StopTimer()
			_ = ts.stdin.Close()
			if _, err := ts.wait(); err != nil {
				b.Fatal(err)
			}
		})
	}
}
