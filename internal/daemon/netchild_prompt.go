package daemon

import (
	"bytes"
	"io"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/rlogin-go/rlogin/internal/privsep"
	"github.com/rlogin-go/rlogin/pty"
	"github.com/rlogin-go/rlogin/session"
	"github.com/rlogin-go/rlogin/session/classic"
)

// The net child's side of a login whose PAM conversation the monitor relays (a password, or a
// message of the PAM stack): the session is accepted at once (the protocol's ACCEPT, or the
// classic "\0"), the monitor's PROMPTs and INFOs are written to the client as terminal output,
// and the answer is read from the client's input, line by line, as login(1) did on the
// terminal. So every client, old and new, secure and classic, sees what it always saw. When the
// monitor's ACCEPT brings the session's pty, the same terminal serves it; when it refuses, the
// client reads the reason and the session ends with status 255.

// maxTypeahead bounds the input kept while no prompt waits for it (typed before the prompt is
// shown, or after the answer until the shell runs), which then goes to the prompt or the shell.
const maxTypeahead = 4 << 10

// statusRefused is the exit status of a session that never started: rlogin's status for a
// login that failed.
const statusRefused = 255

// Line editing keys while a prompt waits for its answer.
const (
	keyInterrupt = 0x03 // ^C: give up
	keyEOF       = 0x04 // ^D: give up
	keyBackspace = 0x08 // ^H
	keyKill      = 0x15 // ^U: erase the line
	keyDelete    = 0x7f
)

// A netTerminal is the terminal the net child serves, for either protocol: the session's pty
// as the monitor handed it over (*pty.Attached), or a loginTerminal in front of it.
type netTerminal interface {
	session.Terminal
	session.StatusWaiter
	classic.Terminal
}

var (
	_ netTerminal = (*pty.Attached)(nil)
	_ netTerminal = (*loginTerminal)(nil)
)

// A loginTerminal serves the client during the monitor's PAM conversation, then the session's
// pty once the monitor hands it over. Its watch goroutine reads the monitor's messages until
// then; its methods may be called as session.Terminal's and classic.Terminal's are.
type loginTerminal struct {
	ch       *privsep.Channel
	onAttach func()                            // called once the pty is here: the login's deadline ends
	dispatch func(privsep.Message, []*os.File) // the monitor's messages in the session but EXITED (newRemoteShell), or nil
	watching sync.WaitGroup

	mu        sync.Mutex
	changed   chan struct{} // closed and replaced at each change ReadOutput and Wait wait for
	out       []byte        // text for the client
	line      []byte        // the answer being typed
	prompting bool          // a PROMPT waits for its answer
	echo      bool          // its answer is shown as it is typed
	skipLF    bool          // the last byte was a CR that ended an answer: a LF after it belongs to it
	typeahead []byte        // input while no prompt waits for it
	size      *pty.Size     // the last size asked for before the pty came
	term      *pty.Attached // the session's pty, once the monitor accepted the login
	outRead   int64         // output taken from out (the pty counts its own: OutputMark)
	ended     bool          // refused, given up or cut off: no session; the output ends after out
	closed    bool
}

// newLoginTerminal returns the terminal of a login whose first answer from the monitor was
// first (a PROMPT or an INFO); it reads the rest of the monitor's messages in a goroutine that
// Close waits for, and that ends at the monitor's ACCEPT or REFUSE. Once the session runs, its
// shell (startRemoteShell) reads them, and passes those but EXITED to dispatch (if not nil).
func newLoginTerminal(ch *privsep.Channel, first privsep.Message, onAttach func(), dispatch func(privsep.Message, []*os.File)) *loginTerminal {
	t := &loginTerminal{ch: ch, onAttach: onAttach, dispatch: dispatch, changed: make(chan struct{})}
	t.watching.Go(func() { t.watch(first) })
	return t
}

// watch handles the monitor's messages until the session starts or the login ends.
func (t *loginTerminal) watch(msg privsep.Message) {
	var files []*os.File
	for {
		if t.handle(msg, files) {
			return
		}
		var err error
		if msg, files, err = t.ch.Receive(); err != nil {
			t.end("") // the monitor is gone, or Close cut the wait short
			return
		}
	}
}

// handle acts on one message of the monitor, and reports whether the conversation is over.
func (t *loginTerminal) handle(msg privsep.Message, files []*os.File) (over bool) {
	switch m := msg.(type) {
	case *privsep.Prompt:
		t.mu.Lock()
		t.out = append(t.out, terminalText(m.Text)...)
		t.prompting, t.echo, t.line, t.skipLF = true, m.Echo, t.line[:0], false
		pending := t.typeahead
		t.typeahead = nil
		answers := t.inputLocked(pending)
		t.notifyLocked()
		t.mu.Unlock()
		return !t.answer(answers)
	case *privsep.Info:
		t.mu.Lock()
		t.out = append(t.out, terminalText(m.Text)...)
		t.out = append(t.out, "\r\n"...)
		t.notifyLocked()
		t.mu.Unlock()
		return false
	case *privsep.Refuse:
		t.end(m.Reason)
		return true
	case *privsep.Accept:
		t.attach(files[0])
		return true
	}
	t.end("") // out of order: nothing the monitor would send
	return true
}

