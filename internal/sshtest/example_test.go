package sshtest_test

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rlogin-go/rlogin/internal/sshtest"
)

// A test that adds a key to its own ssh-agent and reads what ssh-add -l lists.
func Example() {
	t := &testing.T{} // in a test: the test's own t
	sock := sshtest.StartAgent(t)
	key := filepath.Join(t.TempDir(), "id_ed25519")
	sshtest.Keygen(t, key, "")
	env := []string{"SSH_AUTH_SOCK=" + sock}
	sshtest.Run(t, env, "ssh-add", "-q", key)
	listed := sshtest.Run(t, env, "ssh-add", "-l", "-E", "sha256")
	fmt.Println(strings.Contains(listed, sshtest.Fingerprint(t, key)))
}
