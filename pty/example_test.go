//go:build linux

package pty_test

import (
	"context"
	"fmt"
	"log"
	"os/exec"
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
