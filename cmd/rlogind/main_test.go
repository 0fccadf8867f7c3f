package main

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/rlogin-go/rlogin/internal/daemon"
	"github.com/rlogin-go/rlogin/internal/logintest"
	"github.com/rlogin-go/rlogin/keys"
	"github.com/rlogin-go/rlogin/session"
)

// asDaemonEnv makes the test binary run main, as rlogind.
const asDaemonEnv = "RLOGIND_TEST_AS_DAEMON"

const shortTimeout = 20 * time.Second

func TestMain(m *testing.M) {
	if os.Getenv(asDaemonEnv) == "1" {
		main()
		os.Exit(0)
	}
	// The monitor and network processes of a privilege-separated rlogind run as this binary,
	// with their role in the environment (as main does first).
	if ran, status := daemon.RunRole(); ran {
		os.Exit(status)
	}
	goleak.VerifyTestMain(m)
}

// daemonProc is the test binary running as rlogind with its own HOME, listening on a Unix
// socket there, started through /bin/sh so that wrap can set up its signal state.
type daemonProc struct {
	home, sock string
	cmd        *exec.Cmd
	log        *lockedBuffer
	done       chan struct{}
	err        error
}

func startDaemon(t *testing.T, wrap string) *daemonProc {
	t.Helper()
	home := t.TempDir()
	sock := filepath.Join(home, "sock")
	script := "exec \"$0\" -config none -user-mode -addr \"unix:$1\""
	if wrap != "" {
		script = wrap + "; " + script
	}
	d := startProc(t, home, script, []string{sock}, nil, nil)
	d.sock = sock
	deadline := time.Now().Add(shortTimeout)
	for {
		// It listens first, then makes its keys: serving is the sign that it is ready.
		if strings.Contains(d.log.String(), `msg="serving logins"`) {
			return d
		}
		select {
		case <-d.done:
			t.Fatalf("rlogind exited early: %v\n%s", d.err, d.log.String())
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("rlogind not serving after %v:\n%s", shortTimeout, d.log.String())
		}
	}
}

// startProc starts the test binary as rlogind through /bin/sh -c script (with $0 the binary
// and $1... args), with HOME=home and extra environment variables and descriptors (from 3 on).
// It is killed at the end of the test if still running.
func startProc(t *testing.T, home, script string, args []string, env []string, files []*os.File) *daemonProc {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	d := &daemonProc{home: home, log: &lockedBuffer{}, done: make(chan struct{})}
	d.cmd = exec.Command("/bin/sh", append([]string{"-c", script, exe}, args...)...)
	d.cmd.Env = append([]string{"HOME=" + home, "PATH=/usr/local/bin:/usr/bin:/bin", asDaemonEnv + "=1"}, env...)
	if v, ok := os.LookupEnv("GORACE"); ok { // CI's: no 1 s sleep at each exit of a -race binary
		d.cmd.Env = append(d.cmd.Env, "GORACE="+v)
	}
	d.cmd.ExtraFiles = files
	d.cmd.Stdout, d.cmd.Stderr = d.log, d.log
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		d.err = d.cmd.Wait()
		close(d.done)
	}()
	t.Cleanup(func() {
		select {
		case <-d.done:
		default:
			_ = d.cmd.Process.Kill()
			<-d.done
		}
		if t.Failed() || os.Getenv("RLOGIND_TEST_LOG") != "" {
			t.Logf("rlogind log:\n%s", d.log.String())
		}
	})
	return d
}

func (d *daemonProc) signal(t *testing.T, sig os.Signal) {
	t.Helper()
	if err := d.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
}

// waitExit waits for rlogind to exit and fails unless it exited 0.
func (d *daemonProc) waitExit(t *testing.T) {
	t.Helper()
	select {
	case <-d.done:
	case <-time.After(shortTimeout):
		t.Fatalf("rlogind still running %v after the signal", shortTimeout)
	}
	if d.err != nil {
		t.Fatalf("rlogind: %v, want exit status 0\n%s", d.err, d.log.String())
	}
}

