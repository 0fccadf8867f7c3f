package session

import "bytes"

// The client's half of capability flushkeys (docs/protocol.md, section 7.5): the server
// announces which characters, typed now, make the remote terminal discard its output, and the
// client discards its own terminal's output queue (OnFlushKey) at the keystroke, a round trip
// before the FLUSH could say so: the output already in the local terminal when the user typed
// ^C is the output that the remote flush discards.

// announcedKeys is what the client keeps of a FLUSHKEYS payload: a copy (the payload aliases the
// frame reader's buffer), without 0, which is no character (_POSIX_VDISABLE).
func announcedKeys(p []byte) []byte {
	return bytes.ReplaceAll(p, []byte{0}, nil)
}

// offersFlushKeys reports whether the client offers capability flushkeys: it has a local
// terminal to flush.
func (c *Client) offersFlushKeys(req *Request) bool {
	return c.OnFlushKey != nil && (req.Command == nil || req.Command.PTY)
}

// waitWriteStoppedLocked waits, once the hold has begun, until the Stdout write under way has
// stopped, so that nothing it writes lands after OnFlushKey's discard: a StoppableWriter's
// chunk stops at the hold, and a TryWrite does not wait. A Stdout whose Write may wait is not
// waited for: OnFlushKey runs during that Write.
func (c *Client) waitWriteStoppedLocked() {
	if _, stops := c.Stdout.(StoppableWriter); c.chunking && !stops {
		return
	}
	for c.writing && !c.closed && !c.readDone {
		c.idle.Wait()
	}
}
