package logintest_test

import (
	"crypto/ed25519"
	"testing"

	"github.com/rlogin-go/rlogin/internal/logintest"
	"github.com/rlogin-go/rlogin/session"
)

// A test logs in to an rlogind it started at addr, whose host key is hostKey and whose
// authorized keys list clientKey, and checks the shell's exit status.
func Example() {
	var t *testing.T // the test's
	var addr string
	var hostKey ed25519.PublicKey
	var clientKey ed25519.PrivateKey

	logintest.CheckNoLeftovers(t)
	r, err := logintest.Login(t, addr, hostKey, clientKey, session.Request{User: logintest.CurrentUser(t), Term: "xterm"})
	if err != nil {
		t.Fatal(err)
	}
	r.Ready()
	r.Send("echo hello\n")
	r.Expect(`hello`)
	r.ExitWith(3)
}
