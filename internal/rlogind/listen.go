package rlogind

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"strings"
	"syscall"

	"github.com/rlogin-go/rlogin/internal/errtext"
	"github.com/rlogin-go/rlogin/internal/systemd"
	"github.com/rlogin-go/rlogin/transport"
)

// sockets are the listeners rlogind serves.
type sockets struct {
	ls        []net.Listener
	names     []string // systemd's names, when activated
	activated bool     // passed by systemd
}

// listen returns the sockets systemd passed, or else a listener on addr. It is the first
// thing rlogind does after reading its options: whatever cannot listen must fail before any
// file is made.
func listen(ctx context.Context, addr string) (*sockets, error) {
	ls, names, err := systemd.Listeners(os.Getenv, os.Getpid(), systemd.ListenFDsStart)
	for _, v := range []string{"LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"} {
		_ = os.Unsetenv(v) // for no child to see
	}
	if err != nil {
		return nil, errtext.Errorf("rlogind: %w", err)
	}
	if len(ls) > 0 {
		return &sockets{ls: ls, names: names, activated: true}, nil
	}
	l, err := transport.Listen(ctx, addr)
	if err != nil {
		return nil, errtext.Errorf("rlogind: cannot listen on %s: %w", addr, systemReason(err))
	}
	return &sockets{ls: []net.Listener{l}}, nil
}

// logActivation logs the sockets systemd passed, if it did.
func (s *sockets) logActivation(log *slog.Logger) {
	if !s.activated {
		return
	}
	addrs := make([]string, len(s.ls))
	for i, l := range s.ls {
		addrs[i] = l.Addr().String()
	}
	log.Info("socket activation: serving the sockets systemd passed", "addrs", strings.Join(addrs, ","), "names", strings.Join(s.names, ","))
}

// close closes the sockets (Serve closes them too: a second Close does nothing harmful).
func (s *sockets) close() {
	for _, l := range s.ls {
		_ = l.Close()
	}
}

// systemReason returns the system's reason for err, such as the errno "address already in
// use" under transport's and net's layers of context, so that a message can give the
// user's words around it; err itself if it has none.
func systemReason(err error) error {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno
	}
	return err
}
