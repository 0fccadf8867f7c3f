// Command rlogind serves secure remote logins for the user who runs it, into that user's login
// shell; rlogind -h describes its flags. The work is done by package internal/daemon.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/rlogin-go/rlogin/internal/daemon"
	"github.com/rlogin-go/rlogin/internal/sigreset"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "rlogind: %v\n", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	stop := daemon.StopSignals() // first: sigreset.Reset changes what signal.Ignored reports
	if err := sigreset.Reset(); err != nil {
		return err
	}
	ctx, cancel := daemon.NotifyStop(context.Background(), stop)
	defer cancel()
	return daemon.Main(ctx, args, os.Stderr)
}
