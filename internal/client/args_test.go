package client

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestParseArgs(t *testing.T) {
	def := func(mod func(*Options)) Options {
		o := Options{Host: "host", Port: DefaultPort, EscapeChar: '~'}
		if mod != nil {
			mod(&o)
		}
		return o
	}
	for _, tc := range []struct {
		args []string
		want Options
	}{
		{[]string{"host"}, def(nil)},
		{[]string{"-l", "bob", "host"}, def(func(o *Options) { o.User = "bob" })},
		{[]string{"-lbob", "host"}, def(func(o *Options) { o.User = "bob" })},
		{[]string{"host", "-l", "bob"}, def(func(o *Options) { o.User = "bob" })},
		{[]string{"bob@host"}, def(func(o *Options) { o.User = "bob" })},
		{[]string{"-l", "alice", "bob@host"}, def(func(o *Options) { o.User = "alice" })},
		{[]string{"bob@host", "-l", "alice"}, def(func(o *Options) { o.User = "alice" })},
		{[]string{"-p", "2000", "host"}, def(func(o *Options) { o.Port = 2000 })},
		{[]string{"-p2000", "host"}, def(func(o *Options) { o.Port = 2000 })},
		{[]string{"host", "-p", "65535"}, def(func(o *Options) { o.Port = 65535 })},
		{[]string{"-8", "-K", "-L", "host"}, def(func(o *Options) { o.EightBit = true })},
		{[]string{"-8KL", "host"}, def(func(o *Options) { o.EightBit = true })},
		{[]string{"-K", "-L", "host"}, def(nil)},
		{[]string{"-c", "host"}, def(func(o *Options) { o.Classic = true; o.Port = ClassicPort })},
		{[]string{"--classic", "host"}, def(func(o *Options) { o.Classic = true; o.Port = ClassicPort })},
		{[]string{"host", "-c8"}, def(func(o *Options) { o.Classic = true; o.EightBit = true; o.Port = ClassicPort })},
		{[]string{"-p", "2513", "-c", "host"}, def(func(o *Options) { o.Classic = true; o.Port = 2513 })},
		{[]string{"-c", "-p513", "bob@host"}, def(func(o *Options) { o.Classic = true; o.Port = 513; o.User = "bob" })},
		{[]string{"-d", "host"}, def(func(o *Options) { o.Debug = true })},
		{[]string{"-E", "host"}, def(func(o *Options) { o.NoEscape = true })},
		{[]string{"-E", "-e", "!", "host"}, def(func(o *Options) { o.NoEscape = true; o.EscapeChar = '!' })},
		{[]string{"-e!", "host"}, def(func(o *Options) { o.EscapeChar = '!' })},
		{[]string{"-e", "^]", "host"}, def(func(o *Options) { o.EscapeChar = 0x1d })},
		{[]string{"-e", "^a", "host"}, def(func(o *Options) { o.EscapeChar = 0x01 })},
		{[]string{"-e", "^?", "host"}, def(func(o *Options) { o.EscapeChar = 0x7f })},
		{[]string{"-e", "^", "host"}, def(func(o *Options) { o.EscapeChar = '^' })},
		{[]string{"-e", `\`, "host"}, def(func(o *Options) { o.EscapeChar = '\\' })},
		{[]string{"-e", `\035`, "host"}, def(func(o *Options) { o.EscapeChar = 0x1d })},
		{[]string{"-e", `\7`, "host"}, def(func(o *Options) { o.EscapeChar = 7 })},
		{[]string{"-e", `\377`, "host"}, def(func(o *Options) { o.EscapeChar = 0xff })},
		{[]string{"-8Ede^]", "host"}, def(func(o *Options) { o.EightBit = true; o.NoEscape = true; o.Debug = true; o.EscapeChar = 0x1d })},
		{[]string{"-d8l", "bob", "host"}, def(func(o *Options) { o.EightBit = true; o.Debug = true; o.User = "bob" })},
		{[]string{"host", "-8", "-E", "-d", "-p", "7", "-l", "bob"}, def(func(o *Options) {
			o.EightBit, o.NoEscape, o.Debug, o.Port, o.User = true, true, true, 7, "bob"
		})},
		{[]string{"-p", "7", "host", "-l", "bob"}, def(func(o *Options) { o.Port, o.User = 7, "bob" })},
		{[]string{"--", "host"}, def(nil)},
		{[]string{"-l", "bob", "--", "host"}, def(func(o *Options) { o.User = "bob" })},
		{[]string{"::1"}, def(func(o *Options) { o.Host = "::1" })},
		{[]string{"[::1]"}, def(func(o *Options) { o.Host = "::1" })},
		{[]string{"bob@[fe80::1%eth0]"}, def(func(o *Options) { o.Host = "fe80::1%eth0"; o.User = "bob" })},
		{[]string{"127.0.0.1"}, def(func(o *Options) { o.Host = "127.0.0.1" })},
		{[]string{"My-Host_1.example.org"}, def(func(o *Options) { o.Host = "My-Host_1.example.org" })},
		{[]string{"-o", "ConnectTimeout=5", "host"}, def(func(o *Options) { o.ConnectTimeout = 5 * time.Second })},
		{[]string{"-oconnecttimeout=7", "host"}, def(func(o *Options) { o.ConnectTimeout = 7 * time.Second })},
		{[]string{"host", "-o", "ConnectTimeout 9"}, def(func(o *Options) { o.ConnectTimeout = 9 * time.Second })},
		{[]string{"-do", " ConnectTimeout = 86400 ", "host"}, def(func(o *Options) { o.Debug = true; o.ConnectTimeout = 24 * time.Hour })},
		{[]string{"-o", "ServerAliveInterval=5", "-oServerAliveCountMax=2", "host"}, def(func(o *Options) {
			o.ServerAliveInterval, o.ServerAliveCountMax = 5*time.Second, 2
		})},
		{[]string{"-o", "serveraliveinterval 0", "host"}, def(func(o *Options) { o.ServerAliveInterval = -1 })},
		{[]string{"host", "ls", "-l", "/tmp"}, def(func(o *Options) { o.Command = "ls -l /tmp" })},
		{[]string{"host", "-l", "bob", "ls", "-l"}, def(func(o *Options) { o.User, o.Command = "bob", "ls -l" })},
		{[]string{"-t", "host", "top"}, def(func(o *Options) { o.ForcePTY, o.Command = true, "top" })},
		{[]string{"-nT", "host", "--", "-weird", "a  b"}, def(func(o *Options) { o.NullStdin, o.NoPTY, o.Command = true, true, "-weird a  b" })},
		{[]string{"--", "host", "sh", "-c", "echo out; exit 5"}, def(func(o *Options) { o.Command = "sh -c echo out; exit 5" })},
		{[]string{"-o", "Resume=no", "host"}, def(func(o *Options) { o.NoResume = true })},
		{[]string{"-oresume yes", "host"}, def(nil)},
		{[]string{"-R", "host"}, def(func(o *Options) { o.Reattach = true })},
		{[]string{"-R", "-l", "bob", "host"}, def(func(o *Options) { o.Reattach, o.User = true, "bob" })},
		{[]string{"-dR", "host"}, def(func(o *Options) { o.Reattach, o.Debug = true, true })},
		{[]string{"host", "-R"}, def(func(o *Options) { o.Reattach = true })},
		{[]string{"-R", "3f9a", "host"}, def(func(o *Options) { o.Reattach, o.ReattachID = true, "3f9a" })},
		{[]string{"-R3f9a", "host"}, def(func(o *Options) { o.Reattach, o.ReattachID = true, "3f9a" })},
		{[]string{"host", "-R", "3F9A0b1c"}, def(func(o *Options) { o.Reattach, o.ReattachID = true, "3F9A0b1c" })},
		{[]string{"-R", "3f9a", "-p", "7", "bob@host"}, def(func(o *Options) { o.Reattach, o.ReattachID, o.Port, o.User = true, "3f9a", 7, "bob" })},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			got, err := ParseArgs(tc.args)
			if err != nil {
				t.Fatalf("ParseArgs(%q): %v", tc.args, err)
			}
			if got != tc.want {
				t.Fatalf("ParseArgs(%q)\n got %+v\nwant %+v", tc.args, got, tc.want)
			}
		})
	}
}

func TestParseArgsErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string // in the message
	}{
		{nil, "no host"},
		{[]string{}, "no host"},
		{[]string{"-l", "bob"}, "no host"},
		{[]string{"-8"}, "no host"},
		{[]string{"-t", "-T", "host", "cmd"}, `-t and -T contradict each other`},
		{[]string{"-t", "host"}, `-t and -T need a command`},
		{[]string{"host", "--", ""}, `empty command`},
		{[]string{"-c", "host", "id"}, `-c runs no command`},
		{[]string{"-x", "host"}, "unknown option -- x"},
		{[]string{"-k", "realm", "host"}, "unknown option -- k"},
		{[]string{"-8q", "host"}, "unknown option -- q"},
		{[]string{"-\x1b", "host"}, `unknown option -- "\x1b"`},
		{[]string{"host", "-l"}, "option requires an argument -- l"},
		{[]string{"host", "-p"}, "option requires an argument -- p"},
		{[]string{"host", "-e"}, "option requires an argument -- e"},
		{[]string{"-p", "0", "host"}, "bad port"},
		{[]string{"-p", "65536", "host"}, "bad port"},
		{[]string{"-p", "ssh", "host"}, "bad port"},
		{[]string{"-p", "-1", "host"}, "bad port"},
		{[]string{"-e", "ab", "host"}, "bad escape character"},
		{[]string{"-e", "", "host"}, "bad escape character"},
		{[]string{"-e", "^1", "host"}, "bad escape character"},
		{[]string{"-e", `\400`, "host"}, "bad escape character"},
		{[]string{"-e", `\9`, "host"}, "bad escape character"},
		{[]string{"-e", `\1234`, "host"}, "bad escape character"},
		{[]string{"@host"}, "empty user name"},
		{[]string{"-l", "", "host"}, "empty user name"},
		{[]string{"bob@"}, "empty host name"},
		{[]string{"-"}, "starts with '-'"},
		{[]string{"--", "-host"}, "starts with '-'"},
		{[]string{"host name"}, "bad character"},
		{[]string{"host\n"}, "bad character"},
		{[]string{"a,b"}, "bad character"},
		{[]string{"*"}, "bad character"},
		{[]string{"[host"}, "bad character"},
		{[]string{"-l", "bo\nb", "host"}, "invalid user name"},
		{[]string{"-l", "-froot", "host"}, "invalid user name"}, // CVE-1999-0113: never sent
		{[]string{"-l", "-f root", "host"}, "invalid user name"},
		{[]string{"a@b@host"}, "invalid user name"},
		{[]string{"-l", strings.Repeat("u", 33), "host"}, "invalid user name"},
		{[]string{strings.Repeat("h", 256)}, "too long"},
		{[]string{"host", "-o"}, "option requires an argument -- o"},
		{[]string{"-o", "ConnectTimeout=0", "host"}, "bad ConnectTimeout"},
		{[]string{"-o", "ConnectTimeout=-1", "host"}, "bad ConnectTimeout"},
		{[]string{"-o", "ConnectTimeout=1.5", "host"}, "bad ConnectTimeout"},
		{[]string{"-o", "ConnectTimeout=86401", "host"}, "bad ConnectTimeout"},
		{[]string{"-o", "ConnectTimeout=99999999999999999999", "host"}, "bad ConnectTimeout"},
		{[]string{"-o", "ConnectTimeout", "host"}, "bad ConnectTimeout"},
		{[]string{"-o", "ServerAliveInterval=-1", "host"}, "bad ServerAliveInterval"},
		{[]string{"-o", "ServerAliveCountMax=0", "host"}, "bad ServerAliveCountMax"},
		{[]string{"-o", "Port=22", "host"}, `unknown option "Port" for -o`},
		{[]string{"-o", "", "host"}, `unknown option "" for -o`},
		{[]string{"-o", "Resume=maybe", "host"}, `bad Resume "maybe": give yes or no`},
		{[]string{"-R"}, "no host"},
		{[]string{"-R", "-l", "bob"}, "no host"},
		{[]string{"-R", "host", "ls"}, `bad session id "host" for -R`},
		{[]string{"-R", "3f9a", "host", "ls"}, "-R takes no command"},
		{[]string{"host", "-R", "3f9a", "ls"}, "-R takes no command"},
		{[]string{"-R", strings.Repeat("a", 33), "host"}, "bad session id"},
		{[]string{"-c", "-R", "host"}, "-R and -c contradict each other"},
	} {
		t.Run(fmt.Sprintf("%q", tc.args), func(t *testing.T) {
			_, err := ParseArgs(tc.args)
			var ue *UsageError
			if !errors.As(err, &ue) {
				t.Fatalf("ParseArgs(%q) = %v, want a *UsageError", tc.args, err)
			}
			if !strings.Contains(ue.Msg, tc.want) {
				t.Fatalf("ParseArgs(%q): %q does not say %q", tc.args, ue.Msg, tc.want)
			}
			if !strings.HasPrefix(err.Error(), "client: ") {
				t.Fatalf("error %q lacks the package prefix", err)
			}
		})
	}
}

func TestParseArgsHelp(t *testing.T) {
	for _, args := range [][]string{{"-h"}, {"--help"}, {"host", "-h"}, {"-8h", "host"}} {
		if _, err := ParseArgs(args); !errors.Is(err, ErrHelp) {
			t.Errorf("ParseArgs(%q) = %v, want ErrHelp", args, err)
		}
	}
}

func TestUsageTextDocumentsExitStatus(t *testing.T) {
	for _, want := range []string{UsageLine, "255", "~.", "128+n", "-E", "-e char", "-h", "-l user", "-o ConnectTimeout=N", "-p port", "-R [id]", "-o Resume=no"} {
		if !strings.Contains(usageText, want) {
			t.Errorf("usage text does not mention %q", want)
		}
	}
}

func ExampleParseArgs() {
	opts, err := ParseArgs([]string{"bob@example.net", "-p", "2222", "-e", "^]"})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("user=%s host=%s port=%d escape=%#x\n", opts.User, opts.Host, opts.Port, opts.EscapeChar)
	// Output: user=bob host=example.net port=2222 escape=0x1d
}

func ExampleParseEscapeChar() {
	for _, s := range []string{"~", "^]", `\035`, "!"} {
		c, _ := ParseEscapeChar(s)
		fmt.Printf("%q -> %#02x\n", s, c)
	}
	// Output:
	// "~" -> 0x7e
	// "^]" -> 0x1d
	// "\\035" -> 0x1d
	// "!" -> 0x21
}
