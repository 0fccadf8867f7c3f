//go:build pam && cgo && linux

package pamlogin_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	creack "github.com/creack/pty"

	"github.com/rlogin-go/rlogin/internal/logintest"
	"github.com/rlogin-go/rlogin/internal/pamlogin"
)

// password is the test users' password.
const password = "rlt-pam-Secret9"

// timeout bounds every wait of these tests: one that needs longer is a failure.
const timeout = 20 * time.Second

// script is a conversation that answers prompts from its answers, in order, and records what
// PAM said.
type script struct {
	mu      sync.Mutex
	answers []string
	said    []string // "prompt(echo=false): Password: ", "info: ...", "error: ..."
}

func (s *script) Prompt(ctx context.Context, text string, echo bool) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.said = append(s.said, fmt.Sprintf("prompt(echo=%v): %s", echo, text))
	if len(s.answers) == 0 {
		return "", errors.New("no more answers")
	}
	a := s.answers[0]
	s.answers = s.answers[1:]
	return a, nil
}

func (s *script) Info(ctx context.Context, text string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.said = append(s.said, "info: "+text)
	return nil
}

func (s *script) Error(ctx context.Context, text string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.said = append(s.said, "error: "+text)
	return nil
}

// prompts returns the prompts PAM asked.
func (s *script) prompts() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var p []string
	for _, m := range s.said {
		if strings.HasPrefix(m, "prompt") {
			p = append(p, m)
		}
	}
	return p
}

// records is a LoginRecords that remembers its calls.
type records struct {
	mu    sync.Mutex
	calls []string
}

func (r *records) Login(line, user, host string, pid int) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, fmt.Sprintf("login %s %s %s %d", line, user, host, pid))
	return nil
}

func (r *records) Logout(line string, pid int) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, fmt.Sprintf("logout %s %d", line, pid))
	return nil
}

// passwordUser makes a test user with the test password, member of the group "users" too.
func passwordUser(t *testing.T, name string) *logintest.User {
	t.Helper()
	u := logintest.AddUser(t, name)
	logintest.SetPassword(t, u, password)
	if out, err := exec.Command("usermod", "-a", "-G", "users", name).CombinedOutput(); err != nil {
		t.Fatalf("usermod: %v\n%s", err, out)
	}
	return u
}

// authenticate runs Authenticate for name with answers, within timeout.
func authenticate(t *testing.T, name string, conv pamlogin.Conversation) (*pamlogin.Login, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return pamlogin.Authenticate(ctx, pamlogin.Config{User: name, RemoteHost: "client.example"}, conv)
}

// runOnPTY starts l's program p on a new pty, types input on it, and returns all the program
// wrote and its exit status. A watchdog kills the program and fails the test if it takes longer
// than timeout.
func runOnPTY(t *testing.T, l *pamlogin.Login, p pamlogin.Program, input string) (string, int) {
	t.Helper()
	master, slave, err := creack.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer master.Close()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	p.TTY = slave
	mainThread(func() { err = l.Start(ctx, p) })
	_ = slave.Close() // the program has its own copies
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	if _, err := master.WriteString(input); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	read := make(chan struct{})
	go func() {
		defer close(read)
		_, _ = io.Copy(&out, master) // ends with EIO once the program and its terminal are gone
	}()
	watchdog := time.AfterFunc(timeout, func() {
		t.Errorf("the session did not end within %v", timeout)
		_ = l.Process().Kill()
		_ = master.Close()
	})
	defer watchdog.Stop()
	status, err := l.Wait()
	if err != nil {
		t.Errorf("Wait: %v", err)
	}
	<-read
	return strings.ReplaceAll(out.String(), "\r\n", "\n"), status
}

// runCommand runs command on a new pty as l's program (runOnPTY).
func runCommand(t *testing.T, l *pamlogin.Login, command string) (string, int) {
	t.Helper()
	return runOnPTY(t, l, pamlogin.Program{Term: "xterm", Locale: []string{"LANG=C.UTF-8"}, Command: command}, "")
}

