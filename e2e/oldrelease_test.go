package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// Releases of the past that the tests of old peers build from this repository's history.
const (
	beforeCertificates = "727cdf7" // the last release before certificates and flow2
	beforeCommands     = "5a17377" // the last release before commands, keepalive and prompts
	beforeResume       = "f6b1cd2" // the last release before resume and reattach
)

// oldBuilds holds the binaries of the old releases built so far in this run (under binDir),
// so that each is built once.
var oldBuilds struct {
	sync.Mutex
	dirs map[string]string
}

// oldRelease builds rlogin and rlogind of commit from this repository's history (once per
// run); it skips the test, saying so, when there is no history.
func oldRelease(t *testing.T, commit string) (rlogin, rlogind string) {
	t.Helper()
	if err := exec.Command("git", "cat-file", "-e", commit+"^{commit}").Run(); err != nil {
		t.Skipf("the repository has no commit %s (no history): old peers NOT tested", commit)
	}
	oldBuilds.Lock()
	defer oldBuilds.Unlock()
	if dir, ok := oldBuilds.dirs[commit]; ok {
		return filepath.Join(dir, "rlogin"), filepath.Join(dir, "rlogind")
	}
	dir := filepath.Join(binDir, "old-"+commit)
	src := filepath.Join(dir, "src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	// From the top of the work tree: git archive of a subdirectory holds only that directory.
	archive := exec.Command("sh", "-c", `cd "$(git rev-parse --show-toplevel)" && git archive "$1" | tar -x -C "$2"`, "sh", commit, src)
	if out, err := archive.CombinedOutput(); err != nil {
		t.Fatalf("git archive %s: %v\n%s", commit, err, out)
	}
	for _, name := range []string{"rlogin", "rlogind"} {
		build := exec.Command("go", "build", "-o", filepath.Join(dir, name), "./cmd/"+name)
		build.Dir = src
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("building the old %s: %v\n%s", name, err, out)
		}
	}
	if oldBuilds.dirs == nil {
		oldBuilds.dirs = make(map[string]string)
	}
	oldBuilds.dirs[commit] = dir
	return filepath.Join(dir, "rlogin"), filepath.Join(dir, "rlogind")
}
