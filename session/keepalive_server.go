package session

// The server's side of capability keepalive (docs/protocol.md, section 7.4). Its frames leave
// through sendOutput, the one goroutine that writes frames other than output, so they never
// interleave with another frame; the prober's tick only marks a PING as due.

// serverKeepalive is a serverSession's keepalive state; the fields but prober are under the
// session's mu.
type serverKeepalive struct {
	on         bool     // capability keepalive was accepted
	prober     *prober  // probes a silent client; nil if off
	pingDue    bool     // a PING with pingCookie waits for sendOutput
	pingCookie uint32   //
	pongs      []uint32 // the cookies of the client's PINGs, to answer in order
}

// startKeepaliveLocked starts probing the client of the current conn, if the capability was
// accepted and ServerConn's Keepalive does not turn it off.
func (s *serverSession) startKeepaliveLocked() {
	s.ka.prober = nil
	if s.ka.on {
		gen := s.gen
		s.ka.prober = newProber(s.sc.Keepalive, s.queuePing, func(e *NoAnswerError) { s.noAnswer(gen, e) })
	}
}

// allowedWithKeepalive returns allowed, with PING, PONG and QUIET if the capability was
// accepted.
func (s *serverSession) allowedWithKeepalive(allowed func(frameType) bool) func(frameType) bool {
	if s.ka.on {
		withPings := withKeepalive(allowed)
		return func(t frameType) bool { return t == frameQuiet || withPings(t) }
	}
	return allowed
}

// queuePing asks sendOutput for a PING, unless one waits already or the session ends.
func (s *serverSession) queuePing(cookie uint32) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ka.pingDue || s.ending {
		return false
	}
	s.ka.pingDue, s.ka.pingCookie = true, cookie
	s.sendCond.Signal()
	return true
}

// noAnswer takes the client of conn gen for lost, as a lost connection: the conn is closed, and
// the session detaches, or ends (the shell is hung up). A session that ends anyway is left to end.
func (s *serverSession) noAnswer(gen int, e *NoAnswerError) {
	s.mu.Lock()
	ending, resumable := s.ending, s.res.on
	s.mu.Unlock()
	switch {
	case ending:
	case resumable:
		s.connLost(gen, e)
	default:
		s.stop("", e)
	}
}

// keepaliveInputLocked takes a PING (answered by sendOutput), a PONG or a QUIET from the client.
func (s *serverSession) keepaliveInputLocked(m *message) error {
	switch m.typ {
	case framePong:
		return s.ka.prober.pong(m.cookie)
	case frameQuiet:
		s.ka.prober.quietUntilHeard()
		return nil
	}
	if len(s.ka.pongs) >= maxPings {
		return protocolErrorf("more than %d PINGs unanswered", maxPings)
	}
	if !s.ending {
		s.ka.pongs = append(s.ka.pongs, m.cookie)
		s.sendCond.Signal()
	}
	return nil
}

// keepaliveDueLocked reports whether sendOutput has a PING or PONG to send.
func (s *serverSession) keepaliveDueLocked() bool { return s.ka.pingDue || len(s.ka.pongs) > 0 }

// appendKeepaliveLocked appends the PONGs and the PING that are due.
func (s *serverSession) appendKeepaliveLocked(b []byte) []byte {
	for _, c := range s.ka.pongs {
		b = appendCookie(b, framePong, c)
	}
	s.ka.pongs = s.ka.pongs[:0]
	if s.ka.pingDue {
		s.ka.pingDue = false
		b = appendCookie(b, framePing, s.ka.pingCookie)
	}
	return b
}
