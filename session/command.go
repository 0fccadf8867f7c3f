package session

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"sync"
	"syscall"
)

// capExec is the capability of remote commands (docs/protocol.md, section 6.2): COMMAND, STDERR
// and SIGNAL frames.
const capExec = "exec"

// reasonNoCommands refuses a command when the ServerConn's caller runs none.
const reasonNoCommands = "this server runs no commands"

// MaxCommandLen is the longest command line a COMMAND frame carries, in bytes: what a 16-bit
// length holds, so that a server may pass it on in such a field (as rlogind's privilege
// separation messages encode their strings).
const MaxCommandLen = 64<<10 - 1

// Command is a command the client asks the server to run in place of a login shell
// (capability exec): the server runs it as the user's shell does "$SHELL -c Line".
//
// Its bounds (docs/protocol.md, "COMMAND"): Line is 1 to MaxCommandLen bytes without NUL.
type Command struct {
	Line string // the command line, for the user's shell's -c
	PTY  bool   // run it on a terminal; without one, its stdin, stdout and stderr are pipes
}

// ErrCommandsUnsupported is Client.Start's error when its Request has a Command and the server
// did not accept capability exec: an older server, which runs no commands. The client has sent
// none of its input then.
var ErrCommandsUnsupported = errors.New("session: the server does not run commands")

// CommandSignals are the signals a client may pass on to a command without a terminal (SIGNAL
// frames), by their names without "SIG": those of RFC 4254's "signal" request that a user's
// program is meant to get from outside.
var commandSignals = []string{"HUP", "INT", "QUIT", "TERM", "KILL", "USR1", "USR2", "ALRM"}

// ValidCommandSignal reports whether a Client may pass signal name (without "SIG": "INT") on to
// a command without a terminal: HUP, INT, QUIT, TERM, KILL, USR1, USR2 or ALRM.
func ValidCommandSignal(name string) bool { return slices.Contains(commandSignals, name) }

// checkCommand is the rule of the COMMAND frame, with the reason.
func checkCommand(c *Command) error {
	switch {
	case c.Line == "":
		return errors.New("empty command")
	case len(c.Line) > MaxCommandLen:
		return fmt.Errorf("command of %d bytes exceeds the limit of %d", len(c.Line), MaxCommandLen)
	case bytes.IndexByte([]byte(c.Line), 0) >= 0:
		return errors.New("command holds a NUL byte")
	}
	return nil
}

// COMMAND flags.
const commandPTY = 0x01 // run on a terminal

// appendCommand appends a COMMAND frame.
func appendCommand(b []byte, c *Command) ([]byte, error) {
	if err := checkCommand(c); err != nil {
		return b, err
	}
	flags := byte(0)
	if c.PTY {
		flags = commandPTY
	}
	b = appendHeader(b, frameCommand, 1+len(c.Line))
	return append(append(b, flags), c.Line...), nil
}

// decodeCommand decodes a COMMAND payload.
func decodeCommand(p []byte) (*Command, error) {
	if len(p) == 0 {
		return nil, errors.New("payload is too short")
	}
	if p[0]&^commandPTY != 0 {
		return nil, fmt.Errorf("unknown COMMAND flags 0x%02x", p[0])
	}
	c := &Command{Line: string(p[1:]), PTY: p[0]&commandPTY != 0}
	if err := checkCommand(c); err != nil {
		return nil, err
	}
	return c, nil
}

// decodeSignal decodes a SIGNAL payload: one of commandSignals.
func decodeSignal(p []byte) (string, error) {
	if !ValidCommandSignal(string(p)) {
		return "", fmt.Errorf("signal %s is not one a client may send", quote(string(p)))
	}
	return string(p), nil
}

// ErrorOutputReader is an optional Terminal method, for a command without a terminal
// (capability exec): ReadErrorOutput reads the command's standard error, which the client gets
// apart from its output, in STDERR frames under the same credit window. It returns io.EOF when
// that stream is over. Serve calls it from a goroutine of its own, and sends EXIT only once the
// command has exited and both streams are over (the Terminal bounds that wait: a background job
// may hold them open).
type ErrorOutputReader interface {
	ReadErrorOutput(b []byte) (int, error)
}

