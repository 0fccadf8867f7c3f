package rlogind

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/rlogin-go/rlogin/internal/daemon"
	"github.com/rlogin-go/rlogin/internal/logintest"
	"github.com/rlogin-go/rlogin/internal/termtest"
	"github.com/rlogin-go/rlogin/keys"
	"github.com/rlogin-go/rlogin/session"
)

// TestSystemRun runs rlogind as root the way cmd/rlogind does (Run, with its flags and a
// configuration file): it serves every user, here over a Unix socket. In one process
// (privilege-separation no, deprecated): with privilege separation, the default, the monitor and
// network processes are this program started again, which a test binary in go test's private
// directory cannot be for a network process without rights (e2e runs the real rlogind so).
func TestSystemRun(t *testing.T) {
	logintest.RequireRoot(t)
	if _, err := os.Stat(daemon.DefaultLoginProgram); err != nil {
		t.Fatalf("System mode needs login(1) (Debian package login): %v", err)
	}
	alice := logintest.AddUser(t, "rlt-run-alice")
	dir := t.TempDir()
	hostKey := filepath.Join(dir, "host_key")
	conf := filepath.Join(dir, "rlogind.conf")
	if err := os.WriteFile(conf, []byte("permit-root-login no\npassword-authentication no\nprivilege-separation no\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "sock")
	log := &termtest.Buffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, []string{"-config", conf, "-addr", "unix:" + sock, "-host-key", hostKey}, Env{Stderr: log})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(shortTimeout):
			t.Errorf("Run did not return within %v of cancel", shortTimeout)
		}
		if t.Failed() {
			t.Logf("log:\n%s", log.String())
		}
	})
	mark := 0
	if _, ok := log.Expect(&mark, regexp.MustCompile(`msg="serving logins" .*users="all \(system mode\)"`), shortTimeout); !ok {
		t.Fatalf("not serving in system mode:\n%s", log.String())
	}
	key, err := keys.Load(hostKey)
	if err != nil {
		t.Fatal(err)
	}
	r, err := logintest.Login(t, "unix:"+sock, pubOf(key), alice.Key, session.Request{User: alice.Name, Term: "xterm", Window: session.WindowSize{Rows: 24, Cols: 80}})
	if err != nil {
		t.Fatalf("login: %v\n%s", err, log.String())
	}
	r.Send("echo I AM $(id -un) FROM ${REMOTEHOST-nowhere}.; exit\n")
	if m := r.Expect(`I AM (\S+) FROM (\S+)\.`); m[1] != alice.Name || m[2] != "nowhere" {
		t.Errorf("shell of %s from %s, want %s from nowhere (a Unix socket is a local login)", m[1], m[2], alice.Name)
	}
	if err := r.Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := logintest.Login(t, "unix:"+sock, pubOf(key), newKey(t), session.Request{User: alice.Name, Term: "xterm"}); err == nil {
		t.Error("an unlisted key logged in with password-authentication no")
	}
}
