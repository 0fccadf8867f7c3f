package session

// The client's side of capability keepalive (docs/protocol.md, section 7.4).

// sendPing sends a PING with cookie, unless another frame is being written: the server hears
// that one, and the prober tries again soon.
func (c *Client) sendPing(cookie uint32) bool {
	if !c.wmu.TryLock() {
		return false
	}
	defer c.wmu.Unlock()
	c.wbuf = appendCookie(c.wbuf[:0], framePing, cookie)
	_, _ = c.conn.Write(c.wbuf) // a broken conn shows in readOutput
	return true
}

// answerPing answers the server's PING at once, from readOutput, as it sends CREDIT.
func (c *Client) answerPing(cookie uint32) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.wbuf = appendCookie(c.wbuf[:0], framePong, cookie)
	_, _ = c.conn.Write(c.wbuf) // a broken conn shows in readOutput
}

// noAnswer ends the session whose server stayed silent: the conn is closed, which ends the
// pumps, and Wait returns e.
func (c *Client) noAnswer(e *NoAnswerError) {
	c.end(e)
	_ = c.closeConn()
}
