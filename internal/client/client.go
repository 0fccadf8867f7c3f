// Package client is rlogin, the remote-login client: BSD rlogin's command line, escapes and
// terminal handling over a connection secured like ssh's (TLS 1.3 with ed25519 keys on both ends,
// the server's key pinned in ~/.rlogin/known_hosts on first use).
//
// Typical usage, the whole of cmd/rlogin:
//
//	func main() {
//		os.Exit(client.Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
//	}
//
// Tests and other callers set up a Config instead, to choose the home directory, the streams and
// how the host-key question is asked:
//
//	cfg := &client.Config{Stdin: in, Stdout: out, Stderr: errs, Home: dir, Prompt: answers}
//	status := cfg.Run(ctx, []string{"-p", "5513", "bob@example.net"})
//
// What a run does: parse the arguments (ParseArgs); load or create the user's key
// ~/.rlogin/id_ed25519; dial host:port and ask for the "login" mailbox; secure the connection,
// checking the server's key against ~/.rlogin/known_hosts (ssh's questions and warnings); ask for a
// session as the user with TERM, the window size, LANG and LC_*; then, when standard input is a
// terminal, put it in raw mode and handle the escapes (~. ~^Z ~? ~~) and window size changes,
// until the remote shell exits. The terminal is put back as it was on every way out.
//
// With -c rlogin speaks classic rlogin (RFC 1282, package session/classic) instead, to old servers:
// plaintext, port 513, from a privileged source port when it can bind one; see classic.go.
//
// Exit status: the remote shell's (128+n if a signal n killed it); 0 after ~. and for -h; 128+n
// when rlogin itself is ended by signal n; 255 for usage errors and for failures to connect, verify the host
// key or log in, and when the connection is lost.
package client

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"os/user"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rlogin-go/rlogin/internal/sanitize"
	"github.com/rlogin-go/rlogin/keys"
	"github.com/rlogin-go/rlogin/session"
	"github.com/rlogin-go/rlogin/transport"
)

// DefaultConnectTimeout bounds dialing and the mailbox exchange, and separately the login request,
// when Config.ConnectTimeout is 0.
const DefaultConnectTimeout = 20 * time.Second

// ExitFailure is the exit status for usage errors and failed or lost connections (as ssh's).
const ExitFailure = 255

// inputBufferSize is how much typed or piped input one read takes; one read becomes one write to
// the session (one frame), so a keystroke leaves at once and a paste or a pipe moves in big chunks.
const inputBufferSize = 32 << 10

// Config is one rlogin run's surroundings. The zero value is rlogin as a user runs it, with
// nothing to read on standard input and output discarded: set at least Stdin, Stdout and Stderr.
type Config struct {
	Stdin  io.Reader // typed or piped input; raw mode and escapes when it is a terminal (*os.File)
	Stdout io.Writer // the remote session's output
	Stderr io.Writer // rlogin's own messages

	// Home holds .rlogin/ (id_ed25519, known_hosts); "" means os.UserHomeDir(), that is $HOME.
	Home string
	// LocalUser is the remote user name when none is given; "" means the current user's name.
	LocalUser string
	// Environ is where TERM, LANG and LC_* come from; nil means os.Environ().
	Environ []string
	// Prompt asks whether to trust an unknown host key; nil means TTYPrompter{} (/dev/tty).
	Prompt Prompter
	// ConnectTimeout bounds the dial and mailbox exchange, and the login request, unless the
	// command line sets it (-o ConnectTimeout=N); 0 means DefaultConnectTimeout. The TLS
	// handshake has the transport's own timeout.
	ConnectTimeout time.Duration
}

// Main runs rlogin with the process's command-line arguments (without the program name) and
// returns the exit status.
func Main(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	c := &Config{Stdin: stdin, Stdout: stdout, Stderr: stderr}
	return c.Run(context.Background(), args)
}

