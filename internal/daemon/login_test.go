package daemon

import (
	"strings"
	"testing"

	"github.com/rlogin-go/rlogin/session"
)

// TestLocaleEnv: the shell gets the locale variables the protocol carries (session.LocaleEnv),
// and every other entry is reported as dropped.
func TestLocaleEnv(t *testing.T) {
	kept, dropped := localeEnv([]string{
		"LANG=C.UTF-8", "LC_ALL=de_DE.UTF-8", "LC_ALL=C", "LC_MY_VAR=x", "LC_=x", "LC_all=x",
		"LANGUAGE=de", "PATH=/x", "LANG", "LC_CTYPE=a\nb", "LC_TIME=\u00e9t\u00e9", "LC_NAME=" + strings.Repeat("v", 1025),
		"LC_NUMERIC=a\x00b", "LC_PAPER=\xff",
	})
	wantKept := []string{"LANG=C.UTF-8", "LC_ALL=de_DE.UTF-8", "LC_MY_VAR=x"}
	if strings.Join(kept, "|") != strings.Join(wantKept, "|") {
		t.Errorf("kept %q, want %q", kept, wantKept)
	}
	if len(dropped) != 11 {
		t.Errorf("dropped %q, want 11 entries", dropped)
	}
	many := make([]string, 100)
	for i := range many {
		many[i] = "LC_" + strings.Repeat("A", i+1) + "=x"
	}
	if kept, _ := localeEnv(many); len(kept) != session.MaxLocaleVars {
		t.Errorf("kept %d of 100 variables, want the cap %d", len(kept), session.MaxLocaleVars)
	}
}

func TestShellEnvExact(t *testing.T) {
	env := shellEnv("alice", "/home/alice", "/bin/zsh", "xterm", []string{"LANG=C"})
	want := []string{"HOME=/home/alice", "USER=alice", "LOGNAME=alice", "SHELL=/bin/zsh", "PATH=" + DefaultPath, "TERM=xterm", "LANG=C"}
	if strings.Join(env, "|") != strings.Join(want, "|") {
		t.Fatalf("shellEnv = %q, want %q", env, want)
	}
}

func TestParsePasswdShell(t *testing.T) {
	const passwd = `root:x:0:0:root:/root:/bin/bash
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
broken line
short:x:5
alice:x:1000:1000:Alice,,,:/home/alice:/usr/bin/zsh
noshell:x:1001:1001::/home/noshell:
relative:x:1002:1002::/home/r:zsh
dup:x:1000:1000::/home/dup:/bin/false
`
	for _, tc := range []struct {
		uid  int
		want string
	}{
		{0, "/bin/bash"},
		{1000, "/usr/bin/zsh"}, // first entry wins
		{1001, fallbackShell},
		{1002, fallbackShell},
		{4242, fallbackShell},
		{5, fallbackShell},
	} {
		got, err := parsePasswdShell(strings.NewReader(passwd), tc.uid)
		if err != nil || got != tc.want {
			t.Errorf("uid %d: %q, %v; want %q", tc.uid, got, err, tc.want)
		}
	}
	if shell, err := passwdShell("/nonexistent/passwd", 0); err == nil || shell != fallbackShell {
		t.Errorf("missing passwd file: %q, %v; want the fallback and an error", shell, err)
	}
}

// FuzzLocaleEnv feeds NUL-separated environment lists: whatever passes must be LANG or LC_*
// with a printable ASCII value, each name once, and every other entry is dropped.
func FuzzLocaleEnv(f *testing.F) {
	for _, s := range []string{
		"LANG=C.UTF-8\x00LC_ALL=en_US.UTF-8",
		"PATH=/evil\x00LD_PRELOAD=/x.so\x00LC_=x\x00LC_lower=y",
		"LC_CTYPE=a\x1b[31m\x00LANG=\xff",
		"LANG\x00=\x00LANG=a=b\x00LANG=c",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, list string) {
		req := strings.Split(list, "\x00")
		kept, dropped := localeEnv(req)
		if len(kept)+len(dropped) != len(req) || len(kept) > session.MaxLocaleVars {
			t.Fatalf("kept %d + dropped %d of %d", len(kept), len(dropped), len(req))
		}
		seen := map[string]bool{}
		for _, kv := range kept {
			name, value, ok := strings.Cut(kv, "=")
			if !ok || seen[name] || !(name == "LANG" || strings.HasPrefix(name, "LC_") && len(name) > 3) {
				t.Fatalf("kept %q", kv)
			}
			seen[name] = true
			if len(kv) > session.MaxLocaleVarLen || strings.ContainsFunc(value, func(r rune) bool {
				return r < 0x20 || r >= 0x7f
			}) {
				t.Fatalf("kept %q: value not printable", kv)
			}
		}
	})
}
