package session

import (
	"os/exec"
	"testing"
)

// TestFloodEndsWhenTerminalIdles: a burst of output whose last read from the terminal is big
// (nothing after it: a redraw, output with no prompt after) does not leave the session
// flooding while it idles: once the terminal has nothing more queued, the flood is over, and
// once the client has received everything, the resume tail's array (a window's worth) goes.
// Over a real pty, whose reads collect a flood.
func TestFloodEndsWhenTerminalIdles(t *testing.T) {
	const n = 200000
	p := startTestPTY(t, exec.Command("sh", "-c", "head -c 200000 /dev/zero | tr '\\0' y; exec sleep 3600"))
	peer, _, srv := serveResumable(t, p)
	readData(t, peer, n)
	peer.send(message{typ: frameReceived, received: n})
	peer.send(message{typ: frameCredit, credit: n})
	ss := waitSession(t, srv)
	waitUntil(t, "the flood over and the tail's array dropped", func() bool {
		ss.mu.Lock()
		defer ss.mu.Unlock()
		return !ss.flooding && cap(ss.res.tail) == 0
	})
}