// Run parses args, logs in and runs the session until it ends, and returns rlogin's exit status.
// Cancelling ctx ends the session (status 255).
//
// Standard input is read by a goroutine that Run waits for: when Stdin has a file descriptor
// (an *os.File) that goroutine is interrupted when the session ends; any other reader must return
// from Read (for example at its end) for Run to return.
//
// While the session runs, Run handles SIGHUP, SIGINT, SIGQUIT and SIGTERM unless they were ignored
// at start (puts the terminal back, ends the session, status 128+n), SIGWINCH (sends the new window
// size) and SIGPIPE (failed writes report EPIPE instead of killing the process).
func (c *Config) Run(ctx context.Context, args []string) int {
	stderr := c.Stderr
	if stderr == nil {
		stderr = io.Discard
	}
	opts, err := ParseArgs(args)
	if errors.Is(err, ErrHelp) {
		// Asked for, so it is output, not a complaint: stdout and status 0, as ssh -V and most
		// GNU tools do, so "rlogin -h | less" works.
		stdout := c.Stdout
		if stdout == nil {
			stdout = io.Discard
		}
		fmt.Fprint(stdout, usageText)
		return 0
	}
	var ue *UsageError
	if errors.As(err, &ue) {
		fmt.Fprintf(stderr, "rlogin: %s\n%s\n", sanitize.Text(ue.Msg), UsageLine)
		return ExitFailure
	}
	if err != nil { // not reached: ParseArgs returns only the errors above
		fmt.Fprintf(stderr, "rlogin: %s\n", sanitize.Text(plainText(err)))
		return ExitFailure
	}
	r := newRunner(c, opts, stderr)
	return r.run(ctx)
}

// runner is the state of one run.
type runner struct {
	cfg     *Config
	opts    Options
	stdin   io.Reader
	stdout  *outputWriter
	stderr  io.Writer
	environ []string

	inFd, outFd   int // -1 when not a file
	inTTY, outTTY bool

	tty  *rawTerminal  // nil when standard input is not a terminal
	sess remoteSession // *session.Client, or *classic.Client with -c

	// releaseOutput, if set, lets the remote output through once raw mode is on (classic
	// sessions start their output before interact; see runClassic).
	releaseOutput func()

	disconnected atomic.Bool  // the user typed ~.
	signaled     atomic.Int32 // the signal that ended the session, if one did
	canceled     atomic.Bool  // ctx ended the session

	stopSignal func(chan<- os.Signal) // signal.Stop (tests watch it)
}

func newRunner(c *Config, opts Options, stderr io.Writer) *runner {
	r := &runner{cfg: c, opts: opts, stderr: stderr, stdin: c.Stdin, environ: c.Environ, inFd: -1, outFd: -1,
		stopSignal: signal.Stop}
	if r.stdin == nil {
		r.stdin = strings.NewReader("")
	}
	out := c.Stdout
	if out == nil {
		out = io.Discard
	}
	r.stdout = &outputWriter{w: out}
	if r.environ == nil {
		r.environ = os.Environ()
	}
	r.inFd, r.inTTY = ttyFd(r.stdin)
	r.outFd, r.outTTY = ttyFd(out)
	if !r.inTTY {
		r.opts.NoEscape = true // escapes only make sense for a user typing at a terminal
	}
	return r
}

func (r *runner) run(ctx context.Context) int {
	if r.opts.Classic {
		return r.runClassic(ctx)
	}
	home, shownHome, err := r.home()
	if err != nil {
		return r.fail(err)
	}
	keyPath := filepath.Join(home, ".rlogin", "id_ed25519")
	key, created, err := keys.LoadOrCreate(keyPath)
	if err != nil {
		return r.fail(&connectError{msg: fmt.Sprintf("cannot load your key %s: %s", shownPath(keyPath, home, shownHome), plainText(err)), err: err})
	}
	if created {
		fmt.Fprintf(r.stderr, "rlogin: created your key %s (%s)\n",
			shownPath(keyPath, home, shownHome), keys.Fingerprint(key.Public().(ed25519.PublicKey)))
	}
	user := r.opts.User
	if user == "" {
		if user, err = r.localUser(); err != nil {
			return r.fail(err)
		}
	}
	knownPath := filepath.Join(home, ".rlogin", "known_hosts")
	sess, stdinPipe, err := r.connect(ctx, key, user, knownPath, shownPath(knownPath, home, shownHome))
	if err != nil {
		return r.fail(err)
	}
	r.sess = sess
	defer r.stdout.closeNonblocking()
	return r.interact(ctx, stdinPipe)
}

// remoteSession is what interact needs of a started session, secure or classic.
type remoteSession interface {
	Resize(session.WindowSize) error
	Wait() error // nil after a normal end
	Close() error
}

