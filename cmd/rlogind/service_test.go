package main

import (
	"bufio"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rlogin-go/rlogin/internal/logintest"
	"github.com/rlogin-go/rlogin/internal/pamlogin"
	"github.com/rlogin-go/rlogin/keys"
	"github.com/rlogin-go/rlogin/session"
)

// notifySocket is a socket standing in for systemd's NOTIFY_SOCKET.
type notifySocket struct {
	path string
	pc   *net.UnixConn
}

func newNotifySocket(t *testing.T) *notifySocket {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify")
	pc, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pc.Close() })
	return &notifySocket{path: path, pc: pc}
}

// expect waits for the next notification and checks that it starts with want.
func (n *notifySocket) expect(t *testing.T, want string, log *lockedBuffer) {
	t.Helper()
	buf := make([]byte, 1024)
	_ = n.pc.SetReadDeadline(time.Now().Add(shortTimeout))
	k, err := n.pc.Read(buf)
	if err != nil {
		t.Fatalf("waiting for %q from the daemon: %v\n%s", want, err, log.String())
	}
	if !strings.HasPrefix(string(buf[:k]), want) {
		t.Fatalf("notification %q, want %q...", buf[:k], want)
	}
}

// TestSocketActivation starts rlogind as systemd does for rlogind.socket (Accept=no): a
// listening socket at descriptor 3, LISTEN_PID, LISTEN_FDS, LISTEN_FDNAMES, NOTIFY_SOCKET. It
// serves a full login on that socket, reloads on SIGHUP and stops on SIGTERM, telling
// systemd each time.
// TestSocketActivation: rlogind serves the sockets systemd passes (two here, as for IPv4 and
// IPv6), each of them, and tells systemd how it goes. A descriptor after them that systemd did
// not count (a file the starting process held open) is closed, and no session sees it.
func TestSocketActivation(t *testing.T) {
	var addrs []string
	var files []*os.File
	for range 2 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addrs = append(addrs, l.Addr().String())
		f, err := l.(*net.TCPListener).File()
		_ = l.Close() // f still holds the socket, listening
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		files = append(files, f)
	}
	stray, err := os.Open(os.Args[0]) // descriptor 5 in the daemon
	if err != nil {
		t.Fatal(err)
	}
	defer stray.Close()
	notify := newNotifySocket(t)
	home := t.TempDir()
	// LISTEN_PID is the daemon's own pid: the shell's, which exec keeps.
	script := `export LISTEN_PID=$$ LISTEN_FDS=2 LISTEN_FDNAMES=rlogind.socket; exec "$0" -config none -user-mode -addr unix:/nonexistent/ignored`
	d := startProc(t, home, script, nil, []string{"NOTIFY_SOCKET=" + notify.path}, append(files, stray))
	for _, f := range files {
		_ = f.Close()
	}
	notify.expect(t, "READY=1", d.log)
	// The log comes through a pipe: it may arrive after the notification.
	waitLog(t, d, regexp.QuoteMeta(`msg="socket activation: serving the sockets systemd passed" addrs=`+strings.Join(addrs, ",")+" names=rlogind.socket,LISTEN_FD_4"))

	// Closed, not merely close-on-exec (the number itself may be the daemon's again by now).
	if target, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/5", d.cmd.Process.Pid)); target == stray.Name() {
		t.Errorf("rlogind still holds the descriptor it inherited after systemd's: 5 on %s", target)
	}

	r := loginAt(t, "tcp:"+addrs[0], home, d.log)
	r.Send(`echo ENV:$LISTEN_FDS:$NOTIFY_SOCKET:END; for fd in 3 4 5; do [ -e /proc/$$/fd/$fd ] && echo "OPEN:$fd:"; done; exit 5` + "\n")
	if err := r.Wait(); !isExit(err, 5) {
		t.Fatalf("session: %v, want exit status 5", err)
	}
	if !strings.Contains(r.Output(), "ENV::"+":END") {
		t.Errorf("the shell sees systemd's variables: %q", r.Output())
	}
	if m := regexp.MustCompile(`OPEN:\d:`).FindAllString(r.Output(), -1); len(m) > 0 {
		t.Errorf("the shell has descriptors of the daemon: %q", m)
	}

	d.signal(t, syscall.SIGHUP)
	notify.expect(t, "RELOADING=1\nMONOTONIC_USEC=", d.log)
	notify.expect(t, "READY=1", d.log)
	// A second login after the reload, on the other socket.
	r = loginAt(t, "tcp:"+addrs[1], home, d.log)
	r.Send("exit 6\n")
	if err := r.Wait(); !isExit(err, 6) {
		t.Fatalf("session after the reload: %v, want exit status 6", err)
	}

	d.signal(t, syscall.SIGTERM)
	notify.expect(t, "STOPPING=1", d.log)
	d.waitExit(t)
	waitLog(t, d, `configuration reloaded; nothing changed`)
}

