package session

import (
	"bytes"
	"testing"
)

// lateTerminal is a fakeTerminal with a pty master's line discipline as Linux's flush at ^C
// leaves it during a flood: out is what the discipline holds, ready to read (OutputMarker,
// OutputNowReader), and at the flush's report it still holds late, output the flood wrote
// before the flush, followed by the echoed ^C and the prompt.
type lateTerminal struct {
	*fakeTerminal
	late []byte // what the discipline holds at the flush's report
	read int64  // bytes returned so far, under f.mu
}

func (l *lateTerminal) ReadOutput(b []byte) (int, bool, error) {
	n, flushed, err := l.fakeTerminal.ReadOutput(b)
	l.locked(func() {
		l.read += int64(n)
		if flushed {
			l.out = append(l.out, l.late...)
		}
	})
	return n, flushed, err
}

func (l *lateTerminal) ReadOutputNow(b []byte) (n int, flushed bool, err error) {
	l.locked(func() {
		n = copy(b, l.out)
		l.out = l.out[n:]
		l.read += int64(n)
		l.cond.Broadcast()
	})
	return n, false, nil
}

func (l *lateTerminal) OutputMark() (read, held int64, err error) {
	l.locked(func() { read, held = l.read, int64(len(l.out)) })
	return read, held, nil
}

// TestFlushKeepsLateOutputInTheKeep: between the ^C's write and the flush's report, the server
// reads a keep's worth of the flood, and at the report the line discipline still holds 4 KiB
// more of it (a busy machine, seen in e2e TestInterruptFloodDropsPending): both are older than
// the flush, so of the two the client gets at most expectedFlushKeep bytes after the FLUSH
// (its keep count and the DATA after it), and the prompt whole. Before, it got both: twice that.
func TestFlushKeepsLateOutputInTheKeep(t *testing.T) {
	term := &lateTerminal{fakeTerminal: newFakeTerminal(t, "sleep", "3600")}
	term.predicts = true
	const prompt = "^C\r\nPROMPT> "
	term.late = append(bytes.Repeat([]byte{'b'}, 4095), prompt...)
	term.onInput = func(f *fakeTerminal, p []byte) { // under f.mu
		if bytes.IndexByte(p, 3) >= 0 {
			f.out = append(f.out, bytes.Repeat([]byte{'a'}, expectedFlushKeep)...) // read before the report
			late := make(chan struct{})
			close(late)
			f.flushLate = late // reported once out is read
		}
	}
	req := bob
	req.Capabilities = []string{capFlow2}
	peer, res, ans := serveRaw(t, term, req, []string{capFlow2})
	if ans.typ != frameAccept {
		t.Fatalf("answer %v, want ACCEPT", ans.typ)
	}
	interrupt := appendHeader(appendFrame(nil, frameData, []byte{3}), frameSync, 0)
	peer.write(interrupt)

	var after []byte // DATA after the FLUSH
	keep, flushes, synced := 0, 0, false
	for !bytes.HasSuffix(after, []byte(prompt)) || !synced {
		switch m := peer.read(); m.typ {
		case frameData:
			if flushes > 0 {
				after = append(after, m.data...)
			}
		case frameFlush:
			flushes++
			keep = int(m.keep)
		case frameSynced:
			synced = true
		case frameExit, frameClose:
			t.Fatalf("%v before the prompt; output after the FLUSH: %d bytes", m.typ, len(after))
		}
	}
	if flushes != 1 {
		t.Errorf("%d FLUSH frames, want 1", flushes)
	}
	flood := keep + len(after) - len(prompt)
	t.Logf("FLUSH keep %d, then %d bytes of DATA", keep, len(after))
	if flood > expectedFlushKeep {
		t.Errorf("%d bytes of the flood after the FLUSH (keep %d, DATA %d), want at most %d", flood, keep, len(after)-len(prompt), expectedFlushKeep)
	}
	_ = peer.conn.Close()
	waitServed(t, res)
}