// interact runs the started session: raw mode, the input pump and the signal handler, until the
// session ends; then it puts the terminal back and reports how the session ended.
func (r *runner) interact(ctx context.Context, stdinPipe io.WriteCloser) int {
	if r.inTTY && r.tty == nil {
		r.tty = newRawTerminal(r.inFd)
	}
	defer r.restoreTerminal()
	defer func() {
		if p := recover(); p != nil {
			r.restoreTerminal()
			panic(p)
		}
	}()
	// The handlers go in before raw mode, so no signal can end rlogin with the terminal raw.
	var wg sync.WaitGroup
	done := make(chan struct{})
	termC := make(chan os.Signal, 1)
	otherC := make(chan os.Signal, 4)
	for _, sig := range []os.Signal{unix.SIGHUP, unix.SIGINT, unix.SIGQUIT, unix.SIGTERM} {
		if !signal.Ignored(sig) { // as netkit's setsignal: one ignored at start (nohup, &) stays so
			signal.Notify(termC, sig)
		}
	}
	signal.Notify(otherC, unix.SIGPIPE)
	if r.inTTY || r.outTTY {
		signal.Notify(otherC, unix.SIGWINCH)
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		r.handleSignals(ctx, termC, otherC, done)
	}()
	if r.tty != nil {
		if err := r.tty.enter(); err != nil {
			fmt.Fprintf(r.stderr, "rlogin: %s\n", plainText(err))
		}
	}
	if r.releaseOutput != nil {
		r.releaseOutput() // the terminal is raw now: the remote output may show
	}

	reader := r.stdin
	var fr stoppableReader
	if r.inFd >= 0 {
		if fr = r.inputReader(); fr != nil {
			reader = fr
		}
	}
	pumpDone := make(chan struct{})
	go func() {
		defer close(pumpDone)
		r.pumpInput(reader, stdinPipe, newEscaper(r.opts.EscapeChar, !r.opts.NoEscape))
	}()

	waitErr := r.sess.Wait()

	// The terminal goes back before the handlers go: from then on such a signal kills rlogin the
	// default way, and must find the terminal as rlogin found it.
	r.restoreTerminal()
	r.stopSignal(termC)
	r.stopSignal(otherC)
	close(done)
	wg.Wait()
	if fr != nil {
		fr.stop()
		<-pumpDone
		fr.close()
	} else {
		<-pumpDone
	}
	return r.ended(waitErr)
}

// stoppableReader reads standard input until stop; close releases it once no Read runs.
type stoppableReader interface {
	io.Reader
	stop()
	close()
}

// inputReader returns the reader of standard input that the session can stop: a terminal
// through Go's poller, anything else through poll(2) in a thread of its own; nil if neither
// can be set up (then standard input is read as it is).
func (r *runner) inputReader() stoppableReader {
	if r.inTTY {
		pr, err := newPollReader(r.inFd)
		if err == nil {
			return pr
		}
		r.debugf("reading the terminal through poll(2): %v", err)
	}
	fr, err := newFdReader(r.inFd)
	if err != nil {
		r.debugf("reading standard input directly: %v", err)
		return nil
	}
	return fr
}

// restoreTerminal gives the terminal back as rlogin found it; only the first call does anything.
func (r *runner) restoreTerminal() {
	if r.tty != nil {
		r.tty.restore()
	}
}

// handleSignals is the goroutine that turns signals into actions while the session runs.
func (r *runner) handleSignals(ctx context.Context, termC chan os.Signal, otherC <-chan os.Signal, done <-chan struct{}) {
	defer func() {
		if p := recover(); p != nil {
			r.restoreTerminal()
			panic(p)
		}
	}()
	ctxDone := ctx.Done()
	termRecv := (<-chan os.Signal)(termC)
	for {
		select {
		case <-done:
			return
		case s := <-otherC:
			if s == unix.SIGWINCH {
				_ = r.sess.Resize(r.windowSize()) // fails only once the session is ending
			}
			// SIGPIPE: the write that caused it fails with EPIPE, which ends the session.
		case s := <-termRecv:
			// Put the terminal back first, then end the session; Run returns 128+n. A second
			// such signal finds no handler and kills rlogin the default way.
			r.restoreTerminal()
			r.stopSignal(termC)
			termRecv = nil
			if sig, ok := s.(syscall.Signal); ok {
				r.signaled.Store(int32(sig))
			}
			_ = r.sess.Close()
		case <-ctxDone:
			ctxDone = nil
			r.canceled.Store(true)
			_ = r.sess.Close()
		}
	}
}

