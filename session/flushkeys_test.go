package session

import (
	"bytes"
	"fmt"
	"os/exec"
	"slices"
	"testing"
	"time"
)

// TestFlushKeys: over a real pty, the server announces with FLUSHKEYS the characters that make
// the terminal flush before the output produced after the shell changed them (stty isig, -isig,
// noflsh, intr undef), once per change; an old client, which does not offer flushkeys, gets none.
func TestFlushKeys(t *testing.T) {
	// Each mark is printed after the stty before it and after the newline that follows the mark
	// before: the client sends that newline once it has seen the mark.
	const script = `echo MARK-A; read x; stty noflsh; echo MARK-B; read x; stty -noflsh; echo MARK-C; read x;
		stty -isig; echo MARK-D; read x; stty isig intr undef; echo MARK-E; read x; stty quit undef; echo MARK-F; read x; exit 0`
	marks := []struct{ mark, keys string }{
		{"MARK-A", "\x03\x1c\x1a"},
		{"MARK-B", ""},
		{"MARK-C", "\x03\x1c\x1a"},
		{"MARK-D", ""},
		{"MARK-E", "\x1c\x1a"},
		{"MARK-F", "\x1a"},
	}
	for _, offered := range []bool{true, false} {
		name := "flushkeys"
		if !offered {
			name = "old client"
		}
		t.Run(name, func(t *testing.T) {
			p := startTestPTY(t, exec.Command("sh", "-c", script))
			req := bob
			if offered {
				req.Capabilities = []string{capFlushKeys}
			}
			peer, res, ans := serveRaw(t, p, req, []string{capFlushKeys})
			if ans.typ != frameAccept || offered != slices.Contains(ans.caps, capFlushKeys) {
				t.Fatalf("answer %v with %q, want ACCEPT with flushkeys only if offered", ans.typ, ans.caps)
			}
			var out []byte
			keys := ""     // announced so far: none, at the start
			announced := 0 // FLUSHKEYS frames
			next := 0      // the mark awaited
			for next < len(marks) {
				m := peer.read()
				switch m.typ {
				case frameFlushKeys:
					if string(m.data) == keys {
						t.Errorf("FLUSHKEYS %q repeats the last one", m.data)
					}
					keys = string(m.data)
					announced++
				case frameData:
					out = append(out, m.data...)
					if !bytes.Contains(out, []byte(marks[next].mark)) {
						continue
					}
					want := marks[next].keys
					if !offered {
						want = ""
					}
					if keys != want {
						t.Errorf("%s came after FLUSHKEYS %q, want %q", marks[next].mark, keys, want)
					}
					out = out[:0]
					next++
					peer.send(message{typ: frameData, data: []byte("\n")})
				case frameExit, frameClose:
					t.Fatalf("%v before %s", m.typ, marks[next].mark)
				}
			}
			if want := len(marks); !offered && announced != 0 || offered && announced != want {
				t.Errorf("%d FLUSHKEYS frames, want %d", announced, map[bool]int{true: want, false: 0}[offered])
			}
			for m := peer.read(); m.typ != frameExit; m = peer.read() {
				if m.typ == frameClose {
					t.Fatalf("CLOSE %q, want EXIT", m.text)
				}
			}
			_ = peer.conn.Close() // as a client does after EXIT
			if srv := waitServed(t, res); srv.err != nil {
				t.Errorf("Serve: %v", srv.err)
			}
		})
	}
}

// keyedTerminal is a fake terminal whose flush keys the test sets.
type keyedTerminal struct {
	*fakeTerminal
	keys string
	// then, if set, becomes keys right after the next look at them: a program that changes
	// its terminal's settings just after the output that look was for, with no output after.
	then *string
}

func (k *keyedTerminal) AppendFlushKeys(keys []byte) []byte {
	k.locked(func() {
		keys = append(keys, k.keys...)
		if k.then != nil {
			k.keys, k.then = *k.then, nil
		}
	})
	return keys
}

// TestFlushKeysWithoutOutput: a program that turns its terminal's signals off after its last
// output (it then reads ^C as a key) is announced with a FLUSHKEYS of its own, with no DATA
// after it: by the server's look a short time after the last DATA, and by its look at a
// frame from the client (here a CREDIT) after that. Otherwise the client would go on
// discarding its terminal's output at ^C, which the remote terminal no longer discards.
func TestFlushKeysWithoutOutput(t *testing.T) {
	for _, after := range []string{"the last DATA", "a CREDIT"} {
		t.Run(after, func(t *testing.T) {
			term := &keyedTerminal{fakeTerminal: newFakeTerminal(t, "sleep", "3600"), keys: "\x03"}
			peer, srv := serveFlushKeys(t, term)
			off := ""
			if after == "the last DATA" {
				term.locked(func() { term.then = &off }) // signals off once the output is read
			}
			line := produce(term.fakeTerminal, "out", 0, 1)
			if m := peer.read(); m.typ != frameFlushKeys || string(m.data) != "\x03" {
				t.Fatalf("%v %q, want FLUSHKEYS \"\\x03\" first", m.typ, m.data)
			}
			if m := peer.read(); m.typ != frameData || !bytes.Equal(m.data, line) {
				t.Fatalf("%v %q, want DATA %q", m.typ, m.data, line)
			}
			if after == "a CREDIT" {
				// The server's last look after the DATA has passed: only the client's frame
				// makes it look again. The server arms that look after its Write of the DATA
				// returns (sendNowLocked), which can be after the peer has read the DATA: until
				// it is done sending, an unarmed timer means "not armed yet", not "fired".
				s := waitSession(t, srv)
				waitUntil(t, "the last look after the DATA", func() bool {
					s.mu.Lock()
					defer s.mu.Unlock()
					return !s.sending && !s.keys.armed
				})
				term.locked(func() { term.keys = off })
				peer.send(message{typ: frameCredit, credit: uint32(len(line))})
			}
			if m := peer.read(); m.typ != frameFlushKeys || len(m.data) != 0 {
				t.Fatalf("%v %q after the settings changed with no output, want FLUSHKEYS with none", m.typ, m.data)
			}
			if after == "a CREDIT" {
				// Everything sent was credited and looked at since: an idle session stops looking.
				s := waitSession(t, srv)
				s.mu.Lock()
				active := s.keys.active
				s.mu.Unlock()
				if active {
					t.Error("still re-checking after the client credited all output")
				}
			}
			term.Hangup()
		})
	}
}

