package daemon

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rlogin-go/rlogin/internal/logintest"
	"github.com/rlogin-go/rlogin/internal/termtest"
	"github.com/rlogin-go/rlogin/session"
	"github.com/rlogin-go/rlogin/session/classic"
	"github.com/rlogin-go/rlogin/transport"
)

// classicRemote is a classic rlogin client session against a test server.
type classicRemote struct {
	*logintest.Remote
	c *classic.Client
}

// dialClassic connects to address from a privileged port if privileged (the test runs as root),
// else from an ordinary one.
func dialClassic(t *testing.T, address string, privileged bool) net.Conn {
	t.Helper()
	if !privileged {
		c, err := net.DialTimeout("tcp", address, shortTimeout)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	for port := 1023; port >= 600; port-- {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port}, Timeout: shortTimeout}
		c, err := d.Dial("tcp", address)
		if err == nil {
			return c
		}
		if !errors.Is(err, syscall.EADDRINUSE) && !errors.Is(err, syscall.EADDRNOTAVAIL) {
			t.Fatal(err)
		}
	}
	t.Fatal("no privileged port free")
	return nil
}

// loginClassic logs in over the classic protocol as user; it returns Start's error.
func loginClassic(t *testing.T, address, ruser, user string, privileged bool) (*classicRemote, error) {
	t.Helper()
	conn := dialClassic(t, address, privileged)
	c := classic.NewClient(conn, classic.Request{ClientUser: ruser, ServerUser: user, Term: "xterm", Speed: "38400"})
	out := &termtest.Buffer{}
	c.Stdout = out
	c.Window = classic.WindowSize{Rows: 33, Cols: 101}
	r, err := logintest.StartClient(t, c, out)
	if err != nil {
		return nil, err
	}
	return &classicRemote{Remote: r, c: c}, nil
}

// rawClassic sends b on a fresh conn and returns the server's whole answer.
func rawClassic(t *testing.T, address string, b []byte, closeWrite bool) []byte {
	t.Helper()
	c, err := net.DialTimeout("tcp", address, shortTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(shortTimeout))
	go func() {
		_, _ = c.Write(b) // fails once the server refused and closed
		if closeWrite {
			_ = c.(*net.TCPConn).CloseWrite()
		}
	}()
	answer, err := io.ReadAll(c)
	if err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("reading the answer to %q: %v", b[:min(len(b), 40)], err)
	}
	return answer
}

func TestClassicUserModeRefused(t *testing.T) {
	ts := startServer(t, func(c *Config) { c.Classic.Enabled = true })
	ts.waitLog(`level=WARN msg="classic rlogin \(RFC 1282\) enabled: this service is UNENCRYPTED`)
	_, err := loginClassic(t, ts.addr, "bob", ts.srv.User(), false)
	var re *classic.RefusedError
	if !errors.As(err, &re) || re.Reason != classicNotServed {
		t.Fatalf("classic login in user mode: %v, want the refusal %q", err, classicNotServed)
	}
	// Secure logins on the same port are unaffected.
	r := ts.login(t)
	r.Ready()
	r.Send("exit\n")
	if err := r.Wait(); err != nil {
		t.Errorf("secure session: %v", err)
	}
}

func TestClassicOnePortForAll(t *testing.T) {
	// With classic on, the one port serves the login mailbox, TLS without a mailbox name and
	// classic clients.
	ts := startServer(t, func(c *Config) { c.Classic.Enabled = true })
	r := ts.login(t) // through the mailbox
	r.Ready()
	r.Send("exit\n")
	if err := r.Wait(); err != nil {
		t.Errorf("mailbox session: %v", err)
	}
	// Direct TLS: the handshake and the login go through, as after the mailbox.
	conn, err := net.DialTimeout("tcp", ts.addr, shortTimeout)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), shortTimeout)
	defer cancel()
	sc, err := transport.Client(ctx, conn, &transport.SecureConfig{Key: ts.clientKey, VerifyPeer: func(pub ed25519.PublicKey) error {
		if !pub.Equal(pubOf(ts.hostKey)) {
			return errors.New("not the test server's host key")
		}
		return nil
	}})
	if err != nil {
		t.Fatalf("direct TLS: %v", err)
	}
	c := session.NewClient(sc, ts.request(ts.srv.User()))
	out := &termtest.Buffer{}
	c.Stdout = out
	in, _ := c.StdinPipe()
	if err := c.Start(context.Background()); err != nil {
		t.Fatalf("direct TLS login: %v", err)
	}
	_, _ = io.WriteString(in, "echo DIRECT$((40+2)); exit\n")
	if err := c.Wait(); err != nil {
		t.Errorf("direct TLS session: %v", err)
	}
	if !strings.Contains(out.String(), "DIRECT42") {
		t.Errorf("direct TLS output %q", out.String())
	}
	// Classic: refused in user mode, but answered in the classic way.
	if _, err := loginClassic(t, ts.addr, "bob", ts.srv.User(), false); err == nil {
		t.Error("a classic login in user mode was accepted")
	}
}

