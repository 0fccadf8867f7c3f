package client

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/rlogin-go/rlogin/keys"
	"github.com/rlogin-go/rlogin/session"
)

// Automatic resume. When the connection is lost and the server keeps the session (it accepted
// capability resume, saying how long it keeps a detached session), session.Client calls back
// for a new connection instead of ending: reconnect below. Each try is a whole new login (dial,
// mailbox, TLS with the host key checked against known_hosts as at first, the same key and
// certificate), never a question: no host-key prompt (the key must be the one known or accepted
// at the first login), no passphrase (the key is in memory, or in the agent). Tries are spaced
// by reconnectDelay, until the server's detach timeout has passed since the loss; ~. gives up
// at once (Close ends the wait).

// Reconnect delays: the first try at once (a drop that a new connection gets around at once,
// such as a NAT that forgot the flow, costs one round trip), then one every firstRetryDelay for
// the first fastRetries period of the outage, so that the session is live again within about a
// round trip and half a second of the path's return (Wi-Fi drops, a cut cable, a roam are
// usually that short; a try is one TCP connect, or one DNS query and a connect). After that the
// delay grows by a quarter of the time beyond that period, up to maxRetryDelay (reached 40 s
// later): a long outage costs a try every 10 s. Each delay is varied by retryJitter either way,
// so that the clients of a server that went away do not all come back in step.
const (
	firstRetryDelay = 500 * time.Millisecond
	fastRetries     = 2 * time.Minute
	maxRetryDelay   = 10 * time.Second
	retryJitter     = 0.2
)

// reconnectDelay is the time from the start of try n-1 of an outage to the start of try n (1 is
// the first, at once), outage after the loss; u is a random number in [0, 1) for the jitter.
func reconnectDelay(n int, outage time.Duration, u float64) time.Duration {
	if n <= 1 {
		return 0
	}
	d := min(max(firstRetryDelay, (outage-fastRetries)/4), maxRetryDelay)
	return min(time.Duration(float64(d)*(1-retryJitter+2*retryJitter*u)), maxRetryDelay)
}

// randomUnit is a random number in [0, 1) for reconnectDelay.
func randomUnit() float64 { return rand.Float64() }

// agentSigner is an ssh-agent's key that keeps signing after its first agent connection is
// gone: rlogin closes that once logged in, and a session may resume hours later. It signs with
// key while that works, and else through a new connection to the agent at socket, for that one
// signature (the agent may have restarted meanwhile; the key must still be in it).
type agentSigner struct {
	key    *keys.AgentKey
	socket string
}

func (s *agentSigner) Public() crypto.PublicKey { return s.key.Public() }

func (s *agentSigner) Sign(random io.Reader, message []byte, opts crypto.SignerOpts) ([]byte, error) {
	if sig, err := s.key.Sign(random, message, opts); err == nil {
		return sig, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), keys.AgentTimeout)
	defer cancel()
	a, err := keys.DialAgent(ctx, s.socket)
	if err != nil {
		return nil, fmt.Errorf("client: signing to reconnect: %w", err)
	}
	defer a.Close()
	ks, err := a.Keys()
	if err != nil {
		return nil, fmt.Errorf("client: signing to reconnect: %w", err)
	}
	pub := s.key.Public().(ed25519.PublicKey)
	for _, k := range ks {
		if k.Public().(ed25519.PublicKey).Equal(pub) {
			return k.Sign(random, message, opts)
		}
	}
	return nil, errors.New("client: signing to reconnect: ssh-agent no longer holds the key")
}

// noSessionReason is the server's refusal of a resume or reattach of a session it does not have
// (any more), or not for this user: the session protocol's words, the same in every case.
const noSessionReason = "no such session"

// resumeWanted reports whether rlogin asks for a session it can resume: one on a terminal (the
// server keeps no other), unless -o Resume=no or the configuration's "Resume no" says otherwise.
func (r *runner) resumeWanted() bool { return !r.opts.NoResume && !r.pipedCommand() }

