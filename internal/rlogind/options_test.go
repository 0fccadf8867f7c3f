package rlogind

import (
	"crypto/ed25519"
	"errors"
	"flag"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rlogin-go/rlogin/internal/admission"
	"github.com/rlogin-go/rlogin/internal/daemon"
)

// writeConfig writes a configuration file with mode 0600 and returns its path.
func writeConfig(t *testing.T, dir, content string) string {
	t.Helper()
	path := filepath.Join(dir, "rlogind.conf")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoadOptionsConfigFile(t *testing.T) {
	home := t.TempDir()
	path := writeConfig(t, home, `# rlogind.conf
LoginGraceTime 30s
max-startups 5:50:20
per-source-max-startups none
per-source-penalties authfail:1m noauth:0
per-source-penalty-exempt-list 192.0.2.0/24,2001:db8::1
max-sessions 7
no-bootstrap yes
host-key ~/keys/host
log-level warn
`)
	o, err := loadOptions([]string{"-config", path, "-login-grace-time", "45s", "-max-sessions", "none"}, io.Discard, home, "none")
	if err != nil {
		t.Fatal(err)
	}
	wantPenalties := admission.DefaultPenalties()
	wantPenalties.AuthFail, wantPenalties.NoAuth = time.Minute, 0
	switch {
	case o.grace != 45*time.Second:
		t.Errorf("login-grace-time %v: the flag must win over the file", o.grace)
	case o.maxStartups != admission.StartupLimit{Start: 5, Rate: 50, Full: 20}:
		t.Errorf("max-startups %v", o.maxStartups)
	case o.perSourceMax != -1:
		t.Errorf("per-source-max-startups %v", o.perSourceMax)
	case o.penalties != wantPenalties:
		t.Errorf("per-source-penalties %v, want %v", o.penalties, wantPenalties)
	case len(o.exempt) != 2 || o.exempt[1] != netip.MustParsePrefix("2001:db8::1/128"):
		t.Errorf("exempt list %v", o.exempt)
	case o.maxSessions != -1:
		t.Errorf("max-sessions %v: the flag must win over the file", o.maxSessions)
	case !o.noBootstrap:
		t.Error("no-bootstrap yes not applied")
	case o.hostKey != filepath.Join(home, "keys", "host"):
		t.Errorf("host-key %q: ~/ not expanded", o.hostKey)
	case o.logLevel != slog.LevelWarn:
		t.Errorf("log-level %v", o.logLevel)
	case o.configLoaded != path:
		t.Errorf("configLoaded %q", o.configLoaded)
	}
	cfg := o.serverConfig(newKey(t), home, nil)
	if cfg.MaxSessions != -1 || cfg.PerSourceMaxStartups != -1 || cfg.PerSourcePenalties.AuthFail != time.Minute {
		t.Errorf("server config %+v", cfg)
	}
}

func TestLoadOptionsDefaults(t *testing.T) {
	home := t.TempDir()
	// A missing default file is no error; the defaults apply (user mode, as root too).
	o, err := loadOptions([]string{"-user-mode"}, io.Discard, home, "~/.rlogin/rlogind.conf")
	if err != nil {
		t.Fatal(err)
	}
	if o.configLoaded != "" || o.grace != daemon.DefaultLoginGraceTime || o.maxStartups != admission.DefaultMaxStartups() ||
		o.perSourceMax != admission.DefaultPerSourceMaxStartups || o.maxSessions != daemon.DefaultMaxSessions ||
		o.penalties != admission.DefaultPenalties() || o.addr != daemon.DefaultAddr || o.logLevel != slog.LevelInfo {
		t.Errorf("defaults: %+v", o)
	}
	if o.authorizedKeys != filepath.Join(home, ".rlogin", "authorized_keys") {
		t.Errorf("authorized-keys %q", o.authorizedKeys)
	}
	// The default file is read when present.
	if err := os.MkdirAll(filepath.Join(home, ".rlogin"), 0o700); err != nil {
		t.Fatal(err)
	}
	writeConfig(t, filepath.Join(home, ".rlogin"), "max-sessions 3\n")
	o, err = loadOptions(nil, io.Discard, home, "~/.rlogin/rlogind.conf")
	if err != nil || o.maxSessions != 3 {
		t.Fatalf("default file: %v, max-sessions %v", err, o)
	}
	// -config none reads nothing.
	o, err = loadOptions([]string{"-config", "none"}, io.Discard, home, "~/.rlogin/rlogind.conf")
	if err != nil || o.maxSessions != daemon.DefaultMaxSessions || o.configLoaded != "" {
		t.Fatalf("-config none: %v, %+v", err, o)
	}
}

func TestLoadOptionsErrors(t *testing.T) {
	home := t.TempDir()
	for _, tc := range []struct {
		name, content string
		mode          os.FileMode
		want          string
	}{
		{"unknown keyword", "login-grace-time 1m\nPermitTunnel yes\n", 0o600, `line 2: unknown keyword "PermitTunnel"`},
		{"command-line only", "inetd yes\n", 0o600, `unknown keyword "inetd"`},
		{"config in config", "config /etc/other\n", 0o600, `unknown keyword "config"`},
		{"duplicate", "max-sessions 1\nMaxSessions 2\n", 0o600, "max-sessions already set on line 1"},
		{"bad value", "max-startups 10:30\n", 0o600, `line 1: invalid value "10:30" for max-startups: want start:rate:full`},
		{"bad permit-root-login", "permit-root-login maybe\n", 0o600, `permit-root-login "maybe": want no, prohibit-password or yes`},
		{"bad bool", "no-bootstrap maybe\n", 0o600, "want yes or no"},
		{"no value", "max-sessions\n", 0o600, "without a value"},
		{"group writable", "max-sessions 1\n", 0o620, "writable by group or others"},
		{"bad grace", "login-grace-time -1s\n", 0o600, "must be positive"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := writeConfig(t, t.TempDir(), tc.content)
			if err := os.Chmod(path, tc.mode); err != nil {
				t.Fatal(err)
			}
			_, err := loadOptions([]string{"-config", path}, io.Discard, home, "none")
			var ue *UsageError
			if !errors.As(err, &ue) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want a *UsageError containing %q", err, tc.want)
			}
		})
	}
	t.Run("missing explicit file", func(t *testing.T) {
		_, err := loadOptions([]string{"-config", filepath.Join(home, "nope")}, io.Discard, home, "none")
		if !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("error %v, want one matching os.ErrNotExist", err)
		}
	})
	t.Run("not a regular file", func(t *testing.T) {
		_, err := loadOptions([]string{"-config", home}, io.Discard, home, "none")
		if err == nil || !strings.Contains(err.Error(), "not a regular file") {
			t.Fatalf("error %v", err)
		}
	})
	t.Run("help", func(t *testing.T) {
		var out strings.Builder
		_, err := loadOptions([]string{"-h"}, &out, home, "none")
		if !errors.Is(err, flag.ErrHelp) || !strings.Contains(out.String(), "-per-source-penalties") {
			t.Fatalf("-h: %v\n%s", err, out.String())
		}
	})
}

