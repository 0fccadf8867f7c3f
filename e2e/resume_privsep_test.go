package e2e

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/rlogin-go/rlogin/internal/logintest"
)

// systemResumeServer starts rlogind as root runs it (privilege separation), for a new user
// name, with the tests' keepalive bounds and the detach timeout detach; the client, with a HOME
// of its own, knows its host key. It skips the test, saying why, unless it runs as root.
func systemResumeServer(t *testing.T, name string, detach time.Duration) (*resumeServer, *logintest.User) {
	t.Helper()
	user, dir, keyFile := privsepUser(t, name)
	conf := filepath.Join(dir, "rlogind.conf")
	writeFile(t, conf, fmt.Sprintf("privilege-separation yes\npassword-authentication no\nstop-grace 1s\n"+
		"client-alive-interval 500ms\nclient-alive-count-max 3\ndetach-timeout %v\n", detach))
	port := freePort(t)
	start, logText := systemRlogind(t, filepath.Join(binDir, "rlogind"), conf, port)
	d := start()
	d.addr = "127.0.0.1:" + port
	d.home = newHome(t)
	hostKey := hostKeyOf(t, d.addr)
	pub, err := ssh.NewPublicKey(hostKey)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(d.home, ".rlogin", "known_hosts"), fmt.Sprintf("[127.0.0.1]:%s %s", port, ssh.MarshalAuthorizedKey(pub)))
	return &resumeServer{d: d, logText: logText, home: user.Home, hostKey: hostKey, args: []string{"-i", keyFile, "-l", user.Name}}, user
}

// hostKeyOf runs a TLS handshake with the rlogind at addr, from 127.0.0.9, and returns the key
// it presents.
func hostKeyOf(t *testing.T, addr string) ed25519.PublicKey {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), shortTimeout)
	defer cancel()
	var key ed25519.PublicKey
	sd := sessionDialer{addr: addr}
	conn, err := sd.dialVerify(ctx, "127.0.0.9", newEd25519(t), func(pub ed25519.PublicKey) error {
		key = pub
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	_ = conn.Close()
	if key == nil {
		t.Fatal(errors.New("no host key"))
	}
	return key
}

// TestSeparatedResume: resume and reattach in system mode, with privilege separation: what the
// user-mode tests show, with a session in a monitor of its own; and the secret of one user's
// session is good for nothing to another user, with that user's own key.
func TestSeparatedResume(t *testing.T) {
	logintest.RequireRoot(t)
	t.Run("counter", func(t *testing.T) {
		s, _ := systemResumeServer(t, "rlt-rs-count", 5*time.Minute) // longer than blackholeOutage
		counterSurvives(t, s)
	})
	t.Run("reattach", func(t *testing.T) {
		s, _ := systemResumeServer(t, "rlt-rs-reatt", time.Minute)
		reattachAfterClientKilled(t, s)
	})
	t.Run("new address", func(t *testing.T) {
		s, _ := systemResumeServer(t, "rlt-rs-roam", time.Minute)
		resumeFromNewAddress(t, s)
	})
	t.Run("expiry", func(t *testing.T) {
		s, _ := systemResumeServer(t, "rlt-rs-expire", 2*time.Second)
		detachedSessionExpires(t, s, 2*time.Second)
	})
	t.Run("another user", func(t *testing.T) {
		s, victim := systemResumeServer(t, "rlt-rs-victim", time.Minute)
		other := logintest.AddUser(t, "rlt-rs-thief")
		sd := sessionDialer{addr: s.d.addr, hostKey: s.hostKey}
		secretRefusals(t, sd, s.logText, victim.Name, victim.Key,
			thief{name: "another user's key with the secret", source: "127.0.0.4", user: other.Name, key: other.Key, reason: noSession, resume: withSecret},
			thief{name: "another user reattaching", source: "127.0.0.5", user: other.Name, key: other.Key, reason: noSession, resume: withoutSecret},
			thief{name: "another user listing", source: "127.0.0.8", user: other.Name, key: other.Key},
			thief{name: "another user's key as the user, with the secret", source: "127.0.0.10", user: victim.Name, key: other.Key, resume: withSecret},
		)
		if !strings.Contains(s.logText(), "resume refused") {
			t.Errorf("rlogind's log does not record the refusals:\n%s", s.logText())
		}
	})
}
