package transport

import (
	"context"
	"errors"
	"io"
	"net"
	"testing"
)

// BenchmarkThroughput measures bulk data over loopback TCP in 32 KiB
// writes, plain and over TLS; MB/s counts the payload.
func BenchmarkThroughput(b *testing.B) {
	b.Run("TCP", func(b *testing.B) {
		srv, cli := tcpPair(b)
		benchCopy(b, cli, srv)
	})
	b.Run("TLS", func(b *testing.B) {
		srv, cli := tcpPair(b)
		s, c := handshakePair(context.Background(), srv, cli, &SecureConfig{Key: newKey(b)}, &SecureConfig{Key: newKey(b)})
		if err := errors.Join(s.err, c.err); err != nil {
			b.Fatal(err)
		}
		benchCopy(b, c.c, s.c)
	})
}

// benchCopy writes b.N times 32 KiB on w and reads them all on r; it
// closes both.
func benchCopy(b *testing.B, w, r net.Conn) {
	defer w.Close()
	defer r.Close()
	buf := make([]byte, 32<<10)
	done := make(chan error, 1)
	go func() {
		rbuf := make([]byte, 32<<10)
		for {
			if _, err := r.Read(rbuf); err != nil {
				if errors.Is(err, io.EOF) {
					err = nil
				}
				done <- err
				return
			}
		}
	}()
	b.SetBytes(int64(len(buf)))
	b.ResetTimer()
	for range b.N {
		if _, err := w.Write(buf); err != nil {
			b.Fatal(err)
		}
	}
	if err := w.(interface{ CloseWrite() error }).CloseWrite(); err != nil {
		b.Fatal(err)
	}
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
}

// BenchmarkThroughputSmallWrites is BenchmarkThroughput with 4 KiB writes, the most one read of
// a pty master returns: the cost per write (a TLS record, a syscall) shows here.
func BenchmarkThroughputSmallWrites(b *testing.B) {
	b.Run("TCP", func(b *testing.B) {
		srv, cli := tcpPair(b)
		benchCopySize(b, cli, srv, 4<<10)
	})
	b.Run("TLS", func(b *testing.B) {
		srv, cli := tcpPair(b)
		s, c := handshakePair(context.Background(), srv, cli, &SecureConfig{Key: newKey(b)}, &SecureConfig{Key: newKey(b)})
		if err := errors.Join(s.err, c.err); err != nil {
			b.Fatal(err)
		}
		benchCopySize(b, c.c, s.c, 4<<10)
	})
}

// benchCopySize is benchCopy with writes of size bytes.
func benchCopySize(b *testing.B, w, r net.Conn, size int) {
	defer w.Close()
	defer r.Close()
	buf := make([]byte, size)
	done := make(chan error, 1)
	go func() {
		_, err := io.Copy(io.Discard, r)
		done <- err
	}()
	b.SetBytes(int64(size))
	b.ResetTimer()
	for range b.N {
		if _, err := w.Write(buf); err != nil {
			b.Fatal(err)
		}
	}
	if err := w.(interface{ CloseWrite() error }).CloseWrite(); err != nil {
		b.Fatal(err)
	}
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
}

// BenchmarkRoundTrip measures one byte sent and echoed back over loopback TCP, plain and over
// TLS: the transport's share of a keystroke's echo.
func BenchmarkRoundTrip(b *testing.B) {
	b.Run("TCP", func(b *testing.B) {
		srv, cli := tcpPair(b)
		benchPingPong(b, cli, srv)
	})
	b.Run("TLS", func(b *testing.B) {
		srv, cli := tcpPair(b)
		s, c := handshakePair(context.Background(), srv, cli, &SecureConfig{Key: newKey(b)}, &SecureConfig{Key: newKey(b)})
		if err := errors.Join(s.err, c.err); err != nil {
			b.Fatal(err)
		}
		benchPingPong(b, c.c, s.c)
	})
}

// benchPingPong sends one byte on c b.N times, each echoed back by a goroutine on s, and
// closes both.
func benchPingPong(b *testing.B, c, s net.Conn) {
	defer c.Close()
	done := make(chan error, 1)
	go func() {
		defer s.Close()
		_, err := io.CopyBuffer(s, s, make([]byte, 1))
		done <- err
	}()
	one := make([]byte, 1)
	b.ResetTimer()
	for range b.N {
		if _, err := c.Write(one); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(c, one); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if err := c.(interface{ CloseWrite() error }).CloseWrite(); err != nil {
		b.Fatal(err)
	}
	if err := <-done; err != nil {
		b.Fatal(err)
	}
}

// BenchmarkHandshake measures what a login costs the transport before the session starts: dial
// over loopback TCP, the "login" mailbox exchange, and the TLS 1.3 handshake with ed25519 keys on
// both ends.
func BenchmarkHandshake(b *testing.B) {
	ctx := testCtx(b)
	l, err := Listen(ctx, "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	m := NewMux(l)
	mb, err := m.Announce("login")
	if err != nil {
		b.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- m.Serve() }()
	defer func() {
		_ = m.Close()
		<-served
	}()
	skey, ckey := &SecureConfig{Key: newKey(b)}, &SecureConfig{Key: newKey(b)}
	accepted := make(chan error, 1)
	b.ResetTimer()
	for range b.N {
		go func() {
			conn, err := mb.Accept()
			if err != nil {
				accepted <- err
				return
			}
			sc, err := Server(ctx, conn, skey)
			if err == nil {
				// The client's first read completes the handshake on its side; answer it.
				_, err = sc.Write([]byte{1})
				_ = sc.Close()
			}
			accepted <- err
		}()
		conn, err := DialMailbox(ctx, l.Addr().String(), "login")
		if err != nil {
			b.Fatal(err)
		}
		cc, err := Client(ctx, conn, ckey)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(cc, make([]byte, 1)); err != nil {
			b.Fatal(err)
		}
		_ = cc.Close()
		if err := <-accepted; err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
}

// BenchmarkConnRelay measures a relay, as a proxy tool runs one, that copies a mailbox conn to
// another TCP conn with io.Copy: through Conn.WriteTo (the kernel's splice, no copy through user
// memory; strace shows the splice calls) and with WriteTo hidden (a 32 KiB buffer in user
// memory). MB/s counts the payload.
//
// Measured on the 2-core test machine, loaded (6 runs each, -benchtime 1s): splice was not faster
// over loopback, median about 1.5 GB/s against 2.4 GB/s through user memory. Conn has WriteTo and
// ReadFrom so that io.Copy on it takes the path io.Copy on the *net.TCPConn under it takes, as
// net's own conns do; this benchmark is there to see what that path costs.
func BenchmarkConnRelay(b *testing.B) {
	for _, tt := range []struct {
		name string
		src  func(*Conn) io.Reader
	}{
		{"WriteTo", func(c *Conn) io.Reader { return c }},
		{"hidden", func(c *Conn) io.Reader { return readerOnly{c} }},
	} {
		b.Run(tt.name, func(b *testing.B) {
			in, feed := tcpPair(b)
			out, drain := tcpPair(b)
			src := newConn(in, nil)
			defer src.Close()
			defer out.Close()
			relayed := make(chan error, 1)
			go func() {
				_, err := io.Copy(out, tt.src(src))
				if err == nil {
					err = out.(*net.TCPConn).CloseWrite()
				}
				relayed <- err
			}()
			benchCopy(b, feed, drain) // feed -> src, relayed out -> drain
			if err := <-relayed; err != nil {
				b.Fatal(err)
			}
		})
	}
}
