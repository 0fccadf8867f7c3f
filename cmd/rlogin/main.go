// Command rlogin logs in to a remote host running rlogind: BSD rlogin's command line and escapes
// over a connection secured like ssh's. See package internal/client, or run rlogin -h.
//
//	rlogin [-8EKLcd] [-e char] [-l user] [-o option] [-p port] [user@]host
package main

import (
	"os"

	"github.com/rlogin-go/rlogin/internal/client"
)

func main() {
	client.TuneRuntime(os.Getenv)
	os.Exit(profiled(func() int { return client.Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr) }))
}
