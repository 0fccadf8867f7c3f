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
