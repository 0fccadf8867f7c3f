package session

import (
	"bytes"
	"os/exec"
	"slices"
	"testing"
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
