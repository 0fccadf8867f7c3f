package rlogind

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestListenFirst: rlogind that cannot listen fails with one plain message and creates no file:
// no host key, no user key, no authorized_keys, no log file.
func TestListenFirst(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	addr := l.Addr().String()
	home := t.TempDir()
	t.Setenv("HOME", home)
	logFile := filepath.Join(home, "rlogind.log")
	err = Run(context.Background(), []string{"-config", "none", "-user-mode", "-addr", addr, "-log-file", logFile}, Env{Stderr: &strings.Builder{}})
	if want := "rlogind: cannot listen on " + addr + ": address already in use"; err == nil || err.Error() != want {
		t.Errorf("Run on a port in use: %v, want %q", err, want)
	}
	if !errors.Is(err, syscall.EADDRINUSE) {
		t.Errorf("Run on a port in use: %v, want an error matching EADDRINUSE", err)
	}
	if ents, err := os.ReadDir(home); err != nil || len(ents) != 0 {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Errorf("Run that could not listen left %q in the home directory (%v)", names, err)
	}
}