// fields returns the values of "name=value" lines of out.
func fields(out string) map[string]string {
	m := map[string]string{}
	for line := range strings.Lines(out) {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), "="); ok {
			m[k] = v
		}
	}
	return m
}

func TestPasswordLoginRunsSession(t *testing.T) {
	u := passwordUser(t, "rlt-pam-ok")
	t.Setenv("PAMLOGIN_TEST_LEAK", "1") // must not reach the session
	conv := &script{answers: []string{password}}
	recs := &records{}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	l, err := pamlogin.Authenticate(ctx, pamlogin.Config{User: u.Name, RemoteHost: "client.example", Records: recs}, conv)
	if err != nil {
		t.Fatalf("Authenticate: %v (conversation: %q)", err, conv.said)
	}
	defer l.Close()
	if got, want := conv.prompts(), []string{"prompt(echo=false): Password: "}; !slices.Equal(got, want) {
		t.Errorf("prompts %q, want %q", got, want)
	}
	out, status := runCommand(t, l, `echo uid=$(id -u); echo gid=$(id -g); echo groups=$(id -G); echo home=$HOME; `+
		`echo pwd=$(pwd); echo tty=$(tty); echo ctty=$(ps -o tty= -p $$); echo sid=$(ps -o sid= -p $$) pid=$$; `+
		`echo term=$TERM; echo lang=$LANG; echo user=$USER; echo logname=$LOGNAME; echo shell=$SHELL; `+
		`echo path=$PATH; echo leak=$PAMLOGIN_TEST_LEAK; echo loginuid=$(cat /proc/self/loginuid); exit 3`)
	if status != 3 {
		t.Errorf("exit status %d, want 3; output:\n%s", status, out)
	}
	f := fields(out)
	pw, err := user.Lookup(u.Name)
	if err != nil {
		t.Fatal(err)
	}
	gids, err := pw.GroupIds()
	if err != nil {
		t.Fatal(err)
	}
	gotGroups := strings.Fields(f["groups"])
	slices.Sort(gotGroups)
	slices.Sort(gids)
	want := map[string]string{
		"uid": strconv.Itoa(u.UID), "gid": strconv.Itoa(u.GID), "home": u.Home, "pwd": u.Home,
		"term": "xterm", "lang": "C.UTF-8", "user": u.Name, "logname": u.Name, "shell": "/bin/bash", "leak": "",
		"loginuid": strconv.Itoa(u.UID), // pam_loginuid, on the main thread
	}
	for k, v := range want {
		if f[k] != v {
			t.Errorf("%s=%q, want %q", k, f[k], v)
		}
	}
	if !slices.Equal(gotGroups, gids) || !slices.Contains(gids, "100") {
		t.Errorf("groups %q, want %q, with 100 (users)", gotGroups, gids)
	}
	if !strings.HasPrefix(f["tty"], "/dev/pts/") || "/dev/"+f["ctty"] != f["tty"] {
		t.Errorf("tty %q, controlling terminal %q: want the session's pty as both", f["tty"], f["ctty"])
	}
	if s := strings.Fields(f["sid"]); len(s) != 2 || s[0] != strings.TrimPrefix(s[1], "pid=") {
		t.Errorf("sid %q: the shell is not a session leader", f["sid"])
	}
	if f["path"] == "" || strings.Contains(f["path"], "sbin") {
		t.Errorf("PATH %q, want login.defs' ENV_PATH (no sbin)", f["path"])
	}
	if motd, err := os.ReadFile("/etc/motd"); err == nil && len(bytes.TrimSpace(motd)) > 0 {
		first, _, _ := strings.Cut(strings.TrimSpace(string(motd)), "\n")
		if !slices.ContainsFunc(conv.said, func(m string) bool { return strings.HasPrefix(m, "info: ") && strings.Contains(m, first) }) {
			t.Errorf("the message of the day (pam_motd) did not come through Info: %q", conv.said)
		}
	}
	line := strings.TrimPrefix(f["tty"], "/dev/")
	recs.mu.Lock()
	defer recs.mu.Unlock()
	if len(recs.calls) != 2 || !strings.HasPrefix(recs.calls[0], "login "+line+" "+u.Name+" client.example ") ||
		!strings.HasPrefix(recs.calls[1], "logout "+line+" ") {
		t.Errorf("login records %q, want a login and a logout on %s", recs.calls, line)
	}
}

