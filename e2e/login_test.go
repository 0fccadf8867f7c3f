package e2e

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
	"golang.org/x/crypto/ssh"
)

// clientEnv is the environment of a user at a terminal, with their own HOME.
func clientEnv(home string) []string {
	return withRaceOptions([]string{
		"HOME=" + home,
		"PATH=/usr/local/bin:/usr/bin:/bin",
		"TERM=xterm",
		"LANG=C.UTF-8",
		"LC_TEST=forwarded",
		"NOT_FORWARDED=leak",
	})
}

// rlogin starts the rlogin binary in a fresh terminal against d.
func rlogin(t *testing.T, d *daemon, home string, args ...string) *terminal {
	t.Helper()
	args = append(args, "-p", d.port, "127.0.0.1")
	return startTerminal(t, clientEnv(home), filepath.Join(binDir, "rlogin"), args...)
}

// ready waits until the remote shell runs commands: the typed text echoes "$((40+2))" literally,
// so only the shell's own output matches.
func (tm *terminal) ready() {
	tm.t.Helper()
	tm.send("echo READY$((40+2))\r")
	tm.expect(`READY42`)
}

// login starts the daemon's quick-start setup (one HOME for both ends, as the README's quick start
// does), answers the host-key question and waits for the shell.
func login(t *testing.T, args ...string) (*daemon, *terminal) {
	t.Helper()
	home := newHome(t)
	d := startDaemon(t, home, "")
	tm := rlogin(t, d, home, args...)
	tm.expect(`SHA256:[A-Za-z0-9+/]{43}`)
	tm.expect(`\(yes/no\)\? `)
	tm.send("yes\r")
	tm.ready()
	return d, tm
}

func TestLoginRunsCommand(t *testing.T) {
	d, tm := login(t)
	tm.send("echo sum=$((6*7)) lc=$LC_TEST other=[$NOT_FORWARDED] secret=[$RLOGIND_SECRET]\r")
	tm.expect(`sum=42 lc=forwarded other=\[\] secret=\[\]`)
	tm.send(`case "$0" in -*) echo LOGIN-SHELL;; esac` + "\r")
	tm.expect(`[\r\n]LOGIN-SHELL`)
	tm.send("pwd\r")
	tm.expect(regexpQuote(d.home))
	tm.send("exit\r")
	if code := tm.wait(); code != 0 {
		t.Fatalf("rlogin exited %d after exit, want 0", code)
	}
	// The host key was remembered: a second login asks nothing.
	tm2 := rlogin(t, d, d.home)
	tm2.ready()
	tm2.send("exit 0\r")
	if code := tm2.wait(); code != 0 {
		t.Fatalf("second rlogin exited %d, want 0", code)
	}
	if !strings.Contains(string(tm2.out.String()), "READY42") || strings.Contains(tm2.out.String(), "yes/no") {
		t.Fatalf("second login asked about the host key again:\n%q", tm2.out.String())
	}
	waitFor(t, "the session's processes to be gone", func() bool { return len(d.children()) == 0 })
}

func TestResizeReachesRemote(t *testing.T) {
	_, tm := login(t)
	tm.send("stty size\r")
	tm.expect(`[\r\n]24 80\r`)
	if err := pty.Setsize(tm.master, &pty.Winsize{Rows: 37, Cols: 101}); err != nil {
		t.Fatal(err)
	}
	// The kernel signals rlogin; its window message and the typed command race, so ask until the
	// new size shows.
	waitFor(t, "stty size to show 37 101", func() bool {
		tm.send("stty size\r")
		data, _ := tm.out.Snapshot()
		return bytes.Contains(data[tm.mark:], []byte("\r37 101\r"))
	})
}

func TestCtrlCStopsFlood(t *testing.T) {
	_, tm := login(t)
	tm.send("yes\r")
	tm.expectLiteral("y\r\ny\r\ny\r\ny\r\n")
	// Let the flood fill every buffer on the way before interrupting it.
	tm.readBytes(8 << 20)
	start := time.Now()
	tm.send("\x03")
	tm.send("echo after-$((1+1))\r")
	tm.expectLiteral("after-2")
	elapsed := time.Since(start)
	t.Logf("Ctrl-C during yes: prompt back after %v", elapsed)
	if elapsed > 2*time.Second {
		t.Fatalf("Ctrl-C took %v to get the prompt back; classic rlogin takes 1.6-2.4 s, we must do better", elapsed)
	}
}

