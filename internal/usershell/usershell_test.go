package usershell

import (
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rlogin-go/rlogin/pty"
)

func TestShellEnvExact(t *testing.T) {
	env := Env("alice", "/home/alice", "/bin/zsh", "xterm", []string{"LANG=C"})
	want := []string{"HOME=/home/alice", "USER=alice", "LOGNAME=alice", "SHELL=/bin/zsh", "PATH=" + DefaultPath, "TERM=xterm", "LANG=C"}
	if strings.Join(env, "|") != strings.Join(want, "|") {
		t.Fatalf("Env = %q, want %q", env, want)
	}
}

func TestParsePasswdShell(t *testing.T) {
	const passwd = `root:x:0:0:root:/root:/bin/bash
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
broken line
short:x:5
alice:x:1000:1000:Alice,,,:/home/alice:/usr/bin/zsh
noshell:x:1001:1001::/home/noshell:
relative:x:1002:1002::/home/r:zsh
dup:x:1000:1000::/home/dup:/bin/false
`
	for _, tc := range []struct {
		uid  int
		want string
	}{
		{0, "/bin/bash"},
		{1000, "/usr/bin/zsh"}, // first entry wins
		{1001, fallbackShell},
		{1002, fallbackShell},
		{4242, fallbackShell},
		{5, fallbackShell},
	} {
		got, err := parsePasswdShell(strings.NewReader(passwd), tc.uid)
		if err != nil || got != tc.want {
			t.Errorf("uid %d: %q, %v; want %q", tc.uid, got, err, tc.want)
		}
	}
	if shell, err := Lookup("/nonexistent/passwd", 0); err == nil || shell != fallbackShell {
		t.Errorf("missing passwd file: %q, %v; want the fallback and an error", shell, err)
	}
}

// TestStart: the shell runs as a login shell, in the home directory, with exactly Env's
// environment; without a home directory it starts in /.
func TestStart(t *testing.T) {
	home := t.TempDir()
	for _, tc := range []struct {
		home, wantDir string
	}{
		{home, home},
		{filepath.Join(home, "missing"), "/"},
	} {
		var logged strings.Builder
		log := slog.New(slog.NewTextHandler(&logged, nil))
		sh := Shell{User: "alice", Home: tc.home, Path: "/bin/sh"}
		cmd, p, err := Start(log, sh, "xterm", []string{"LANG=C"}, pty.Size{Rows: 24, Cols: 80})
		if err != nil {
			t.Fatal(err)
		}
		if cmd.Args[0] != "-sh" || cmd.Dir != tc.wantDir || strings.Join(cmd.Env, "|") != strings.Join(Env("alice", tc.home, "/bin/sh", "xterm", []string{"LANG=C"}), "|") {
			t.Errorf("started %q in %q with %q", cmd.Args, cmd.Dir, cmd.Env)
		}
		if tc.wantDir == "/" && !strings.Contains(logged.String(), "no home directory") {
			t.Errorf("missing home not logged: %s", logged.String())
		}
		p.Kill() // SIGKILL: Wait below cannot hang on a shell that ignores the hangup
		_ = p.Close()
		if _, err := p.Wait(); err != nil {
			t.Fatal(err)
		}
		if err := p.End(time.Second); err != nil { // the session's cgroup, when it has one
			t.Fatal(err)
		}
	}
}

// TestStartCommand: with Command the shell runs it with -c, as sshd runs a command, and is not a
// login shell.
func TestStartCommand(t *testing.T) {
	sh := Shell{User: "alice", Home: t.TempDir(), Path: "/bin/sh", Command: "exit 7"}
	cmd, p, err := Start(slog.New(slog.DiscardHandler), sh, "xterm", nil, pty.Size{Rows: 24, Cols: 80})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(cmd.Args, " ") != "sh -c exit 7" {
		t.Errorf("started %q, want sh -c 'exit 7'", cmd.Args)
	}
	watchdog := time.AfterFunc(20*time.Second, p.Kill) // a stuck shell fails the test, not CI
	defer watchdog.Stop()
	state, err := p.Wait() // "exit 7" writes nothing: the shell cannot block on its terminal
	_ = p.Close()
	if err != nil {
		t.Fatal(err)
	}
	if state.ExitCode() != 7 {
		t.Errorf("exit status %d, want 7", state.ExitCode())
	}
	if err := p.End(time.Second); err != nil {
		t.Fatal(err)
	}
}