func TestLoginShellArgv0(t *testing.T) {
	u := passwordUser(t, "rlt-pam-argv")
	l, err := authenticate(t, u.Name, &script{answers: []string{password}})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	// No Command: a login shell; its input says what it is, then ends it.
	out, status := runOnPTY(t, l, pamlogin.Program{Term: "dumb"}, "echo argv0=$0; shopt -q login_shell && echo login=yes; exit 7\n")
	if status != 7 {
		t.Errorf("exit status %d, want 7", status)
	}
	f := fields(out)
	if f["argv0"] != "-bash" || f["login"] != "yes" {
		t.Errorf("argv0=%q login=%q, want -bash, yes; output:\n%s", f["argv0"], f["login"], out)
	}
}

// TestRefusedAlike: a wrong password is refused with PAM's reason after a "Password: " prompt
// with echo off, and a user that does not exist gets the same prompt and the same refusal.
func TestRefusedAlike(t *testing.T) {
	u := passwordUser(t, "rlt-pam-bad")
	const unknown = "rlt-pam-nobody"
	if _, err := user.Lookup(unknown); err == nil {
		t.Fatalf("user %s exists", unknown)
	}
	const want = "pamlogin: login refused: Authentication failure"
	for _, tc := range []struct{ name, user, answer string }{
		{"wrong password", u.Name, "not the password"},
		{"unknown user", unknown, password},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel() // each waits out PAM's failure delay
			conv := &script{answers: []string{tc.answer}}
			l, err := authenticate(t, tc.user, conv)
			if err == nil {
				l.Close()
				t.Fatal("accepted")
			}
			if !errors.Is(err, pamlogin.ErrRefused) || err.Error() != want {
				t.Errorf("error %q: want ErrRefused, %q", err, want)
			}
			if got, want := conv.prompts(), []string{"prompt(echo=false): Password: "}; !slices.Equal(got, want) {
				t.Errorf("prompts %q, want %q", got, want)
			}
		})
	}
}

// TestExpiredPassword: a password that must be changed (chage -d 0) is changed through the
// conversation, after which the new one logs in; a client that cannot answer is refused.
func TestExpiredPassword(t *testing.T) {
	u := passwordUser(t, "rlt-pam-expired")
	expire := func() {
		t.Helper()
		if out, err := exec.Command("chage", "-d", "0", u.Name).CombinedOutput(); err != nil {
			t.Fatalf("chage: %v\n%s", err, out)
		}
	}
	expire()
	l, err := authenticate(t, u.Name, &script{answers: []string{password}}) // no new password given
	if err == nil {
		l.Close()
		t.Fatal("a login with an expired password that was not changed was accepted")
	}
	if !errors.Is(err, pamlogin.ErrRefused) {
		t.Errorf("error %v, want ErrRefused", err)
	}
	const changed = "rlt-pam-Changed7!x"
	conv := &script{answers: []string{password, password, changed, changed}}
	l, err = authenticate(t, u.Name, conv)
	if err != nil {
		t.Fatalf("Authenticate with a change of password: %v (conversation %q)", err, conv.said)
	}
	l.Close()
	t.Logf("conversation: %q", conv.said)
	l, err = authenticate(t, u.Name, &script{answers: []string{changed}})
	if err != nil {
		t.Fatalf("the changed password: %v", err)
	}
	l.Close()
}

