package main

import (
	"bytes"
	"strconv"
)

// The Ctrl-C test floods the terminal with numbered lines (`seq`), so that each byte that reaches
// the terminal after the keystroke can be told apart: a byte of the flood was produced before
// the remote pty saw the interrupt character (the interrupt kills seq, and the line discipline
// signals before it flushes, so seq writes nothing after it saw it); the echoed "^C", the shell's
// newline and its prompt came after. The stale output is the flood's bytes that the terminal
// read after the instant the harness typed ^C, wherever they are in what it read (a flood line
// after the echo counts too).

// floodCommand is what the shell runs for the Ctrl-C test: numbered lines, 1, 2, 3, ..., one a
// line, until the interrupt.
const floodCommand = "seq 1000000000"

// staleCount is the byte-by-byte account of what the terminal read after ^C.
type staleCount struct {
	flood   int64 // bytes of the flood (digits and line ends): the stale output
	inOrder int64 // of them, those that continue what was shown before ^C, up to the first gap
	other   int64 // the rest: the echo of ^C, the shell's newline and prompt
	first   int64 // the number of the first flood line continued or shown after ^C; 0: none
	last    int64 // the number of the last flood line shown (maybe in part); 0: none
	gaps    int   // places where lines are missing between two shown after ^C (a flush dropped them)
}

// countStale attributes every byte of after (what the terminal read from the instant ^C was
// typed until the prompt) to the flood or not. before is what it read just before ^C (at least
// the last two lines): it says where the flood stood, since after may start within a line. The
// flood's lines end in "\r\n" (the remote pty's ONLCR).
func countStale(before, after []byte) staleCount {
	var c staleCount
	// Where the flood stood: the last complete line before the keystroke, and the digits of the
	// line under way.
	next := int64(0) // the number the next complete line is expected to carry; 0: unknown
	var partial []byte
	if bytes.HasSuffix(before, []byte("\r")) && bytes.HasPrefix(after, []byte("\n")) {
		// A line end split between the two reads: the line was complete before.
		before = append(before[:len(before):len(before)], '\n')
		after = after[1:]
		c.flood++
	}
	if i := bytes.LastIndex(before, []byte("\r\n")); i >= 0 {
		partial = before[i+2:]
		prev := before[:i]
		if j := bytes.LastIndex(prev, []byte("\n")); j >= 0 {
			prev = prev[j+1:]
		}
		if n, err := strconv.ParseInt(string(bytes.TrimSuffix(prev, []byte("\r"))), 10, 64); err == nil {
			next = n + 1
		}
	}
	if !allDigits(partial) {
		partial = nil
	}
	rest := after
	for len(rest) > 0 {
		if n := escapeLen(rest); n > 0 {
			// A control sequence of the shell's (bash's "\x1b[?2004h" before its prompt): not
			// the flood, digits and all.
			c.other += int64(n)
			rest = rest[n:]
			continue
		}
		// A run of digits, then what ends it.
		d := 0
		for d < len(rest) && rest[d] >= '0' && rest[d] <= '9' {
			d++
		}
		if d == 0 && len(partial) == 0 {
			// Not the flood: one byte of the echo, the shell's newline or the prompt. A "\r\n"
			// ends a flood line only right after its digits (handled below).
			c.other++
			rest = rest[1:]
			continue
		}
		digits := append(append([]byte(nil), partial...), rest[:d]...)
		partial = nil
		n, err := strconv.ParseInt(string(digits), 10, 64)
		if err != nil {
			c.other += int64(d)
			rest = rest[d:]
			continue
		}
		c.flood += int64(d)
		rest = rest[d:]
		start := c.flood - int64(d) // the flood's bytes before this run
		whole := bytes.HasPrefix(rest, []byte("\r\n"))
		if whole {
			c.flood += 2
			rest = rest[2:]
		} else if next != 0 && bytes.HasPrefix([]byte(strconv.FormatInt(next, 10)), digits) {
			n = next // a line the flush cut short: the start of the one expected
		}
		if c.first == 0 {
			c.first = n
		}
		switch {
		case next == 0 || n == next:
		case whole && len(digits) < len(strconv.FormatInt(next, 10)):
			// The end of a line whose start a flush dropped: what follows is later output.
			if c.gaps == 0 {
				c.inOrder = start
			}
			c.gaps++
			c.last, next = 0, 0
			continue
		case n > next:
			if c.gaps == 0 {
				c.inOrder = start
			}
			c.gaps++
		default:
			// Less than expected: the start of a line the flush cut short joined to the end
			// of a later one ("26" of 265966 and "5438" of 305438 read as 265438); what
			// follows is later output.
			if c.gaps == 0 {
				c.inOrder = start
			}
			c.gaps++
			c.last, next = 0, 0
			continue
		}
		c.last, next = n, n+1
	}
	if c.gaps == 0 {
		c.inOrder = c.flood
	}
	return c
}

// escapeLen is the length of the ANSI control sequence (CSI: ESC [ parameters final) that b
// starts with, or 0.
func escapeLen(b []byte) int {
	if len(b) < 2 || b[0] != 0x1b || b[1] != '[' {
		return 0
	}
	for i := 2; i < len(b); i++ {
		if b[i] >= 0x40 && b[i] <= 0x7e {
			return i + 1
		}
	}
	return len(b)
}

func allDigits(b []byte) bool {
	for _, x := range b {
		if x < '0' || x > '9' {
			return false
		}
	}
	return true
}
