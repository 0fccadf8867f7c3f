// Package sshtest is for tests only: it runs OpenSSH's own tools (ssh-agent, ssh-add, ssh-keygen)
// so that tests check this project's keys against the programs people use, not against this
// project's reading of their formats. A test that needs a tool skips, saying so, when it is not
// installed.
//
// Typical usage:
//
//	sock := sshtest.StartAgent(t) // killed by t.Cleanup
//	key := filepath.Join(t.TempDir(), "id_ed25519")
//	sshtest.Run(t, nil, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key)
//	sshtest.Run(t, []string{"SSH_AUTH_SOCK=" + sock}, "ssh-add", key)
//	out := sshtest.Run(t, []string{"SSH_AUTH_SOCK=" + sock}, "ssh-add", "-l")
package sshtest

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Timeout bounds each tool's run: a tool that needs longer is a failure, not something to sit out.
const Timeout = 30 * time.Second

// Need skips the test, saying so, unless every tool in names is installed.
func Need(t testing.TB, names ...string) {
	t.Helper()
	for _, name := range names {
		if _, err := exec.LookPath(name); err != nil {
			t.Skipf("%s is not installed: OpenSSH interoperability NOT tested", name)
		}
	}
}

// Run runs the OpenSSH tool name with args, with env added to the environment, and returns its
// standard output; it fails the test if the tool fails.
func Run(t testing.TB, env []string, name string, args ...string) string {
	t.Helper()
	out, err := Try(t, env, name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v", name, strings.Join(args, " "), err)
	}
	return out
}

// Try is Run that returns the tool's failure, with its standard error, instead of failing the test.
func Try(t testing.TB, env []string, name string, args ...string) (string, error) {
	t.Helper()
	Need(t, name)
	ctx, cancel := context.WithTimeout(context.Background(), Timeout) // watchdog
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), errors.Join(err, errors.New(stderr.String()))
	}
	return stdout.String(), nil
}

// StartAgent starts an ssh-agent in the foreground on a socket in a directory of its own and
// returns the socket's path (for SSH_AUTH_SOCK). The test's cleanup kills the agent and waits
// for it.
func StartAgent(t testing.TB) string {
	t.Helper()
	Need(t, "ssh-agent")
	// A short directory: a Unix socket's path must fit in 108 bytes, and t.TempDir's may not.
	dir, err := os.MkdirTemp("", "agent")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	sock := filepath.Join(dir, "sock")
	cmd := exec.Command("ssh-agent", "-D", "-a", sock)
	var log bytes.Buffer
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
	})
	deadline := time.Now().Add(Timeout)
	for {
		if _, err := os.Stat(sock); err == nil {
			return sock
		}
		select {
		case err := <-done:
			done <- err // for the cleanup
			t.Fatalf("ssh-agent exited: %v\n%s", err, log.String())
		case <-time.After(10 * time.Millisecond): // polling for the socket: the agent says nothing when ready
		}
		if time.Now().After(deadline) {
			t.Fatalf("ssh-agent made no socket within %v\n%s", Timeout, log.String())
		}
	}
}

// Keygen makes a new ed25519 key at path with ssh-keygen, encrypted with passphrase unless it is
// empty, and its public half in path+".pub".
func Keygen(t testing.TB, path, passphrase string) {
	t.Helper()
	Run(t, nil, "ssh-keygen", "-q", "-t", "ed25519", "-N", passphrase, "-C", filepath.Base(path), "-f", path)
}

// Fingerprint is the SHA256 fingerprint ssh-keygen -lf prints for the key file at path (a
// private key or a .pub).
func Fingerprint(t testing.TB, path string) string {
	t.Helper()
	out := Run(t, nil, "ssh-keygen", "-l", "-E", "sha256", "-f", path)
	f := strings.Fields(out) // "256 SHA256:... comment (ED25519)"
	if len(f) < 2 || !strings.HasPrefix(f[1], "SHA256:") {
		t.Fatalf("ssh-keygen -lf %s: unexpected output %q", path, out)
	}
	return f[1]
}