func TestClassicOffByDefault(t *testing.T) {
	ts := startServer(t, nil)
	if got := rawClassic(t, ts.addr, []byte("\x00bob\x00bob\x00xterm/38400\x00"), false); string(got) != "-invalid mailbox name\r\n" {
		t.Errorf("a classic handshake to a server without -classic got %q", got)
	}
	if strings.Contains(ts.log.String(), "classic") {
		t.Errorf("the log mentions classic rlogin:\n%s", ts.log.String())
	}
}

func TestClassicUserModeRhosts(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to bind a privileged source port (CI runs as root)")
	}
	ts := startServer(t, func(c *Config) {
		c.Classic = ClassicConfig{Enabled: true, AllowUserMode: true, TrustRhosts: true}
	})
	if err := os.WriteFile(filepath.Join(ts.home, ".rhosts"), []byte("127.0.0.1 remote-bob\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := loginClassic(t, ts.addr, "remote-bob", ts.srv.User(), true)
	if err != nil {
		t.Fatalf("trusted login: %v\n%s", err, ts.log.String())
	}
	r.Send("echo I AM $(id -un) on $TERM.\r")
	r.Expect(`I AM ` + regexp.QuoteMeta(ts.srv.User()) + ` on xterm\.`)
	r.Send("exit\r")
	if err := r.Wait(); err != nil {
		t.Errorf("Wait: %v", err)
	}
	ts.waitLog(`msg="authentication succeeded" .*method=rhosts`)

	for _, tc := range []struct {
		name       string
		ruser      string
		privileged bool
	}{
		{"ordinary port", "remote-bob", false},
		{"user not listed", "mallory", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := loginClassic(t, ts.addr, tc.ruser, ts.srv.User(), tc.privileged)
			var re *classic.RefusedError
			if !errors.As(err, &re) || re.Reason != classicNoPassword {
				t.Errorf("login: %v, want the refusal %q", err, classicNoPassword)
			}
		})
	}
}

func TestClassicSystemPasswordLogin(t *testing.T) {
	requireSystem(t)
	bob := addUser(t, "rlt-cbob")
	ts := startSystem(t, func(c *Config) { c.Classic.Enabled = true })

	t.Run("password", func(t *testing.T) {
		r, err := loginClassic(t, ts.addr, "someone", bob.name, false)
		if err != nil {
			t.Fatalf("login: %v\n%s", err, ts.log.String())
		}
		r.Expect(`Password: `)
		r.Send(bob.password + "\r")
		r.Send("echo I AM $(id -un).\r")
		r.Expect(`I AM rlt-cbob\.\r\n`)
		// The window request goes with output from classic.WindowRequestDelay on: ask until the
		// client's size shows.
		deadline := time.Now().Add(shortTimeout)
		for asked := len(r.Output()); !strings.Contains(r.Output()[asked:], "33 101\r\n"); {
			if time.Now().After(deadline) {
				t.Fatalf("stty size never showed 33 101; output:\n%q\nlog:\n%s", tail(r.Output(), 1500), ts.log.String())
			}
			r.Send("stty size\r")
			time.Sleep(20 * time.Millisecond)
		}
		if err := r.c.Resize(classic.WindowSize{Rows: 40, Cols: 120}); err != nil {
			t.Fatal(err)
		}
		r.Send("stty size\r")
		r.Expect(`40 120\r\n`)
		if strings.Contains(r.Output(), bob.password) {
			t.Error("the password was echoed")
		}
		r.Send("exit\r")
		if err := r.Wait(); err != nil {
			t.Errorf("Wait: %v", err)
		}
		ts.waitLog(`msg="session ended" .*protocol=classic user=rlt-cbob`)
	})

	t.Run("wrong password then root", func(t *testing.T) {
		r, err := loginClassic(t, ts.addr, "someone", bob.name, false)
		if err != nil {
			t.Fatalf("login: %v", err)
		}
		r.Expect(`Password: `)
		r.Send("wrong-password\rroot\rrootpw\r")
		_ = r.Wait()
		out := r.Output()
		if strings.Count(out, "Password:") != 1 || strings.Contains(out, "root\r\n") || strings.Contains(out, "#") {
			t.Errorf("output %q: want one password prompt and the end", out)
		}
	})

	t.Run("root refused", func(t *testing.T) {
		_, err := loginClassic(t, ts.addr, "root", "root", true)
		var re *classic.RefusedError
		if !errors.As(err, &re) || re.Reason != classicDenied {
			t.Errorf("root login: %v, want %q", err, classicDenied)
		}
	})
}

