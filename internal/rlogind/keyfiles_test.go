package rlogind

import "testing"

func TestTildePath(t *testing.T) {
	for _, tc := range []struct{ p, home, want string }{
		{"/home/a/.rlogin/authorized_keys", "/home/a", "~/.rlogin/authorized_keys"},
		{"/etc/rlogin/keys", "/home/a", "/etc/rlogin/keys"},
		{"/home/ab/x", "/home/a", "/home/ab/x"},
		{"/home/a", "/home/a", "/home/a"},
	} {
		if got := tildePath(tc.p, tc.home); got != tc.want {
			t.Errorf("tildePath(%q, %q) = %q, want %q", tc.p, tc.home, got, tc.want)
		}
	}
	if got := expandHome("~/.rlogin/x", "/home/a"); got != "/home/a/.rlogin/x" {
		t.Errorf("expandHome = %q", got)
	}
	if got := expandHome("/abs/~/x", "/home/a"); got != "/abs/~/x" {
		t.Errorf("expandHome = %q", got)
	}
}
