package client

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeConfig writes home's ~/.rlogin/config.
func writeConfig(t *testing.T, home, text string) {
	t.Helper()
	dir := filepath.Join(home, ".rlogin")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config"), []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}

// printConfig runs rlogin -G with args and returns its standard output.
func printConfig(t *testing.T, home, system string, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cfg := &Config{Stdout: &stdout, Stderr: &stderr, Home: home, SystemConfig: system, LocalUser: "local"}
	code := cfg.Run(watchdog(t), append([]string{"-G"}, args...))
	return code, stdout.String(), stderr.String()
}

// TestPrintConfig checks -G: the user's file, then the system's, the command line over both, in
// ssh -G's form.
func TestPrintConfig(t *testing.T) {
	home := t.TempDir()
	writeConfig(t, home, "Host web\n  HostName 127.0.0.1\n  User alice\n  Port 6001\n  IdentityFile ~/.ssh/id_work\n"+
		"  CertificateFile ~/.ssh/id_work-cert.pub\n  ServerAliveCountMax 5\n  Resume no\nHost *\n  EscapeChar ^]\n  Resume yes\n")
	system := filepath.Join(t.TempDir(), "rlogin_config")
	if err := os.WriteFile(system, []byte("Port 6002\nConnectTimeout 7\nUser nobody\nEscapeChar none\nServerAliveInterval 30\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errs := printConfig(t, home, system, "web")
	want := "host web\nuser alice\nhostname 127.0.0.1\nport 6001\nidentityfile " + home + "/.ssh/id_work\n" +
		"certificatefile " + home + "/.ssh/id_work-cert.pub\nconnecttimeout 7\nserveraliveinterval 30\nserveralivecountmax 5\n" +
		"resume no\nescapechar ^]\nprotocol secure\n"
	if code != 0 || out != want || errs != "" {
		t.Errorf("rlogin -G web: status %d, stderr %q, output:\n%s\nwant:\n%s", code, errs, out, want)
	}
	code, out, _ = printConfig(t, home, system, "-l", "bob", "-p", "7000", "-e", "!", "-o", "ConnectTimeout=3", "-o", "ServerAliveInterval=0", "-o", "Resume=yes", "-i", "/k", "web")
	want = "host web\nuser bob\nhostname 127.0.0.1\nport 7000\nidentityfile /k\n" +
		"certificatefile " + home + "/.ssh/id_work-cert.pub\nconnecttimeout 3\nserveraliveinterval 0\nserveralivecountmax 5\n" +
		"resume yes\nescapechar !\nprotocol secure\n"
	if code != 0 || out != want {
		t.Errorf("command line over the files: status %d, output:\n%s\nwant:\n%s", code, out, want)
	}
	code, out, _ = printConfig(t, home, system, "other")
	want = "host other\nuser nobody\nhostname other\nport 6002\nidentityfile " + home + "/.ssh/id_ed25519\n" +
		"identityfile " + home + "/.rlogin/id_ed25519\nconnecttimeout 7\nserveraliveinterval 30\nserveralivecountmax 3\n" +
		"resume yes\nescapechar ^]\nprotocol secure\n"
	if code != 0 || out != want {
		t.Errorf("other: status %d, output:\n%s\nwant:\n%s", code, out, want)
	}
	code, out, _ = printConfig(t, home, "none", "-c", "web")
	if code != 0 || !strings.Contains(out, "\nport 513\n") || !strings.Contains(out, "\nprotocol classic\n") {
		t.Errorf("-c: a file's Port must not apply: status %d, output:\n%s", code, out)
	}
	code, out, _ = printConfig(t, home, "none", "-E", "other")
	if code != 0 || !strings.Contains(out, "\nescapechar none\n") {
		t.Errorf("-E: output:\n%s", out)
	}
}

// TestConfigErrors: a bad line is one message naming the file and line, status 255, and nothing
// else happens (no key is made).
func TestConfigErrors(t *testing.T) {
	home := t.TempDir()
	writeConfig(t, home, "Host *\n  ForwardAgent 30\n")
	var stdout, stderr bytes.Buffer
	cfg := &Config{Stdout: &stdout, Stderr: &stderr, Home: home, SystemConfig: "none"}
	code := cfg.Run(watchdog(t), []string{"web"})
	want := "rlogin: " + home + "/.rlogin/config:2: unknown keyword \"ForwardAgent\" (rlogin knows Host, Match, HostName, User, Port, IdentityFile, CertificateFile, EscapeChar, ConnectTimeout, ServerAliveInterval, ServerAliveCountMax, Resume)\n"
	if code != ExitFailure || stderr.String() != want || stdout.Len() != 0 {
		t.Errorf("status %d, stderr %q, want %q", code, stderr.String(), want)
	}
	if _, err := os.Lstat(filepath.Join(home, ".rlogin", "id_ed25519")); err == nil {
		t.Error("a key was made despite the bad configuration")
	}
	writeConfig(t, home, "Host *\n  HostName %h,evil\n")
	stderr.Reset()
	if code := cfg.Run(watchdog(t), []string{"web"}); code != ExitFailure || !strings.Contains(stderr.String(), "config:2: HostName: bad character , in host name") {
		t.Errorf("status %d, stderr %q", code, stderr.String())
	}
	if err := os.Chmod(filepath.Join(home, ".rlogin", "config"), 0o666); err != nil {
		t.Fatal(err)
	}
	stderr.Reset()
	if code := cfg.Run(watchdog(t), []string{"web"}); code != ExitFailure || !strings.Contains(stderr.String(), "bad permissions 0666") {
		t.Errorf("world-writable config: status %d, stderr %q", code, stderr.String())
	}
}

// TestConfigAliasLogin logs in through a Host alias: HostName, Port and User come from
// ~/.rlogin/config, and the host key is the real host's.
func TestConfigAliasLogin(t *testing.T) {
	s := startServer(t, nil)
	home := t.TempDir()
	s.trust(t, home)
	writeConfig(t, home, "Host myalias\n  HostName 127.0.0.1\n  Port "+s.port+"\n  User configured\n")
	tt := openTerminal(t)
	tt.start(userEnv(home), "myalias")
	tt.ready()
	if req := s.request(t); req.User != "configured" {
		t.Errorf("user %q, want the configured one", req.User)
	}
	tt.send("exit\r")
	if code := tt.wait(); code != 0 {
		t.Fatalf("exit status %d", code)
	}
}