// TestEveryFlagIsAKeyword: all flags but the command-line-only ones are accepted in the file.
func TestEveryFlagIsAKeyword(t *testing.T) {
	var o options
	set := newFlagSet(&o)
	var lines []string
	set.VisitAll(func(f *flag.Flag) {
		if commandLineOnly[f.Name] {
			return
		}
		val := f.DefValue
		if val == "" {
			val = "none"
			if f.Name == "log-file" {
				val = "/dev/null"
			}
		}
		if val == "false" {
			val = "no"
		}
		lines = append(lines, f.Name+" "+val)
	})
	if err := applyConfig(newFlagSet(new(options)), "test", []byte(strings.Join(lines, "\n"))); err != nil {
		t.Fatalf("%v\nfile:\n%s", err, strings.Join(lines, "\n"))
	}
}

func TestResolvePaths(t *testing.T) {
	home := "/home/admin"
	for _, tc := range []struct {
		name           string
		args           []string
		root           bool
		system         bool
		hostKey, authz string
	}{
		{"user", nil, false, false, home + "/.rlogin/rlogind_host_ed25519_key", home + "/.rlogin/authorized_keys"},
		{"root", nil, true, true, daemon.SystemHostKey, "~/.rlogin/authorized_keys"},
		{"root -user-mode", []string{"-user-mode"}, true, false, home + "/.rlogin/rlogind_host_ed25519_key", home + "/.rlogin/authorized_keys"},
		{"root, own paths", []string{"-host-key", "/srv/key", "-authorized-keys", "/etc/rlogin/keys/%u"}, true, true, "/srv/key", "/etc/rlogin/keys/%u"},
		{"user -user-mode", []string{"-user-mode"}, false, false, home + "/.rlogin/rlogind_host_ed25519_key", home + "/.rlogin/authorized_keys"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var o options
			set := newFlagSet(&o)
			if err := set.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			o.resolvePaths(home, tc.root)
			if o.sys.enabled != tc.system || o.hostKey != tc.hostKey || o.authorizedKeys != tc.authz {
				t.Errorf("system %v, host key %q, authorized keys %q; want %v, %q, %q",
					o.sys.enabled, o.hostKey, o.authorizedKeys, tc.system, tc.hostKey, tc.authz)
			}
			cfg := o.serverConfig(newKey(t), home, nil)
			if cfg.System != tc.system || cfg.PermitRootLogin != daemon.PermitRootNo || !cfg.PasswordAuthentication {
				t.Errorf("server config: System %v, PermitRootLogin %q, PasswordAuthentication %v",
					cfg.System, cfg.PermitRootLogin, cfg.PasswordAuthentication)
			}
		})
	}
	var o options
	set := newFlagSet(&o)
	if err := set.Parse([]string{"-permit-root-login", "prohibit-password", "-password-authentication=false"}); err != nil {
		t.Fatal(err)
	}
	o.resolvePaths(home, true)
	if cfg := o.serverConfig(newKey(t), home, nil); cfg.PermitRootLogin != daemon.PermitRootProhibitPassword || cfg.PasswordAuthentication {
		t.Errorf("flags not applied: PermitRootLogin %q, PasswordAuthentication %v", cfg.PermitRootLogin, cfg.PasswordAuthentication)
	}
}

// newKey is a host key for serverConfig, which only passes it on.
func newKey(*testing.T) ed25519.PrivateKey {
	return ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
}
