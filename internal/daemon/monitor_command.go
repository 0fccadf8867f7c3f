package daemon

import (
	"context"
	"log/slog"
	"os"
	"os/exec"
	"time"

	"github.com/rlogin-go/rlogin/internal/pamlogin"
	"github.com/rlogin-go/rlogin/internal/pipes"
	"github.com/rlogin-go/rlogin/internal/privsep"
	"github.com/rlogin-go/rlogin/internal/sanitize"
	"github.com/rlogin-go/rlogin/session"
)

// The monitor's commands (capability exec), in a build with PAM: the user's shell runs the
// client's command in place of a login shell, on the session's pty (rlogin -t: as a login,
// ACCEPT) or on three pipes (PIPES), as user mode runs one. A build without PAM refuses them:
// login(1) runs no commands.

// sessionCommand decides what the session of lg, an authorized secure login, runs (commandOf),
// and puts it in sr; it returns false and the reason for the client if the login is refused.
func (m *monitor) sessionCommand(log *slog.Logger, req *session.Request, cl *client, lg *systemLogin, sr *sessionRequest) (bool, string) {
	var sc sessionCommand
	var reason string
	var ok bool
	if pamlogin.Supported {
		sc, reason, ok = commandFor(log, req, cl)
	} else {
		sc, reason, ok = commandOf(log, req, cl, lg)
	}
	if !ok {
		return false, reason
	}
	if sc.pipes && lg.passwordPending() {
		// The password is asked in band, on the session's output, which a command on pipes
		// keeps for the command's.
		log.Warn("login refused", "user", lg.user.Name, "reason", "a command without a terminal, and no key authorized")
		return false, reasonPipesPassword
	}
	sr.command, sr.original, sr.pipes = sc.command, sc.original, sc.pipes
	return true, ""
}

// pipesStarter starts the command PAM's Start builds on three new pipes (package pipes: a
// session of its own, its cgroup), and reaps it.
type pipesStarter struct{ c *pipes.Command }

func (s *pipesStarter) Start(cmd *exec.Cmd) error {
	c, err := pipes.Start(cmd)
	s.c = c
	return err
}

func (s *pipesStarter) Wait() (*os.ProcessState, error) { return s.c.Wait() }

// servePipes starts the command of sr on pipes in the PAM session of pl, hands this side of
// the pipes to the child (PIPES), and does the command's process operations (HANGUP, KILL,
// SIGNAL) until it has exited; then it tells the child how (EXITED) and ends what the command
// left. No login record: a command without a terminal has no line (as sshd's).
func (m *monitor) servePipes(ctx context.Context, child *netChild, r *relay, log *slog.Logger, lg *systemLogin, pl *pamlogin.Login, sr sessionRequest) {
	actx, cancel := context.WithDeadline(ctx, m.deadline)
	defer cancel()
	st := &pipesStarter{}
	if err := pl.Start(actx, pamlogin.Program{Command: sr.command, OriginalCommand: sr.original, Term: sr.term, Locale: sr.locale, Starter: st}); err != nil {
		log.Error("cannot start the session", "program", "PAM", "err", err)
		_ = r.send(&privsep.Refuse{Reason: reasonNoShell})
		return
	}
	c := st.c
	run := &running{log: log.With("pid", c.Pid(), "user", lg.user.Name, "method", lg.method), p: c, pipes: c}
	defer run.endProcesses(m.g.cfg.StopGrace)
	stdin, stdout, stderr := c.Files()
	err := r.send(&privsep.Pipes{}, stdin, stdout, stderr)
	_ = c.Close() // the child has its own copies now; the command's end is this process's
	if err != nil {
		run.log.Error("cannot hand the session to the network process", "err", err)
		c.Hangup()
		_, _ = c.Wait()
		return
	}
	run.log.Info("session started", "command", true, "terminal", false)
	start := time.Now()
	// A command on pipes is not resumable: no resumeHost.
	state := m.shellOps(ctx, child, r, c, nil)
	if _, err := pl.Wait(); err != nil { // the PAM session's close and the credentials' deletion
		run.log.Warn("the PAM session did not end cleanly", "err", sanitize.Text(err.Error()))
	}
	run.end(start, state, nil)
}
