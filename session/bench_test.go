package session

import (
	"testing"
	"time"
)

// BenchmarkOutput measures session throughput from the server's terminal to the client's Stdout
// over loopback TCP: a terminal floods output in reads of the given size, and the client writes
// it to a discarding Stdout.
func BenchmarkOutput(b *testing.B) {
	for _, bc := range []struct {
		name string
		read int
	}{
		{"pty-sized reads 4KiB", 4 << 10},
		{"reads 32KiB", 32 << 10},
	} {
		b.Run(bc.name, func(b *testing.B) {
			c, s := tcpPair(b)
			term := newFakeTerminal(b, "true")
			term.flood = true
			term.floodRead = bc.read
			term.floodMax = b.N * bc.read
			b.SetBytes(int64(bc.read))
			b.ResetTimer()
			ts := startSession(b, c, s, term, func(c *Client) { c.Stdout = discard{} })
			srv, err := ts.wait()
			b.StopTimer()
			if err != nil || srv.err != nil {
				b.Fatal(err, srv.err)
			}
		})
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

// BenchmarkKeystrokeEcho measures the round trip of one keystroke over loopback TCP: client
// StdinPipe -> server -> echoing terminal -> server -> client Stdout.
func BenchmarkKeystrokeEcho(b *testing.B) {
	c, s := tcpPair(b)
	term := newFakeTerminal(b)
	term.echo = true
	echoed := make(echoWriter, 1)
	ts := startSession(b, c, s, term, func(c *Client) { c.Stdout = echoed })
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
}