// TestFailureTiming measures how long a refusal takes for a known user with a wrong password
// and for an unknown user (-v shows the times): the two must not be told apart. The refusals run
// at once, each on a thread and PAM transaction of its own (Authenticate called from a goroutine
// other than the main one): each one's time is its own, since the delay is a timer of the call's,
// and the test waits out one delay instead of six.
func TestFailureTiming(t *testing.T) {
	u := passwordUser(t, "rlt-pam-time")
	const runs = 3
	type refusal struct {
		name     string
		took     time.Duration
		accepted bool
	}
	refusals := make(chan refusal, 2*runs)
	for range runs {
		for _, name := range []string{u.Name, "rlt-pam-nobody"} {
			go func() {
				start := time.Now()
				l, err := authenticate(t, name, &script{answers: []string{"wrong"}})
				took := time.Since(start)
				if err == nil {
					l.Close()
				}
				refusals <- refusal{name, took, err == nil}
			}()
		}
	}
	var known, unknown []time.Duration
	for range 2 * runs {
		r := <-refusals // each call is bounded by authenticate's timeout
		if r.accepted {
			t.Errorf("%s was accepted", r.name)
		}
		if r.name == u.Name {
			known = append(known, r.took)
		} else {
			unknown = append(unknown, r.took)
		}
	}
	t.Logf("known user, wrong password: %v", known)
	t.Logf("unknown user:               %v", unknown)
	// login's stack asks for 3 s, randomized by PAM (±50% at most): both must take that.
	for _, d := range append(slices.Clone(known), unknown...) {
		if d < logintest.PAMRefusalMin || d > logintest.PAMRefusalMax {
			t.Errorf("a refusal took %v: want PAM's delay, 1.5 to 4.5 s", d)
		}
	}
}

func TestDeadlineDuringPrompt(t *testing.T) {
	u := passwordUser(t, "rlt-pam-slow")
	const deadline = 500 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	start := time.Now()
	l, err := pamlogin.Authenticate(ctx, pamlogin.Config{User: u.Name}, blocked{})
	took := time.Since(start)
	if err == nil {
		l.Close()
		t.Fatal("a login without an answer was accepted")
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error %v, want the context's", err)
	}
	// PAM's failure delay (1.5 to 4.5 s on login's stack) must not hold it: scheduling slack only.
	if took > deadline+time.Second {
		t.Errorf("Authenticate returned %v after it started, past its %v deadline", took, deadline)
	}
}

// blocked is a conversation whose user never answers.
type blocked struct{}

func (blocked) Prompt(ctx context.Context, _ string, _ bool) (string, error) {
	<-ctx.Done()
	return "", ctx.Err()
}
func (blocked) Info(context.Context, string) error  { return nil }
func (blocked) Error(context.Context, string) error { return nil }

func TestKilledProgramStatus(t *testing.T) {
	u := passwordUser(t, "rlt-pam-kill")
	l, err := authenticate(t, u.Name, &script{answers: []string{password}})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	out, status := runCommand(t, l, "kill -KILL $$")
	if status != 128+9 {
		t.Errorf("status %d, want 137; output:\n%s", status, out)
	}
}