// reconnectWith makes sess reconnect, when its connection is lost, with the key id, checking
// the server's key against known_hosts in dir and taking only hostKey, the one it has now; what
// is typed meanwhile goes to stdinPipe after the resume.
func (r *runner) reconnectWith(sess *session.Client, stdinPipe io.Writer, id *identity, dir rloginDir, hostKey ed25519.PublicKey) {
	again := *id
	if k, ok := id.signer.(*keys.AgentKey); ok {
		// The agent connection of the login is closed once it is done; the session may
		// resume much later, and prove its key again then (keyproof).
		again.signer = &agentSigner{key: k, socket: r.getenv("SSH_AUTH_SOCK")}
		sess.Signer = again.signer
	}
	_, errTTY := ttyFd(r.cfg.Stderr)
	rc := &reconnector{
		r: r, id: &again, dir: dir, hostKey: hostKey, input: &typeahead{w: stdinPipe},
		status: &statusLine{out: r.stdout, w: r.stderr, tty: errTTY, width: func() int { return int(r.windowSize().Cols) }},
		timeout: func() time.Duration {
			_, t, _ := sess.Resumable()
			return t
		},
	}
	sess.Reconnect, sess.Resumed = rc.reconnect, rc.resumed
	r.rc = rc
}

// reconnector is session.Client's Reconnect and Resumed for one session of a run.
type reconnector struct {
	r       *runner
	id      *identity         // the key of the login (an agent's through agentSigner)
	dir     rloginDir         // where known_hosts is
	hostKey ed25519.PublicKey // the server's key at the login: the only one taken while reconnecting
	status  *statusLine
	input   *typeahead           // what is typed while reconnecting
	timeout func() time.Duration // the server's detach timeout

	mu      sync.Mutex
	active  bool      // reconnecting now: between a loss and the resume
	lost    time.Time // when the connection was lost
	tries   int       // connections tried since
	lastTry time.Time // when the last one started
	lastErr string    // why the last one failed
	gaveUp  string    // why rlogin gave up, in the user's words; "" if it did not
}

// reconnect is session.Client.Reconnect: it tries new connections, spaced by reconnectDelay,
// showing on the status line what happens, until one is secured (the session then sends its
// RESUME on it) or ctx ends (~., a signal, or the server's detach timeout has passed).
func (rc *reconnector) reconnect(ctx context.Context, attempt int, cause error) (net.Conn, error) {
	host := rc.r.opts.Host
	if attempt == 1 {
		rc.mu.Lock()
		rc.active, rc.lost, rc.tries, rc.lastErr, rc.gaveUp = true, time.Now(), 0, "", ""
		rc.mu.Unlock()
		rc.input.start()
		rc.r.debugf("connection lost: %v", cause)
		// What to do comes first, why last: on a narrow terminal the line is cut at its end.
		rc.status.show(fmt.Sprintf("rlogin: connection to %s lost; reconnecting (~. to give up): %s", host, lossText(cause)), true)
	}
	for {
		rc.mu.Lock()
		rc.tries++
		n, lastErr, last, lost := rc.tries, rc.lastErr, rc.lastTry, rc.lost
		rc.mu.Unlock()
		// The delay spaces the starts of the tries: after one that took its whole connect
		// timeout (a path that drops everything) the next starts at once, so that there is a
		// try under way when the path comes back.
		if d := reconnectDelay(n, time.Since(lost), randomUnit()) - time.Since(last); d > 0 {
			rc.status.show(fmt.Sprintf("rlogin: reconnecting to %s in %s (~. to give up): %s", host, roundedSeconds(d), lastErr), false)
			t := time.NewTimer(d)
			select {
			case <-ctx.Done():
				t.Stop()
				return nil, rc.stop(ctx)
			case <-t.C:
			}
		}
		if n > 1 { // the first try is the line that says the connection was lost
			rc.status.show(fmt.Sprintf("rlogin: reconnecting to %s, try %d (~. to give up)...", host, n), false)
		}
		rc.mu.Lock()
		rc.lastTry = time.Now()
		rc.mu.Unlock()
		conn, err := rc.dial(ctx)
		if err == nil {
			return conn, nil
		}
		if ctx.Err() != nil {
			return nil, rc.stop(ctx)
		}
		rc.r.debugf("reconnecting: %v", err)
		if errors.Is(err, ErrHostKeyVerification) {
			rc.mu.Lock()
			rc.gaveUp = "gave up reconnecting: " + userMessage(err)
			rc.mu.Unlock()
			return nil, err
		}
		rc.mu.Lock()
		rc.lastErr = userMessage(err)
		rc.mu.Unlock()
	}
}

