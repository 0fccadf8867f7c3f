package session

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"unicode"
	"unicode/utf8"
)

// checkReason: valid UTF-8 of at most 1 KiB without control or format characters, so a client
// may print it (still through a filter for untrusted text, to be safe).
func checkReason(s string) error {
	if len(s) > maxReason {
		return fmt.Errorf("reason of %d bytes exceeds the limit of %d", len(s), maxReason)
	}
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 || !reasonRune(r) {
			return fmt.Errorf("reason %s has a forbidden character at byte %d", quote(s), i)
		}
		i += size
	}
	return nil
}

// reasonRune reports whether r may appear in a reason.
func reasonRune(r rune) bool {
	return r >= 0x20 && r != 0x7f && !(r >= 0x80 && r < 0xa0) && !unicode.Is(unicode.Cf, r) &&
		r != '\u2028' && r != '\u2029'
}

// cleanReason makes a reason of ours fit checkReason: forbidden characters become '?', and it is
// cut to 1 KiB at a character boundary.
func cleanReason(s string) string {
	b := make([]byte, 0, min(len(s), maxReason))
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size
		if r == utf8.RuneError && size == 1 || !reasonRune(r) {
			r = '?'
		}
		if len(b)+utf8.RuneLen(r) > maxReason {
			break
		}
		b = utf8.AppendRune(b, r)
	}
	return string(b)
}

func decodeReason(p []byte) (string, error) {
	s := string(p)
	if err := checkReason(s); err != nil {
		return "", err
	}
	return s, nil
}

// EXIT payload kinds.
const (
	exitStatusKind = 0 // exited: status byte
	exitSignalKind = 1 // killed: flags byte (bit 0: core dumped), signal name
)

func appendExit(b []byte, e *ExitError) ([]byte, error) {
	if e.Signal == "" {
		if e.Status < 0 || e.Status > 255 || e.CoreDumped {
			return b, fmt.Errorf("exit status %d (core dumped %v) cannot be sent", e.Status, e.CoreDumped)
		}
		return append(b, exitStatusKind, byte(e.Status)), nil
	}
	if err := checkSignalName(e.Signal); err != nil || e.Status != 0 {
		return b, fmt.Errorf("signal %s with status %d cannot be sent", quote(e.Signal), e.Status)
	}
	flags := byte(0)
	if e.CoreDumped {
		flags = 1
	}
	return append(append(b, exitSignalKind, flags), e.Signal...), nil
}

func decodeExit(p []byte) (ExitError, error) {
	d := decoder{p: p}
	var e ExitError
	switch kind := d.u8(); kind {
	case exitStatusKind:
		e.Status = int(d.u8())
	case exitSignalKind:
		switch flags := d.u8(); flags {
		case 0:
		case 1:
			e.CoreDumped = true
		default:
			d.fail("unknown EXIT flags 0x%02x", flags)
		}
		if d.err == nil {
			e.Signal = string(d.p)
			d.p = nil
			if err := checkSignalName(e.Signal); err != nil {
				d.fail("%v", err)
			}
		}
	default:
		d.fail("unknown EXIT kind %d", kind)
	}
	return e, d.finish()
}

// checkSignalName: 1 to 32 bytes of capitals, digits and '+' ("INT", "RTMIN+3", or "34" for a
// signal without a name).
func checkSignalName(s string) error {
	if s == "" || len(s) > maxSignalName {
		return fmt.Errorf("signal name of %d bytes is not 1 to %d bytes", len(s), maxSignalName)
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '+') {
			return fmt.Errorf("signal name %s has a forbidden byte 0x%02x", quote(s), c)
		}
	}
	return nil
}

// appendVersionRefusal appends the answer to a version this server does not speak: a 0x00 byte,
// one line of printable ASCII (other bytes become '?'; cut to 1023 bytes) and LF. This form is the
// same in every protocol version.
func appendVersionRefusal(b []byte, text string) []byte {
	b = append(b, 0)
	for i := 0; i < len(text) && i < maxRefusal; i++ {
		c := text[i]
		if c < 0x20 || c > 0x7e {
			c = '?'
		}
		b = append(b, c)
	}
	return append(b, '\n')
}

// readVersionRefusal reads the line after a 0x00 answer.
func readVersionRefusal(r *bufio.Reader) (string, error) {
	var line []byte
	for {
		c, err := r.ReadByte()
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return "", err
		}
		switch {
		case c == '\n':
			return string(line), nil
		case c < 0x20 || c > 0x7e:
			return "", protocolErrorf("byte 0x%02x in the refusal line", c)
		case len(line) == maxRefusal:
			return "", protocolErrorf("refusal line longer than %d bytes", maxRefusal)
		}
		line = append(line, c)
	}
}
