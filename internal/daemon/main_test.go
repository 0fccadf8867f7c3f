package daemon

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rlogin-go/rlogin/internal/termtest"
	"github.com/rlogin-go/rlogin/keys"
	"github.com/rlogin-go/rlogin/session"
)

// runningMain is Main running in-process with HOME set to home, listening on a Unix socket in
// home.
type runningMain struct {
	home, sock string
	log        *termtest.Buffer
	cancel     context.CancelFunc
	done       chan error
}

func startMain(t *testing.T, home string, extra ...string) *runningMain {
	t.Helper()
	t.Setenv("HOME", home)
	m := &runningMain{home: home, sock: filepath.Join(home, "sock"), log: &termtest.Buffer{}, done: make(chan error, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	args := append([]string{"-config", "none", "-user-mode", "-addr", "unix:" + m.sock, "-login-grace-time", "20s"}, extra...)
	go func() { m.done <- Main(ctx, args, m.log) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-m.done:
			if err != nil {
				t.Errorf("Main: %v", err)
			}
		case <-time.After(shortTimeout):
			t.Errorf("Main did not return within %v of cancel", shortTimeout)
		}
	})
	waitFor(t, "rlogind to listen", func() bool {
		select {
		case err := <-m.done:
			m.done <- err
			t.Fatalf("Main returned early: %v\n%s", err, m.log.String())
		default:
		}
		c, err := net.Dial("unix", m.sock)
		if err != nil {
			return false
		}
		_ = c.Close()
		return true
	})
	return m
}

func (m *runningMain) hostKey(t *testing.T) ed25519.PublicKey {
	t.Helper()
	k, err := keys.Load(filepath.Join(m.home, ".rlogin", "rlogind_host_ed25519_key"))
	if err != nil {
		t.Fatal(err)
	}
	return pubOf(k)
}

// TestMainBootstrap is the README's quick start: rlogind started with nothing in ~/.rlogin lets
// the same user's rlogin key in.
func TestMainBootstrap(t *testing.T) {
	checkNoLeftovers(t)
	home := t.TempDir()
	m := startMain(t, home)

	authPath := filepath.Join(home, ".rlogin", "authorized_keys")
	fi, err := os.Stat(authPath)
	if err != nil {
		t.Fatalf("bootstrap did not write authorized_keys: %v\nlog:\n%s", err, m.log.String())
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("authorized_keys mode %04o, want 0600", perm)
	}
	userKey, err := keys.Load(filepath.Join(home, ".rlogin", "id_ed25519"))
	if err != nil {
		t.Fatalf("bootstrap did not create the user's key: %v", err)
	}
	auth, err := keys.LoadAuthorized(authPath, os.Getuid(), home)
	if err != nil {
		t.Fatal(err)
	}
	if got := auth.Keys(); len(got) != 1 || !got[0].Equal(pubOf(userKey)) || len(auth.Skipped) != 0 {
		t.Fatalf("authorized_keys holds %d keys (%d skipped), want exactly the user's key", len(got), len(auth.Skipped))
	}
	fp := keys.Fingerprint(pubOf(userKey))
	want := "authorized your own key ~/.rlogin/id_ed25519.pub (" + fp + ") in ~/.rlogin/authorized_keys because that file did not exist"
	if !strings.Contains(m.log.String(), want) {
		t.Errorf("log lacks %q:\n%s", want, m.log.String())
	}
	hostFP := keys.Fingerprint(m.hostKey(t))
	if !regexp.MustCompile(`created host key.*fingerprint=` + regexp.QuoteMeta(hostFP)).MatchString(m.log.String()) {
		t.Errorf("log does not show the new host key's fingerprint %s:\n%s", hostFP, m.log.String())
	}

	r, err := login(t, "unix:"+m.sock, m.hostKey(t), userKey, session.Request{User: currentUser(t), Term: "xterm"})
	if err != nil {
		t.Fatalf("login with the bootstrapped key: %v\nlog:\n%s", err, m.log.String())
	}
	r.send("exit 4\n")
	var ee *session.ExitError
	if err := r.wait(); !errors.As(err, &ee) || ee.Status != 4 {
		t.Fatalf("Wait: %v, want exit status 4", err)
	}
}

func currentUser(t *testing.T) string {
	t.Helper()
	srv, err := NewServer(Config{HostKey: newKey(t), AuthorizedKeys: "x"})
	if err != nil {
		t.Fatal(err)
	}
	return srv.User()
}

// TestMainKeepsAuthorizedKeys checks that an existing authorized_keys is never touched, and that
// -no-bootstrap writes none; the host key of the first start is kept.
func TestMainKeepsAuthorizedKeys(t *testing.T) {
	checkNoLeftovers(t)
	t.Run("existing file", func(t *testing.T) {
		home := t.TempDir()
		authPath := filepath.Join(home, ".rlogin", "authorized_keys")
		content := "# nobody may log in\n"
		if err := os.MkdirAll(filepath.Dir(authPath), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(authPath, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		m := startMain(t, home)
		first := m.hostKey(t)
		m.cancel()
		<-m.done
		m.done <- nil
		got, err := os.ReadFile(authPath)
		if err != nil || string(got) != content {
			t.Fatalf("authorized_keys changed: %q, %v", got, err)
		}
		if strings.Contains(m.log.String(), "authorized your own key") {
			t.Fatalf("bootstrap ran although authorized_keys existed:\n%s", m.log.String())
		}
		if _, err := os.Stat(filepath.Join(home, ".rlogin", "id_ed25519")); err == nil {
			t.Fatal("a user key was created although authorized_keys existed")
		}
		m2 := startMain(t, home)
		if !m2.hostKey(t).Equal(first) {
			t.Fatal("the host key changed between starts")
		}
		if !strings.Contains(m2.log.String(), "fingerprint="+keys.Fingerprint(first)) {
			t.Fatalf("second start does not log the host key's fingerprint:\n%s", m2.log.String())
		}
	})
	t.Run("no-bootstrap", func(t *testing.T) {
		home := t.TempDir()
		startMain(t, home, "-no-bootstrap")
		if _, err := os.Stat(filepath.Join(home, ".rlogin", "authorized_keys")); err == nil {
			t.Fatal("-no-bootstrap wrote authorized_keys")
		}
	})
}

func TestMainFlags(t *testing.T) {
	var out bytes.Buffer
	if err := Main(context.Background(), []string{"-h"}, &out); err != nil {
		t.Fatalf("-h: %v", err)
	}
	for _, flag := range []string{"-addr", "-host-key", "-authorized-keys", "-login-grace-time", "-max-startups", "-no-bootstrap", "-v", ":5513", "~/.rlogin/authorized_keys"} {
		if !strings.Contains(out.String(), flag) {
			t.Errorf("usage lacks %q:\n%s", flag, out.String())
		}
	}
	for _, args := range [][]string{
		{"-no-such-flag"},
		{"extra-argument"},
		{"-login-grace-time", "0s"},
		{"-max-startups", "-1"},
	} {
		out.Reset()
		if err := Main(context.Background(), args, &out); err == nil {
			t.Errorf("Main(%q) succeeded", args)
		}
	}
}

func TestStopSignals(t *testing.T) {
	// The test binary was not started with SIGTERM ignored.
	sigs := StopSignals()
	if len(sigs) == 0 || sigs[0].String() != "terminated" {
		t.Fatalf("StopSignals() = %v, want SIGTERM first", sigs)
	}
	ctx, stop := NotifyStop(context.Background(), nil)
	stop()
	<-ctx.Done()
}
