package daemon_test

import (
	"context"
	"crypto/ed25519"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/rlogin-go/rlogin/internal/daemon"
	"github.com/rlogin-go/rlogin/keys"
	"github.com/rlogin-go/rlogin/transport"
)

// A user-mode daemon on the default port, stopped by SIGTERM.
func ExampleServer_Serve() {
	home, _ := os.UserHomeDir()
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	key, _, err := keys.LoadOrCreate(filepath.Join(home, ".rlogin", "rlogind_host_ed25519_key"))
	if err != nil {
		logger.Error("host key", "err", err)
		return
	}
	logger.Info("host key", "fingerprint", keys.Fingerprint(key.Public().(ed25519.PublicKey)))
	srv, err := daemon.NewServer(daemon.Config{
		HostKey:        key,
		AuthorizedKeys: filepath.Join(home, ".rlogin", "authorized_keys"),
		Logger:         logger,
	})
	if err != nil {
		logger.Error("config", "err", err)
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	l, err := transport.Listen(ctx, daemon.DefaultAddr)
	if err != nil {
		logger.Error("listen", "err", err)
		return
	}
	if err := srv.Serve(ctx, l); err != nil {
		logger.Error("serve", "err", err)
	}
}