// serveFlushKeys serves term for a raw client that offers flushkeys, and returns the peer past
// the ACCEPT, and the ServerConn.
func serveFlushKeys(t *testing.T, term Terminal) (*rawPeer, *ServerConn) {
	t.Helper()
	var srv *ServerConn
	req := bob
	req.Capabilities = []string{capFlushKeys}
	peer, _, ans := serveRaw(t, term, req, []string{capFlushKeys}, func(sc *ServerConn) { srv = sc })
	if ans.typ != frameAccept {
		t.Fatalf("answer %v, want ACCEPT", ans.typ)
	}
	return peer, srv
}

// waitSession returns the session that srv serves, once Serve has started it.
func waitSession(t *testing.T, srv *ServerConn) *serverSession {
	t.Helper()
	var s *serverSession
	waitUntil(t, "Serve's session", func() bool {
		s = srv.session()
		return s != nil
	})
	return s
}

// TestFlushKeysReattach: the client of each conn starts from none: a reattach that offers
// flushkeys hears the keys again before its first DATA; one that does not offer it hears none.
func TestFlushKeysReattach(t *testing.T) {
	term := &keyedTerminal{fakeTerminal: newFakeTerminal(t, "sleep", "3600"), keys: "\x03"}
	rig := newResumeRig(t, term, Detach{Timeout: time.Minute})
	var id SessionID
	for i, caps := range [][]string{{capFlushKeys, capResume}, {capFlushKeys, capAttach}, {capAttach}} {
		conn, err := rig.dial()
		if err != nil {
			t.Fatal(err)
		}
		peer := newRawPeer(t, conn)
		peer.login(Request{User: "bob", Term: "xterm", Capabilities: caps})
		if i > 0 {
			peer.send(message{typ: frameResume, resume: &ResumeRequest{ID: id}}) // a reattach
		}
		if v := peer.readByte(); v != version {
			t.Fatalf("server answered version %d", v)
		}
		if m := peer.read(); m.typ != frameAccept {
			t.Fatalf("conn %d: answer %v, want ACCEPT", i, m.typ)
		}
		if i == 0 {
			m := peer.read()
			if m.typ != frameResumable {
				t.Fatalf("%v, want RESUMABLE", m.typ)
			}
			id = m.resumable.id
		}
		// The first conn's output, if a reattach sends it again, then this one's.
		line := produce(term.fakeTerminal, fmt.Sprint("conn", i), 0, 1)
		var got []byte
		keys := ""
		for !bytes.Contains(got, line) {
			m := peer.read()
			switch m.typ {
			case frameFlushKeys:
				keys = string(m.data)
			case frameData:
				if want := map[bool]string{true: "\x03", false: ""}[slices.Contains(caps, capFlushKeys)]; keys != want {
					t.Errorf("conn %d: DATA %q after FLUSHKEYS %q, want %q", i, m.data, keys, want)
				}
				got = append(got, m.data...)
			case frameExit, frameClose:
				t.Fatalf("conn %d: %v", i, m.typ)
			}
		}
	}
	term.Hangup()
}

// interruptOnly is a fake terminal on which ^C flushes, told without allocating.
type interruptOnly struct{ *fakeTerminal }

func (interruptOnly) AppendFlushKeys(keys []byte) []byte { return append(keys, 3) }

// TestFlushKeysDoNotAllocate: the look at the flush keys before each DATA frame (each echoed
// keystroke) allocates nothing once the session runs.
func TestFlushKeysDoNotAllocate(t *testing.T) {
	term := interruptOnly{newFakeTerminal(t, "sleep", "3600")}
	_, srv := serveFlushKeys(t, term)
	s := waitSession(t, srv)
	b := make([]byte, 0, 64)
	if n := testing.AllocsPerRun(100, func() {
		s.mu.Lock()
		b = s.appendFlushKeysLocked(b[:0])
		s.mu.Unlock()
	}); n != 0 {
		t.Errorf("the look before a DATA frame: %v allocations, want 0", n)
	}
	term.Hangup()
}
