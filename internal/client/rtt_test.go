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
// link of a 1 s round trip: two for the data (the mailbox name and the TLS handshake in one, then
// the login request with the client's TLS Finished, answered by ACCEPT and the prompt), and the
// TCP handshake, which the emulator does not delay (it accepts at once): three in all
// (docs/protocol.md, "Round trips"). The same login through the link without a delay first
// measures what the two ends take themselves (under -race on a loaded machine, up to 0.7 s),
// so that the count is of the link's round trips alone: a third would add a whole second.
func TestLoginRoundTrips(t *testing.T) {
	const rtt = time.Second
	s := startServer(t, nil)
	link := linkemu.New(linkemu.Profile{})
	port, home := s.behindLink(t, link)
	login := func() time.Duration {
		tt := openTerminal(t)
		start := time.Now()
		tt.start(userEnv(home), "-l", "tester", "-p", port, "127.0.0.1")
		tt.expect(`\$ `)
		took := time.Since(start)
		tt.send("exit\r")
		if code := tt.wait(); code != 0 {
			t.Errorf("status %d, want 0", code)
		}
		return took
	}
	own := login()
	link.SetProfile(linkemu.Profile{Delay: rtt / 2})
	took := login()
	t.Logf("the shell's first output after %v without a delay, %v at %v round trips", own, took, rtt)
	// At least two round trips, which the link's timers guarantee: else it delayed nothing and
	// the count below means nothing.
	if took < 2*rtt {
		t.Fatalf("the shell's first output after %v through a link of %v round trips: the link did not delay", took, rtt)
	}
	if rounds := float64(took-own) / float64(rtt); rounds >= 2.5 {
		t.Errorf("the shell's first output came %v later through the link than without its delay: %.1f round trips of %v for the data, want 2", took-own, rounds, rtt)
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
