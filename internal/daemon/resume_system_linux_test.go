package daemon

import (
	"strings"
	"testing"
)

// TestSystemResume: in System mode served by one process, a user's session detaches and
// resumes as in user mode; another user neither lists it nor takes it over, even with its id; a
// key that is not the user's gets no further than a new login would, even when a password would
// be asked.
func TestSystemResume(t *testing.T) {
	requireSystem(t)
	alice := addUser(t, "rlt-rdann")
	alice.authorize(t, 0o600)
	bob := addUser(t, "rlt-rdbob")
	bob.authorize(t, 0o600)
	ts := startSystem(t, func(c *Config) { c.PasswordAuthentication = true })
	rs := ts.loginResumableAs(t, alice.name, alice.key)
	rs.Ready()
	pid := rs.pid()

	if list, err := ts.listAs(t, alice.name, alice.key); err != nil || len(list) != 1 || list[0].ID != rs.id() || list[0].PID == 0 {
		t.Errorf("alice's list: %+v, %v; want her session", list, err)
	}
	if list, err := ts.listAs(t, bob.name, bob.key); err != nil || len(list) != 0 {
		t.Errorf("bob's list: %+v, %v; want none", list, err)
	}
	if err := ts.resumeAs(t, bob.name, bob.key, rs.id(), nil); !refused(err, "no such session") {
		t.Errorf("bob reattaching alice's session: %v, want \"no such session\"", err)
	}
	if err := ts.resumeAs(t, alice.name, bob.key, rs.id(), nil); !refused(err, reasonDenied) {
		t.Errorf("bob's key reattaching as alice: %v, want %q", err, reasonDenied)
	}
	ts.waitLog(`msg="authentication failed".*user=rlt-rdann reason="the key is not authorized; a resume or a list needs one"`)

	rs.cut()
	ts.waitLog(`msg="session detached".*user=rlt-rdann`)
	rs.reconnect()
	if got := rs.pid(); got != pid {
		t.Errorf("the session after the resume runs pid %d, want %d", got, pid)
	}
	ts.waitLog(`msg="session resumed".*user=rlt-rdann`)
	rs.ExitWith(0)
	ts.waitLog(`msg="session ended".*user=rlt-rdann`)
}

// expireAccount expires u's account (chage -E 0) as an administrator would, until the test's
// end: a new login's PAM account stack refuses it from then on.
func expireAccount(t *testing.T, u *testUser) {
	t.Helper()
	userCmd(t, "", "chage", "-E", "0", u.name)
	t.Cleanup(func() { userCmd(t, "", "chage", "-E", "-1", u.name) })
}

// TestSystemResumeExpiredAccount: in System mode served by one process, once the user's account
// has expired (chage -E 0), a reattach and a list are refused as a new login would be, though
// the key is authorized: the account check a login gets from PAM through login(1) is done for a
// resume too.
func TestSystemResumeExpiredAccount(t *testing.T) {
	requireSystem(t)
	alice := addUser(t, "rlt-alice")
	alice.authorize(t, 0o600)
	ts := startSystem(t, nil)
	rs := ts.loginResumableAs(t, alice.name, alice.key)
	rs.Ready()
	rs.cut()
	ts.waitLog(`msg="session detached".*user=rlt-alice`)
	expireAccount(t, alice)
	if err := ts.resumeAs(t, alice.name, alice.key, rs.id(), nil); !refused(err, reasonDenied) {
		t.Errorf("reattaching with the account expired: %v, want %q", err, reasonDenied)
	}
	ts.waitLog(`msg="login refused".*stage=account user=rlt-alice reason=".*the account has expired"`)
	if list, err := ts.listAs(t, alice.name, alice.key); !refused(err, reasonDenied) {
		t.Errorf("listing with the account expired: %+v, %v; want %q", list, err, reasonDenied)
	}
	// Once the account is valid again, the session is there to reattach; being detached, it
	// was taken over from nobody.
	userCmd(t, "", "chage", "-E", "-1", alice.name)
	if err := ts.resumeAs(t, alice.name, alice.key, rs.id(), nil); err == nil || err.Error() != "accepted" {
		t.Errorf("reattaching with the account valid again: %v, want accepted", err)
	}
	if line := ts.waitLog(`msg="session reattached"[^\n]*`)[0]; strings.Contains(line, "took_over_from") {
		t.Errorf("the reattach of a detached session logs %q, which says whom it took the session from", line)
	}
}