func TestExitStatusAndTerminalRestored(t *testing.T) {
	_, tm := login(t)
	tm.send("exit 7\r")
	if code := tm.wait(); code != 7 {
		t.Fatalf("rlogin exited %d, want 7", code)
	}
	if got := tm.termios(); got != tm.initial {
		t.Fatalf("terminal not restored after logout:\nbefore %+v\nafter  %+v", tm.initial, got)
	}
}

// TestEscapeDisconnect: ~. without resume ends the session, as netkit's rlogin does: the shell
// and its job are hung up.
func TestEscapeDisconnect(t *testing.T) {
	d, tm := login(t, "-o", "Resume=no")
	tm.send("sleep 1000\r")
	// Disconnect once sleep runs. A job still between the shell's fork and its exec can take
	// the hangup in the shell's SIGHUP handler and then run unaware; rlogind sweeps the session
	// again when the shell has exited, but a job forked just before can still be in that window
	// (pty's TestHangupReachesLateJob).
	waitFor(t, "sleep to run", func() bool {
		for _, pid := range processesIn(d.home) {
			if comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid)); string(comm) == "sleep\n" {
				return true
			}
		}
		return false
	})
	tm.send("\r~.")
	code := tm.wait()
	t.Logf("rlogin exit status after ~.: %d", code)
	if got := tm.termios(); got != tm.initial {
		t.Fatalf("terminal not restored after ~.:\nbefore %+v\nafter  %+v", tm.initial, got)
	}
	waitFor(t, "the disconnected session's processes to be gone", func() bool { return len(d.children()) == 0 })
}

func TestChangedHostKeyRefused(t *testing.T) {
	home := newHome(t)
	d := startDaemon(t, home, "")
	other, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sshPub, err := ssh.NewPublicKey(other)
	if err != nil {
		t.Fatal(err)
	}
	line := fmt.Sprintf("[127.0.0.1]:%s %s", d.port, ssh.MarshalAuthorizedKey(sshPub))
	writeFile(t, filepath.Join(home, ".rlogin", "known_hosts"), line)
	tm := rlogin(t, d, home)
	tm.expect(`REMOTE HOST IDENTIFICATION HAS CHANGED`)
	tm.expect(`known_hosts`)
	if code := tm.wait(); code != 255 {
		t.Fatalf("rlogin exited %d on a changed host key, want 255", code)
	}
	if strings.Contains(tm.out.String(), "READY") {
		t.Fatal("a shell ran despite the changed host key")
	}
	if got := tm.termios(); got != tm.initial {
		t.Fatalf("terminal not restored:\nbefore %+v\nafter  %+v", tm.initial, got)
	}
}

func TestUnlistedKeyRefused(t *testing.T) {
	d := startDaemon(t, newHome(t), "")
	stranger := newHome(t) // a client whose key is not in the daemon's authorized_keys
	writeFile(t, filepath.Join(stranger, ".rlogin", "known_hosts"), d.hostKeyLine(t))
	tm := rlogin(t, d, stranger)
	tm.expect(`(?i)permission denied`)
	if code := tm.wait(); code != 255 {
		t.Fatalf("rlogin exited %d for an unlisted key, want 255", code)
	}
	if got := tm.termios(); got != tm.initial {
		t.Fatalf("terminal not restored:\nbefore %+v\nafter  %+v", tm.initial, got)
	}
	if !strings.Contains(d.log.String(), "SHA256:") {
		t.Fatalf("daemon log does not name the refused key's fingerprint:\n%s", d.log.String())
	}
}

// TestBinaryBothWays sends 1 MB of random bytes through the session in each direction, with both
// terminals in raw mode and escapes off, and checks they arrive unchanged.
func TestBinaryBothWays(t *testing.T) {
	d, tm := login(t, "-E")
	data := make([]byte, 1<<20)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	// Make sure the sequences that classic rlogin mistakes for window messages are in there.
	copy(data[1000:], "\xff\xffss\x00\x18\x00\x50\x00\x00\x00\x00")
	copy(data[500000:], "\xff\xff\x73\x73")
	sum := sha256.Sum256(data)
	want := hex.EncodeToString(sum[:])

	// Client to remote.
	tm.send("stty raw -echo; echo GO; head -c 1048576 | sha256sum; stty sane\r")
	tm.expect(`GO\n`)
	writeErr := make(chan error, 1)
	go func() {
		_, err := tm.master.Write(data)
		writeErr <- err
	}()
	got := tm.expect(`([0-9a-f]{64})  -`)[1]
	if err := <-writeErr; err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Fatalf("remote received different bytes: sha256 %s, sent %s", got, want)
	}

	// Remote to client.
	writeFile(t, filepath.Join(d.home, "random.bin"), string(data))
	tm.ready()
	tm.send("stty raw -echo; printf %s%s BEG IN; cat random.bin; stty sane\r")
	tm.expectLiteral("BEGIN")
	back := tm.readBytes(len(data))
	if !bytes.Equal(back, data) {
		i := 0
		for i < len(data) && back[i] == data[i] {
			i++
		}
		t.Fatalf("client received different bytes; first difference at offset %d", i)
	}
}

