package session

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// serverSession is one running session: up to five goroutines (pumps) around a shared state.
type serverSession struct {
	sc *ServerConn // the session's first conn, which Serve runs: its settings hold
	t  Terminal
	// tw is t, if it is a TryWriter: asserted once, since each assertion to an interface looks
	// the pair up in the runtime's table, cold after a pause (its cache per call site fills
	// only after about a thousand assertions).
	tw TryWriter
	fp FlushPredictor // t, if it is one; asserted once, as tw

	mu        sync.Mutex
	readCond  sync.Cond // readTerminal waits for room in out
	sendCond  sync.Cond // sendOutput waits for something to send
	writeCond sync.Cond // writeTerminal waits for input

	// The conn the session is attached to, and the count of the conns it was attached to (see
	// server_detach.go). cur is nil while detached.
	cur        *ServerConn
	gen        int
	attachCond sync.Cond     // the pumps that use the conn wait for one; Attach for the end of a Write
	stateC     chan struct{} // tells the supervisor that the session detached or attached
	res        serverResume

	out      []byte // output read from the terminal, not yet sent
	outEnded bool   // ReadOutput returned an error: the output is over
	outErr   error  // that error, unless io.EOF
	fresh    int    // output bytes read since input was last written to the terminal
	outRead  int64  // output bytes read from the terminal (readTerminal's)
	// flooding says that the terminal's last read was part of a flood (readTerminal collects):
	// the buffers a burst grew are kept until it is over, not dropped and grown again each time
	// the client catches up (over loopback that cost rlogind a fifth more CPU per GB).
	flooding  bool
	staleMark int64        // output before this offset (in outRead's count) is older than the last flushing input (OutputMarker)
	om        OutputMarker // t, if it is one and its count could be taken when Serve started; else nil
	omBase    int64        // om's count of output read when Serve started: outRead's zero
	flush     bool         // a FLUSH frame is due
	flushKeep int          // the FLUSH keeps that many bytes sent before it
	unacked   int          // output bytes sent, not yet credited by the client
	sending   bool         // a pump is writing the conn (sendOutput, or readTerminal's direct send)

	in        []byte // input received, not yet written to the terminal
	inEOF     bool   // the client ended its input
	inUnacked int    // input bytes received, not yet credited back
	inDone    int    // input bytes written to the terminal (or dropped), not yet credited back
	writing   bool   // a pump is writing the terminal (writeTerminal, or readInput's direct write)
	// writeTerminal runs, or reported its end: it starts with the first input that must wait
	// (see startWriterLocked). results is where it reports.
	writer  bool
	results chan<- pumpResult

	waited  bool             // Wait returned
	state   *os.ProcessState // Wait's; nil for a StatusWaiter
	exit    *ExitError       // how the shell ended, for EXIT; nil if unknown
	waitErr error

	lastQueued  bool   // the last frame (EXIT or CLOSE) is being sent
	ending      bool   // the session is ending: terminal output and input are dropped
	connDead    bool   // nothing more can be sent
	closeReason string // if not "", sendOutput sends CLOSE with it and stops
	cause       error  // why the session ended, if not by the shell's exit
	farewell    bool   // the write deadline for the last frame is set

	hungUp chan struct{} // closed by stop once it hung up the shell

	// Capability flow2 (docs/protocol.md, section 7.3): the client may grow the output window
	// (unacked then goes below 0) and asks with SYNC when its input is in.
	flow2       bool        // under mu: Attach sets it for each conn
	syncsDue    int         // SYNCs received, not yet answered
	syncTarget  int64       // inTotal at the last SYNC: SYNCED waits until inWritten reaches it
	inTotal     int64       // input bytes received
	inWritten   int64       // input bytes written to the terminal (or dropped)
	expectFlush bool        // input that may make the terminal flush was written; no flush seen yet
	flushDue    atomic.Bool // a flush is expected, from before the input is written; for readTerminal
	flushes     int         // flushes reported
	reserveOpen bool        // output may use flushReserve: a flush came, its credit has not
	flushTimer  *time.Timer // ends expectFlush after flushWait

	ka   serverKeepalive // capability keepalive (keepalive_server.go)
	keys flushKeys       // capability flushkeys (server_flushkeys.go)

	// A command without a terminal (capability exec): its error output has a pump of its own.
	errCond sync.Cond // that pump waits for credit; waitShell for that pump's end
	errPump bool      // the pump runs
	errDone bool      // the pump has sent all the error output, or the session ended
}

// The pumps, by name, so results say which one ended.
type pump int

const (
	pumpReadTerminal    pump = iota // terminal -> out
	pumpSendOutput                  // out -> conn, and every other frame to the client
	pumpReadInput                   // conn -> in
	pumpWriteTerminal               // in -> terminal
	pumpWaitShell                   // Wait
	pumpReadErrorOutput             // error output -> conn (a command without a terminal)
	numPumps
)

