// Package client is rlogin, the remote-login client: BSD rlogin's command line, escapes and
// terminal handling over a connection secured like ssh's (TLS 1.3 with ed25519 keys on both ends,
// the server's key pinned in ~/.rlogin/known_hosts on first use).
//
// Typical usage, as cmd/rlogin runs it:
//
//	func main() {
//		client.TuneRuntime(os.Getenv) // one scheduling slot: rlogin's work is sequential
//		os.Exit(client.Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
//	}
//
// Tests and other callers set up a Config instead, to choose the home directory, the streams and
// how the host-key question is asked:
//
//	cfg := &client.Config{Stdin: in, Stdout: out, Stderr: errs, Home: dir, Prompt: answers}
//	status := cfg.Run(ctx, []string{"-p", "5513", "bob@example.net"})
//
// What a run does: parse the arguments (ParseArgs, args.go); fill in what they leave unset from
// ~/.rlogin/config and /etc/rlogin/rlogin_config (settings.go, package hostconfig; -G prints the
// result); choose the key to offer: ssh-agent's first ed25519 key, ~/.ssh/id_ed25519 or
// ~/.rlogin/id_ed25519, asking for a passphrase on the terminal when the file is encrypted, or -i's
// (identity.go); dial host:port and ask for the "login" mailbox, within the connect timeout
// (-o ConnectTimeout=N); secure the connection, checking the server's key against
// ~/.rlogin/known_hosts with ssh's questions and warnings (connect.go, hostkey.go); ask for a
// session as the user with TERM, the window size, LANG and LC_* (local.go); then, when standard
// input is a terminal, put it in raw mode and handle the escapes (~. ~^Z ~? ~~), signals and window
// size changes, until the remote shell exits (interact.go, escape.go, input.go, output.go,
// terminal.go). A key the server refuses is followed by the next one, on a new connection. When
// the connection is lost and the server keeps the session, rlogin logs in again with the same key
// and resumes it, with one status line meanwhile (reconnect.go, status.go); -R takes over a
// session whose client is gone (reattach.go). The terminal is put back as it was on every way
// out. A failure is one line on standard error, in the user's words (messages.go).
//
// With -c rlogin speaks classic rlogin (RFC 1282, package session/classic) instead, to old servers:
// plaintext, port 513, from a privileged source port when it can bind one (classic.go).
//
// Exit status: the remote shell's (128+n if a signal n killed it); 0 after ~. and for -h; 128+n
// when rlogin itself is ended by signal n; 255 for usage errors and for failures to connect, verify
// the host key or log in, when the connection is lost and not resumed, and when -R finds no single
// session to take over.
package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rlogin-go/rlogin/internal/sanitize"
	"github.com/rlogin-go/rlogin/session"
)

// DefaultConnectTimeout bounds dialing and the mailbox exchange, and separately the login request,
// unless the command line sets another bound (-o ConnectTimeout=N). The TLS handshake has the
// transport's own timeout.
const DefaultConnectTimeout = 20 * time.Second

// ExitFailure is the exit status for usage errors and failed or lost connections (as ssh's).
const ExitFailure = 255

// Config is one rlogin run's surroundings. The zero value is rlogin as a user runs it, with
// nothing to read on standard input and output discarded: set at least Stdin, Stdout and Stderr.
// What the user chooses (the user, port, escape character, connect timeout, key...) comes from
// Run's arguments and the user's configuration files, as for rlogin itself, never from Config.
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
	// Passphrase asks for a key file's passphrase; nil means TTYPassphrase{} (/dev/tty, no echo).
	Passphrase Prompter
	// SystemConfig is the configuration file read after the user's ~/.rlogin/config; "" means
	// DefaultSystemConfig, and "none" no file.
	SystemConfig string
}

// DefaultSystemConfig is the system-wide configuration file, read after the user's.
const DefaultSystemConfig = "/etc/rlogin/rlogin_config"

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
	opts, given, err := parseArgs(args)
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
	if opts.NewKey {
		return r.newKey()
	}
	if err := r.applyConfig(given); err != nil {
		return r.fail(err)
	}
	if opts.PrintConfig {
		return r.printConfig()
	}
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
	rc   *reconnector  // resumes the session after a lost connection; nil if it cannot

	// releaseOutput, if set, lets the remote output through once raw mode is on (classic
	// sessions start their output before interact; see runClassic).
	releaseOutput func()

	disconnected atomic.Bool    // the user typed ~.
	signaled     atomic.Int32   // the signal that ended the session, if one did
	canceled     atomic.Bool    // ctx ended the session
	hungUp       atomic.Bool    // the terminal hung up (or SIGHUP came) and the session stays detached
	hangUpSIGHUP chan os.Signal // after a hang-up, SIGHUP is caught here until interact returns (hangUp)

	stopSignal func(chan<- os.Signal) // signal.Stop (tests watch it)
	caught     *signalWatch           // the handlers the session's start installed, for interact

	// What the configuration files changed, for -G (settings.go).
	alias           string // the host as given on the command line
	escapeNone      bool   // -E or "EscapeChar none" (not: standard input is no terminal)
	certificateFile string // CertificateFile, kept for presenting a certificate beside the key
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
	if opts.NullStdin {
		r.stdin = strings.NewReader("") // -n: as /dev/null, at its end at once
	}
	r.inFd, r.inTTY = ttyFd(r.stdin)
	r.outFd, r.outTTY = ttyFd(out)
	if !r.inTTY || r.pipedCommand() {
		// Escapes only make sense for a user typing at a terminal, and a command without one
		// gets every byte (as ssh: ~. only with a terminal).
		r.opts.NoEscape = true
	}
	return r
}

