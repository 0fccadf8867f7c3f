package daemon_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"

	"github.com/rlogin-go/rlogin/internal/daemon"
	"github.com/rlogin-go/rlogin/keys"
)

// Under inetd, standard input is the connection: serve it, then exit.
func ExampleServer_ServeConn() {
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	key, _, err := keys.LoadOrCreate("/etc/rlogin/rlogind_host_ed25519_key")
	if err != nil {
		logger.Error("host key", "err", err)
		return
	}
	srv, err := daemon.NewServer(daemon.Config{HostKey: key, AuthorizedKeys: "/home/bob/.rlogin/authorized_keys", Logger: logger})
	if err != nil {
		logger.Error("config", "err", err)
		return
	}
	conn, err := net.FileConn(os.Stdin)
	if err != nil {
		logger.Error("standard input is not a socket", "err", err)
		return
	}
	if err := srv.ServeConn(context.Background(), conn); err != nil {
		logger.Error("serve", "err", err)
	}
}

// Reload applies a new configuration to the connections accepted from then on.
func ExampleServer_Reload() {
	var srv *daemon.Server // running Serve
	var cfg daemon.Config  // read again, on SIGHUP
	if srv == nil {
		return
	}
	if err := srv.Reload(cfg); err != nil {
		fmt.Println("keeping the configuration in force:", err)
	}
}
