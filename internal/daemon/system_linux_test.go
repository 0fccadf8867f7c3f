package daemon

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rlogin-go/rlogin/internal/admission"
	"github.com/rlogin-go/rlogin/internal/logintest"
	"github.com/rlogin-go/rlogin/internal/termtest"
	"github.com/rlogin-go/rlogin/keys"
	"github.com/rlogin-go/rlogin/session"
	"github.com/rlogin-go/rlogin/transport"
)

// These tests run rlogind in System mode as CI does: as root, with test users made by
// useradd(8) (names starting "rlt-"), the real login(1), PAM, wtmp, real loopback sockets and
// ptys. Run as another user, they skip.

// requireSystem skips the test unless it runs as root, and fails it if a tool is missing.
func requireSystem(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("System mode tests need root: they add users and run login(1) (CI runs them as root)")
	}
	for _, tool := range []string{DefaultLoginProgram, "useradd", "userdel", "chpasswd", "last", "lastlog", "id"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("System mode tests need %s (Debian packages login, passwd, util-linux, coreutils): %v", tool, err)
		}
	}
}

// run runs a command as root and returns its output; it fails the test if the command fails.
func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), shortTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %q: %v\n%s", name, args, err, out)
	}
	return string(out)
}

// userCmd runs useradd, userdel or chpasswd (with input stdin), trying again for a while if it
// fails: tests of other packages change the user database at the same time, and these tools
// give up when they find it locked. For userdel, a user already gone is success.
func userCmd(t *testing.T, stdin string, name string, args ...string) {
	t.Helper()
	deadline := time.Now().Add(shortTimeout)
	for {
		cmd := exec.Command(name, args...)
		cmd.Stdin = strings.NewReader(stdin)
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if err == nil || name == "userdel" && errors.As(err, &ee) && ee.ExitCode() == 6 { // 6: no such user
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s %q: %v\n%s", name, args, err, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// testUser is a local user made for a test.
type testUser struct {
	name, home, password string
	uid, gid             int
	key                  ed25519.PrivateKey // listed in ~/.rlogin/authorized_keys, if written
}

// addUser makes the user name (a leftover of a crashed run is removed first) with /bin/bash as
// its shell, a home in /home, the extra group "users" and a random password; the test's cleanup
// removes it.
func addUser(t *testing.T, name string) *testUser {
	t.Helper()
	if !strings.HasPrefix(name, "rlt-") {
		t.Fatalf("test user %q must start with rlt-", name)
	}
	if _, err := user.Lookup(name); err == nil {
		t.Logf("removing the leftover user %s", name)
		userCmd(t, "", "userdel", "-r", "-f", name)
	}
	home := filepath.Join("/home", name)
	if _, err := os.Lstat(home); err == nil {
		if err := os.RemoveAll(home); err != nil {
			t.Fatal(err)
		}
	}
	userCmd(t, "", "useradd", "-m", "-d", home, "-s", "/bin/bash", "-G", "users", "-c", "rlogind test", name)
	t.Cleanup(func() {
		waitFor(t, "the processes of "+name+" to end", func() bool { return len(userProcesses(name)) == 0 })
		userCmd(t, "", "userdel", "-r", "-f", name)
	})
	u, err := user.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	tu := &testUser{name: name, home: u.HomeDir, password: "Rlt-" + hex.EncodeToString(newKey(t).Seed()[:9])}
	tu.uid, _ = strconv.Atoi(u.Uid)
	tu.gid, _ = strconv.Atoi(u.Gid)
	userCmd(t, name+":"+tu.password+"\n", "chpasswd")
	return tu
}

// authorize writes a fresh key into u's ~/.rlogin/authorized_keys, owned by u, with mode.
func (u *testUser) authorize(t *testing.T, mode os.FileMode) {
	t.Helper()
	u.key = newKey(t)
	dir := filepath.Join(u.home, ".rlogin")
	path := filepath.Join(dir, "authorized_keys")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, keys.MarshalAuthorizedKey(pubOf(u.key), u.name), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{dir, path} {
		if err := os.Chown(p, u.uid, u.gid); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

// userProcesses lists the live processes whose real uid is the user name's.
func userProcesses(name string) []int {
	u, err := user.Lookup(name)
	if err != nil {
		return nil
	}
	var pids []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || gone(pid) {
			continue
		}
		status, err := os.ReadFile(filepath.Join("/proc", e.Name(), "status"))
		if err != nil {
			continue
		}
		for line := range strings.Lines(string(status)) {
			if f := strings.Fields(line); len(f) > 1 && f[0] == "Uid:" && f[1] == u.Uid {
				pids = append(pids, pid)
			}
		}
	}
	return pids
}

// startSystem starts a System server that serves ~/.rlogin/authorized_keys of each user;
// edit, if not nil, changes its Config first.
func startSystem(t *testing.T, edit func(*Config)) *testServer {
	t.Helper()
	return startServer(t, func(c *Config) {
		c.System = true
		c.AuthorizedKeys = "~/.rlogin/authorized_keys"
		if edit != nil {
			edit(c)
		}
	})
}

func (ts *testServer) loginAs(t *testing.T, name string, key ed25519.PrivateKey) (*logintest.Remote, error) {
	t.Helper()
	return logintest.Login(t, ts.addr, pubOf(ts.hostKey), key, ts.request(name))
}

// recordingLogin makes a stand-in for login(1) that records its arguments and environment in
// the file it returns the path of, then exits.
func recordingLogin(t *testing.T) (program, record string) {
	t.Helper()
	dir := t.TempDir()
	program = filepath.Join(dir, "login")
	record = filepath.Join(dir, "record")
	script := "#!/bin/sh\n{ printf '%s\\n' \"$0\" \"$@\"; echo ENV; tr '\\0' '\\n' < /proc/$$/environ; } > " + record + "\n"
	if err := os.WriteFile(program, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return program, record
}

// lastSession returns the newest line of last(1) about user, once the session that ended
// before ended has ended for last(1) too: it says "still running" for a session whose logout
// time is the current second, by time(2), whose coarse clock may lag a tick behind ours.
func lastSession(t *testing.T, name string, ended time.Time) string {
	t.Helper()
	next := time.Unix(ended.Unix()+1, 0).Add(50 * time.Millisecond)
	waitFor(t, "the clock to pass the second of the logout", func() bool { return time.Now().After(next) })
	out := run(t, "last", "-w", "-F", name)
	for line := range strings.Lines(out) {
		if strings.HasPrefix(line, name+" ") {
			return strings.TrimSpace(line)
		}
	}
	t.Fatalf("last shows no session of %s:\n%s", name, out)
	return ""
}

// motdLine returns a line of /etc/motd that login(1) shows (through pam_motd), or "".
func motdLine() string {
	b, _ := os.ReadFile("/etc/motd")
	for line := range strings.Lines(string(b)) {
		if line = strings.TrimSpace(line); len(line) > 10 {
			return line
		}
	}
	return ""
}

// TestSystemKeyLogin logs a user in with a key: the shell runs as that user, with the user's
// groups, home, shell and terminal, through login(1): the motd, lastlog and wtmp say so.
func TestSystemKeyLogin(t *testing.T) {
	requireSystem(t)
	t.Setenv("RLOGIND_SECRET", "must-not-leak")
	alice := addUser(t, "rlt-alice")
	alice.authorize(t, 0o600)
	ts := startSystem(t, nil)
	r, err := ts.loginAs(t, alice.name, alice.key)
	if err != nil {
		t.Fatalf("login: %v\n%s", err, ts.log.String())
	}
	if m := motdLine(); m != "" {
		r.Expect(regexp.QuoteMeta(m))
	}
	r.Send(`echo "ID=$(id -u):$(id -g):$(id -G) HOME=$HOME SHELL=$SHELL PWD=$PWD USER=$USER LOGNAME=$LOGNAME TERM=$TERM LANG=$LANG TTY=$(tty) STAT=$(stat -c %u:%g:%a $(tty)) SECRET=${RLOGIND_SECRET-none} PARENT=$(cat /proc/$PPID/comm)."` + "\n")
	m := r.Expect(`ID=(\d+):(\d+):([\d ]+) HOME=(\S*) SHELL=(\S*) PWD=(\S*) USER=(\S*) LOGNAME=(\S*) TERM=(\S*) LANG=(\S*) TTY=(\S*) STAT=(\d+):(\d+):(\d+) SECRET=(\S*) PARENT=(\S*)\.`)
	wantGroups := strings.Fields(run(t, "id", "-G", alice.name))
	tty, err := user.LookupGroup("tty")
	if err != nil {
		t.Fatal(err)
	}
	mode, _ := strconv.ParseUint(m[14], 8, 32)
	for _, c := range []struct{ what, got, want string }{
		{"uid", m[1], strconv.Itoa(alice.uid)},
		{"gid", m[2], strconv.Itoa(alice.gid)},
		{"groups", strings.Join(strings.Fields(m[3]), " "), strings.Join(wantGroups, " ")},
		{"HOME", m[4], alice.home},
		{"SHELL", m[5], "/bin/bash"},
		{"working directory", m[6], alice.home},
		{"USER", m[7], alice.name},
		{"LOGNAME", m[8], alice.name},
		{"TERM", m[9], "xterm"},
		{"LANG", m[10], "C.UTF-8"},
		{"terminal owner", m[12], strconv.Itoa(alice.uid)},
		{"terminal group", m[13], tty.Gid},
		{"terminal mode for others", strconv.Itoa(int(mode & 0o007)), "0"},
		{"daemon's environment", m[15], "none"},
		{"the shell's parent", m[16], "login"},
	} {
		if c.got != c.want {
			t.Errorf("%s: %q, want %q", c.what, c.got, c.want)
		}
	}
	if !slices.Contains(wantGroups, "100") {
		t.Errorf("id -G %s = %v: the test user is not in group users", alice.name, wantGroups)
	}
	line := strings.TrimPrefix(m[11], "/dev/")
	t.Logf("terminal %s: %s:%s mode %s", m[11], m[12], m[13], m[14])

	r.Send("exit\n")
	if err := r.Wait(); err != nil {
		t.Fatalf("Wait: %v", err)
	}
	ts.waitLog(`msg="authentication succeeded" .*method=publickey user=rlt-alice`)
	ts.waitLog(`msg="session started" .*user=rlt-alice method=publickey`)
	ts.waitLog(`msg="session ended" .*user=rlt-alice`)
	got := lastSession(t, alice.name, time.Now())
	if !strings.Contains(got, " "+line+" ") || !strings.Contains(got, "127.0.0.1") || !strings.Contains(got, " - ") ||
		strings.Contains(got, "still") || strings.Contains(got, "gone") {
		t.Errorf("last does not show the ended session on %s from 127.0.0.1:\n%s", line, got)
	}
	if ll := run(t, "lastlog", "-u", alice.name); !strings.Contains(ll, line) || !strings.Contains(ll, "127.0.0.1") {
		t.Errorf("lastlog does not show the login on %s from 127.0.0.1:\n%s", line, ll)
	}
}

// TestSystemPasswordLogin logs a user without an authorized key in with the password, which
// login(1) asks for in the session.
func TestSystemPasswordLogin(t *testing.T) {
	requireSystem(t)
	bob := addUser(t, "rlt-bob")
	ts := startSystem(t, func(c *Config) { c.PasswordAuthentication = true })
	stranger := newKey(t)

	t.Run("password", func(t *testing.T) {
		r, err := ts.loginAs(t, bob.name, stranger)
		if err != nil {
			t.Fatalf("login: %v", err)
		}
		r.Expect(`Password: `)
		r.Send(bob.password + "\r")
		r.Send("echo I AM $(id -un) $(id -u).\r")
		if m := r.Expect(`I AM (\S+) (\d+)\.`); m[1] != bob.name || m[2] != strconv.Itoa(bob.uid) {
			t.Errorf("the shell runs as %s (%s), want %s (%d)", m[1], m[2], bob.name, bob.uid)
		}
		if strings.Contains(r.Output(), bob.password) {
			t.Error("the password was echoed")
		}
		r.Send("exit\r")
		if err := r.Wait(); err != nil {
			t.Fatalf("Wait: %v", err)
		}
		ts.waitLog(`msg="key not authorized; the password is asked" .*method=password user=rlt-bob`)
		ts.waitLog(`msg="authentication succeeded" .*user=rlt-bob method=password`)
	})

	t.Run("typed ahead", func(t *testing.T) {
		// Everything typed at once, before the prompt: the gate passes the password when login(1)
		// asks for it, and the command once the session has started.
		r, err := ts.loginAs(t, bob.name, stranger)
		if err != nil {
			t.Fatalf("login: %v", err)
		}
		r.Send(bob.password + "\recho TYPED$((40+2))\rexit\r")
		r.Expect(`TYPED42`)
		if err := r.Wait(); err != nil {
			t.Fatalf("Wait: %v", err)
		}
	})

	t.Run("wrong password then root", func(t *testing.T) {
		// After a wrong password login(1) asks for a user name: what is typed then must not
		// reach it, or anyone could log in as root.
		r, err := ts.loginAs(t, bob.name, stranger)
		if err != nil {
			t.Fatalf("login: %v", err)
		}
		r.Expect(`Password: `)
		r.Send("wrong-password\rroot\rrootpw\r")
		err = r.Wait()
		out := r.Output()
		if !strings.Contains(out, "Login incorrect") || strings.Count(out, "Password:") != 1 || strings.Contains(out, "root\r\n") {
			t.Errorf("output %q: want one password prompt, Login incorrect and the end", out)
		}
		var ee *session.ExitError
		if !errors.As(err, &ee) || ee.Signal == "" {
			t.Errorf("Wait: %v, want login(1) hung up", err)
		}
		ts.waitLog(`msg="authentication failed" .*user=rlt-bob method=password reason=".*asked for something other than a secret`)
	})
	if strings.Contains(ts.log.String(), "level=ERROR") {
		t.Errorf("errors in the log:\n%s", ts.log.String())
	}
}

// TestSystemPasswordHangupCharged: a password guess whose client hangs up before login(1) has
// answered (before its fail delay) is a failed attempt all the same: logged as one with the
// user, the source and the method, never as a session, and charged to its source, which is
// refused once its penalty is active. Before, such guessers were never charged.
func TestSystemPasswordHangupCharged(t *testing.T) {
	requireSystem(t)
	bob := addUser(t, "rlt-hbob")
	ts := startSystem(t, func(c *Config) {
		c.PasswordAuthentication = true
		c.PerSourcePenalties = &admission.Penalties{AuthFail: time.Hour, Max: 2 * time.Hour}
	})
	for _, tc := range []struct{ name, typed, src string }{
		{"guess then hang up", "wrong-guess\r", "127.0.0.2"},
		{"hang up at the prompt", "", "127.0.0.3"},
	} {
		// Not subtests: ts.waitLog fails the test that started ts.
		src := tc.src
		r, err := loginFromAs(t, ts, src, newKey(t), bob.name)
		if err != nil {
			t.Fatalf("%s: login: %v", tc.name, err)
		}
		r.Expect(`Password: `)
		if tc.typed != "" {
			r.Send(tc.typed)
		}
		_ = r.Close() // at once: login(1) has not answered yet
		_ = r.Wait()
		// The reason depends on who saw the end first: the gate (login(1) ended) or the
		// session (the connection ended).
		ts.waitLog(`msg="authentication failed" .*remote=` + src + `:.*user=rlt-hbob method=password reason="(the connection ended before the password was accepted|login\(1\) ended before the session started)"`)
		ts.waitLog(`msg="source penalized.*source=` + src + `/32 reason="failed authentication"`)
		c := dialFrom(t, ts.addr, src)
		expectDropped(t, c, dropPenalty)
		_ = c.Close()
	}
	if log := ts.log.String(); strings.Contains(log, `msg="session started"`) {
		t.Fatalf("a failed password login was logged as a session:\n%s", log)
	}
}

// TestSystemPasswordOff refuses a key that is not authorized when password logins are off (the
// default of Config).
func TestSystemPasswordOff(t *testing.T) {
	requireSystem(t)
	bob := addUser(t, "rlt-bob")
	bob.authorize(t, 0o600)
	program, record := recordingLogin(t)
	ts := startSystem(t, func(c *Config) { c.LoginProgram = program })
	_, err := ts.loginAs(t, bob.name, newKey(t))
	var re *session.RefusedError
	if !errors.As(err, &re) || re.Reason != reasonDenied {
		t.Fatalf("login with an unlisted key: %v, want refusal %q", err, reasonDenied)
	}
	ts.waitLog(`msg="authentication failed" .*method=publickey user=rlt-bob reason="key not in /home/rlt-bob/.rlogin/authorized_keys"`)
	if _, err := os.Stat(record); !os.IsNotExist(err) {
		t.Fatalf("login(1) ran: %v", err)
	}
}

// TestSystemLoginArguments checks, with a stand-in for login(1), exactly what login(1) gets:
// "login -p -h HOST -f -- USER" and only TERM and the locale in its environment.
func TestSystemLoginArguments(t *testing.T) {
	requireSystem(t)
	t.Setenv("RLOGIND_SECRET", "must-not-leak")
	alice := addUser(t, "rlt-alice")
	alice.authorize(t, 0o600)
	program, record := recordingLogin(t)
	ts := startSystem(t, func(c *Config) { c.LoginProgram = program })
	r, err := ts.loginAs(t, alice.name, alice.key)
	if err != nil {
		t.Fatal(err)
	}
	_ = r.Wait()
	b, err := os.ReadFile(record)
	if err != nil {
		t.Fatal(err)
	}
	want := program + "\n-p\n-h\n127.0.0.1\n-f\n--\nrlt-alice\nENV\nTERM=xterm\nLANG=C.UTF-8\n"
	if string(b) != want {
		t.Errorf("login(1) got\n%s\nwant\n%s", b, want)
	}
}

// TestSystemHostileNames sends the names of CVE-1999-0113 and its kin: each is refused before
// anything runs, with password logins on (so no fallback lets them through).
func TestSystemHostileNames(t *testing.T) {
	requireSystem(t)
	program, record := recordingLogin(t)
	ts := startSystem(t, func(c *Config) {
		c.LoginProgram = program
		c.PasswordAuthentication = true
	})
	names := append(logintest.HostileUserNames(), "rlt-nosuchuser", "root")
	for _, name := range names {
		t.Run(strconv.Quote(name), func(t *testing.T) {
			reason, accepted := rawLogin(t, ts, name, "xterm", nil)
			if accepted {
				t.Fatalf("login as %q was accepted", name)
			}
			if kids := children(); len(kids) != 0 {
				t.Fatalf("child processes after refusing %q: %v", name, kids)
			}
			t.Logf("%q refused: %s", name, reason)
		})
	}
	if _, err := os.Stat(record); !os.IsNotExist(err) {
		b, _ := os.ReadFile(record)
		t.Fatalf("login(1) ran:\n%s", b)
	}
	log := ts.log.String()
	if strings.Contains(log, "session started") || strings.ContainsAny(log, "\x00\x1b") {
		t.Fatalf("a login went ahead, or a raw control character reached the log:\n%q", log)
	}
	if n := strings.Count(log, "login refused") + strings.Count(log, "login failed"); n != len(names) {
		t.Errorf("%d refusals logged, want %d:\n%s", n, len(names), log)
	}
}

// rootKeys makes a root-owned directory for AuthorizedKeys "DIR/%u" and authorizes a fresh key
// for root there; it returns the pattern and the key.
func rootKeys(t *testing.T) (pattern string, key ed25519.PrivateKey) {
	t.Helper()
	dir, err := os.MkdirTemp("/run", "rlt-keys-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	key = newKey(t)
	if err := os.WriteFile(filepath.Join(dir, "root"), keys.MarshalAuthorizedKey(pubOf(key), "root"), 0o600); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, "%u"), key
}

// TestSystemRootLogin checks PermitRootLogin: root is refused by default even with an
// authorized key, logs in with one under "yes" and "prohibit-password", and never falls back to
// a password under "prohibit-password".
func TestSystemRootLogin(t *testing.T) {
	requireSystem(t)
	pattern, rootKey := rootKeys(t)
	for _, tc := range []struct {
		permit   string
		key      bool // use root's authorized key
		accepted bool
	}{
		{"", true, false},
		{PermitRootNo, true, false},
		{PermitRootNo, false, false},
		{PermitRootProhibitPassword, false, false},
		{PermitRootProhibitPassword, true, true},
		{PermitRootYes, true, true},
	} {
		t.Run(fmt.Sprintf("%s/key=%v", tc.permit, tc.key), func(t *testing.T) {
			ts := startSystem(t, func(c *Config) {
				c.AuthorizedKeys = pattern
				c.PermitRootLogin = tc.permit
				c.PasswordAuthentication = true
			})
			key := newKey(t)
			if tc.key {
				key = rootKey
			}
			r, err := ts.loginAs(t, "root", key)
			if !tc.accepted {
				var re *session.RefusedError
				if !errors.As(err, &re) || re.Reason != reasonDenied {
					t.Fatalf("root login: %v, want refusal %q", err, reasonDenied)
				}
				if strings.Contains(ts.log.String(), "session started") {
					t.Fatal("a session started")
				}
				return
			}
			if err != nil {
				t.Fatalf("root login: %v", err)
			}
			r.Send("echo UID=$(id -u).; exit\n")
			r.Expect(`UID=0\.`)
			if err := r.Wait(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestSystemAuthorizedKeysWritable refuses the key of a user whose authorized_keys others may
// write; with password logins on, the client only gets login(1)'s password prompt.
func TestSystemAuthorizedKeysWritable(t *testing.T) {
	requireSystem(t)
	carol := addUser(t, "rlt-carol")
	carol.authorize(t, 0o666)
	for _, passwords := range []bool{false, true} {
		t.Run(fmt.Sprintf("passwords=%v", passwords), func(t *testing.T) {
			ts := startSystem(t, func(c *Config) { c.PasswordAuthentication = passwords })
			r, err := ts.loginAs(t, carol.name, carol.key)
			ts.waitLog(`msg="cannot use the authorized keys file" .*user=rlt-carol .*writable by group or others`)
			if !passwords {
				var re *session.RefusedError
				if !errors.As(err, &re) || re.Reason != reasonDenied {
					t.Fatalf("login: %v, want refusal %q", err, reasonDenied)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			r.Expect(`Password: `)
			_ = r.Close()
			_ = r.Wait()
			ts.waitLog(`msg="authentication failed" .*reason="the connection ended before the password was accepted"`)
			if strings.Contains(ts.log.String(), "authentication succeeded") {
				t.Fatalf("authenticated:\n%s", ts.log.String())
			}
		})
	}
}

// TestSystemNologin checks that /etc/nologin refuses users other than root, with its message.
// The nologin files that refuse logins (pam_nologin(8)).
const (
	runNologinPath = "/var/run/nologin"
	etcNologinPath = "/etc/nologin"
)

func TestSystemNologin(t *testing.T) {
	requireSystem(t)
	const marker = "rlt test: logins are off for maintenance"
	old, oldErr := os.ReadFile(etcNologinPath)
	if oldErr == nil && strings.HasPrefix(string(old), marker) {
		oldErr = os.ErrNotExist // a leftover of ours from a crashed run
	}
	var oldMode os.FileMode = 0o644
	if fi, err := os.Stat(etcNologinPath); err == nil {
		oldMode = fi.Mode().Perm()
	}
	t.Cleanup(func() {
		if oldErr == nil {
			if err := os.WriteFile(etcNologinPath, old, oldMode); err != nil {
				t.Error(err)
			}
			return
		}
		if err := os.Remove(etcNologinPath); err != nil && !os.IsNotExist(err) {
			t.Error(err)
		}
	})
	if err := os.WriteFile(etcNologinPath, []byte(marker+"\nuntil 15:00.\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(runNologinPath); err == nil {
		t.Logf("%s exists too", runNologinPath)
	}

	alice := addUser(t, "rlt-alice")
	alice.authorize(t, 0o600)
	pattern, rootKey := rootKeys(t)
	// Users' keys in their homes, root's in the test's directory.
	rootDir := filepath.Dir(pattern)
	ts := startSystem(t, func(c *Config) {
		c.PermitRootLogin = PermitRootYes
		c.PasswordAuthentication = true
	})
	_, err := ts.loginAs(t, alice.name, alice.key)
	var re *session.RefusedError
	if !errors.As(err, &re) || !strings.Contains(re.Reason, marker+" until 15:00.") {
		t.Fatalf("login as %s: %v, want a refusal with the nologin message", alice.name, err)
	}
	// The password path too.
	_, err = ts.loginAs(t, alice.name, newKey(t))
	if !errors.As(err, &re) || !strings.Contains(re.Reason, marker) {
		t.Fatalf("password login as %s: %v, want a refusal with the nologin message", alice.name, err)
	}
	ts.waitLog(`msg="login refused" .*user=rlt-alice reason=nologin`)

	// Root still gets in.
	rs := startSystem(t, func(c *Config) {
		c.PermitRootLogin = PermitRootYes
		c.AuthorizedKeys = filepath.Join(rootDir, "%u")
	})
	r, err := rs.loginAs(t, "root", rootKey)
	if err != nil {
		t.Fatalf("root login with nologin: %v", err)
	}
	r.Send("echo UID=$(id -u).; exit\n")
	r.Expect(`UID=0\.`)
	if err := r.Wait(); err != nil {
		t.Fatal(err)
	}
}

// The client of TestSystemClientKilled runs in a process of its own, so that it can be killed:
// the test binary started with clientProcEnv set.
const clientProcEnv = "RLOGIND_TEST_CLIENT"

func init() {
	if os.Getenv(clientProcEnv) != "" {
		os.Exit(clientProcess())
	}
}

// clientProcess logs in to RLT_ADDR (host key RLT_HOSTKEY, client key seed RLT_KEY, both hex)
// as RLT_USER and relays its standard input and output.
func clientProcess() int {
	hostPub, err1 := hex.DecodeString(os.Getenv("RLT_HOSTKEY"))
	seed, err2 := hex.DecodeString(os.Getenv("RLT_KEY"))
	if err := errors.Join(err1, err2); err != nil || len(seed) != ed25519.SeedSize {
		fmt.Fprintln(os.Stderr, "bad keys:", err)
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := transport.DialMailbox(ctx, os.Getenv("RLT_ADDR"), MailboxName)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	sc, err := transport.Client(ctx, conn, &transport.SecureConfig{
		Key: ed25519.NewKeyFromSeed(seed),
		VerifyPeer: func(pub ed25519.PublicKey) error {
			if !bytes.Equal(pub, hostPub) {
				return errors.New("wrong host key")
			}
			return nil
		},
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	c := session.NewClient(sc, session.Request{User: os.Getenv("RLT_USER"), Term: "dumb", Window: session.WindowSize{Rows: 24, Cols: 80}})
	c.Stdin, c.Stdout = os.Stdin, os.Stdout
	if err := c.Run(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// TestSystemClientKilled kills the client with SIGKILL: the user's shell gets SIGHUP, and no
// process of the session remains.
func TestSystemClientKilled(t *testing.T) {
	requireSystem(t)
	alice := addUser(t, "rlt-alice")
	alice.authorize(t, 0o600)
	ts := startSystem(t, nil)

	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	client := exec.Command(exe, "-test.run=^$")
	client.Env = []string{
		clientProcEnv + "=1",
		"RLT_ADDR=" + ts.addr,
		"RLT_HOSTKEY=" + hex.EncodeToString(pubOf(ts.hostKey)),
		"RLT_KEY=" + hex.EncodeToString(alice.key.Seed()),
		"RLT_USER=" + alice.name,
	}
	stdin, err := client.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out := &termtest.Buffer{}
	client.Stdout, client.Stderr = out, out
	if err := client.Start(); err != nil {
		t.Fatal(err)
	}
	waited := false
	t.Cleanup(func() {
		if !waited {
			_ = client.Process.Kill()
			_ = client.Wait()
		}
	})
	hupFile := filepath.Join(alice.home, "hup")
	fmt.Fprintf(stdin, "trap 'echo hup > %s; exit 1' HUP; sleep 1000 & echo PIDS $$ $! $((40+2)).\n", hupFile)
	mark := 0
	m, ok := out.Expect(&mark, regexp.MustCompile(`PIDS (\d+) (\d+) 42\.`), shortTimeout)
	if !ok {
		t.Fatalf("no shell: %q\n%s", out.String(), ts.log.String())
	}
	shell, _ := strconv.Atoi(m[1])
	sleeper, _ := strconv.Atoi(m[2])
	loginPid, _ := strconv.Atoi(ts.waitLog(`msg="session started" .*pid=(\d+)`)[1])
	if err := client.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = client.Wait()
	waited = true

	waitFor(t, "the shell's SIGHUP trap", func() bool {
		b, _ := os.ReadFile(hupFile)
		return string(b) == "hup\n"
	})
	waitFor(t, "the session's processes to end", func() bool {
		return gone(shell) && gone(sleeper) && gone(loginPid) && len(userProcesses(alice.name)) == 0
	})
	ts.waitLog(`msg="session ended" .*user=rlt-alice`)
	// login(1) was killed: the logout record is the daemon's alone.
	got := lastSession(t, alice.name, time.Now())
	if !strings.Contains(got, " - ") || strings.Contains(got, "still") || strings.Contains(got, "gone") {
		t.Errorf("last does not show the session's logout: %s", got)
	}
}
