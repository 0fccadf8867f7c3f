package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"io/fs"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/rlogin-go/rlogin/keys"
	"github.com/rlogin-go/rlogin/transport"
	"github.com/rlogin-go/rlogin/transport/memnet"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testCtx bounds one test: a watchdog, so a stuck exchange fails the test.
func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// testConfig is a fresh directory of trust files. Its authorized_keys is
// checked up to the directory, as up to a home.
func testConfig(t *testing.T) config {
	dir := t.TempDir()
	return config{dir: dir, home: dir}
}

// startServer serves whoami with cfg's files on n at address until the test
// ends, and returns its host key.
func startServer(t *testing.T, cfg config, n *memnet.Network, address string) ed25519.PublicKey {
	t.Helper()
	srv, err := newServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	lc := transport.ListenConfig{Network: n}
	ln, err := lc.Listen(testCtx(t), address)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return srv.hostPublic()
}

// newClient makes a client with a new key of cfg's, on n.
func newClient(t *testing.T, cfg config, n *memnet.Network, notes *bytes.Buffer) *client {
	t.Helper()
	key, _, err := keys.LoadOrCreate(cfg.userKey())
	if err != nil {
		t.Fatal(err)
	}
	return &client{key: key, known: cfg.knownHosts(), notes: notes, dialer: transport.Dialer{Network: n}}
}

// authorize lists c's key in cfg's authorized_keys.
func authorize(t *testing.T, cfg config, c *client) {
	t.Helper()
	line := keys.MarshalAuthorizedKey(c.key.Public().(ed25519.PublicKey), "test")
	if err := os.WriteFile(cfg.authorizedKeys(), line, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestServeAndAsk(t *testing.T) {
	const addr = "127.0.0.1:5514" // in memory: taken from nobody
	srvCfg, cliCfg := testConfig(t), testConfig(t)
	var n memnet.Network
	hostKey := startServer(t, srvCfg, &n, addr)
	var notes bytes.Buffer
	c := newClient(t, cliCfg, &n, &notes)
	authorize(t, srvCfg, c)
	want := "you are " + keys.Fingerprint(c.key.Public().(ed25519.PublicKey)) + "\n"

	// A server not in known_hosts is refused, and not added.
	if _, err := c.ask(testCtx(t), addr); !errors.Is(err, keys.ErrUnknownHost) {
		t.Fatalf("unknown server: %v, want keys.ErrUnknownHost", err)
	}
	if _, err := os.Stat(c.known.Path); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("known_hosts after a refused server: %v", err)
	}

	// Trusted on first use: added once the handshake succeeded.
	c.acceptNew = true
	got, err := c.ask(testCtx(t), addr)
	if err != nil || got != want {
		t.Fatalf("first contact: %q, %v; want %q", got, err, want)
	}
	if !strings.Contains(notes.String(), keys.Fingerprint(hostKey)) {
		t.Errorf("notes %q do not name the server's key", notes.String())
	}
	c.acceptNew = false
	if got, err := c.ask(testCtx(t), addr); err != nil || got != want {
		t.Errorf("known server: %q, %v; want %q", got, err, want)
	}

	// A key not in authorized_keys gets no answer.
	stranger := newClient(t, testConfig(t), &n, &notes)
	stranger.known = c.known
	if got, err := stranger.ask(testCtx(t), addr); err == nil {
		t.Errorf("unauthorized key: answered %q", got)
	}

	// Another server at the same address: its key has changed.
	var other memnet.Network
	startServer(t, testConfig(t), &other, addr)
	c.dialer.Network = &other
	var changed *keys.KeyChangedError
	if _, err := c.ask(testCtx(t), addr); !errors.As(err, &changed) {
		t.Errorf("another server's key: %v, want *keys.KeyChangedError", err)
	}
}

// TestRun runs the client as the command does, with its flags, against a
// server on the loopback interface.
func TestRun(t *testing.T) {
	srvCfg, cliCfg := testConfig(t), testConfig(t)
	srv, err := newServer(srvCfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := transport.Listen(testCtx(t), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(testCtx(t))
	served := make(chan error, 1)
	go func() { served <- srv.serve(ctx, ln) }()
	defer func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
	}()
	key, _, err := keys.LoadOrCreate(cliCfg.userKey())
	if err != nil {
		t.Fatal(err)
	}
	authorize(t, srvCfg, &client{key: key})

	var out, notes bytes.Buffer
	if err := runClient(testCtx(t), cliCfg, ln.Addr().String(), true, &out, &notes); err != nil {
		t.Fatal(err)
	}
	if want := "you are " + keys.Fingerprint(key.Public().(ed25519.PublicKey)) + "\n"; out.String() != want {
		t.Errorf("output %q, want %q", out.String(), want)
	}
	if err := run(testCtx(t), []string{"-dir", cliCfg.dir, "-addr", ln.Addr().String()}); err != nil {
		t.Errorf("run with the flags: %v", err)
	}
	if err := run(testCtx(t), []string{"extra"}); err == nil {
		t.Error("run with an extra argument succeeded")
	}
}
