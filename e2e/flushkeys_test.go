package e2e

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"

	"github.com/rlogin-go/rlogin/internal/linkemu"
)

// beforeFlushKeys is the last release before capability flushkeys (the client's discard of its
// terminal's output at ^C).
const beforeFlushKeys = "e8ff02b"

// pausedReader is a terminal's reader of what appears on the pty that the test can stop: while
// it is paused, the client's output waits in the pty, as it does on a terminal that is slow to
// draw.
type pausedReader struct {
	mu     sync.Mutex
	cond   sync.Cond
	paused bool
	parked bool // the reader waits for resume, between two reads
}

func newPausedReader() *pausedReader {
	p := &pausedReader{}
	p.cond.L = &p.mu
	return p
}

// copyOut is the terminal's copyOut: it copies in reads of all that the master's line discipline
// holds (at most 4095 bytes), each only while not paused. Linux wakes a writer that waits for
// room in the pty only when a read leaves at most 128 bytes there (n_tty_check_unthrottle):
// a reader paused after a smaller read could leave 129-2047 bytes, with rlogin asleep behind them
// though the pty had room again, and waitPending then waited for 2048 in vain (seen with 512-byte
// reads, under load: the reader, slower than rlogin, kept it waiting for room).
func (p *pausedReader) copyOut(w io.Writer, r io.Reader) {
	buf := make([]byte, 4096) // the line discipline's buffer holds at most 4095 bytes
	for {
		p.mu.Lock()
		for p.paused {
			p.parked = true
			p.cond.Wait()
		}
		p.parked = false
		p.mu.Unlock()
		n, err := r.Read(buf)
		_, _ = w.Write(buf[:n])
		if err != nil {
			return
		}
	}
}

// pause stops the reader after its read under way, if one is.
func (p *pausedReader) pause() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.paused = true
}

// waitPending waits until the reader has stopped and at least n bytes of output wait in the
// terminal behind master: what the client wrote that the terminal has not shown.
func (p *pausedReader) waitPending(t *testing.T, master *os.File, n int) {
	t.Helper()
	rc, err := master.SyscallConn() // not Fd, which would make the reader's descriptor blocking
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(shortTimeout)
	for {
		p.mu.Lock()
		parked := p.parked
		p.mu.Unlock()
		pending := 0
		_ = rc.Control(func(fd uintptr) { pending, _ = unix.IoctlGetInt(int(fd), unix.TIOCINQ) })
		if parked && pending >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %d bytes of output in the stopped terminal: reader stopped %v, %d bytes waiting", n, parked, pending)
		}
		time.Sleep(10 * time.Millisecond) // the terminal tells nobody: poll it
	}
}

func (p *pausedReader) resume() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.paused = false
	p.cond.Broadcast()
}

// rloginPausedVia is rloginBinVia for this tree's rlogin, on a terminal whose reader the test
// pauses.
func rloginPausedVia(t *testing.T, d *daemon, link *linkemu.Link, reader *pausedReader) *terminal {
	t.Helper()
	tm := startTerminalWith(t, pty.Winsize{Rows: 24, Cols: 80}, reader.copyOut, clientEnv(d.home),
		filepath.Join(binDir, "rlogin"), "-p", linkPort(t, d, link), "127.0.0.1")
	t.Cleanup(reader.resume) // the terminal's close waits for its reader
	tm.expect(`\(yes/no\)\? `)
	tm.send("yes\r")
	tm.ready()
	tm.send("PS1='PR''OMPT> '\r") // a prompt the echoed command line does not hold
	tm.expectLiteral("PROMPT> ")
	return tm
}

// waitFile waits until the session's shell has created path.
func waitFile(t *testing.T, path, what string) {
	t.Helper()
	waitFor(t, what, func() bool {
		_, err := os.Stat(path)
		return err == nil
	})
}

// TestInterruptFloodDropsPending: a flood interrupted by ^C, across an emulated link, on a
// terminal that has stopped reading (so that what the flood wrote before the ^C is still on its
// way: in the link, rlogin's queue and both ptys): once the terminal reads again, at most
// maxAfterInterrupt bytes come before the prompt, however much was pending, and none of the
// flood after the prompt. Nothing is timed: the shell's trap says when the remote terminal has
// taken the ^C, which rlogin sent after its discard (capability flushkeys). Without that
// discard, the output in rlogin's own pty still comes when the terminal reads again before the
// FLUSH arrives, half a round trip after the trap (seen: 11.8 KB at 100 ms); at 0 ms the
// FLUSH's own discard comes first.
func TestInterruptFloodDropsPending(t *testing.T) {
	for _, rtt := range []time.Duration{0, wanRTT} {
		t.Run(rtt.String(), func(t *testing.T) {
			d := startDaemon(t, newHome(t), "")
			reader := newPausedReader()
			tm := rloginPausedVia(t, d, linkemu.New(linkemu.Profile{Delay: rtt / 2}), reader)
			mark := filepath.Join(t.TempDir(), "interrupted")
			tm.send(fmt.Sprintf("sh -c 'trap \"touch %s; exit 130\" INT; seq 1 100000000'\r", mark))
			tm.expectLiteral("\r\n100000\r\n") // a flood under way
			reader.pause()
			reader.waitPending(t, tm.master, 2048) // and more in the pty's buffers, which flushes
			paused, _ := tm.out.Snapshot()
			tm.send("\x03")
			waitFile(t, mark, "the remote shell's trap of SIGINT")
			reader.resume()
			tm.mark = len(paused)
			tm.expectLiteral("PROMPT> ")
			data, _ := tm.out.Snapshot()
			after := data[len(paused):tm.mark]
			t.Logf("%d bytes between the pause and the prompt, ending %q", len(after), tail(after, 100))
			if len(after) > maxAfterInterrupt {
				t.Errorf("%d bytes of the flood came after the ^C, want at most %d", len(after), maxAfterInterrupt)
			}
			tm.send("echo AFTER$((40+2))\r")
			tm.expectLiteral("AFTER42\r\n")
			tm.expectLiteral("PROMPT> ")
			data, _ = tm.out.Snapshot()
			if seen := data[len(paused)+len(after) : tm.mark]; floodLine.Match(seen) {
				t.Errorf("the flood's output came after the prompt that followed ^C:\n%q", tail(seen, 2000))
			}
			tm.send("exit\r")
			if code := tm.wait(); code != 0 {
				t.Fatalf("rlogin exited %d after exit, want 0", code)
			}
		})
	}
}