// dial makes one new connection: dialed, secured, the host key the one of the login.
func (rc *reconnector) dial(ctx context.Context) (net.Conn, error) {
	check := rc.r.newHostKeyCheck(rc.dir, nil)
	check.pinned = rc.hostKey // never a question in the middle of the session
	if rc.status.tty {
		check.stderr = crlfWriter{rc.r.stderr} // a changed key's warning, on a raw terminal
	}
	return rc.r.secureConn(ctx, rc.id, check)
}

// stop is reconnect's error when ctx ended: when the server's detach timeout has passed, it
// notes why rlogin gave up (a ~. or a signal is the user's, and says so itself).
func (rc *reconnector) stop(ctx context.Context) error {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if t := rc.timeout(); t > 0 && time.Since(rc.lost) >= t-time.Second {
		rc.gaveUp = fmt.Sprintf("gave up reconnecting to %s after %s: the server keeps a session without its client that long",
			rc.r.opts.Host, wholeUnits(t))
	}
	return ctx.Err()
}

// resumed is session.Client.Resumed: the session goes on.
func (rc *reconnector) resumed(skipped uint64) {
	rc.mu.Lock()
	was := rc.active
	rc.active = false
	rc.mu.Unlock()
	if !was {
		return // the reattach of -R: what the server kept is all a new client gets
	}
	dropped := rc.input.release()
	msg := "rlogin: reconnected"
	if skipped > 0 {
		msg += fmt.Sprintf("; %d bytes of output skipped", skipped)
	}
	if dropped > 0 {
		msg += fmt.Sprintf("; %d bytes typed meanwhile dropped (more than %d KiB)", dropped, maxTypeahead>>10)
	}
	rc.status.end(msg)
}

// held keeps p, typed while reconnecting, to send after the resume; it reports false when p is
// to be sent now.
func (r *runner) held(p []byte) bool { return r.rc != nil && r.rc.input.hold(p) }

// reconnecting reports whether the connection is lost and not resumed, and why rlogin gave up
// if it did.
func (rc *reconnector) reconnecting() (active bool, gaveUp string) {
	if rc == nil {
		return false, ""
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.active, rc.gaveUp
}

// crlfWriter writes to w with each "\n" made "\r\n", for multi-line messages on a raw terminal.
type crlfWriter struct{ w io.Writer }

func (c crlfWriter) Write(p []byte) (int, error) {
	if _, err := c.w.Write(bytes.ReplaceAll(p, []byte("\n"), []byte("\r\n"))); err != nil {
		return 0, err
	}
	return len(p), nil
}

// lossText says in a few words why the connection was lost, for the status line.
func lossText(cause error) string {
	var noAnswer *session.NoAnswerError
	var errno syscall.Errno
	switch {
	case errors.As(cause, &noAnswer):
		return fmt.Sprintf("no answer for %s", roundedSeconds(noAnswer.Silence))
	case errors.Is(cause, io.EOF) || errors.Is(cause, io.ErrUnexpectedEOF):
		return "closed"
	case errors.As(cause, &errno): // without "read tcp 192.0.2.1:50123->...: read: "
		return errno.Error()
	}
	return strings.TrimPrefix(plainText(cause), "connection lost: ")
}

// wholeUnits shows a detach timeout (whole seconds) in its largest whole unit: "1 h", "90 s".
func wholeUnits(d time.Duration) string {
	switch {
	case d >= time.Hour && d%time.Hour == 0:
		return fmt.Sprintf("%d h", d/time.Hour)
	case d >= time.Minute && d%time.Minute == 0:
		return fmt.Sprintf("%d min", d/time.Minute)
	}
	return roundedSeconds(d)
}

// roundedSeconds shows d in whole seconds, at least 1: "4 s".
func roundedSeconds(d time.Duration) string {
	return fmt.Sprintf("%d s", max(1, int(d.Round(time.Second).Seconds())))
}
