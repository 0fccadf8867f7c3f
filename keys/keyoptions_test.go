package keys

import (
	"net"
	"testing"
)

func TestFromMatches(t *testing.T) {
	tcp := func(ip string) net.Addr { return &net.TCPAddr{IP: net.ParseIP(ip), Port: 40000} }
	tests := []struct {
		list string
		addr net.Addr
		want bool
	}{
		{"192.0.2.1", tcp("192.0.2.1"), true},
		{"192.0.2.1", tcp("192.0.2.2"), false},
		{"192.0.2.*", tcp("192.0.2.77"), true},
		{"192.0.2.?", tcp("192.0.2.7"), true},
		{"192.0.2.?", tcp("192.0.2.77"), false},
		{"192.0.2.0/24", tcp("192.0.2.200"), true},
		{"192.0.2.0/24", tcp("198.51.100.1"), false},
		{"192.0.2.0/24", tcp("::ffff:192.0.2.9"), true}, // v4 in v6
		{"2001:db8::/32", tcp("2001:db8::1"), true},
		{"*,!192.0.2.1", tcp("192.0.2.1"), false},
		{"!192.0.2.1,*", tcp("192.0.2.1"), false},
		{"*,!192.0.2.1", tcp("192.0.2.2"), true},
		{"!192.0.2.1", tcp("192.0.2.2"), false}, // a negation alone matches nothing
		{"*", &net.UnixAddr{Name: "/run/sock", Net: "unix"}, false},
		{"127.0.0.1,::1", tcp("::1"), true},
		// OpenSSH's patterns have '*' and '?' only: brackets and backslashes are themselves.
		{"127.0.0.[1]", tcp("127.0.0.1"), false},
		{`127.0.0.\1`, tcp("127.0.0.1"), false},
		{"*.0.0.1", tcp("127.0.0.1"), true},
	}
	for _, tt := range tests {
		if got := FromMatches(tt.list, tt.addr); got != tt.want {
			t.Errorf("FromMatches(%q, %v) = %v, want %v", tt.list, tt.addr, got, tt.want)
		}
	}
}

func TestParseKeyOptions(t *testing.T) {
	tests := []struct {
		in      []string
		want    KeyOptions
		wantErr bool
	}{
		{[]string{`command="echo \"hi\""`}, KeyOptions{Command: `echo "hi"`}, false},
		{[]string{`command="a\b"`}, KeyOptions{Command: `a\b`}, false},
		{[]string{`NO-PTY`, `From="10.0.0.0/8,!10.1.2.3"`}, KeyOptions{NoPTY: true, From: "10.0.0.0/8,!10.1.2.3"}, false},
		{[]string{`command=""`}, KeyOptions{}, true},
		{[]string{`command=unquoted`}, KeyOptions{}, true},
		{[]string{`command="a"`, `command="b"`}, KeyOptions{}, true},
		{[]string{`no-pty="x"`}, KeyOptions{}, true},
		{[]string{`from="10.0.0.0/33"`}, KeyOptions{}, true},
		{[]string{`from="a,,b"`}, KeyOptions{}, true},
		{[]string{`from="[a"`}, KeyOptions{From: "[a"}, false}, // a pattern that matches only itself
		{[]string{`from="127.0.0.1/8"`}, KeyOptions{}, true},   // bits past the prefix: sshd refuses it
		{[]string{`restrict`}, KeyOptions{}, true},
		{[]string{`permitopen="host:1"`}, KeyOptions{}, true},
	}
	for _, tt := range tests {
		got, err := parseKeyOptions(tt.in)
		if (err != nil) != tt.wantErr || err == nil && got != tt.want {
			t.Errorf("parseKeyOptions(%q) = %+v, %v; want %+v, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}
