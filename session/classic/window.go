package classic

import (
	"bytes"
	"encoding/binary"

	"github.com/rlogin-go/rlogin/session"
)

// WindowSize is a terminal's size in characters and pixels (0 = unknown); the same type as the
// secure protocol's and the pty's (pty.Size).
type WindowSize = session.WindowSize

// WindowMessageLen is the length of a window-size message: FF FF 's' 's' and four big-endian
// uint16 (rows, cols, xpixel, ypixel).
const WindowMessageLen = 12

// windowMagic starts every window-size message.
var windowMagic = [4]byte{0xff, 0xff, 's', 's'}

// AppendWindowMessage appends the window-size message for w to b.
func AppendWindowMessage(b []byte, w WindowSize) []byte {
	b = append(b, windowMagic[:]...)
	b = binary.BigEndian.AppendUint16(b, w.Rows)
	b = binary.BigEndian.AppendUint16(b, w.Cols)
	b = binary.BigEndian.AppendUint16(b, w.XPixel)
	return binary.BigEndian.AppendUint16(b, w.YPixel)
}

// An InputFilter separates the window-size messages from the terminal input in the byte stream a
// classic client sends, however the stream is split into reads.
//
// RFC 1282 has no way to escape its marker: the client's user data and its window messages share
// one stream. An InputFilter therefore takes every FF FF 73 73 followed by 8 more bytes as a window
// message, wherever it occurs, also when the user typed or pasted those bytes; they never reach
// the terminal and the terminal is resized to whatever the 8 bytes say. Every other byte, FF
// included, is passed on unchanged and in order. Classic servers have the same limit (and, unlike
// this filter, miss messages split across reads). A stream cannot be made safe from it; the secure
// protocol (docs/protocol.md) carries window sizes in their own frames instead.
//
// Up to 11 bytes that may be the start of a message are held back until the bytes after them
// decide (see Pending and Flush): a server whose client goes quiet after a lone FF, for example,
// should pass the held bytes on after a short wait.
//
// The zero value is ready to use.
type InputFilter struct {
	held [WindowMessageLen]byte
	n    int // bytes in held: a proper prefix of a possible window message
}

// Filter reads p, appends its terminal input to dst and returns the extended dst. It stops after
// the first window message it completes: then ok is true and win holds it. n counts the bytes of
// p consumed; the caller hands dst to the terminal, applies win, and calls Filter again with
// p[n:] until all of p is consumed (ok false means n == len(p)).
func (f *InputFilter) Filter(dst, p []byte) (out []byte, win WindowSize, ok bool, n int) {
	i := 0
	for i < len(p) {
		if f.n == 0 {
			// Fast path: copy everything up to the next FF at once.
			j := bytes.IndexByte(p[i:], 0xff)
			if j < 0 {
				return append(dst, p[i:]...), WindowSize{}, false, len(p)
			}
			dst = append(dst, p[i:i+j]...)
			i += j
		}
		f.held[f.n] = p[i]
		f.n++
		i++
		dst = f.settle(dst)
		if f.n == WindowMessageLen {
			f.n = 0
			return dst, decodeWindow(f.held[:]), true, i
		}
	}
	return dst, WindowSize{}, false, len(p)
}

// settle passes on held bytes that cannot start a window message any more, keeping the longest
// suffix of them that still can.
func (f *InputFilter) settle(dst []byte) []byte {
	for f.n > 0 && !isMessagePrefix(f.held[:f.n]) {
		dst = append(dst, f.held[0])
		copy(f.held[:], f.held[1:f.n])
		f.n--
	}
	return dst
}

// isMessagePrefix reports whether b is a prefix of some window message.
func isMessagePrefix(b []byte) bool {
	for i := 0; i < len(b) && i < len(windowMagic); i++ {
		if b[i] != windowMagic[i] {
			return false
		}
	}
	return true
}

// Pending returns how many bytes are held back as the possible start of a window message.
func (f *InputFilter) Pending() int { return f.n }

// Flush appends the held bytes to dst as terminal input, forgets them, and returns the extended
// dst: the caller decided that no window message follows (the client went quiet).
func (f *InputFilter) Flush(dst []byte) []byte {
	dst = append(dst, f.held[:f.n]...)
	f.n = 0
	return dst
}

func decodeWindow(m []byte) WindowSize {
	return WindowSize{
		Rows:   binary.BigEndian.Uint16(m[4:]),
		Cols:   binary.BigEndian.Uint16(m[6:]),
		XPixel: binary.BigEndian.Uint16(m[8:]),
		YPixel: binary.BigEndian.Uint16(m[10:]),
	}
}
