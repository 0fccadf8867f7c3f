package client_test

import (
	"context"
	"os"
	"strings"

	"github.com/rlogin-go/rlogin/internal/client"
)

// A program that logs in with input from a string instead of a terminal: no raw mode, no escapes,
// and the end of the string is the end of the remote shell's input.
func ExampleConfig_Run() {
	cfg := &client.Config{
		Stdin:  strings.NewReader("uname -a\nexit\n"),
		Stdout: os.Stdout,
		Stderr: os.Stderr,
	}
	status := cfg.Run(context.Background(), []string{"-l", "bob", "-p", "5513", "example.net"})
	os.Exit(status)
}