// attach serves the session's pty master from now on.
func (t *loginTerminal) attach(master *os.File) {
	shell := startRemoteShell(t.ch, nil, t.dispatch) // reads the monitor's messages from now on
	term, err := pty.Attach(master, shell)
	if err != nil {
		shell.Kill()
		t.end("")
		return
	}
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		shell.Hangup() // the client left as the session started
		_ = term.Close()
		return
	}
	t.term = term
	size, pending := t.size, t.typeahead
	t.typeahead = nil
	t.notifyLocked()
	t.mu.Unlock()
	t.onAttach()
	if size != nil {
		_ = term.Resize(*size) // best effort, as any resize
	}
	if len(pending) > 0 {
		_, _ = term.Write(pending)
	}
}

// end ends a login that has no session: the client reads reason, if any, and then the end of
// the output and status 255.
func (t *loginTerminal) end(reason string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.ended || t.term != nil {
		return
	}
	t.ended, t.prompting = true, false
	if reason != "" {
		t.out = append(t.out, terminalText(reason)...)
		t.out = append(t.out, "\r\n"...)
	}
	t.notifyLocked()
}

// answer sends answers to the monitor, and reports whether it could.
func (t *loginTerminal) answer(answers []string) bool {
	for _, a := range answers {
		if err := t.ch.Send(&privsep.Answer{Text: a}); err != nil {
			t.end("")
			return false
		}
	}
	return true
}

// inputLocked edits the answer with the client's input b, as a terminal in canonical mode
// would, and returns the answers it completed (at most one per PROMPT). Input while no prompt
// waits goes to the typeahead.
func (t *loginTerminal) inputLocked(b []byte) (answers []string) {
	for i, c := range b {
		if t.ended {
			return answers
		}
		if !t.prompting {
			if t.skipLF && c == '\n' {
				t.skipLF = false
				continue
			}
			t.skipLF = false
			rest := b[i:]
			t.typeahead = append(t.typeahead, rest[:min(len(rest), maxTypeahead-len(t.typeahead))]...)
			return answers
		}
		switch c {
		case '\r', '\n':
			answers = append(answers, string(t.line))
			t.line, t.prompting, t.skipLF = t.line[:0], false, c == '\r'
			t.out = append(t.out, "\r\n"...)
		case keyBackspace, keyDelete:
			if len(t.line) > 0 {
				_, size := utf8.DecodeLastRune(t.line)
				t.line = t.line[:len(t.line)-size]
				if t.echo {
					t.out = append(t.out, "\b \b"...)
				}
			}
		case keyKill:
			if t.echo {
				t.out = append(t.out, bytes.Repeat([]byte("\b \b"), utf8.RuneCount(t.line))...)
			}
			t.line = t.line[:0]
		case keyInterrupt, keyEOF:
			t.out = append(t.out, "\r\n"...)
			t.ended, t.prompting = true, false
		default:
			if c < ' ' || len(t.line) >= privsep.MaxAnswerLen {
				continue // no control characters in an answer, and no more than PAM takes
			}
			t.line = append(t.line, c)
			if t.echo {
				t.out = append(t.out, c)
			}
		}
	}
	return answers
}

// notifyLocked wakes whoever waits for a change.
func (t *loginTerminal) notifyLocked() {
	close(t.changed)
	t.changed = make(chan struct{})
}

// terminalText is text from the monitor as a raw terminal shows it: each LF a CR LF.
func terminalText(s string) string { return strings.ReplaceAll(s, "\n", "\r\n") }

// output waits until there is output for the client, the pty is here, or there is no more
// output, and returns the output (taken), or the pty, or io.EOF or os.ErrClosed.
func (t *loginTerminal) output(b []byte, wait bool) (int, *pty.Attached, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for {
		switch {
		case t.closed:
			return 0, nil, os.ErrClosed
		case len(t.out) > 0:
			n := copy(b, t.out)
			t.out = t.out[:copy(t.out, t.out[n:])]
			t.outRead += int64(n)
			return n, nil, nil
		case t.term != nil:
			return 0, t.term, nil
		case t.ended:
			return 0, nil, io.EOF
		case !wait:
			return 0, nil, nil
		}
		changed := t.changed
		t.mu.Unlock()
		<-changed
		t.mu.Lock()
	}
}

// ReadOutput implements session.Terminal.
func (t *loginTerminal) ReadOutput(b []byte) (int, bool, error) {
	n, term, err := t.output(b, true)
	if term != nil {
		return term.ReadOutput(b)
	}
	return n, false, err
}

// ReadOutputNow implements session.OutputNowReader.
func (t *loginTerminal) ReadOutputNow(b []byte) (int, bool, error) {
	n, term, err := t.output(b, false)
	if term != nil {
		return term.ReadOutputNow(b)
	}
	return n, false, err
}

