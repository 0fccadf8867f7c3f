package client

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
)

// TestUserMessage checks that a worded failure shows its words, and anything else its text without
// package prefixes.
func TestUserMessage(t *testing.T) {
	cause := fmt.Errorf("transport: dial: %w", errors.New("boom"))
	ce := &connectError{msg: "connect to host h port 1: boom", err: cause}
	if got := userMessage(fmt.Errorf("client: wrapped: %w", ce)); got != ce.msg {
		t.Errorf("worded: %q", got)
	}
	if !errors.Is(ce, cause) {
		t.Error("a connectError does not wrap its cause")
	}
	if got := userMessage(cause); got != "dial: boom" {
		t.Errorf("unworded: %q", got)
	}
}

// notTLSServer accepts connections on a "login" mailbox (a TCPMUX reply "+") and then answers
// with text instead of a TLS handshake; it returns the port.
func notTLSServer(t *testing.T) string {
	return tcpServer(t, func(c net.Conn) {
		_, _ = c.Read(make([]byte, 64)) // "login\r\n"
		_, _ = c.Write([]byte("+\r\nHTTP/1.1 400 Bad Request\r\n\r\n"))
	})
}

// TestNoRepeatedPrefixes runs rlogin against a server that fails each way rlogin words a failure
// in, and checks that every message has one "rlogin: " and no package's prefix after it.
func TestNoRepeatedPrefixes(t *testing.T) {
	for _, tc := range []struct {
		name string
		port string
		want string
	}{
		{"not TLS", notTLSServer(t), "rlogin: secure connection to 127.0.0.1:%s failed: "},
		{"nobody listens", freePort(t), "rlogin: connect to host 127.0.0.1 port %s: connection refused"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stderr bytes.Buffer
			cfg := &Config{Stderr: &stderr, Home: t.TempDir(), LocalUser: "bob", Prompt: &fakePrompt{answers: []string{"yes"}}}
			if code := cfg.Run(watchdog(t), []string{"-d", "-p", tc.port, "127.0.0.1"}); code != ExitFailure {
				t.Fatalf("status %d", code)
			}
			t.Logf("stderr:\n%s", stderr.String())
			lines := strings.Split(strings.TrimSuffix(stderr.String(), "\n"), "\n")
			if !strings.HasPrefix(lines[len(lines)-1], fmt.Sprintf(tc.want, tc.port)) {
				t.Errorf("last line %q, want it to start with %q", lines[len(lines)-1], fmt.Sprintf(tc.want, tc.port))
			}
			for _, l := range lines {
				rest, _ := strings.CutPrefix(l, "rlogin: ")
				for _, p := range []string{"client", "transport", "session", "classic", "keys", "rlogin"} {
					if strings.HasPrefix(rest, p+": ") || strings.Contains(rest, ": "+p+": ") {
						t.Errorf("line %q repeats a prefix (%s)", l, p)
					}
				}
			}
		})
	}
}

// sshServer greets each connection as OpenSSH's sshd does, at once, and then reads until the
// client goes; it returns the port.
func sshServer(t *testing.T) string {
	return tcpServer(t, func(c net.Conn) {
		_, _ = c.Write([]byte("SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n"))
		_, _ = io.Copy(io.Discard, c)
	})
}

// TestSSHPort points rlogin at an SSH server (rlogin -p 22 host), secure and classic: it says
// that the port speaks SSH and what to do, in one line, and exits 255.
func TestSSHPort(t *testing.T) {
	port := sshServer(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-p", port, "127.0.0.1"}, "rlogin: connect to host 127.0.0.1 port " + port +
			": the server there speaks SSH, not rlogin: use ssh for port " + port + ", or rlogind's port (5513 by default)\n"},
		{[]string{"-c", "-p", port, "127.0.0.1"}, "rlogin: connect to host 127.0.0.1 port " + port +
			": the server there speaks SSH, not classic rlogin: use ssh for port " + port + ", or the classic rlogin port (513 by default)\n"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var stderr bytes.Buffer
			cfg := &Config{Stderr: &stderr, Home: t.TempDir(), LocalUser: "bob"}
			if code := cfg.Run(watchdog(t), tc.args); code != ExitFailure {
				t.Errorf("status %d, want %d", code, ExitFailure)
			}
			if !strings.HasSuffix(stderr.String(), tc.want) {
				t.Errorf("stderr %q, want it to end in %q", stderr.String(), tc.want)
			}
		})
	}
}

// TestNotRlogind points rlogin at a server that answers its mailbox request with a line that is
// neither TCPMUX nor SSH: the message says so and shows the line, quoted.
func TestNotRlogind(t *testing.T) {
	port := tcpServer(t, func(c net.Conn) {
		_, _ = c.Write([]byte("220 mail.example.net ESMTP\x1b[2J\r\n"))
		_, _ = io.Copy(io.Discard, c)
	})
	var stderr bytes.Buffer
	cfg := &Config{Stderr: &stderr, Home: t.TempDir(), LocalUser: "bob"}
	if code := cfg.Run(watchdog(t), []string{"-p", port, "127.0.0.1"}); code != ExitFailure {
		t.Errorf("status %d, want %d", code, ExitFailure)
	}
	want := "rlogin: connect to host 127.0.0.1 port " + port + `: the server there is not rlogind: it answered "220 mail.example.net ESMTP\x1b[2J"` + "\n"
	if !strings.HasSuffix(stderr.String(), want) {
		t.Errorf("stderr %q, want it to end in %q", stderr.String(), want)
	}
}

// TestClassicPortWithoutC points rlogin without -c at a classic rlogin server, which refuses the
// mailbox request as a bad handshake: the message says what the server speaks and what to do.
func TestClassicPortWithoutC(t *testing.T) {
	port := tcpServer(t, func(c net.Conn) {
		_, _ = c.Read(make([]byte, 64))
		_, _ = c.Write([]byte("\x01not a classic rlogin client\r\n"))
	})
	var stderr bytes.Buffer
	cfg := &Config{Stderr: &stderr, Home: t.TempDir(), LocalUser: "bob"}
	if code := cfg.Run(watchdog(t), []string{"-p", port, "127.0.0.1"}); code != ExitFailure {
		t.Errorf("status %d, want %d", code, ExitFailure)
	}
	want := "rlogin: connect to host 127.0.0.1 port " + port + ": the server there speaks classic rlogin, not rlogin's " +
		"secure protocol: use rlogind's port (5513 by default), or -c, which is NOT ENCRYPTED\n"
	if !strings.HasSuffix(stderr.String(), want) {
		t.Errorf("stderr %q, want it to end in %q", stderr.String(), want)
	}
}
