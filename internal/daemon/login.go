package daemon

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/rlogin-go/rlogin/session"
)

// DefaultPath is the PATH of every shell the daemon starts, whatever the daemon's own PATH is.
const DefaultPath = "/usr/local/bin:/usr/bin:/bin:/usr/local/games:/usr/games"

// fallbackShell runs when the passwd database names no shell for the user.
const fallbackShell = "/bin/sh"

// errInvalidUser is the reason logged for a user name that fails session.ValidUserName.
var errInvalidUser = errors.New("invalid user name")

// localeEnv is the daemon's policy for the requested environment: the shell gets only locale
// variables, those session.LocaleEnv keeps (the protocol's rule: LANG and LC_* with printable
// ASCII values, each name once, at most session.MaxLocaleVars). It returns the kept "NAME=value"
// entries and the entries it dropped.
func localeEnv(req []string) (kept, dropped []string) {
	kept = session.LocaleEnv(req)
	// kept is a subsequence of req, and an entry it skipped is never equal to a later kept one
	// (same bytes, same verdict), so matching in order finds the dropped ones.
	j := 0
	for _, kv := range req {
		if j < len(kept) && kv == kept[j] {
			j++
			continue
		}
		dropped = append(dropped, kv)
	}
	return kept, dropped
}

// shellEnv is the complete environment of the user's shell: nothing of the daemon's own
// environment is in it.
func shellEnv(user, home, shell, term string, locale []string) []string {
	env := []string{
		"HOME=" + home,
		"USER=" + user,
		"LOGNAME=" + user,
		"SHELL=" + shell,
		"PATH=" + DefaultPath,
		"TERM=" + term,
	}
	return append(env, locale...)
}

// passwdShell returns the login shell that the passwd database at path gives uid, or
// fallbackShell if it names none (os/user has no shell field).
func passwdShell(path string, uid int) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return fallbackShell, fmt.Errorf("daemon: looking up the login shell: %w", err)
	}
	defer f.Close()
	shell, err := parsePasswdShell(f, uid)
	if err != nil {
		return fallbackShell, fmt.Errorf("daemon: looking up the login shell in %s: %w", path, err)
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
