package client

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
)

// escapeEvent is one thing the escaper produced: bytes to send, or a command.
type escapeEvent struct {
	data string
	cmd  escapeCmd
}

func (e escapeEvent) String() string {
	if e.cmd != escNone {
		return "<" + e.cmd.String() + ">"
	}
	return fmt.Sprintf("%q", e.data)
}

// runEscaper feeds chunks to a new escaper as the input pump does, and returns what it produced,
// with adjacent data merged (so the result does not depend on how the data was cut), stopping at
// a disconnect as the pump does.
func runEscaper(char byte, enabled bool, chunks [][]byte) []escapeEvent {
	e := newEscaper(char, enabled)
	var events []escapeEvent
	addData := func(b []byte) {
		if len(b) == 0 {
			return
		}
		if n := len(events); n > 0 && events[n-1].cmd == escNone {
			events[n-1].data += string(b)
			return
		}
		events = append(events, escapeEvent{data: string(b)})
	}
	var out []byte
	for _, p := range chunks {
		for len(p) > 0 {
			var cmd escapeCmd
			var n int
			out, cmd, n = e.scan(out[:0], p)
			if n <= 0 || n > len(p) {
				panic(fmt.Sprintf("scan consumed %d of %d bytes", n, len(p)))
			}
			p = p[n:]
			addData(out)
			if cmd != escNone {
				events = append(events, escapeEvent{cmd: cmd})
				if cmd == escDisconnect {
					return events
				}
			}
		}
	}
	return events
}

func formatEvents(ev []escapeEvent) string {
	s := make([]string, len(ev))
	for i, e := range ev {
		s[i] = e.String()
	}
	return strings.Join(s, " ")
}

func TestEscaper(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string // formatEvents of the result
	}{
		{"", ""},
		{"ls\r", `"ls\r"`},
		{"~.", `<disconnect>`},
		{"~\x04", `<disconnect>`},
		{"~.after", `<disconnect>`},
		{"ls\r~.", `"ls\r" <disconnect>`},
		{"ls\n~.", `"ls\n" <disconnect>`},
		{"a~.", `"a~."`}, // not at the start of a line
		{"\r\r~.", `"\r\r" <disconnect>`},
		{"~~", `"~"`},
		{"~~.", `"~."`}, // ~~ sends ~ and leaves the line start
		{"~~~.", `"~~."`},
		{"~x", `"~x"`},
		{"~\r~.", `"~\r" <disconnect>`},
		{"~?", `<help>`},
		{"~?~.", `<help> <disconnect>`}, // still at the start of a line after a local command
		{"~?x", `<help> "x"`},
		{"~\x1a", `<suspend>`},
		{"~\x1a~.", `<suspend> <disconnect>`},
		{"~\x1als\r", `<suspend> "ls\r"`},
		{"x\x03~.", `"x\x03~."`}, // only \r and \n start a line (ssh), not ^C or ^U
		{"~", ``},                // held until the next byte decides
		{"\xff~.", `"\xff~."`},
		{"~\xff", "\"~\\xff\""},
		{"abc\rdef\n~?ghi", `"abc\rdef\n" <help> "ghi"`},
	} {
		t.Run(fmt.Sprintf("%q", tc.in), func(t *testing.T) {
			got := formatEvents(runEscaper('~', true, [][]byte{[]byte(tc.in)}))
			if got != tc.want {
				t.Fatalf("escaper(%q) = %s, want %s", tc.in, got, tc.want)
			}
		})
	}
}

func TestEscaperOtherChar(t *testing.T) {
	for _, tc := range []struct {
		char byte
		in   string
		want string
	}{
		{'!', "~.", `"~."`},
		{'!', "!.", `<disconnect>`},
		{'!', "!!", `"!"`},
		{'!', "!~", `"!~"`},
		{0x1d, "\x1d.", `<disconnect>`},
		{0x1d, "\x1d\x1d", `"\x1d"`},
		{0x1d, "a\r\x1d?", `"a\r" <help>`},
	} {
		got := formatEvents(runEscaper(tc.char, true, [][]byte{[]byte(tc.in)}))
		if got != tc.want {
			t.Errorf("escaper %q (%q) = %s, want %s", tc.char, tc.in, got, tc.want)
		}
	}
}