// maxAfterInterrupt is the most output of an interrupted flood that may reach a terminal that
// did not read when the user typed ^C, and the prompt after it: what the terminal's master
// already held (a Linux pty's line discipline keeps 4095 bytes that no flush on the slave
// discards), the server's keep (at most 4 KiB, docs/protocol.md §7.3), and the echo and the
// prompt. Without rlogin's discard at the keystroke, the rest of its pty's buffers would come
// too, until the FLUSH a round trip later.
const maxAfterInterrupt = 4095 + 4096 + 128

// floodLine is a line of seq's output.
var floodLine = regexp.MustCompile(`\n[0-9]+\r\n`)

// TestInterruptKeyLosesNothing: a program that reads ^C as a key (signals off, as vim) loses
// none of its output, also what was still in rlogin's own pty when the user typed it: the
// server announced that ^C does not flush once the program turned signals off, before its
// output. The terminal stops reading before the output comes, and the ^C is typed once output
// waits in the terminal; the remote program reads the key after all of its output (the shell's
// marker says when), and then every byte must come, in order.
func TestInterruptKeyLosesNothing(t *testing.T) {
	d := startDaemon(t, newHome(t), "")
	reader := newPausedReader()
	tm := rloginPausedVia(t, d, linkemu.New(linkemu.Profile{Delay: wanRTT / 2}), reader)
	mark := filepath.Join(t.TempDir(), "key")
	tm.send("stty raw -isig -echo; echo STA''RT; dd bs=1 count=1 >/dev/null 2>&1; seq 1 20000; " +
		"dd bs=1 count=1 2>/dev/null | od -An -c; touch " + mark + "; echo DO''NE; stty sane\r")
	tm.expectLiteral("START\n")
	reader.pause()
	start := tm.mark
	tm.send("g") // seq may start: its output waits
	reader.waitPending(t, tm.master, 1)
	tm.send("\x03")
	waitFile(t, mark, "the remote program to read the key")
	reader.resume()
	tm.expectLiteral("DONE\n")
	data, _ := tm.out.Snapshot()
	var want strings.Builder
	for i := 1; i <= 20000; i++ {
		fmt.Fprintf(&want, "%d\n", i) // raw: no \r
	}
	got := string(data[start:tm.mark])
	if !strings.HasPrefix(got, want.String()) {
		i := 0
		for i < len(got) && i < want.Len() && got[i] == want.String()[i] {
			i++
		}
		t.Fatalf("after ^C read as a key, the output differs at byte %d of %d: %q", i, want.Len(), got[max(0, i-40):min(len(got), i+40)])
	}
	if rest := got[want.Len():]; !strings.Contains(rest, "003") || !strings.HasSuffix(rest, "DONE\n") {
		t.Errorf("after seq: %q, want od's ^C (003) and DONE", rest)
	}
	tm.expectLiteral("PROMPT> ")
	tm.send("exit\r")
	if code := tm.wait(); code != 0 {
		t.Fatalf("rlogin exited %d after exit, want 0", code)
	}
}

// TestNewClientServerBeforeFlushKeys: this tree's rlogin, which offers flushkeys, against the
// last rlogind before it, which does not accept it: bulk output arrives exact, and a flood
// interrupted by ^C stops as before (the hold and the FLUSH), across an emulated round trip.
func TestNewClientServerBeforeFlushKeys(t *testing.T) {
	_, oldRlogind := oldRelease(t, beforeFlushKeys)
	d := startDaemonBin(t, newHome(t), oldRlogind)
	tm := rloginVia(t, d, linkemu.New(linkemu.Profile{Delay: wanRTT / 2}))
	bulkExact(t, tm)
	interruptFlood(t, tm)
	tm.send("exit\r")
	if code := tm.wait(); code != 0 {
		t.Fatalf("rlogin exited %d after exit, want 0\n%s", code, d.log.String())
	}
}
