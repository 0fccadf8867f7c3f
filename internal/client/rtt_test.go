package client

import (
	"crypto/ed25519"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/rlogin-go/rlogin/internal/linkemu"
	"github.com/rlogin-go/rlogin/keys"
)

// TestLoginRoundTrips counts the round trips from connect to the shell's first output through a
// 200 ms link: two for the data (the mailbox name and the TLS handshake in one, then the login
// request with the client's TLS Finished, answered by ACCEPT and the prompt), and the TCP
// handshake, which the emulator does not delay (it accepts at once): three in all (docs/protocol.md, "Round trips").
// The bound is a count: the time taken, in whole round trips.
func TestLoginRoundTrips(t *testing.T) {
	const rtt = 200 * time.Millisecond
	s := startServer(t, nil)
	port, home := s.behindLink(t, linkemu.New(linkemu.Profile{Delay: rtt / 2}))
	tt := openTerminal(t)
	start := time.Now()
	tt.start(userEnv(home), "-l", "tester", "-p", port, "127.0.0.1")
	tt.expect(`\$ `)
	took := time.Since(start)
	t.Logf("the shell's first output after %v at %v round trips", took, rtt)
	if rounds := int(took / rtt); rounds > 2 {
		t.Errorf("the shell's first output came after %v: %d round trips of %v for the data, want at most 2", took, rounds, rtt)
	}
	tt.send("exit\r")
	if code := tt.wait(); code != 0 {
		t.Errorf("status %d, want 0", code)
	}
}

// behindLink puts link between rlogin and s: a proxy to s through link, and a home whose
// known_hosts has s's key under the proxy's address (the server's own is another port). It
// returns the proxy's port and the home.
func (s *testServer) behindLink(t *testing.T, link *linkemu.Link) (port, home string) {
	t.Helper()
	proxy, err := link.Listen("127.0.0.1:0", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = proxy.Close() })
	_, port, _ = net.SplitHostPort(proxy.Addr().String())
	home = t.TempDir()
	s.trust(t, home)
	k := &keys.KnownHosts{Path: filepath.Join(home, ".rlogin", "known_hosts")}
	if err := k.Add(proxy.Addr().String(), s.hostKey.Public().(ed25519.PublicKey)); err != nil {
		t.Fatal(err)
	}
	return port, home
}