// OutputMark implements session.OutputMarker, in one count for the whole session (Serve takes
// its start before the pty is here): the output read is the prompts' text taken, then the pty's
// (its count starts at its Attach); what is held is the text not taken yet, which ReadOutput
// returns before any of the pty's, and the pty's. Nothing is added to out once the pty is here,
// so while out is not empty the pty is not read, and the two counts taken under t.mu agree.
func (t *loginTerminal) OutputMark() (read, held int64, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	read, held = t.outRead, int64(len(t.out))
	if t.term == nil {
		return read, held, nil
	}
	r, h, err := t.term.OutputMark()
	if err != nil {
		return 0, 0, err
	}
	return read + r, held + h, nil
}

// ReadPacket implements classic.Terminal.
func (t *loginTerminal) ReadPacket(b []byte) (int, pty.Status, error) {
	n, term, err := t.output(b, true)
	if term != nil {
		return term.ReadPacket(b)
	}
	return n, 0, err
}

// input returns the pty, if it is here, or edits the answer with b.
func (t *loginTerminal) input(b []byte) (*pty.Attached, error) {
	t.mu.Lock()
	if t.term != nil {
		t.mu.Unlock()
		return t.term, nil
	}
	if t.closed {
		t.mu.Unlock()
		return nil, os.ErrClosed
	}
	answers := t.inputLocked(b)
	t.notifyLocked()
	t.mu.Unlock()
	t.answer(answers)
	return nil, nil
}

// Write implements session.Terminal: input for the prompt until the pty is here.
func (t *loginTerminal) Write(b []byte) (int, error) {
	return t.write(b, (*pty.Attached).Write)
}

// TryWrite implements session.TryWriter: an answer being typed never waits.
func (t *loginTerminal) TryWrite(b []byte) (int, error) {
	return t.write(b, (*pty.Attached).TryWrite)
}

// write is Write and TryWrite, which write to the pty with w once it is here.
func (t *loginTerminal) write(b []byte, w func(*pty.Attached, []byte) (int, error)) (int, error) {
	term, err := t.input(b)
	switch {
	case term != nil:
		return w(term, b)
	case err != nil:
		return 0, err
	}
	return len(b), nil
}

// FlushesOutput implements session.FlushPredictor: nothing flushes during the prompt.
func (t *loginTerminal) FlushesOutput(b []byte) bool {
	if term := t.attached(); term != nil {
		return term.FlushesOutput(b)
	}
	return false
}

// AppendFlushKeys implements session.FlushKeyer: none during the prompt.
func (t *loginTerminal) AppendFlushKeys(keys []byte) []byte {
	if term := t.attached(); term != nil {
		return term.AppendFlushKeys(keys)
	}
	return keys
}

// attached returns the pty, or nil before it is here.
func (t *loginTerminal) attached() *pty.Attached {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.term
}

// Resize implements session.Terminal; a size asked for before the pty is here is set on it then.
func (t *loginTerminal) Resize(sz pty.Size) error {
	t.mu.Lock()
	term := t.term
	if term == nil {
		t.size = &sz
	}
	t.mu.Unlock()
	if term != nil {
		return term.Resize(sz)
	}
	return nil
}

// SendEOF implements session.Terminal: the end of the client's input gives up the login.
func (t *loginTerminal) SendEOF() error {
	if term := t.attached(); term != nil {
		return term.SendEOF()
	}
	t.end("")
	return nil
}

// Hangup implements session.Terminal: a client that leaves gives up the login.
func (t *loginTerminal) Hangup() {
	if term := t.attached(); term != nil {
		term.Hangup()
		return
	}
	t.end("")
}

// Kill implements session.Terminal.
func (t *loginTerminal) Kill() {
	if term := t.attached(); term != nil {
		term.Kill()
		return
	}
	t.end("")
}

// settled waits until the session started (it returns the pty) or the login ended (nil).
func (t *loginTerminal) settled() *pty.Attached {
	t.mu.Lock()
	defer t.mu.Unlock()
	for t.term == nil && !t.ended && !t.closed {
		changed := t.changed
		t.mu.Unlock()
		<-changed
		t.mu.Lock()
	}
	return t.term
}

// WaitStatus implements session.StatusWaiter: the shell's status, or 255 for a login that
// never started its session.
func (t *loginTerminal) WaitStatus() (syscall.WaitStatus, error) {
	if term := t.settled(); term != nil {
		return term.WaitStatus()
	}
	return syscall.WaitStatus(statusRefused << 8), nil
}

// Wait implements session.Terminal (see pty.Attached.Wait: the state is nil).
func (t *loginTerminal) Wait() (*os.ProcessState, error) {
	_, err := t.WaitStatus()
	return nil, err
}

// Close implements session.Terminal. During the conversation it also ends the wait for the
// monitor's messages, and returns once the goroutine that waited has.
func (t *loginTerminal) Close() error {
	t.mu.Lock()
	term := t.term
	t.closed = true
	t.notifyLocked()
	t.mu.Unlock()
	if term != nil {
		return term.Close()
	}
	_ = t.ch.SetReadDeadline(time.Unix(1, 0)) // the watch's Receive returns; the child ends anyway
	t.watching.Wait()                         // an ACCEPT it had read found the terminal closed
	return nil
}
