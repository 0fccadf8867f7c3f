package daemon_test

import (
	"context"
	"log/slog"
	"os"

	"github.com/rlogin-go/rlogin/internal/daemon"
	"github.com/rlogin-go/rlogin/keys"
	"github.com/rlogin-go/rlogin/transport"
)

// The system daemon, run as root: every local user logs in with a key listed in their own
// ~/.rlogin/authorized_keys, or else gives their password to login(1); root only with a key.
func ExampleConfig_system() {
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	key, _, err := keys.LoadOrCreate(daemon.SystemHostKey)
	if err != nil {
		logger.Error("host key", "err", err)
		return
	}
	srv, err := daemon.NewServer(daemon.Config{
		HostKey:                key,
		AuthorizedKeys:         "~/.rlogin/authorized_keys", // each user's home
		System:                 true,
		PermitRootLogin:        daemon.PermitRootProhibitPassword,
		PasswordAuthentication: true,
		Logger:                 logger,
	})
	if err != nil {
		logger.Error("config", "err", err) // not root, no login(1)...
		return
	}
	l, err := transport.Listen(context.Background(), daemon.DefaultAddr)
	if err != nil {
		logger.Error("listen", "err", err)
		return
	}
	_ = srv.Serve(context.Background(), l)
}
