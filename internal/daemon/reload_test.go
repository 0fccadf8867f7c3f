package daemon

import (
	"errors"
	"regexp"
	"testing"

	"github.com/rlogin-go/rlogin/internal/logintest"
	"github.com/rlogin-go/rlogin/keys"
	"github.com/rlogin-go/rlogin/session"
)

// TestReload changes the host key and a limit of a running server: a session open before goes
// on, new logins see the new configuration, and a bad configuration changes nothing.
func TestReload(t *testing.T) {
	ts := startServer(t, nil)
	before := ts.login(t)
	before.Ready()

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
	before.Send("echo STILL$((2+3))\n")
	before.Expect(`STILL5`)

	// New logins get the new host key...
	if _, err := logintest.Login(t, ts.addr, pubOf(ts.hostKey), ts.clientKey, ts.request(ts.srv.User())); err == nil {
		t.Fatal("a login still saw the old host key")
	}
	second, err := logintest.Login(t, ts.addr, pubOf(cfg.HostKey), ts.clientKey, ts.request(ts.srv.User()))
	if err != nil {
		t.Fatalf("login with the new host key: %v", err)
	}
	second.Ready()
	// ...and the new limit, which counts the session from before.
	_, err = logintest.Login(t, ts.addr, pubOf(cfg.HostKey), ts.clientKey, ts.request(ts.srv.User()))
	var re *session.RefusedError
	if !errors.As(err, &re) || re.Reason != reasonMaxSessions {
		t.Fatalf("third session: %v, want the refusal %q", err, reasonMaxSessions)
	}
	before.ExitWith(0)
	second.ExitWith(0)

	// Reloading the same configuration changes nothing.
	if err := ts.srv.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	ts.waitLog(`configuration reloaded; nothing changed`)
}
