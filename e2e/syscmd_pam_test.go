//go:build pam

package e2e

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/rlogin-go/rlogin/internal/termtest"
	"github.com/rlogin-go/rlogin/keys"
)

// Commands in system mode (issue 13, item 2), with the real binaries: the PAM build's monitor
// runs them as the user, on pipes or (-t) on a pty. Run by `go test -tags pam ./e2e/` as root.

// TestPAMCommand: in system mode a command gives its stdout, stderr and status apart, runs as
// the user, carries 10 MB byte-exact both ways, sees the end of its input, gets a terminal only
// with -t, and gets SIGTERM sent to rlogin; no motd or other PAM message mixes into its output.
func TestPAMCommand(t *testing.T) {
	user, dir, keyFile := privsepUser(t, "rlt-syscmd")
	client := pamCommandServer(t, dir, keyFile, user.Name)
	args := func(a ...string) []string {
		return append([]string{"-i", keyFile, "-l", user.Name, "127.0.0.1"}, a...)
	}

	r := runCommand(t, rloginBin(), client, nil, args("sh", "-c", "'echo out; echo err >&2; exit 5'")...)
	if r.code != 5 || string(r.stdout) != "out\n" || string(r.stderr) != "err\n" {
		t.Errorf("streams: status %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	r = runCommand(t, rloginBin(), client, nil, args("id", "-u")...)
	if r.code != 0 || strings.TrimSpace(string(r.stdout)) != strconv.Itoa(user.UID) {
		t.Errorf("id -u: status %d, stdout %q (want %d), stderr %q", r.code, r.stdout, user.UID, r.stderr)
	}

	data := make([]byte, 10<<20)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	data[len(data)-1] = 'x' // not a newline
	r = runCommand(t, rloginBin(), client, bytes.NewReader(data), args("cat")...)
	if r.code != 0 || sha256.Sum256(r.stdout) != sha256.Sum256(data) {
		t.Errorf("cat: status %d, %d bytes back of %d, stderr %q", r.code, len(r.stdout), len(data), r.stderr)
	}
	r = runCommand(t, rloginBin(), client, strings.NewReader(strings.Repeat("z", 123457)), args("wc", "-c")...)
	if r.code != 0 || strings.TrimSpace(string(r.stdout)) != "123457" {
		t.Errorf("wc -c: status %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	r = runCommand(t, rloginBin(), client, nil, args("kill", "-KILL", "$$")...)
	if r.code != 137 {
		t.Errorf("kill -KILL $$: status %d, want 137; stderr %q", r.code, r.stderr)
	}

	r = runCommand(t, rloginBin(), client, nil, append([]string{"-t"}, args("tty")...)...)
	if r.code != 0 || !regexp.MustCompile(`^/dev/pts/[0-9]+\r?\n$`).Match(r.stdout) {
		t.Errorf("-t tty: status %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	r = runCommand(t, rloginBin(), client, nil, args("tty")...)
	if r.code != 1 || string(r.stdout) != "not a tty\n" {
		t.Errorf("tty: status %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}

	ctx, cancel := context.WithTimeout(context.Background(), shortTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, rloginBin(), append([]string{"-p", client.port}, args(`trap 'echo got TERM; exit 3' TERM; echo ready; sleep 60 & wait`)...)...)
	cmd.Env = clientEnv(client.home)
	out := &termtest.Buffer{}
	cmd.Stdout = out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	mark := 0
	if _, ok := out.Expect(&mark, regexp.MustCompile(`ready\n`), shortTimeout); !ok {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("no ready; output %q", out.String())
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 3 || !strings.Contains(out.String(), "got TERM") {
		t.Errorf("SIGTERM: rlogin %v, output %q; want status 3 after the remote trap", err, out.String())
	}
}

// TestPAMForcedCommand: in system mode (PAM build) an authorized_keys line's options apply as in
// user mode: command= runs in place of the client's command, which it finds in
// SSH_ORIGINAL_COMMAND, and no-pty refuses a terminal.
func TestPAMForcedCommand(t *testing.T) {
	user, dir, keyFile := privsepUser(t, "rlt-sysforced")
	line := `command="echo forced:$SSH_ORIGINAL_COMMAND",no-pty ` + string(keys.MarshalAuthorizedKey(user.Key.Public().(ed25519.PublicKey), "forced"))
	authorized := filepath.Join(user.Home, ".rlogin", "authorized_keys")
	writeFile(t, authorized, line)
	if err := os.Chown(authorized, user.UID, user.GID); err != nil {
		t.Fatal(err)
	}
	client := pamCommandServer(t, dir, keyFile, user.Name)
	r := runCommand(t, rloginBin(), client, nil, "-i", keyFile, "-l", user.Name, "127.0.0.1", "id", "-u")
	if r.code != 0 || string(r.stdout) != "forced:id -u\n" {
		t.Errorf("forced command: status %d, stdout %q (want \"forced:id -u\\n\"), stderr %q", r.code, r.stdout, r.stderr)
	}
	r = runCommand(t, rloginBin(), client, nil, "-t", "-i", keyFile, "-l", user.Name, "127.0.0.1", "tty")
	if r.code != 255 || !strings.Contains(string(r.stderr), "no-pty") {
		t.Errorf("-t with a no-pty key: status %d, stderr %q; want 255 and the no-pty refusal", r.code, r.stderr)
	}
}

// pamCommandServer starts a PAM-built rlogind in system mode (privilege separation, keys only)
// with its configuration in dir, has the client accept its host key with a first command as
// user, and returns what runCommand needs of it: its port, and the client's home.
func pamCommandServer(t *testing.T, dir, keyFile, user string) *daemon {
	t.Helper()
	conf := filepath.Join(dir, "rlogind.conf")
	writeFile(t, conf, "privilege-separation yes\npassword-authentication no\nstop-grace 2s\n")
	port := freePort(t)
	start, logText := systemRlogind(t, pamRlogind(t), conf, port)
	d := start()
	t.Cleanup(func() {
		d.stop(t)
		if t.Failed() {
			t.Logf("rlogind log:\n%s", logText())
		}
	})
	home := newHome(t)
	tm := startTerminal(t, clientEnv(home), rloginBin(), "-i", keyFile, "-l", user, "-p", port, "127.0.0.1", "true")
	tm.expect(`\(yes/no\)\? `)
	tm.send("yes\r")
	if code := tm.wait(); code != 0 {
		t.Fatalf("the first command (host key accepted): exit status %d", code)
	}
	return &daemon{port: port, home: home, log: &termtest.Buffer{}}
}