// Signaler is an optional Terminal method, for a command without a terminal (capability exec):
// Signal sends sig to the command, as the client asked with a SIGNAL frame. Serve calls it from
// the goroutine that reads the client's frames; like Hangup, it must do nothing once the command
// is reaped. Without it, SIGNAL frames are ignored.
type Signaler interface {
	Signal(sig syscall.Signal) error
}

// pipedCommand reports whether the session runs a command without a terminal, whose client may
// send SIGNAL and gets STDERR.
func (s *ServerConn) pipedCommand() bool {
	return s.req != nil && s.req.Command != nil && !s.req.Command.PTY
}

// readCommand reads the COMMAND frame that follows a LOGIN that offered exec (the caller checked
// that this server accepts it), into s.req.
func (s *ServerConn) readCommand() error {
	m, err := s.fr.readMessage(func(t frameType) bool { return t == frameCommand })
	if err != nil {
		return err
	}
	s.req.Command = m.cmd
	return nil
}

// lockedWriteConn is a conn whose Writes never interleave: a session with a command without a
// terminal writes the conn from two goroutines (output and error output), each Write one or more
// whole frames.
type lockedWriteConn struct {
	net.Conn
	mu sync.Mutex
}

func (c *lockedWriteConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.Conn.Write(b)
}

// CloseWrite half-closes the conn if it can (see ServerConn.linger).
func (c *lockedWriteConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// readErrorOutput is the pump of a command's standard error: it sends what r reads as STDERR
// frames, as the client's credit allows, until r's end; after the session's end it reads and
// drops. Its end lets waitShell report the command's exit.
func (s *serverSession) readErrorOutput(r ErrorOutputReader) error {
	defer func() {
		s.mu.Lock()
		s.errDone = true
		s.errCond.Broadcast()
		s.mu.Unlock()
	}()
	buf := make([]byte, readChunk)
	var frame []byte
	for {
		n, err := r.ReadErrorOutput(buf)
		if n > 0 {
			frame = s.sendErrorOutput(frame[:0], buf[:n])
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("session: reading the command's error output: %w", err)
		}
	}
}

// sendErrorOutput sends p as STDERR frames as the client's credit allows (dropping the rest if
// the session ends meanwhile), and returns the frame buffer for reuse. It sends what the credit
// allows, not p whole, as sendOutput does with DATA: the client grants credit only a batch at a
// time, so with its window shrunk to a link (down to minQueueWindow) the room left can be less
// than one read of error output, and the credit that would make room comes only after more
// output (docs/protocol.md, section 6.2).
func (s *serverSession) sendErrorOutput(b, p []byte) []byte {
	for len(p) > 0 {
		s.mu.Lock()
		for !s.ending && s.unacked >= s.outputWindowLocked() {
			s.errCond.Wait()
		}
		if s.ending {
			s.mu.Unlock()
			return b
		}
		n := min(len(p), s.outputWindowLocked()-s.unacked)
		s.unacked += n
		s.mu.Unlock()
		b = appendFrame(b[:0], frameStderr, p[:n])
		if _, err := s.sc.conn.Write(b); err != nil {
			s.stop("", fmt.Errorf("session: connection lost: %w", err))
			return b
		}
		p = p[n:]
	}
	return b
}

// waitErrorOutputLocked waits until the error output's pump has sent everything, if there is
// one: EXIT comes after it.
func (s *serverSession) waitErrorOutputLocked() {
	for s.errPump && !s.errDone && !s.ending {
		s.errCond.Wait()
	}
}

// signalCommand passes a SIGNAL frame's signal on to the command.
func (s *serverSession) signalCommand(name string) {
	if sg, ok := s.t.(Signaler); ok {
		if n := signalNumber(name); n > 0 {
			_ = sg.Signal(syscall.Signal(n)) // the command may be gone
		}
	}
}

// withSignal is allowed, and SIGNAL too.
func withSignal(allowed func(frameType) bool) func(frameType) bool {
	return func(t frameType) bool { return t == frameSignal || allowed(t) }
}
