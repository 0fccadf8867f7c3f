package client

import "fmt"

// escapeCmd is a local command typed as the escape character followed by one more character.
type escapeCmd int

const (
	escNone       escapeCmd = iota
	escDisconnect           // ~. or ~^D: close the connection
	escSuspend              // ~^Z: stop rlogin (job control)
	escHelp                 // ~?: list the escapes
)

func (c escapeCmd) String() string {
	switch c {
	case escNone:
		return "none"
	case escDisconnect:
		return "disconnect"
	case escSuspend:
		return "suspend"
	case escHelp:
		return "help"
	}
	return fmt.Sprintf("escapeCmd(%d)", int(c))
}

// Control characters that follow the escape character.
const (
	ctrlD = 0x04 // ~^D disconnects, as ~. does
	ctrlZ = 0x1a // ~^Z suspends
)

// escaper finds escape sequences in typed input, as netkit rlogin and ssh do: the escape character
// is special only at the start of a line (the start of the session, or after \r or \n).
//   - ~. and ~^D disconnect; ~^Z suspends; ~? asks for help: these are not sent.
//   - ~~ sends one ~.
//   - ~ followed by any other character sends both.
//
// Its state carries over between calls, so input split at any point gives the same result.
// The zero value is not usable; use newEscaper.
type escaper struct {
	char    byte // the escape character
	enabled bool
	bol     bool // at the start of a line
	pending bool // the escape character was typed at the start of a line; decided by the next byte
}

func newEscaper(char byte, enabled bool) *escaper {
	return &escaper{char: char, enabled: enabled, bol: true}
}

// scan reads typed input from in, appends the bytes to send to the remote side to dst, and
// returns the extended dst. It stops after the first escape command: cmd is that command and n
// counts the bytes of in consumed, the command included. The caller sends dst, carries out cmd,
// and calls scan again with in[n:]. cmd is escNone when all of in was consumed without a command.
func (e *escaper) scan(dst, in []byte) (out []byte, cmd escapeCmd, n int) {
	if !e.enabled {
		return append(dst, in...), escNone, len(in)
	}
	start := 0 // in[start:i] is plain input not yet copied to dst
	for i := 0; i < len(in); i++ {
		c := in[i]
		if e.pending {
			e.pending = false
			switch c {
			case '.', ctrlD:
				return dst, escDisconnect, i + 1
			case ctrlZ:
				e.bol = true
				return dst, escSuspend, i + 1
			case '?':
				e.bol = true
				return dst, escHelp, i + 1
			case e.char:
				// ~~ sends one escape character: c itself, copied with the run that starts here.
				start = i
				e.bol = false
				continue
			default:
				// Not a command: send the held escape character, then c as usual.
				dst = append(dst, e.char)
				start = i
			}
		} else if e.bol && c == e.char {
			dst = append(dst, in[start:i]...)
			e.pending = true
			e.bol = false
			start = i + 1
			continue
		}
		e.bol = c == '\r' || c == '\n'
	}
	return append(dst, in[start:]...), escNone, len(in)
}

// escapeName shows an escape character as the user types it: "~", "^]", "^?" or "\377".
func escapeName(c byte) string {
	switch {
	case c < 0x20:
		return "^" + string(rune(c+'@'))
	case c == 0x7f:
		return "^?"
	case c >= 0x80:
		return fmt.Sprintf("\\%03o", c)
	}
	return string(rune(c))
}

// escapeHelp is the text ~? prints. The terminal is raw then, so lines end in \r\n.
func escapeHelp(c byte) string {
	e := escapeName(c)
	return "Supported escape sequences:\r\n" +
		" " + e + ".   - terminate connection\r\n" +
		" " + e + "^D  - terminate connection\r\n" +
		" " + e + "^Z  - suspend rlogin\r\n" +
		" " + e + "?   - this message\r\n" +
		" " + e + e + "   - send the escape character by typing it twice\r\n" +
		"(Note that escapes are only recognized immediately after newline.)\r\n"
}