// login logs in with the key rlogind bootstrapped; the session is closed at the end of the test.
func (d *daemonProc) login(t *testing.T) *logintest.Remote {
	t.Helper()
	return loginAt(t, "unix:"+d.sock, d.home, d.log)
}

// loginAt logs in at address with the keys in home: the user's ~/.rlogin/id_ed25519, and the
// host key ~/.rlogin/rlogind_host_ed25519_key pinned. It fails the test, with log, if the login
// does not start.
func loginAt(t *testing.T, address, home string, log fmt.Stringer) *logintest.Remote {
	t.Helper()
	userKey, err := keys.Load(filepath.Join(home, ".rlogin", "id_ed25519"))
	if err != nil {
		t.Fatal(err)
	}
	hostKey, err := keys.Load(filepath.Join(home, ".rlogin", "rlogind_host_ed25519_key"))
	if err != nil {
		t.Fatal(err)
	}
	r, err := logintest.Login(t, address, hostKey.Public().(ed25519.PublicKey), userKey,
		session.Request{User: logintest.CurrentUser(t), Term: "xterm", Window: session.WindowSize{Rows: 24, Cols: 80}})
	if err != nil {
		t.Fatalf("login: %v\n%s", err, log.String())
	}
	return r
}

// expect waits until out matches re.
func expect(t *testing.T, out *lockedBuffer, re string) []string {
	t.Helper()
	rx := regexp.MustCompile(re)
	deadline := time.Now().Add(shortTimeout)
	for {
		if m := rx.FindStringSubmatch(out.String()); m != nil {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %q in:\n%q", re, out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestStopSignals(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			if signal.Ignored(sig) {
				t.Skipf("%v is ignored in this test process, so rlogind inherits it ignored and rightly keeps ignoring it", sig)
			}
			d := startDaemon(t, "")
			r := d.login(t)
			r.Send("echo UP$((1+1))\n")
			r.Expect(`UP2`)
			d.signal(t, sig)
			d.waitExit(t)
			var ce *session.ClosedError
			if err := r.Wait(); !errors.As(err, &ce) || ce.Reason != "service stopping" {
				t.Fatalf("session ended with %v, want \"service stopping\"", err)
			}
		})
	}
}

// TestIgnoredSIGINT starts rlogind as `&` in a script would (SIGINT and SIGQUIT ignored) and as
// nohup would (SIGHUP ignored): those signals do not stop it, yet the user's shell gets default
// dispositions and an empty mask.
func TestIgnoredSIGINT(t *testing.T) {
	d := startDaemon(t, "trap '' INT QUIT HUP")
	d.signal(t, syscall.SIGINT)
	d.signal(t, syscall.SIGHUP)
	// Whatever the daemon would do about these signals it does at once; a login after a pause
	// shows it is still serving.
	time.Sleep(200 * time.Millisecond)
	r := d.login(t)
	r.Send("grep -E '^Sig(Ign|Blk)' /proc/self/status | tr -d '\\t' | tr '\\n' ' '; echo END$((1+1))\n")
	m := r.Expect(`(Sig\w+:[0-9a-f]+ Sig\w+:[0-9a-f]+) END2`) // SigBlk comes first
	if m[1] != "SigBlk:0000000000000000 SigIgn:0000000000000000" {
		t.Errorf("a command in the shell has %s, want nothing ignored or blocked", m[1])
	}
	select {
	case <-d.done:
		t.Fatalf("rlogind exited after an ignored signal: %v", d.err)
	default:
	}
	d.signal(t, syscall.SIGTERM)
	d.waitExit(t)
}

func TestBadFlagExitsNonZero(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-max-startups", "0")
	cmd.Env = []string{"HOME=" + t.TempDir(), asDaemonEnv + "=1"}
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() == 0 {
		t.Fatalf("rlogind -max-startups 0: %v, want a non-zero exit", err)
	}
	if !bytes.HasPrefix(out, []byte("rlogind: ")) {
		t.Errorf("error output %q, want it to start with \"rlogind: \"", out)
	}
}

// lockedBuffer is a bytes.Buffer safe for concurrent use.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
