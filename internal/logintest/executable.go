package logintest

import (
	"os"
	"path/filepath"
	"testing"
)

// WorldExecutableCopy copies the running test binary where a process with no rights but the
// world's (rlogind's network process, under a dynamic uid) can execute it, and returns its path:
// go test builds it in a directory only its user may enter. The copy is removed at the test's
// end.
func WorldExecutableCopy(t testing.TB) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "rlogind-privsep-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(dir, filepath.Base(self))
	if err := os.WriteFile(exe, data, 0o755); err != nil {
		t.Fatal(err)
	}
	return exe
}