type pumpResult struct {
	pump pump
	err  error
}

// run starts the pumps, supervises them until all have ended, and returns the session's result.
func (s *serverSession) run(ctx context.Context) (*os.ProcessState, error) {
	results := make(chan pumpResult, numPumps)
	if s.sc.pipedCommand() {
		s.sc.conn = &lockedWriteConn{Conn: s.sc.conn} // two pumps write it
	}
	s.mu.Lock()
	s.startKeepaliveLocked()
	s.mu.Unlock()
	exited := s.startPumps(results)
	sv := supervisor{s: s, results: results, exited: exited, hungUp: s.hungUp}
	sv.supervise(ctx)
	s.mu.Lock()
	if s.flushTimer != nil {
		s.flushTimer.Stop()
	}
	s.stopFlushKeysLocked()
	prober, cur := s.ka.prober, s.cur
	s.mu.Unlock()
	prober.stop()
	if cur != nil {
		_ = cur.Close()
	}
	_ = s.sc.Close()
	return s.result()
}

// startPumps starts the pumps, which report on results. A terminal that tells when the shell
// exited saves the goroutine that waits for it: startPumps then returns that notice, and the
// supervisor calls waitShell itself.
func (s *serverSession) startPumps(results chan<- pumpResult) (exited <-chan struct{}) {
	s.mu.Lock()
	s.results = results // writeTerminal starts later, if ever (startWriterLocked)
	s.mu.Unlock()
	go func() { results <- pumpResult{pumpReadTerminal, s.readTerminal()} }()
	go func() { results <- pumpResult{pumpSendOutput, s.sendOutput()} }()
	go func() { results <- pumpResult{pumpReadInput, s.readInput()} }()
	if er, ok := s.t.(ErrorOutputReader); ok && s.sc.pipedCommand() {
		s.errPump = true
		go func() { results <- pumpResult{pumpReadErrorOutput, s.readErrorOutput(er)} }()
	} else {
		results <- pumpResult{pumpReadErrorOutput, nil} // none: it ended
	}
	if en, ok := s.t.(ExitNotifier); ok {
		return en.Exited()
	}
	go func() { results <- pumpResult{pumpWaitShell, s.waitShell()} }()
	return nil
}

// result is what Serve returns once every pump has ended: the shell's state, and why the session
// ended if not normally.
func (s *serverSession) result() (*os.ProcessState, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.cause != nil:
		return s.state, s.cause
	case s.waitErr != nil:
		return s.state, fmt.Errorf("session: waiting for the shell: %w", s.waitErr)
	case s.outErr != nil:
		return s.state, fmt.Errorf("session: reading the terminal: %w", s.outErr)
	}
	return s.state, nil
}

// supervisor is run's goroutine while the pumps run: it collects their results, turns each end
// into the next step (stop, linger, close the terminal), and gives a shell that outlives its
// hangup its graces. Only that goroutine uses it.
type supervisor struct {
	s       *serverSession
	results chan pumpResult
	exited  <-chan struct{} // the terminal's exit notice; nil if a pump waits for the shell

	hungUp <-chan struct{}  // closed once stop hung up the shell; nil once seen
	grace  *time.Timer      // after the hangup: closes the terminal, then kills the shell
	graceC <-chan time.Time // grace's channel while it counts

	readDone bool // readTerminal ended: the output is over
	reaped   bool // the shell is reaped
	closed   bool // the terminal is closed

	expiry *time.Timer // while detached: ends the session after the detach timeout
}

// supervise runs until every pump has ended, or ctx is cancelled and then every pump has ended.
func (sv *supervisor) supervise(ctx context.Context) {
	defer func() {
		if sv.grace != nil {
			sv.grace.Stop()
		}
		if sv.expiry != nil {
			sv.expiry.Stop()
		}
	}()
	ctxDone := ctx.Done()
	var expired <-chan time.Time
	for running := numPumps; running > 0; {
		select {
		case <-sv.s.stateC:
			expired = sv.detachChanged()
		case <-expired:
			expired = nil
			sv.s.expire()
		case <-ctxDone:
			ctxDone = nil
			sv.s.stop("service stopping", fmt.Errorf("session: service stopping: %w", context.Cause(ctx)))
		case <-sv.hungUp:
			sv.hungUp = nil
			sv.grace = time.NewTimer(sv.s.sc.hangupGrace)
			sv.graceC = sv.grace.C
		case <-sv.graceC:
			sv.graceExpired()
		case <-sv.exited:
			sv.exited = nil
			sv.results <- pumpResult{pumpWaitShell, sv.s.waitShell()} // Wait returns at once now
		case r := <-sv.results:
			running--
			sv.pumpEnded(r)
		}
	}
}

