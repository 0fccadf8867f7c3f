package session

import (
	"io"
	"math"
)

// StoppableWriter is an optional interface of a Client's Stdout (a terminal reopened
// non-blocking, whose writes wait for room in Go's poller): with it, a chunk of output under way
// stops as soon as the output is held after an interrupt (or flushed), instead of going on for
// the whole chunk (up to 64 KiB); its unwritten rest goes back to the head of the queue, where
// the FLUSH drops it or the SYNCED releases it.
type StoppableWriter interface {
	// WriteUntil writes p as Write does, waiting for room as needed, but returns early, with
	// n < len(p) and a nil error, when stop reports true. It calls stop before each try to
	// write: before the first, after each wait for room, and between the writes that a
	// terminal that keeps up takes one after the other (so a chunk stops within one write,
	// not at its end, also while the terminal reads as fast as it is written).
	WriteUntil(p []byte, stop func() bool) (n int, err error)
	// Wake makes a WriteUntil under way that waits for room call its stop at once. The
	// Client changes what stop reports before it calls Wake, so a Wake that finds no
	// WriteUntil waiting may do nothing: the next try calls stop first. It may be called from
	// any goroutine, with the Client's lock held: it must not wait for a write to end.
	Wake()
}

// StoppableTryWriter is an optional interface of a Client's Stdout that is a TryWriter:
// TryWriteUntil is TryWrite, but it returns early, with what it wrote, when stop reports true;
// it calls stop before each try to write. The goroutine that reads the connection writes output
// through it while nothing is queued, and a terminal that reads as fast as it is written takes a
// whole frame (up to 64 KiB) that way: with it, an interrupt stops that write too, within one
// write, rather than after the frame.
type StoppableTryWriter interface {
	TryWriteUntil(p []byte, stop func() bool) (n int, err error)
}

// tryWrite writes p through Stdout's TryWrite, stopping as writeChunk does when it can
// (StoppableTryWriter).
func (c *Client) tryWrite(tw TryWriter, p []byte) (int, error) {
	if c.tryStop != nil {
		return c.tryStop.TryWriteUntil(p, c.stopWriting)
	}
	return tw.TryWrite(p)
}

// writeChunk writes p, a chunk taken from the queue, to out, and returns how much of it it
// wrote: through a StoppableWriter it stops, leaving the rest unwritten, as soon as writing
// must stop (stopWritingLocked).
func (c *Client) writeChunk(out io.Writer, p []byte) (int, error) {
	sw, ok := out.(StoppableWriter)
	if !ok {
		return out.Write(p)
	}
	return sw.WriteUntil(p, c.stopWriting)
}

// stopWriting is stopWritingLocked, for writeChunk's StoppableWriter.
func (c *Client) stopWriting() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stopWritingLocked()
}

// stopWritingLocked reports whether the chunk under way should stop where it is: the output
// is held after an interrupt, a FLUSH came since it was taken, or the session was closed.
func (c *Client) stopWritingLocked() bool {
	return c.heldLocked() || c.restKeep < math.MaxInt || c.closed
}

// cutWriteLocked makes a chunk under way that waits for room in Stdout stop waiting, so that
// it finds stopWritingLocked true at once. The caller holds c.mu.
func (c *Client) cutWriteLocked() {
	if sw, ok := c.Stdout.(StoppableWriter); ok && c.chunking {
		sw.Wake()
	}
}

// flushChunkLocked applies a FLUSH that found queued bytes queued and kept keep of what came
// before it to the chunk under way, whose unwritten rest is older than anything queued: of that
// rest, the FLUSH keeps only what keep still covers beyond the queue.
func (c *Client) flushChunkLocked(queued, keep int) {
	if c.chunking {
		c.restKeep = min(c.restKeep, max(0, keep-queued))
		c.cutWriteLocked()
	}
}

// putBackLocked puts rest, the unwritten end of a chunk, back at the head of the queue, less
// what a FLUSH during its write dropped (counted as consumed).
func (c *Client) putBackLocked(rest []byte) {
	drop := max(0, len(rest)-c.restKeep)
	c.consumed += drop
	rest = rest[drop:]
	switch {
	case len(rest) == 0:
	case c.qoff >= len(rest): // the room it was taken from is still there
		c.qoff -= len(rest)
		copy(c.q[c.qoff:], rest)
	default:
		q := make([]byte, 0, len(rest)+len(c.q)-c.qoff)
		c.q, c.qoff = append(append(q, rest...), c.q[c.qoff:]...), 0
	}
}
