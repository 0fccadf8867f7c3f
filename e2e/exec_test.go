package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rlogin-go/rlogin/internal/sshtest"
	"github.com/rlogin-go/rlogin/internal/termtest"
)

// commandDaemon starts rlogind in user mode with its own HOME, where rlogin, run with the same
// HOME, finds its key authorized (the quick start's bootstrap) and the host key known: a command
// runs without a question.
func commandDaemon(t *testing.T, extra ...string) *daemon {
	t.Helper()
	d := startDaemon(t, newHome(t), "", extra...)
	writeFile(t, filepath.Join(d.home, ".rlogin", "known_hosts"), d.hostKeyLine(t))
	return d
}

// ranCommand is what one run of rlogin without a terminal gave.
type ranCommand struct {
	stdout, stderr []byte
	code           int
	took           time.Duration
}

// runCommand runs bin (the rlogin binary, or an old one) with args against d, with stdin as its
// standard input (nil: /dev/null) and pipes as its standard output and error, as a script runs
// it, and waits for it under the test's watchdog.
func runCommand(t *testing.T, bin string, d *daemon, stdin io.Reader, args ...string) ranCommand {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), shortTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append([]string{"-p", d.port}, args...)...)
	cmd.Env = clientEnv(d.home)
	cmd.Stdin = stdin
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	r := ranCommand{stdout: stdout.Bytes(), stderr: stderr.Bytes(), took: time.Since(start)}
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		t.Fatalf("rlogin %q did not end within %v; stderr:\n%s\nrlogind:\n%s", args, shortTimeout, stderr.Bytes(), d.log.String())
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	case err != nil:
		t.Fatal(err)
	}
	return r
}

func rloginBin() string { return filepath.Join(binDir, "rlogin") }

// TestCommandStreamsAndStatus: `rlogin host sh -c '...'` gives "out" on stdout, "err" on stderr
// and the status 5. The words after the host are joined with spaces, as ssh joins them, so the
// inner quotes reach the remote shell.
func TestCommandStreamsAndStatus(t *testing.T) {
	d := commandDaemon(t)
	r := runCommand(t, rloginBin(), d, nil, "127.0.0.1", "sh", "-c", "'echo out; echo err >&2; exit 5'")
	if r.code != 5 || string(r.stdout) != "out\n" || string(r.stderr) != "err\n" {
		t.Fatalf("status %d, stdout %q, stderr %q; want 5, \"out\\n\", \"err\\n\"\n%s", r.code, r.stdout, r.stderr, d.log.String())
	}
}

// TestCommandBulk: 100 MB of random bytes (every byte value, no newline at the end) through
// `rlogin host cat` come back with the same SHA-256; 100 MB the other way from the remote side.
func TestCommandBulk(t *testing.T) {
	d := commandDaemon(t)
	data := make([]byte, 100<<20)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	data[len(data)-1] = 'x' // not a newline
	r := runCommand(t, rloginBin(), d, bytes.NewReader(data), "127.0.0.1", "cat")
	if r.code != 0 || sha256.Sum256(r.stdout) != sha256.Sum256(data) {
		t.Fatalf("status %d, %d bytes back, SHA-256 equal %v; stderr %q", r.code, len(r.stdout), sha256.Sum256(r.stdout) == sha256.Sum256(data), r.stderr)
	}
	t.Logf("100 MB through rlogin host cat in %v", r.took)
	r = runCommand(t, rloginBin(), d, nil, "127.0.0.1", "head", "-c", "100000000", "/dev/zero")
	if r.code != 0 || len(r.stdout) != 100000000 || bytes.IndexFunc(r.stdout, func(c rune) bool { return c != 0 }) >= 0 {
		t.Fatalf("status %d, %d bytes; stderr %q", r.code, len(r.stdout), r.stderr)
	}
	t.Logf("100 MB from rlogin host head -c in %v", r.took)
}

// TestCommandTar: `tar c dir | rlogin host tar x -C dst` reproduces the tree.
func TestCommandTar(t *testing.T) {
	d := commandDaemon(t)
	src := t.TempDir()
	binary := make([]byte, 1<<20)
	if _, err := rand.Read(binary); err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{"a.txt": []byte("hello\n"), "sub/b.bin": binary, "sub/deeper/empty": nil}
	for name, content := range files {
		writeFile(t, filepath.Join(src, "tree", name), string(content))
	}
	tarball, err := exec.Command("tar", "c", "-C", src, "tree").Output()
	if err != nil {
		t.Fatal(err)
	}
	dst := t.TempDir()
	r := runCommand(t, rloginBin(), d, bytes.NewReader(tarball), "127.0.0.1", "tar", "x", "-C", dst)
	if r.code != 0 {
		t.Fatalf("status %d; stderr %q", r.code, r.stderr)
	}
	for name, content := range files {
		got, err := os.ReadFile(filepath.Join(dst, "tree", name))
		if err != nil || !bytes.Equal(got, content) {
			t.Errorf("%s: %d bytes, %v; want %d bytes", name, len(got), err, len(content))
		}
	}
}

