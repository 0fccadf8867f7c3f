package classic

import (
	"bytes"
	"fmt"
	"testing"
)

// filtered is what an InputFilter made of a stream: the input and the window messages, in order.
type filtered struct {
	items []string // "d:<bytes>" runs of input (merged) and "w:<size>" messages
}

func (f *filtered) data(b []byte) {
	if len(b) == 0 {
		return
	}
	if n := len(f.items); n > 0 && f.items[n-1][0] == 'd' {
		f.items[n-1] += string(b)
		return
	}
	f.items = append(f.items, "d:"+string(b))
}

func (f *filtered) window(w WindowSize) { f.items = append(f.items, fmt.Sprintf("w:%v", w)) }

func (f *filtered) String() string { return fmt.Sprintf("%q", f.items) }

// runFilter feeds the chunks to one InputFilter, then flushes what it holds at the end.
func runFilter(chunks ...[]byte) *filtered {
	var f InputFilter
	var res filtered
	var out []byte
	for _, p := range chunks {
		for len(p) > 0 {
			var win WindowSize
			var ok bool
			var n int
			out, win, ok, n = f.Filter(out[:0], p)
			if !ok && n != len(p) {
				panic("Filter stopped without a window message")
			}
			res.data(out)
			if ok {
				res.window(win)
			}
			p = p[n:]
		}
	}
	res.data(f.Flush(nil))
	return &res
}

// referenceFilter is the plain definition: scan the whole stream, take FF FF 's' 's' + 8 bytes.
func referenceFilter(in []byte) *filtered {
	var res filtered
	for i := 0; i < len(in); {
		if i+WindowMessageLen <= len(in) && bytes.Equal(in[i:i+4], windowMagic[:]) {
			res.window(decodeWindow(in[i : i+WindowMessageLen]))
			i += WindowMessageLen
			continue
		}
		res.data(in[i : i+1])
		i++
	}
	return &res
}

func TestInputFilter(t *testing.T) {
	win := func(r, c uint16) []byte { return AppendWindowMessage(nil, WindowSize{Rows: r, Cols: c}) }
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	for _, tc := range []struct {
		name string
		in   []byte
		want string
	}{
		{"plain", []byte("ls -l\r"), `["d:ls -l\r"]`},
		{"window", win(24, 80), `["w:{24 80 0 0}"]`},
		{"between input", cat([]byte("ab"), win(50, 132), []byte("cd")), `["d:ab" "w:{50 132 0 0}" "d:cd"]`},
		{"two windows", cat(win(1, 2), win(3, 4)), `["w:{1 2 0 0}" "w:{3 4 0 0}"]`},
		{"FF FF FF then window", cat([]byte{0xff}, win(5, 6)), `["d:\xff" "w:{5 6 0 0}"]`},
		{"near miss", []byte("\xff\xffst12345678"), `["d:\xff\xffst12345678"]`},
		{"near miss then window", cat([]byte("\xff\xffs"), win(7, 8)), `["d:\xff\xffs" "w:{7 8 0 0}"]`},
		{"latin-1 FF", []byte("\xff\xfe\xff!"), `["d:\xff\xfe\xff!"]`},
		{"truncated at the end", []byte("\xff\xffss\x00\x18"), `["d:\xff\xffss\x00\x18"]`},
		// RFC 1282's limit: typed bytes that look like a window message are one.
		{"typed marker", []byte("\xff\xffssabcdefgh!"), `["w:{24930 25444 25958 26472}" "d:!"]`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := runFilter(tc.in).String(); got != tc.want {
				t.Errorf("whole: %s, want %s", got, tc.want)
			}
			if got := referenceFilter(tc.in).String(); got != tc.want {
				t.Errorf("reference: %s, want %s", got, tc.want)
			}
			// Split at every byte, in two and into single bytes.
			for i := 0; i <= len(tc.in); i++ {
				if got := runFilter(tc.in[:i], tc.in[i:]).String(); got != tc.want {
					t.Errorf("split at %d: %s, want %s", i, got, tc.want)
				}
			}
			var ones [][]byte
			for i := range tc.in {
				ones = append(ones, tc.in[i:i+1])
			}
			if got := runFilter(ones...).String(); got != tc.want {
				t.Errorf("byte by byte: %s, want %s", got, tc.want)
			}
		})
	}
}

func TestInputFilterPending(t *testing.T) {
	var f InputFilter
	out, _, ok, n := f.Filter(nil, []byte("ab\xff\xffs"))
	if string(out) != "ab" || ok || n != 5 || f.Pending() != 3 {
		t.Fatalf("Filter = %q, %v, %d; Pending %d", out, ok, n, f.Pending())
	}
	if out := f.Flush(nil); string(out) != "\xff\xffs" || f.Pending() != 0 {
		t.Errorf("Flush = %q, Pending %d", out, f.Pending())
	}
}

func TestAppendWindowMessage(t *testing.T) {
	got := AppendWindowMessage(nil, WindowSize{Rows: 24, Cols: 80, XPixel: 640, YPixel: 480})
	want := []byte{0xff, 0xff, 's', 's', 0, 24, 0, 80, 2, 128, 1, 224}
	if !bytes.Equal(got, want) {
		t.Errorf("AppendWindowMessage = % x, want % x", got, want)
	}
}

// FuzzInputFilter checks the filter against the plain definition, for the whole input and for it
// split at every point (at most 512 bytes).
func FuzzInputFilter(f *testing.F) {
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) > 512 {
			in = in[:512]
		}
		want := referenceFilter(in).String()
		if got := runFilter(in).String(); got != want {
			t.Fatalf("whole %q: %s, want %s", in, got, want)
		}
		for i := 0; i <= len(in); i++ {
			if got := runFilter(in[:i], in[i:]).String(); got != want {
				t.Fatalf("%q split at %d: %s, want %s", in, i, got, want)
			}
		}
	})
}