func TestPipedInput(t *testing.T) {
	home := newHome(t)
	d := startDaemon(t, home, "")
	writeFile(t, filepath.Join(home, ".rlogin", "known_hosts"), d.hostKeyLine(t))
	cmd := exec.Command(filepath.Join(binDir, "rlogin"), "-p", d.port, "127.0.0.1")
	cmd.Env = clientEnv(home)
	cmd.Stdin = strings.NewReader("echo piped-$((2+2))\nexit 3\n")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(shortTimeout):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("rlogin with piped input did not finish; output:\n%q", out.String())
	}
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	if code != 3 || !strings.Contains(out.String(), "piped-4") {
		t.Fatalf("piped session: exit %d, output:\n%q\nwant exit 3 and piped-4", code, out.String())
	}
}

// TestShellSignalsDefault starts rlogind with SIGINT and SIGHUP ignored, as `nohup` or `&` in a
// script would, and checks that the user's shell still gets default dispositions: Ctrl-C stops a
// foreground command, and a child of the shell ignores and blocks nothing.
func TestShellSignalsDefault(t *testing.T) {
	home := newHome(t)
	d := startDaemon(t, home, "trap '' INT HUP")
	writeFile(t, filepath.Join(home, ".rlogin", "known_hosts"), d.hostKeyLine(t))
	tm := rlogin(t, d, home)
	tm.ready()
	tm.send("grep -E '^Sig(Ign|Blk)' /proc/self/status | tr -d '\\t' | tr '\\n' ' '; echo\r")
	tm.expect(`SigBlk:0000000000000000 SigIgn:0000000000000000`)
	tm.send("sleep 4242\r")
	// ^C reaches sleep only once the shell has made it the terminal's foreground job.
	waitFor(t, "sleep to be the foreground job of its terminal", func() bool {
		return foregroundProcess(home, "sleep\x004242\x00")
	})
	tm.send("\x03")
	tm.ready() // only once Ctrl-C has stopped sleep
}

// TestTerminalRestored checks the ways out that are not a clean logout.
func TestTerminalRestored(t *testing.T) {
	for _, tc := range []struct {
		name string
		end  func(d *daemon, tm *terminal)
	}{
		{"SIGTERM", func(_ *daemon, tm *terminal) { _ = tm.cmd.Process.Signal(syscall.SIGTERM) }},
		{"SIGHUP", func(_ *daemon, tm *terminal) { _ = tm.cmd.Process.Signal(syscall.SIGHUP) }},
		{"connection reset", func(d *daemon, _ *terminal) { _ = d.cmd.Process.Kill() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Resume off: with it, a reset connection is retried until the server's detach
			// timeout (TestHangupKeepsSession covers SIGHUP with resume).
			d, tm := login(t, "-o", "Resume=no")
			tc.end(d, tm)
			code := tm.wait()
			if code == 0 {
				t.Errorf("rlogin exited 0 after %s, want non-zero", tc.name)
			}
			t.Logf("%s: rlogin exit status %d", tc.name, code)
			if got := tm.termios(); got != tm.initial {
				t.Fatalf("terminal not restored after %s:\nbefore %+v\nafter  %+v", tc.name, tm.initial, got)
			}
		})
	}
}

// foregroundProcess reports whether a process working in dir (or below) with the given /proc
// cmdline runs in the foreground process group of its controlling terminal. (The directory
// tells this test's process from another run's: CI runs the suite as two users at once.)
func foregroundProcess(dir, cmdline string) bool {
	for _, pid := range processesIn(dir) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil || string(b) != cmdline {
			continue
		}
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		// After the command name: state ppid pgrp session tty_nr tpgid ...
		f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
		if len(f) > 5 && f[2] == f[5] {
			return true
		}
	}
	return false
}

// regexpQuote quotes s for use in an expect pattern.
func regexpQuote(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`\.+*?()|[]{}^$`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}
