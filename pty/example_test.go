//go:build linux

package pty_test

import (
	"context"
	"fmt"
	"log"
	"os/exec"
	"syscall"
	"time"

	"github.com/rlogin-go/rlogin/pty"
)

func ExampleStart() {
	// The context is a watchdog: the command is killed if it runs too long.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, err := pty.Start(exec.CommandContext(ctx, "echo", "hello"), pty.Size{Rows: 24, Cols: 80})
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close()

	var out []byte
	buf := make([]byte, 32<<10)
	for {
		n, _, err := p.ReadOutput(buf)
		out = append(out, buf[:n]...)
		if err != nil { // io.EOF once the command is gone
			break
		}
	}
	state, err := p.Wait()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%q, exit code %d\n", out, state.ExitCode())
	// Output: "hello\r\n", exit code 0
}

// localProcess is a PTY's process side as a pty.Process. Here it is in the same process; in a
// daemon with privilege separation, the process that started the command answers such requests
// from the one that serves the terminal.
type localProcess struct{ *pty.PTY }

func (p localProcess) Wait() (syscall.WaitStatus, error) {
	state, err := p.PTY.Wait()
	if err != nil {
		return 0, err
	}
	return state.Sys().(syscall.WaitStatus), nil
}

func ExampleAttach() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, err := pty.Start(exec.CommandContext(ctx, "sh", "-c", "echo hello; exit 3"), pty.Size{Rows: 24, Cols: 80})
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close()

	// The master to pass on (with SCM_RIGHTS); the receiver attaches it.
	master, err := p.DupMaster()
	if err != nil {
		log.Fatal(err)
	}
	t, err := pty.Attach(master, localProcess{p})
	if err != nil {
		log.Fatal(err)
	}
	defer t.Close()

	var out []byte
	buf := make([]byte, 32<<10)
	for {
		n, _, err := t.ReadOutput(buf)
		out = append(out, buf[:n]...)
		if err != nil { // io.EOF once the command is gone
			break
		}
	}
	ws, err := t.WaitStatus()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%q, exit code %d\n", out, ws.ExitStatus())
	// Output: "hello\r\n", exit code 3
}
