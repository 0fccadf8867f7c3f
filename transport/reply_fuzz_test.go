package transport

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
)

// FuzzMailboxReply feeds arbitrary server replies, split at every byte, to the client's reader of
// the mailbox answer. Against a plain reading of the rule ("+" or "-", text without CR or LF,
// CRLF, at most maxReplyLen bytes): it must never panic; of a reply, return exactly the line
// before the CRLF and read nothing past it (what follows belongs to the mailbox's owner); of
// anything else, say it is no reply, with the bytes it read, or fail to read.
func FuzzMailboxReply(f *testing.F) {
	for _, seed := range []string{
		"+\r\n",
		"+ welcome\r\nHELLO",
		"-unknown mailbox\r\n",
		"-\x1b[31mred\r\n",
		"+\r",
		"+\x0c\n",
		"+\r\x0b",
		"\r\n\r\n",
		"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n",
		"+" + strings.Repeat("x", 600) + "\r\n",
		"",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		i := bytes.Index(data, []byte("\r\n"))
		reply := i > 0 && (data[0] == '+' || data[0] == '-') && !bytes.ContainsAny(data[1:i], "\r\n") && i+2 <= maxReplyLen
		for _, split := range []bool{false, true} {
			r := bytes.NewReader(data)
			line, ok, err := readReply(iotestReader(r, split))
			if reply {
				if err != nil || !ok || line != string(data[:i]) {
					t.Fatalf("readReply(%q) = %q, %v, %v; want the text before the first CRLF", data, line, ok, err)
				}
				if rest := r.Len(); rest != len(data)-i-2 {
					t.Fatalf("readReply(%q) consumed past the CRLF: %d bytes left, want %d", data, rest, len(data)-i-2)
				}
				continue
			}
			if ok {
				t.Fatalf("readReply(%q) = %q, a reply", data, line)
			}
			if err == nil && (len(line) > maxReplyLen || !bytes.HasPrefix(data, []byte(line))) {
				t.Fatalf("readReply(%q) = %q, not the bytes it read", data, line)
			}
		}
	})
}

// FuzzParseHelp feeds arbitrary HELP listings to the client's parser. It must never panic; a
// listing it takes must be the data's non-empty lines, each a valid mailbox name; one it refuses
// must be a *MailboxError with a bounded Reply from the data (a "-" refusal, another protocol's
// banner), never a list of names.
func FuzzParseHelp(f *testing.F) {
	for _, seed := range []string{
		"login\r\nEcho\r\n",
		"-no listing here\r\n",
		"login\r\n-oops\r\n",
		"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n",
		"\r\n\nlf-only\n",
		"a\rb\r\n",
		strings.Repeat("n", MaxNameLen+1) + "\r\n",
		"",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		names, err := parseHelp(data)
		if err != nil {
			var me *MailboxError
			if !errors.As(err, &me) || names != nil {
				t.Fatalf("parseHelp(%q) = %q, %v; want a *MailboxError alone", data, names, err)
			}
			if len(me.Reply) > maxReplyLen || !bytes.Contains(data, []byte(me.Reply)) {
				t.Fatalf("parseHelp(%q): Reply %q is not a bounded part of the data", data, me.Reply)
			}
			return
		}
		var lines []string
		for line := range strings.Lines(string(data)) {
			if l := strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r"); l != "" {
				lines = append(lines, l)
			}
		}
		if !slices.Equal(names, lines) {
			t.Fatalf("parseHelp(%q) = %q, want the lines %q", data, names, lines)
		}
		for _, n := range names {
			if !ValidMailboxName(n) {
				t.Fatalf("parseHelp(%q) took the invalid name %q", data, n)
			}
		}
	})
}

func iotestReader(r *bytes.Reader, split bool) interface{ Read([]byte) (int, error) } {
	if split {
		return iotest.OneByteReader(r)
	}
	return r
}
