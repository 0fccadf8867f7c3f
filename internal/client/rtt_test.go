package client

import (
	"crypto/ed25519"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/rlogin-go/rlogin/keys"
)

// delayProxy forwards loopback TCP connections to an upstream address, holding every chunk for a
// one-way delay in each direction: a long link without loss or a bandwidth cap. It does not
// delay the TCP handshake itself (it accepts at once), so what it adds is the round trips of the
// data.
type delayProxy struct {
	l        net.Listener
	upstream string
	oneWay   time.Duration

	wg    sync.WaitGroup
	mu    sync.Mutex
	conns []net.Conn
}

// startDelayProxy serves until the test ends and returns its port.
func startDelayProxy(t *testing.T, upstream string, oneWay time.Duration) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &delayProxy{l: l, upstream: upstream, oneWay: oneWay}
	p.wg.Add(1)
	go p.acceptLoop()
	t.Cleanup(func() {
		_ = l.Close()
		p.mu.Lock()
		for _, c := range p.conns {
			_ = c.Close()
		}
		p.conns = nil
		p.mu.Unlock()
		p.wg.Wait()
	})
	_, port, _ := net.SplitHostPort(l.Addr().String())
	return port
}

func (p *delayProxy) acceptLoop() {
	defer p.wg.Done()
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		u, err := net.Dial("tcp", p.upstream)
		if err != nil {
			_ = c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, u)
		p.mu.Unlock()
		p.wg.Add(4)
		go p.delayedCopy(u, c)
		go p.delayedCopy(c, u)
	}
}

type delayedChunk struct {
	due time.Time
	b   []byte
}

// delayedCopy copies src to dst, each chunk oneWay after it was read, in order; at src's end it
// half-closes dst. It runs two goroutines (p.wg counts both), so reading never waits for a delay.
func (p *delayProxy) delayedCopy(dst, src net.Conn) {
	chunks := make(chan delayedChunk, 4096)
	go func() {
		defer p.wg.Done()
		defer close(chunks)
		for {
			b := make([]byte, 32<<10)
			n, err := src.Read(b)
			if n > 0 {
				chunks <- delayedChunk{due: time.Now().Add(p.oneWay), b: b[:n]}
			}
			if err != nil {
				return
			}
		}
	}()
	defer p.wg.Done()
	broken := false
	for c := range chunks {
		time.Sleep(time.Until(c.due)) // the link's delay
		if !broken {
			_, err := dst.Write(c.b)
			broken = err != nil
		}
	}
	if tc, ok := dst.(*net.TCPConn); ok && !broken {
		_ = tc.CloseWrite()
	}
}

// TestLoginRoundTrips counts the round trips from connect to the shell's first output through a
// 200 ms link: two for the data (the mailbox name and the TLS handshake in one, then the login
// request with the client's TLS Finished, answered by ACCEPT and the prompt), and the TCP
// handshake, which the proxy does not delay: three in all (docs/protocol.md, "Round trips").
// The bound is a count: the time taken, in whole round trips.
func TestLoginRoundTrips(t *testing.T) {
	const rtt = 200 * time.Millisecond
	s := startServer(t, nil)
	port := startDelayProxy(t, s.addr, rtt/2)
	home := t.TempDir()
	s.trust(t, home)
	// The host key is pinned under the server's address; the proxy is another port.
	k := &keys.KnownHosts{Path: filepath.Join(home, ".rlogin", "known_hosts")}
	if err := k.Add("127.0.0.1:"+port, s.hostKey.Public().(ed25519.PublicKey)); err != nil {
		t.Fatal(err)
	}
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
