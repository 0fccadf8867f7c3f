package session

import (
	"strings"
	"testing"
)

// TestValidUserName: portable names only, never one that login(1) could take for an option
// (CVE-1999-0113's "-froot").
func TestValidUserName(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"root", true},
		{"alice", true},
		{"a", true},
		{"Bob_smith-2.0", true},
		{"_apt", true},
		{"a-", true},
		{strings.Repeat("a", MaxUserLen), true},
		{strings.Repeat("a", MaxUserLen+1), false},
		{"", false},
		{"-froot", false},
		{"-f root", false},
		{"-f", false},
		{"-", false},
		{"a b", false},
		{"a\x00b", false},
		{"root\n", false},
		{"r\x1b[31moot", false},
		{"ro\u00f6t", false},
		{"../root", false},
		{"a/b", false},
		{"a:b", false},
		{"a@b", false},
		{"root;id", false},
		{"$(id)", false},
	} {
		if got := ValidUserName(tc.name); got != tc.ok {
			t.Errorf("ValidUserName(%q) = %v, want %v", tc.name, got, tc.ok)
		}
	}
}

// TestTerminalTypeOrDumb: a shell gets the requested TERM only if it is bounded printable ASCII
// that names no path.
func TestTerminalTypeOrDumb(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"xterm", "xterm"},
		{"xterm-256color", "xterm-256color"},
		{"", "dumb"},
		{"xterm\x1b[2J", "dumb"},
		{"xterm color", "dumb"},
		{"vt100\x00", "dumb"},
		{"x\u00e9", "dumb"},
		{"../../tmp/x", "dumb"},
		{"xterm/38400", "dumb"},
		{strings.Repeat("x", MaxTermLen), strings.Repeat("x", MaxTermLen)},
		{strings.Repeat("x", MaxTermLen+1), "dumb"},
	} {
		if got := TerminalTypeOrDumb(tc.in); got != tc.want {
			t.Errorf("TerminalTypeOrDumb(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if got := ValidTerminalType(tc.in); got != (tc.in == tc.want) {
			t.Errorf("ValidTerminalType(%q) = %v", tc.in, got)
		}
	}
}

// TestValidLocaleVar: LANG and LC_* of at most 1 KiB with printable ASCII values.
func TestValidLocaleVar(t *testing.T) {
	for _, tc := range []struct {
		kv string
		ok bool
	}{
		{"LANG=C.UTF-8", true},
		{"LC_ALL=de_DE.UTF-8@euro", true},
		{"LC_MY_VAR=x", true},
		{"LANG=", true},
		{"LANG=a=b", true},
		{"LC_NAME=" + strings.Repeat("v", MaxLocaleVarLen-len("LC_NAME=")), true},
		{"LC_NAME=" + strings.Repeat("v", MaxLocaleVarLen-len("LC_NAME=")+1), false},
		{"LANG", false},
		{"=C", false},
		{"LC_=x", false},
		{"LC_all=x", false},
		{"LANGUAGE=de", false},
		{"PATH=/bin", false},
		{"LD_PRELOAD=/x.so", false},
		{"LC_CTYPE=a\nb", false},
		{"LC_TERMINAL=iTerm2\t", false},
		{"LC_NUMERIC=a\x00b", false},
		{"LC_TIME=\u00e9t\u00e9", false},
		{"LC_PAPER=\xff", false},
	} {
		if got := ValidLocaleVar(tc.kv); got != tc.ok {
			t.Errorf("ValidLocaleVar(%.40q) = %v, want %v", tc.kv, got, tc.ok)
		}
	}
}

// FuzzUserName checks that every name ValidUserName accepts is safe to hand to any program as a
// user name: portable characters only, never an option.
func FuzzUserName(f *testing.F) {
	for _, s := range []string{"root", "-froot", "-f root", "a b", "a\x00b", "", "ro\u00f6t", strings.Repeat("a", 33)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if !ValidUserName(name) {
			return
		}
		if name == "" || len(name) > MaxUserLen || name[0] == '-' {
			t.Fatalf("accepted %q", name)
		}
		for _, c := range []byte(name) {
			if !strings.ContainsRune("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-", rune(c)) {
				t.Fatalf("accepted %q with byte %q", name, c)
			}
		}
	})
}

// FuzzTerminalType checks that the TERM a server gives the shell is bounded printable ASCII
// without space or '/'.
func FuzzTerminalType(f *testing.F) {
	for _, s := range []string{"xterm", "", "xterm\x1b]0;x\x07", strings.Repeat("x", 300), "vt100\x00", "../x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, term string) {
		got := TerminalTypeOrDumb(term)
		if got != term && got != "dumb" {
			t.Fatalf("TerminalTypeOrDumb(%q) = %q", term, got)
		}
		if got == "" || len(got) > MaxTermLen {
			t.Fatalf("TerminalTypeOrDumb(%q) = %q: bad length", term, got)
		}
		for _, c := range []byte(got) {
			if c <= ' ' || c >= 0x7f || c == '/' {
				t.Fatalf("TerminalTypeOrDumb(%q) = %q: byte %q", term, got, c)
			}
		}
	})
}