func (r *runner) run(ctx context.Context) int {
	if r.opts.Classic {
		return r.runClassic(ctx)
	}
	dir, err := r.rloginDir()
	if err != nil {
		return r.fail(err)
	}
	user, err := r.remoteUser()
	if err != nil {
		return r.fail(err)
	}
	login := r.loginWithKeys
	if r.opts.Reattach {
		login = r.reattach
	}
	sess, stdinPipe, err := login(ctx, user, dir)
	var listed *listedError
	if errors.As(err, &listed) {
		return 0 // -R without a terminal: the list is the result
	}
	if err != nil {
		return r.fail(err)
	}
	r.sess = sess
	defer r.stdout.closeNonblocking()
	return r.interact(ctx, stdinPipe)
}

// loginWithKeys logs in with the first key the server takes, of those rlogin may offer (see
// identity.go): a refused key is followed by the next one, on a new connection.
func (r *runner) loginWithKeys(ctx context.Context, user string, dir rloginDir) (*session.Client, io.WriteCloser, error) {
	var sess *session.Client
	var stdinPipe io.WriteCloser
	err := r.withKeys(ctx, dir, func(id *identity) (err error) {
		sess, stdinPipe, err = r.login(ctx, id, user, dir, nil)
		return err
	})
	return sess, stdinPipe, err
}

// withKeys calls try with each key rlogin may offer, in turn, until try succeeds or fails for
// another reason than the server's refusal of the key.
func (r *runner) withKeys(ctx context.Context, dir rloginDir, try func(*identity) error) error {
	ids, err := r.newIdentities(ctx, dir)
	if err != nil {
		return err
	}
	defer ids.close() // the handshakes are over: the agent has signed what it had to
	var refused error // the server's last refusal of a key
	for {
		id, err := ids.next()
		if err != nil {
			return err
		}
		if id == nil { // every key left was one already offered
			return ids.refusedAll(refused)
		}
		r.debugf("offering your key %s", id)
		err = try(id)
		if err == nil || !keyRefused(err) {
			return err
		}
		refused = err
		if !ids.more() {
			return ids.refusedAll(refused)
		}
		r.debugf("%s refused the key; trying the next one", r.opts.Host)
	}
}

// ended reports how the session ended, on stderr when it is a failure, and returns the status.
func (r *runner) ended(waitErr error) int {
	host := r.opts.Host
	reconnecting, gaveUp := r.rc.reconnecting()
	if reconnecting {
		r.rc.status.end("") // the reason takes its place
	}
	var exit *session.ExitError
	var refused *session.RefusedError
	switch {
	case r.hungUp.Load():
		// Whoever reads this (a log, a terminal that survived the SIGHUP) learns how to go on.
		return r.fail(&connectError{msg: fmt.Sprintf("terminal hung up: the session on %s stays detached (rlogin -R %s takes it back)", host, host), err: waitErr})
	case reconnecting && r.disconnected.Load():
		return r.fail(&connectError{msg: fmt.Sprintf("connection to %s lost: gave up reconnecting (~.)", host), err: waitErr})
	case r.disconnected.Load() && r.resumable():
		// ~. closes the connection, as always; a server that keeps sessions keeps this one,
		// and the user learns how to take it back, or that exit ends it for good.
		r.toLineStart()
		fmt.Fprintf(r.stderr, "Connection to %s closed; the session stays detached (rlogin -R %s takes it back; exit ends it).\n", host, host)
		return 0
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
	case gaveUp != "":
		return r.fail(&connectError{msg: gaveUp, err: waitErr})
	case reconnecting && errors.As(waitErr, &refused) && refused.Reason == noSessionReason:
		return r.fail(&connectError{msg: fmt.Sprintf("the session on %s ended while disconnected", host), err: waitErr})
	case reconnecting && errors.As(waitErr, &refused):
		return r.fail(&connectError{msg: fmt.Sprintf("%s refused to resume the session: %s", host, refused.Reason), err: waitErr})
	}
	if code, ok := r.outputClosed(waitErr); ok {
		return code
	}
	var noAnswer *session.NoAnswerError
	if errors.As(waitErr, &noAnswer) {
		return r.fail(&connectError{msg: noAnswerMessage(host, noAnswer), err: waitErr})
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
