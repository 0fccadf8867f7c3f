package client

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/rlogin-go/rlogin/internal/client/hostconfig"
)

// applyConfig sets what the command line left unset from the configuration files: the user's
// ~/.rlogin/config, then the system's (the first value obtained wins, as in ssh_config). With -c,
// a file's Port is not used: it names a secure rlogind's port, and classic rlogin's is 513.
func (r *runner) applyConfig(g given) error {
	r.alias = r.opts.Host
	r.escapeNone = g.noEscape
	dir, err := r.rloginDir()
	if err != nil {
		return err
	}
	files := []*hostconfig.File{}
	for _, path := range []string{dir.path("config"), r.systemConfig()} {
		if path == "none" {
			continue
		}
		f, err := hostconfig.Load(path)
		if errors.Is(err, fs.ErrPermission) {
			// As ssh does with a configuration file it cannot open (a HOME it may not enter).
			r.debugf("not reading %s: %v", path, err)
			continue
		}
		if err != nil {
			return &connectError{msg: configText(err), err: err}
		}
		files = append(files, f)
	}
	local, err := r.localUser()
	if err != nil {
		local = "" // %u expands to nothing; the login itself says what is wrong
	}
	var set hostconfig.Settings
	if err := set.Apply(r.opts.Host, hostconfig.Tokens{Home: dir.home, LocalUser: local}, files...); err != nil {
		return &connectError{msg: configText(err), err: err}
	}
	if set.HostName != "" {
		r.opts.Host = set.HostName
	}
	if set.User != "" && !g.user {
		r.opts.User = set.User
	}
	if set.Port != 0 && !g.port && !r.opts.Classic {
		r.opts.Port = set.Port
	}
	if set.IdentityFile != "" && r.opts.IdentityFile == "" {
		r.opts.IdentityFile = set.IdentityFile
	}
	r.certificateFile = set.CertificateFile
	if set.EscapeChar.Set && !g.escape {
		r.escapeNone = set.EscapeChar.None
		r.opts.NoEscape = r.opts.NoEscape || set.EscapeChar.None
		if !set.EscapeChar.None {
			r.opts.EscapeChar = set.EscapeChar.Char
		}
	}
	if set.ConnectTimeout != 0 && !g.connectTimeout {
		r.opts.ConnectTimeout = set.ConnectTimeout
	}
	if set.ServerAliveInterval != 0 && !g.serverAliveInterval {
		r.opts.ServerAliveInterval = set.ServerAliveInterval
	}
	if set.ServerAliveCountMax != 0 && !g.serverAliveCountMax {
		r.opts.ServerAliveCountMax = set.ServerAliveCountMax
	}
	if set.Resume.Set && !g.resume {
		r.opts.NoResume = !set.Resume.Yes
	}
	return nil
}

// systemConfig is the system's configuration file, or "none".
func (r *runner) systemConfig() string {
	if r.cfg.SystemConfig != "" {
		return r.cfg.SystemConfig
	}
	return DefaultSystemConfig
}

// printConfig is -G: the settings for the host as ssh -G prints its own, one "keyword value" per
// line in lower case, and status 0. No key is loaded and nothing is dialed.
func (r *runner) printConfig() int {
	user, err := r.remoteUser()
	if err != nil {
		return r.fail(err)
	}
	dir, err := r.rloginDir()
	if err != nil {
		return r.fail(err)
	}
	var b strings.Builder
	line := func(k, v string) { fmt.Fprintf(&b, "%s %s\n", k, v) }
	line("host", r.alias)
	line("user", user)
	line("hostname", r.opts.Host)
	line("port", strconv.Itoa(r.opts.Port))
	if r.opts.IdentityFile != "" {
		line("identityfile", shownUnder(dir, r.opts.IdentityFile))
	} else {
		line("identityfile", shownUnder(dir, filepath.Join(dir.home, ".ssh", "id_ed25519")))
		line("identityfile", dir.shown("id_ed25519"))
	}
	if r.certificateFile != "" {
		line("certificatefile", shownUnder(dir, r.certificateFile))
	}
	line("connecttimeout", strconv.Itoa(int(r.connectTimeout().Seconds())))
	alive := r.keepalive()
	line("serveraliveinterval", strconv.Itoa(int(max(alive.Interval, 0).Seconds()))) // 0: off
	line("serveralivecountmax", strconv.Itoa(alive.CountMax))
	line("resume", yesNo(!r.opts.NoResume))
	if r.escapeNone {
		line("escapechar", "none")
	} else {
		line("escapechar", escapeName(r.opts.EscapeChar))
	}
	if r.opts.Classic {
		line("protocol", "classic")
	} else {
		line("protocol", "secure")
	}
	fmt.Fprint(r.stdout, b.String())
	return 0
}

// yesNo is a yes-or-no setting as -G prints it.
func yesNo(yes bool) string {
	if yes {
		return "yes"
	}
	return "no"
}

// configText is a configuration error as the user reads it: "file:line: what is wrong". (The
// package prefix is taken off here: errtext does not know the hostconfig package.)
func configText(err error) string {
	return strings.TrimPrefix(plainText(err), "hostconfig: ")
}
