package pamlogin

import (
	"bufio"
	"io"
	"os"
	"path"
	"slices"
	"strings"

	"github.com/rlogin-go/rlogin/internal/usershell"
)

// loginDefsPath is shadow's configuration of logins, which login(1) reads for PATH and MAIL.
const loginDefsPath = "/etc/login.defs"

// defaultMailDir is where mail spools are when login.defs names no MAIL_DIR (paths.h's
// _PATH_MAILDIR).
const defaultMailDir = "/var/mail"

// loginDefs holds what the session's environment takes from login.defs(5).
type loginDefs struct {
	path    string // ENV_PATH's PATH; "" if not set
	mailDir string // MAIL_DIR; "" if not set
}

// readLoginDefs reads login.defs at p; a missing or unreadable file gives the defaults.
func readLoginDefs(p string) loginDefs {
	f, err := os.Open(p)
	if err != nil {
		return loginDefs{}
	}
	defer f.Close()
	return parseLoginDefs(f)
}

// parseLoginDefs reads login.defs(5) lines, "NAME value", with # comments.
func parseLoginDefs(r io.Reader) loginDefs {
	var d loginDefs
	sc := bufio.NewScanner(io.LimitReader(r, 1<<20)) // a real one is a few KiB
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 2 || strings.HasPrefix(f[0], "#") {
			continue
		}
		switch f[0] {
		case "ENV_PATH": // "PATH=/usr/bin:/bin" or "/usr/bin:/bin", as login(1) accepts both
			d.path = strings.TrimPrefix(f[1], "PATH=")
		case "MAIL_DIR":
			d.mailDir = f[1]
		}
	}
	return d
}

// sessionEnv is the complete environment of a session's program, nothing of the caller's own:
// what the PAM stack set (pam_env's /etc/environment and /etc/default/locale, pam_mail's MAIL,
// pam_systemd's XDG_*), PATH and MAIL from login.defs where PAM set none, then the user's HOME,
// SHELL, USER and LOGNAME, the client's TERM and its locale variables over PAM's defaults. The
// user's identity is never a PAM module's to set: what a session trusts about who it runs as
// comes from the passwd database.
func sessionEnv(pamEnv []string, defs loginDefs, user, home, shell, term string, locale []string) []string {
	var env []string
	set := func(kv string) {
		name, _, _ := strings.Cut(kv, "=")
		if i := slices.IndexFunc(env, func(e string) bool { return strings.HasPrefix(e, name+"=") }); i >= 0 {
			env[i] = kv
			return
		}
		env = append(env, kv)
	}
	has := func(name string) bool {
		return slices.ContainsFunc(env, func(e string) bool { return strings.HasPrefix(e, name+"=") })
	}
	for _, kv := range pamEnv {
		if name, _, ok := strings.Cut(kv, "="); ok && name != "" {
			set(kv)
		}
	}
	if !has("PATH") {
		p := defs.path
		if p == "" {
			p = usershell.DefaultPath
		}
		set("PATH=" + p)
	}
	if !has("MAIL") {
		dir := defs.mailDir
		if dir == "" {
			dir = defaultMailDir
		}
		set("MAIL=" + path.Join(dir, user))
	}
	set("HOME=" + home)
	set("SHELL=" + shell)
	set("USER=" + user)
	set("LOGNAME=" + user)
	if term != "" {
		set("TERM=" + term)
	}
	for _, kv := range locale {
		set(kv)
	}
	return env
}
