package client

import (
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/rlogin-go/rlogin/session"
)

// rloginDir is the user's ~/.rlogin, where the key and known_hosts are.
type rloginDir struct {
	home      string // the home directory
	shownHome string // how messages show it: "~" when it comes from $HOME
}

// rloginDir returns the user's ~/.rlogin: under Config.Home, else under $HOME.
func (r *runner) rloginDir() (rloginDir, error) {
	if r.cfg.Home != "" {
		return rloginDir{home: r.cfg.Home, shownHome: r.cfg.Home}, nil
	}
	dir, err := os.UserHomeDir()
	if err != nil {
		return rloginDir{}, &connectError{msg: fmt.Sprintf("no home directory: %s", plainText(err)), err: err}
	}
	return rloginDir{home: dir, shownHome: "~"}, nil
}

// path is the file name in the directory.
func (d rloginDir) path(name string) string { return filepath.Join(d.home, ".rlogin", name) }

// shown is the file name in the directory as messages show it: ~/.rlogin/name.
func (d rloginDir) shown(name string) string {
	path := d.path(name)
	if rel, err := filepath.Rel(d.home, path); err == nil && !strings.HasPrefix(rel, "..") {
		return d.shownHome + "/" + rel
	}
	return path
}

// remoteUser is the user to log in as: -l or user@host, else the local user name.
func (r *runner) remoteUser() (string, error) {
	if r.opts.User != "" {
		return r.opts.User, nil
	}
	return r.localUser()
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

// localeEnv is LANG and LC_* from the environment, as the protocol carries them
// (session.LocaleEnv): what ssh sends by default.
func (r *runner) localeEnv() []string { return session.LocaleEnv(r.environ) }

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

// interruptChars are the characters that make the user's own terminal interrupt, quit and
// suspend (VINTR, VQUIT, VSUSP), read before raw mode, when standard input is a terminal with
// signals on: typed in the session, they are what makes the remote terminal flush its output,
// and the session holds the output until it knows (session.Client.Interrupts).
func (r *runner) interruptChars() []byte {
	if !r.inTTY {
		return nil
	}
	ts, err := unix.IoctlGetTermios(r.inFd, unix.TCGETS)
	if err != nil || ts.Lflag&unix.ISIG == 0 {
		return nil
	}
	var chars []byte
	for _, c := range []byte{ts.Cc[unix.VINTR], ts.Cc[unix.VQUIT], ts.Cc[unix.VSUSP]} {
		if c != 0 { // 0 is _POSIX_VDISABLE
			chars = append(chars, c)
		}
	}
	return chars
}