func TestClassicSystemRhosts(t *testing.T) {
	requireSystem(t)
	bob := addUser(t, "rlt-cbob")
	ts := startSystem(t, func(c *Config) {
		c.Classic = ClassicConfig{Enabled: true, TrustRhosts: true}
		c.PermitRootLogin = PermitRootYes
	})
	rhosts := filepath.Join(bob.home, ".rhosts")
	if err := os.WriteFile(rhosts, []byte("127.0.0.1 remote-bob\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(rhosts, bob.uid, bob.gid); err != nil {
		t.Fatal(err)
	}
	t.Run("trusted", func(t *testing.T) {
		r, err := loginClassic(t, ts.addr, "remote-bob", bob.name, true)
		if err != nil {
			t.Fatal(err)
		}
		r.Send("echo I AM $(id -un).\r")
		r.Expect(`I AM rlt-cbob\.`)
		if strings.Contains(r.Output(), "Password:") {
			t.Error("a trusted login was asked for a password")
		}
		r.Send("exit\r")
		if err := r.Wait(); err != nil {
			t.Errorf("Wait: %v", err)
		}
	})
	t.Run("ordinary port asks for the password", func(t *testing.T) {
		r, err := loginClassic(t, ts.addr, "remote-bob", bob.name, false)
		if err != nil {
			t.Fatal(err)
		}
		r.Expect(`Password: `)
	})
	t.Run("root not trusted without TrustRhostsRoot", func(t *testing.T) {
		// Even with a /root/.rhosts listing the client, root gets the password prompt.
		if _, err := os.Stat("/root/.rhosts"); err == nil {
			t.Skip("/root/.rhosts exists on this machine; not touching it")
		}
		if err := os.WriteFile("/root/.rhosts", []byte("127.0.0.1 remote-bob\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		defer os.Remove("/root/.rhosts")
		r, err := loginClassic(t, ts.addr, "remote-bob", "root", true)
		if err != nil {
			t.Fatal(err)
		}
		r.Expect(`Password: `)
	})
}

func TestClassicHostileHandshakes(t *testing.T) {
	requireSystem(t)
	bob := addUser(t, "rlt-cbob")
	ts := startSystem(t, func(c *Config) {
		c.Classic.Enabled = true
		c.LoginGraceTime = 2 * time.Second // for the silent client; the good login is quick
	})
	// A session runs throughout, and must not notice.
	r, err := loginClassic(t, ts.addr, "someone", bob.name, false)
	if err != nil {
		t.Fatal(err)
	}
	r.Expect(`Password: `)
	r.Send(bob.password + "\r")
	r.Send("echo UP$((40+2))\r")
	r.Expect(`UP42`)
	before := len(children())

	for _, tc := range []struct {
		name       string
		in         []byte
		closeWrite bool
		refused    bool // 0x01 and a message, rather than a silent close
	}{
		{"missing NULs", []byte("\x00bob\x00rlt-cbob"), true, false},
		{"overlong user", []byte("\x00bob\x00" + strings.Repeat("u", 40) + "\x00xterm/9600\x00"), false, true},
		{"overlong client user", []byte("\x00" + strings.Repeat("u", 40) + "\x00rlt-cbob\x00xterm/9600\x00"), false, true},
		{"-froot", []byte("\x00root\x00-froot\x00xterm/9600\x00"), false, true},
		{"-f root as the client user", []byte("\x00-f\x00root\x00xterm/9600\x00"), false, true},
		{"64 KiB terminal", append(append([]byte("\x00bob\x00rlt-cbob\x00"), bytes.Repeat([]byte("x"), 64<<10)...), 0), false, true},
		{"escape in terminal", []byte("\x00bob\x00rlt-cbob\x00\x1b]0;owned\x07/9600\x00"), false, true},
		{"silent", nil, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			answer := rawClassic(t, ts.addr, tc.in, tc.closeWrite)
			switch {
			case tc.refused && (len(answer) < 3 || answer[0] != 1 || !bytes.HasSuffix(answer, []byte("\r\n"))):
				t.Errorf("answer %q, want 0x01, a message, CR LF", answer)
			case !tc.refused && len(answer) > 0 && answer[0] == 0:
				t.Errorf("answer %q: accepted", answer)
			}
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("answered after %v", d)
			}
		})
	}
	if n := len(children()); n > before {
		t.Errorf("%d processes started by hostile handshakes", n-before)
	}
	if strings.Contains(ts.log.String(), "-froot") && !strings.Contains(ts.log.String(), "bad classic handshake") {
		t.Error("-froot reached the login")
	}
	// The running session is undisturbed.
	r.Send("echo STILL$((40+2))\r")
	r.Expect(`STILL42`)
	r.Send("exit\r")
	if err := r.Wait(); err != nil {
		t.Errorf("Wait: %v", err)
	}
}
