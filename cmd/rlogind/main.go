// Command rlogind serves secure remote logins into the user's login shell; rlogind -h
// describes its flags and rlogind(8) (docs/rlogind.8) the rest. The work is done by package
// internal/daemon.
//
// Exit status: 0 after SIGTERM or SIGINT (and in -inetd mode after the connection), 2 for a
// bad command line or configuration file, 1 for any other error.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/rlogin-go/rlogin/internal/daemon"
	"github.com/rlogin-go/rlogin/internal/sigreset"
)

func main() {
	if err := profiled(func() error { return run(os.Args[1:]) }); err != nil {
		fmt.Fprintf(os.Stderr, "rlogind: %v\n", err)
		var ue *daemon.UsageError
		if errors.As(err, &ue) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

func run(args []string) error {
	daemon.TuneRuntime(os.Getenv)
	// First: sigreset.Reset changes what signal.Ignored reports.
	stop, reload := daemon.StopSignals(), daemon.ReloadSignals()
	if err := sigreset.Reset(); err != nil {
		return err
	}
	ctx, cancel := daemon.NotifyStop(context.Background(), stop)
	defer cancel()
	reloads, stopReloads := daemon.NotifyReload(reload)
	defer stopReloads()
	return daemon.Run(ctx, args, daemon.Env{Stderr: os.Stderr, Reload: reloads})
}