// pumpInput is the goroutine that copies standard input to the session: one read, escapes taken
// out, one write. At the end of input it half-closes the session's input.
func (r *runner) pumpInput(in io.Reader, w io.WriteCloser, esc *escaper) {
	defer func() {
		if p := recover(); p != nil {
			r.restoreTerminal()
			panic(p)
		}
	}()
	buf := make([]byte, inputBufferSize)
	var out []byte
	for {
		n, err := in.Read(buf)
		if n > 0 && !r.forward(buf[:n], w, esc, &out) {
			return
		}
		if err != nil {
			if !errors.Is(err, errInputStopped) {
				r.debugf("end of input (%v): closing the session's input", err)
				_ = w.Close()
			}
			return
		}
	}
}

// forward sends p to the session, carrying out the escapes in it. It reports false when the pump
// should stop (the user disconnected or the session is gone).
func (r *runner) forward(p []byte, w io.Writer, esc *escaper, out *[]byte) bool {
	if !esc.enabled {
		_, err := w.Write(p)
		return err == nil
	}
	for len(p) > 0 {
		var cmd escapeCmd
		var n int
		*out, cmd, n = esc.scan((*out)[:0], p)
		p = p[n:]
		if len(*out) > 0 {
			if _, err := w.Write(*out); err != nil {
				return false
			}
		}
		switch cmd {
		case escDisconnect:
			r.disconnected.Store(true)
			_ = r.sess.Close()
			return false
		case escSuspend:
			r.suspend()
		case escHelp:
			r.stdout.writeLocal(r.stderr, escapeHelp(r.opts.EscapeChar))
		}
	}
	return true
}

// suspend stops rlogin as ~^Z asks: terminal back to normal, SIGTSTP to itself; once continued,
// raw mode again and the window size, which may have changed meanwhile.
func (r *runner) suspend() {
	r.stdout.writeLocal(r.stderr, escapeName(r.opts.EscapeChar)+"^Z [suspend rlogin]\r\n")
	r.tty.leave()
	if err := stopSelf(); err != nil {
		r.debugf("suspend: %v", err)
	}
	if err := r.tty.enter(); err != nil {
		r.debugf("%v", err)
	}
	_ = r.sess.Resize(r.windowSize())
}

// stopSelf stops rlogin with SIGTSTP, for which it has no handler, and returns once it has been
// continued (at once if its process group is orphaned: the kernel then discards the stop). The
// signal goes to the calling thread, so the stop takes effect before the call returns: with kill(2)
// another thread could go on, and enter raw mode again, before the whole process stops.
func stopSelf() error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := unix.Tgkill(unix.Getpid(), unix.Gettid(), unix.SIGTSTP); err != nil {
		return fmt.Errorf("client: stopping: %w", err)
	}
	return nil
}

// ended reports how the session ended, on stderr when it is a failure, and returns the status.
func (r *runner) ended(waitErr error) int {
	host := r.opts.Host
	var exit *session.ExitError
	switch {
	case r.disconnected.Load():
		r.toLineStart()
		fmt.Fprintf(r.stderr, "Connection to %s closed.\n", host)
		return 0
	case r.signaled.Load() != 0:
		sig := syscall.Signal(r.signaled.Load())
		r.toLineStart()
		fmt.Fprintf(r.stderr, "rlogin: killed by signal %d (%s)\n", int(sig), unix.SignalName(sig))
		return 128 + int(sig)
	case r.canceled.Load():
		r.toLineStart()
		fmt.Fprintf(r.stderr, "rlogin: session canceled\n")
		return ExitFailure
	case waitErr == nil:
		if r.opts.Classic { // no exit status: the server closed the connection
			r.toLineStart()
			fmt.Fprintf(r.stderr, "Connection to %s closed.\n", host)
		}
		return 0
	case errors.As(waitErr, &exit):
		return exit.ExitCode()
	}
	var closed *session.ClosedError
	if errors.As(waitErr, &closed) {
		return r.fail(&connectError{msg: fmt.Sprintf("connection closed by %s: %s", host, closed.Reason), err: waitErr})
	}
	cause := strings.TrimPrefix(plainText(waitErr), "connection lost: ")
	if errors.Is(waitErr, io.EOF) || errors.Is(waitErr, io.ErrUnexpectedEOF) {
		cause = "the connection closed without an exit status"
	}
	return r.fail(&connectError{msg: fmt.Sprintf("connection to %s lost: %s", host, cause), err: waitErr})
}

