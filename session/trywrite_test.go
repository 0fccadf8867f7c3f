package session

import (
	"context"
	"io"
	"sync/atomic"
	"testing"
)

// tryWriteTerminal is a fakeTerminal that can also write without waiting, as *pty.PTY can: its
// TryWrite takes at most take bytes a call.
type tryWriteTerminal struct {
	*fakeTerminal
	take  int
	tries int // under fakeTerminal.mu
	taken int // under fakeTerminal.mu
}

func (t *tryWriteTerminal) TryWrite(p []byte) (int, error) {
	n := min(len(p), t.take)
	if n > 0 {
		if _, err := t.fakeTerminal.Write(p[:n]); err != nil {
			return 0, err
		}
	}
	t.locked(func() { t.tries++; t.taken += n })
	return n, nil
}

// TestInputTryWrite: input that finds nothing queued goes to the terminal through TryWrite, and
// what TryWrite does not take goes through Write after it, in order.
func TestInputTryWrite(t *testing.T) {
	for _, tc := range []struct {
		name string
		take int
	}{
		{"takes all", 1 << 20},
		{"takes some", 3},
		{"full", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, s := tcpPair(t)
			term := &tryWriteTerminal{fakeTerminal: newFakeTerminal(t), take: tc.take}
			term.echo = true
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			srv := NewServerConn(s)
			done := make(chan error, 1)
			go func() {
				if _, err := srv.ReadRequest(); err != nil {
					done <- err
					_ = srv.Close()
					term.Hangup()
					_, _ = term.Wait()
					return
				}
				_, err := srv.Serve(ctx, term)
				done <- err
			}()
			cl := NewClient(c, Request{User: "bob", Term: "xterm"})
			out := newSyncBuffer()
			cl.Stdout = out
			in, err := cl.StdinPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cl.Start(context.Background()); err != nil {
				t.Fatal(err)
			}
			const want = "hello, world: and more"
			for _, part := range []string{"hello", ", world", ": and more"} {
				if _, err := in.Write([]byte(part)); err != nil {
					t.Fatal(err)
				}
			}
			out.waitFor(t, "the echo", func() bool { return out.buf.Len() >= len(want) })
			if err := in.Close(); err != nil { // cat exits
				t.Fatal(err)
			}
			if err := cl.Wait(); err != nil {
				t.Fatal(err)
			}
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if got := out.buf.String(); got != want {
				t.Errorf("echo %q, want %q", got, want)
			}
			term.locked(func() {
				if term.tries == 0 {
					t.Error("TryWrite was never used")
				}
				if tc.take >= len(want) && term.taken != len(want) {
					t.Errorf("TryWrite took %d bytes, want all %d", term.taken, len(want))
				}
			})
		})
	}
}

// tryBuffer is a Stdout that can also write without waiting: its TryWrite takes at most take
// bytes a call.
type tryBuffer struct {
	*syncBuffer
	take  int
	tries atomic.Int64
	taken atomic.Int64
}

func (b *tryBuffer) TryWrite(p []byte) (int, error) {
	b.tries.Add(1)
	n := min(len(p), b.take)
	if n == 0 {
		return 0, nil
	}
	b.taken.Add(int64(n))
	return b.syncBuffer.Write(p[:n])
}

// stoppableTryBuffer is a tryBuffer that is also a StoppableTryWriter and a StoppableWriter, as
// rlogin's terminal is: its TryWriteUntil takes nothing once stop reports true.
type stoppableTryBuffer struct{ *tryBuffer }

func (b stoppableTryBuffer) TryWriteUntil(p []byte, stop func() bool) (int, error) {
	if stop() {
		b.tries.Add(1)
		return 0, nil
	}
	return b.TryWrite(p)
}

func (b stoppableTryBuffer) WriteUntil(p []byte, stop func() bool) (int, error) { return b.Write(p) }

func (b stoppableTryBuffer) Wake() {}

// TestOutputTryWrite: output goes to a Stdout with TryWrite (or TryWriteUntil) through it first,
// from the first frame on, and what it does not take goes through Write after it, in order.
func TestOutputTryWrite(t *testing.T) {
	for _, tc := range []struct {
		name      string
		take      int
		stoppable bool
	}{
		{"takes all", 1 << 20, false},
		{"takes some", 3, false},
		{"full", 0, false},
		{"stoppable takes all", 1 << 20, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, s := tcpPair(t)
			term := newFakeTerminal(t)
			term.echo = true
			out := &tryBuffer{syncBuffer: newSyncBuffer(), take: tc.take}
			var stdout io.Writer = out
			if tc.stoppable {
				stdout = stoppableTryBuffer{out}
			}
			ts := startSession(t, c, s, term, func(c *Client) { c.Stdout = stdout })
			const want = "hello, world: and more"
			for _, part := range []string{"hello", ", world", ": and more"} {
				if _, err := ts.stdin.Write([]byte(part)); err != nil {
					t.Fatal(err)
				}
			}
			out.waitFor(t, "the echo", func() bool { return out.buf.Len() >= len(want) })
			if err := ts.stdin.Close(); err != nil {
				t.Fatal(err)
			}
			if _, err := ts.wait(); err != nil {
				t.Fatal(err)
			}
			if got := string(out.Bytes()); got != want {
				t.Errorf("output %q, want %q", got, want)
			}
			if out.tries.Load() == 0 {
				t.Error("TryWrite was never used")
			}
			if tc.take >= len(want) && out.taken.Load() != int64(len(want)) {
				t.Errorf("TryWrite took %d bytes, want all %d", out.taken.Load(), len(want))
			}
		})
	}
}
