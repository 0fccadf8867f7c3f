// Package sanitize makes peer-supplied strings safe to print in logs and on
// terminals (CWE-150, terminal escape injection; CVE-2021-42574, "Trojan
// Source" bidi spoofing).
//
// Typical usage, wherever a string that came from the network is logged or
// shown to a user:
//
//	logger.Info("login refused", "user", sanitize.Text(req.User))
//	fmt.Fprintf(os.Stderr, "rlogin: refused: %s\r\n", sanitize.Text(reason))
//
// The result is always valid UTF-8, one line, and at most MaxLen bytes plus
// "...". It is meant for humans: it cannot be turned back into the original
// (a backslash in the input is printed as is).
package sanitize

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxLen is the most bytes of escaped text Text returns; longer text is cut
// at a rune or escape boundary and "..." is appended.
const MaxLen = 256

// ellipsis marks a truncated result.
const ellipsis = "..."

// Text returns s with everything that could drive a terminal, break a log
// line or disguise text made visible as an escape:
//
//   - C0 controls and DEL: \t, \n, \r, other bytes as \xNN (\x1b for ESC);
//   - C1 controls (U+0080 to U+009F) as \u0085;
//   - bytes that are not valid UTF-8 as \xNN;
//   - Unicode format characters (category Cf: bidi embeddings, overrides and
//     isolates U+202A-U+202E, U+2066-U+2069, marks U+200E, U+200F, U+061C,
//     zero-width U+200B-U+200D, U+2060-U+2064, U+FEFF, tags ...), line and
//     paragraph separators U+2028, U+2029, and other invisible
//     default-ignorable fillers (U+115F, U+3164, ...) as \uXXXX or
//     \UXXXXXXXX.
//
// Printable text, including non-ASCII, passes unchanged. If the escaped
// text is longer than MaxLen bytes, it is cut to at most MaxLen bytes
// without splitting a character or an escape, and "..." is appended.
func Text(s string) string {
	if isPlainASCII(s) {
		return s
	}
	var b strings.Builder
	b.Grow(min(len(s), MaxLen) + len(ellipsis))
	var buf [10]byte // longest unit: \UXXXXXXXX
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		var unit []byte
		switch {
		case r == utf8.RuneError && size == 1:
			unit = appendHexByte(buf[:0], s[i])
		case needsEscape(r):
			unit = appendEscape(buf[:0], r)
		default:
			unit = nil
		}
		n := size
		if unit != nil {
			n = len(unit)
		}
		if b.Len()+n > MaxLen {
			b.WriteString(ellipsis)
			return b.String()
		}
		if unit != nil {
			b.Write(unit)
		} else {
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// isPlainASCII reports whether s is short and all printable ASCII, so Text
// can return it without copying.
func isPlainASCII(s string) bool {
	if len(s) > MaxLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e {
			return false
		}
	}
	return true
}

// needsEscape reports whether the (validly encoded) rune r must be shown as
// an escape.
func needsEscape(r rune) bool {
	if r < 0x20 || r == 0x7f {
		return true
	}
	if r < 0x7f {
		return false
	}
	if r <= 0x9f { // C1 controls
		return true
	}
	return unicode.In(r, unicode.Cf, unicode.Zl, unicode.Zp, unicode.Other_Default_Ignorable_Code_Point)
}

const hexDigits = "0123456789abcdef"

// appendHexByte appends \xNN.
func appendHexByte(dst []byte, c byte) []byte {
	return append(dst, '\\', 'x', hexDigits[c>>4], hexDigits[c&0xf])
}

// appendEscape appends the escape for a rune that needsEscape.
func appendEscape(dst []byte, r rune) []byte {
	switch {
	case r == '\t':
		return append(dst, '\\', 't')
	case r == '\n':
		return append(dst, '\\', 'n')
	case r == '\r':
		return append(dst, '\\', 'r')
	case r < 0x80:
		return appendHexByte(dst, byte(r))
	case r <= 0xffff:
		dst = append(dst, '\\', 'u')
		return appendPaddedHex(dst, r, 4)
	default:
		dst = append(dst, '\\', 'U')
		return appendPaddedHex(dst, r, 8)
	}
}

// appendPaddedHex appends r in lower-case hex, zero-padded to width digits.
func appendPaddedHex(dst []byte, r rune, width int) []byte {
	for shift := (width - 1) * 4; shift >= 0; shift -= 4 {
		dst = append(dst, hexDigits[(r>>shift)&0xf])
	}
	return dst
}
