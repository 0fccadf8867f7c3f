package pty_test

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rlogin-go/rlogin/pty"
)

// TestOpenedStart: a pty opened before its command (OpenContained) names its terminal first,
// and Start runs the command on that terminal as StartContained would.
func TestOpenedStart(t *testing.T) {
	o, err := pty.OpenContained(size)
	if err != nil {
		t.Fatal(err)
	}
	name, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(int(o.TTY().Fd())))
	if err != nil || !strings.HasPrefix(name, "/dev/pts/") {
		t.Fatalf("the terminal: %q, %v", name, err)
	}
	cmd := exec.Command("sh", "-c", "tty; exit 3")
	p, err := o.Start(cmd)
	if err != nil {
		t.Fatal(err)
	}
	dog := time.AfterFunc(watchdog, func() { t.Error("watchdog: the command still runs"); _ = p.Close(); p.Kill() })
	defer dog.Stop()
	c := &child{t: t, p: p, cmd: cmd, stop: func() {}}
	defer c.finish()
	if out, _ := c.readAll(); !strings.Contains(out, name) {
		t.Errorf("the command's terminal: %q, want %s", out, name)
	}
	c.wantExit(3)
	if err := p.End(time.Second); err != nil {
		t.Errorf("End: %v", err)
	}
}

// TestOpenedClose: a pty given up before its command started leaves no descriptor open.
func TestOpenedClose(t *testing.T) {
	before := openFDs(t)
	o, err := pty.OpenContained(size)
	if err != nil {
		t.Fatal(err)
	}
	if err := o.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	o, err = pty.OpenContained(size)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("true")
	cmd.Stdout = os.Stdout
	if _, err := o.Start(cmd); err == nil {
		t.Error("Start with cmd.Stdout set succeeded")
	}
	if after := openFDs(t); len(after) != len(before) {
		t.Errorf("descriptors leaked: before %v, after %v", before, after)
	}
}