// graceExpired handles a shell that outlived its hangup: the first time, it closes the terminal,
// which hangs the line up for good; if the shell outlives that too, it kills it.
func (sv *supervisor) graceExpired() {
	if sv.closed {
		sv.graceC = nil
		sv.s.t.Kill()
		return
	}
	sv.closeTerminal()
	sv.grace.Reset(sv.s.sc.killGrace)
}

// pumpEnded takes the step that the end of a pump calls for.
func (sv *supervisor) pumpEnded(r pumpResult) {
	s := sv.s
	switch r.pump {
	case pumpReadTerminal:
		sv.readDone = true
	case pumpWaitShell:
		sv.reaped = true
		sv.graceC = nil
	case pumpReadInput:
		s.mu.Lock()
		last := s.lastQueued
		s.endWriterLocked()
		s.mu.Unlock()
		switch {
		case last: // the client closes after the last frame, or the farewell timed out
		case errors.Is(r.err, ErrProtocol):
			s.stop(r.err.Error(), fmt.Errorf("session: %w", r.err))
		default:
			s.stop("", fmt.Errorf("session: connection lost: %w", r.err))
		}
	case pumpSendOutput:
		s.mu.Lock()
		dead, cur := s.connDead, s.cur
		s.mu.Unlock()
		switch {
		case r.err != nil:
			s.stop("", fmt.Errorf("session: connection lost: %w", r.err))
		case !dead && cur != nil:
			cur.linger(false) // readInput reads until the client closes
		}
	}
	if sv.readDone && sv.reaped {
		// The shell is reaped and its output is over: nothing needs the terminal any more, and
		// input may wait for it forever (a background job holds it and does not read;
		// writeTerminal is blocked): closing it drops that input.
		sv.closeTerminal()
	}
}

// closeTerminal closes the terminal, once.
func (sv *supervisor) closeTerminal() {
	if !sv.closed {
		sv.closed = true
		_ = sv.s.t.Close()
	}
}

// stop ends the session abnormally: with a CLOSE frame for reason, or at once if reason is ""
// (the conn is dead). The first cause is kept. The shell gets Hangup, unless it is gone.
func (s *serverSession) stop(reason string, cause error) {
	s.mu.Lock()
	if s.cause == nil {
		s.cause = cause
		s.attachCond.Broadcast() // a sendOutput waiting for its EXIT's delivery stops waiting
	}
	cur := s.cur
	if reason == "" || cur == nil {
		s.connDead = true // a detached session has nobody to tell
		s.attachCond.Broadcast()
	}
	farewell := reason != "" && !s.connDead && !s.farewell
	if farewell {
		s.farewell = true
	}
	if s.ending {
		s.mu.Unlock()
		switch {
		case cur == nil:
		case reason == "":
			_ = cur.Close()
		case farewell:
			// The last frame (EXIT) may be queued already: a client that does not read it
			// cannot hold the session either.
			_ = cur.conn.SetWriteDeadline(time.Now().Add(farewellTimeout))
		}
		return
	}
	s.ending = true
	s.closeReason = reason
	s.out, s.in = nil, nil
	hangup := !s.waited
	s.readCond.Broadcast()
	s.sendCond.Broadcast()
	s.writeCond.Broadcast()
	s.errCond.Broadcast()
	s.mu.Unlock()

	switch {
	case cur == nil:
	case reason == "":
		_ = cur.Close() // unblocks the pumps that use the conn
	case farewell:
		_ = cur.conn.SetWriteDeadline(time.Now().Add(farewellTimeout))
	}
	if hangup {
		s.t.Hangup()
		close(s.hungUp) // run gives the shell hangupGrace to exit
	}
}

// waitShell waits for the shell to exit, for EXIT.
func (s *serverSession) waitShell() error {
	st, exit, err := waitTerminal(s.t)
	s.mu.Lock()
	s.waitErrorOutputLocked() // EXIT says that the error output is over too
	s.waited = true
	s.state, s.exit, s.waitErr = st, exit, err
	s.sendCond.Signal()
	s.mu.Unlock()
	return err
}

// detachChanged takes the news that the session detached or attached: it arms or stops the
// detach timer, and tells the caller's Detached. It returns the timer's channel while detached.
func (sv *supervisor) detachChanged() <-chan time.Time {
	s := sv.s
	s.mu.Lock()
	detached, notify := s.cur == nil && !s.ending, !s.res.notified
	s.res.notified = true
	cause := s.res.cause
	s.mu.Unlock()
	if !detached {
		if sv.expiry != nil {
			sv.expiry.Stop()
		}
		return nil
	}
	if sv.expiry == nil {
		sv.expiry = time.NewTimer(s.res.timeout)
	} else {
		sv.expiry.Reset(s.res.timeout)
	}
	if f := s.sc.Detach.Detached; f != nil && notify && !errors.Is(cause, errTakenOver) {
		f(cause)
	}
	return sv.expiry.C
}
