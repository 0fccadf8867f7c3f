package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/rlogin-go/rlogin/internal/pamlogin"
	"github.com/rlogin-go/rlogin/internal/privsep"
	"github.com/rlogin-go/rlogin/internal/sanitize"
	"github.com/rlogin-go/rlogin/internal/systemlogin"
	"github.com/rlogin-go/rlogin/pty"
)

// The monitor's logins through PAM, in a build with PAM (pamlogin.Supported: -tags pam): the
// account stack for a key or .rhosts login, the authentication stack for a password, whose
// conversation the net child relays to the client in band (PROMPT, ANSWER, INFO); then the PAM
// session, and the user's shell started on the session's pty by the monitor itself, so that
// its exit status is the shell's. A build without PAM runs login(1) as before, and refuses
// password logins, answered as an unknown user is (monitor.go).

// maxPrompts bounds the prompts of one connection's PAM conversation: a password, and the three
// of an expired password's change, with room for a stack that asks more (an OTP), as sshd's
// MaxAuthTries (6) bounds its attempts.
const maxPrompts = 6

// reasonLoginIncorrect is what a client whose password PAM refused is told, as login(1) does.
const reasonLoginIncorrect = "login incorrect"

// relay is the PAM conversation of one login, relayed to the net child (which shows it to the
// client in band): a prompt is a PROMPT answered by the child's ANSWER, information and errors
// are INFOs. Every wait ends with ctx (the login grace time).
type relay struct {
	ch    *privsep.Channel
	quiet bool // information is not shown (a command's session): Info drops it

	mu   sync.Mutex            // guards conv: a resumable session's ATTACH goes from another goroutine
	conv *privsep.Conversation // the order of the messages, and the bound on prompts
}

// newRelay returns the conversation of the login the child asked for with login, after
// instead (a COMMAND, RESUME or LIST) if it sent one (nil: none).
func newRelay(ch *privsep.Channel, instead privsep.Message, login *privsep.Login) (*relay, error) {
	conv := privsep.NewConversation(maxPrompts)
	if instead != nil {
		if err := conv.Received(instead); err != nil {
			return nil, err
		}
	}
	if err := conv.Received(login); err != nil {
		return nil, err
	}
	return &relay{ch: ch, conv: conv}, nil
}

// send sends m to the child, after the order check.
func (r *relay) send(m privsep.Message, files ...*os.File) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.conv.Sending(m); err != nil {
		return err
	}
	return r.ch.Send(m, files...)
}

// received checks the order of m, a request the child sent.
func (r *relay) received(m privsep.Message) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.conv.Received(m)
}

// Prompt implements pamlogin.Conversation.
func (r *relay) Prompt(ctx context.Context, text string, echo bool) (string, error) {
	if err := r.send(&privsep.Prompt{Text: fitText(text, privsep.MaxPromptLen), Echo: echo}); err != nil {
		return "", fmt.Errorf("daemon: prompt: %w", err)
	}
	m, err := r.receive(ctx)
	if err != nil {
		return "", err
	}
	return m.(*privsep.Answer).Text, nil // Received lets only an ANSWER through here
}

// receive waits, until ctx is done, for the child's answer to what was sent last (an ANSWER
// to a PROMPT, a PROOF to a CHALLENGE), after the order check.
func (r *relay) receive(ctx context.Context) (privsep.Message, error) {
	if d, ok := ctx.Deadline(); ok {
		_ = r.ch.SetReadDeadline(d)
	}
	stop := context.AfterFunc(ctx, func() { _ = r.ch.SetReadDeadline(time.Unix(1, 0)) })
	m, _, err := r.ch.Receive()
	stop()
	_ = r.ch.SetReadDeadline(time.Time{})
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			err = ctxErr
		}
		return nil, fmt.Errorf("daemon: waiting for the answer: %w", err)
	}
	if err := r.received(m); err != nil {
		return nil, err
	}
	return m, nil
}

// Info implements pamlogin.Conversation: text goes in INFOs of at most privsep.MaxInfoLen bytes.
func (r *relay) Info(ctx context.Context, text string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if r.quiet {
		return nil
	}
	for _, chunk := range infoChunks(text) {
		if err := r.send(&privsep.Info{Text: chunk}); err != nil {
			return fmt.Errorf("daemon: info: %w", err)
		}
	}
	return nil
}

// Error implements pamlogin.Conversation: an error message is shown as information is.
func (r *relay) Error(ctx context.Context, text string) error { return r.Info(ctx, text) }

// infoChunks makes text, from a PAM module or a system file (the motd), safe to show (each
// line sanitized, line ends kept) and cuts it into INFO-sized pieces at line ends where it can.
func infoChunks(text string) []string {
	lines := strings.Split(strings.TrimRight(text, "\n"), "\n")
	var chunks []string
	var cur strings.Builder
	for _, line := range lines {
		line = fitText(line, privsep.MaxInfoLen-1)
		if cur.Len() > 0 && cur.Len()+1+len(line) > privsep.MaxInfoLen {
			chunks = append(chunks, cur.String())
			cur.Reset()
		}
		if cur.Len() > 0 {
			cur.WriteByte('\n')
		}
		cur.WriteString(line)
	}
	return append(chunks, cur.String())
}