func TestEscaperDisabled(t *testing.T) {
	in := "~.~?~\x1a\r~.\n~~"
	got := formatEvents(runEscaper('~', false, [][]byte{[]byte(in)}))
	if want := fmt.Sprintf("%q", in); got != want {
		t.Fatalf("disabled escaper = %s, want %s", got, want)
	}
}

// TestEscaperSplits checks that every way of cutting the table's inputs in two or three gives the
// same result as the whole.
func TestEscaperSplits(t *testing.T) {
	inputs := []string{"ls\r~.", "~~~.", "~?~\x1a\r~x\n~~y", "ab\r~\r~?~.", "~\x04"}
	for _, in := range inputs {
		whole := formatEvents(runEscaper('~', true, [][]byte{[]byte(in)}))
		for i := 0; i <= len(in); i++ {
			for j := i; j <= len(in); j++ {
				chunks := [][]byte{[]byte(in[:i]), []byte(in[i:j]), []byte(in[j:])}
				if got := formatEvents(runEscaper('~', true, chunks)); got != whole {
					t.Fatalf("%q cut at %d,%d = %s, whole = %s", in, i, j, got, whole)
				}
			}
		}
	}
}

func TestEscapeHelp(t *testing.T) {
	h := escapeHelp('~')
	for _, want := range []string{"~.", "~^D", "~^Z", "~?", "~~"} {
		if !strings.Contains(h, want) {
			t.Errorf("help does not list %s:\n%s", want, h)
		}
	}
	if strings.Count(h, "\n") != strings.Count(h, "\r\n") {
		t.Errorf("help has a bare \\n (the terminal is raw):\n%q", h)
	}
	if h := escapeHelp(0x1d); !strings.Contains(h, "^].") {
		t.Errorf("help for ^] does not show ^].:\n%s", h)
	}
	for c, want := range map[byte]string{'~': "~", 0x1d: "^]", 0x7f: "^?", 0xff: `\377`, 0: "^@"} {
		if got := escapeName(c); got != want {
			t.Errorf("escapeName(%#x) = %q, want %q", c, got, want)
		}
	}
}

// FuzzEscaper checks that the escaper gives the same result however the input is cut into reads,
// and that what it sends is the input less the escapes.
func FuzzEscaper(f *testing.F) {
	f.Add([]byte("ls\r~."), byte('~'), []byte{2})
	f.Add([]byte("~~~.\r~?~\x1a~x"), byte('~'), []byte{1, 1, 3})
	f.Add([]byte("\x1d.\r\x1d\x1d"), byte(0x1d), []byte{0, 5})
	f.Fuzz(func(t *testing.T, in []byte, char byte, cuts []byte) {
		whole := runEscaper(char, true, [][]byte{in})
		// Cut in at the lengths cuts gives, then byte by byte.
		var chunks [][]byte
		rest := in
		for _, c := range cuts {
			n := min(int(c), len(rest))
			chunks = append(chunks, rest[:n])
			rest = rest[n:]
		}
		chunks = append(chunks, rest)
		if got := runEscaper(char, true, chunks); formatEvents(got) != formatEvents(whole) {
			t.Fatalf("cut %v: %s\nwhole: %s", cuts, formatEvents(got), formatEvents(whole))
		}
		var bytewise [][]byte
		for i := range in {
			bytewise = append(bytewise, in[i:i+1])
		}
		if got := runEscaper(char, true, bytewise); formatEvents(got) != formatEvents(whole) {
			t.Fatalf("byte by byte: %s\nwhole: %s", formatEvents(got), formatEvents(whole))
		}
		// What is sent never holds more escape characters than were typed, and escapes off sends
		// everything as is.
		var sent []byte
		for _, e := range whole {
			sent = append(sent, e.data...)
		}
		if bytes.Count(sent, []byte{char}) > bytes.Count(in, []byte{char}) {
			t.Fatalf("sent %q has more %q than typed %q", sent, char, in)
		}
		if len(sent) > len(in) {
			t.Fatalf("sent %d bytes for %d typed", len(sent), len(in))
		}
		off := runEscaper(char, false, chunks)
		if len(in) > 0 && (len(off) != 1 || off[0].data != string(in)) {
			t.Fatalf("escapes off changed the input: %s", formatEvents(off))
		}
	})
}
