package rlogind

import (
	"strings"
	"testing"
)

func TestParseConfig(t *testing.T) {
	data := "# comment\n\n  login-grace-time 30s\nMaxStartups=5:50:20\r\nlog-file \"/var/log/rlogind log\"\n\tno-bootstrap   =  yes  \n"
	got, err := parseConfig([]byte(data))
	if err != nil {
		t.Fatal(err)
	}
	want := []configLine{
		{3, "login-grace-time", "30s"},
		{4, "MaxStartups", "5:50:20"},
		{5, "log-file", "/var/log/rlogind log"},
		{6, "no-bootstrap", "yes"},
	}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("line %d: got %+v, want %+v", i, got[i], want[i])
		}
	}
	for _, bad := range []string{"keyword\n", "keyword   \n", "keyword \"\"\n", "keyword a\x1bb\n", "keyword =\n"} {
		if _, err := parseConfig([]byte(bad)); err == nil {
			t.Errorf("parseConfig(%q) succeeded", bad)
		}
	}
}

func TestNormalizeKeyword(t *testing.T) {
	for _, k := range []string{"login-grace-time", "LoginGraceTime", "login_grace_time", "LOGIN-GRACE-TIME"} {
		if got := normalizeKeyword(k); got != "logingracetime" {
			t.Errorf("normalizeKeyword(%q) = %q", k, got)
		}
	}
}

func FuzzParseConfig(f *testing.F) {
	f.Add([]byte("login-grace-time 30s\nmax-startups 10:30:100\n"))
	f.Add([]byte("# c\nPerSourcePenalties \"authfail:5s noauth:1s\"\nper-source-penalty-exempt-list 10.0.0.0/8\n"))
	f.Add([]byte("no-bootstrap=yes\r\nmax-sessions none\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		lines, err := parseConfig(data)
		if err != nil {
			return
		}
		for _, l := range lines {
			if l.keyword == "" || l.value == "" || strings.ContainsAny(l.keyword, " \t=\n") {
				t.Fatalf("bad line %+v", l)
			}
		}
		_ = applyConfig(newFlagSet(new(options)), "fuzz", data)
	})
}
