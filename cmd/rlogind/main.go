// Command rlogind serves secure remote logins into the user's login shell; rlogind -h
// describes its flags and rlogind(8) (docs/rlogind.8) the rest. The work is done by package
// internal/rlogind (the process: flags, configuration file, log, sockets, signals) and package
// internal/daemon (the logins).
//
// Exit status: 0 after SIGTERM or SIGINT (and in -inetd mode after the connection), 2 for a
// bad command line or configuration file, 1 for any other error.
package main

import (
	"fmt"
	"os"

	"github.com/rlogin-go/rlogin/internal/daemon"
	"github.com/rlogin-go/rlogin/internal/rlogind"
)

func main() {
	// A monitor or network process of a privilege-separated rlogind: its own work, before
	// anything else touches its descriptors.
	if ran, status := daemon.RunRole(); ran {
		os.Exit(status)
	}
	if err := profiled(func() error { return rlogind.Main(os.Args[1:]) }); err != nil {
		fmt.Fprintln(os.Stderr, err) // Main's errors start with "rlogind: "
		os.Exit(rlogind.ExitStatus(err))
	}
}
