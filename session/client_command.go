package session

import (
	"errors"
	"fmt"
	"slices"
)

// offers returns the capabilities to offer: exec too with a Command.
func (c *Client) offers() []string {
	if c.Command == nil {
		return c.capabilities
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

// writeErrorOutput writes a STDERR frame's bytes to Stderr and grants credit for them: they
// count against the output window as DATA does.
func (c *Client) writeErrorOutput(p []byte) error {
	c.mu.Lock()
	if c.unacked+len(p) > c.tune.window {
		c.mu.Unlock()
		return protocolErrorf("server sent more than the credit window of %d bytes", c.tune.window)
	}
	c.unacked += len(p)
	closed := c.closed
	c.mu.Unlock()
	var err error
	if !closed && c.Stderr != nil {
		_, err = c.Stderr.Write(p)
	}
	c.mu.Lock()
	if err != nil {
		err = fmt.Errorf("session: writing error output: %w", err)
		c.endLocked(err)
		c.mu.Unlock()
		return err
	}
	c.consumed += len(p)
	n := c.takeCreditLocked()
	c.mu.Unlock()
	c.sendCredit(n)
	return nil
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
