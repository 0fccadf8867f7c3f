package logintest

import (
	"io"
	"os"
	"os/exec"
	"slices"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestConnPair(t *testing.T) {
	server, client := ConnPair(t)
	if _, err := io.WriteString(client, "ping"); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(server, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("server read %q, %v", buf, err)
	}
	if server.LocalAddr().String() != client.RemoteAddr().String() {
		t.Errorf("the ends are not one connection: %v, %v", server.LocalAddr(), client.RemoteAddr())
	}
}

// TestChildrenOf: a child is seen until it is reaped, which CheckNoLeftovers relies on.
func TestChildrenOf(t *testing.T) {
	CheckNoLeftovers(t)
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if kids := childrenOf(os.Getpid()); !slices.Contains(kids, cmd.Process.Pid) {
		t.Errorf("childrenOf = %v, want %d among them", kids, cmd.Process.Pid)
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	if kids := childrenOf(os.Getpid()); slices.Contains(kids, cmd.Process.Pid) {
		t.Errorf("childrenOf = %v after the child was reaped", kids)
	}
}

func TestCurrentUser(t *testing.T) {
	if CurrentUser(t) == "" {
		t.Fatal("no user name")
	}
}
