package session

import (
	"errors"
	"fmt"
	"slices"
)

// offers returns the capabilities to offer: exec too with a Command.
func (c *Client) offers(req *Request) []string {
	switch {
	case req.Resume != nil || req.List:
		return append(slices.Clip(c.capabilities), capResume, capAttach)
	case req.Command == nil && c.Reconnect != nil:
		return append(slices.Clip(c.capabilities), capResume)
	case req.Command == nil:
		return c.capabilities
	case req.Command.PTY && c.Reconnect != nil:
		return append(slices.Clip(c.capabilities), capExec, capResume)
	}
	return append(slices.Clip(c.capabilities), capExec)
}

// pipedCommand reports whether the session runs a command without a terminal: STDERR may come,
// and Signal may be sent.
func (c *Client) pipedCommand() bool { return c.Command != nil && !c.Command.PTY }

// withStderr is allowed, and STDERR too.
func withStderr(allowed func(frameType) bool) func(frameType) bool {
	return func(t frameType) bool { return t == frameStderr || allowed(t) }
}

// queueErrorOutput appends a STDERR frame's bytes to the queue for writeErrorOutput. Like DATA
// they count against the output window; and like DATA they are never written by readOutput, which
// must go on reading PING, CREDIT and FLUSH frames while a slow Stderr (a paused pager) blocks.
func (c *Client) queueErrorOutput(p []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.unacked+len(p) > c.tune.window {
		return protocolErrorf("server sent more than the credit window of %d bytes", c.tune.window)
	}
	c.unacked += len(p)
	if c.closed || c.Stderr == nil {
		c.consumed += len(p)
		if k := c.takeCreditLocked(); k > 0 {
			c.mu.Unlock()
			c.sendCredit(k)
			c.mu.Lock()
		}
		return nil
	}
	c.eq = append(c.eq, p...)
	c.errCond.Signal()
	return nil
}

// writeErrorOutput writes the error output queue to Stderr and grants credit for what it wrote.
// After the end it drains the queue, unless Close was called.
func (c *Client) writeErrorOutput() error {
	var out []byte // what is being written; swapped with the queue, so neither is copied
	for {
		c.mu.Lock()
		for len(c.eq) == 0 && !c.readDone && !c.closed {
			c.errCond.Wait()
		}
		if c.closed || len(c.eq) == 0 {
			c.eq = nil
			c.mu.Unlock()
			return nil
		}
		out, c.eq = c.eq, out[:0]
		c.mu.Unlock()

		_, err := c.Stderr.Write(out)
		c.mu.Lock()
		if err != nil {
			err = fmt.Errorf("session: writing error output: %w", err)
			c.endLocked(err)
			c.mu.Unlock()
			_ = c.closeConn()
			return err
		}
		c.consumed += len(out)
		if cap(out) > maxIdleQueue {
			out = nil // a grown window's worth: not kept once written
		}
		k := c.takeCreditLocked()
		c.mu.Unlock()
		c.sendCredit(k)
	}
}

// Signal passes a signal on to the remote command: name is one of those ValidCommandSignal
// accepts ("INT", "TERM", ...). Only a session that runs a command without a terminal has it
// (a command on a terminal gets the terminal's signal characters, as a shell does); it is sent
// at once, ahead of input that waits for credit.
func (c *Client) Signal(name string) error {
	if err := c.checkRunning(); err != nil {
		return err
	}
	if !c.pipedCommand() {
		return errors.New("session: Signal needs a command without a terminal")
	}
	b, err := appendMessage(nil, &message{typ: frameSignal, signal: name})
	if err != nil {
		return fmt.Errorf("session: %w", err)
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if _, err := c.conn.Write(b); err != nil {
		return fmt.Errorf("session: sending a signal: %w", err)
	}
	return nil
}
