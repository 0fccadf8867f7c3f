package session

// The client's side of capability keepalive (docs/protocol.md, section 7.4).

// sendPing sends a PING with cookie, unless another frame is being written: the server hears
// that one, and the prober tries again soon.
func (c *Client) sendPing(cookie uint32) bool {
	if !c.wmu.TryLock() {
		return false
	}
	defer c.wmu.Unlock()
	c.mu.Lock()
	conn := c.conn
	c.wbuf = appendCookie(c.appendReceivedDueLocked(c.wbuf[:0]), framePing, cookie)
	c.mu.Unlock()
	_, _ = conn.Write(c.wbuf) // a broken conn shows in readOutput
	return true
}

// answerPing answers the server's PING at once, from readOutput, as it sends CREDIT.
func (c *Client) answerPing(cookie uint32) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.mu.Lock()
	conn := c.conn
	c.wbuf = appendCookie(c.appendReceivedDueLocked(c.wbuf[:0]), framePong, cookie)
	c.mu.Unlock()
	_, _ = conn.Write(c.wbuf) // a broken conn shows in readOutput
}

// Suspend tells the server that this client stops for a while (job control: rlogin's ~^Z) and
// answers nothing until it runs again, so that the server's keepalive takes its silence for no
// verdict; the next frame the client sends (a WINDOW after it continues, a keystroke) ends that,
// and Continued sends one at once. Without capability keepalive accepted it does nothing.
func (c *Client) Suspend() error {
	if err := c.checkRunning(); err != nil {
		return err
	}
	c.mu.Lock()
	keepalive := c.keepalive // under the lock: a resume sets it
	c.mu.Unlock()
	if !keepalive {
		return nil
	}
	return c.writeFrame(frameQuiet, nil)
}

// Continued tells the server, after Suspend, that this client runs again (a PING), and makes
// its own keepalive count the server's silence from now: while this process was stopped, the
// server could not be heard.
func (c *Client) Continued() {
	c.mu.Lock()
	alive := c.alive
	c.mu.Unlock()
	alive.heard()
	alive.pingNow()
}

// noAnswer ends the session whose server stayed silent: the conn is closed, which ends the
// pumps, and Wait returns e.
func (c *Client) noAnswer(e *NoAnswerError) {
	c.mu.Lock()
	resumable := c.resumableLocked()
	if resumable {
		c.res.lost = e // readOutput resumes, for this cause
	}
	conn := c.conn
	c.mu.Unlock()
	if resumable {
		_ = conn.Close()
		return
	}
	c.end(e)
	_ = c.closeConn()
}
