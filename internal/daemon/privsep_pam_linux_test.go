package daemon

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/rlogin-go/rlogin/internal/admission"
	"github.com/rlogin-go/rlogin/internal/logintest"
	"github.com/rlogin-go/rlogin/internal/pamlogin"
	"github.com/rlogin-go/rlogin/session"
)

// The monitor's PAM logins (a build with -tags pam): these tests skip in the default build.

// requirePAM skips the test in a build without PAM, after requireSystem.
func requirePAM(t *testing.T) {
	t.Helper()
	requireSystem(t)
	if !pamlogin.Supported {
		t.Skip("built without PAM: go test -tags pam runs this test")
	}
}

// TestSeparatedPAMExitStatus: a key login through PAM gives the client the shell's own exit
// status (login(1) gave its own, 0), and a shell killed by a signal is reported as that signal.
func TestSeparatedPAMExitStatus(t *testing.T) {
	requirePAM(t)
	ts := startSeparated(t, nil)
	alice := addUser(t, "rlt-pmalice")
	alice.authorize(t, 0o600)
	r, err := ts.loginAs(t, alice.name, alice.key)
	if err != nil {
		t.Fatalf("login: %v\nlog:\n%s", err, ts.log.String())
	}
	r.Send("echo I AM $(id -un).\n")
	r.Expect(`I AM rlt-pmalice\.`)
	r.ExitWith(3)
	ts.waitLog(`msg="session ended" .*user=rlt-pmalice method=publickey .*status=3`)

	r, err = ts.loginAs(t, alice.name, alice.key)
	if err != nil {
		t.Fatalf("login: %v", err)
	}
	r.Send("kill -KILL $$\n")
	var ee *session.ExitError
	if err := r.Wait(); !errors.As(err, &ee) || ee.Signal != "KILL" {
		t.Fatalf("a shell killed by SIGKILL: %v, want the signal KILL", err)
	}
}

// startPAMPasswords starts a server with privilege separation whose monitors check passwords
// with PAM, and penalize a failure for an hour; classic serves classic clients too.
func startPAMPasswords(t *testing.T, classic bool) *testServer {
	t.Helper()
	requirePAM(t)
	return startSeparated(t, func(c *Config) {
		c.PasswordAuthentication = true
		c.PerSourcePenalties = &admission.Penalties{AuthFail: time.Hour, Max: 2 * time.Hour}
		c.Classic.Enabled = classic
	})
}

// passwordLogin starts a secure login as name with a key that is not authorized, so that the
// monitor asks PAM for the password, from src, and waits for the prompt.
func passwordLogin(t *testing.T, ts *testServer, src, name string) *logintest.Remote {
	t.Helper()
	r, err := loginFromAs(t, ts, src, newKey(t), name)
	if err != nil {
		t.Fatalf("login as %s: %v\nlog:\n%s", name, err, ts.log.String())
	}
	r.Expect(`Password: `)
	return r
}

// TestSeparatedPAMPassword: a password login through the monitor's PAM conversation, relayed in
// band: the right password gives a shell (and the shell's exit status); a wrong one ends with
// "login incorrect" and status 255; a user that does not exist gets the same prompt and the
// same end; and the failures reach the penalties.
func TestSeparatedPAMPassword(t *testing.T) {
	ts := startPAMPasswords(t, false)
	bob := addUser(t, "rlt-pmbob")

	r := passwordLogin(t, ts, "127.0.0.1", bob.name)
	r.Send(bob.password + "\r")
	r.Send("echo I AM $(id -un).\n")
	r.Expect(`I AM rlt-pmbob\.`)
	if out := r.Output(); strings.Contains(out, bob.password) {
		t.Errorf("the password was echoed: %q", out)
	}
	r.ExitWith(4)
	ts.waitLog(`msg="authentication succeeded" .*method=password user=rlt-pmbob`)
	ts.waitLog(`msg="session ended" .*user=rlt-pmbob method=password .*status=4`)

	for _, tc := range []struct{ name, user, src string }{
		{"wrong password", bob.name, "127.0.0.2"},
		{"unknown user", "rlt-pmnobody", "127.0.0.3"},
	} {
		r := passwordLogin(t, ts, tc.src, tc.user)
		r.Send("wrong-guess\r")
		r.Expect(reasonLoginIncorrect)
		var ee *session.ExitError
		if err := r.Wait(); !errors.As(err, &ee) || ee.Status != statusRefused {
			t.Errorf("%s: %v, want exit status %d", tc.name, err, statusRefused)
		}
		ts.waitLog(`msg="authentication failed" .*remote=` + tc.src + `:.*method=password user=` + tc.user)
		ts.waitLog(`msg="source penalized.*source=` + tc.src + `/32 reason="failed authentication"`)
	}
	if log := ts.log.String(); strings.Count(log, `msg="session started"`) != 1 {
		t.Fatalf("want one session started, the right password's:\n%s", log)
	}
}

// TestSeparatedPAMHangupCharged: a client that hangs up during the password prompt, before or
// after it typed a guess, is charged a failure, as one that waits for the verdict.
func TestSeparatedPAMHangupCharged(t *testing.T) {
	ts := startPAMPasswords(t, false)
	bob := addUser(t, "rlt-pmhbob")
	for _, tc := range []struct{ name, typed, src string }{
		{"guess then hang up", "wrong-guess\r", "127.0.0.2"},
		{"hang up at the prompt", "", "127.0.0.3"},
		{"give up with ^C", "\x03", "127.0.0.4"},
	} {
		r := passwordLogin(t, ts, tc.src, bob.name)
		if tc.typed != "" {
			r.Send(tc.typed)
		}
		_ = r.Close() // at once: PAM has not answered yet
		_ = r.Wait()
		ts.waitLog(`msg="authentication failed" .*remote=` + tc.src + `:.*method=password user=rlt-pmhbob`)
		ts.waitLog(`msg="source penalized.*source=` + tc.src + `/32 reason="failed authentication"`)
		c := dialFrom(t, ts.addr, tc.src)
		expectDropped(t, c, dropPenalty)
		_ = c.Close()
	}
	if log := ts.log.String(); strings.Contains(log, `msg="session started"`) {
		t.Fatalf("a failed password login was logged as a session:\n%s", log)
	}
}

// TestSeparatedPAMClassicUnknownUser: a classic client naming a user that does not exist gets
// the password prompt too, and the same end as a wrong password.
func TestSeparatedPAMClassicUnknownUser(t *testing.T) {
	ts := startPAMPasswords(t, true)
	r, err := loginClassic(t, ts.addr, "remote-nobody", "rlt-pmnobody", false)
	if err != nil {
		t.Fatalf("login: %v\nlog:\n%s", err, ts.log.String())
	}
	r.Expect(`Password: `)
	r.Send("wrong-guess\r")
	r.Expect(reasonLoginIncorrect)
	_ = r.Wait()
	ts.waitLog(`msg="authentication failed" .*protocol=classic .*method=password user=rlt-pmnobody`)
}