func isExit(err error, status int) bool {
	var ee *session.ExitError
	return errors.As(err, &ee) && ee.Status == status
}

// TestSIGHUPReload: SIGHUP re-reads the configuration file; a broken file is logged and the
// daemon goes on with the configuration it has.
func TestSIGHUPReload(t *testing.T) {
	home := t.TempDir()
	conf := filepath.Join(home, "rlogind.conf")
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(conf, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("login-grace-time 20s\n")
	sock := filepath.Join(home, "sock")
	d := startProc(t, home, `exec "$0" -config "$1" -user-mode -addr "unix:$2"`, []string{conf, sock}, nil, nil)
	d.sock = sock
	waitLog(t, d, `serving logins`)
	r := d.login(t)
	r.Send("echo UP$((1+1))\n")
	r.Expect(`UP2`)

	write("login-grace-time 40s\nmax-sessions 3\n")
	d.signal(t, syscall.SIGHUP)
	waitLog(t, d, `msg="configuration reloaded" login_grace_time="20s -> 40s" max_sessions="512 -> 3"`)
	write("login-grace-time forty\n")
	d.signal(t, syscall.SIGHUP)
	waitLog(t, d, `reload failed; keeping the current configuration.*login-grace-time`)

	r.Send("echo STILL$((2+3)); exit 0\n")
	r.Expect(`STILL5`)
	if err := r.Wait(); err != nil {
		t.Fatalf("session across reloads: %v", err)
	}
	d.signal(t, syscall.SIGTERM)
	d.waitExit(t)
}

// waitLog waits until the daemon's log matches re.
func waitLog(t *testing.T, d *daemonProc, re string) {
	t.Helper()
	expect(t, d.log, re)
}

// TestConfigErrorExitStatus: a broken configuration file stops rlogind at once with status 2.
func TestConfigErrorExitStatus(t *testing.T) {
	home := t.TempDir()
	conf := filepath.Join(home, "rlogind.conf")
	if err := os.WriteFile(conf, []byte("max-sessions 3\nNoSuchThing 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	d := startProc(t, home, `exec "$0" -config "$1"`, []string{conf}, nil, nil)
	select {
	case <-d.done:
	case <-time.After(shortTimeout):
		t.Fatal("rlogind still running with a broken configuration file")
	}
	var ee *exec.ExitError
	if !errors.As(d.err, &ee) || ee.ExitCode() != 2 {
		t.Fatalf("rlogind: %v, want exit status 2", d.err)
	}
	if want := `rlogind: ` + conf + `: line 2: unknown keyword "NoSuchThing"`; !strings.Contains(d.log.String(), want) {
		t.Errorf("output %q lacks %q", d.log.String(), want)
	}
}

// inetdBinary is Debian's openbsd-inetd.
const inetdBinary = "/usr/sbin/inetd"

// TestInetd runs rlogind -inetd under a real inetd (Debian's openbsd-inetd) on a spare loopback
// port: each connection gets its own rlogind, with the socket as descriptors 0, 1 and 2, and a
// full login works. inetd makes standard error the socket, so the log goes to -log-file.
func TestInetd(t *testing.T) {
	if _, err := os.Stat(inetdBinary); err != nil {
		t.Skipf("no inetd (Debian package openbsd-inetd): %v", err)
	}
	if os.Geteuid() != 0 {
		t.Skip("inetd runs its services as the user its configuration names: needs root")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	dot := filepath.Join(home, ".rlogin")
	hostKeyPath := filepath.Join(dot, "rlogind_host_ed25519_key")
	if _, _, err := keys.LoadOrCreate(hostKeyPath); err != nil {
		t.Fatal(err)
	}
	userKey, _, err := keys.LoadOrCreate(filepath.Join(dot, "id_ed25519"))
	if err != nil {
		t.Fatal(err)
	}
	authPath := filepath.Join(dot, "authorized_keys")
	if err := os.WriteFile(authPath, keys.MarshalAuthorizedKey(userKey.Public().(ed25519.PublicKey), "test"), 0o600); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(home, "rlogind.log")

	inetd, addr := startInetd(t, home, func(addr string) string {
		// inetd drops HOME from the environment it passes: env sets it again.
		return fmt.Sprintf("%s stream tcp nowait %s /usr/bin/env env HOME=%s %s=1 %s -inetd -config none -user-mode -log-file %s\n",
			addr, u.Username, home, asDaemonEnv, exe, logPath)
	})
	logBuf := &lockedBuffer{}
	readLog := func() string {
		data, _ := os.ReadFile(logPath)
		logBuf.mu.Lock()
		logBuf.buf.Reset()
		logBuf.buf.Write(data)
		logBuf.mu.Unlock()
		return string(data)
	}
	// Two logins at once: two rlogind processes.
	r1 := loginAt(t, "tcp:"+addr, home, logBuf)
	r2 := loginAt(t, "tcp:"+addr, home, logBuf)
	r1.Send("echo PID=$PPID:$((40+2)); exit 7\n")
	r2.Send("echo PID=$PPID:$((40+2)); exit 8\n")
	if err := r1.Wait(); !isExit(err, 7) {
		t.Fatalf("first session: %v, want exit status 7\nlog:\n%s\ninetd:\n%s", err, readLog(), inetd.String())
	}
	if err := r2.Wait(); !isExit(err, 8) {
		t.Fatalf("second session: %v, want exit status 8\nlog:\n%s", err, readLog())
	}
	p1, p2 := r1.Expect(`PID=(\d+):42`)[1], r2.Expect(`PID=(\d+):42`)[1]
	if p1 == p2 {
		t.Errorf("both sessions ran under one rlogind (%s)", p1)
	}
	// Each rlogind exits after its connection: inetd reaps them.
	deadline := time.Now().Add(shortTimeout)
	for {
		log := readLog()
		if strings.Count(log, `msg="session ended"`) == 2 && strings.Contains(log, "status=7") && strings.Contains(log, "status=8") &&
			!pidAlive(p1) && !pidAlive(p2) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("sessions not logged as ended, or rlogind still running:\n%s", log)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if strings.Contains(r1.Output(), "level=") || strings.Contains(r2.Output(), "level=") {
		t.Errorf("log lines reached the client: %q %q", r1.Output(), r2.Output())
	}
}

// TestInetdSeparated runs rlogind -inetd as root under a real inetd, with privilege separation
// (the default as root): the rlogind inetd starts is the connection's monitor, runs the login
// there (PAM on its main thread in a build with PAM) and a network process, and a user's key
// login works; with PAM the client gets the shell's exit status, without it login(1)'s 0.
func TestInetdSeparated(t *testing.T) {
	if _, err := os.Stat(inetdBinary); err != nil {
		t.Skipf("no inetd (Debian package openbsd-inetd): %v", err)
	}
	logintest.RequireRoot(t)
	exe := logintest.WorldExecutableCopy(t) // the network process runs it with no rights
	u := logintest.AddUser(t, "rlt-inetd-ps")
	dir := t.TempDir()
	hostKeyPath := filepath.Join(dir, "host_key")
	hostKey, _, err := keys.LoadOrCreate(hostKeyPath)
	if err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "rlogind.conf")
	if err := os.WriteFile(conf, []byte("password-authentication no\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, "rlogind.log")
	inetd, addr := startInetd(t, dir, func(addr string) string {
		return fmt.Sprintf("%s stream tcp nowait root /usr/bin/env env HOME=/root %s=1 %s -inetd -config %s -host-key %s -log-file %s\n",
			addr, asDaemonEnv, exe, conf, hostKeyPath, logPath)
	})
	readLog := func() string { data, _ := os.ReadFile(logPath); return string(data) }
	r, err := logintest.Login(t, "tcp:"+addr, hostKey.Public().(ed25519.PublicKey), u.Key,
		session.Request{User: u.Name, Term: "xterm", Window: session.WindowSize{Rows: 24, Cols: 80}})
	if err != nil {
		t.Fatalf("login: %v\nlog:\n%s\ninetd:\n%s", err, readLog(), inetd.String())
	}
	r.Send("echo I AM $(id -un).\n")
	r.Expect(`I AM rlt-inetd-ps\.`)
	want := 0 // login(1)'s
	if pamlogin.Supported {
		want = 7
	}
	r.Send("exit 7\n")
	if err := r.Wait(); !(want == 0 && err == nil || isExit(err, want)) {
		t.Fatalf("session: %v, want exit status %d\nlog:\n%s", err, want, readLog())
	}
	deadline := time.Now().Add(shortTimeout)
	for !strings.Contains(readLog(), `msg="session ended"`) {
		if time.Now().After(deadline) {
			t.Fatalf("session not logged as ended:\n%s", readLog())
		}
		time.Sleep(20 * time.Millisecond)
	}

	// rlogind -end-sessions reaches the sessions of inetd's rlogind processes too.
	r, err = logintest.Login(t, "tcp:"+addr, hostKey.Public().(ed25519.PublicKey), u.Key,
		session.Request{User: u.Name, Term: "xterm", Window: session.WindowSize{Rows: 24, Cols: 80}})
	if err != nil {
		t.Fatalf("second login: %v\nlog:\n%s", err, readLog())
	}
	r.Ready()
	end := exec.Command(exe, "-end-sessions", "-config", conf)
	end.Env = []string{"HOME=/root", asDaemonEnv + "=1"}
	// At least this one: another test's monitor still ending may be counted too.
	out, err := end.CombinedOutput()
	if err != nil || !regexp.MustCompile(`ended [1-9][0-9]* sessions`).Match(out) {
		t.Fatalf("rlogind -end-sessions: %v\n%s", err, out)
	}
	t.Logf("%s", out)
	if err := r.Wait(); err == nil || !strings.Contains(err.Error(), "service stopping") {
		t.Errorf("the session after -end-sessions: %v, want \"service stopping\"", err)
	}
}

// pidAlive reports whether process pid exists and is not a zombie.
func pidAlive(pid string) bool {
	data, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return false
	}
	i := strings.LastIndexByte(string(data), ')')
	return i >= 0 && i+2 < len(data) && data[i+2] != 'Z'
}

// startInetd runs inetd in the foreground (-d) with a configuration conf(addr) for a spare
// loopback port, and returns its output and the address once it accepts connections.
func startInetd(t *testing.T, dir string, conf func(addr string) string) (*lockedBuffer, string) {
	t.Helper()
	for try := 0; ; try++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		_ = l.Close()
		confPath := filepath.Join(dir, "inetd.conf")
		if err := os.WriteFile(confPath, []byte(conf(addr)), 0o600); err != nil {
			t.Fatal(err)
		}
		out := &lockedBuffer{}
		cmd := exec.Command(inetdBinary, "-d", confPath)
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() {
			_ = cmd.Wait()
			close(done)
		}()
		stop := func() {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-done:
			case <-time.After(shortTimeout):
				_ = cmd.Process.Kill()
				<-done
			}
		}
		if waitInetd(addr, done) {
			t.Cleanup(stop)
			return out, addr
		}
		stop()
		if try == 2 {
			t.Fatalf("inetd does not serve %s:\n%s", addr, out.String())
		}
	}
}

// waitInetd waits until inetd accepts on addr: a connection that gets a mailbox reply (the
// rlogind it starts answers HELP).
func waitInetd(addr string, exited <-chan struct{}) bool {
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return false
		default:
		}
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			_ = c.SetDeadline(time.Now().Add(shortTimeout))
			_, _ = io.WriteString(c, "HELP\r\n")
			line, err := bufio.NewReader(c).ReadString('\n')
			_ = c.Close()
			return err == nil && line == "login\r\n"
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}