// fitText makes s one line of text for the client (sanitized) of at most limit bytes, cut at a
// character's end with "..." if it is longer.
func fitText(s string, limit int) string {
	r := sanitize.Text(s)
	if len(r) > limit {
		r = r[:limit-3]
		for !utf8.ValidString(r) {
			r = r[:len(r)-1]
		}
		r += "..."
	}
	return r
}

// pamCheck runs the PAM stack that decides lg: the account stack for a login the monitor
// authorized already (a key, .rhosts), the authentication stack first for a password, whose
// prompts r relays. It logs the outcome and, on a refusal, reports it to the listener and
// tells the child; the caller then returns.
func (m *monitor) pamCheck(ctx context.Context, log *slog.Logger, r *relay, lg *systemLogin, host string) (*pamlogin.Login, bool) {
	cfg := pamlogin.Config{User: lg.user.Name, RemoteHost: host, Records: systemlogin.Records{}}
	var pl *pamlogin.Login
	var err error
	if lg.passwordPending() {
		m.report(eventAttempt) // from now on, a connection that ends is a failed attempt
		pl, err = pamlogin.Authenticate(ctx, cfg, r)
	} else {
		pl, err = pamlogin.Account(ctx, cfg, r)
	}
	if err == nil && lg.unknown {
		// PAM knows a user the passwd database does not: refused, as that user has no account
		// the session could run as.
		_ = pl.Close()
		err = fmt.Errorf("%w: no such user", pamlogin.ErrRefused)
	}
	if err == nil {
		if lg.passwordPending() {
			log.Info("authentication succeeded", "method", methodPassword, "user", lg.user.Name)
		}
		return pl, true
	}
	reason := reasonDenied
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		log.Warn("login grace time exceeded; connection closed", "grace", m.g.cfg.LoginGraceTime, "user", lg.user.Name, "method", lg.method)
		reason = reasonTimedOut
	case errors.Is(err, context.Canceled):
		log.Info("login abandoned: service stopping", "user", lg.user.Name)
		m.report(eventServerFault)
		return nil, false
	case errors.Is(err, pamlogin.ErrRefused) && lg.passwordPending():
		log.Warn("authentication failed", "method", methodPassword, "user", lg.user.Name, "reason", sanitize.Text(err.Error()))
		reason = reasonLoginIncorrect
	case errors.Is(err, pamlogin.ErrRefused):
		log.Warn("login refused", "stage", "PAM account", "method", lg.method, "user", lg.user.Name, "reason", sanitize.Text(err.Error()))
	default:
		// The conversation failed (the client left during the prompt), or PAM itself.
		log.Warn("authentication failed", "method", lg.method, "user", lg.user.Name, "reason", sanitize.Text(err.Error()))
	}
	m.report(eventFailed)
	_ = r.send(&privsep.Refuse{Reason: reason}) // the child may be gone
	return nil, false
}

// ptyStarter starts the shell PAM's Start builds on the session's pty (pamlogin.Starter), in its
// cgroup, and reaps it with the PTY's Wait.
type ptyStarter struct {
	opened *pty.Opened
	p      *pty.PTY // once started
	tried  bool     // Start was called: opened is the PTY's now, or closed
}

func (s *ptyStarter) Start(cmd *exec.Cmd) error {
	s.tried = true
	p, err := s.opened.Start(cmd)
	s.p = p
	return err
}

func (s *ptyStarter) Wait() (*os.ProcessState, error) { return s.p.Wait() }

// sessionProgram is the program a PAM session runs for sr, on the terminal tty that st starts
// it on: the one place that says what the user's program is (its command, if the request has
// one, in place of the login shell).
func sessionProgram(sr sessionRequest, tty *os.File, st pamlogin.Starter) pamlogin.Program {
	return pamlogin.Program{Command: sr.command, OriginalCommand: sr.original, Term: sr.term, Locale: sr.locale, TTY: tty, Starter: st}
}

// startPAM opens the PAM session of pl and starts the user's shell on a new pty (contained, as
// login(1)'s sessions are), and returns the pty. It runs on the monitor's main thread, as every
// PAM call of the login (see roles.go).
func startPAM(ctx context.Context, pl *pamlogin.Login, sr sessionRequest) (*pty.PTY, error) {
	o, err := pty.OpenContained(sr.window)
	if err != nil {
		return nil, err
	}
	st := &ptyStarter{opened: o}
	err = pl.Start(ctx, sessionProgram(sr, o.TTY(), st))
	if err != nil {
		if !st.tried {
			_ = o.Close()
		}
		return nil, err
	}
	return st.p, nil
}
