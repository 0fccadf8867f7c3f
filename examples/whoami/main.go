// Command whoami is another tool built on rlogin's packages, as an example:
// a service on the mailbox "whoami" that tells each client the fingerprint
// of the key it authenticated with, over TLS 1.3 and with the same trust
// files as rlogin and rlogind.
//
// Typical usage:
//
//	whoami -serve -addr :5514      # in one terminal: serve the mailbox "whoami"
//	whoami -addr localhost:5514    # in another: ask it
//
// The server presents the host key dir/whoami_host_ed25519_key (made on
// first use) and lets in the keys listed in dir/authorized_keys, which it
// reads at every connection. The client presents dir/id_ed25519 (made on
// first use) and checks the server's key in dir/known_hosts; a server it
// does not know yet is refused unless -accept-new, which then adds its key
// once the handshake has succeeded. dir is ~/.rlogin unless -dir says
// otherwise.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:])
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "whoami:", err)
		os.Exit(1)
	}
}
