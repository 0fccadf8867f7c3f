package e2e

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/rlogin-go/rlogin/internal/logintest"
)

// TestCertificateWithoutPermitPty: a user certificate without the permit-pty extension runs
// commands on pipes, as sshd does, and is refused a terminal (-t), with the reason.
func TestCertificateWithoutPermitPty(t *testing.T) {
	s := newCertSetup(t)
	s.sign(t, s.hostKey, "e2e-host", "-h", "-n", "127.0.0.1")
	s.sign(t, s.userKey, "e2e-no-pty", "-n", logintest.CurrentUser(t), "-O", "no-pty")
	d := s.start(t)
	writeFile(t, filepath.Join(s.home, ".rlogin", "known_hosts"), s.caLine(t, "@cert-authority", "[127.0.0.*]:"+d.port))
	client := &daemon{port: d.port, home: s.home} // runCommand's client: its port and home

	r := runCommand(t, rloginBin(), client, nil, "127.0.0.1", "sh", "-c", "'tty; echo err >&2; exit 5'")
	if r.code != 5 || string(r.stdout) != "not a tty\n" || string(r.stderr) != "err\n" {
		t.Errorf("command: status %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	r = runCommand(t, rloginBin(), client, nil, "-t", "127.0.0.1", "tty")
	if r.code != 255 || !strings.Contains(string(r.stderr), "no-pty") {
		t.Errorf("-t: status %d, stderr %q", r.code, r.stderr)
	}
}
