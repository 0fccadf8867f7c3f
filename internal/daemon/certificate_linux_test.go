package daemon

import (
	"errors"
	"fmt"
	"testing"

	"github.com/rlogin-go/rlogin/internal/pamlogin"
	"github.com/rlogin-go/rlogin/session"
)

// TestSystemUserCertificate: in System mode a certificate for the user's name logs the user in
// through login(1) without any authorized_keys file; one for another name does not, and with
// password logins off nothing else is tried. The same with privilege separation, where the
// certificate travels from the net child to the monitor, which checks it.
func TestSystemUserCertificate(t *testing.T) {
	requireSystem(t)
	for _, separated := range []bool{false, true} {
		name := "one process"
		if separated {
			name = "privilege separation"
		}
		t.Run(name, func(t *testing.T) { testSystemUserCertificate(t, separated) })
	}
}

func testSystemUserCertificate(t *testing.T, separated bool) {
	ca := newTestCA(t)
	alice := addUser(t, "rlt-certa") // no ~/.rlogin/authorized_keys
	start := startSystem
	if separated {
		start = startSeparated
	}
	ts := start(t, func(c *Config) {
		c.TrustedUserCAKeys = ca.path + ".pub"
		c.PasswordAuthentication = false
	})
	key := newKey(t)
	r, _, err := certLogin(t, ts, key, ca.sign(t, pubOf(key), "-n", alice.name), alice.name)
	if err != nil {
		t.Fatalf("login: %v\n%s", err, ts.log.String())
	}
	r.Send("echo \"I am $(id -un).\"; exit 0\n")
	r.Expect(`I am rlt-certa\.`)
	if err := r.Wait(); err != nil {
		t.Fatal(err)
	}
	ts.waitLog(`certificate accepted.*user=rlt-certa.*principal=rlt-certa`)

	_, _, err = certLogin(t, ts, key, ca.sign(t, pubOf(key), "-n", "rlt-other"), alice.name)
	var re *session.RefusedError
	if !errors.As(err, &re) || re.Reason != reasonDenied {
		t.Fatalf("login with another name's certificate: %v, want %q", err, reasonDenied)
	}
	ts.waitLog(`certificate not accepted.*user=rlt-certa.*none of its principals \(rlt-other\)`)

	forced := ca.sign(t, pubOf(key), "-n", alice.name, "-O", "force-command=echo forced for $(id -un)")
	if separated && pamlogin.Supported {
		// The PAM build's monitor starts the user's program itself: the forced command runs
		// in place of the login shell, as in user mode.
		r, _, err := certLogin(t, ts, key, forced, alice.name)
		if err != nil {
			t.Fatalf("login with a force-command certificate: %v", err)
		}
		r.Expect(`forced for rlt-certa`)
		if err := r.Wait(); err != nil {
			t.Fatal(err)
		}
		return
	}
	// login(1) cannot run a command: a force-command certificate lets no one in.
	_, _, err = certLogin(t, ts, key, forced, alice.name)
	if !errors.As(err, &re) || re.Reason != reasonDenied {
		t.Fatalf("login with a force-command certificate: %v, want %q", err, reasonDenied)
	}
	ts.waitLog(`certificate not accepted: its force-command option is not supported in system mode`)
}

// TestSystemUserCertificateWithoutPermitPty: system mode through login(1) gives every session a
// terminal, so a certificate without permit-pty is not accepted there (it would be ignoring a
// restriction); the PAM build's monitor accepts it, and refuses it a terminal.
func TestSystemUserCertificateWithoutPermitPty(t *testing.T) {
	requireSystem(t)
	for i, start := range []func(*testing.T, func(*Config)) *testServer{startSystem, startSeparated} {
		ca := newTestCA(t)
		alice := addUser(t, fmt.Sprintf("rlt-certp%d", i))
		ts := start(t, func(c *Config) {
			c.TrustedUserCAKeys = ca.path + ".pub"
			c.PasswordAuthentication = false
		})
		key := newKey(t)
		_, _, err := certLogin(t, ts, key, ca.sign(t, pubOf(key), "-n", alice.name, "-O", "no-pty"), alice.name)
		var re *session.RefusedError
		if i == 1 && pamlogin.Supported {
			// The PAM build's monitor runs commands without a terminal: the certificate is
			// accepted, and a login, which needs a terminal, refused as in user mode.
			if !errors.As(err, &re) || re.Reason != reasonNoPTY {
				t.Fatalf("login with a certificate without permit-pty: %v, want %q", err, reasonNoPTY)
			}
			continue
		}
		if !errors.As(err, &re) || re.Reason != reasonDenied {
			t.Fatalf("login with a certificate without permit-pty: %v, want %q", err, reasonDenied)
		}
		ts.waitLog(`certificate not accepted: without permit-pty it allows no terminal`)
	}
}