// fail prints the one-line reason for err, at the start of a line, and returns ExitFailure.
func (r *runner) fail(err error) int {
	r.restoreTerminal()
	r.toLineStart()
	fmt.Fprintf(r.stderr, "rlogin: %s\n", sanitize.Text(userMessage(err)))
	return ExitFailure
}

// toLineStart moves to column 0 when remote output in raw mode left the cursor elsewhere.
func (r *runner) toLineStart() {
	if r.tty != nil && r.tty.usedRaw() && !r.stdout.atLineStart() {
		_, _ = io.WriteString(r.stderr, "\r\n")
	}
}

// debugf prints a progress message for -d.
func (r *runner) debugf(format string, args ...any) {
	if !r.opts.Debug {
		return
	}
	end := "\n"
	if r.tty != nil && r.tty.usedRaw() {
		end = "\r\n"
	}
	for i, a := range args {
		if err, ok := a.(error); ok {
			args[i] = plainText(err) // one prefix, "rlogin: debug: ", here too
		}
	}
	fmt.Fprintf(r.stderr, "rlogin: debug: %s%s", sanitize.Text(fmt.Sprintf(format, args...)), end)
}

// connect dials, secures and logs in. When the user accepted a new host key but the attempt then
// failed (the server may have given up on a handshake while the question was on the screen), it
// tries once more: the key is accepted now, so nothing is asked again.
func (r *runner) connect(ctx context.Context, key ed25519.PrivateKey, user, knownPath, shownKnown string) (*session.Client, io.WriteCloser, error) {
	var accepted ed25519.PublicKey // by the user, in the first attempt
	for attempt := 1; ; attempt++ {
		check := &hostKeyCheck{
			known:       &keys.KnownHosts{Path: knownPath},
			hostport:    net.JoinHostPort(r.opts.Host, strconv.Itoa(r.opts.Port)),
			displayPath: shownKnown,
			prompt:      r.cfg.Prompt,
			stderr:      r.stderr,
			accepted:    accepted,
		}
		if check.prompt == nil {
			check.prompt = TTYPrompter{}
		}
		sess, in, err := r.login(ctx, key, user, check)
		if err == nil {
			return sess, in, nil
		}
		var refused *session.RefusedError
		if attempt == 1 && check.asked && ctx.Err() == nil &&
			!errors.As(err, &refused) && !errors.Is(err, ErrHostKeyVerification) {
			r.debugf("trying again after accepting the host key: %v", err)
			accepted = check.accepted
			continue
		}
		return nil, nil, err
	}
}

// login makes one attempt: dial, mailbox, TLS with the host key check, login request.
func (r *runner) login(ctx context.Context, key ed25519.PrivateKey, user string, check *hostKeyCheck) (*session.Client, io.WriteCloser, error) {
	host, port := r.opts.Host, r.opts.Port
	timeout := r.connectTimeout()
	r.debugf("connecting to %s", check.hostport)
	dctx, cancel := context.WithTimeout(ctx, timeout)
	// "tcp:": a host named "unix" or "tcp" is a host, not one of transport's address prefixes.
	conn, err := transport.DialMailbox(dctx, "tcp:"+check.hostport, "login")
	cancel()
	if err != nil {
		return nil, nil, &connectError{msg: dialMessage(host, port, err), err: err}
	}
	r.debugf("connected to %s; securing the connection", conn.RemoteAddr())
	sc, err := transport.Client(ctx, conn, &transport.SecureConfig{Key: key, VerifyPeer: check.verify})
	if err != nil {
		if check.err != nil {
			return nil, nil, check.err
		}
		return nil, nil, &connectError{msg: fmt.Sprintf("secure connection to %s failed: %s", check.hostport, plainText(err)), err: err}
	}
	check.commit(sc.PeerKey()) // the server has proved that it holds the key
	r.debugf("host key %s verified; logging in as %s", keys.Fingerprint(sc.PeerKey()), user)

	req := session.Request{
		User:   user,
		Term:   r.getenv("TERM"),
		Window: r.windowSize(),
		Env:    r.localeEnv(),
	}
	if req.Term == "" {
		req.Term = "dumb"
	}
	sess := session.NewClient(sc, req)
	sess.Stdout = r.stdout
	if r.outTTY {
		r.stdout.openNonblocking(r.outFd)
	}
	if r.outTTY {
		fd := r.outFd
		sess.OnFlush = func() { flushOutput(fd) }
	}
	stdinPipe, err := sess.StdinPipe()
	if err != nil {
		_ = sess.Close()
		return nil, nil, fmt.Errorf("client: %w", err)
	}
	refusal := func(err error) (string, bool) {
		var refused *session.RefusedError
		if errors.As(err, &refused) {
			return refused.Reason, true
		}
		return "", false
	}
	if err := startLogin(host, timeout, sess.Start, sess.Close, refusal); err != nil {
		return nil, nil, err
	}
	r.debugf("logged in")
	return sess, stdinPipe, nil
}

