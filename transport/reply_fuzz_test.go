package transport

import (
	"bytes"
	"strings"
	"testing"
	"testing/iotest"
)

// FuzzMailboxReply feeds arbitrary server replies, split at every byte, to the client's reader of
// the mailbox answer: it must never panic, never read past the first CRLF (what follows belongs
// to the mailbox's owner), and return exactly the line before it.
func FuzzMailboxReply(f *testing.F) {
	for _, seed := range []string{
		"+\r\n",
		"+ welcome\r\nHELLO",
		"-unknown mailbox\r\n",
		"-\x1b[31mred\r\n",
		"+\r",
		"\r\n\r\n",
		"+" + strings.Repeat("x", 600) + "\r\n",
		"",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, split := range []bool{false, true} {
			r := bytes.NewReader(data)
			var src = iotestReader(r, split)
			line, err := readReply(src)
			i := bytes.Index(data, []byte("\r\n"))
			if i == 0 { // an empty line is not a reply
				if err == nil && line != "" {
					t.Fatalf("readReply(%q) = %q, want an error or an empty line", data, line)
				}
				continue
			}
			if err != nil {
				if i >= 0 && i+2 <= maxReplyLen && err.Error() != "reply too long" {
					t.Fatalf("readReply(%q) failed: %v, though a CRLF is at %d", data, err, i)
				}
				continue
			}
			if i < 0 || line != string(data[:i]) {
				t.Fatalf("readReply(%q) = %q, want the text before the first CRLF", data, line)
			}
			if rest := r.Len(); rest != len(data)-i-2 {
				t.Fatalf("readReply(%q) consumed past the CRLF: %d bytes left, want %d", data, rest, len(data)-i-2)
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