func TestAccountOnlyWithFiles(t *testing.T) {
	u := passwordUser(t, "rlt-pam-key")
	conv := &script{} // no answers: a key login is asked nothing
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	l, err := pamlogin.Account(ctx, pamlogin.Config{User: u.Name}, conv)
	if err != nil {
		t.Fatalf("Account: %v (conversation %q)", err, conv.said)
	}
	defer l.Close()
	if p := conv.prompts(); len(p) != 0 {
		t.Errorf("a key login was asked %q", p)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	mainThread(func() { err = l.Start(ctx, pamlogin.Program{TTY: w}) })
	if err == nil || !strings.Contains(err.Error(), "terminal") {
		t.Fatalf("Start on a pipe as its terminal: %v, want an error", err)
	}
	mainThread(func() {
		err = l.Start(ctx, pamlogin.Program{Command: "echo uid=$(id -u); echo tty=$(tty); exit 4", Stdout: w, Stderr: w})
	})
	_ = w.Close()
	if err != nil {
		t.Fatal(err)
	}
	watchdog := time.AfterFunc(timeout, func() { _ = l.Process().Kill(); _ = r.Close() })
	defer watchdog.Stop()
	out, _ := io.ReadAll(r)
	status, err := l.Wait()
	if err != nil || status != 4 {
		t.Errorf("Wait: %d, %v; want 4", status, err)
	}
	f := fields(string(out))
	if f["uid"] != strconv.Itoa(u.UID) || f["tty"] != "not a tty" {
		t.Errorf("output %q: want the user's uid and no terminal", out)
	}
}

func TestNoUserName(t *testing.T) {
	for _, f := range []func(context.Context, pamlogin.Config, pamlogin.Conversation) (*pamlogin.Login, error){
		pamlogin.Authenticate, pamlogin.Account,
	} {
		conv := &script{answers: []string{"root"}}
		l, err := f(context.Background(), pamlogin.Config{}, conv)
		if err == nil {
			l.Close()
			t.Fatal("a login without a user name went ahead")
		}
		if len(conv.said) != 0 {
			t.Errorf("PAM was asked to prompt for a user: %q", conv.said)
		}
	}
}

func TestAccountUnknownUserRefused(t *testing.T) {
	logintest.RequireRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	l, err := pamlogin.Account(ctx, pamlogin.Config{User: "rlt-pam-nobody"}, &script{})
	if err == nil {
		l.Close()
		t.Fatal("an unknown user passed the account stack")
	}
	if !errors.Is(err, pamlogin.ErrRefused) {
		t.Errorf("error %v, want ErrRefused", err)
	}
}

func TestHostileAnswers(t *testing.T) {
	u := passwordUser(t, "rlt-pam-hostile")
	for i, answer := range []string{
		strings.Repeat("A", 1<<20), password + "\x00junk", "\x00", password[:3] + "\x00", "\x1b[2J\r\n\x7f\x03",
		strings.Repeat("\xff", pamlogin.MaxResponse), "",
	} {
		t.Run(strconv.Itoa(i), func(t *testing.T) {
			t.Parallel() // each waits out PAM's failure delay
			l, err := authenticate(t, u.Name, &script{answers: []string{answer}})
			if err == nil {
				l.Close()
				t.Fatalf("answer %.20q was accepted", answer)
			}
			if !errors.Is(err, pamlogin.ErrRefused) {
				t.Errorf("answer %.20q: error %v, want ErrRefused", answer, err)
			}
		})
	}
}

// openFDs lists the calling process's open descriptors.
func openFDs(t *testing.T) []string {
	t.Helper()
	d, err := os.Open("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		t.Fatal(err)
	}
	fd := strconv.Itoa(int(d.Fd()))
	names = slices.DeleteFunc(names, func(n string) bool { return n == fd })
	slices.Sort(names)
	return names
}

func TestNoDescriptorLeaks(t *testing.T) {
	u := passwordUser(t, "rlt-pam-fds")
	login := func(answer string) {
		l, err := authenticate(t, u.Name, &script{answers: []string{answer}})
		if err != nil {
			return
		}
		defer l.Close()
		runCommand(t, l, "exit 0")
	}
	// A first round opens what a process keeps once for good (syslog's socket, NSS files).
	login(password)
	login("wrong")
	before := openFDs(t)
	login(password)
	login("wrong")
	l, err := authenticate(t, u.Name, &script{answers: []string{password}})
	if err != nil {
		t.Fatal(err)
	}
	_ = l.Close() // authenticated, never started
	// A start that fails once the session is open: the user's shell does not exist.
	if out, err := exec.Command("usermod", "-s", "/nonexistent/shell", u.Name).CombinedOutput(); err != nil {
		t.Fatalf("usermod: %v\n%s", err, out)
	}
	l, err = authenticate(t, u.Name, &script{answers: []string{password}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	mainThread(func() { err = l.Start(ctx, pamlogin.Program{Command: "exit 0"}) })
	if err == nil || !strings.Contains(err.Error(), "/nonexistent/shell") {
		t.Errorf("Start with a missing shell: %v", err)
	}
	_ = l.Close()
	if after := openFDs(t); !slices.Equal(before, after) {
		t.Errorf("descriptors before %q, after %q", before, after)
	}
}
