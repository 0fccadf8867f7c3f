package daemon

import (
	"crypto/sha256"
	"encoding/hex"
	"log/slog"

	"github.com/rlogin-go/rlogin/internal/sanitize"
	"github.com/rlogin-go/rlogin/keys"
	"github.com/rlogin-go/rlogin/session"
)

// Reasons sent to a client whose command is refused.
const (
	reasonNoPTY            = "this key allows no terminal (no-pty): run a command, without -t"
	reasonNoSystemCommands = "this rlogind runs commands only in user mode, not for system logins"
	reasonPipesPassword    = "a command without a terminal needs a key: a password is asked on a terminal (rlogin -t)"
)

// A sessionCommand is what an authorized login runs in place of a login shell.
type sessionCommand struct {
	command  string // "" for a login shell
	original string // the client's command, when command is a forced one
	pipes    bool   // without a terminal
}

// commandOf decides what the session of an authorized login runs, by the client's request and
// what its key or certificate forces (cl): a forced command replaces the client's command or
// login shell, and the client's command goes into SSH_ORIGINAL_COMMAND, as in sshd; a key with
// no-pty gets no terminal, so only a command without one. In system mode (lg set) a command is
// refused, with the reason: login(1) starts the shell there, and runs no commands. It returns
// the refusal's reason and false, or the command and true.
func commandOf(log *slog.Logger, req *session.Request, cl *client, lg *systemLogin) (sessionCommand, string, bool) {
	requested := req.Command
	if lg != nil && requested != nil {
		log.Warn("login refused", "reason", "a command in system mode", "command", sanitize.Text(requested.Line))
		return sessionCommand{}, reasonNoSystemCommands, false
	}
	return commandFor(log, req, cl)
}

// commandFor is commandOf for a server that runs commands for every login: the monitor of a
// PAM build, which starts the user's program itself.
func commandFor(log *slog.Logger, req *session.Request, cl *client) (sessionCommand, string, bool) {
	requested := req.Command
	terminal := requested == nil || requested.PTY
	// sshd runs a no-pty key's forced command on pipes for a plain login too; here that waits
	// for the session to carry a command's error output when the client sent no COMMAND (its
	// client takes STDERR frames only for a command): until then, the pipe nobody reads would
	// stop a command that writes much on it, so the login is refused.
	if cl.noPTY && terminal {
		log.Warn("login refused", "reason", "the key's no-pty option forbids a terminal")
		return sessionCommand{}, reasonNoPTY, false
	}
	sc := sessionCommand{command: cl.forceCommand, pipes: !terminal}
	if requested != nil {
		if sc.command == "" {
			sc.command = requested.Line
		} else {
			sc.original = requested.Line
		}
	}
	if sc.command != "" {
		// The line may carry a secret (a password as an argument), so Info has only its length
		// and a digest to tell runs apart; the line itself is for Debug, as sshd logs it.
		log.Info("running a command", "length", len(sc.command), "sha256", commandDigest(sc.command), "terminal", terminal, "forced", cl.forceCommand != "")
		log.Debug("the command", "command", sanitize.Text(sc.command))
	}
	return sc, "", true
}

// commandDigest is the start of a command line's SHA-256, enough to match two log lines of the
// same command, and no help in guessing a long secret in it.
func commandDigest(line string) string {
	sum := sha256.Sum256([]byte(line))
	return hex.EncodeToString(sum[:8])
}

// keyOptionAttrs describes the options of the authorized_keys line that let a key in, for the
// log.
func keyOptionAttrs(o keys.KeyOptions) []any {
	var attrs []any
	if o.Command != "" {
		attrs = append(attrs, "forced_command", sanitize.Text(o.Command))
	}
	if o.NoPTY {
		attrs = append(attrs, "no_pty", true)
	}
	if o.From != "" {
		attrs = append(attrs, "from", sanitize.Text(o.From))
	}
	return attrs
}
