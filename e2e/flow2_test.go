package e2e

import (
	"bytes"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rlogin-go/rlogin/internal/linkemu"
	"github.com/rlogin-go/rlogin/internal/termtest"
)

// TestFlowAcrossVersions runs what flow control and flush are for, across an emulated round
// trip of wanRTT, between this tree and the releases before it, in both roles: a bulk output
// that must arrive exact, and a flood interrupted by ^C after which the session must go on,
// with none of the flood's output after the shell's prompt. 5a17377 speaks flow2 (window
// growth, SYNC, the client's hold after ^C); 727cdf7 does not, so each side must fall back to
// the fixed window of docs/protocol.md §7.1. Nothing here is timed: the figures of how fast
// and how much stale output are bench/'s (bench/run.sh wan).
func TestFlowAcrossVersions(t *testing.T) {
	newRlogin, newRlogind := filepath.Join(binDir, "rlogin"), filepath.Join(binDir, "rlogind")
	cases := []struct {
		name    string
		release string // "": both ends from this tree
		old     string // which end is the release's: "client" or "server"
	}{
		{"new client, new server", "", ""},
		{"new client, flow2-era server", beforeCommands, "server"},
		{"flow2-era client, new server", beforeCommands, "client"},
		{"new client, pre-flow2 server", beforeCertificates, "server"},
		{"pre-flow2 client, new server", beforeCertificates, "client"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			client, server := newRlogin, newRlogind
			if c.release != "" {
				oldRlogin, oldRlogind := oldRelease(t, c.release)
				if c.old == "client" {
					client = oldRlogin
				} else {
					server = oldRlogind
				}
			}
			d := startDaemonBin(t, newHome(t), server)
			tm := rloginBinVia(t, client, d, linkemu.New(linkemu.Profile{Delay: wanRTT / 2}))
			bulkExact(t, tm)
			interruptFlood(t, tm)
			tm.send("exit\r")
			if code := tm.wait(); code != 0 {
				t.Fatalf("rlogin exited %d after exit, want 0\n%s", code, d.log.String())
			}
		})
	}
}

// startDaemonBin starts the rlogind binary bin as startDaemon starts this tree's: user mode,
// HOME=home, which it bootstraps (a host key, and the home's own rlogin key authorized).
func startDaemonBin(t *testing.T, home, bin string) *daemon {
	t.Helper()
	d := &daemon{home: home, port: freePort(t), log: &termtest.Buffer{}, done: make(chan struct{})}
	d.addr = "127.0.0.1:" + d.port
	d.cmd = exec.Command(bin, "-user-mode", "-config", "none", "-addr", d.addr)
	d.cmd.Env = []string{"HOME=" + home, "PATH=/usr/local/bin:/usr/bin:/bin"}
	d.start(t, `msg="serving logins"`)
	return d
}

// bulkLines is how many lines of seq the bulk output prints: 1.3 MB, several times the fixed
// window of 256 KiB, so that it crosses the link in many windows.
const bulkLines = 200000

// bulkExact prints bulkLines lines of seq and checks every byte that arrives between the
// markers.
func bulkExact(t *testing.T, tm *terminal) {
	t.Helper()
	tm.send("echo BEG$((40+2)); seq " + fmt.Sprint(bulkLines) + "; echo END$((40+2))\r")
	tm.expectLiteral("BEG42\r\n")
	var want bytes.Buffer
	for i := 1; i <= bulkLines; i++ {
		fmt.Fprintf(&want, "%d\r\n", i) // the remote pty's ONLCR
	}
	got := tm.readBytes(want.Len())
	if !bytes.Equal(got, want.Bytes()) {
		i := 0
		for i < len(got) && got[i] == want.Bytes()[i] {
			i++
		}
		t.Fatalf("bulk output differs at byte %d of %d: got %q, want %q", i, want.Len(), tail(got[:min(len(got), i+40)], 80), tail(want.Bytes()[:i+40], 80))
	}
	tm.expectLiteral("END42\r\n")
}

// interruptFlood runs yes, interrupts it with ^C once its output arrives, and checks that the
// shell's prompt comes back and that nothing of the flood follows it: a FLUSH drops what was
// in flight before it, never what comes after, and the client's hold releases what is left
// in order.
func interruptFlood(t *testing.T, tm *terminal) {
	t.Helper()
	tm.send("PS1='PR''OMPT> '\r") // a prompt the echoed command line does not hold
	tm.expectLiteral("PROMPT> ")
	tm.send("yes FLOOD\r")
	tm.expectLiteral("FLOOD\r\nFLOOD\r\nFLOOD\r\n")
	_ = tm.readBytes(256 << 10) // the flood has filled the buffers on the way
	tm.send("\x03")
	start := tm.mark
	tm.expectLiteral("PROMPT> ")
	after := tm.mark
	data, _ := tm.out.Snapshot()
	// The remote terminal echoes ^C when it flushes: what comes before the echo was read from
	// it before the flush, what comes after was written after it (yes runs on until the signal).
	t.Logf("%d bytes between ^C and the prompt, of which %d before the remote terminal's echo of ^C",
		after-start, bytes.LastIndex(data[start:after], []byte("^C")))
	tm.send("echo AFTER$((40+2))\r")
	tm.expectLiteral("AFTER42\r\n")
	tm.expectLiteral("PROMPT> ")
	data, _ = tm.out.Snapshot()
	if seen := string(data[after:tm.mark]); strings.Contains(seen, "FLOOD\r\n") {
		t.Fatalf("the flood's output came after the prompt that followed ^C:\n%q", tail([]byte(seen), 2000))
	}
}
