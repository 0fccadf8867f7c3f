package sanitize

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestText(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"empty", "", ""},
		{"ascii", "bob", "bob"},
		{"printable ascii", "a b~!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}", "a b~!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}"},
		{"utf8 passes", "Jürgen 日本語 Ωμέγα 😀", "Jürgen 日本語 Ωμέγα 😀"},
		{"nbsp and soft text", "a\u00a0b", "a\u00a0b"},
		{"escape sequence", "\x1b[2J\x1b]0;pwned\x07", `\x1b[2J\x1b]0;pwned\x07`},
		{"newline", "line1\nline2", `line1\nline2`},
		{"crlf", "a\r\nb", `a\r\nb`},
		{"tab", "a\tb", `a\tb`},
		{"nul", "a\x00b", `a\x00b`},
		{"del", "a\x7fb", `a\x7fb`},
		{"all C0 examples", "\x01\x08\x0b\x0c\x1f", `\x01\x08\x0b\x0c\x1f`},
		{"C1 CSI", "a\u009b31mb", `a\u009b31mb`},
		{"C1 NEL", "\u0085", `\u0085`},
		{"C1 first and last", "\u0080\u009f", `\u0080\u009f`},
		{"invalid byte", "a\xffb", `a\xffb`},
		{"raw C1 byte is invalid utf8", "\x9b31m", `\x9b31m`},
		{"truncated utf8", "ab\xe6\x97", `ab\xe6\x97`},
		{"overlong encoding", "\xc0\xaf", `\xc0\xaf`},
		{"surrogate encoding", "\xed\xa0\x80", `\xed\xa0\x80`},
		{"RLO trojan source", "user\u202eexe.txt", `user\u202eexe.txt`},
		{"bidi embeddings", "\u202a\u202b\u202c\u202d", `\u202a\u202b\u202c\u202d`},
		{"bidi isolates", "\u2066\u2067\u2068\u2069", `\u2066\u2067\u2068\u2069`},
		{"bidi marks", "\u200e\u200f\u061c", `\u200e\u200f\u061c`},
		{"zero width", "ro\u200bot", `ro\u200bot`},
		{"zwj zwnj", "\u200c\u200d", `\u200c\u200d`},
		{"word joiner", "\u2060", `\u2060`},
		{"bom", "\ufeffroot", `\ufeffroot`},
		{"soft hyphen", "ro\u00adot", `ro\u00adot`},
		{"line separator", "a\u2028b\u2029c", `a\u2028b\u2029c`},
		{"hangul filler", "\u3164", `\u3164`},
		{"tag character", "\U000e0041", `\U000e0041`},
		{"interlinear annotation", "\ufff9", `\ufff9`},
		{"replacement char itself passes", "\ufffd", "\ufffd"},
		{"backslash unchanged", `C:\x1b`, `C:\x1b`},
		{"exactly MaxLen", strings.Repeat("a", MaxLen), strings.Repeat("a", MaxLen)},
		{"MaxLen+1", strings.Repeat("a", MaxLen+1), strings.Repeat("a", MaxLen) + "..."},
		{"long", strings.Repeat("ab", 10000), strings.Repeat("ab", MaxLen/2) + "..."},
		{
			// 255 bytes of 'a', then a 2-byte rune that would cross the limit.
			"no split of a rune",
			strings.Repeat("a", MaxLen-1) + "é",
			strings.Repeat("a", MaxLen-1) + "...",
		},
		{
			"rune ends exactly at limit",
			strings.Repeat("a", MaxLen-2) + "é",
			strings.Repeat("a", MaxLen-2) + "é",
		},
		{
			"no split of an escape",
			strings.Repeat("a", MaxLen-3) + "\x1b",
			strings.Repeat("a", MaxLen-3) + "...",
		},
		{
			"escape ends exactly at limit",
			strings.Repeat("a", MaxLen-4) + "\x1b",
			strings.Repeat("a", MaxLen-4) + `\x1b`,
		},
		{
			"escapes count toward the limit",
			strings.Repeat("\x00", 100),
			strings.Repeat(`\x00`, MaxLen/4) + "...",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Text(tt.in)
			if got != tt.want {
				t.Errorf("Text(%q) = %q, want %q", tt.in, got, tt.want)
			}
			checkSafe(t, tt.in, got)
		})
	}
}

// TestTextEveryRune runs every code point and every single byte through
// Text and checks the result is safe.
func TestTextEveryRune(t *testing.T) {
	for r := rune(0); r <= unicode.MaxRune; r++ {
		if r >= 0xd800 && r <= 0xdfff {
			continue // not encodable in UTF-8
		}
		s := string(r)
		checkSafe(t, s, Text(s))
	}
	for c := 0; c < 256; c++ {
		s := string([]byte{byte(c)})
		checkSafe(t, s, Text(s))
	}
}

func TestTextNoCopyForPlainASCII(t *testing.T) {
	in := "alice@example.org"
	if n := testing.AllocsPerRun(100, func() { _ = Text(in) }); n != 0 {
		t.Errorf("Text of plain ASCII allocates %v times, want 0", n)
	}
}

// checkSafe fails t if out, the result of Text(in), is not safe to print.
func checkSafe(t *testing.T, in, out string) {
	t.Helper()
	if !utf8.ValidString(out) {
		t.Fatalf("Text(%q) = %q: not valid UTF-8", in, out)
	}
	if len(out) > MaxLen+len(ellipsis) {
		t.Fatalf("Text(%q): %d bytes, want at most %d", in, len(out), MaxLen+len(ellipsis))
	}
	for i, r := range out {
		if r < 0x20 || (r >= 0x7f && r <= 0x9f) {
			t.Fatalf("Text(%q) = %q: control U+%04X at byte %d", in, out, r, i)
		}
		if unicode.Is(unicode.Bidi_Control, r) || unicode.In(r, unicode.Cf, unicode.Zl, unicode.Zp) {
			t.Fatalf("Text(%q) = %q: format/bidi control U+%04X at byte %d", in, out, r, i)
		}
		if unicode.Is(unicode.Other_Default_Ignorable_Code_Point, r) {
			t.Fatalf("Text(%q) = %q: invisible U+%04X at byte %d", in, out, r, i)
		}
	}
	// Text is idempotent on its own output as long as that is not cut again.
	if len(out) <= MaxLen {
		if again := Text(out); again != out {
			t.Fatalf("Text(Text(%q)) = %q, want %q", in, again, out)
		}
	}
	// Safe input that fits comes back unchanged.
	if len(in) <= MaxLen && utf8.ValidString(in) && !strings.ContainsFunc(in, needsEscape) && out != in {
		t.Fatalf("Text(%q) = %q, want it unchanged", in, out)
	}
}

func FuzzText(f *testing.F) {
	for _, s := range []string{
		"", "bob", "xterm-256color", "\x1b[31mred\x1b[0m", "a\nb\r\n\t",
		"user\u202eexe.txt", "\xff\xfe", "\u0085\u009b", "\ufeff\u200b\u2066",
		"日本語", strings.Repeat("é", 200),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		checkSafe(t, s, Text(s))
	})
}

func BenchmarkText(b *testing.B) {
	b.Run("plain", func(b *testing.B) {
		for b.Loop() {
			_ = Text("alice@example.org")
		}
	})
	b.Run("escapes", func(b *testing.B) {
		for b.Loop() {
			_ = Text("\x1b[2Juser\u202e\xff")
		}
	})
	b.Run("huge", func(b *testing.B) {
		s := strings.Repeat("日本語\x1b", 100000)
		for b.Loop() {
			_ = Text(s)
		}
	})
}
