package session

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/rlogin-go/rlogin/pty"
)

// gatedPTY is a pty whose ReadOutput waits until open is closed: the server reads nothing of the
// output until the test lets it.
type gatedPTY struct {
	*pty.PTY
	open chan struct{}
}

func (g *gatedPTY) ReadOutput(b []byte) (int, bool, error) {
	<-g.open
	return g.PTY.ReadOutput(b)
}

// serveHeld serves p to a raw client that offers flow2, with the server's reads of the output
// held back until open is called (at the latest when the test ends).
func serveHeld(t *testing.T, p *pty.PTY) (peer *rawPeer, res chan served, open func()) {
	t.Helper()
	g := &gatedPTY{PTY: p, open: make(chan struct{})}
	var once sync.Once
	open = func() { once.Do(func() { close(g.open) }) }
	req := bob
	req.Capabilities = []string{capFlow2}
	peer, res, ans := serveRaw(t, g, req, []string{capFlow2})
	t.Cleanup(open) // after serveRaw's own: it runs first
	if ans.typ != frameAccept {
		t.Fatalf("answer %v, want ACCEPT", ans.typ)
	}
	return peer, res, open
}

// interruptTrapped sends ^C with a SYNC, and waits until the shell's INT trap has written its
// output and then the file done.
func interruptTrapped(t *testing.T, peer *rawPeer, done string) {
	t.Helper()
	peer.write(appendHeader(appendFrame(nil, frameData, []byte{3}), frameSync, 0))
	waitUntil(t, "the trap", func() bool {
		_, err := os.Stat(done)
		return err == nil
	})
}

// TestFlushDropsHeldOutput: a flood interrupted by ^C while the server reads nothing (its
// window is full, here its reads are held back) leaves the pty's line discipline full (4 KiB),
// which Linux's flush does not empty and reads return after the flush's report. All of it is
// older than the ^C: none of it reaches the client, before the FLUSH or after it; the echoed ^C
// and what the shell's trap writes after it do.
func TestFlushDropsHeldOutput(t *testing.T) {
	done := filepath.Join(t.TempDir(), "trapped")
	// The trap writes its output after the flush: the write waits for the line discipline's
	// flush to finish (both hold its settings' lock). Then it says so in a file.
	p := startTestPTY(t, exec.Command("sh", "-c", `trap 'echo PROMPT; : >"$0"; exit 3' INT; yes`, done))
	peer, res, open := serveHeld(t, p)
	// Nothing reads the flood: the line discipline fills (4095 bytes), then the pty's buffers.
	waitUntil(t, "a full line discipline", func() bool {
		_, held, err := p.OutputMark()
		return err == nil && held >= 4095
	})
	interruptTrapped(t, peer, done)
	open()

	var after []byte // output after the FLUSH
	flushes, synced, exited := 0, false, false
	for !exited && (!bytes.Contains(after, []byte("PROMPT")) || !synced) {
		m := peer.read()
		switch m.typ {
		case frameData:
			if flushes == 0 {
				t.Errorf("DATA of %d bytes before the FLUSH: %q", len(m.data), m.data[:min(len(m.data), 64)])
			}
			after = append(after, m.data...)
		case frameFlush:
			flushes++
			if m.keep != 0 {
				t.Errorf("FLUSH keeps %d bytes, want 0", m.keep)
			}
		case frameSynced:
			synced = true
			if flushes == 0 {
				t.Error("SYNCED before the FLUSH")
			}
		case frameClose:
			t.Fatalf("CLOSE %q, want EXIT", m.text)
		case frameExit:
			// The trap exits at once: its EXIT may cross the SYNC (the server read the SYNC
			// after the shell's end, and a SYNC the EXIT found unread stays unanswered), but
			// not come before the output.
			if !bytes.Contains(after, []byte("PROMPT")) {
				t.Fatalf("EXIT before the prompt; output after the FLUSH: %q", after)
			}
			exited = true
		}
	}
	if flushes != 1 {
		t.Errorf("%d FLUSH frames, want 1", flushes)
	}
	if i := bytes.IndexByte(after, 'y'); i >= 0 {
		t.Errorf("the flood's output came after the FLUSH (%d bytes): %q", bytes.Count(after, []byte("y")), after[:min(len(after), 200)])
	}
	if !bytes.Contains(after, []byte("^C")) {
		t.Errorf("no echoed ^C after the FLUSH: %q", after)
	}
	for !exited { // the EXIT, when it did not come before the SYNCED
		switch m := peer.read(); m.typ {
		case frameClose:
			t.Fatalf("CLOSE %q, want EXIT", m.text)
		case frameExit:
			exited = true
		}
	}
	_ = peer.conn.Close()
	if srv := waitServed(t, res); srv.err != nil {
		t.Errorf("Serve: %v", srv.err)
	}
}

// TestFlushAfterReadBeforeServe: output read from the pty before Serve (here "ready") does not
// shift the stale mark: the echoed ^C and the trap's output, written after the interrupt, reach
// the client (with the pty's count taken as is, the flush dropped as many bytes of them as were
// read before Serve).
func TestFlushAfterReadBeforeServe(t *testing.T) {
	done := filepath.Join(t.TempDir(), "trapped")
	p := startTestPTY(t, exec.Command("sh", "-c", `trap 'echo PROMPT; : >"$0"; exit 3' INT; echo ready; while :; do sleep 1; done`, done))
	var pre []byte
	buf := make([]byte, 1024)
	for !bytes.Contains(pre, []byte("ready\r\n")) {
		n, _, err := p.ReadOutput(buf)
		if err != nil {
			t.Fatal(err)
		}
		pre = append(pre, buf[:n]...)
	}
	peer, res, open := serveHeld(t, p)
	interruptTrapped(t, peer, done)
	open()
	var all []byte
	for {
		m := peer.read()
		if m.typ == frameData {
			all = append(all, m.data...)
		}
		if m.typ == frameExit || m.typ == frameClose {
			break
		}
	}
	if !bytes.Contains(all, []byte("^C")) || !bytes.Contains(all, []byte("PROMPT")) {
		t.Errorf("output after ^C lost: got %q, want the echoed ^C and PROMPT", all)
	}
	_ = peer.conn.Close()
	waitServed(t, res)
}
