package hostconfig

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func parse(t *testing.T, text string) *File {
	t.Helper()
	f, err := Parse("test_config", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// TestApplyExample reads testdata/example_config for several hosts: Host and Match blocks, the
// first value obtained winning, negated patterns, HostName seen by Match host, tokens.
func TestApplyExample(t *testing.T) {
	f, err := Load(filepath.Join("testdata", "example_config"))
	if err != nil {
		t.Fatal(err)
	}
	tok := Tokens{Home: "/home/alice", LocalUser: "alice"}
	tests := []struct {
		host string
		want Settings
	}{
		{"web", Settings{HostName: "web1.example.test", User: "alice", Port: 5514,
			EscapeChar: EscapeChar{Set: true, Char: 0x1d}}},
		{"api.example.test", Settings{User: "bob", IdentityFile: "/home/alice/.ssh/id_work",
			CertificateFile: "/home/alice/.ssh/id_work-cert.pub", EscapeChar: EscapeChar{Set: true, None: true}}},
		{"secret.example.test", Settings{User: "bob", EscapeChar: EscapeChar{Set: true, None: true}}},
		// Host patterns match the name given, not HostName (as ssh's): *.example.test does not.
		{"db7", Settings{HostName: "db7.internal.example.test", User: "bob", ConnectTimeout: 5 * time.Second,
			EscapeChar: EscapeChar{Set: true, None: true}}},
		{"other", Settings{User: "bob", EscapeChar: EscapeChar{Set: true, None: true}}},
	}
	for _, tt := range tests {
		var got Settings
		if err := got.Apply(tt.host, tok, f); err != nil {
			t.Fatalf("%s: %v", tt.host, err)
		}
		if got != tt.want {
			t.Errorf("%s:\ngot  %+v\nwant %+v", tt.host, got, tt.want)
		}
	}
}

// TestFirstValueWins: within a file, across files (the user's before the system's), and over
// what the caller set first (the command line).
func TestFirstValueWins(t *testing.T) {
	user := parse(t, "Host h\n Port 1001\nHost *\n Port 1002\n User u1\n")
	system := parse(t, "User u2\nPort 1003\nConnectTimeout 9\n")
	s := Settings{User: "cmdline"}
	if err := s.Apply("h", Tokens{}, user, system); err != nil {
		t.Fatal(err)
	}
	if s.Port != 1001 || s.User != "cmdline" || s.ConnectTimeout != 9*time.Second {
		t.Errorf("got %+v", s)
	}
	var other Settings
	if err := other.Apply("x", Tokens{}, user, system); err != nil {
		t.Fatal(err)
	}
	if other.Port != 1002 || other.User != "u1" {
		t.Errorf("x: got %+v", other)
	}
}

// TestMatchCriteria covers Match all, negated criteria and comma lists.
func TestMatchCriteria(t *testing.T) {
	f := parse(t, "Match !host a*,b*\n User notab\nMatch host a1 originalhost alias\n Port 7\nMatch all\n ConnectTimeout 3\n")
	for _, tt := range []struct {
		host     string
		hostName string // set before, as an earlier HostName would
		user     string
		port     int
	}{
		{"c", "", "notab", 0},
		{"a1", "", "", 0},
		{"alias", "a1", "", 7},
		{"alias", "c", "notab", 0},
	} {
		s := Settings{HostName: tt.hostName}
		if err := s.Apply(tt.host, Tokens{}, f); err != nil {
			t.Fatal(err)
		}
		if s.User != tt.user || s.Port != tt.port || s.ConnectTimeout != 3*time.Second {
			t.Errorf("%s (HostName %q): got %+v", tt.host, tt.hostName, s)
		}
	}
}

// TestBadLines: each malformed line is an error naming the file and line, and nothing is set.
func TestBadLines(t *testing.T) {
	for _, tt := range []struct{ text, want string }{
		{"ForwardAgent yes", `test_config:1: unknown keyword "ForwardAgent"`},
		{"ServerAliveInterval -1", `bad ServerAliveInterval "-1"`},
		{"ServerAliveInterval 1m", `bad ServerAliveInterval "1m"`},
		{"ServerAliveCountMax 0", `bad ServerAliveCountMax "0"`},
		{"ServerAliveCountMax 1001", `bad ServerAliveCountMax "1001"`},
		{"Resume off", `bad Resume "off": give yes or no`},
		{"Resume no yes", `garbage at end of line: "yes"`},
		{"Host x\n  ProxyJump y", `test_config:2: unknown keyword "ProxyJump"`},
		{"Port", "test_config:1: Port: missing argument"},
		{"Port 0", `bad port "0"`},
		{"Port 22 23", `garbage at end of line: "23"`},
		{"User -rf", `invalid user name "-rf"`},
		{"HostName a,b", "bad character , in host name"},
		{"HostName \"x y\"", "bad character   in host name"},
		{"IdentityFile ~root/key", "only ~/ is understood"},
		{"IdentityFile %r/key", "unknown token %r"},
		{"IdentityFile key%", "'%' at the end"},
		{"EscapeChar xy", `bad escape character "xy"`},
		{"ConnectTimeout 0", `bad ConnectTimeout "0"`},
		{"ConnectTimeout 99999999999", "bad ConnectTimeout"},
		{"Match exec true", `unsupported Match criterion "exec"`},
		{"Match host", "missing patterns"},
		{"Match all host x", "Match all takes nothing else"},
		{"Host [ab]", "only * and ? are wildcards"},
		{"Host !", "empty pattern"},
		{"User \"bob", "unterminated quote"},
		{"User a\"b", "quote inside an argument"},
		{"User \"a\"b", "text right after a closing quote"},
		{"User bob\x1b[2J", "control character"},
		{"User \xff", "not valid UTF-8"},
		{"User " + strings.Repeat("a", MaxLineLen), "line longer than"},
	} {
		f, err := Parse("test_config", []byte(tt.text))
		if err == nil || f != nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "hostconfig: test_config:") {
			t.Errorf("%q: %v, want an error with %q", tt.text, err, tt.want)
		}
	}
}

// TestSyntax: keywords in any case, '=', quotes, comments, CRLF.
func TestSyntax(t *testing.T) {
	f := parse(t, "# comment\r\n\r\n  hOsTnAmE=\"example.test\"\r\n\tUSER = bob # a comment\nport=5514\r\nescapechar \"#\"\n")
	var s Settings
	if err := s.Apply("x", Tokens{}, f); err != nil {
		t.Fatal(err)
	}
	if s.HostName != "example.test" || s.User != "bob" || s.Port != 5514 || s.EscapeChar != (EscapeChar{Set: true, Char: '#'}) {
		t.Errorf("got %+v", s)
	}
}

// TestLoadFiles: a missing file sets nothing; one others may write, or not a regular file, or
// too large, is refused.
func TestLoadFiles(t *testing.T) {
	dir := t.TempDir()
	if f, err := Load(filepath.Join(dir, "none")); err != nil || len(f.lines) != 0 {
		t.Errorf("missing file: %v", err)
	}
	if _, err := Load(filepath.Join(dir, "none", "sub")); err != nil {
		t.Errorf("missing directory: %v", err)
	}
	writable := filepath.Join(dir, "writable")
	if err := os.WriteFile(writable, []byte("User bob\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(writable, 0o620); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(writable); err == nil || !strings.Contains(err.Error(), "bad permissions 0620") {
		t.Errorf("group-writable: %v", err)
	}
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("directory: %v", err)
	}
	big := filepath.Join(dir, "big")
	if err := os.WriteFile(big, []byte(strings.Repeat("# pad\n", MaxFileSize/6+1)), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(big); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("large: %v", err)
	}
}

// FuzzParse: no input makes Parse panic, and a file Parse accepts applies without error to any
// valid host name, and sets only valid values.
func FuzzParse(f *testing.F) {
	for _, name := range []string{"example_config"} {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data, "web")
	}
	f.Add([]byte("Host *\n HostName %h.x\n IdentityFile ~/%d/%u/%h/%%\n"), "a-b.c")
	f.Add([]byte("Match !originalhost a*,!b host \"c?\"\nUser x\n"), "c1")
	f.Add([]byte("EscapeChar \\377\nConnectTimeout=86400\n"), "h")
	f.Fuzz(func(t *testing.T, data []byte, host string) {
		file, err := Parse("fuzz", data)
		if err != nil {
			if file != nil || !strings.HasPrefix(err.Error(), "hostconfig: fuzz:") {
				t.Fatalf("error %v with a file, or without the file:line", err)
			}
			return
		}
		if ValidHost(host) != nil {
			return
		}
		var s Settings
		if err := s.Apply(host, Tokens{Home: "/home/u", LocalUser: "u"}, file); err != nil {
			if !strings.HasPrefix(err.Error(), "hostconfig: fuzz:") {
				t.Fatalf("Apply error without file:line: %v", err)
			}
			return
		}
		if s.HostName != "" && ValidHost(s.HostName) != nil {
			t.Fatalf("invalid HostName %q set", s.HostName)
		}
		if s.Port < 0 || s.Port > 65535 || s.ConnectTimeout < 0 || s.ConnectTimeout > MaxConnectTimeout {
			t.Fatalf("out of range: %+v", s)
		}
	})
}

