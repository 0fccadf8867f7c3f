package pamlogin

import (
	"context"
	"errors"
	"os"
	"os/exec"
)

// DefaultService is the PAM service used when Config.Service is empty: login(1)'s. Its stack
// exists on every Linux with PAM and is the one the system's administrator set up for
// interactive logins: the failure delay, nologin, loginuid, limits, the environment, the message
// of the day, lastlog and the mail notice. rlogind's system mode ran login(1) before, so the
// same stack keeps applying. "rlogin" is not used: on Debian that is netkit in.rlogind's
// service (package rsh-server), whose stack lets .rhosts trust in without a password; and a
// service of our own would fall back to "other" wherever it is not installed (pam_deny on
// Fedora, no delay nor nologin on Debian).
const DefaultService = "login"

// Config names a login: the PAM service, the user as the client named it, and where the client
// connects from.
type Config struct {
	Service    string // the PAM service; "" means DefaultService
	User       string // a valid user name (the session package's rules), known or not
	RemoteHost string // PAM_RHOST: the client's host name or address; "" if unknown

	// Records writes the utmp and wtmp records of a session on a terminal (utmp(5)); nil
	// writes none. The PAM stack writes lastlog (pam_lastlog) where it is configured to.
	Records LoginRecords
}

// LoginRecords writes the login records of a session on a terminal: a login record when the
// program starts and a logout record when it has ended. line is the terminal's name without
// "/dev/" ("pts/3"), pid the program's process id. With login's stack, pam_lastlog already
// appends the login record to wtmp (and lastlog): Login then has only utmp's entry to write,
// and Logout marks that entry dead and appends wtmp's logout record, as logout(3) and
// logwtmp(3) would.
type LoginRecords interface {
	Login(line, user, host string, pid int) error
	Logout(line string, pid int) error
}

// Conversation is the user's side of PAM's conversation, which the caller relays to the client.
// Its methods are called one at a time, from the goroutine of the call that needs them
// (Authenticate, Account, Start); each must return once ctx is done, with an error. Texts come
// from PAM modules and the system's files (motd): the caller makes them safe to show.
type Conversation interface {
	// Prompt asks the user text ("Password: ") and returns the answer; echo says whether the
	// answer may be shown as it is typed (a user name) or not (a password). An answer longer
	// than MaxResponse bytes or holding a NUL byte is refused as a failed conversation.
	Prompt(ctx context.Context, text string, echo bool) (string, error)
	// Info shows the user text, information (the message of the day, "last login ...").
	Info(ctx context.Context, text string) error
	// Error shows the user text, an error message ("Your password has expired").
	Error(ctx context.Context, text string) error
}

// MaxResponse bounds an answer to a prompt: PAM's own limit (PAM_MAX_RESP_SIZE).
const MaxResponse = 512

// Program is what Start runs as the user: the login shell, or the shell running Command.
type Program struct {
	Command string // run as "$SHELL -c Command"; "" for a login shell (argv[0] "-bash")
	// OriginalCommand is the client's command when Command is a forced one (an authorized key's
	// command= option): the program finds it in SSH_ORIGINAL_COMMAND, as under sshd.
	OriginalCommand string
	Term            string   // TERM, already valid (session's rules); "" leaves it out
	Locale          []string // the accepted locale variables, "LANG=C.UTF-8", already valid (session's rules)

	// TTY is the slave side of the session's terminal: the program's standard input, output
	// and error and its controlling terminal, in a session of its own. Nil runs the program
	// without a terminal on Stdin, Stdout and Stderr (nil ones are /dev/null), in a session
	// of its own. Start does not close them.
	TTY                   *os.File
	Stdin, Stdout, Stderr *os.File

	// Starter, if not nil, starts the program and reaps it in place of Start and Wait: a
	// caller that keeps the program's terminal and its process operations (package pty's
	// Opened, whose TTY is then this TTY) puts it there itself. Start gives it the command
	// with the user's credentials, environment and directory, its standard files left nil.
	Starter Starter
}

// A Starter starts a Program's command and reaps it, for a caller that holds its terminal.
type Starter interface {
	// Start starts cmd, on the caller's terminal, in a session of its own. It is called once,
	// by Login.Start, on the thread that opened the PAM session.
	Start(cmd *exec.Cmd) error
	// Wait waits for the command to exit, reaps it and returns its state. Login.Wait calls it;
	// the caller may call it too, before or after: it must return the same each time.
	Wait() (*os.ProcessState, error)
}

// ErrRefused is matched (errors.Is) by the error of an authentication or account check that
// PAM refused: a wrong password, an unknown user, an expired or locked account, a password that
// had to be changed and was not. The error's text ends with PAM's reason.
var ErrRefused = errors.New("login refused")

// ErrUnsupported is returned by every call of a build without PAM.
var ErrUnsupported = errors.New("pamlogin: this build has no PAM support: build with `go build -tags pam ./cmd/rlogind` (needs gcc and libpam0g-dev)")
