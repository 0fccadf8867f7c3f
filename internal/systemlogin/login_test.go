package systemlogin

import (
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rlogin-go/rlogin/internal/logintest"
	"github.com/rlogin-go/rlogin/session"
)

func TestLoginArgs(t *testing.T) {
	for _, tc := range []struct {
		host    string
		preauth bool
		name    string
		want    []string
	}{
		{"127.0.0.1", true, "alice", []string{"login", "-p", "-h", "127.0.0.1", "-f", "--", "alice"}},
		{"2001:db8::1", false, "bob", []string{"login", "-p", "-h", "2001:db8::1", "--", "bob"}},
		{"", true, "carol.d_e-f", []string{"login", "-p", "-f", "--", "carol.d_e-f"}},
	} {
		got, err := loginArgs(tc.host, tc.preauth, tc.name)
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("loginArgs(%q, %v, %q) = %q, %v; want %q", tc.host, tc.preauth, tc.name, got, err, tc.want)
		}
	}
	for _, name := range logintest.HostileUserNames() {
		if args, err := loginArgs("127.0.0.1", true, name); err == nil {
			t.Errorf("loginArgs accepted the name %q: %q", name, args)
		}
	}
	for _, host := range []string{"-froot", "a b", "a\nb", "-"} {
		if args, err := loginArgs(host, true, "alice"); err == nil {
			t.Errorf("loginArgs accepted the host %q: %q", host, args)
		}
	}
}

// FuzzLoginArgs checks that whatever name a client sends, login(1) either never runs or gets
// the name as its last argument, right after "--", and it is a portable user name.
func FuzzLoginArgs(f *testing.F) {
	for _, name := range logintest.HostileUserNames() {
		f.Add(name, true)
	}
	f.Add("alice", false)
	f.Fuzz(func(t *testing.T, name string, preauth bool) {
		args, err := loginArgs("192.0.2.1", preauth, name)
		if err != nil {
			return
		}
		n := len(args)
		if n < 2 || args[n-2] != "--" || args[n-1] != name || !session.ValidUserName(name) {
			t.Fatalf("loginArgs(%q) = %q", name, args)
		}
		if slices.Contains(args[:n-2], name) && name != "login" {
			t.Fatalf("the name %q appears among the options: %q", name, args)
		}
	})
}

func TestPeerHost(t *testing.T) {
	for _, tc := range []struct {
		addr net.Addr
		want string
	}{
		{&net.TCPAddr{IP: net.ParseIP("192.0.2.7"), Port: 5513}, "192.0.2.7"},
		{&net.TCPAddr{IP: net.ParseIP("::ffff:192.0.2.7"), Port: 1}, "192.0.2.7"},
		{&net.TCPAddr{IP: net.ParseIP("2001:db8::2"), Port: 1}, "2001:db8::2"},
		{&net.TCPAddr{IP: net.ParseIP("fe80::1"), Port: 1, Zone: "eth0"}, "fe80::1"},
		{&net.UnixAddr{Name: "/run/rlogind.sock", Net: "unix"}, ""},
		{&net.UnixAddr{Name: "", Net: "unix"}, ""},
		{nil, ""},
	} {
		if got := PeerHost(tc.addr); got != tc.want {
			t.Errorf("PeerHost(%v) = %q, want %q", tc.addr, got, tc.want)
		}
	}
}

func TestAuthorizedKeysPath(t *testing.T) {
	u := &User{Name: "alice", UID: 1000, Home: "/home/alice"}
	for pattern, want := range map[string]string{
		"~/.rlogin/authorized_keys":      "/home/alice/.rlogin/authorized_keys",
		"/etc/rlogin/authorized_keys/%u": "/etc/rlogin/authorized_keys/alice",
		"%h/.rlogin/keys":                "/home/alice/.rlogin/keys",
		"/etc/rlogin/keys%%u":            "/etc/rlogin/keys%u",
	} {
		if got := u.AuthorizedKeysPath(pattern); got != want {
			t.Errorf("AuthorizedKeysPath(%q) = %q, want %q", pattern, got, want)
		}
	}
}

func TestNologinMessage(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing")
	if msg, ok := nologinMessage(missing); ok {
		t.Errorf("no file: %q, true", msg)
	}
	first := filepath.Join(dir, "first")
	second := filepath.Join(dir, "second")
	if err := os.WriteFile(second, []byte("Down for maintenance\nuntil 15:00.\n\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if msg, ok := nologinMessage(missing, first, second); !ok || msg != "Down for maintenance until 15:00." {
		t.Errorf("got %q, %v", msg, ok)
	}
	if err := os.WriteFile(first, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if msg, ok := nologinMessage(first, second); !ok || msg != defaultNologinMessage {
		t.Errorf("empty file: got %q, %v; want the default message", msg, ok)
	}
	if err := os.WriteFile(first, []byte(strings.Repeat("x", 2*maxNologin)), 0o644); err != nil {
		t.Fatal(err)
	}
	if msg, ok := nologinMessage(first); !ok || len(msg) != maxNologin {
		t.Errorf("long file: %d bytes, %v; want %d", len(msg), ok, maxNologin)
	}
}
