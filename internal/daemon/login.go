package daemon

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Limits on what a login request may carry. They follow netkit in.rlogind (user names of at most
// 32 bytes, terminal types of at most 256) and bound every other field the same way.
const (
	maxUserLen  = 32
	maxTermLen  = 256
	maxEnvValue = 256
	maxEnvVars  = 32
)

// DefaultPath is the PATH of every shell the daemon starts, whatever the daemon's own PATH is.
const DefaultPath = "/usr/local/bin:/usr/bin:/bin:/usr/local/games:/usr/games"

// fallbackShell runs when the passwd database names no shell for the user.
const fallbackShell = "/bin/sh"

// errInvalidUser is the reason logged for a user name that fails validUserName.
var errInvalidUser = errors.New("invalid user name")

// validUserName reports whether name is a portable user name: 1 to 32 bytes of [A-Za-z0-9._-],
// not starting with '-' (so it can never be read as an option: CVE-1999-0113's "-froot").
func validUserName(name string) bool {
	if name == "" || len(name) > maxUserLen || name[0] == '-' {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '.', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// terminalType returns the TERM for the shell: the requested one if it is 1 to 256 printable
// ASCII characters without spaces, "dumb" otherwise.
func terminalType(term string) string {
	if term == "" || len(term) > maxTermLen {
		return "dumb"
	}
	for i := 0; i < len(term); i++ {
		if term[i] <= ' ' || term[i] >= 0x7f {
			return "dumb"
		}
	}
	return term
}

// localeVarName reports whether name is LANG or LC_ followed by one or more of [A-Z_].
func localeVarName(name string) bool {
	if name == "LANG" {
		return true
	}
	rest, ok := strings.CutPrefix(name, "LC_")
	if !ok || rest == "" {
		return false
	}
	for i := 0; i < len(rest); i++ {
		if c := rest[i]; (c < 'A' || c > 'Z') && c != '_' {
			return false
		}
	}
	return true
}

// printableValue reports whether v is valid UTF-8 of at most maxEnvValue bytes without control
// characters (C0, DEL, C1; so no NUL and no escape sequences).
func printableValue(v string) bool {
	if len(v) > maxEnvValue || !utf8.ValidString(v) {
		return false
	}
	for _, r := range v {
		if unicode.IsControl(r) {
			return false
		}
	}
	return true
}

// localeEnv keeps the requested variables that are LANG or LC_* with printable values, first
// occurrence of each name only, at most maxEnvVars of them; it returns the kept "NAME=value"
// entries and the entries it dropped.
func localeEnv(req []string) (kept, dropped []string) {
	seen := make(map[string]bool)
	for _, kv := range req {
		name, value, ok := strings.Cut(kv, "=")
		if !ok || !localeVarName(name) || !printableValue(value) || seen[name] || len(kept) == maxEnvVars {
			dropped = append(dropped, kv)
			continue
		}
		seen[name] = true
		kept = append(kept, kv)
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