// home returns the home directory and how to show it ("~" when it comes from $HOME).
func (r *runner) home() (dir, shown string, err error) {
	if r.cfg.Home != "" {
		return r.cfg.Home, r.cfg.Home, nil
	}
	dir, err = os.UserHomeDir()
	if err != nil {
		return "", "", &connectError{msg: fmt.Sprintf("no home directory: %s", plainText(err)), err: err}
	}
	return dir, "~", nil
}

// shownPath shows path with the home directory as shown.
func shownPath(path, home, shownHome string) string {
	if rel, err := filepath.Rel(home, path); err == nil && !strings.HasPrefix(rel, "..") {
		return shownHome + "/" + rel
	}
	return path
}

// localUser is the default remote user name: the local one.
func (r *runner) localUser() (string, error) {
	if r.cfg.LocalUser != "" {
		return r.cfg.LocalUser, nil
	}
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username, nil
	}
	for _, name := range []string{"USER", "LOGNAME"} {
		if v := r.getenv(name); v != "" {
			return v, nil
		}
	}
	return "", &connectError{msg: "cannot tell your user name; give one with -l user"}
}

// getenv looks name up in the run's environment.
func (r *runner) getenv(name string) string {
	for i := len(r.environ) - 1; i >= 0; i-- {
		if v, ok := strings.CutPrefix(r.environ[i], name+"="); ok {
			return v
		}
	}
	return ""
}

// localeEnv is LANG and LC_* from the environment: what ssh sends by default.
func (r *runner) localeEnv() []string {
	var env []string
	for _, kv := range r.environ {
		name, _, ok := strings.Cut(kv, "=")
		if ok && (name == "LANG" || strings.HasPrefix(name, "LC_")) {
			env = append(env, kv)
		}
	}
	return env
}

// connectTimeout bounds reaching the login service, and separately the login request: -o
// ConnectTimeout, else Config.ConnectTimeout, else DefaultConnectTimeout.
func (r *runner) connectTimeout() time.Duration {
	switch {
	case r.opts.ConnectTimeout > 0:
		return r.opts.ConnectTimeout
	case r.cfg.ConnectTimeout > 0:
		return r.cfg.ConnectTimeout
	}
	return DefaultConnectTimeout
}

// windowSize is the terminal's size: standard input's, else standard output's, else 24x80.
func (r *runner) windowSize() session.WindowSize {
	var fds []int
	if r.inTTY {
		fds = append(fds, r.inFd)
	}
	if r.outTTY {
		fds = append(fds, r.outFd)
	}
	return windowSize(fds)
}

// startLogin runs a client's Start under timeout and turns its failure into a connectError: Start
// has no deadline of its own, and a server that accepts the connection and then says nothing must
// not hang rlogin. refusal reports the server's reason when err is a refusal.
func startLogin(host string, timeout time.Duration, start, closeSession func() error, refusal func(error) (string, bool)) error {
	var timedOut atomic.Bool
	timer := time.AfterFunc(timeout, func() {
		timedOut.Store(true)
		_ = closeSession()
	})
	err := start()
	timer.Stop()
	if err != nil {
		if reason, ok := refusal(err); ok {
			return &connectError{msg: fmt.Sprintf("%s refused the login: %s", host, reason), err: err}
		}
		if timedOut.Load() {
			return &connectError{msg: fmt.Sprintf("login to %s timed out", host), err: err}
		}
		return &connectError{msg: fmt.Sprintf("login to %s failed: %s", host, plainText(err)), err: err}
	}
	if timedOut.Load() { // the timer fired just as Start returned: the session is closed
		return &connectError{msg: fmt.Sprintf("login to %s timed out", host), err: context.DeadlineExceeded}
	}
	return nil
}