// TestServerAlive: ServerAliveInterval in seconds, 0 read as off (negative), the first value
// winning; ServerAliveCountMax a count.
func TestServerAlive(t *testing.T) {
	f := parse(t, "Host quiet\n ServerAliveInterval 0\nHost *\n ServerAliveInterval 30\n ServerAliveCountMax 4\n")
	for _, tt := range []struct {
		host     string
		interval time.Duration
		count    int
	}{
		{"quiet", -1, 4},
		{"other", 30 * time.Second, 4},
	} {
		var s Settings
		if err := s.Apply(tt.host, Tokens{}, f); err != nil {
			t.Fatal(err)
		}
		if s.ServerAliveInterval != tt.interval || s.ServerAliveCountMax != tt.count {
			t.Errorf("%s: ServerAliveInterval %v, ServerAliveCountMax %d; want %v, %d", tt.host,
				s.ServerAliveInterval, s.ServerAliveCountMax, tt.interval, tt.count)
		}
	}
}

// TestResume: Resume yes or no, in any case, the first value winning; unset when no file sets it.
func TestResume(t *testing.T) {
	f := parse(t, "Host flaky\n Resume NO\nHost *\n Resume yes\n")
	for _, tt := range []struct {
		host string
		want YesNo
	}{
		{"flaky", YesNo{Set: true, Yes: false}},
		{"other", YesNo{Set: true, Yes: true}},
	} {
		var s Settings
		if err := s.Apply(tt.host, Tokens{}, f); err != nil {
			t.Fatal(err)
		}
		if s.Resume != tt.want {
			t.Errorf("%s: Resume %+v, want %+v", tt.host, s.Resume, tt.want)
		}
	}
	var s Settings
	if err := s.Apply("any", Tokens{}, parse(t, "Port 7\n")); err != nil {
		t.Fatal(err)
	}
	if s.Resume.Set {
		t.Errorf("Resume set by a file without it: %+v", s.Resume)
	}
}
