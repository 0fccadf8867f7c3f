package client

import (
	"io"
	"sync"
)

// statusLine is rlogin's one line about a lost connection, on standard error. On a terminal it
// is redrawn in place (carriage return, the text, erase to the end of the line), so an outage of
// an hour with a try every 10 s leaves one line on the screen, not hundreds; the text is cut to
// the terminal's width, since a line that wraps could no longer be redrawn. When standard error is
// not a terminal (a log file) each line is printed whole, once, and only the lines that matter
// (lost, reconnected, gave up) are printed at all: the tries between are noise there.
type statusLine struct {
	out   *outputWriter // the remote output's writer: messages go in turn with it
	w     io.Writer     // standard error
	tty   bool          // w is a terminal: redraw in place
	width func() int    // the terminal's columns now

	mu    sync.Mutex
	shown bool   // a line is on the screen (tty) and not ended
	text  string // what it says
}

// show puts text on the status line: on a terminal it replaces what the line said; otherwise
// it is printed when important.
func (s *statusLine) show(text string, important bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.text = text
	if !s.tty {
		if important {
			s.out.writeLocal(s.w, text+"\n")
		}
		return
	}
	var b []byte
	if !s.shown && !s.out.atLineStart() {
		b = append(b, "\r\n"...) // the line of its own starts below the remote output
	}
	s.shown = true
	b = s.appendLine(b, text)
	s.out.writeLocal(s.w, string(b))
}

// leave moves below the line, if one is shown, for a local message (~^Z's, ~?'s), after which
// repaint draws it again.
func (s *statusLine) leave() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tty && s.shown {
		s.out.writeLocal(s.w, "\r\n")
		s.shown = false
	}
}

// repaint draws the line again after leave, if it has something to say.
func (s *statusLine) repaint() {
	s.mu.Lock()
	text, shown := s.text, s.shown
	s.mu.Unlock()
	if text != "" && !shown {
		s.show(text, false)
	}
}

// end ends the status line with text (which may be ""), which stays on the screen on a line of
// its own; the next output starts below it. With text "" on a terminal, the line is erased and
// the cursor left at its start.
func (s *statusLine) end(text string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	shown := s.shown
	s.shown, s.text = false, ""
	if !s.tty {
		if text != "" {
			s.out.writeLocal(s.w, text+"\n")
		}
		return
	}
	var b []byte
	switch {
	case text != "":
		if !shown && !s.out.atLineStart() {
			b = append(b, "\r\n"...)
		}
		b = append(s.appendLine(b, text), "\r\n"...)
	case shown:
		b = append(b, "\r\x1b[K\r"...) // ends with \r: at the start of a line for atLineStart
	default:
		return
	}
	s.out.writeLocal(s.w, string(b))
}

// appendLine appends the redraw of the line with text, cut to the terminal's width: to column 0,
// the text, erase the rest.
func (s *statusLine) appendLine(b []byte, text string) []byte {
	if w := s.width(); w > 1 {
		text = cutToWidth(text, w-1) // not the last column: some terminals wrap there
	}
	b = append(b, '\r')
	b = append(b, text...)
	return append(b, "\x1b[K"...)
}

// cutToWidth cuts text to at most cols characters (a status text is sanitized: one column each).
func cutToWidth(text string, cols int) string {
	n := 0
	for i := range text {
		if n == cols {
			return text[:i]
		}
		n++
	}
	return text
}
