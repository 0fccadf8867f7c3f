package client

import (
	"io"
	"sync"
)

// maxTypeahead bounds the input held while reconnecting: far more than anyone types blind, and
// a paste beyond it is better lost (and said so) than sent to a shell in an unknown state.
const maxTypeahead = 64 << 10

// typeahead holds what is typed while rlogin reconnects (the input pump reads the terminal only
// for the escapes then, so that ~. always works; without escapes, input is not held but waits in
// the session's Write) and sends it after the resume, in order, from
// a goroutine of its own: the session's Write may wait for credit, and the callback that starts
// it must not.
type typeahead struct {
	mu      sync.Mutex
	holding bool   // input is held: reconnecting, or what was held is still being sent
	sending bool   // the goroutine runs
	held    []byte // typed, not yet sent
	dropped int    // bytes beyond maxTypeahead, since the last report
	w       io.Writer
	wg      sync.WaitGroup // the sending goroutine; wait once the session has ended
}

// hold keeps p to send later if input is being held, and reports whether it did.
func (t *typeahead) hold(p []byte) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.holding {
		return false
	}
	n := min(len(p), maxTypeahead-len(t.held))
	t.held = append(t.held, p[:n]...)
	t.dropped += len(p) - n
	return true
}

// start holds the input from now on.
func (t *typeahead) start() {
	t.mu.Lock()
	t.holding = true
	t.mu.Unlock()
}

// release sends what was held, then lets input through again; it returns the bytes dropped.
func (t *typeahead) release() (dropped int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	dropped, t.dropped = t.dropped, 0
	if t.sending || !t.holding {
		return dropped
	}
	t.sending = true
	t.wg.Add(1)
	go t.send()
	return dropped
}

// send is the goroutine that writes the held input to the session, then stops holding.
func (t *typeahead) send() {
	defer t.wg.Done()
	for {
		t.mu.Lock()
		b := t.held
		t.held = nil
		if len(b) == 0 {
			t.holding, t.sending = false, false
			t.mu.Unlock()
			return
		}
		t.mu.Unlock()
		if _, err := t.w.Write(b); err != nil {
			t.mu.Lock()
			t.held, t.holding, t.sending = nil, false, false // the session is ending
			t.mu.Unlock()
			return
		}
	}
}
