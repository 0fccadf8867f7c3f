package usershell

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/rlogin-go/rlogin/internal/pipes"
	"github.com/rlogin-go/rlogin/pty"
)

// DefaultPath is the PATH of every shell started here, whatever the daemon's own PATH is.
const DefaultPath = "/usr/local/bin:/usr/bin:/bin:/usr/local/games:/usr/games"

// fallbackShell runs when the passwd database names no shell for the user.
const fallbackShell = "/bin/sh"

// PasswdPath is the passwd database the login shell is looked up in.
const PasswdPath = "/etc/passwd"

// A Shell is the user's login shell, as the daemon runs it for its own user.
type Shell struct {
	User string // the user's name: USER and LOGNAME
	Home string // HOME, and the working directory if it exists
	Path string // the shell program, absolute
	// Command, if set, is run by the shell ("shell -c Command", as sshd runs a command) in place
	// of a login shell: the client's command, or a forced one (a user certificate's
	// force-command, an authorized key's command=).
	Command string
	// OriginalCommand is the client's command when Command is a forced one: the command gets it
	// in SSH_ORIGINAL_COMMAND, as under sshd, to choose among what it allows.
	OriginalCommand string
}

// Start starts sh on a new pty of the given size, as a login shell: argv[0] is "-" and the
// shell's base name, the working directory the home directory (or / if it is missing), and the
// environment exactly Env's, with term (already valid: session.TerminalTypeOrDumb) and the
// accepted locale variables. The caller ends what is left of the session with the PTY's End once
// the shell has exited.
func Start(log *slog.Logger, sh Shell, term string, locale []string, window pty.Size) (*exec.Cmd, *pty.PTY, error) {
	cmd := sh.command(log, term, locale)
	p, err := pty.StartContained(cmd, window) // a cgroup only if this user may make one
	return cmd, p, err
}

// StartPipes starts sh's Command (which must be set) without a terminal, on pipes, as Start
// does on a pty: "shell -c Command" in the home directory, with Env's environment but TERM. The
// caller ends what is left of the session with the Command's End once it has exited.
func StartPipes(log *slog.Logger, sh Shell, locale []string) (*exec.Cmd, *pipes.Command, error) {
	if sh.Command == "" {
		return nil, nil, errors.New("usershell: a command without a terminal needs a command")
	}
	cmd := sh.command(log, "", locale)
	c, err := pipes.Start(cmd) // a cgroup only if this user may make one
	return cmd, c, err
}

// command is the shell's exec.Cmd: a login shell, or the shell running Command.
func (sh Shell) command(log *slog.Logger, term string, locale []string) *exec.Cmd {
	dir := sh.Home
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		log.Warn("no home directory; starting the shell in /", "home", dir)
		dir = "/"
	}
	args := []string{"-" + filepath.Base(sh.Path)}
	env := Env(sh.User, sh.Home, sh.Path, term, locale)
	if sh.Command != "" {
		args = []string{filepath.Base(sh.Path), "-c", sh.Command}
		if sh.OriginalCommand != "" {
			env = append(env, "SSH_ORIGINAL_COMMAND="+sh.OriginalCommand)
		}
	}
	return &exec.Cmd{Path: sh.Path, Args: args, Env: env, Dir: dir}
}

// Env is the complete environment of the user's shell: nothing of the daemon's own
// environment is in it. A command without a terminal has term "" and gets no TERM.
func Env(user, home, shell, term string, locale []string) []string {
	env := []string{
		"HOME=" + home,
		"USER=" + user,
		"LOGNAME=" + user,
		"SHELL=" + shell,
		"PATH=" + DefaultPath,
	}
	if term != "" {
		env = append(env, "TERM="+term)
	}
	return append(env, locale...)
}

// Lookup returns the login shell that the passwd database at path gives uid, or
// fallbackShell if it names none (os/user has no shell field).
func Lookup(path string, uid int) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return fallbackShell, fmt.Errorf("usershell: looking up the login shell: %w", err)
	}
	defer f.Close()
	shell, err := parsePasswdShell(f, uid)
	if err != nil {
		return fallbackShell, fmt.Errorf("usershell: looking up the login shell in %s: %w", path, err)
	}
	return shell, nil
}

// parsePasswdShell reads passwd(5) lines ("name:password:uid:gid:gecos:home:shell") and returns
// the shell of the first entry for uid; fallbackShell if that entry has an empty or relative
// shell or there is none.
func parsePasswdShell(r io.Reader, uid int) (string, error) {
	sc := bufio.NewScanner(r)
	want := strconv.Itoa(uid)
	for sc.Scan() {
		f := strings.Split(sc.Text(), ":")
		if len(f) != 7 || f[2] != want {
			continue
		}
		if !strings.HasPrefix(f[6], "/") {
			return fallbackShell, nil
		}
		return f[6], nil
	}
	return fallbackShell, sc.Err()
}
