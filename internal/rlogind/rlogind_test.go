package rlogind

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/rlogin-go/rlogin/internal/logintest"
	"github.com/rlogin-go/rlogin/internal/termtest"
	"github.com/rlogin-go/rlogin/keys"
	"github.com/rlogin-go/rlogin/session"
)

// shortTimeout bounds every single wait in these tests: a wait that needs longer is a failure.
const shortTimeout = logintest.Timeout

func TestMain(m *testing.M) {
	// Open the netpoller's descriptors before any test counts descriptors.
	if l, err := net.Listen("tcp", "127.0.0.1:0"); err == nil {
		_ = l.Close()
	}
	goleak.VerifyTestMain(m)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	termtest.WaitFor(t, shortTimeout, what, cond)
}

func pubOf(key ed25519.PrivateKey) ed25519.PublicKey { return key.Public().(ed25519.PublicKey) }

// running is Run running in-process with HOME set to home, listening on a Unix socket in home,
// with a reload channel.
type running struct {
	home, sock string
	log        *termtest.Buffer
	reload     chan struct{}
	cancel     context.CancelFunc
	done       chan error // Run's result
}

// start runs Run with args after "-user-mode -addr unix:HOME/sock", and waits until it
// serves. The test's cleanup stops it and checks that it returned nil.
func start(t *testing.T, home string, args ...string) *running {
	t.Helper()
	t.Setenv("HOME", home)
	r := &running{home: home, sock: filepath.Join(home, "sock"), log: &termtest.Buffer{}, reload: make(chan struct{}), done: make(chan error, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	args = append([]string{"-user-mode", "-addr", "unix:" + r.sock}, args...)
	go func() { r.done <- Run(ctx, args, Env{Stderr: r.log, Reload: r.reload}) }()
	t.Cleanup(func() {
		if err := r.stop(); err != nil {
			t.Error(err)
		}
		if t.Failed() {
			t.Logf("log:\n%s", r.log.String())
		}
	})
	// Listening comes first, the host key and bootstrap after: wait for the serving itself.
	waitFor(t, "rlogind to serve", func() bool {
		select {
		case err := <-r.done:
			r.done <- err
			t.Fatalf("Run returned early: %v\n%s", err, r.log.String())
		default:
		}
		return strings.Contains(r.log.String(), `msg="serving logins"`)
	})
	return r
}

// startMain is start with the settings of the quick start's tests: no configuration file.
func startMain(t *testing.T, home string, extra ...string) *running {
	t.Helper()
	return start(t, home, append([]string{"-config", "none", "-login-grace-time", "20s"}, extra...)...)
}

// stop cancels Run and returns its error, or a timeout; it may be called again.
func (r *running) stop() error {
	r.cancel()
	select {
	case err := <-r.done:
		r.done <- err // for a second stop
		if err != nil {
			return fmt.Errorf("Run: %w", err)
		}
		return nil
	case <-time.After(shortTimeout):
		return fmt.Errorf("Run did not return within %v of cancel", shortTimeout)
	}
}

func (r *running) hostKey(t *testing.T) ed25519.PublicKey {
	t.Helper()
	k, err := keys.Load(filepath.Join(r.home, ".rlogin", "rlogind_host_ed25519_key"))
	if err != nil {
		t.Fatal(err)
	}
	return pubOf(k)
}

func (r *running) sendReload(t *testing.T) {
	t.Helper()
	select {
	case r.reload <- struct{}{}:
	case <-time.After(shortTimeout):
		t.Fatal("Run does not take reloads")
	}
}

func (r *running) waitLog(t *testing.T, mark *int, re string) []string {
	t.Helper()
	m, ok := r.log.Expect(mark, regexp.MustCompile(re), shortTimeout)
	if !ok {
		t.Fatalf("timed out waiting for %q in the log:\n%s", re, r.log.String())
	}
	return m
}

// login logs in as the user with the bootstrapped key, checking the host key file's key.
func (r *running) login(t *testing.T) (*logintest.Remote, error) {
	t.Helper()
	userKey, err := keys.Load(filepath.Join(r.home, ".rlogin", "id_ed25519"))
	if err != nil {
		t.Fatal(err)
	}
	return logintest.Login(t, "unix:"+r.sock, r.hostKey(t), userKey, session.Request{User: logintest.CurrentUser(t), Term: "xterm"})
}

// TestMainBootstrap is the README's quick start: rlogind started with nothing in ~/.rlogin lets
// the same user's rlogin key in.
func TestMainBootstrap(t *testing.T) {
	logintest.CheckNoLeftovers(t)
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

	r, err := logintest.Login(t, "unix:"+m.sock, m.hostKey(t), userKey, session.Request{User: logintest.CurrentUser(t), Term: "xterm"})
	if err != nil {
		t.Fatalf("login with the bootstrapped key: %v\nlog:\n%s", err, m.log.String())
	}
	r.ExitWith(4)
}

// TestMainKeepsAuthorizedKeys checks that an existing authorized_keys is never touched, and that
// -no-bootstrap writes none; the host key of the first start is kept.
func TestMainKeepsAuthorizedKeys(t *testing.T) {
	logintest.CheckNoLeftovers(t)
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
		if err := m.stop(); err != nil {
			t.Fatal(err)
		}
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
	if err := Run(context.Background(), []string{"-h"}, Env{Stderr: &out}); err != nil {
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
		if err := Run(context.Background(), args, Env{Stderr: &out}); err == nil {
			t.Errorf("Run(%q) succeeded", args)
		}
	}
}

// TestRunReload is SIGHUP's work: the configuration file and the host key are read again, what
// changed is logged, a broken file keeps the configuration in force, and sessions go on.
func TestRunReload(t *testing.T) {
	logintest.CheckNoLeftovers(t)
	home := t.TempDir()
	conf := writeConfig(t, home, "max-sessions 5\nlogin-grace-time 20s\n")
	r := start(t, home, "-config", conf)
	mark := 0
	r.waitLog(t, &mark, `serving logins`)
	sess, err := r.login(t)
	if err != nil {
		t.Fatal(err)
	}
	sess.Ready()

	writeConfig(t, home, "max-sessions 1\nlogin-grace-time 30s\nlog-level debug\nper-source-penalties off\n")
	r.sendReload(t)
	m := r.waitLog(t, &mark, `msg="configuration reloaded" (.*)`)
	for _, want := range []string{`login_grace_time="20s -> 30s"`, `max_sessions="5 -> 1"`, `per_source_penalties="authfail:5s`} {
		if !strings.Contains(m[1], want) {
			t.Errorf("reload log %q lacks %q", m[1], want)
		}
	}
	r.waitLog(t, &mark, `msg="log level changed" level=DEBUG`)
	// max-sessions 1 applies now, counting the session open before.
	_, err = r.login(t)
	var re *session.RefusedError
	if !errors.As(err, &re) || re.Reason != "too many sessions; try again later" {
		t.Fatalf("login past the new max-sessions: %v", err)
	}

	// A broken file: logged, and the configuration in force stays.
	writeConfig(t, home, "max-sessions 9\nNoSuchKeyword yes\n")
	r.sendReload(t)
	r.waitLog(t, &mark, `msg="reload failed; keeping the current configuration".*unknown keyword \\"NoSuchKeyword\\"`)
	if _, err := r.login(t); !errors.As(err, &re) {
		t.Fatalf("login after a failed reload: %v, want max-sessions 1 still in force", err)
	}

	// A new host key file is read too.
	hostKeyPath := filepath.Join(home, ".rlogin", "rlogind_host_ed25519_key")
	for _, p := range []string{hostKeyPath, hostKeyPath + ".pub"} {
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
	}
	writeConfig(t, home, "max-sessions 2\n")
	r.sendReload(t)
	r.waitLog(t, &mark, `created host key`)
	r.waitLog(t, &mark, `msg="configuration reloaded" host_key=.*max_sessions="1 -> 2"`)
	second, err := r.login(t) // pins the new key
	if err != nil {
		t.Fatalf("login with the new host key: %v", err)
	}
	second.ExitWith(0)

	// The session from before went on through all of it.
	sess.Send("echo STILL$((2+3))\n")
	sess.Expect(`STILL5`)
	sess.ExitWith(0)
}

// TestRunInetd is rlogind -inetd: the connection is on its standard input; it serves that one
// login and returns.
func TestRunInetd(t *testing.T) {
	logintest.CheckNoLeftovers(t)
	home := t.TempDir()
	t.Setenv("HOME", home)
	server, client := logintest.ConnPair(t)
	f, err := server.(*net.TCPConn).File()
	_ = server.Close()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// Bootstrapping makes the user's key, which the client below uses: the first start must
	// not wait for the client, so it runs on its own first.
	log := &termtest.Buffer{}
	done := make(chan error, 1)
	go func() {
		done <- Run(context.Background(), []string{"-inetd", "-config", "none", "-user-mode"}, Env{Stderr: log, Stdin: f})
	}()
	keyPath := filepath.Join(home, ".rlogin", "id_ed25519")
	hostPath := filepath.Join(home, ".rlogin", "rlogind_host_ed25519_key")
	waitFor(t, "the bootstrap", func() bool {
		_, err1 := os.Stat(filepath.Join(home, ".rlogin", "authorized_keys"))
		_, err2 := os.Stat(hostPath + ".pub")
		return err1 == nil && err2 == nil
	})
	userKey, err := keys.Load(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	hostKey, err := keys.Load(hostPath)
	if err != nil {
		t.Fatal(err)
	}
	r, err := logintest.LoginOn(t, client, pubOf(hostKey), userKey, session.Request{User: logintest.CurrentUser(t), Term: "xterm", Window: session.WindowSize{Rows: 24, Cols: 80}})
	if err != nil {
		t.Fatalf("login: %v\n%s", err, log.String())
	}
	r.Ready()
	r.ExitWith(3)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run -inetd: %v", err)
		}
	case <-time.After(shortTimeout):
		t.Fatal("Run -inetd did not return after its session")
	}
	if !regexp.MustCompile(`msg="session ended".*status=3`).MatchString(log.String()) {
		t.Errorf("log lacks the session's end:\n%s", log.String())
	}
	// Standard input that is not a socket.
	if err := Run(context.Background(), []string{"-inetd", "-config", "none"}, Env{Stderr: io.Discard, Stdin: os.Stdout}); err == nil {
		t.Error("Run -inetd with a non-socket standard input succeeded")
	}
}
