package classic

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func TestScanRequest(t *testing.T) {
	long := func(n int) string { return strings.Repeat("a", n) }
	for _, tc := range []struct {
		name string
		in   string
		want *Request // nil: an error
		rest string
	}{
		{"netkit", "\x00bob\x00alice\x00xterm/38400\x00", &Request{"bob", "alice", "xterm", "38400"}, ""},
		{"data after", "\x00bob\x00bob\x00vt100/9600\x00\xff\xffss", &Request{"bob", "bob", "vt100", "9600"}, "\xff\xffss"},
		{"no speed", "\x00bob\x00bob\x00xterm\x00", &Request{"bob", "bob", "xterm", ""}, ""},
		{"slash, no speed", "\x00bob\x00bob\x00xterm/\x00", &Request{"bob", "bob", "xterm", ""}, ""},
		{"slash only", "\x00bob\x00bob\x00/\x00", &Request{"bob", "bob", "", ""}, ""},
		{"empty term", "\x00bob\x00bob\x00\x00", &Request{"bob", "bob", "", ""}, ""},
		{"longest names", "\x00" + long(32) + "\x00" + long(32) + "\x00" + long(250) + "/38400\x00", &Request{long(32), long(32), long(250), "38400"}, ""},
		{"longest term", "\x00a\x00b\x00" + long(256) + "\x00", &Request{"a", "b", long(256), ""}, ""},
		{"client user too long", "\x00" + long(33) + "\x00bob\x00xterm\x00", nil, ""},
		{"server user too long", "\x00bob\x00" + long(33) + "\x00xterm\x00", nil, ""},
		{"term too long", "\x00a\x00b\x00" + long(257) + "\x00", nil, ""},
		{"term and speed too long", "\x00a\x00b\x00" + long(251) + "/38400\x00", nil, ""},
		{"-froot", "\x00bob\x00-froot\x00xterm\x00", nil, ""},
		{"-f client", "\x00-f\x00root\x00xterm\x00", nil, ""},
		{"empty server user", "\x00bob\x00\x00xterm\x00", nil, ""},
		{"space in user", "\x00bob\x00b ob\x00xterm\x00", nil, ""},
		{"control in term", "\x00bob\x00bob\x00xt\x1berm\x00", nil, ""},
		{"space in term", "\x00bob\x00bob\x00x term\x00", nil, ""},
		{"two slashes", "\x00bob\x00bob\x00xterm/96/00\x00", nil, ""},
		{"letters in speed", "\x00bob\x00bob\x00xterm/fast\x00", nil, ""},
		{"not classic", "login\r\n", nil, ""},
		{"TLS", "\x16\x03\x01", nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, n, done, err := scanRequest([]byte(tc.in))
			if tc.want == nil {
				if err == nil {
					t.Fatalf("scanRequest(%q) = %+v, %v, no error", tc.in, req, done)
				}
				return
			}
			if err != nil || !done {
				t.Fatalf("scanRequest(%q): done %v, err %v", tc.in, done, err)
			}
			if *req != *tc.want || tc.in[n:] != tc.rest {
				t.Errorf("scanRequest(%q) = %+v, rest %q; want %+v, rest %q", tc.in, *req, tc.in[n:], *tc.want, tc.rest)
			}
			// Every proper prefix is incomplete, not an error.
			for i := range n {
				if _, _, done, err := scanRequest([]byte(tc.in[:i])); done || err != nil {
					t.Errorf("prefix %q: done %v, err %v", tc.in[:i], done, err)
				}
			}
			// Read one byte at a time and at once: no byte after the handshake is lost.
			for _, name := range []string{"one byte at a time", "at once"} {
				var src io.Reader = strings.NewReader(tc.in)
				if name == "one byte at a time" {
					src = iotest.OneByteReader(src)
				}
				r, rest, err := readRequest(src)
				after, _ := io.ReadAll(src)
				if err != nil || *r != *tc.want || string(rest)+string(after) != tc.rest {
					t.Errorf("readRequest %s = %+v, %q + %q, %v", name, r, rest, after, err)
				}
			}
		})
	}
}

func TestReadRequestErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		want error
	}{
		{"missing NULs", "\x00bob\x00bob\x00xterm", io.ErrUnexpectedEOF},
		{"nothing", "", io.ErrUnexpectedEOF},
		{"not classic", "\x16\x03\x01", ErrNotClassic},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := readRequest(strings.NewReader(tc.in))
			if !errors.Is(err, tc.want) {
				t.Errorf("readRequest(%q) = %v, want %v", tc.in, err, tc.want)
			}
		})
	}
	// A 64 KiB terminal string is refused after at most one buffer: nothing waits for its end.
	in := "\x00bob\x00bob\x00" + strings.Repeat("x", 64<<10) + "\x00"
	cr := &countingReader{r: strings.NewReader(in)}
	_, _, err := readRequest(cr)
	var he *HandshakeError
	if !errors.As(err, &he) {
		t.Fatalf("readRequest(64 KiB term) = %v, want a *HandshakeError", err)
	}
	if cr.n > maxHandshake+64 {
		t.Errorf("read %d bytes of a 64 KiB terminal string before refusing", cr.n)
	}
}

type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

func TestAppendRequest(t *testing.T) {
	req := Request{ClientUser: "bob", ServerUser: "alice", Term: "xterm-256color", Speed: "38400"}
	b, err := AppendRequest(nil, &req)
	if err != nil {
		t.Fatal(err)
	}
	if want := "\x00bob\x00alice\x00xterm-256color/38400\x00"; string(b) != want {
		t.Errorf("AppendRequest = %q, want %q", b, want)
	}
	for _, bad := range []Request{
		{ClientUser: "bob", ServerUser: "-froot", Term: "xterm"},
		{ClientUser: "", ServerUser: "bob", Term: "xterm"},
		{ClientUser: "bob", ServerUser: "bob", Term: "a/b"},
		{ClientUser: "bob", ServerUser: "bob", Term: strings.Repeat("x", 257)},
	} {
		if b, err := AppendRequest(nil, &bad); err == nil {
			t.Errorf("AppendRequest(%+v) = %q, want an error", bad, b)
		}
	}
}

// FuzzHandshake checks the handshake parser on any input: it never reads an unbounded prefix, a
// parsed request passes the server's checks and encodes back to the same bytes (but for the '/'
// of a terminal field without a speed, which AppendRequest leaves out), and reading split at any
// point gives the same result as reading at once.
func FuzzHandshake(f *testing.F) {
	f.Fuzz(func(t *testing.T, in []byte) {
		req, n, done, err := scanRequest(in)
		if err == nil && !done && len(in) > maxHandshake {
			t.Fatalf("an incomplete handshake of %d bytes (max %d)", len(in), maxHandshake)
		}
		if done {
			if err := req.check(); err != nil {
				t.Fatalf("parsed %+v fails the checks: %v", req, err)
			}
			b, err := AppendRequest(nil, req)
			want := in[:n]
			if req.Speed == "" && bytes.HasSuffix(want, []byte("/\x00")) {
				want = append(bytes.Clone(want[:n-2]), 0) // "xterm/" is written back as "xterm"
			}
			if err != nil || !bytes.Equal(b, want) {
				t.Fatalf("re-encoded %+v as %q (%v), was %q", req, b, err, in[:n])
			}
		}
		src := bytes.NewReader(in)
		r2, rest, err2 := readRequest(iotest.HalfReader(src))
		after, _ := io.ReadAll(src)
		switch {
		case done && (err2 != nil || *r2 != *req || !bytes.Equal(append(rest, after...), in[n:])):
			t.Fatalf("split read: %+v %q %v; whole: %+v", r2, rest, err2, req)
		case err != nil && err2 == nil:
			t.Fatalf("split read accepted what the whole read refused (%v)", err)
		}
	})
}