// TestCommandStdinEOF: the end of rlogin's input is the command's: wc -c counts and exits.
func TestCommandStdinEOF(t *testing.T) {
	d := commandDaemon(t)
	r := runCommand(t, rloginBin(), d, strings.NewReader(strings.Repeat("z", 123457)), "127.0.0.1", "wc", "-c")
	if r.code != 0 || strings.TrimSpace(string(r.stdout)) != "123457" {
		t.Fatalf("status %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	// -n: standard input from /dev/null, whatever rlogin's is.
	r = runCommand(t, rloginBin(), d, strings.NewReader("not read"), "-n", "127.0.0.1", "wc", "-c")
	if r.code != 0 || strings.TrimSpace(string(r.stdout)) != "0" {
		t.Fatalf("-n: status %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
}

// TestCommandKilled: a command killed by SIGKILL gives 137.
func TestCommandKilled(t *testing.T) {
	d := commandDaemon(t)
	r := runCommand(t, rloginBin(), d, nil, "127.0.0.1", "kill", "-KILL", "$$")
	if r.code != 137 {
		t.Fatalf("status %d, want 137; stderr %q", r.code, r.stderr)
	}
}

// TestCommandSignal: SIGTERM to rlogin reaches the remote command, which traps it.
func TestCommandSignal(t *testing.T) {
	d := commandDaemon(t)
	ctx, cancel := context.WithTimeout(context.Background(), shortTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, rloginBin(), "-p", d.port, "127.0.0.1", `trap 'echo got TERM; exit 3' TERM; echo ready; sleep 60 & wait`)
	cmd.Env = clientEnv(d.home)
	out := &termtest.Buffer{}
	cmd.Stdout = out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	mark := 0
	if _, ok := out.Expect(&mark, regexp.MustCompile(`ready\n`), shortTimeout); !ok {
		t.Fatalf("no ready; output %q", out.String())
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 3 || !strings.Contains(out.String(), "got TERM") {
		t.Fatalf("rlogin: %v, output %q; want status 3 after the remote trap", err, out.String())
	}
}

// TestCommandTerminal: with -t the command runs on a terminal, without it on none.
func TestCommandTerminal(t *testing.T) {
	d := commandDaemon(t)
	r := runCommand(t, rloginBin(), d, nil, "-t", "127.0.0.1", "tty")
	if r.code != 0 || !regexp.MustCompile(`^/dev/pts/[0-9]+\r?\n$`).Match(r.stdout) {
		t.Errorf("-t: status %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	r = runCommand(t, rloginBin(), d, nil, "127.0.0.1", "tty")
	if r.code != 1 || string(r.stdout) != "not a tty\n" {
		t.Errorf("without -t: status %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
}

// TestForcedCommand: a key restricted with command= runs only its command, whatever the client
// asks, which the command sees in SSH_ORIGINAL_COMMAND; no-pty refuses -t; a from= that does not
// match refuses the key.
func TestForcedCommand(t *testing.T) {
	sshtest.Need(t, "ssh-keygen")
	d := commandDaemon(t)
	key := filepath.Join(t.TempDir(), "backup_key")
	sshtest.Keygen(t, key, "")
	pub, err := os.ReadFile(key + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	authorized := filepath.Join(d.home, ".rlogin", "authorized_keys")
	set := func(options string) {
		writeFile(t, authorized, options+" "+string(pub))
	}

	set(`command="echo forced: [$SSH_ORIGINAL_COMMAND]",no-pty`)
	r := runCommand(t, rloginBin(), d, nil, "-i", key, "127.0.0.1", "rm", "-rf", "/nonexistent")
	if r.code != 0 || string(r.stdout) != "forced: [rm -rf /nonexistent]\n" {
		t.Errorf("forced command: status %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	r = runCommand(t, rloginBin(), d, nil, "-i", key, "-t", "127.0.0.1", "tty")
	if r.code != 255 || !strings.Contains(string(r.stderr), "no-pty") {
		t.Errorf("-t with no-pty: status %d, stderr %q", r.code, r.stderr)
	}

	set(`from="192.0.2.0/24"`)
	r = runCommand(t, rloginBin(), d, nil, "-i", key, "127.0.0.1", "true")
	if r.code != 255 || !strings.Contains(string(r.stderr), "permission denied") {
		t.Errorf("from= not matching: status %d, stderr %q", r.code, r.stderr)
	}
	set(`from="10.0.0.1,127.0.0.*"`)
	r = runCommand(t, rloginBin(), d, nil, "-i", key, "127.0.0.1", "echo", "in")
	if r.code != 0 || string(r.stdout) != "in\n" {
		t.Errorf("from= matching: status %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
}

// TestCommandOldServer: an rlogind from before commands logs the client in, and the client,
// seeing that it does not run commands, says so and exits 255 without sending its input.
func TestCommandOldServer(t *testing.T) {
	for _, commit := range []string{beforeCommands, beforeCertificates} {
		t.Run(commit, func(t *testing.T) {
			_, oldRlogind := oldRelease(t, commit)
			d := &daemon{home: newHome(t), port: freePort(t), log: &termtest.Buffer{}, done: make(chan struct{})}
			d.addr = "127.0.0.1:" + d.port
			d.cmd = exec.Command(oldRlogind, "-user-mode", "-config", "none", "-addr", d.addr)
			d.cmd.Env = []string{"HOME=" + d.home, "PATH=/usr/local/bin:/usr/bin:/bin"}
			d.start(t, `msg="serving logins"`)
			writeFile(t, filepath.Join(d.home, ".rlogin", "known_hosts"), d.hostKeyLine(t))
			r := runCommand(t, rloginBin(), d, strings.NewReader("secret input"), "127.0.0.1", "cat")
			want := "rlogin: 127.0.0.1's rlogind does not run commands (too old): upgrade it, or log in without a command\n"
			if r.code != 255 || string(r.stderr) != want || len(r.stdout) != 0 {
				t.Errorf("status %d, stdout %q, stderr %q; want 255 and %q", r.code, r.stdout, r.stderr, want)
			}
			waitFor(t, "the old rlogind to log the session's end", func() bool { return strings.Contains(d.log.String(), "session ended") })
			if strings.Contains(d.log.String(), "secret input") {
				t.Errorf("the old server saw the input:\n%s", d.log.String())
			}
		})
	}
}

// TestOldClientLogsIn: an rlogin from before commands (which never offers exec) logs in to this
// rlogind as before.
func TestOldClientLogsIn(t *testing.T) {
	oldRlogin, _ := oldRelease(t, beforeCommands)
	d := commandDaemon(t)
	tm := startTerminal(t, clientEnv(d.home), oldRlogin, "-p", d.port, "127.0.0.1")
	tm.ready()
	tm.send("exit 7\r")
	if code := tm.wait(); code != 7 {
		t.Fatalf("exit status %d, want 7\n%s", code, d.log.String())
	}
}

// TestCommandSystemModeRefused: rlogind as the system service runs no commands yet (login(1)
// starts the shell there; with privilege separation the monitor starts a login shell only), and
// says so; rlogin exits 255 with the reason.
func TestCommandSystemModeRefused(t *testing.T) {
	user, dir, keyFile := privsepUser(t, "rlt-exec-sys")
	for _, tc := range []struct{ name, conf, reason string }{
		{"login(1)", "privilege-separation no\npassword-authentication no\n", "this rlogind runs commands only in user mode, not for system logins"},
		{"privilege separation", "privilege-separation yes\npassword-authentication no\n", "this server runs no commands"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conf := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-")+".conf")
			writeFile(t, conf, tc.conf)
			port := freePort(t)
			start, _ := systemRlogind(t, filepath.Join(binDir, "rlogind"), conf, port)
			d := start()
			defer d.stop(t)
			tm := startTerminal(t, clientEnv(newHome(t)), rloginBin(), "-i", keyFile, "-l", user.Name, "-p", port, "127.0.0.1", "id")
			tm.expect(`\(yes/no\)\? `)
			tm.send("yes\r")
			tm.expect(regexp.QuoteMeta(tc.reason))
			if code := tm.wait(); code != 255 {
				t.Errorf("exit status %d, want 255", code)
			}
		})
	}
}

// TestCommandOutputClosed: when what reads rlogin's output goes away (`rlogin host yes | head`),
// rlogin exits quietly with 141, as a local command killed by SIGPIPE.
func TestCommandOutputClosed(t *testing.T) {
	d := commandDaemon(t)
	ctx, cancel := context.WithTimeout(context.Background(), shortTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, rloginBin(), "-p", d.port, "127.0.0.1", "yes")
	cmd.Env = clientEnv(d.home)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line := make([]byte, 2)
	if _, err := io.ReadFull(out, line); err != nil || string(line) != "y\n" {
		t.Fatalf("first line %q, %v", line, err)
	}
	_ = out.Close()
	err = cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 141 || stderr.Len() != 0 {
		t.Fatalf("rlogin: %v, stderr %q; want status 141 and nothing said", err, stderr.String())
	}
}
