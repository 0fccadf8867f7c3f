package daemon

import (
	"context"
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

// TestReload changes the host key and a limit of a running server: a session open before goes
// on, new logins see the new configuration, and a bad configuration changes nothing.
func TestReload(t *testing.T) {
	ts := startServer(t, nil)
	before := ts.login(t)
	before.ready()

	cfg := Config{
		HostKey:        newKey(t),
		AuthorizedKeys: ts.authPath,
		Home:           ts.home,
		LoginGraceTime: shortTimeout,
		MaxSessions:    2,
	}
	if err := ts.srv.Reload(Config{AuthorizedKeys: ts.authPath}); err == nil {
		t.Fatal("Reload without a host key succeeded")
	}
	if err := ts.srv.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	ts.waitLog(`msg="configuration reloaded" host_key="` + regexp.QuoteMeta(keys.Fingerprint(pubOf(ts.hostKey))) +
		` -> ` + regexp.QuoteMeta(keys.Fingerprint(pubOf(cfg.HostKey))) + `".*max_sessions="512 -> 2"`)

	// The session from before is unaffected.
	before.send("echo STILL$((2+3))\n")
	before.expect(`STILL5`)

	// New logins get the new host key...
	if _, err := login(t, ts.addr, pubOf(ts.hostKey), ts.clientKey, ts.request(ts.srv.User())); err == nil {
		t.Fatal("a login still saw the old host key")
	}
	second, err := login(t, ts.addr, pubOf(cfg.HostKey), ts.clientKey, ts.request(ts.srv.User()))
	if err != nil {
		t.Fatalf("login with the new host key: %v", err)
	}
	second.ready()
	// ...and the new limit, which counts the session from before.
	_, err = login(t, ts.addr, pubOf(cfg.HostKey), ts.clientKey, ts.request(ts.srv.User()))
	var re *session.RefusedError
	if !errors.As(err, &re) || re.Reason != reasonMaxSessions {
		t.Fatalf("third session: %v, want the refusal %q", err, reasonMaxSessions)
	}
	before.exitWith(0)
	second.exitWith(0)

	// Reloading the same configuration changes nothing.
	if err := ts.srv.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	ts.waitLog(`configuration reloaded; nothing changed`)
}

// runningRun is Run in-process with a reload channel, listening on a Unix socket in home.
type runningRun struct {
	home, sock string
	log        *termtest.Buffer
	reload     chan struct{}
	cancel     context.CancelFunc
	done       chan error
}

func startRun(t *testing.T, home string, args ...string) *runningRun {
	t.Helper()
	t.Setenv("HOME", home)
	r := &runningRun{home: home, sock: filepath.Join(home, "sock"), log: &termtest.Buffer{}, reload: make(chan struct{}), done: make(chan error, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	args = append([]string{"-user-mode", "-addr", "unix:" + r.sock}, args...)
	go func() { r.done <- Run(ctx, args, Env{Stderr: r.log, Reload: r.reload}) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-r.done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(shortTimeout):
			t.Errorf("Run did not return within %v of cancel", shortTimeout)
		}
		if t.Failed() {
			t.Logf("log:\n%s", r.log.String())
		}
	})
	waitFor(t, "rlogind to listen", func() bool {
		c, err := net.Dial("unix", r.sock)
		if err != nil {
			return false
		}
		_ = c.Close()
		return true
	})
	return r
}

func (r *runningRun) sendReload(t *testing.T) {
	t.Helper()
	select {
	case r.reload <- struct{}{}:
	case <-time.After(shortTimeout):
		t.Fatal("Run does not take reloads")
	}
}

func (r *runningRun) waitLog(t *testing.T, mark *int, re string) []string {
	t.Helper()
	m, ok := r.log.Expect(mark, regexp.MustCompile(re), shortTimeout)
	if !ok {
		t.Fatalf("timed out waiting for %q in the log:\n%s", re, r.log.String())
	}
	return m
}

// login logs in as the user with the bootstrapped key, checking the host key file's key.
func (r *runningRun) login(t *testing.T) (*remote, error) {
	t.Helper()
	userKey, err := keys.Load(filepath.Join(r.home, ".rlogin", "id_ed25519"))
	if err != nil {
		t.Fatal(err)
	}
	hostKey, err := keys.Load(filepath.Join(r.home, ".rlogin", "rlogind_host_ed25519_key"))
	if err != nil {
		t.Fatal(err)
	}
	return login(t, "unix:"+r.sock, pubOf(hostKey), userKey, session.Request{User: currentUser(t), Term: "xterm"})
}

// TestRunReload is SIGHUP's work: the configuration file and the host key are read again, what
// changed is logged, a broken file keeps the configuration in force, and sessions go on.
func TestRunReload(t *testing.T) {
	checkNoLeftovers(t)
	home := t.TempDir()
	conf := writeConfig(t, home, "max-sessions 5\nlogin-grace-time 20s\n")
	r := startRun(t, home, "-config", conf)
	mark := 0
	r.waitLog(t, &mark, `serving logins`)
	sess, err := r.login(t)
	if err != nil {
		t.Fatal(err)
	}
	sess.ready()

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
	if !errors.As(err, &re) || re.Reason != reasonMaxSessions {
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
	second.exitWith(0)

	// The session from before went on through all of it.
	sess.send("echo STILL$((2+3))\n")
	sess.expect(`STILL5`)
	sess.exitWith(0)
}
