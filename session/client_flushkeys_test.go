package session

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
)

// TestFlushKeysProtocolErrors: a client that offered flushkeys ends the session with a protocol
// error at a FLUSHKEYS of more than 3 characters, and at one that comes where flushkeys was not
// accepted; 0 in a good one is no character.
func TestFlushKeysProtocolErrors(t *testing.T) {
	accept := func(caps ...string) message { return message{typ: frameAccept, caps: caps} }
	for _, tc := range []struct {
		name string
		data []byte
		want string // in Wait's error; "" for the exit status
	}{
		{"good", encodeStream(t, []message{accept(capFlushKeys), {typ: frameFlushKeys, data: []byte{3, 0, 0x1c}}, {typ: frameExit}}), ""},
		{"too long", append(encodeStream(t, []message{accept(capFlushKeys)}), byte(frameFlushKeys), 0, 0, 4, 3, 0x1c, 0x1a, 0x7f), "bad FLUSHKEYS frame"},
		{"not accepted", encodeStream(t, []message{accept(), {typ: frameFlushKeys, data: []byte{3}}}), "unexpected FLUSHKEYS frame"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := NewClient(newBytesConn(tc.data), bob)
			c.OnFlushKey = func() {}
			err := c.Run(t.Context())
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("Run: %v, want nil", err)
			case tc.want != "" && (!errors.Is(err, ErrProtocol) || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("Run: %v, want a protocol error saying %q", err, tc.want)
			}
			if tc.want == "" && !bytes.Equal(c.flushKeys, []byte{3, 0x1c}) {
				t.Errorf("announced %q, want %q", c.flushKeys, "\x03\x1c")
			}
		})
	}
}

// TestFlushKeysOffered: a client offers flushkeys only when it has a terminal to flush
// (OnFlushKey) and the session has a terminal (not a command on pipes).
func TestFlushKeysOffered(t *testing.T) {
	for _, tc := range []struct {
		name    string
		set     bool
		command *Command
		want    bool
	}{
		{"OnFlushKey", true, nil, true},
		{"none", false, nil, false},
		{"command on a pty", true, &Command{Line: "vi", PTY: true}, true},
		{"command on pipes", true, &Command{Line: "cat"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, s := tcpPair(t)
			cl := NewClient(c, Request{User: "bob", Term: "xterm", Command: tc.command})
			if tc.set {
				cl.OnFlushKey = func() {}
			}
			started := make(chan error, 1)
			go func() { started <- cl.Start(t.Context()) }()
			p := newRawPeer(t, s)
			p.readByte()
			m := p.read()
			_ = s.Close()
			<-started
			if got := slices.Contains(m.req.Capabilities, capFlushKeys); got != tc.want {
				t.Errorf("offers %q, want flushkeys offered: %v", m.req.Capabilities, tc.want)
			}
		})
	}
}

// TestFlushKeyAtKeystroke: input that holds a character the server announced discards the
// local terminal's output (OnFlushKey) before it leaves, after the chunk under way stopped; input
// without one, or after the server announced none (signals off), does not, and a server
// without the capability gets none of it.
func TestFlushKeyAtKeystroke(t *testing.T) {
	master, w := newPtyWriter(t)
	c, s := tcpPair(t)
	cl := NewClient(c, Request{User: "bob", Term: "xterm"})
	cl.Stdout = w
	cl.Interrupts = []byte{3}
	var flushes atomic.Int32
	var during atomic.Int32 // OnFlushKey calls while a chunk was under way
	cl.OnFlushKey = func() {
		flushes.Add(1)
		cl.mu.Lock()
		defer cl.mu.Unlock()
		if cl.chunking {
			during.Add(1)
		}
	}
	stdin, err := cl.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	srv := startHoldServer(t, cl, newRawPeer(t, s), []string{capFlow2, capFlushKeys})
	type typed struct {
		input   string
		flushes int32 // OnFlushKey calls by the time the server has the input
	}
	inputs := make(chan typed, 8)
	srv.onData = func(p []byte) { inputs <- typed{string(p), flushes.Load()} }
	expect := func(input string, want int32) {
		t.Helper()
		if _, err := stdin.Write([]byte(input)); err != nil {
			t.Fatal(err)
		}
		if got := <-inputs; got.input != input || got.flushes != want {
			t.Fatalf("the server got %q with %d local flushes before it, want %q after %d", got.input, got.flushes, input, want)
		}
	}

	expect("a", 0) // nothing announced yet: the client assumes none
	srv.send(message{typ: frameFlushKeys, data: []byte{3, 0x1c}})
	srv.send(message{typ: frameData, data: []byte("x")})
	readExactly(t, master, 1) // the FLUSHKEYS came before the output
	expect("b", 0)
	// A chunk under way, waiting for room in the pty, stops before the flush.
	flood := floodBytes(128 << 10)
	for p := flood; len(p) > 0; p = p[min(len(p), 16<<10):] {
		srv.send(message{typ: frameData, data: p[:min(len(p), 16<<10)]})
	}
	waitClient(t, cl, "a chunk waiting for room", func() bool { return cl.chunking && w.waiting.Load() })
	expect("\x1c", 1)
	if during.Load() != 0 {
		t.Error("OnFlushKey was called while the chunk was under way")
	}
	srv.send(message{typ: frameFlush})
	srv.answerHeld(t)
	srv.send(message{typ: frameFlushKeys}) // signals off: nothing flushes
	srv.send(message{typ: frameData, data: []byte("y")})
	waitUntil(t, "the output after the FLUSHKEYS", func() bool { return bytes.HasSuffix(readAvailable(t, master), []byte("y")) })
	expect("\x03", 1) // still held, as Interrupts say, but not flushed
	srv.answerHeld(t)
	if got := flushes.Load(); got != 1 {
		t.Errorf("OnFlushKey called %d times, want 1", got)
	}
}
