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
