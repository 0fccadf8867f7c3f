package daemon

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/rlogin-go/rlogin/internal/logintest"
	"github.com/rlogin-go/rlogin/keys"
	"github.com/rlogin-go/rlogin/session"
)

// TestCommandUserMode: a client's command runs through the user's shell, on pipes (no TERM, no
// terminal) or, asked for, on a pty.
func TestCommandUserMode(t *testing.T) {
	ts := startServer(t, nil)
	req := ts.request(ts.srv.User())
	req.Command = &session.Command{Line: `echo "term=[$(printenv TERM)]"; tty; echo err >&2; exit 3`}
	r, err := logintest.Login(t, ts.addr, pubOf(ts.hostKey), ts.clientKey, req)
	if err != nil {
		t.Fatal(err)
	}
	r.Expect(`term=\[\]\nnot a tty\n`)
	var exit *session.ExitError
	if err := r.Wait(); !errors.As(err, &exit) || exit.Status != 3 {
		t.Errorf("Wait: %v, want status 3", err)
	}
	if r.Output() != "term=[]\nnot a tty\n" {
		t.Errorf("output %q: the error output is not apart", r.Output())
	}

	req.Command = &session.Command{Line: `echo "term=[$(printenv TERM)]"; tty`, PTY: true}
	r, err = logintest.Login(t, ts.addr, pubOf(ts.hostKey), ts.clientKey, req)
	if err != nil {
		t.Fatal(err)
	}
	r.Expect(`term=\[xterm\]\r\n/dev/pts/[0-9]+\r\n`)
	if err := r.Wait(); err != nil {
		t.Errorf("Wait: %v", err)
	}
}

// TestForcedCommandKey: an authorized_keys line's command= replaces what the client asks, a
// login included, and the command sees the client's in SSH_ORIGINAL_COMMAND; no-pty refuses a
// terminal.
func TestForcedCommandKey(t *testing.T) {
	ts := startServer(t, nil)
	ts.writeAuthorized(t, `command="echo forced [$SSH_ORIGINAL_COMMAND]",no-pty `+string(keys.MarshalAuthorizedKey(pubOf(ts.clientKey), "")), 0o600)
	req := ts.request(ts.srv.User())
	req.Command = &session.Command{Line: "rm -rf /nonexistent"}
	r, err := logintest.Login(t, ts.addr, pubOf(ts.hostKey), ts.clientKey, req)
	if err != nil {
		t.Fatal(err)
	}
	r.Expect(`forced \[rm -rf /nonexistent\]\n`)
	if err := r.Wait(); err != nil {
		t.Errorf("Wait: %v", err)
	}
	ts.waitLog(`running a command.*forced=true`)

	for _, c := range []*session.Command{nil, {Line: "tty", PTY: true}} {
		req.Command = c
		_, err := logintest.Login(t, ts.addr, pubOf(ts.hostKey), ts.clientKey, req)
		var re *session.RefusedError
		if !errors.As(err, &re) || re.Reason != reasonNoPTY {
			t.Errorf("command %+v with no-pty: %v, want the refusal %q", c, err, reasonNoPTY)
		}
	}
}

// TestCommandOf: what a session runs, by the request and the key's or certificate's options.
func TestCommandOf(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	pipes := &session.Command{Line: "ls -l"}
	onPTY := &session.Command{Line: "top", PTY: true}
	tests := []struct {
		name   string
		cmd    *session.Command
		cl     client
		system bool
		want   sessionCommand
		reason string
	}{
		{"login", nil, client{}, false, sessionCommand{}, ""},
		{"command", pipes, client{}, false, sessionCommand{command: "ls -l", pipes: true}, ""},
		{"command on a pty", onPTY, client{}, false, sessionCommand{command: "top"}, ""},
		{"forced, login", nil, client{forceCommand: "backup"}, false, sessionCommand{command: "backup"}, ""},
		{"forced, command", pipes, client{forceCommand: "backup"}, false, sessionCommand{command: "backup", original: "ls -l", pipes: true}, ""},
		{"no-pty, command", pipes, client{noPTY: true}, false, sessionCommand{command: "ls -l", pipes: true}, ""},
		{"no-pty, login", nil, client{noPTY: true}, false, sessionCommand{}, reasonNoPTY},
		{"forced, no-pty, login", nil, client{forceCommand: "backup", noPTY: true}, false, sessionCommand{}, reasonNoPTY},
		{"forced, no-pty, -t", onPTY, client{forceCommand: "backup", noPTY: true}, false, sessionCommand{}, reasonNoPTY},
		{"no-pty, -t", onPTY, client{noPTY: true}, false, sessionCommand{}, reasonNoPTY},
		{"system, login", nil, client{}, true, sessionCommand{}, ""},
		{"system, command", pipes, client{}, true, sessionCommand{}, reasonNoSystemCommands},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var lg *systemLogin
			if tt.system {
				lg = &systemLogin{}
			}
			got, reason, ok := commandOf(log, &session.Request{User: "bob", Command: tt.cmd}, &tt.cl, lg)
			if got != tt.want || reason != tt.reason || ok != (tt.reason == "") {
				t.Errorf("commandOf = %+v, %q, %v; want %+v, %q", got, reason, ok, tt.want, tt.reason)
			}
		})
	}
}

// TestCommandLogLevels: the command line (which may hold a password) is logged only at Debug;
// Info has its length and digest.
func TestCommandLogLevels(t *testing.T) {
	const line = "mysql -psecret42"
	for _, level := range []slog.Level{slog.LevelInfo, slog.LevelDebug} {
		var buf bytes.Buffer
		log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: level}))
		req := &session.Request{User: "bob", Command: &session.Command{Line: line}}
		if _, _, ok := commandOf(log, req, &client{}, nil); !ok {
			t.Fatal("commandOf refused a command")
		}
		out := buf.String()
		digest := fmt.Sprintf("length=%d sha256=%s", len(line), commandDigest(line))
		if !strings.Contains(out, digest) {
			t.Errorf("level %v: log %q lacks %q", level, out, digest)
		}
		if got := strings.Contains(out, "secret42"); got != (level == slog.LevelDebug) {
			t.Errorf("level %v: log %q: command line logged = %v", level, out, got)
		}
	}
}
